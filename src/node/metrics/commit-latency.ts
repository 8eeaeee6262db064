/**
 * Commit latency as the primary sees it (README, "Metrics"): from a transaction's execution
 * (its write set committed to the store) to consensus committing its seqno, in a histogram;
 * and every seqno this node saw committed, as a counter.
 *
 * Execution times are kept in a ring of RING_SLOTS (seqno, time) pairs indexed by seqno, so
 * recording one is two array stores and nothing is allocated. A seqno whose slot was reused
 * before it committed (more than RING_SLOTS transactions awaiting commit) is not observed, and
 * neither is one this node did not execute (replicated to it as a backup). A role change forgets
 * every recorded time: a deposed primary's unsigned suffix may be rolled back and the same
 * seqnos reused by other transactions.
 *
 * No IO and no clock: times come in with the calls.
 */
import { COMMIT_SECONDS_BUCKETS, Histogram } from "./histogram.js";

/** Transactions awaiting commit whose execution times are kept (a power of two). */
export const RING_SLOTS = 1 << 16;
const RING_MASK = RING_SLOTS - 1;

export class CommitLatency {
  /** Slot i holds the seqno recorded there (0: none) and its execution time. */
  private readonly seqnos = new Float64Array(RING_SLOTS);
  private readonly executedMs = new Float64Array(RING_SLOTS);
  /** Invariant: the highest commit seqno seen; seqnos up to it are never observed again. */
  private commitSeqno: number;
  readonly latency = new Histogram(COMMIT_SECONDS_BUCKETS);
  /** Seqnos committed since this node started (signatures included). */
  committedCount = 0;

  /** `commitSeqno`: what was committed when the node started. */
  constructor(commitSeqno: number) {
    this.commitSeqno = commitSeqno;
  }

  /** This node, as primary, executed the transaction at `seqno` at `nowMs` (monotonic). */
  onExecuted(seqno: number, nowMs: number): void {
    const slot = seqno & RING_MASK;
    this.seqnos[slot] = seqno;
    this.executedMs[slot] = nowMs;
  }

  /** Consensus committed up to `commitSeqno` at `nowMs`. */
  onCommitted(commitSeqno: number, nowMs: number): void {
    const from = this.commitSeqno + 1;
    if (commitSeqno < from) return;
    this.committedCount += commitSeqno - this.commitSeqno;
    this.commitSeqno = commitSeqno;
    // Only the last RING_SLOTS seqnos can still have their slot.
    for (let seqno = Math.max(from, commitSeqno - RING_MASK); seqno <= commitSeqno; seqno++) {
      const slot = seqno & RING_MASK;
      if (this.seqnos[slot] !== seqno) continue;
      this.seqnos[slot] = 0;
      this.latency.observe(Math.max(0, nowMs - this.executedMs[slot]!) / 1000);
    }
  }

  /** The role changed: recorded execution times may belong to rolled-back transactions. */
  forget(): void {
    this.seqnos.fill(0);
  }
}
