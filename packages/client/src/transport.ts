/**
 * The one thing the client needs from a platform: send one HTTP request, get one answer. The
 * core never touches sockets, TLS or fetch; `@consortia/client/node` supplies an HTTPS
 * transport pinned to the service certificate, `@consortia/client/browser` a fetch transport.
 *
 * Contract for implementations:
 * - resolve with any status the server sent (non-2xx included); the client maps statuses;
 * - reject with ClientError(Network) when no answer came back, with the socket's error code
 *   (ECONNREFUSED, ECONNRESET...) in `ccfCode` where the platform knows it, and
 *   ClientError(Timeout) when the answer did not come within the transport's time limit;
 * - header names in the answer are lower case.
 */
import type { Answer } from "./errors.js";

export interface TransportRequest {
  readonly method: string;
  /** Path and query, e.g. "/app/tx?transaction_id=2.15". */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
}

export interface Transport {
  /** Where requests go, for messages (e.g. "https://127.0.0.1:8000"); optional. */
  readonly origin?: string;
  send(request: TransportRequest): Promise<Answer>;
  /** Releases pooled connections so a process can exit; optional. */
  close?(): void;
}
