/**
 * Commit tracking for `npm run bench`: which of the write responses' transactions reached
 * Committed, and how long after the response. The caller records each response's txId (the
 * x-ms-ccf-transaction-id header, "view.seqno") with its receipt time; the observations of the
 * node's commit txId (GET /node/commit, polled by commit-poller.ts on a thread of its own) come
 * through `observe`, and a recorded transaction is committed at the first observation whose
 * commit seqno covers it.
 *
 * Invariants:
 * - a transaction counts as committed only if a poll showed commit seqno >= its seqno and either
 *   the commit's view equals its view, or GET /node/tx reported it Committed (a view change
 *   happened in between: it may have been rolled back);
 * - its commit time is the completion time of that poll, so commit latency has the resolution
 *   of one poll gap (reported as pollGapP50Ms / pollGapMaxMs);
 * - an answer older than one already applied is harmless (it covers a prefix of what was
 *   resolved);
 * - a response recorded after the observation that covered it (the recording thread was late)
 *   is resolved at that observation's time, the first that covered it.
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

interface Observation {
  readonly commit: TxRef;
  /** performance.now() when it was observed. */
  readonly at: number;
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
  /** Observations with increasing commit seqnos, in arrival order. */
  private readonly observations: Observation[] = [];
  private running = false;

  /** `intervalMs`: how often drain() looks whether everything recorded is resolved. */
  constructor(
    private readonly source: CommitSource,
    private readonly intervalMs: number,
  ) {
    if (!(intervalMs > 0)) throw new Error("CommitTracker: bad options");
  }

  /** Starts tracking; call stop() (or drain()) to end it. */
  start(): void {
    if (this.running) throw new Error("CommitTracker already started");
    this.running = true;
  }

  /** One response: its txId and when it arrived (performance.now()). */
  record(id: TxRef, receivedAt: number, responseMs?: number): void {
    this.views.add(id.view);
    const tx = { id, receivedAt, responseMs };
    const covering = this.firstCovering(id.seqno);
    if (covering === undefined) this.pending.push(tx);
    else this.resolve(tx, covering.commit, covering.at);
  }

  /** A commit txId observed at `at` (performance.now()), by a poll of commit-poller.ts. */
  observe(commit: TxRef, at: number): void {
    this.polls++;
    this.pollEnds.push(at);
    const last = this.observations[this.observations.length - 1];
    if (last === undefined || commit.seqno > last.commit.seqno) {
      this.observations.push({ commit, at });
    }
    this.apply(commit, at);
  }

  /** A poll that failed, counted and remembered. */
  pollFailed(message: string): void {
    this.pollErrors++;
    this.lastPollError = message;
  }

  /** The first observation whose commit covers `seqno`, if any (binary search). */
  private firstCovering(seqno: number): Observation | undefined {
    const obs = this.observations;
    if (obs.length === 0 || obs[obs.length - 1]!.commit.seqno < seqno) return undefined;
    let lo = 0;
    let hi = obs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (obs[mid]!.commit.seqno >= seqno) hi = mid;
      else lo = mid + 1;
    }
    return obs[lo];
  }

  /** Waits until every recorded transaction is resolved or `timeoutMs` passes, then stops. */
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
    await Promise.all([...this.checks]);
  }

  report(windowEnd: number): CommitReport {
    // Observed before the response was recorded (a late recording thread): 0 after it.
    const commitMs = Float64Array.from(this.committedTxs, (t) =>
      Math.max(0, t.committedAt - t.receivedAt),
    );
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

  /** Resolves every pending transaction the commit txId covers. */
  private apply(commit: TxRef, now: number): void {
    this.views.add(commit.view);
    const still: Recorded[] = [];
    for (const tx of this.pending) {
      if (tx.id.seqno > commit.seqno) still.push(tx);
      else this.resolve(tx, commit, now);
    }
    this.pending = still;
  }

  /** `tx` is covered by `commit`, observed at `at`: committed, or checked after a view change. */
  private resolve(tx: Recorded, commit: TxRef, at: number): void {
    if (tx.id.view === commit.view) this.committedTxs.push({ ...tx, committedAt: at });
    else this.checkStatus(tx, at);
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
