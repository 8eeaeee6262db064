/**
 * The console's side of the network: HTTPS requests to the nodes that trust only the pinned
 * service certificate (the chain to it is the node's identity, whatever name the node answers
 * to, as for node-to-node calls: src/http/client-tls.ts), with a time limit and a cap on the
 * answer's size. Requests go to the first node that answers, in the order given; a node that
 * refuses the connection is skipped for the next one, so the console keeps working while one
 * node is down.
 *
 * Invariants: every request ends within `timeoutMs` (answered, or a NetworkTimeout); no answer
 * larger than `responseBytesMax` is buffered (ResponseTooLarge as soon as it is exceeded); a
 * POST is sent again to another node only when the connection was refused, so a signed write
 * never reaches two nodes.
 */
import { Agent, request as httpsRequest } from "node:https";
import type { IncomingHttpHeaders } from "node:http";
import { assert } from "../../base/assert.js";
import { isForeignError } from "../../base/errors.js";
import { ConsoleError, ConsoleErrorCode } from "./console-error.js";

export interface NetworkClientOptions {
  /** Node RPC addresses to try, in order, e.g. https://127.0.0.1:8000. Invariant: not empty. */
  readonly urls: readonly string[];
  /** The service certificate: the only trust anchor. */
  readonly serviceCertPem: string;
  /** A TLS client identity for app endpoints that need a user or member certificate. */
  readonly client?: { readonly certPem: string; readonly keyPem: string };
  readonly timeoutMs: number;
  readonly responseBytesMax: number;
}

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, e.g. /node/state or /app/tx?transaction_id=2.10. */
  readonly pathAndQuery: string;
  readonly contentType?: string;
  /** What the page accepts: application/cose asks for a COSE receipt. Default JSON. */
  readonly accept?: string;
  readonly body?: Uint8Array;
  /** Send to this node address only (no fallback), e.g. https://127.0.0.1:8001. */
  readonly url?: string;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Uint8Array;
}

/** Socket errors that mean the request never reached a server, so another node may take it. */
const NOT_SENT = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

export class NetworkClient {
  private readonly agent: Agent;
  /** The index in `urls` of the node that answered last; tried first next time. */
  private preferred = 0;

  constructor(private readonly options: NetworkClientOptions) {
    assert(options.urls.length > 0, "NetworkClient needs a node URL");
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 8,
      ca: options.serviceCertPem,
      rejectUnauthorized: true,
      checkServerIdentity: () => undefined,
      ...(options.client === undefined
        ? {}
        : { cert: options.client.certPem, key: options.client.keyPem }),
    });
  }

  get urls(): readonly string[] {
    return this.options.urls;
  }

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    if (request.url !== undefined) return this.sendTo(request.url, request);
    const urls = this.options.urls;
    let last: unknown;
    for (let attempt = 0; attempt < urls.length; attempt++) {
      const index = (this.preferred + attempt) % urls.length;
      try {
        const response = await this.sendTo(urls[index]!, request);
        this.preferred = index;
        return response;
      } catch (err: unknown) {
        if (!(err instanceof ConsoleError) || !this.mayRetry(request, err)) throw err;
        last = err;
      }
    }
    throw last;
  }

  close(): void {
    this.agent.destroy();
  }

  private mayRetry(request: UpstreamRequest, err: ConsoleError): boolean {
    if (err.code !== ConsoleErrorCode.NetworkUnreachable) return false;
    return request.method === "GET" || err.notSent;
  }

  private sendTo(base: string, request: UpstreamRequest): Promise<UpstreamResponse> {
    const { timeoutMs, responseBytesMax } = this.options;
    const url = new URL(request.pathAndQuery, base);
    const what = `${request.method} ${url.pathname}`;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        req.destroy();
        reject(asConsoleError(err, base));
      };
      const headers: Record<string, string | number> = {
        accept: request.accept ?? "application/json, */*",
      };
      if (request.contentType !== undefined) headers["content-type"] = request.contentType;
      if (request.body !== undefined) headers["content-length"] = request.body.byteLength;
      const req = httpsRequest(url, { method: request.method, agent: this.agent, headers });
      req.setTimeout(timeoutMs, () => {
        const message = `the network did not answer ${what} within ${timeoutMs} ms`;
        fail(new ConsoleError(ConsoleErrorCode.NetworkTimeout, message));
      });
      req.on("error", fail);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.byteLength;
          if (size <= responseBytesMax) chunks.push(chunk);
          else {
            const message = `the network's answer to ${what} is over ${responseBytesMax} bytes`;
            fail(new ConsoleError(ConsoleErrorCode.ResponseTooLarge, message));
          }
        });
        res.on("end", () => {
          if (settled) return;
          settled = true;
          const body = new Uint8Array(Buffer.concat(chunks));
          resolve({ status: res.statusCode ?? 502, headers: res.headers, body });
        });
        res.on("error", fail);
      });
      req.end(request.body);
    });
  }
}

/**
 * A socket or TLS failure (refused, reset, a certificate not endorsed by the pinned service
 * certificate) as NetworkUnreachable; our own ConsoleErrors and bugs pass through.
 */
function asConsoleError(err: unknown, base: string): unknown {
  if (!isForeignError(err)) return err;
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === "string" ? `${code}: ${err.message}` : err.message;
  return new ConsoleError(
    ConsoleErrorCode.NetworkUnreachable,
    `cannot reach the network at ${base}: ${reason}`,
    { notSent: typeof code === "string" && NOT_SENT.has(code) },
  );
}
