/**
 * `@consortia/client/browser`: the client over fetch, for pages. The page talks to a base URL
 * (the web console's local proxy, which pins the service certificate and carries calls to the
 * network); governance is signed in the page by webCryptoSigner, whose key never leaves it.
 * No node: module is imported here or in the core.
 */
import { ConsortiaClient, type ClientOptions } from "./client.js";
import { owned } from "./bytes.js";
import { ClientError, ClientErrorCode, type Answer } from "./errors.js";
import type { Transport, TransportRequest } from "./transport.js";

export * from "./index.js";

export interface FetchTransportOptions {
  /** Base URL the paths are resolved against, e.g. "/api" or "http://127.0.0.1:7000/api". */
  readonly baseUrl: string;
  /** Per request (default 10 s). */
  readonly timeoutMs?: number;
  /** The fetch to use (default globalThis.fetch). */
  readonly fetch?: typeof globalThis.fetch;
}

export class FetchTransport implements Transport {
  readonly origin: string;
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof globalThis.fetch;

  constructor(options: FetchTransportOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.origin = this.base;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  async send(request: TransportRequest): Promise<Answer> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      const response = await this.fetchFn(`${this.base}${request.path}`, {
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined && { body: owned(request.body) }),
        signal: controller.signal,
      });
      const headers: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        headers[name.toLowerCase()] = value;
      });
      const body = new Uint8Array(await response.arrayBuffer());
      return { status: response.status, headers, body };
    } catch (err: unknown) {
      if (controller.signal.aborted) {
        throw new ClientError(
          { code: ClientErrorCode.Timeout },
          `${request.method} ${request.path} failed: no answer within ${this.timeoutMs} ms`,
        );
      }
      if (!(err instanceof Error)) throw err;
      // Node's fetch (undici) puts the socket's error, with its code, in `cause`.
      const code = (err.cause as { code?: unknown } | undefined)?.code;
      throw new ClientError(
        { code: ClientErrorCode.Network, ...(typeof code === "string" && { ccfCode: code }) },
        `${request.method} ${request.path} failed: ${err.message}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A client over fetch against `baseUrl`. */
export function connectFetch(
  options: FetchTransportOptions & Omit<ClientOptions, "transport">,
): ConsortiaClient {
  return new ConsortiaClient({ ...options, transport: new FetchTransport(options) });
}
