// The bench's commit tracker: a recorded transaction counts as committed at the first poll whose
// commit covers it, and its request-to-commit latency is bucketed by the second it was answered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { CommitTracker, parseTxId, type TxRef } from "../../bench/commit-tracker.js";

test("parseTxId reads view.seqno and refuses anything else", () => {
  assert.deepEqual(parseTxId("2.17"), { view: 2, seqno: 17 });
  assert.equal(parseTxId("2-17"), null);
  assert.equal(parseTxId(17), null);
});

test("commits are matched by seqno and view, and the series buckets them by second", async () => {
  let commit: TxRef = { view: 2, seqno: 0 };
  const tracker = new CommitTracker(
    { commit: async () => commit, status: async () => "Committed" },
    1,
    1,
  );
  const start = performance.now() - 3_000;
  // Two answers in second 0, one in second 2; responses took 4, 6 and 10 ms.
  tracker.record({ view: 2, seqno: 5 }, start + 100, 4);
  tracker.record({ view: 2, seqno: 6 }, start + 900, 6);
  tracker.record({ view: 2, seqno: 9 }, start + 2_500, 10);
  tracker.start();
  commit = { view: 2, seqno: 6 };
  await new Promise((r) => setTimeout(r, 30));
  const partial = tracker.report(performance.now());
  assert.equal(partial.committed, 2);
  assert.equal(partial.uncommitted, 1);
  commit = { view: 2, seqno: 9 };
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
