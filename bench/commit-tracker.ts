/**
 * Commit tracking for `npm run bench`: which of the write responses' transactions reached
 * Committed, and how long after the response. The caller records each response's txId (the
 * x-ms-ccf-transaction-id header, "view.seqno") with its receipt time; the tracker polls the
 * primary's commit txId (GET /node/commit) every `intervalMs` and marks a recorded transaction
 * committed at the first poll whose commit seqno covers it.
 *
 * Invariants:
 * - a transaction counts as committed only if a poll showed commit seqno >= its seqno and either
 *   the commit's view equals its view, or GET /node/tx reported it Committed (a view change
 *   happened in between: it may have been rolled back);
 * - its commit time is the completion time of that poll, so commit latency has the resolution
 *   of one poll gap (reported as pollGapP50Ms / pollGapMaxMs);
 * - a poll starts every `intervalMs` while fewer than `maxInFlight` are outstanding, so the gap
 *   between observations stays near `intervalMs` even when the node answers slowly; an answer
 *   older than one already applied is harmless (it covers a prefix of what was resolved).
 */
import { performance } from "node:perf_hooks";
import { percentile } from "./load.js";

export interface TxRef {
  readonly view: number;
  readonly seqno: number;
}

/** "view.seqno" to a TxRef, or null when malformed. */
export function parseTxId(text: unknown): TxRef | null {
  if (typeof text !== "string") return null;
  const match = /^(\d+)\.(\d+)$/.exec(text.trim());
  if (match === null) return null;
  const view = Number(match[1]);
  const seqno = Number(match[2]);
  return Number.isSafeInteger(view) && Number.isSafeInteger(seqno) ? { view, seqno } : null;
}

export interface CommitSource {
  /** The node's current commit txId (GET /node/commit). */
  readonly commit: () => Promise<TxRef>;
  /** The node's status of one txId (GET /node/tx): "Committed", "Invalid", "Pending"... */
  readonly status: (id: TxRef) => Promise<string>;
}

interface Recorded {
  readonly id: TxRef;
  /** performance.now() when the response arrived. */
  readonly receivedAt: number;
  /** Request-to-response latency, ms, when known. */
  readonly responseMs: number | undefined;
}

interface Committed extends Recorded {
  /** performance.now() when the poll that showed it committed completed. */
  readonly committedAt: number;
}

export interface CommitReport {
  /** Responses recorded (2xx with a txId). */
  readonly recorded: number;
  /** Recorded transactions committed by `windowEnd`. */
  readonly committedInWindow: number;
  /** Recorded transactions committed by the end of the drain. */
  readonly committed: number;
  /** Recorded transactions the node reported not committed (Invalid) after a view change. */
  readonly invalid: number;
  /** Recorded transactions still not known committed when tracking stopped. */
  readonly uncommitted: number;
  /** Response receipt to the poll that showed commit, ms. */
  readonly commitP50Ms: number;
  readonly commitP99Ms: number;
  /** Request sent to commit observed (response latency + commit latency), ms. */
  readonly endToEndP50Ms: number;
  readonly endToEndP99Ms: number;
  readonly polls: number;
  readonly pollErrors: number;
  /** Gaps between successive observations (answers less than 1 ms apart count as one). */
  readonly pollGapP50Ms: number;
  readonly pollGapP99Ms: number;
  readonly pollGapMaxMs: number;
  /** Views seen in commit txIds and in responses' txIds; more than one means a view change. */
  readonly views: readonly number[];
  /** The last error message of a failed poll, if any. */
  readonly lastPollError: string | undefined;
}

/**
 * Sorted gaps between distinct observation times. Answers that arrive in a burst (less than
 * 1 ms after the previous one) were answered together by the node, so they are one observation.
 */
function observationGaps(answerTimes: readonly number[]): Float64Array {
  const gaps: number[] = [];
  let last: number | undefined;
  for (const t of [...answerTimes].sort((a, b) => a - b)) {
    if (last === undefined) last = t;
    else if (t - last >= 1) {
      gaps.push(t - last);
      last = t;
    }
  }
  return Float64Array.from(gaps).sort();
}

/** Request sent to commit observed (response latency + commit latency), when known. */
function endToEndMs(t: Committed): number | undefined {
  return t.responseMs === undefined ? undefined : t.committedAt - t.receivedAt + t.responseMs;
}

export class CommitTracker {
  /** Invariant: recorded transactions not yet committed, invalid or being checked. */
  private pending: Recorded[] = [];
  private readonly committedTxs: Committed[] = [];
  private invalid = 0;
  /** Transactions whose status check failed (neither committed nor invalid as far as known). */
  private unresolved = 0;
  /** Invariant: status checks in flight (view mismatch), awaited by stop(). */
  private readonly checks = new Set<Promise<void>>();
  private readonly views = new Set<number>();
  private readonly pollEnds: number[] = [];
  private polls = 0;
  private pollErrors = 0;
  private lastPollError: string | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  /**
   * `intervalMs`: time between poll starts. `maxInFlight`: polls outstanding at once, so a
   * loaded node's queueing delay does not stretch the gap between observations.
   */
  constructor(
    private readonly source: CommitSource,
    private readonly intervalMs: number,
    private readonly maxInFlight: number = 4,
  ) {
    if (!(intervalMs > 0) || !(maxInFlight >= 1)) throw new Error("CommitTracker: bad options");
  }

  /** Starts polling; call stop() (or drain()) to end it. */
  start(): void {
    if (this.running) throw new Error("CommitTracker already started");
    this.running = true;
    this.loop = this.pollLoop();
  }

  /** One response: its txId and when it arrived (performance.now()). */
  record(id: TxRef, receivedAt: number, responseMs?: number): void {
    this.views.add(id.view);
    this.pending.push({ id, receivedAt, responseMs });
  }

  /** Keeps polling until every recorded transaction is resolved or `timeoutMs` passes. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (
      (this.pending.length > 0 || this.checks.size > 0) &&
      performance.now() < deadline &&
      this.running
    ) {
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await Promise.all([...this.checks]);
  }

  report(windowEnd: number): CommitReport {
    const commitMs = Float64Array.from(this.committedTxs, (t) => t.committedAt - t.receivedAt);
    const endToEnd = Float64Array.from(this.committedTxs.flatMap((t) => endToEndMs(t) ?? []));
    commitMs.sort();
    endToEnd.sort();
    const gaps = observationGaps(this.pollEnds);
    const committed = this.committedTxs.length;
    return {
      recorded: committed + this.invalid + this.unresolved + this.pending.length,
      committedInWindow: this.committedTxs.filter((t) => t.committedAt <= windowEnd).length,
      committed,
      invalid: this.invalid,
      uncommitted: this.pending.length + this.unresolved,
      commitP50Ms: percentile(commitMs, 50),
      commitP99Ms: percentile(commitMs, 99),
      endToEndP50Ms: percentile(endToEnd, 50),
      endToEndP99Ms: percentile(endToEnd, 99),
      polls: this.polls,
      pollErrors: this.pollErrors,
      pollGapP50Ms: percentile(gaps, 50),
      pollGapP99Ms: percentile(gaps, 99),
      pollGapMaxMs: gaps.length === 0 ? Number.NaN : gaps[gaps.length - 1]!,
      views: [...this.views].sort((a, b) => a - b),
      lastPollError: this.lastPollError,
    };
  }

  /** Starts a poll every intervalMs while fewer than maxInFlight are outstanding. */
  private async pollLoop(): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    while (this.running) {
      const startedAt = performance.now();
      if (inFlight.size < this.maxInFlight) {
        const poll = this.pollOnce();
        inFlight.add(poll);
        void poll.then(() => inFlight.delete(poll));
      }
      const wait = this.intervalMs - (performance.now() - startedAt);
      if (wait > 0 && this.running) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
    await Promise.all([...inFlight]);
  }

  /** One poll; never rejects (failures are counted). */
  private async pollOnce(): Promise<void> {
    try {
      const commit = await this.source.commit();
      this.polls++;
      const now = performance.now();
      this.pollEnds.push(now);
      this.apply(commit, now);
    } catch (err: unknown) {
      this.pollErrors++;
      this.lastPollError = err instanceof Error ? err.message : String(err);
    }
  }

  /** Resolves every pending transaction the commit txId covers. */
  private apply(commit: TxRef, now: number): void {
    this.views.add(commit.view);
    const still: Recorded[] = [];
    for (const tx of this.pending) {
      if (tx.id.seqno > commit.seqno) still.push(tx);
      else if (tx.id.view === commit.view) this.committedTxs.push({ ...tx, committedAt: now });
      else this.checkStatus(tx, now);
    }
    this.pending = still;
  }

  /**
   * Request-to-commit latency by second of the run (by response receipt, from `startedAt`):
   * whether a tail comes from the whole run or from a few bad seconds (start-up, a stall).
   */
  series(startedAt: number): { second: number; count: number; p50Ms: number; p99Ms: number }[] {
    const buckets: number[][] = [];
    for (const t of this.committedTxs) {
      const ms = endToEndMs(t);
      if (ms === undefined) continue;
      const second = Math.max(0, Math.floor((t.receivedAt - startedAt) / 1000));
      (buckets[second] ??= []).push(ms);
    }
    return Array.from(buckets.entries(), ([second, values = []]) => {
      const sorted = Float64Array.from(values).sort();
      return {
        second,
        count: sorted.length,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
      };
    });
  }

  /** A view change between the write and its commit: ask the node whether it survived. */
  private checkStatus(tx: Recorded, coveredAt: number): void {
    const check = this.source.status(tx.id).then(
      (status) => {
        if (status === "Committed") this.committedTxs.push({ ...tx, committedAt: coveredAt });
        else this.invalid++;
      },
      (err: unknown) => {
        // Outcome unknown: reported among the transactions not known committed.
        this.lastPollError = err instanceof Error ? err.message : String(err);
        this.unresolved++;
      },
    );
    this.checks.add(check);
    void check.finally(() => this.checks.delete(check));
  }
}
