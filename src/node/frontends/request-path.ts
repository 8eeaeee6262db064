/**
 * The path every request takes through a node, around the router: a handler's
 * forward-to-primary outcome (a write on a backup) is forwarded to the primary and its answer
 * relayed, unless the request was itself forwarded or no other primary is known (503
 * PrimaryNotFound). An answer leaves with x-ms-ccf-transaction-id when it names its transaction,
 * or, for a 2xx answer that names none, with this node's last one; an error that names none
 * (a discarded write, an HttpError, a 503 after a failed forward) leaves without it, as in CCF,
 * so a failed write never carries another transaction's id. `finish` is the one place that
 * header is written: a relayed answer keeps what the primary's own request path wrote.
 */
import { formatTxId, type NodeId, type TxId } from "../../base/ids.js";
import { TXID_HEADER } from "../../http/ccf-headers.js";
import { errorBody, HttpErrorCode } from "../../http/errors.js";
import {
  isForward,
  type Router,
  type RpcOutcome,
  type RpcRequest,
  type RpcResponse,
} from "../../http/router.js";
import { dispatch, isThenable, type RpcLog, type RpcMiddleware } from "../../http/server.js";
import type { ForwardOutcome } from "../replication/forwarding.js";

export interface RequestPathDeps {
  readonly router: Router;
  readonly selfId: NodeId;
  /** The primary consensus knows of, or null. */
  readonly primary: () => NodeId | null;
  /** The last transaction of this node: what an answer without its own txId reflects. */
  readonly lastTxId: () => TxId;
  readonly forward: (primary: NodeId, request: RpcRequest) => Promise<ForwardOutcome>;
  readonly log: (line: string) => void;
}

export class RequestPath {
  private readonly forwardedLog: RpcLog;

  constructor(private readonly deps: RequestPathDeps) {
    this.forwardedLog = (message, error) =>
      deps.log(`[forwarded] ${message} ${String(error ?? "")}`);
  }

  /** The middleware of the node's rpc interfaces. */
  readonly middleware: RpcMiddleware = (request, next) => this.handle(request, next, false);

  /** Runs a request another node forwarded here (never forwarded again). */
  async dispatchForwarded(request: RpcRequest): Promise<RpcResponse> {
    const next = (r: RpcRequest) => dispatch(r, this.deps.router, this.forwardedLog);
    return this.handle(request, next, true);
  }

  /** Synchronous when the handler is (most are): no promise per request then. */
  private handle(
    request: RpcRequest,
    next: Parameters<RpcMiddleware>[1],
    forwarded: boolean,
  ): RpcResponse | Promise<RpcResponse> {
    const outcome = next(request);
    if (isThenable(outcome)) return outcome.then((o) => this.answer(request, o, forwarded));
    return this.answer(request, outcome, forwarded);
  }

  /** The answer to `outcome`: finished, or forwarded to the primary (asynchronously). */
  private answer(
    request: RpcRequest,
    outcome: RpcOutcome,
    forwarded: boolean,
  ): RpcResponse | Promise<RpcResponse> {
    if (!isForward(outcome)) return this.finish(outcome);
    return this.forwardToPrimary(request, forwarded);
  }

  private async forwardToPrimary(request: RpcRequest, forwarded: boolean): Promise<RpcResponse> {
    const primary = this.deps.primary();
    if (forwarded || primary === null || primary === this.deps.selfId) {
      return this.finish(unavailable("No primary is known to this node."));
    }
    if (request.session !== undefined) request.session.forwarded = true;
    const relayed = await this.deps.forward(primary, request);
    if (relayed.kind === "relayed") return relayed.response;
    return this.finish(unavailable(relayed.message));
  }

  /** The answer with its x-ms-ccf-transaction-id: its own txId, or (2xx) this node's last one. */
  private finish(response: RpcResponse): RpcResponse {
    const { status, body } = response;
    const success = status >= 200 && status < 300;
    if (response.txId === undefined && !success) return response;
    // A new headers object (handlers may share theirs), built by plain stores: this runs once
    // per request, and a spread or a computed key in a literal costs more.
    const headers: Record<string, string> = {};
    const given = response.headers;
    if (given !== undefined) {
      for (const name in given) headers[name] = given[name]!;
    }
    headers[TXID_HEADER] = formatTxId(response.txId ?? this.deps.lastTxId());
    return body === undefined ? { status, headers } : { status, headers, body };
  }
}

function unavailable(message: string): RpcResponse {
  return { status: 503, body: errorBody(HttpErrorCode.PrimaryNotFound, message) };
}
