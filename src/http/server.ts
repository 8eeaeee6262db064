/**
 * The node's HTTPS RPC server (ccf-compatibility.md §3.1; style.md §9 on node:https):
 * node:https over TLS 1.2 and 1.3 with HTTP/1.1 keep-alive. Client certificates are
 * requested but optional (requestCert, rejectUnauthorized false): authentication is decided
 * later, per endpoint, from `callerCertDer`, never by the TLS layer.
 *
 * Owns: turning raw requests into RpcRequest, dispatching through the Router (and an optional
 * `onRequest` middleware), and writing RpcResponse with explicit content-length. Guarantees:
 *  - every error leaves as a CCF error body with the status of errors.ts's table; an
 *    unexpected exception is logged through `log` and answered 500 InternalError
 *    "Internal error.", never with a stack trace;
 *  - a body over maxBodyBytes is answered 413 RequestBodyTooLarge without being buffered (the
 *    declared content-length is checked before reading, then bytes are counted as they come);
 *    the rest is discarded, and if the client keeps sending past a linger budget the connection
 *    is closed. We linger instead of closing at once because closing a socket with unread input
 *    sends a TCP reset that can destroy the 413 before the client reads it;
 *  - malformed HTTP gets a 400 (431 for oversized headers) and the connection is closed, after
 *    the responses to any requests pipelined before it, in order; no request can crash the
 *    process.
 */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import { performance } from "node:perf_hooks";
import { listenAt, type HeldListener } from "./held-listener.js";
import { errorBody, HttpError, HttpErrorCode, httpStatusOf } from "./errors.js";
import {
  isForward,
  NO_PARAMS,
  responseForMiss,
  type RpcOutcome,
  type RpcRequest,
  type RpcSession,
  type RpcResponse,
  type Router,
} from "./router.js";
import {
  checkHeaders,
  checkLimits,
  DEFAULT_LIMITS,
  enforceLimits,
  serverOptionsOf,
  SESSION_CAP_MESSAGE,
  type ServerLimits,
} from "./limits.js";
import { readBody, type BodyOutcome } from "./request-body.js";
import { answerClientError } from "./client-error.js";
import { closer, DEFAULT_CLOSE_GRACE_MS } from "./server-close.js";
import { ConnectionSlicer, type TurnSlicer } from "./turn-slicer.js";

/**
 * Wraps every dispatch; `next` never throws or rejects (errors are already responses), and
 * answers synchronously when the handler does. The middleware decides what a forward-to-primary
 * outcome becomes; it may answer synchronously too (a request then needs no promise at all).
 */
export type RpcMiddleware = (
  request: RpcRequest,
  next: (request: RpcRequest) => RpcOutcome | Promise<RpcOutcome>,
) => RpcResponse | Promise<RpcResponse>;

export type RpcLog = (message: string, error?: unknown) => void;

/**
 * Told of every answer the server writes, for request metrics. Called on the request path, so
 * it must be cheap (no IO, no string building).
 */
export interface RequestObserver {
  /**
   * `template` is the matched route's (undefined when none matched or the request was refused
   * before routing); `elapsedMs` runs from the request's arrival to its answer being written.
   */
  onAnswered(method: string, template: string | undefined, status: number, elapsedMs: number): void;
}

export interface RpcServerOptions {
  readonly host: string;
  /** 0 picks a free port; the chosen one is RpcServer.port. */
  readonly port: number;
  /**
   * A socket already bound to host:port, to listen on instead of binding (a node binds its
   * interfaces before it writes anything: node/startup/listening-sockets.ts).
   */
  readonly socket?: HeldListener;
  /** The node's TLS certificate (endorsed by the service key) and its private key. */
  readonly certPem: string;
  readonly keyPem: string;
  /** CAs used to check client chains; informational only, since unknown clients are allowed. */
  readonly caPem?: string;
  /** Invariant: > 0. Larger bodies are answered 413 and never buffered. */
  readonly maxBodyBytes: number;
  readonly router: Router;
  readonly onRequest?: RpcMiddleware;
  /** Where unexpected errors go (default: stderr). */
  readonly log?: RpcLog;
  /** How long close() lets in-flight requests finish before cutting connections. */
  readonly closeGraceMs?: number;
  /** Session, header and time limits (limits.ts); unset fields take DEFAULT_LIMITS. */
  readonly limits?: Partial<ServerLimits>;
  /** Told of every answer written (request metrics). */
  readonly observer?: RequestObserver;
  /**
   * Bounds the handling run between two polls of the event loop (turn-slicer.ts); shared
   * by the node's interfaces. Without it, each request is handled in the read that completes it.
   */
  readonly slicer?: TurnSlicer;
  /**
   * Requests that skip the slicer's queue (status reads: a client waiting for commit sees it as
   * soon as the node knows it), unless an earlier request of the same connection still waits
   * there: a connection's requests always run in their order.
   */
  readonly urgent?: (request: RpcRequest) => boolean;
}

export interface RpcServer {
  readonly host: string;
  readonly port: number;
  /**
   * Stops accepting, closes idle connections, answers requests that arrive on open connections
   * 503 NodeCannotHandleRequest with `connection: close`, and closes each connection once its
   * in-flight request is answered; connections still busy after closeGraceMs are cut.
   */
  close(): Promise<void>;
}

const CLOSING_MESSAGE = "The node is stopping.";

const EMPTY_BODY = new Uint8Array(0);
/** A server whose handlers want the primary, but with no middleware that forwards. */
const NO_PRIMARY_RESPONSE: RpcResponse = {
  status: 503,
  body: errorBody(HttpErrorCode.PrimaryNotFound, "This request must run on the primary."),
};
const INTERNAL_ERROR_MESSAGE = "Internal error.";
const NO_OBSERVER: RequestObserver = { onAnswered: () => undefined };

function defaultLog(message: string, error?: unknown): void {
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error ?? "");
  process.stderr.write(`[http] ${message}${detail === "" ? "" : `: ${detail}`}\n`);
}

/**
 * The shortest time an idle HTTP keep-alive connection stays open: the default of
 * `idle_connection_timeout` is 60 s (DEFAULT_LIMITS), and a node may configure it lower.
 */
export const SERVER_IDLE_MS = 30_000;

export async function createRpcServer(options: RpcServerOptions): Promise<RpcServer> {
  if (!(options.maxBodyBytes > 0)) throw new RangeError("maxBodyBytes must be positive");
  const log = options.log ?? defaultLog;
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  checkLimits(limits);
  const server = createServer({
    ...serverOptionsOf(limits),
    cert: options.certPem,
    key: options.keyPem,
    ...(options.caPem !== undefined ? { ca: options.caPem } : {}),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.3",
    // TCP keep-alive probes, so dead peers on idle HTTP keep-alive connections are noticed.
    keepAlive: true,
    // Node's own check answers a bare 400 without a CCF body; handleRequest checks instead.
    requireHostHeader: false,
  });
  // Idle keep-alive connections are closed after limits.idleTimeoutMs; clients close theirs
  // sooner (CLIENT_IDLE_MS in cli/gov-client.ts), so a request never meets a closing socket.
  const overSoftLimit = enforceLimits(server, limits);
  const certs = new CallerCertCache();
  const router = options.router;
  const context: RequestContext = {
    options,
    certs,
    sessions: new WeakMap(),
    slicing: options.slicer === undefined ? undefined : new ConnectionSlicer(options.slicer),
    log,
    limits,
    overSoftLimit,
    observer: options.observer ?? NO_OBSERVER,
    dispatch: (request) => dispatch(request, router, log),
    closing: false,
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    try {
      handleRequest(req, res, context);
    } catch (e) {
      requestFailed(res, log, e);
    }
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) =>
    answerClientError(err, socket),
  );
  // After the listen, whose failure rejects: the operator reads it once, from the caller.
  const port = await listenAt(server, {
    host: options.host,
    port: options.port,
    held: options.socket,
  });
  server.on("error", (e: unknown) => log("server error", e));
  return {
    host: options.host,
    port,
    close: closer(server, context, options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS),
  };
}

/** DER of each TLS connection's client certificate, looked up once per connection. */
class CallerCertCache {
  private readonly bySocket = new WeakMap<object, Uint8Array | null>();

  get(socket: TLSSocket): Uint8Array | null {
    let der = this.bySocket.get(socket);
    if (der === undefined) {
      // getPeerCertificate(false) gives the leaf's DER as `raw`, without building the chain.
      const raw = (socket.getPeerCertificate(false) as { raw?: Uint8Array }).raw;
      der = raw !== undefined && raw.length > 0 ? new Uint8Array(raw) : null;
      this.bySocket.set(socket, der);
    }
    return der;
  }
}

type Target = { path: string; query: string };

/** Splits the request target; absolute-form targets are reduced to their path and query. */
function parseTarget(url: string): Target | null {
  if (!url.startsWith("/")) {
    try {
      const parsed = new URL(url);
      url = `${parsed.pathname}${parsed.search}`;
    } catch (e) {
      if (e instanceof TypeError) return null;
      throw e;
    }
  }
  const q = url.indexOf("?");
  return q < 0 ? { path: url, query: "" } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

function flattenHeaders(raw: IncomingMessage["headers"]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name in raw) {
    const value = raw[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

/** What every request of one server shares (built once, so requests allocate no closures). */
interface RequestContext {
  readonly options: RpcServerOptions;
  readonly certs: CallerCertCache;
  /** Each client connection's RpcSession, made at its first request. */
  readonly sessions: WeakMap<Socket, RpcSession>;
  /** The slicer, keeping each connection's requests in order (undefined: no slicer). */
  readonly slicing: ConnectionSlicer<Socket> | undefined;
  readonly log: RpcLog;
  readonly limits: ServerLimits;
  /** True for a request whose connection was accepted past the soft session limit. */
  readonly overSoftLimit: (req: IncomingMessage) => boolean;
  readonly observer: RequestObserver;
  /** dispatch() bound to the server's router and log. */
  readonly dispatch: (request: RpcRequest) => RpcOutcome | Promise<RpcOutcome>;
  /** Set by close() (server-close.ts): requests are refused, responses close connections. */
  closing: boolean;
}

/**
 * Runs `step` of a request's handling, which converts every failure into a response; an
 * exception reaching here is a bug, logged, and the connection is dropped (never the process).
 */
function guarded(res: ServerResponse, log: RpcLog, step: () => void): void {
  try {
    step();
  } catch (e) {
    requestFailed(res, log, e);
  }
}

function requestFailed(res: ServerResponse, log: RpcLog, e: unknown): void {
  log("request handling failed", e);
  res.destroy();
}

/**
 * Checks the request head, reads the body and answers. Callbacks rather than promises: a
 * request whose handler answers synchronously is answered within the event its body completes
 * in, without microtask hops.
 */
function handleRequest(req: IncomingMessage, res: ServerResponse, context: RequestContext): void {
  const startMs = performance.now();
  const { options, log } = context;
  const target = checkHead(req, res, context);
  if (target === null) {
    observeRefusal(req, res, context, startMs);
    return;
  }
  // The callback may run from an event listener, outside `guarded`: it guards itself.
  readBody(req, options.maxBodyBytes, (body) => {
    try {
      afterBody(req, res, context, target, body, startMs);
    } catch (e) {
      requestFailed(res, log, e);
    }
  });
}

/** The request's target, or null when its head was refused (and answered). */
function checkHead(
  req: IncomingMessage,
  res: ServerResponse,
  context: RequestContext,
): Target | null {
  const log = context.log;
  if (context.closing) {
    sendClosing(res, HttpErrorCode.NodeCannotHandleRequest, CLOSING_MESSAGE, log);
    return null;
  }
  if (context.overSoftLimit(req)) {
    sendClosing(res, HttpErrorCode.SessionCapExhausted, SESSION_CAP_MESSAGE, log);
    return null;
  }
  const overLimit = checkHeaders(req, context.limits);
  if (overLimit !== null) {
    sendClosing(res, overLimit.code, overLimit.message, log);
    return null;
  }
  const target = parseTarget(req.url ?? "/");
  if (target === null) {
    sendError(res, HttpErrorCode.InvalidInput, "Malformed request target.", log);
    return null;
  }
  if (req.httpVersion === "1.1" && req.headers.host === undefined) {
    // RFC 9112 §3.2: a server must answer 400 to an HTTP/1.1 request without Host.
    sendError(res, HttpErrorCode.InvalidInput, "Missing Host header in HTTP/1.1 request.", log);
    return null;
  }
  return target;
}

/** Tells the observer of an answer written before routing (no template). */
function observeRefusal(
  req: IncomingMessage,
  res: ServerResponse,
  context: RequestContext,
  startMs: number,
): void {
  if (!res.headersSent) return;
  const elapsedMs = performance.now() - startMs;
  context.observer.onAnswered(req.method ?? "GET", undefined, res.statusCode, elapsedMs);
}

/** Answers a request whose head passed the checks, once its body is read (or refused). */
function afterBody(
  req: IncomingMessage,
  res: ServerResponse,
  context: RequestContext,
  target: Target,
  body: BodyOutcome,
  startMs: number,
): void {
  const { options, log } = context;
  if (body.kind === "aborted") return;
  if (body.kind === "too-large") {
    const message = `HTTP request body is too large (max size allowed: ${options.maxBodyBytes})`;
    sendError(res, HttpErrorCode.RequestBodyTooLarge, message, log);
    observeRefusal(req, res, context, startMs);
    return;
  }
  const request: RpcRequest = {
    method: req.method ?? "GET",
    path: target.path,
    query: target.query,
    queryParams: new URLSearchParams(target.query),
    headers: flattenHeaders(req.headers),
    body: body.body,
    params: NO_PARAMS,
    callerCertDer: context.certs.get(req.socket as TLSSocket),
    session: sessionOf(context.sessions, req.socket),
    template: undefined,
  };
  const slicing = context.slicing;
  if (slicing === undefined) answer(res, request, context, startMs);
  else {
    const urgent = context.options.urgent?.(request) === true;
    slicing.submit(req.socket, urgent, () =>
      guarded(res, log, () => answer(res, request, context, startMs)),
    );
  }
}

function sessionOf(sessions: WeakMap<Socket, RpcSession>, socket: Socket): RpcSession {
  let session = sessions.get(socket);
  if (session === undefined) {
    session = { forwarded: false };
    sessions.set(socket, session);
  }
  return session;
}

/** Runs `request` through the middleware (or straight to the router) and sends the answer. */
function answer(
  res: ServerResponse,
  request: RpcRequest,
  context: RequestContext,
  startMs: number,
): void {
  const { log } = context;
  const middleware = context.options.onRequest;
  let produced: RpcOutcome | Promise<RpcOutcome>;
  try {
    produced =
      middleware === undefined ? context.dispatch(request) : middleware(request, context.dispatch);
  } catch (e) {
    produced = failureResponse(e, request, log);
  }
  if (!isThenable(produced)) {
    sendAnswer(res, request, answerOf(produced), context, startMs);
    return;
  }
  produced.then(
    (outcome) =>
      guarded(res, log, () => sendAnswer(res, request, answerOf(outcome), context, startMs)),
    (e: unknown) =>
      guarded(res, log, () => {
        sendAnswer(res, request, failureResponse(e, request, log), context, startMs);
      }),
  );
}

/**
 * Sends a request's answer and tells the observer; after close() its connection closes once
 * the answer is out.
 */
function sendAnswer(
  res: ServerResponse,
  request: RpcRequest,
  response: RpcResponse,
  context: RequestContext,
  startMs: number,
): void {
  if (context.closing) res.shouldKeepAlive = false;
  sendResponse(res, response, context.log);
  if (!res.headersSent) return;
  const elapsedMs = performance.now() - startMs;
  context.observer.onAnswered(request.method, request.template, res.statusCode, elapsedMs);
}

/**
 * Routes `request` and runs its handler (errors become CCF error responses); never rejects.
 */
export function dispatchRequest(
  request: RpcRequest,
  router: Router,
  log: RpcLog,
): Promise<RpcOutcome> {
  return Promise.resolve(dispatch(request, router, log));
}

/**
 * dispatchRequest without the promise when the handler answers synchronously: never throws
 * or rejects, and a synchronous handler's answer comes back as it is.
 */
export function dispatch(
  request: RpcRequest,
  router: Router,
  log: RpcLog,
): RpcOutcome | Promise<RpcOutcome> {
  const match = router.match(request.method, request.path);
  if (match.kind !== "handler") return responseForMiss(match, request.path);
  request.template = match.template;
  const params = match.params;
  // Templates without parameters match with the shared NO_PARAMS: the request can be reused.
  const routed: RpcRequest =
    params === NO_PARAMS && request.params === NO_PARAMS ? request : { ...request, params };
  let produced: RpcOutcome | Promise<RpcOutcome>;
  try {
    produced = match.handler(routed);
  } catch (e) {
    return failureResponse(e, routed, log);
  }
  if (!isThenable(produced)) return produced;
  return Promise.resolve(produced).catch((e: unknown) => failureResponse(e, routed, log));
}

/** Whether `value` is a promise (or promise-like) rather than a settled answer. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { then?: unknown }).then === "function"
  );
}

/** An HttpError as its response; anything else is logged and answered 500. */
function failureResponse(e: unknown, request: RpcRequest, log: RpcLog): RpcResponse {
  if (e instanceof HttpError) return errorResponse(e);
  log(`unexpected error in ${request.method} ${request.path}`, e);
  return errorResponse(new HttpError(HttpErrorCode.InternalError, INTERNAL_ERROR_MESSAGE));
}

/** The answer to an outcome where nothing forwards: "run on the primary" becomes a 503. */
export function answerOf(outcome: RpcOutcome): RpcResponse {
  return isForward(outcome) ? NO_PRIMARY_RESPONSE : outcome;
}

export function errorResponse(error: HttpError): RpcResponse {
  return { status: error.status, headers: error.headers, body: error.body };
}

function sendError(res: ServerResponse, code: HttpErrorCode, message: string, log: RpcLog): void {
  sendResponse(res, { status: httpStatusOf(code), body: errorBody(code, message) }, log);
}

/** An error after which the connection is closed; the request body is not read. */
function sendClosing(res: ServerResponse, code: HttpErrorCode, message: string, log: RpcLog): void {
  const response = { status: httpStatusOf(code), headers: { connection: "close" } };
  sendResponse(res, { ...response, body: errorBody(code, message) }, log);
}

/**
 * A response as node writes it. A text body stays a string: node then joins the head and the
 * body into one string chunk, where bytes would need a Buffer of their own and one more chunk in
 * the socket's gathered write.
 */
type Encoded = {
  status: number;
  headers: Record<string, string | number>;
  body: Uint8Array | string;
};

/** Status 204 and 304 carry no body and, per RFC 9110, no content-length. */
function hasNoBody(status: number): boolean {
  return status === 204 || status === 304;
}

function encodeResponse(response: RpcResponse): Encoded {
  const headers: Record<string, string | number> = {};
  const given = response.headers;
  if (given !== undefined) {
    for (const name in given) headers[name.toLowerCase()] = given[name]!;
  }
  const raw = response.body;
  let body: Uint8Array | string;
  let contentType: string | null;
  if (raw === undefined || hasNoBody(response.status)) {
    body = EMPTY_BODY;
    contentType = null;
  } else if (raw instanceof Uint8Array) {
    body = raw;
    contentType = "application/octet-stream";
  } else if (typeof raw === "string") {
    body = raw;
    contentType = "text/plain";
  } else {
    const text = JSON.stringify(raw) as string | undefined;
    if (text === undefined) throw new TypeError("response body is not JSON-serialisable");
    body = text;
    contentType = "application/json";
  }
  if (contentType !== null && headers["content-type"] === undefined) {
    headers["content-type"] = contentType;
  }
  if (hasNoBody(response.status)) delete headers["content-length"];
  else headers["content-length"] = typeof body === "string" ? Buffer.byteLength(body) : body.length;
  return { status: response.status, headers, body };
}

function internalErrorEncoded(): Encoded {
  return encodeResponse({
    status: httpStatusOf(HttpErrorCode.InternalError),
    body: errorBody(HttpErrorCode.InternalError, INTERNAL_ERROR_MESSAGE),
  });
}

/** Writes a response; a response node cannot write (bad status or header) becomes a 500. */
function sendResponse(res: ServerResponse, response: RpcResponse, log: RpcLog): void {
  if (res.writableEnded || res.destroyed) return;
  let encoded: Encoded;
  try {
    encoded = encodeResponse(response);
    res.writeHead(encoded.status, encoded.headers);
  } catch (e) {
    log(`cannot write a ${String(response.status)} response`, e);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    encoded = internalErrorEncoded();
    res.writeHead(encoded.status, encoded.headers);
  }
  res.end(encoded.body);
}
