/**
 * End-to-end: GET /node/metrics of a real node process (a 1-node sandbox, real TLS) in the
 * Prometheus text format. The exposition is checked line by line by an independent parser
 * (test/helpers/prometheus-text.ts), then against what the test did between two scrapes:
 * requests raise the counters of their route template (never the raw path), method and status;
 * writes move the committed transactions, the commit seqno, the commit latency histogram and
 * the ledger bytes; the node reports itself Leader. Accept negotiation: text/plain and
 * Prometheus' own Accept header get the text format, no Accept, application/json and an Accept
 * naming nothing offered get JSON. /node/metrics needs no client certificate. On two nodes, a
 * write forwarded by a backup is counted on the backup (with the status the primary gave it)
 * and only as a forwarded request served on the primary.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { httpsRequest, type Reply } from "../helpers/https.js";
import { Network } from "../helpers/network.js";
import { parsePrometheusText, sampleValue, type Family } from "../helpers/prometheus-text.js";

const PROMETHEUS_ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;" +
  "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

test("a node's metrics in the Prometheus format follow its requests and commits", async (t) => {
  const net = await Network.start(1, { sigMsInterval: 20 });
  t.after(() => net.stop());
  const node = net.nodes[0]!;
  const anonymous = { ca: net.tls.ca };
  const get = (path: string, headers: Record<string, string> = {}): Promise<Reply> =>
    httpsRequest(net.url(node, path), anonymous, "GET", undefined, headers);
  const scrape = async (): Promise<Map<string, Family>> => {
    const reply = await get("/node/metrics/prometheus");
    assert.equal(reply.status, 200, reply.body);
    assert.equal(reply.headers["content-type"], TEXT_TYPE);
    return parsePrometheusText(reply.body);
  };

  // Negotiation.
  for (const accept of ["text/plain", PROMETHEUS_ACCEPT]) {
    const reply = await get("/node/metrics", { accept });
    assert.equal(reply.headers["content-type"], TEXT_TYPE, accept);
    parsePrometheusText(reply.body);
  }
  for (const headers of [{}, { accept: "application/json" }, { accept: "image/png" }]) {
    const reply = await get("/node/metrics", headers);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers["content-type"], "application/json", JSON.stringify(headers));
    assert.equal(
      typeof (JSON.parse(reply.body) as { commit_seqno: number }).commit_seqno,
      "number",
    );
  }

  const before = await scrape();
  const value = (families: Map<string, Family>, name: string, labels = {}) =>
    sampleValue(families, name, labels) ?? 0;
  const WRITES = 5;
  for (let i = 0; i < WRITES; i++) await net.write(node, 1000 + i, `metrics ${i}`);
  let lastTxId = "";
  for (let i = 0; i < 2; i++) {
    const reply = await httpsRequest(
      net.url(node, `/app/log/private/raw_text/${2000 + i}`),
      net.tls,
      "POST",
      `raw ${i}`,
      { "content-type": "text/plain" },
    );
    assert.equal(reply.status, 200, reply.body);
    lastTxId = String(reply.headers["x-ms-ccf-transaction-id"]);
  }
  await net.waitCommitted(node, lastTxId);
  for (let i = 0; i < 3; i++) assert.equal((await net.read(node, 1000 + i)).status, 200);
  assert.equal((await get("/app/no/such/path/secret-segment")).status, 404);
  await get("/gov/members/proposals/abc123def?api-version=2024-07-01");
  const after = await scrape();

  const requests = (families: Map<string, Family>, labels: Record<string, string>) =>
    value(families, "consortia_http_requests_total", labels);
  const delta = (labels: Record<string, string>) =>
    requests(after, labels) - requests(before, labels);
  assert.equal(delta({ method: "POST", endpoint: "/app/log/private", status: "200" }), WRITES);
  assert.equal(
    delta({ method: "POST", endpoint: "/app/log/private/raw_text/{id}", status: "200" }),
    2,
  );
  assert.ok(delta({ method: "GET", endpoint: "/app/log/private", status: "200" }) >= 3);
  assert.ok(delta({ method: "GET", endpoint: "unmatched", status: "404" }) >= 1);
  assert.ok(requests(after, { endpoint: "/gov/members/proposals/{proposalId}" }) >= 1);
  assert.ok(requests(after, { endpoint: "/node/metrics", status: "200" }) >= 5);
  const endpoints = after
    .get("consortia_http_requests_total")!
    .samples.map((s) => s.labels["endpoint"]!);
  for (const endpoint of endpoints) {
    assert.ok(!/secret-segment|abc123def|2000|api-version/.test(endpoint), endpoint);
  }
  const latencyCount = value(after, "consortia_http_request_duration_seconds_count", {
    method: "POST",
    endpoint: "/app/log/private",
    status: "200",
  });
  assert.equal(latencyCount, requests(after, { method: "POST", endpoint: "/app/log/private" }));

  // Commits, on the primary.
  const grew = (name: string, by: number) => {
    const d = value(after, name) - value(before, name);
    assert.ok(d >= by, `${name} grew by ${d}, expected at least ${by}`);
  };
  grew("consortia_committed_transactions_total", WRITES + 2);
  grew("consortia_commit_seqno", WRITES + 2);
  grew("consortia_commit_latency_seconds_count", WRITES + 2);
  grew("consortia_ledger_written_bytes_total", 1);
  assert.ok(value(after, "consortia_last_seqno") >= value(after, "consortia_commit_seqno"));
  assert.equal(value(after, "consortia_consensus_role", { role: "Leader" }), 1);
  assert.equal(value(after, "consortia_consensus_role", { role: "Follower" }), 0);
  assert.ok(value(after, "consortia_consensus_view") >= 2);
  // The process.
  const utilization = value(after, "consortia_event_loop_utilization");
  assert.ok(utilization >= 0 && utilization <= 1, String(utilization));
  assert.ok(value(after, "consortia_process_cpu_seconds_total") > 0);
  assert.ok(value(after, "consortia_process_resident_memory_bytes") > 0);
  assert.ok(value(after, "consortia_process_heap_used_bytes") > 0);
  assert.ok(after.has("consortia_sealer_queue_depth"));
  assert.ok(after.has("consortia_snapshot_duration_seconds"));
  assert.ok(after.has("consortia_event_loop_delay_seconds"));
});

test("a write forwarded by a backup is counted on the backup, with the primary's status", async (t) => {
  const net = await Network.start(2, { sigMsInterval: 20 });
  t.after(() => net.stop());
  const primary = await net.primary();
  const backup = net.nodes.find((n) => n !== primary)!;
  const scrape = async (node: typeof primary) => {
    const reply = await httpsRequest(
      net.url(node, "/node/metrics"),
      { ca: net.tls.ca },
      "GET",
      undefined,
      { accept: "text/plain" },
    );
    return parsePrometheusText(reply.body);
  };
  const writes = { method: "POST", endpoint: "/app/log/private", status: "200" };
  const count = (families: Map<string, Family>) =>
    sampleValue(families, "consortia_http_requests_total", writes) ?? 0;
  const [primaryBefore, backupBefore] = [await scrape(primary), await scrape(backup)];
  const FORWARDED = 3;
  for (let i = 0; i < FORWARDED; i++) await net.write(backup, 3000 + i, `forwarded ${i}`);
  const [primaryAfter, backupAfter] = [await scrape(primary), await scrape(backup)];
  assert.equal(count(backupAfter) - count(backupBefore), FORWARDED);
  assert.equal(count(primaryAfter) - count(primaryBefore), 0);
  const served = (families: Map<string, Family>) =>
    sampleValue(families, "consortia_forwarded_requests_served_total") ?? 0;
  assert.equal(served(primaryAfter) - served(primaryBefore), FORWARDED);
  assert.equal(sampleValue(backupAfter, "consortia_consensus_role", { role: "Follower" }), 1);
  assert.equal(sampleValue(primaryAfter, "consortia_consensus_role", { role: "Leader" }), 1);
});
