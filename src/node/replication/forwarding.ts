/**
 * Forwarding (ccf-compatibility.md §7.3): a backup that must write sends the caller's request, with
 * the caller's certificate, to the primary over the node-to-node channel and relays the primary's
 * answer. The primary runs a forwarded request exactly as if it had arrived on its own interface,
 * except that it never forwards it again.
 *
 * Owns: the table of requests waiting for an answer. Invariant: every entry is removed exactly
 * once, by its answer or by its timeout.
 */
import { utf8 } from "../../base/bytes.js";
import type { NodeId } from "../../base/ids.js";
import { errorBody, HttpErrorCode } from "../../http/errors.js";
import type { RpcRequest, RpcResponse } from "../../http/router.js";
import type { ForwardedResponse, N2nMessage } from "./n2n/messages.js";

export interface ForwarderDeps {
  readonly send: (peer: NodeId, message: N2nMessage) => boolean;
  readonly selfAddress: () => string;
  /** Runs a forwarded request on this node (the primary). */
  readonly dispatch: (request: RpcRequest) => Promise<RpcResponse>;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
}

/**
 * How a forwarded request ended: the primary's answer, relayed as it sent it (its
 * x-ms-ccf-transaction-id included), or no answer, and why (the caller answers 503).
 */
export type ForwardOutcome =
  | { readonly kind: "relayed"; readonly response: RpcResponse }
  | { readonly kind: "unavailable"; readonly message: string };

interface Waiting {
  readonly primary: NodeId;
  readonly resolve: (outcome: ForwardOutcome) => void;
  readonly timer: NodeJS.Timeout;
}

const STOPPING = "The node is stopping.";

function unavailable(message: string): ForwardOutcome {
  return { kind: "unavailable", message };
}

/** The answer a primary sends back when running a forwarded request failed unexpectedly. */
const INTERNAL_ERROR: RpcResponse = {
  status: 500,
  body: errorBody(HttpErrorCode.InternalError, "Internal error."),
};

/** The bytes and content type a response would go out with (the relayed form). */
export function encodeForwardedResponse(response: RpcResponse): ForwardedResponse {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(response.headers ?? {})) headers[k.toLowerCase()] = v;
  const raw = response.body;
  let body: Uint8Array;
  let type: string | null = null;
  if (raw === undefined) body = new Uint8Array(0);
  else if (raw instanceof Uint8Array) [body, type] = [raw, "application/octet-stream"];
  else if (typeof raw === "string") [body, type] = [utf8(raw), "text/plain"];
  else [body, type] = [utf8(JSON.stringify(raw)), "application/json"];
  if (type !== null && headers["content-type"] === undefined) headers["content-type"] = type;
  return { status: response.status, headers, body };
}

export class Forwarder {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  /** Set by close(): nothing more is forwarded. */
  private closed = false;
  readonly stats = { forwarded: 0, served: 0, timedOut: 0 };

  constructor(private readonly deps: ForwarderDeps) {}

  /** Sends `request` to `primary` and resolves with its answer, or why there is none. */
  forward(primary: NodeId, request: RpcRequest): Promise<ForwardOutcome> {
    if (this.closed) return Promise.resolve(unavailable(STOPPING));
    const id = this.nextId++;
    const sent = this.deps.send(primary, {
      kind: "forward_request",
      fromAddress: this.deps.selfAddress(),
      id,
      request: {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        body: request.body,
        callerCertDer: request.callerCertDer,
      },
    });
    if (!sent) {
      return Promise.resolve(unavailable("Could not forward the request to the primary."));
    }
    this.stats.forwarded++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.stats.timedOut++;
        resolve(
          unavailable(
            `The primary did not answer the forwarded request within ${this.deps.timeoutMs} ms.`,
          ),
        );
      }, this.deps.timeoutMs);
      timer.unref();
      this.waiting.set(id, { primary, resolve, timer });
    });
  }

  /** A forward_request or forward_response from a peer. */
  onMessage(from: NodeId, message: N2nMessage): void {
    if (message.kind === "forward_response") {
      const waiting = this.waiting.get(message.id);
      if (waiting === undefined) return; // answered after its timeout
      this.waiting.delete(message.id);
      clearTimeout(waiting.timer);
      const r = message.response;
      const response = { status: r.status, headers: r.headers, body: r.body };
      waiting.resolve({ kind: "relayed", response });
      return;
    }
    if (message.kind !== "forward_request") return;
    this.stats.served++;
    const r = message.request;
    const request: RpcRequest = {
      ...r,
      queryParams: new URLSearchParams(r.query),
      params: {},
    };
    void this.deps.dispatch(request).then(
      (response) => this.reply(from, message.id, response),
      (e: unknown) => {
        this.deps.log(`forwarded request failed: ${String(e)}`);
        this.reply(from, message.id, INTERNAL_ERROR);
      },
    );
  }

  private reply(to: NodeId, id: number, response: RpcResponse): void {
    this.deps.send(to, {
      kind: "forward_response",
      fromAddress: this.deps.selfAddress(),
      id,
      response: encodeForwardedResponse(response),
    });
  }

  /**
   * The primary changed: requests waiting on `primary` get 503 now rather than at their timeout
   * (whether the old primary executed them is unknown; clients check with GET /tx).
   */
  abandon(primary: NodeId): void {
    this.answerWaiting((w) => w.primary === primary, "The primary changed.");
  }

  /** Answers every waiting request, and those forwarded from now on (node stopping). */
  close(): void {
    this.closed = true;
    this.answerWaiting(() => true, STOPPING);
  }

  private answerWaiting(which: (w: Waiting) => boolean, message: string): void {
    for (const [id, w] of this.waiting) {
      if (!which(w)) continue;
      clearTimeout(w.timer);
      w.resolve(unavailable(message));
      this.waiting.delete(id);
    }
  }
}
