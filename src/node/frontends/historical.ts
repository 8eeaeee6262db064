/**
 * Historical state of one committed transaction (ccf-compatibility.md §3.8): the endpoint names it
 * in the `x-ms-ccf-transaction-id` request header; the node reads that entry back from its ledger
 * files (through historical-reads.ts, without blocking), decrypts it with the ledger secret in
 * force at its seqno, and hands the handler its writes and its receipt. Requests for pending,
 * unknown or invalid txIds get CCF's errors. The entry of the signature transaction covering it
 * is fetched with it, for the COSE signature of COSE receipts (§6.5): it usually ends the same
 * chunk file.
 */
import { bytesToKey } from "../../base/bytes.js";
import { formatTxId, isPossibleTxId, parseTxId, type Seqno, type TxId } from "../../base/ids.js";
import { CoseSignatureError, findCoseSignature } from "../../ledger/cose-signature.js";
import { decodeEntry, decodeWriteSet } from "../../ledger/entry-format.js";
import type { ReceiptOutcome } from "../../ledger/history.js";
import { isIssuedBy } from "../../crypto/certs.js";
import { GOV_MAPS } from "../../gov/tables.js";
import { SINGLETON_KEY_BYTES } from "../../kv/service-tables.js";
import type { HistoricalState } from "../../apps/app.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import type { RpcRequest } from "../../http/router.js";
import type { NodeContext } from "./node-context.js";
import { txStatus } from "./node-endpoints.js";
import { TXID_HEADER } from "../../http/ccf-headers.js";
import type { HistoricalFetch } from "./historical-reads.js";

export function requestedTxId(request: RpcRequest): TxId {
  const text = request.headers[TXID_HEADER];
  if (text === undefined) {
    throw new HttpError(
      HttpErrorCode.MissingRequiredHeader,
      `Historical query requires the ${TXID_HEADER} header.`,
    );
  }
  const id = parseTxId(text);
  if (id === null || !isPossibleTxId(id)) {
    throw new HttpError(
      HttpErrorCode.InvalidHeaderValue,
      `The value '${text}' in header ${TXID_HEADER} could not be converted to a valid TxID.`,
    );
  }
  return id;
}

/** Historical reads and receipts need a committed txId: CCF's errors otherwise. */
export function requireCommitted(node: NodeContext, id: TxId): void {
  const status = txStatus(node, id);
  if (status === "Invalid") {
    throw new HttpError(
      HttpErrorCode.TransactionInvalid,
      `Transaction ${formatTxId(id)} is invalid.`,
    );
  }
  if (status !== "Committed") {
    throw new HttpError(
      HttpErrorCode.TransactionPendingOrUnknown,
      `Transaction ${formatTxId(id)} is not committed yet.`,
      { headers: { "cache-control": "no-cache" } },
    );
  }
}

/**
 * The receipt of `seqno`. A transaction of a previous service (before a disaster recovery) was
 * signed by a node that service endorsed: its receipt carries service_endorsements, the previous
 * identities re-issued by the current service key, so it verifies against the current service
 * certificate (ccf-compatibility.md §6.5, §8.4) as well as the old one.
 */
export function receiptOf(node: NodeContext, seqno: Seqno): ReceiptOutcome {
  const outcome = node.pipeline.receipt(seqno);
  if (outcome.kind !== "receipt" || isIssuedBy(outcome.receipt.cert, node.serviceCertPem)) {
    return outcome;
  }
  const value = node.store.get(
    GOV_MAPS.previousServiceIdentityEndorsement.name,
    SINGLETON_KEY_BYTES,
  );
  if (value === undefined) return outcome;
  const endorsements = GOV_MAPS.previousServiceIdentityEndorsement.codec.decode(value);
  return { ...outcome, receipt: { ...outcome.receipt, service_endorsements: endorsements } };
}

/**
 * The state of committed `id`, or null while its entry, or that of the signature covering it, is
 * being loaded (the handler answers notAvailable). Throws CCF's errors for other txIds.
 */
export function loadHistoricalState(
  node: NodeContext,
  id: TxId,
  fetch: HistoricalFetch,
): HistoricalState | null {
  requireCommitted(node, id);
  const entry = fetch.entry(id.seqno);
  const receipt = receiptOf(node, id.seqno);
  // The covering signature usually ends the same chunk, so it costs no extra read.
  const signatureEntry = receipt.kind === "receipt" ? fetch.entry(receipt.signatureSeqno) : null;
  if (entry === null || (receipt.kind === "receipt" && signatureEntry === null)) return null;
  return historicalStateOf(node, id, entry, { receipt, signatureEntry });
}

export function historicalStateOf(
  node: NodeContext,
  id: TxId,
  bytes: Uint8Array,
  proof: { readonly receipt: ReceiptOutcome; readonly signatureEntry: Uint8Array | null },
): HistoricalState {
  const entry = decodeEntry(bytes);
  const writeSet = decodeWriteSet(entry, node.history.secrets);
  if (writeSet === null || entry.view !== id.view) {
    throw new HttpError(HttpErrorCode.InternalError, `Ledger entry ${id.seqno} does not verify.`);
  }
  const writes = new Map<string, Map<string, Uint8Array | null>>();
  for (const map of writeSet.maps) {
    writes.set(map.name, new Map(map.writes.map((w) => [bytesToKey(w.key), w.value])));
  }
  const { receipt, signatureEntry } = proof;
  return {
    txId: id,
    get: (map, key) => writes.get(map)?.get(bytesToKey(key)),
    receipt: receipt.kind === "receipt" ? receipt.receipt : null,
    coseSignature: () =>
      receipt.kind === "receipt" && signatureEntry !== null
        ? coseSignatureIn(signatureEntry, receipt.signatureSeqno)
        : null,
  };
}

/**
 * The COSE signature written by the signature transaction whose entry is `bytes` (at
 * `signatureSeqno`), or null when it wrote none (signatures of ledgers from before COSE
 * signatures).
 */
export function coseSignatureIn(bytes: Uint8Array, signatureSeqno: Seqno): Uint8Array | null {
  const entry = decodeEntry(bytes);
  try {
    return findCoseSignature(entry.publicMaps);
  } catch (err: unknown) {
    if (!(err instanceof CoseSignatureError)) throw err;
    throw new HttpError(
      HttpErrorCode.InternalError,
      `The COSE signature at seqno ${signatureSeqno} is malformed: ${err.message}`,
    );
  }
}
