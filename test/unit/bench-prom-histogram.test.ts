// The bench's reading of a node's Prometheus histogram (bench/prom-histogram.ts): buckets parsed
// from the text exposition the node writes (src/node/metrics), the difference of two readings,
// and quantiles interpolated inside buckets as Prometheus' histogram_quantile does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bucketDelta, histogramQuantile, parseHistogram } from "../../bench/prom-histogram.js";
import { Exposition } from "../../src/node/metrics/exposition.js";
import { Histogram } from "../../src/node/metrics/histogram.js";

const NAME = "consortia_commit_latency_seconds";

/** The node's own exposition of a histogram with these observations (seconds). */
function exposed(bounds: number[], observations: number[]): string {
  const histogram = new Histogram(bounds);
  for (const o of observations) histogram.observe(o);
  return new Exposition()
    .family(NAME, "histogram", "Commit latency.")
    .histogram("", histogram)
    .text();
}

test("buckets parse from the node's exposition, cumulative and ending at +Inf", () => {
  const text = exposed([0.01, 0.02, 0.05], [0.005, 0.015, 0.015, 0.03, 0.2]);
  const buckets = parseHistogram(`# other lines\nx_bucket{le="1"} 9\n${text}`, NAME);
  assert.deepEqual(buckets, [
    { le: 0.01, count: 1 },
    { le: 0.02, count: 3 },
    { le: 0.05, count: 4 },
    { le: Number.POSITIVE_INFINITY, count: 5 },
  ]);
  assert.deepEqual(parseHistogram(text, "absent_seconds"), []);
});

test("quantiles interpolate inside the bucket of their rank, over a window's difference", () => {
  const before = parseHistogram(exposed([0.01, 0.02, 0.04], [0.001, 0.001]), NAME);
  const after = parseHistogram(
    exposed([0.01, 0.02, 0.04], [0.001, 0.001, ...Array(10).fill(0.015), ...Array(10).fill(0.03)]),
    NAME,
  );
  const window = bucketDelta(before, after);
  assert.deepEqual(
    window.map((b) => b.count),
    [0, 10, 20, 20],
  );
  // Rank 10 of 20 is the top of the 10-20 ms bucket; rank 15 is halfway into 20-40 ms.
  assert.equal(histogramQuantile(window, 0.5), 0.02);
  assert.ok(Math.abs(histogramQuantile(window, 0.75) - 0.03) < 1e-12);
  assert.ok(Math.abs(histogramQuantile(window, 0.25) - 0.015) < 1e-12);
  // In the +Inf bucket: the highest finite bound; nothing observed: NaN.
  const slow = parseHistogram(exposed([0.01], [0.5, 0.5]), NAME);
  assert.equal(histogramQuantile(slow, 0.99), 0.01);
  assert.ok(Number.isNaN(histogramQuantile(bucketDelta(before, before), 0.5)));
});
