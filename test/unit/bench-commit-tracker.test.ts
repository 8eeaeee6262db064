// The bench's commit tracker: a recorded transaction counts as committed at the first observation
// whose commit covers it, and its request-to-commit latency is bucketed by the second it was
// answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { startCommitPoller } from "../../bench/commit-poller.js";
import { CommitTracker, parseTxId, type TxRef } from "../../bench/commit-tracker.js";
import { ecPrivateKeyPem } from "../../src/crypto/identity.js";
import { makePki } from "../helpers/pki.js";

test("parseTxId reads view.seqno and refuses anything else", () => {
  assert.deepEqual(parseTxId("2.17"), { view: 2, seqno: 17 });
  assert.equal(parseTxId("2-17"), null);
  assert.equal(parseTxId(17), null);
});

test("commits are matched by seqno and view, and the series buckets them by second", async () => {
  const tracker = new CommitTracker({ status: async () => "Committed" }, 1);
  const start = performance.now() - 3_000;
  // Two answers in second 0, one in second 2; responses took 4, 6 and 10 ms.
  tracker.record({ view: 2, seqno: 5 }, start + 100, 4);
  tracker.record({ view: 2, seqno: 6 }, start + 900, 6);
  tracker.record({ view: 2, seqno: 9 }, start + 2_500, 10);
  tracker.start();
  tracker.observe({ view: 2, seqno: 6 }, performance.now());
  const partial = tracker.report(performance.now());
  assert.equal(partial.committed, 2);
  assert.equal(partial.uncommitted, 1);
  tracker.observe({ view: 2, seqno: 9 }, performance.now());
  await tracker.drain(2_000);
  const report = tracker.report(performance.now());
  assert.equal(report.committed, 3);
  const series = tracker.series(start);
  assert.deepEqual(
    series.map((s) => [s.second, s.count]),
    [
      [0, 2],
      [1, 0],
      [2, 1],
    ],
  );
  // Second 0's transactions were answered ~3 s before the poll that saw them committed.
  assert.ok(series[0]!.p50Ms > 2_000 && series[0]!.p50Ms < 10_000, String(series[0]!.p50Ms));
  assert.ok(Number.isNaN(series[1]!.p50Ms));
});

test("observations from elsewhere resolve responses recorded before and after them", async () => {
  const tracker = new CommitTracker({ status: async () => "Committed" }, 5);
  tracker.start();
  const t0 = performance.now();
  tracker.record({ view: 2, seqno: 4 }, t0, 3);
  tracker.observe({ view: 2, seqno: 5 }, t0 + 10);
  tracker.observe({ view: 2, seqno: 8 }, t0 + 20);
  // An older answer arriving late covers a prefix and changes nothing.
  tracker.observe({ view: 2, seqno: 6 }, t0 + 21);
  // Recorded after the observations that covered them (the recording thread was late): each
  // is committed at the first observation covering it, never later; 0 ms after its response
  // when that observation came first.
  tracker.record({ view: 2, seqno: 5 }, t0 + 25, 30);
  tracker.record({ view: 2, seqno: 7 }, t0 + 25, 40);
  tracker.record({ view: 2, seqno: 9 }, t0 + 25, 2);
  const report = tracker.report(t0 + 1_000);
  assert.equal(report.committed, 3);
  assert.equal(report.uncommitted, 1);
  assert.equal(report.polls, 3);
  // Latencies: 10 ms after the first response, then 0 and 0 (observed before being recorded).
  assert.equal(report.commitP99Ms, 10);
  assert.equal(report.commitP50Ms, 0);
  // Request to commit: 10 + 3, (10 - 25) + 30 = 15, (20 - 25) + 40 = 35.
  assert.equal(report.endToEndP99Ms, 35);
  assert.equal(report.endToEndP50Ms, 15);
  tracker.pollFailed("boom");
  tracker.observe({ view: 2, seqno: 9 }, t0 + 30);
  await tracker.stop();
  const final = tracker.report(t0 + 1_000);
  assert.equal(final.committed, 4);
  assert.equal(final.pollErrors, 1);
  assert.equal(final.lastPollError, "boom");
});

test("the poller thread polls GET /node/commit over mTLS and timestamps each answer", async () => {
  const pki = await makePki();
  const keyPem = ecPrivateKeyPem(pki.nodeKeys.privateKey);
  let seqno = 10;
  let fail = false;
  const server = createServer({ cert: pki.nodeCertPem, key: keyPem }, (req, res) => {
    if (req.url !== "/node/commit" || fail) {
      res.writeHead(fail ? 503 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "X", message: "no" } }));
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ transaction_id: `3.${seqno++}` }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const seen: { commit: TxRef; at: number }[] = [];
  const errors: string[] = [];
  const tls = {
    ca: Buffer.from(pki.serviceCertPem),
    cert: Buffer.from(pki.nodeCertPem),
    key: Buffer.from(keyPem),
  };
  const before = performance.now();
  const poller = startCommitPoller(
    { url: `https://127.0.0.1:${port}`, tls, intervalMs: 5, maxInFlight: 2 },
    (commit, at) => seen.push({ commit, at }),
    (message) => errors.push(message),
  );
  try {
    await poller.ready;
    await new Promise((r) => setTimeout(r, 200));
    fail = true;
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    await poller.stop();
    server.close();
  }
  assert.ok(seen.length >= 5, `${seen.length} observations`);
  // Two polls are in flight at once: the first two answers (3.10 and 3.11) may come back in
  // either order.
  assert.ok(seen.every((s) => s.commit.view === 3));
  assert.ok([10, 11].includes(seen[0]!.commit.seqno), `first ${seen[0]!.commit.seqno}`);
  assert.ok(
    seen.some((s) => s.commit.seqno === 10),
    "the first answer is observed",
  );
  // Times are on this thread's clock: after the start, not after now, and non-decreasing.
  const after = performance.now();
  for (const [i, s] of seen.entries()) {
    assert.ok(s.at >= before - 1 && s.at <= after + 1, `observation at ${s.at}`);
    if (i > 0) assert.ok(s.at >= seen[i - 1]!.at - 1);
  }
  assert.ok(errors.length > 0 && errors.every((e) => e.includes("503")), errors.join("; "));
});
