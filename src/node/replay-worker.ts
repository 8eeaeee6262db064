/**
 * Replay worker thread (recovery-replay.ts, private replay): decrypts the private domains of
 * batches of ledger entries with the ledger secrets it was given, beside the thread that decodes
 * and applies them. Each batch answers with the plaintexts, each prefixed by its u32 LE length,
 * up to the first entry that fails (its index and why), so the caller can name its file and
 * offset.
 */
import { parentPort, workerData } from "node:worker_threads";
import { decryptPrivateDomain } from "../ledger/entry-format.js";
import { LedgerSecrets } from "../ledger/ledger-secrets.js";

export interface ReplayBatch {
  readonly id: number;
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

const secrets = LedgerSecrets.fromList(
  (workerData as { secrets: { fromSeqno: number; key: Uint8Array }[] }).secrets,
);

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
      const { plaintext } = decryptPrivateDomain(entry, secrets);
      if (plaintext === null) {
        failedAt = i;
        undecryptable = true;
        error = "the private domain does not decrypt with the recovered ledger secrets";
        break;
      }
      plaintexts.push(plaintext);
      total += 4 + plaintext.byteLength;
    } catch (e) {
      failedAt = i;
      error = e instanceof Error ? e.message : String(e);
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
