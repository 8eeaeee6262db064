/**
 * The linearizability checker (src/check/linearizability.ts) on hand-made histories of one
 * register per key, whose verdicts are known by reasoning about every possible order: stale
 * reads, lost writes, reads of values never written, writes with unknown outcome, concurrent
 * operations, the search budget, and the table printed for a violation.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  checkHistory,
  checkKey,
  minimizeViolation,
  narrowUnknownWrites,
  type HistoryOp,
  type KeyVerdict,
} from "../../../src/check/linearizability.js";
import { formatViolation } from "../../../src/check/history-table.js";

const W = (
  client: number,
  value: string,
  callMs: number,
  returnMs: number,
  key = "k",
): HistoryOp => ({
  client,
  key,
  input: { kind: "write", value },
  output: null,
  callMs,
  returnMs,
});
const R = (
  client: number,
  output: string | null,
  callMs: number,
  returnMs: number,
  key = "k",
): HistoryOp => ({
  client,
  key,
  input: { kind: "read" },
  output,
  callMs,
  returnMs,
});

function kindOf(ops: HistoryOp[]): KeyVerdict["kind"] {
  return checkKey("k", ops).kind;
}

test("sequential writes and reads that see the latest write are linearizable", () => {
  assert.equal(
    kindOf([R(0, null, 0, 1), W(0, "a", 2, 3), R(1, "a", 4, 5), W(1, "b", 6, 7), R(0, "b", 8, 9)]),
    "linearizable",
  );
});

test("a stale read (the value before a completed overwrite) is a violation", () => {
  const verdict = checkKey("k", [W(0, "a", 0, 1), W(0, "b", 2, 3), R(1, "a", 4, 5)]);
  assert.equal(verdict.kind, "violation");
  assert.equal(verdict.kind === "violation" && verdict.stuckAt, 2);
});

test("a lost write (a completed write that a later read does not see) is a violation", () => {
  assert.equal(kindOf([W(0, "a", 0, 1), R(1, null, 2, 3)]), "violation");
});

test("a read of a value nobody wrote is a violation", () => {
  assert.equal(kindOf([W(0, "a", 0, 1), R(1, "zzz", 2, 3)]), "violation");
  assert.equal(kindOf([R(1, "zzz", 2, 3)]), "violation");
});

test("a write with unknown outcome may take effect later, or never", () => {
  // Visible long after its call: fine.
  assert.equal(
    kindOf([W(0, "a", 0, Infinity), R(1, null, 1, 2), R(1, "a", 50, 51)]),
    "linearizable",
  );
  // Never visible: fine too.
  assert.equal(
    kindOf([W(0, "a", 0, Infinity), R(1, null, 1, 2), R(1, null, 50, 51)]),
    "linearizable",
  );
  // But once seen it cannot be unseen.
  assert.equal(kindOf([W(0, "a", 0, Infinity), R(1, "a", 1, 2), R(1, null, 50, 51)]), "violation");
  // And it cannot take effect before its call.
  assert.equal(kindOf([R(1, "a", 0, 1), W(0, "a", 2, Infinity)]), "violation");
});

test("a read concurrent with a write may see the old or the new value", () => {
  assert.equal(kindOf([W(0, "a", 0, 1), W(0, "b", 2, 10), R(1, "a", 3, 4)]), "linearizable");
  assert.equal(kindOf([W(0, "a", 0, 1), W(0, "b", 2, 10), R(1, "b", 3, 4)]), "linearizable");
  // Two overlapping writes, then reads that agree on one order.
  assert.equal(
    kindOf([W(0, "a", 0, 10), W(1, "b", 1, 9), R(2, "a", 11, 12), R(2, "a", 13, 14)]),
    "linearizable",
  );
  assert.equal(kindOf([W(0, "a", 0, 10), W(1, "b", 1, 9), R(2, "b", 11, 12)]), "linearizable");
});

test("once a concurrent read saw the new value, a later read may not see the old one", () => {
  assert.equal(
    kindOf([W(0, "a", 0, 1), W(0, "b", 2, 20), R(1, "b", 3, 4), R(2, "a", 5, 6)]),
    "violation",
  );
  // Overlapping writes seen in two different orders by sequential reads.
  assert.equal(
    kindOf([W(0, "a", 0, 10), W(1, "b", 1, 9), R(2, "a", 11, 12), R(2, "b", 13, 14)]),
    "violation",
  );
});

test("operations that touch at one instant count as concurrent", () => {
  assert.equal(kindOf([W(0, "a", 0, 5), R(1, "a", 5, 6)]), "linearizable");
  assert.equal(kindOf([R(1, "a", 0, 5), W(0, "a", 5, 6)]), "linearizable");
});

test("keys are checked on their own, and the violation names its key", () => {
  const result = checkHistory([
    W(0, "a", 0, 1, "x"),
    R(1, "a", 2, 3, "x"),
    W(0, "a", 0, 1, "y"),
    R(1, null, 2, 3, "y"),
    // A value written to x is not visible on y, and vice versa.
    R(2, null, 4, 5, "z"),
  ]);
  assert.equal(result.kind, "violation");
  assert.deepEqual(
    result.keys.map((v) => [v.key, v.kind]),
    [
      ["x", "linearizable"],
      ["y", "violation"],
      ["z", "linearizable"],
    ],
  );
});

test("reads with unknown outcome constrain nothing", () => {
  const result = checkHistory([W(0, "a", 0, 1), R(1, "never", 2, Infinity)]);
  assert.equal(result.kind, "linearizable");
});

test("a key whose search exceeds its step budget is unknown, not a hang", () => {
  // Many concurrent writes followed by a read of an impossible value: the search must try
  // every order before it can say no.
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 20; i++) ops.push(W(i, `v${i}`, 0, 100));
  ops.push(R(99, "impossible", 200, 201));
  assert.equal(checkKey("k", ops, 1000).kind, "unknown");
  assert.equal(checkHistory(ops, 1000).kind, "unknown");
  // With fewer writes the default budget is enough for the search to end with a verdict.
  assert.equal(checkKey("k", ops.slice(0, 12).concat(ops.slice(-1))).kind, "violation");
});

test("a violation prints the key's operations with the stuck one marked", () => {
  const verdict = checkKey("k", [
    W(0, "a", 1000, 1001),
    W(3, "b", 1002, 1003.5),
    { ...R(1, "a", 1004, 1005), node: 2 },
    W(2, "c", 1006, Infinity),
  ]);
  assert.equal(verdict.kind, "violation");
  if (verdict.kind !== "violation") return;
  const text = formatViolation(verdict, 1000);
  const lines = text.split("\n");
  assert.match(lines[0]!, /^key k: not linearizable \(4 operations/);
  assert.match(lines[1]!, /#\s+client\s+node\s+op\s+value\s+call ms\s+return ms/);
  assert.match(lines[3]!, /1\s+3\s+-\s+write\s+"b"\s+2\.0\s+3\.5/);
  assert.match(lines[4]!, /2\s+1\s+2\s+ read\s+"a"\s+4\.0\s+5\.0\s+<- no linearization/);
  assert.match(lines[5]!, /3\s+2\s+-\s+write\s+"c"\s+6\.0\s+\?$/);
  assert.match(formatViolation(verdict, 1000, "minimized"), /^key k, minimized: not linearizable/);
});

test("a write of unknown outcome that no read saw is dropped; one that was seen is bounded", () => {
  const unseen = W(0, "a", 0, Infinity);
  const seen = W(1, "b", 1, Infinity);
  const narrowed = narrowUnknownWrites([unseen, seen, R(2, "b", 5, 7), R(3, "b", 6, 8)]);
  assert.deepEqual(
    narrowed.map((op) => [op.input.kind, op.returnMs]),
    [
      ["write", 7],
      ["read", 7],
      ["read", 8],
    ],
  );
  // Repeated values: nothing can be said, nothing changes.
  const repeated = [W(0, "a", 0, Infinity), W(1, "a", 1, 2)];
  assert.deepEqual(narrowUnknownWrites(repeated), repeated);
  // A value seen before its write was called stays unbounded, and the search rejects it.
  const early = [R(1, "a", 0, 1), W(0, "a", 2, Infinity)];
  assert.deepEqual(narrowUnknownWrites(early), early);
  assert.equal(checkHistory(early).kind, "violation");
});

test("many lost writes that nobody saw do not exhaust the search", () => {
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 300; i++) {
    ops.push(W(i % 4, `lost${i}`, i * 10, Infinity));
    ops.push(W(i % 4, `ok${i}`, i * 10 + 1, i * 10 + 3));
    ops.push(R(4, `ok${i}`, i * 10 + 4, i * 10 + 5));
  }
  assert.equal(checkHistory(ops, 100_000).kind, "linearizable");
  ops.push(R(4, "ok3", 5000, 5001)); // stale
  assert.equal(checkHistory(ops, 100_000).kind, "violation");
});

test("a violation is minimized to the operations that make it, stale read kept stale", () => {
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 40; i++) {
    ops.push(W(i % 3, `v${i}`, i * 10, i * 10 + 2));
    ops.push(R(3, `v${i}`, i * 10 + 3, i * 10 + 4));
  }
  ops.push(R(4, "v10", 1000, 1001)); // stale: v39 was written and read before
  for (let i = 40; i < 45; i++) ops.push(W(0, `v${i}`, i * 100, i * 100 + 1));
  const verdict = checkKey("k", ops);
  assert.equal(verdict.kind, "violation");
  if (verdict.kind !== "violation") return;
  const small = minimizeViolation(verdict);
  assert.ok(small.ops.length <= 4, JSON.stringify(small.ops));
  // Still a violation, and still about v10 being read after something newer.
  assert.equal(checkKey("k", small.ops).kind, "violation");
  assert.ok(small.ops.some((op) => op.input.kind === "write" && op.input.value === "v10"));
  assert.ok(
    small.ops.some((op) => op.input.kind === "read" && op.output === "v10" && op.callMs === 1000),
  );
});

/**
 * Key "a" of the history that fast-check's seed 615 generated in test/property: 17 operations
 * called within 8 ms of each other, then a stale read (v7, overwritten by v42 before it was
 * called). To reject it the search must rule out every order of the burst, which took 2.5
 * million steps (over the default budget: the key was "unknown", the property failed and
 * fast-check shrank it for minutes) before writes were held back while a read of the current
 * value is still to come.
 */
const burstThenStaleRead: HistoryOp[] = [
  W(2, "v36", 1, 30),
  R(3, "v45", 2, 81),
  W(3, "v63", 2, Infinity),
  W(1, "v7", 3, 40),
  W(1, "v65", 3, 50),
  W(0, "v43", 4, Infinity),
  W(0, "v45", 4, 42),
  W(0, "v27", 5, 66),
  W(1, "v24", 5, 25),
  W(2, "v50", 5, Infinity),
  R(0, "v45", 6, 74),
  W(1, "v14", 6, 98),
  R(1, "v25", 6, 11),
  R(2, "v43", 6, 20),
  W(3, "v59", 6, 59),
  R(4, "v27", 7, 66),
  R(4, "v59", 7, 92),
  W(0, "v17", 8, 53),
  W(0, "v25", 8, 37),
  R(1, "v17", 8, 60),
  R(1, "v27", 28, 76),
  R(0, "v59", 62, 94),
  R(2, "v59", 77, 132),
  R(0, "v59", 99, 106),
  W(0, "v42", 184, 189),
  W(3, "v34", 204, 287),
  R(2, "v7", 256, 286),
  W(3, "v51", 275, 362),
  W(3, "v37", 337, 390),
  R(3, "v9", 362, 444),
  R(1, "v9", 388, 412),
  R(4, "v37", 392, 397),
  R(0, "v9", 394, 431),
  W(2, "v9", 398, 403),
];

test("a stale read after a burst of concurrent writes is found within a small budget", () => {
  const result = checkHistory(burstThenStaleRead, 100_000);
  assert.equal(result.kind, "violation");
  const verdict = result.keys[0]!;
  assert.equal(verdict.kind, "violation");
  if (verdict.kind !== "violation") return;
  const stuck = verdict.ops[verdict.stuckAt]!;
  assert.deepEqual([stuck.input.kind, stuck.output, stuck.callMs], ["read", "v7", 256]);
  // Without the stale read (it saw v34 instead) the same burst is linearizable, quickly.
  const fixed = burstThenStaleRead.map((op) =>
    op.output === "v7" ? { ...op, output: "v34" } : op,
  );
  const ok = checkHistory(fixed, 100_000);
  assert.equal(ok.kind, "linearizable");
  assert.ok(ok.keys[0]!.kind === "linearizable" && ok.keys[0]!.steps < 10_000);
});

test("with repeated values writes are not held back for pending reads", () => {
  // b is written twice: a read of b may come after an overwrite by c, so must not be pruned.
  const ops = [W(0, "b", 0, 10), W(1, "c", 1, 9), W(2, "b", 2, 20), R(3, "c", 11, 12)];
  assert.equal(kindOf([...ops, R(3, "b", 21, 22)]), "linearizable");
  // With unique values, once c overwrote b, b is gone for good.
  assert.equal(
    kindOf([W(0, "b", 0, 10), W(1, "c", 1, 9), R(3, "c", 11, 12), R(3, "b", 21, 22)]),
    "violation",
  );
});

test("register values no pending read can see share one cache entry", () => {
  // 12 concurrent writes, only v0 ever read, and that read is stale. The search must try every
  // subset of the other 11 before v0: with each subset's last value cached separately that is
  // 92,000 steps; with those values all "dead", 29,000.
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 12; i++) ops.push(W(i, `v${i}`, i, 100));
  ops.push(W(0, "x", 200, 201), R(1, "v0", 300, 301));
  assert.equal(checkKey("k", ops, 50_000).kind, "violation");
});

test("a violation whose blame search runs out of budget still blames a completed operation", () => {
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 12; i++) ops.push(W(i, `v${i}`, i, 100));
  ops.push(W(0, "x", 200, 201), R(1, "v0", 300, 301));
  // The least budget the search needs: the blame's prefix searches then have too little.
  let lo = 1;
  let hi = 1_000_000;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (checkKey("k", ops, mid).kind === "unknown") lo = mid + 1;
    else hi = mid;
  }
  const tight = checkKey("k", ops, lo);
  assert.equal(tight.kind, "violation");
  if (tight.kind !== "violation") return;
  assert.notEqual(tight.ops[tight.stuckAt]!.returnMs, Infinity);
  // With room to spare the blame is the stale read.
  const roomy = checkKey("k", ops);
  assert.ok(roomy.kind === "violation" && roomy.ops[roomy.stuckAt]!.output === "v0");
});
