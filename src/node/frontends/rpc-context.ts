/**
 * Runs endpoint handlers inside KV transactions through the node's pipeline and shapes their
 * answers as CCF does: writes are committed only when the handler answers 2xx (the transaction
 * is discarded otherwise, and for any HttpError), a committed answer names the transaction it
 * reflects (`txId`: the one a write was assigned, or the last one a read may have observed; the
 * request path writes it as x-ms-ccf-transaction-id) while a discarded one names none (as CCF,
 * which sets the TxID only after a successful commit), a write on a backup becomes "forward to
 * the primary", and an exhausted conflict retry is 503.
 */
import type { TxId } from "../../base/ids.js";
import type { Tx } from "../../kv/tx.js";
import { HttpError, HttpErrorCode, type JsonBody } from "../../http/errors.js";
import {
  FORWARD_TO_PRIMARY,
  type RpcOutcome,
  type RpcRequest,
  type RpcResponse,
} from "../../http/router.js";
import type { ExecuteOutcome, TxPipeline } from "../pipeline/tx-pipeline.js";

function isSuccess(response: RpcResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

/** `response` naming `txId` (a new object: handlers may share responses). */
function withTxId(response: RpcResponse, txId: TxId): RpcResponse {
  // Fixed-shape literals rather than a spread: this runs once per request.
  const { status, headers, body } = response;
  if (headers === undefined) {
    return body === undefined ? { status, txId } : { status, body, txId };
  }
  return body === undefined ? { status, headers, txId } : { status, headers, body, txId };
}

/**
 * Executes `handler` in a transaction. A 2xx answer (or one `commits` accepts) commits its
 * writes (if any); any other answer, or a thrown HttpError, discards them.
 */
export function runInTx(
  pipeline: TxPipeline,
  handler: (tx: Tx, setClaims: (digest: Uint8Array) => void) => RpcResponse,
  /** Whether the answer's writes commit; CCF's default is a 2xx answer. */
  commits: (response: RpcResponse) => boolean = isSuccess,
): RpcOutcome {
  let claims: Uint8Array | undefined;
  // Anonymous arrows in place: a named closure costs a call to name it under tsx (keepNames).
  const outcome = pipeline.execute(
    (tx) =>
      handler(tx, (digest) => {
        claims = digest;
      }),
    () => claims,
    commits,
  );
  return answerOf(pipeline, outcome);
}

/** The answer to a request whose handler ran in `pipeline.execute` with `outcome`. */
export function answerOf(pipeline: TxPipeline, outcome: ExecuteOutcome<RpcResponse>): RpcOutcome {
  switch (outcome.kind) {
    case "committed":
      return withTxId(outcome.result, outcome.txId);
    case "read-only":
      return withTxId(outcome.result, { view: pipeline.lastTxId.view, seqno: outcome.readSeqno });
    case "discarded":
      // No transaction of its own, and any other one's id would be a lie (CCF sends none).
      return outcome.result;
    case "not-primary":
      return FORWARD_TO_PRIMARY;
    case "too-many-pending":
      throw new HttpError(
        HttpErrorCode.TooManyPendingTransactions,
        `Too many transactions (${outcome.pending}) are waiting to be committed; retry later.`,
      );
    case "storage-fault":
      // The node is stopping (SECURITY.md, "Disk faults"): the write was not kept.
      throw new HttpError(
        HttpErrorCode.TransactionReplicationFailed,
        "The node cannot write its ledger and is stopping; retry on another node.",
      );
    case "conflict":
      throw new HttpError(
        HttpErrorCode.TransactionCommitAttemptsExceedLimit,
        `Transaction continued to conflict after ${outcome.attempts} attempts.`,
      );
  }
}

/** A JSON response. */
export function json(body: JsonBody, status = 200): RpcResponse {
  return { status, body };
}

/** What consensus says of this node, for the forwarding decision. */
interface LeaderView {
  readonly isLeader: boolean;
  readonly leader: string | null;
}

/**
 * Whether an endpoint CCF marks ForwardingRequired::Sometimes forwards `request` before it runs:
 * on a backup that knows a primary, once the request's connection has had a request forwarded
 * (RpcSession.forwarded), so that a client writing through a backup then reads what the primary
 * has, its own writes included. With no primary known, it runs here rather than fail.
 */
export function forwardsForSession(request: RpcRequest, raft: LeaderView): boolean {
  return request.session?.forwarded === true && !raft.isLeader && raft.leader !== null;
}

/**
 * Whether an endpoint with CCF's `forwarding_required` forwards `request` to the primary before
 * it runs: "always" on any backup (with no primary known, the request path answers 503),
 * "sometimes" as forwardsForSession says, "never" not at all.
 */
export function forwardsBeforeRunning(
  required: "always" | "sometimes" | "never",
  request: RpcRequest,
  raft: LeaderView,
): boolean {
  if (required === "always") return !raft.isLeader;
  return required === "sometimes" && forwardsForSession(request, raft);
}
