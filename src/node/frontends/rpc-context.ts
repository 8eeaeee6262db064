/**
 * Runs endpoint handlers inside KV transactions through the node's pipeline and shapes their
 * answers as CCF does: writes are committed only when the handler answers 2xx (the transaction
 * is discarded otherwise, and for any HttpError), every response carries
 * `x-ms-ccf-transaction-id` (the txId a write was assigned, or the last txId a read may have
 * observed), and an exhausted conflict retry is 503.
 */
import { formatTxId, type TxId } from "../../base/ids.js";
import type { Tx } from "../../kv/tx.js";
import { HttpError, HttpErrorCode, type JsonBody } from "../../http/errors.js";
import type { RpcResponse } from "../../http/router.js";
import type { TxPipeline } from "../pipeline/tx-pipeline.js";

export const TXID_HEADER = "x-ms-ccf-transaction-id";
/**
 * Internal marker on the answer to a write executed on a backup: the node's request middleware
 * forwards the request to the primary instead of answering (it never reaches a client).
 */
export const FORWARD_HEADER = "x-consortia-forward-to-primary";

/** Thrown inside a transaction to discard it and answer with `response`. */
class Discard {
  constructor(readonly response: RpcResponse) {}
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** `response` with the txId header added (a new object: handlers may share responses). */
function withTxId(response: RpcResponse, txId: TxId): RpcResponse {
  const headers: Record<string, string> =
    response.headers === undefined ? {} : { ...response.headers };
  headers[TXID_HEADER] = formatTxId(txId);
  const { status, body } = response;
  return body === undefined ? { status, headers } : { status, headers, body };
}

/**
 * Executes `handler` in a transaction. A 2xx answer commits its writes (if any); any other
 * answer, or a thrown HttpError, discards them.
 */
export function runInTx(
  pipeline: TxPipeline,
  handler: (tx: Tx, setClaims: (digest: Uint8Array) => void) => RpcResponse,
): RpcResponse {
  let claims: Uint8Array | undefined;
  let discarded: RpcResponse | null = null;
  let outcome;
  try {
    outcome = pipeline.execute(
      (tx) => {
        const response = handler(tx, (digest) => {
          claims = digest;
        });
        if (!isSuccess(response.status)) throw new Discard(response);
        return response;
      },
      () => claims,
    );
  } catch (err: unknown) {
    if (err instanceof Discard) discarded = err.response;
    else throw err;
  }
  if (discarded !== null) return withTxId(discarded, pipeline.lastTxId);
  switch (outcome!.kind) {
    case "committed":
      return withTxId(outcome!.result, outcome!.txId);
    case "read-only":
      return withTxId(outcome!.result, { view: pipeline.lastTxId.view, seqno: outcome!.readSeqno });
    case "not-primary":
      return {
        status: 503,
        headers: { [FORWARD_HEADER]: "1" },
        body: { error: { code: "PrimaryNotFound", message: "This node is not the primary." } },
      };
    case "too-many-pending":
      throw new HttpError(
        HttpErrorCode.TooManyPendingTransactions,
        `Too many transactions (${outcome!.pending}) are waiting to be committed; retry later.`,
      );
    case "conflict":
      throw new HttpError(
        HttpErrorCode.TransactionCommitAttemptsExceedLimit,
        `Transaction continued to conflict after ${outcome!.attempts} attempts.`,
      );
  }
}

/** A JSON response. */
export function json(body: JsonBody, status = 200): RpcResponse {
  return { status, body };
}
