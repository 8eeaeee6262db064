/**
 * A node's connection to one app server (ADR 0005): a long-lived mutual TLS connection (the
 * node presents its service-endorsed certificate; the server's must chain to the row's ca_cert,
 * or to the service certificate), `hello` with the package id, and the server's bundle checked
 * against it (SHA-256 of the bytes == package id). Then calls run over it, many at a time, each
 * with its own id: the server's `need`s are answered synchronously by the caller's `onNeed`, its
 * `result` or `failed` settles the call.
 *
 * Faults: while the connection is down, calls fail at once with 503 AppServiceUnavailable (or
 * AppServicePackageMismatch when the server serves another package); a call not settled within
 * its deadline fails with 504 AppServiceTimeout and its late answer is dropped; a closed
 * connection fails every call in progress with 503. Reconnects back off from RETRY_INITIAL_MS
 * doubling to RETRY_MAX_MS, for as long as the row exists; a restarted server is used again.
 *
 * Owns the socket, the reconnect timer and the calls in progress (at most CALLS_MAX). After
 * close() nothing of it is alive. Nothing here touches the store: onNeed does, synchronously.
 */
import { connect, type TLSSocket } from "node:tls";
import { fromUtf8, toHex } from "../../base/bytes.js";
import { assert } from "../../base/assert.js";
import { encodeFrame, FrameDecoder, FRAME_PAYLOAD_MAX_BYTES } from "../../base/frames.js";
import { sha256 } from "../../crypto/hash.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import { JsAppError, parseBundle, type JsAppBundle } from "../../js/app-bundle.js";
import type { AppServiceRow } from "../../gov/app-services.js";
import {
  AppServiceError,
  decodeServerMessage,
  encodeAppMessage,
  type CallMessage,
  type NeedMessage,
  type NodeMessage,
  type ResultMessage,
  type ServerMessage,
  type Values,
} from "../../appservice/messages.js";

export const RETRY_INITIAL_MS = 100;
export const RETRY_MAX_MS = 2000;
/** Calls in progress on one connection; more are refused with 503. */
export const CALLS_MAX = 4096;

/** The node's TLS identity, read at each connect (a joiner's certificate is endorsed later). */
export interface NodeTlsIdentity {
  readonly certPem: string;
  readonly keyPem: string;
  readonly serviceCertPem: string;
}

export type ConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "ready" }
  | { readonly kind: "down"; readonly reason: string }
  | { readonly kind: "mismatch"; readonly reason: string };

export type CallAnswer = ResultMessage | Extract<ServerMessage, { t: "failed" }>;

interface Pending {
  readonly onNeed: (need: NeedMessage) => Values;
  readonly resolve: (answer: CallAnswer) => void;
  readonly reject: (error: HttpError) => void;
  readonly timer: NodeJS.Timeout;
}

export interface ConnectionDeps {
  readonly identity: () => NodeTlsIdentity;
  /** A verified bundle arrived (on every connect). */
  readonly onBundle: (bundle: JsAppBundle) => void;
  readonly log: (line: string) => void;
}

export class AppServiceConnection {
  private socket: TLSSocket | null = null;
  private state: ConnectionState = { kind: "connecting" };
  private retryMs = RETRY_INITIAL_MS;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    readonly row: AppServiceRow,
    private readonly deps: ConnectionDeps,
  ) {
    this.connect();
  }

  get status(): ConnectionState {
    return this.state;
  }

  /** Sends a call and waits for its result; rejects with a 503 or 504 HttpError. */
  call(
    message: Omit<CallMessage, "id">,
    timeoutMs: number,
    onNeed: (need: NeedMessage) => Values,
  ): Promise<CallAnswer> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = this.nextId++;
    const frame = frameOf({ ...message, id });
    if (frame === null) return Promise.reject(tooLarge("request"));
    return new Promise<CallAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new HttpError(
            HttpErrorCode.AppServiceTimeout,
            `The app service at ${this.row.address} did not answer within ${timeoutMs} ms.`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { onNeed, resolve, reject, timer });
      this.socket?.write(frame);
    });
  }

  private refusal(): HttpError | null {
    const { address, packageId } = this.row;
    switch (this.state.kind) {
      case "ready":
        if (this.pending.size < CALLS_MAX) return null;
        return new HttpError(
          HttpErrorCode.AppServiceUnavailable,
          `The app service at ${address} has ${CALLS_MAX} calls in progress; retry later.`,
        );
      case "mismatch":
        return new HttpError(
          HttpErrorCode.AppServicePackageMismatch,
          `The app service at ${address} does not serve package ${packageId}: ${this.state.reason}`,
        );
      case "connecting":
      case "down":
        return new HttpError(
          HttpErrorCode.AppServiceUnavailable,
          `The app service at ${address} is unavailable` +
            (this.state.kind === "down" ? `: ${this.state.reason}` : " (connecting)."),
        );
    }
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.socket?.destroy();
    this.socket = null;
    this.failAll("the app service was removed");
  }

  /** Sends a message known to fit in a frame (hello). */
  private send(message: NodeMessage): void {
    const frame = frameOf(message);
    assert(frame !== null, `a ${message.t} message fits in a frame`);
    this.socket?.write(frame);
  }

  private connect(): void {
    if (this.closed) return;
    const identity = this.deps.identity();
    const [host, port] = splitAddress(this.row.address);
    // A mismatch stands until a server proves it serves the package; down stays down.
    const socket = connect({
      host,
      port,
      cert: identity.certPem,
      key: identity.keyPem,
      ca: this.row.caCert ?? identity.serviceCertPem,
      // The chain is what is checked: the address may be an IP the certificate does not name.
      checkServerIdentity: () => undefined,
      minVersion: "TLSv1.3",
    });
    // Small request/answer frames: Nagle's algorithm would hold each for a delayed ACK.
    socket.setNoDelay(true);
    this.socket = socket;
    const decoder = new FrameDecoder();
    socket.on("secureConnect", () => {
      this.send({ t: "hello", package_id: this.row.packageId });
    });
    socket.on("data", (chunk: Buffer) => {
      for (const event of decoder.push(new Uint8Array(chunk))) {
        if (this.socket !== socket) return;
        if (event.kind === "oversized") {
          this.drop(socket, `a frame of ${event.declaredBytes} bytes`);
          return;
        }
        this.onFrame(socket, event.payload);
      }
    });
    socket.on("error", (err) => this.drop(socket, err.message));
    socket.on("close", () => this.drop(socket, "the connection closed"));
  }

  private onFrame(socket: TLSSocket, payload: Uint8Array): void {
    let message: ServerMessage;
    try {
      message = decodeServerMessage(payload);
    } catch (err: unknown) {
      if (!(err instanceof AppServiceError)) throw err;
      this.drop(socket, err.message);
      return;
    }
    switch (message.t) {
      case "bundle":
        this.onBundle(socket, message.bundle);
        return;
      case "error":
        this.mismatch(socket, `${message.code}: ${message.message}`);
        return;
      case "need": {
        this.onNeed(message);
        return;
      }
      case "result":
      case "failed": {
        const pending = this.pending.get(message.id);
        if (pending === undefined) return; // timed out: the late answer is dropped
        this.pending.delete(message.id);
        clearTimeout(pending.timer);
        pending.resolve(message);
        return;
      }
    }
  }

  private onNeed(need: NeedMessage): void {
    const pending = this.pending.get(need.id);
    if (pending === undefined) return;
    let values: Values;
    try {
      values = pending.onNeed(need);
    } catch (err: unknown) {
      if (!(err instanceof HttpError)) throw err;
      this.settle(need.id, err);
      return;
    }
    const frame = frameOf({ t: "values", id: need.id, ...values });
    if (frame === null) {
      this.settle(need.id, tooLarge("state the app service asked for"));
      return;
    }
    this.socket?.write(frame);
  }

  /** Ends call `id` with `error` (the call is forgotten: a late answer is dropped). */
  private settle(id: number, error: HttpError): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  private onBundle(socket: TLSSocket, bytes: Uint8Array): void {
    const digest = toHex(sha256(bytes));
    if (digest !== this.row.packageId) {
      this.mismatch(socket, `it sent a bundle whose SHA-256 is ${digest}`);
      return;
    }
    let bundle: JsAppBundle;
    try {
      bundle = parseBundle(JSON.parse(fromUtf8(bytes)));
    } catch (err: unknown) {
      if (!(err instanceof JsAppError || err instanceof SyntaxError || err instanceof TypeError)) {
        throw err;
      }
      this.mismatch(socket, `its bundle is invalid: ${err.message}`);
      return;
    }
    this.state = { kind: "ready" };
    this.retryMs = RETRY_INITIAL_MS;
    this.deps.log(`app service ${this.row.packageId} at ${this.row.address} is ready`);
    this.deps.onBundle(bundle);
  }

  /** The server serves something else: keep trying (it may be replaced), but say so. */
  private mismatch(socket: TLSSocket, reason: string): void {
    this.drop(socket, reason, { kind: "mismatch", reason });
  }

  private drop(socket: TLSSocket, reason: string, state?: ConnectionState): void {
    if (this.socket !== socket) return;
    this.socket = null;
    socket.destroy();
    this.state = state ?? { kind: "down", reason };
    this.deps.log(`app service ${this.row.packageId} at ${this.row.address}: ${reason}`);
    this.failAll(reason);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, this.retryMs);
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
  }

  private failAll(reason: string): void {
    for (const [id, pending] of this.pending) {
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(
        new HttpError(
          HttpErrorCode.AppServiceUnavailable,
          `The app service at ${this.row.address} is unavailable: ${reason}`,
        ),
      );
    }
  }
}

/** The frame of `message`, or null when it exceeds FRAME_PAYLOAD_MAX_BYTES. */
function frameOf(message: NodeMessage): Uint8Array | null {
  const payload = encodeAppMessage(message);
  return payload.byteLength > FRAME_PAYLOAD_MAX_BYTES ? null : encodeFrame(payload);
}

function tooLarge(what: string): HttpError {
  return new HttpError(
    HttpErrorCode.InternalError,
    `The ${what} exceeds the app service frame limit of ${FRAME_PAYLOAD_MAX_BYTES} bytes.`,
  );
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  return [host, Number(address.slice(at + 1))];
}
