/**
 * Reading a request body for the RPC server (server.ts): whole, or refused past the size limit
 * without being buffered, with the rest of an oversized body discarded for a while so the
 * client can read the 413 (see lingerAfterOversize).
 */
import type { IncomingMessage } from "node:http";

/** After a 413, how much more input is discarded, and for how long, before closing. */
const LINGER_BYTES = 1024 * 1024;
export const LINGER_MS = 2000;

const EMPTY_BODY = new Uint8Array(0);

export type BodyOutcome =
  | { readonly kind: "body"; readonly body: Uint8Array }
  | { readonly kind: "too-large" }
  | { readonly kind: "aborted" };
const EMPTY_BODY_OUTCOME: BodyOutcome = { kind: "body", body: EMPTY_BODY };
const TOO_LARGE: BodyOutcome = { kind: "too-large" };
const ABORTED: BodyOutcome = { kind: "aborted" };

/**
 * Reads the whole body, or stops at maxBodyBytes + 1 and switches the stream to discarding
 * (see lingerAfterOversize). Never buffers more than maxBodyBytes. `then` runs exactly once:
 * at once when there is no body or its declared length is too large, else from a stream event
 * (so it must not throw).
 */
export function readBody(
  req: IncomingMessage,
  maxBodyBytes: number,
  then: (body: BodyOutcome) => void,
): void {
  // A late 'error' (client reset) must never be unhandled; the 'close' path settles the read.
  req.on("error", destroyOnError);
  const declared = req.headers["content-length"];
  const chunked = req.headers["transfer-encoding"] !== undefined;
  if (!chunked && (declared === undefined || declared === "0")) {
    then(EMPTY_BODY_OUTCOME);
    return;
  }
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    lingerAfterOversize(req);
    then(TOO_LARGE);
    return;
  }
  // Listeners stay attached once the read is settled, and ignore what follows: removing them
  // would cost more than the events they see ('close' after 'end', data being discarded).
  const chunks: Uint8Array[] = [];
  let sizeBytes = 0;
  let settled = false;
  req.on("data", (chunk: Uint8Array) => {
    if (settled) return;
    sizeBytes += chunk.length;
    if (sizeBytes > maxBodyBytes) {
      settled = true;
      lingerAfterOversize(req);
      then(TOO_LARGE);
    } else {
      chunks.push(chunk);
    }
  });
  req.on("end", () => {
    if (settled) return;
    settled = true;
    then({ kind: "body", body: joinChunks(chunks, sizeBytes) });
  });
  req.on("close", () => {
    if (settled) return;
    settled = true;
    then(ABORTED);
  });
}

/** 'error' listener of every request (called with the request as `this`). */
function destroyOnError(this: IncomingMessage): void {
  this.destroy();
}

function joinChunks(chunks: readonly Uint8Array[], sizeBytes: number): Uint8Array {
  if (chunks.length === 1) {
    const only = chunks[0]!;
    return new Uint8Array(only.buffer, only.byteOffset, only.byteLength);
  }
  const out = new Uint8Array(sizeBytes);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/**
 * Discards the rest of an oversized body so the client can read the 413. Past LINGER_BYTES more
 * the connection is closed gracefully: our side ends (the 413 then FIN) while input is still
 * read and dropped, since destroying a socket with unread input sends a TCP reset that can
 * destroy the 413 before the client reads it. Still sending after LINGER_MS: destroyed.
 */
function lingerAfterOversize(req: IncomingMessage): void {
  let discardedBytes = 0;
  const socket = req.socket;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  const stop = (): void => clearTimeout(timer);
  req.on("data", (chunk: Uint8Array) => {
    discardedBytes += chunk.length;
    if (discardedBytes > LINGER_BYTES && socket.writable) {
      socket.end();
      socket.on("data", () => undefined);
    }
  });
  req.once("end", stop);
  socket.once("close", stop);
  req.resume();
}
