/**
 * Answers to input the HTTP parser rejected, or to a request that missed its time limit
 * (server.ts's `clientError` handler): a CCF error body, then the connection closes, after the
 * responses to requests pipelined before the bad one.
 */
import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { errorBody, HttpErrorCode, httpStatusOf } from "./errors.js";
import { LINGER_MS } from "./request-body.js";

/**
 * Answers input the HTTP parser rejected, or a request that missed its time limit (408). The
 * connection is in an unknown state afterwards, so it is always closed, and from now on nothing
 * more reaches the HTTP parser (a body completing later must not run a handler). Requests parsed
 * before the bad one on this connection (pipelined) are answered first: their responses go out,
 * in order, and only then the error, so the error is never read as the answer to an earlier,
 * good request.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  // Input is read and dropped until the client closes (see writeClientError for how long).
  socket.removeAllListeners("data");
  socket.on("data", () => undefined);
  socket.resume();
  afterPendingResponses(socket, () => writeClientError(err, socket));
}

/**
 * Runs `then` once every response to an earlier request on `socket` has been written. Node
 * attaches one response at a time to the socket (`_httpMessage`) and, when it finishes, the next
 * queued one, before any 'finish' listener added here runs; none attached means none pending.
 * When the attached response's request is itself incomplete, the bad bytes (or the time limit)
 * are its own: it is the one being answered, now.
 */
function afterPendingResponses(socket: Duplex, then: () => void): void {
  const inFlight = inFlightResponse(socket);
  if (inFlight === null || !inFlight.req.complete) {
    then();
    return;
  }
  inFlight.once("finish", () => afterPendingResponses(socket, then));
}

/** The response node has attached to the socket, if any (see afterPendingResponses). */
function inFlightResponse(socket: Duplex): ServerResponse | null {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

function writeClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // A response whose head is out cannot be followed by another: drop the connection instead.
  if (!socket.writable || inFlightResponse(socket)?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [code, message]: [HttpErrorCode, string] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [HttpErrorCode.RequestTimeout, REQUEST_TIMEOUT_MESSAGE]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [HttpErrorCode.RequestHeaderTooLarge, "HTTP request header is too large."]
        : [HttpErrorCode.InvalidInput, "Malformed HTTP request."];
  const status = httpStatusOf(code);
  const body = JSON.stringify(errorBody(code, message));
  socket.end(
    `HTTP/1.1 ${status} ${REASON_PHRASES[status] ?? "Bad Request"}\r\n` +
      `content-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  // A client still sending (a trickled body) holds the half-closed socket for LINGER_MS at most.
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
}

const REASON_PHRASES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
};

/** The 408's message: the request head or the whole request missed its time limit (limits.ts). */
const REQUEST_TIMEOUT_MESSAGE =
  "The HTTP request did not arrive in time; the connection is closed.";
