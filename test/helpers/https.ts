/** One HTTPS request from the e2e tests: no agent (a fresh connection), a 10 s timeout. */
import { request } from "node:https";

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
