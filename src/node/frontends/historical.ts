/**
 * Historical state of one committed transaction (ccf-compatibility.md §3.8): the endpoint names it
 * in the `x-ms-ccf-transaction-id` request header; the node reads that entry back from its ledger
 * files, decrypts it with the ledger secret in force at its seqno, and hands the handler its writes
 * and its receipt. Requests for pending, unknown or invalid txIds get CCF's errors. The COSE
 * signature that covers the transaction, for COSE receipts (§6.5), is read from the ledger entry
 * of the covering signature transaction only when a handler asks for it.
 */
import { bytesToKey } from "../../base/bytes.js";
import { formatTxId, isPossibleTxId, parseTxId, type Seqno, type TxId } from "../../base/ids.js";
import { CoseSignatureError, findCoseSignature } from "../../ledger/cose-signature.js";
import { decodeEntry, decodeWriteSet } from "../../ledger/entry-format.js";
import { readLedger } from "../../ledger/io/ledger-reader.js";
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

function readEntry(node: NodeContext, seqno: Seqno): Uint8Array {
  node.pipeline.flushLedger();
  const readOnlyDirectories = node.config.ledger.readOnlyDirectories;
  for (const item of readLedger(node.config.ledger.directory, {
    fromSeqno: seqno,
    readOnlyDirectories,
  })) {
    if (item.kind === "entry" && item.seqno === seqno) return item.entry;
    break;
  }
  throw new HttpError(HttpErrorCode.InternalError, `Ledger entry ${seqno} could not be read.`);
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

export function loadHistoricalState(node: NodeContext, id: TxId): HistoricalState {
  requireCommitted(node, id);
  return historicalStateOf(node, id, readEntry(node, id.seqno));
}

/** The most seqnos one historical range may cover (CCF's JS sample asks for 2001 at most). */
export const MAX_HISTORICAL_RANGE = 10_000;

/**
 * The states of seqnos from..to (inclusive), read from the ledger files in one pass, or null
 * when `to` is not committed yet (CCF's ccf.historical.getStateRange answers null until it can).
 */
export function loadHistoricalRange(
  node: NodeContext,
  from: Seqno,
  to: Seqno,
): HistoricalState[] | null {
  if (to - from + 1 > MAX_HISTORICAL_RANGE) {
    throw new HttpError(
      HttpErrorCode.InvalidInput,
      `A historical range covers at most ${MAX_HISTORICAL_RANGE} transactions.`,
    );
  }
  if (to > node.pipeline.commitTxId.seqno) return null;
  node.pipeline.flushLedger();
  const states: HistoricalState[] = [];
  const readOnlyDirectories = node.config.ledger.readOnlyDirectories;
  for (const item of readLedger(node.config.ledger.directory, {
    fromSeqno: from,
    readOnlyDirectories,
  })) {
    if (item.kind !== "entry" || item.seqno < from) continue;
    if (item.seqno > to) break;
    const view = decodeEntry(item.entry).view;
    const id = { view, seqno: item.seqno as Seqno };
    states.push(historicalStateOf(node, id, item.entry));
  }
  if (states.length !== to - from + 1) {
    throw new HttpError(
      HttpErrorCode.InternalError,
      `Ledger entries ${from} to ${to} could not all be read.`,
    );
  }
  return states;
}

function historicalStateOf(node: NodeContext, id: TxId, bytes: Uint8Array): HistoricalState {
  const entry = decodeEntry(bytes);
  const writeSet = decodeWriteSet(entry, node.history.secrets);
  if (writeSet === null || entry.view !== id.view) {
    throw new HttpError(HttpErrorCode.InternalError, `Ledger entry ${id.seqno} does not verify.`);
  }
  const writes = new Map<string, Map<string, Uint8Array | null>>();
  for (const map of writeSet.maps) {
    writes.set(map.name, new Map(map.writes.map((w) => [bytesToKey(w.key), w.value])));
  }
  const receipt = receiptOf(node, id.seqno);
  return {
    txId: id,
    get: (map, key) => writes.get(map)?.get(bytesToKey(key)),
    receipt: receipt.kind === "receipt" ? receipt.receipt : null,
    coseSignature: () =>
      receipt.kind === "receipt" ? coseSignatureAt(node, receipt.signatureSeqno) : null,
  };
}

/**
 * The COSE signature written by the signature transaction at `signatureSeqno`, or null when it
 * wrote none (signatures of ledgers from before COSE signatures). The transaction is committed
 * (it covers a committed one), so its entry is in the ledger files.
 */
export function coseSignatureAt(node: NodeContext, signatureSeqno: Seqno): Uint8Array | null {
  const entry = decodeEntry(readEntry(node, signatureSeqno));
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
