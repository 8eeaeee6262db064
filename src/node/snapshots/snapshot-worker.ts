/**
 * Snapshot worker thread (snapshotter.ts): turns the state a primary packed at a signature
 * (packSnapshotState) into the snapshot entry (sorted, serialised, private maps encrypted), so
 * the node thread is not blocked for seconds by a large store.
 */
import { parentPort } from "node:worker_threads";
import { CcfError } from "../../base/errors.js";
import type { Seqno } from "../../base/ids.js";
import { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import { encodePackedSnapshot, snapshotDigest } from "../../ledger/snapshot.js";

export interface SnapshotJob {
  readonly packed: ArrayBuffer;
  readonly seqno: number;
  /** The snapshot header besides the seqno (snapshot-format.ts). */
  readonly hashAtSnapshot: Uint8Array;
  readonly viewHistory: number[];
  readonly secrets: { fromSeqno: number; key: Uint8Array }[];
}

export type SnapshotJobResult =
  | { readonly kind: "encoded"; readonly bytes: ArrayBuffer; readonly digest: Uint8Array }
  | { readonly kind: "failed"; readonly error: string };

parentPort!.on("message", (job: SnapshotJob) => {
  let result: SnapshotJobResult;
  try {
    const bytes = encodePackedSnapshot(
      new Uint8Array(job.packed),
      {
        seqno: job.seqno as Seqno,
        hashAtSnapshot: job.hashAtSnapshot,
        viewHistory: job.viewHistory as Seqno[],
      },
      LedgerSecrets.fromList(job.secrets),
    );
    const copy = bytes.slice(); // a buffer of its own, to transfer
    result = { kind: "encoded", bytes: copy.buffer, digest: snapshotDigest(copy) };
    parentPort!.postMessage(result, [copy.buffer]);
  } catch (e) {
    // A snapshot the format cannot hold is a typed error, reported and skipped by the node;
    // anything else is a bug and ends the worker (the node sees its "error" event).
    if (!(e instanceof CcfError)) throw e;
    result = { kind: "failed", error: e.stack ?? e.message };
    parentPort!.postMessage(result);
  }
});
