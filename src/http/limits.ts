/**
 * Session, header and time limits of the RPC server (ccf-compatibility.md §1.3).
 *
 *  - Sessions, as CCF's `max_open_sessions_soft` / `max_open_sessions_hard`: a TCP connection
 *    that would make the open count exceed the hard limit is closed at once, before the TLS
 *    handshake; one that exceeds the soft limit completes its handshake, and its first request
 *    is answered 503 SessionCapExhausted, after which the connection is closed.
 *  - Headers, as CCF's `max_header_size` (per header name and per value) and
 *    `max_headers_count`: a request over either is answered 431 RequestHeaderTooLarge and its
 *    connection is closed.
 *  - Time: the TLS handshake and the request head must arrive within `headersTimeoutMs`, the
 *    whole request (head and body) within `requestTimeoutMs`, and a connection on which nothing
 *    arrives for `idleTimeoutMs` (CCF's `idle_connection_timeout`) is closed.
 */
import type { Server } from "node:https";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { HttpErrorCode } from "./errors.js";

export interface ServerLimits {
  /** Invariant: 1 <= maxOpenSessionsSoft <= maxOpenSessionsHard. */
  readonly maxOpenSessionsSoft: number;
  readonly maxOpenSessionsHard: number;
  /** Longest header name or value, in bytes. */
  readonly maxHeaderSizeBytes: number;
  readonly maxHeadersCount: number;
  /** TLS handshake plus request head. */
  readonly headersTimeoutMs: number;
  /** Whole request, head and body; at least headersTimeoutMs. */
  readonly requestTimeoutMs: number;
  /** No input for this long closes the connection; null never does (CCF: null = never). */
  readonly idleTimeoutMs: number | null;
}

/** CCF's defaults (1000 / 1010, 16KB, 256, idle 60 s) and ours for the head and body times. */
export const DEFAULT_LIMITS: ServerLimits = {
  maxOpenSessionsSoft: 1000,
  maxOpenSessionsHard: 1010,
  maxHeaderSizeBytes: 16 * 1024,
  maxHeadersCount: 256,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
};

/** Node's own cap on a whole request head; ours are per header, so this only bounds memory. */
const MAX_TOTAL_HEAD_BYTES = 1024 * 1024;
const MIN_TOTAL_HEAD_BYTES = 16 * 1024;

export function checkLimits(limits: ServerLimits): void {
  const positive = (n: number): boolean => Number.isInteger(n) && n > 0;
  const ok =
    positive(limits.maxOpenSessionsSoft) &&
    positive(limits.maxOpenSessionsHard) &&
    limits.maxOpenSessionsSoft <= limits.maxOpenSessionsHard &&
    positive(limits.maxHeaderSizeBytes) &&
    positive(limits.maxHeadersCount) &&
    positive(limits.headersTimeoutMs) &&
    limits.requestTimeoutMs >= limits.headersTimeoutMs &&
    (limits.idleTimeoutMs === null || positive(limits.idleTimeoutMs));
  if (!ok) throw new RangeError(`invalid server limits ${JSON.stringify(limits)}`);
}

/** Options for node:https createServer that enforce the limits' time and size bounds. */
export function serverOptionsOf(limits: ServerLimits): {
  maxHeaderSize: number;
  handshakeTimeout: number;
  connectionsCheckingInterval: number;
} {
  const perHeader = 2 * limits.maxHeaderSizeBytes + 4;
  const total = Math.min(MAX_TOTAL_HEAD_BYTES, perHeader * limits.maxHeadersCount + 8192);
  return {
    maxHeaderSize: Math.max(MIN_TOTAL_HEAD_BYTES, total),
    handshakeTimeout: limits.headersTimeoutMs,
    // How often node checks the head and request deadlines (its default is 30 s).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, limits.headersTimeoutMs / 4)),
  };
}

/**
 * Applies the time limits to the server and starts counting sessions. Returns the test used by
 * the request handler: true when the request's connection was accepted past the soft limit.
 */
export function enforceLimits(
  server: Server,
  limits: ServerLimits,
): (req: IncomingMessage) => boolean {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  // node drops headers past maxHeadersCount silently: keep one more, so an excess is seen.
  server.maxHeadersCount = limits.maxHeadersCount + 1;
  if (limits.idleTimeoutMs !== null) {
    server.keepAliveTimeout = limits.idleTimeoutMs;
    // Inactivity on the socket, whatever the HTTP state (a stalled body, an unread response).
    server.timeout = limits.idleTimeoutMs;
  } else {
    server.keepAliveTimeout = 0;
    server.timeout = 0;
  }
  let open = 0;
  const overSoft = new WeakSet<object>();
  // Connections still in their TLS handshake, by peer address: node's handshakeTimeout only
  // runs once the client has sent something, so a silent connection is timed here.
  const handshaking = new Map<string, NodeJS.Timeout>();
  server.on("connection", (socket: Socket) => {
    if (open >= limits.maxOpenSessionsHard) {
      socket.destroy();
      return;
    }
    open += 1;
    const peer = peerOf(socket);
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    timer.unref();
    handshaking.set(peer, timer);
    socket.once("close", () => {
      open -= 1;
      clearTimeout(timer);
      if (handshaking.get(peer) === timer) handshaking.delete(peer);
    });
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    const peer = peerOf(socket);
    clearTimeout(handshaking.get(peer));
    handshaking.delete(peer);
    if (open > limits.maxOpenSessionsSoft) overSoft.add(socket);
  });
  return (req) => overSoft.has(req.socket);
}

function peerOf(socket: Socket): string {
  return `${socket.remoteAddress ?? "?"}|${String(socket.remotePort ?? 0)}`;
}

export type HeaderVerdict = { readonly code: HttpErrorCode; readonly message: string } | null;

/** Null when the request's headers are within the limits, else the 431 to answer. */
export function checkHeaders(req: IncomingMessage, limits: ServerLimits): HeaderVerdict {
  const raw = req.rawHeaders;
  const count = raw.length / 2;
  if (count > limits.maxHeadersCount) {
    const message = `Too many headers (max number allowed: ${limits.maxHeadersCount})`;
    return { code: HttpErrorCode.RequestHeaderTooLarge, message };
  }
  const max = limits.maxHeaderSizeBytes;
  // Node reads header bytes as latin1, one character per byte: count them the same way (UTF-8
  // would count each byte >= 0x80 twice).
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (Buffer.byteLength(name, "latin1") > max) {
      const shown = name.slice(0, 64);
      const message = `Header key for '${shown}' is too long (max size allowed: ${max})`;
      return { code: HttpErrorCode.RequestHeaderTooLarge, message };
    }
    if (Buffer.byteLength(raw[i + 1]!, "latin1") > max) {
      const message = `Header value for '${name}' is too long (max size allowed: ${max})`;
      return { code: HttpErrorCode.RequestHeaderTooLarge, message };
    }
  }
  return null;
}

export const SESSION_CAP_MESSAGE = "Service is currently busy and cannot accept new sessions.";
