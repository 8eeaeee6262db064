/**
 * Replay worker thread (recovery-replay.ts): for batches of ledger entries, beside the thread
 * that decodes and applies them, either
 * - "hash" (public replay): each entry's write set digest (SHA-256 of its bytes) and Merkle
 *   leaf, 64 bytes; or
 * - "decrypt" (private replay): its private domain decrypted with the ledger secrets given.
 * Each batch answers with the results, each prefixed by its u32 LE length, up to the first entry
 * that fails (its index and why), so the caller can name its file and offset.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CcfError } from "../../base/errors.js";
import { sha256 } from "../../crypto/hash.js";
import { decryptPrivateDomain, entryLeafInputs } from "../../ledger/entry-format.js";
import { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import { txLeaf } from "../../ledger/tx-leaf.js";

export type ReplayJob = "hash" | "decrypt";

export interface ReplayBatch {
  readonly id: number;
  readonly kind: ReplayJob;
  /** The entries' framed bytes, one after the other. */
  readonly bytes: ArrayBuffer;
  readonly lengths: Uint32Array;
}

export interface ReplayBatchResult {
  readonly id: number;
  /** `count` plaintexts, each as u32 LE length then bytes. */
  readonly out: ArrayBuffer;
  readonly count: number;
  /** The index of the entry that failed, or -1. */
  readonly failedAt: number;
  readonly error: string;
  /** The failure is an authentication failure (wrong secret or altered bytes). */
  readonly undecryptable: boolean;
}

const list = (workerData as { secrets: { fromSeqno: number; key: Uint8Array }[] }).secrets;
// A hashing worker gets no secrets.
const secrets = list.length > 0 ? LedgerSecrets.fromList(list) : null;

/** One entry's result, or null when its private domain does not authenticate. */
function resultOf(kind: ReplayJob, entry: Uint8Array): Uint8Array | null {
  if (kind === "decrypt") return decryptPrivateDomain(entry, secrets!).plaintext;
  const { commitEvidenceDigest, claimsDigest } = entryLeafInputs(entry);
  const writeSetDigest = sha256(entry);
  const out = new Uint8Array(64);
  out.set(writeSetDigest);
  out.set(txLeaf(writeSetDigest, commitEvidenceDigest, claimsDigest), 32);
  return out;
}

parentPort!.on("message", (batch: ReplayBatch) => {
  const input = new Uint8Array(batch.bytes);
  const plaintexts: Uint8Array[] = [];
  let total = 0;
  let failedAt = -1;
  let error = "";
  let undecryptable = false;
  let at = 0;
  for (let i = 0; i < batch.lengths.length; i++) {
    const entry = input.subarray(at, at + batch.lengths[i]!);
    at += batch.lengths[i]!;
    try {
      const plaintext = resultOf(batch.kind, entry);
      if (plaintext === null) {
        failedAt = i;
        undecryptable = true;
        error = "the private domain does not decrypt with the recovered ledger secrets";
        break;
      }
      plaintexts.push(plaintext);
      total += 4 + plaintext.byteLength;
    } catch (e) {
      // A malformed entry is a typed error (EntryError, CodecError) to report with its place;
      // anything else is a bug of this worker and must not be reported as a bad ledger.
      if (!(e instanceof CcfError)) throw e;
      failedAt = i;
      error = e.message;
      break;
    }
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const p of plaintexts) {
    view.setUint32(offset, p.byteLength, true);
    out.set(p, offset + 4);
    offset += 4 + p.byteLength;
  }
  const result: ReplayBatchResult = {
    id: batch.id,
    out: out.buffer,
    count: plaintexts.length,
    failedAt,
    error,
    undecryptable,
  };
  parentPort!.postMessage(result, [out.buffer]);
});
