/**
 * Snapshot generation on the primary (ccf-compatibility.md §6.6; issue #5 item 1).
 *
 * At a signature at least `snapshots.tx_count` transactions after the last snapshot, or the
 * first signature after trigger_snapshot, the pipeline calls `onSignature` while the store and
 * the history stand exactly at that signature. The snapshotter then:
 *   1. captures the store's whole state plus the Merkle tree up to its seqno
 *      (`public:ccf.internal.tree`), the Merkle leaf of the signature and the view history, and
 *      encodes the snapshot (snapshot.ts; private maps encrypted). With `offThread`, only the
 *      capture (live keys and values copied into one buffer) happens on the node thread; the
 *      sorting, serialising and encrypting of a large store run on a worker thread, so the
 *      primary keeps answering and heartbeating;
 *   2. then writes the evidence transaction (`public:ccf.internal.snapshot_evidence`:
 *      {hash, version}) and the file `snapshot_<seqno>_<evidence seqno>` (written, then synced);
 *   3. once a signature covering the evidence has committed, appends the evidence's JSON receipt
 *      to the file and renames it `.committed`. Only committed snapshots are used.
 * It also asks for a new ledger chunk at the next signature, as CCF does after a snapshot.
 *
 * Disk faults (SECURITY.md, "Disk faults"): a snapshot file that cannot be written, synced,
 * completed or renamed (ENOSPC, EIO...) abandons that snapshot only: the failure is logged with
 * the file and errno, the partial file is deleted (best effort; it never bears the `.committed`
 * name a later start would trust, since the rename comes last), and the node keeps running; the
 * next snapshot is tried at the next interval. A snapshot is an optimisation the ledger can
 * always replace, so the ledger, not the snapshot, is what the node stops for.
 *
 * Owns: the snapshot directory's uncommitted files it wrote, and its worker. Invariant: at most
 * one snapshot is being encoded or waiting for its evidence to commit; none starts meanwhile.
 */
import { assert } from "../../base/assert.js";
import { isNodeError } from "../../base/errors.js";
import { StorageError, withStorageErrors } from "../../base/storage-error.js";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fromHex, toHex, utf8 } from "../../base/bytes.js";
import type { Seqno, TxId } from "../../base/ids.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../kv/service-tables.js";
import type { Store } from "../../kv/store.js";
import type { TxHistory } from "../../ledger/history.js";
import type { Worker } from "node:worker_threads";
import type { SnapshotHeader } from "../../ledger/snapshot-format.js";
import {
  encodePackedSnapshot,
  packSnapshotState,
  type CapturedMap,
  snapshotDigest,
  snapshotFileName,
  encodeSnapshotEvidence,
} from "../../ledger/snapshot.js";
import type { TxPipeline } from "../pipeline/tx-pipeline.js";
import type { SystemTransactions } from "../pipeline/system-tx.js";
import { startWorker } from "../../platform/workers.js";
import type { SnapshotJob, SnapshotJobResult } from "./snapshot-worker.js";

export interface SnapshotterDeps {
  readonly directory: string;
  /** Committed transactions between snapshots (snapshots.tx_count). */
  readonly txInterval: number;
  readonly pipeline: TxPipeline;
  /** Writes the snapshot evidence transaction. */
  readonly system: SystemTransactions;
  readonly store: Store;
  readonly history: TxHistory;
  /** CCF's view history at a txId (RaftLog.viewHistory), which the snapshot records. */
  readonly viewHistory: (at: TxId) => readonly Seqno[];
  readonly isPrimary: () => boolean;
  /** Consensus' status of a txId (the evidence may be rolled back with a deposed primary). */
  readonly status: (view: number, seqno: number) => "Unknown" | "Pending" | "Committed" | "Invalid";
  readonly log: (line: string) => void;
  /** Encode on a worker thread (snapshot-worker.ts); otherwise on the node thread. */
  readonly offThread?: boolean;
  /** Monotonic milliseconds, to time snapshots for `onWritten` (default: none timed). */
  readonly monotonicMs?: () => number;
  /** Told of each snapshot file written and synced: its size and the time since its signature. */
  readonly onWritten?: (written: { sizeBytes: number; durationMs: number }) => void;
}

/** A snapshot encoded, before its evidence and file; `startedMs` when its capture began. */
interface Encoded {
  readonly seqno: Seqno;
  readonly hash: string;
  readonly bytes: Uint8Array;
  readonly startedMs: number;
}

interface Pending {
  readonly seqno: Seqno;
  readonly evidence: TxId;
  readonly file: string;
}

/** Writes and fsyncs `bytes`; a failed call is a StorageError naming `path`. */
function writeDurably(path: string, bytes: Uint8Array, flags: "wx" | "a"): void {
  const fd = withStorageErrors({ path, operation: "open" }, () => openSync(path, flags));
  try {
    withStorageErrors({ path, operation: "write" }, () => {
      let done = 0;
      while (done < bytes.byteLength) done += writeSync(fd, bytes, done);
    });
    withStorageErrors({ path, operation: "fsync" }, () => fsyncSync(fd));
  } finally {
    closeSync(fd);
  }
}

const SNAPSHOT_WORKER = new URL("./snapshot-worker.ts", import.meta.url);

export class Snapshotter {
  private lastSeqno = 0;
  private requested = false;
  private pending: Pending | null = null;
  /** Set while a snapshot is being encoded off-thread. */
  private encoding = false;
  private worker: Worker | null = null;
  /** Committed snapshots written by this node (seqno), newest last. */
  readonly committed: Seqno[] = [];

  constructor(private readonly deps: SnapshotterDeps) {}

  /** trigger_snapshot: snapshot at the next signature. */
  request(): void {
    this.requested = true;
  }

  /** The pipeline wrote signature `txId`; the store and history stand exactly there. */
  onSignature(txId: TxId): void {
    if (!this.deps.isPrimary() || this.pending !== null || this.encoding) return;
    const due = txId.seqno - this.lastSeqno >= this.deps.txInterval;
    if (!due && !this.requested) return;
    this.requested = false;
    this.lastSeqno = txId.seqno;
    const startedMs = this.deps.monotonicMs?.() ?? 0;
    const packed = this.capture(txId.seqno);
    const header = this.header(txId);
    if (this.deps.offThread === true) {
      this.encodeOffThread(header, packed, startedMs);
      return;
    }
    const bytes = encodePackedSnapshot(packed, header, this.deps.history.secrets);
    const hash = toHex(snapshotDigest(bytes));
    // The evidence is its own transaction, after the signature (never inside one).
    setImmediate(() => this.recordEvidence({ seqno: txId.seqno, hash, bytes, startedMs }));
  }

  /**
   * The store's live state at the signature at `seqno`, packed (unsorted), with the Merkle tree
   * over leaves 0..seqno in `public:ccf.internal.tree` (history.serialisedTreeForSnapshot).
   */
  private capture(seqno: Seqno): Uint8Array {
    const store = this.deps.store;
    const maps: CapturedMap[] = store
      .mapNames()
      .filter((name) => name !== SERVICE_TABLES.tree)
      .map((name) => ({
        name,
        seqno: store.lastWriteSeqno(name),
        keys: store.liveUnsorted(name),
      }));
    // The signature at `seqno` is where CCF writes the tree: its map and key are at `seqno`.
    const treeBytes = this.deps.history.serialisedTreeForSnapshot();
    const tree = { key: SINGLETON_KEY_BYTES, value: treeBytes, seqno };
    maps.push({ name: SERVICE_TABLES.tree, seqno, keys: [tree] });
    return packSnapshotState(maps);
  }

  /**
   * The snapshot header at signature `txId`: the Merkle leaf of the signature (the history's
   * last, since it stands exactly there) and the view history.
   */
  private header(txId: TxId): SnapshotHeader {
    const { tree } = this.deps.history;
    return {
      seqno: txId.seqno,
      hashAtSnapshot: tree.leaf(tree.size - 1),
      viewHistory: this.deps.viewHistory(txId),
    };
  }

  /** Has the worker encode the state packed at `header`; the evidence follows. */
  private encodeOffThread(header: SnapshotHeader, packed: Uint8Array, startedMs: number): void {
    const job: SnapshotJob = {
      packed: packed.buffer as ArrayBuffer,
      seqno: header.seqno,
      hashAtSnapshot: header.hashAtSnapshot,
      viewHistory: [...header.viewHistory],
      secrets: this.deps.history.secrets.list(),
    };
    this.encoding = true;
    const worker = this.startWorker();
    worker.once("message", (result: SnapshotJobResult) => {
      this.encoding = false;
      if (result.kind === "failed") {
        this.deps.log(`snapshot at ${header.seqno} not written: ${result.error}`);
        return;
      }
      const bytes = new Uint8Array(result.bytes);
      this.recordEvidence({ seqno: header.seqno, hash: toHex(result.digest), bytes, startedMs });
    });
    worker.postMessage(job, [job.packed]);
  }

  private startWorker(): Worker {
    if (this.worker === null) {
      this.worker = startWorker(SNAPSHOT_WORKER, {});
      this.worker.unref();
      this.worker.on("error", (e) => {
        this.deps.log(`snapshot worker failed: ${e.message}`);
        this.worker = null;
        this.encoding = false;
      });
    }
    return this.worker;
  }

  /** Stops the worker (the node is stopping). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  private recordEvidence(encoded: Encoded): void {
    const { seqno, hash, bytes } = encoded;
    const { pipeline, system } = this.deps;
    const evidence = encodeSnapshotEvidence(hash, seqno);
    const digest = fromHex(hash);
    assert(digest !== null, "a snapshot digest is hex");
    // The evidence's claims digest is the snapshot's digest, so the evidence receipt appended
    // to the file binds its bytes (usableCommittedSnapshots checks it before use).
    const outcome = system.write(
      "snapshot evidence",
      (tx) => tx.rw(SERVICE_TABLES.snapshotEvidence).set(SINGLETON_KEY_BYTES, evidence),
      digest,
    );
    if (outcome.kind !== "written") {
      this.deps.log(
        `snapshot at ${seqno} dropped: its evidence was not written (${outcome.reason})`,
      );
      return;
    }
    const evidenceSeqno = outcome.txId.seqno;
    const evidenceTxId = outcome.txId;
    const name = snapshotFileName({ seqno, evidenceSeqno, committed: false });
    const file = join(this.deps.directory, name);
    if (!this.tryWrite(file, () => writeDurably(file, bytes, "wx"))) return;
    const { monotonicMs, onWritten } = this.deps;
    if (monotonicMs !== undefined && onWritten !== undefined) {
      onWritten({ sizeBytes: bytes.byteLength, durationMs: monotonicMs() - encoded.startedMs });
    }
    pipeline.requestLedgerChunk();
    this.pending = { seqno, evidence: evidenceTxId, file };
    this.deps.log(`snapshot ${name} written (${bytes.byteLength} bytes, sha256 ${hash})`);
  }

  /**
   * Runs the file steps of the snapshot whose file is `file`. A StorageError abandons the
   * snapshot: logged, the file deleted if it can be, false returned; the node keeps running.
   */
  private tryWrite(file: string, steps: () => void): boolean {
    try {
      steps();
      return true;
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      let removal = "deleted";
      try {
        rmSync(file, { force: true });
      } catch (r) {
        if (!isNodeError(r)) throw r;
        removal = `not deleted (${r.message}): it is not .committed, so no start uses it`;
      }
      this.deps.log(
        `snapshot abandoned: ${e.message}; the partial file ${file} was ${removal}. The node ` +
          "keeps running and tries again at the next snapshot interval; free space on the " +
          "snapshot directory's device.",
      );
      return false;
    }
  }

  /** Consensus committed up to `commitSeqno`: complete the pending snapshot if it can be. */
  onCommit(commitSeqno: Seqno): void {
    const p = this.pending;
    if (p === null || commitSeqno < p.evidence.seqno) return;
    const status = this.deps.status(p.evidence.view, p.evidence.seqno);
    if (status === "Invalid") {
      // The evidence was rolled back with a deposed primary: the snapshot is never usable.
      rmSync(p.file, { force: true });
      this.pending = null;
      this.deps.log(`snapshot at ${p.seqno} discarded: its evidence was rolled back`);
      return;
    }
    if (status !== "Committed") return;
    const outcome = this.deps.pipeline.receipt(p.evidence.seqno);
    if (outcome.kind !== "receipt") return; // no signature over the evidence yet
    const committedName = snapshotFileName({
      seqno: p.seqno,
      evidenceSeqno: p.evidence.seqno,
      committed: true,
    });
    const committedPath = join(this.deps.directory, committedName);
    this.pending = null;
    const completed = this.tryWrite(p.file, () => {
      writeDurably(p.file, utf8(JSON.stringify(outcome.receipt)), "a");
      withStorageErrors({ path: committedPath, operation: "rename" }, () =>
        renameSync(p.file, committedPath),
      );
    });
    if (!completed) return;
    this.committed.push(p.seqno);
    this.deps.log(`snapshot ${committedName} committed`);
  }
}
