/**
 * A Prometheus histogram read from a node's text exposition (/node/metrics/prometheus): its
 * cumulative buckets, the difference of two readings (what a run window added), and quantiles
 * estimated as Prometheus' histogram_quantile does, by linear interpolation inside the bucket
 * that holds the rank. `npm run bench` reads the primary's consortia_commit_latency_seconds
 * before and after the load: commit latency as the node measures it, without the poll's delay.
 */
import { requestText, type Tls } from "./sandbox.js";

/** Cumulative counts by upper bound (`le`), ascending; the last bound is +Infinity. */
export type CumulativeBuckets = readonly { readonly le: number; readonly count: number }[];

/** The buckets of histogram `name` in `text` (unlabelled series); empty when absent. */
export function parseHistogram(text: string, name: string): CumulativeBuckets {
  const prefix = `${name}_bucket{le="`;
  const buckets: { le: number; count: number }[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    const end = line.indexOf('"}', prefix.length);
    if (end < 0) continue;
    const bound = line.slice(prefix.length, end);
    const le = bound === "+Inf" ? Number.POSITIVE_INFINITY : Number(bound);
    const count = Number(line.slice(end + 2).trim());
    if (!Number.isNaN(le) && Number.isFinite(count)) buckets.push({ le, count });
  }
  return buckets.sort((a, b) => a.le - b.le);
}

/** What `after` counted since `before` (same bounds; a bound missing before counts from 0). */
export function bucketDelta(
  before: CumulativeBuckets,
  after: CumulativeBuckets,
): CumulativeBuckets {
  const earlier = new Map(before.map((b) => [b.le, b.count]));
  return after.map((b) => ({ le: b.le, count: b.count - (earlier.get(b.le) ?? 0) }));
}

/**
 * The q-quantile (0..1) of `buckets`, interpolated linearly inside its bucket (the first
 * bucket from 0); the highest finite bound when the rank falls in +Inf; NaN when empty.
 */
export function histogramQuantile(buckets: CumulativeBuckets, q: number): number {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return Number.NaN;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket <= 0 ? le : lowerBound + ((le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}

/** The primary's commit-latency histogram (cumulative buckets) now. */
export async function commitHistogram(url: string, tls: Tls): Promise<CumulativeBuckets> {
  const answer = await requestText(url, "/node/metrics/prometheus", tls);
  if (answer.status !== 200) throw new Error(`GET /node/metrics/prometheus: ${answer.status}`);
  return parseHistogram(answer.text, "consortia_commit_latency_seconds");
}

/** The primary's commit latency since `before` was read: p50 and p99 in ms, and its count. */
export async function commitLatencySince(
  before: CumulativeBuckets,
  url: string,
  tls: Tls,
): Promise<{ p50Ms: number; p99Ms: number; count: number }> {
  const window = bucketDelta(before, await commitHistogram(url, tls));
  return {
    p50Ms: histogramQuantile(window, 0.5) * 1000,
    p99Ms: histogramQuantile(window, 0.99) * 1000,
    count: window.at(-1)?.count ?? 0,
  };
}
