// Commit latency on the primary (src/node/metrics/commit-latency.ts): each executed seqno is
// observed once, when a commit covers it, with the time between the two calls; seqnos this node
// did not execute, or whose ring slot was reused, or recorded before a role change, are not.
// The oracle is the arithmetic of the times given, bucket by bucket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CommitLatency, RING_SLOTS } from "../../../../src/node/metrics/commit-latency.js";

test("each executed transaction is observed once, at the commit that covers it", () => {
  const c = new CommitLatency(10);
  c.onExecuted(11, 1000);
  c.onExecuted(12, 1004);
  c.onCommitted(11, 1002); // 2 ms
  c.onCommitted(11, 1500); // nothing new
  c.onCommitted(13, 1030); // 12: 26 ms; 13 was never executed here (a signature)
  assert.equal(c.latency.count, 2);
  assert.ok(Math.abs(c.latency.sum - 0.028) < 1e-9);
  // 2 ms in the 2.5 ms bucket, 26 ms in the 50 ms one.
  const cumulative = c.latency.cumulative();
  const at = (bound: number) => cumulative[c.latency.bounds.indexOf(bound)];
  assert.equal(at(0.001), 0);
  assert.equal(at(0.0025), 1);
  assert.equal(at(0.025), 1);
  assert.equal(at(0.05), 2);
  assert.equal(c.committedCount, 3);
});

test("a role change forgets recorded executions", () => {
  const c = new CommitLatency(0);
  c.onExecuted(1, 0);
  c.forget();
  c.onCommitted(1, 5);
  assert.equal(c.latency.count, 0);
  assert.equal(c.committedCount, 1);
});

test("a slot reused by a later seqno does not time the earlier one", () => {
  const c = new CommitLatency(0);
  c.onExecuted(1, 0);
  c.onExecuted(1 + RING_SLOTS, 100);
  c.onCommitted(1 + RING_SLOTS, 110);
  assert.equal(c.latency.count, 1);
  assert.ok(Math.abs(c.latency.sum - 0.01) < 1e-9);
  assert.equal(c.committedCount, 1 + RING_SLOTS);
});
