/**
 * A Prometheus histogram with fixed buckets (README, "Metrics"): counts
 * per bucket in a preallocated array, their sum and their count. `observe` is the hot path of
 * request and commit latencies: a scan of at most ~20 bounds and three number updates, no
 * allocation. Buckets are kept per bucket (not cumulative) and made cumulative when read.
 *
 * Invariant: `bounds` are finite, strictly ascending upper bounds (Prometheus' `le`: a bucket
 * counts the observations at most its bound); the last bucket, +Inf, is implicit.
 * Invariant: count == the sum of the per-bucket counts.
 */
import { assert } from "../../base/assert.js";

/** Request latencies, 100 us to 10 s (a request on a warm node takes well under 1 ms). */
export const REQUEST_SECONDS_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * Commit latencies, 1 ms to 10 s: one or two replication rounds, more under load or faults; fine
 * between 5 and 50 ms, where a loaded network's rounds fall, so that quantiles read from the
 * buckets are within a few milliseconds.
 */
export const COMMIT_SECONDS_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5,
  1, 2.5, 5, 10,
];

/** Snapshot generation, 10 ms to 2 min (a million keys take seconds). */
export const SNAPSHOT_SECONDS_BUCKETS: readonly number[] = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

export class Histogram {
  /** Per bucket, bounds.length + 1 of them, the last one +Inf. */
  private readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    assert(bounds.length > 0, "a histogram has at least one finite bucket");
    for (let i = 0; i < bounds.length; i++) {
      assert(Number.isFinite(bounds[i]), `histogram bound ${i} is finite`);
      assert(i === 0 || bounds[i]! > bounds[i - 1]!, `histogram bounds ascend at ${i}`);
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  /** Counts at or below each bound, then the +Inf count (== count). */
  cumulative(): number[] {
    const out: number[] = new Array(this.counts.length);
    let total = 0;
    for (let i = 0; i < this.counts.length; i++) {
      total += this.counts[i]!;
      out[i] = total;
    }
    return out;
  }
}
