// The Prometheus text format as src/node/metrics writes it (exposition.ts, histogram.ts,
// request-metrics.ts): every line is checked by an independent parser
// (test/helpers/prometheus-text.ts): HELP/TYPE, names, escaping, cumulative buckets ending at
// +Inf = count. Label values and help text with backslashes, quotes and newlines must come back
// unchanged through the parser's unescaping. The parser itself is shown to refuse broken text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Exposition, labelText } from "../../../../src/node/metrics/exposition.js";
import { Histogram } from "../../../../src/node/metrics/histogram.js";
import {
  RequestMetrics,
  SERIES_MAX,
  UNMATCHED_ENDPOINT,
} from "../../../../src/node/metrics/request-metrics.js";
import { parsePrometheusText, sampleValue } from "../../../helpers/prometheus-text.js";

const AWKWARD = 'a\\b "quoted"\nnext line';

test("label values and help text are escaped and parse back unchanged", () => {
  const out = new Exposition();
  out
    .family("consortia_test_total", "counter", `help with ${AWKWARD}`)
    .sample(labelText({ path: AWKWARD, method: "GET" }), 3)
    .sample(labelText({ path: "/plain", method: "POST" }), 0.5);
  out.single("consortia_gauge", "gauge", "a gauge", -Infinity);
  out.single("consortia_nan", "gauge", "not a number", NaN);
  const text = out.text();
  const families = parsePrometheusText(text);
  const counter = families.get("consortia_test_total")!;
  assert.equal(counter.type, "counter");
  assert.equal(counter.help, `help with ${AWKWARD}`);
  assert.deepEqual(counter.samples[0]!.labels, { path: AWKWARD, method: "GET" });
  assert.equal(counter.samples[0]!.value, 3);
  assert.equal(sampleValue(families, "consortia_test_total", { path: "/plain" }), 0.5);
  assert.equal(sampleValue(families, "consortia_gauge"), -Infinity);
  assert.ok(Number.isNaN(sampleValue(families, "consortia_nan")));
  // One physical line per sample: the newline inside the value is escaped.
  assert.equal(text.split("\n").length, 11);
});

test("histogram buckets are cumulative, le inclusive, and end at +Inf = count", () => {
  const h = new Histogram([0.1, 1, 10]);
  for (const v of [0.05, 0.1, 0.5, 1, 1, 7, 10, 11, 1000]) h.observe(v);
  assert.deepEqual(h.cumulative(), [2, 5, 7, 9]);
  const out = new Exposition();
  out.family("consortia_latency_seconds", "histogram", "latency").histogram('op="x"', h);
  out.histogram('op="empty"', new Histogram([0.1, 1, 10]));
  const families = parsePrometheusText(out.text());
  const le = (bound: string, op = "x") =>
    sampleValue(families, "consortia_latency_seconds_bucket", { op, le: bound });
  assert.equal(le("0.1"), 2);
  assert.equal(le("1"), 5);
  assert.equal(le("10"), 7);
  assert.equal(le("+Inf"), 9);
  assert.equal(sampleValue(families, "consortia_latency_seconds_count", { op: "x" }), 9);
  assert.equal(
    sampleValue(families, "consortia_latency_seconds_sum", { op: "x" }),
    0.05 + 0.1 + 0.5 + 1 + 1 + 7 + 10 + 11 + 1000,
  );
  assert.equal(le("+Inf", "empty"), 0);
});

test("the parser refuses text that breaks the format", () => {
  const bad = [
    "# TYPE x_total counter\nx_total 1\n", // no HELP
    '# HELP x_total h\n# TYPE x_total counter\nx_total{a="\\q"} 1\n', // bad escape
    "# HELP x h\n# TYPE x counter\nx 1\n", // counter without _total
    "# HELP 1x h\n# TYPE 1x gauge\n1x 1\n", // bad name
    "# HELP x h\n# TYPE x gauge\nx one\n", // bad value
    "# HELP x h\n# TYPE x gauge\ny 1\n", // sample outside its family
    "# HELP h h\n# TYPE h histogram\n" +
      'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // decreasing
    "# HELP h h\n# TYPE h histogram\n" +
      'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', // +Inf != count
    '# HELP h h\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
    "# HELP x h\n# TYPE x gauge\nx 1", // no final newline
  ];
  for (const text of bad) assert.throws(() => parsePrometheusText(text), text);
});

test("requests are counted by method, route template and status, unknown paths under one label", () => {
  const requests = new RequestMetrics();
  requests.onAnswered("GET", "/app/log/private", 200, 0.3);
  requests.onAnswered("GET", "/app/log/private", 200, 2);
  requests.onAnswered("POST", "/app/log/private", 200, 1);
  requests.onAnswered("GET", "/app/log/private", 404, 0.2);
  requests.onAnswered("GET", "/gov/members/proposals/{proposalId}", 200, 40);
  requests.onAnswered("GET", undefined, 404, 0.1);
  requests.onAnswered("DELETE", undefined, 404, 0.1);
  const out = new Exposition();
  requests.write(out);
  const families = parsePrometheusText(out.text());
  const total = (method: string, endpoint: string, status: string) =>
    sampleValue(families, "consortia_http_requests_total", { method, endpoint, status });
  assert.equal(total("GET", "/app/log/private", "200"), 2);
  assert.equal(total("POST", "/app/log/private", "200"), 1);
  assert.equal(total("GET", "/app/log/private", "404"), 1);
  assert.equal(total("GET", "/gov/members/proposals/{proposalId}", "200"), 1);
  assert.equal(total("GET", UNMATCHED_ENDPOINT, "404"), 1);
  assert.equal(total("DELETE", UNMATCHED_ENDPOINT, "404"), 1);
  assert.equal(families.get("consortia_http_requests_total")!.samples.length, 6);
  const bucket = (le: string) =>
    sampleValue(families, "consortia_http_request_duration_seconds_bucket", {
      method: "GET",
      endpoint: "/app/log/private",
      status: "200",
      le,
    });
  // 0.3 ms and 2 ms, in seconds.
  assert.equal(bucket("0.00025"), 0);
  assert.equal(bucket("0.0005"), 1);
  assert.equal(bucket("0.001"), 1);
  assert.equal(bucket("0.0025"), 2);
  assert.equal(sampleValue(families, "consortia_http_requests_unrecorded_total"), 0);
});

test("past SERIES_MAX series, new ones are only counted as unrecorded", () => {
  const requests = new RequestMetrics();
  for (let i = 0; i < SERIES_MAX; i++) requests.onAnswered("GET", `/t/${i}`, 200, 1);
  requests.onAnswered("GET", "/one/more", 200, 1);
  requests.onAnswered("GET", "/t/0", 200, 1); // an existing series still counts
  const out = new Exposition();
  requests.write(out);
  const families = parsePrometheusText(out.text());
  assert.equal(sampleValue(families, "consortia_http_requests_unrecorded_total"), 1);
  assert.equal(sampleValue(families, "consortia_http_requests_total", { endpoint: "/t/0" }), 2);
  assert.equal(
    sampleValue(families, "consortia_http_requests_total", { endpoint: "/one/more" }),
    undefined,
  );
});

test("a family is declared once and names are checked", () => {
  const out = new Exposition().family("consortia_x", "gauge", "x");
  assert.throws(() => out.family("consortia_x", "gauge", "x"), /declared once/);
  assert.throws(() => new Exposition().family("bad-name", "gauge", "x"), /metric name/);
  assert.throws(() => labelText({ "bad-label": "x" }), /label name/);
});
