/** One HTTPS request from the e2e tests: no agent (a fresh connection), a 10 s timeout. */
import { request } from "node:https";
import { connect as tlsConnect } from "node:tls";

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface Tls {
  ca: string;
  cert?: string;
  key?: string;
}

/** A body is sent as application/json unless `headers` names another content-type. */
export function httpsRequest(
  url: string,
  tls: Tls,
  method: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const all = body === undefined ? headers : { "content-type": "application/json", ...headers };
    const req = request(url, { method, headers: all, ...tls, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }),
      );
    });
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * Writes `payload` on a fresh TLS connection to 127.0.0.1:`port`, without a half-close (with
 * one, node drops pending responses by design), and resolves with everything the server sent
 * once it closed the connection.
 */
export function tlsExchange(port: number, ca: string, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca }, () => socket.write(payload));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
    socket.on("error", reject);
  });
}
