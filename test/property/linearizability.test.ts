/**
 * The linearizability checker against a simulated atomic register (fast-check). Oracle: the
 * simulation itself. Each operation gets a random call time, a linearization point inside its
 * interval and a return time after it; applying the operations to a register in
 * linearization-point order gives every read's output, so the history is linearizable by
 * construction and the checker must say so. Some writes lose their answer (return +Infinity)
 * and may or may not have been applied. Then one read is made stale (it returns a value that a
 * completed write had definitely overwritten before the read was called) and the checker must
 * find the violation on that read's key. Last, small histories with arbitrary reads are checked
 * against brute force (every order that respects real time).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { checkHistory, type HistoryOp } from "../../src/check/linearizability.js";

interface Planned {
  readonly client: number;
  readonly key: string;
  readonly isWrite: boolean;
  readonly callMs: number;
  readonly pointMs: number;
  readonly returnMs: number;
  /** A write whose answer was lost; `applied` says whether it took effect. */
  readonly lost: boolean;
  readonly applied: boolean;
}

const plannedOp = fc
  .record({
    client: fc.integer({ min: 0, max: 4 }),
    key: fc.constantFrom("a", "b"),
    isWrite: fc.boolean(),
    callMs: fc.integer({ min: 0, max: 400 }),
    toPointMs: fc.integer({ min: 0, max: 50 }),
    toReturnMs: fc.integer({ min: 0, max: 50 }),
    lost: fc.integer({ min: 0, max: 9 }).map((n) => n < 3),
    applied: fc.boolean(),
  })
  .map((p): Planned => ({
    client: p.client,
    key: p.key,
    isWrite: p.isWrite,
    callMs: p.callMs,
    pointMs: p.callMs + p.toPointMs,
    returnMs: p.isWrite && p.lost ? Infinity : p.callMs + p.toPointMs + p.toReturnMs,
    lost: p.isWrite && p.lost,
    applied: !(p.isWrite && p.lost) || p.applied,
  }));

/** Runs the plan on an atomic register: operations take effect at their points, in order. */
function simulate(plan: readonly Planned[]): HistoryOp[] {
  const order = plan.map((_, i) => i).sort((x, y) => plan[x]!.pointMs - plan[y]!.pointMs || x - y);
  const register = new Map<string, string>();
  const history: HistoryOp[] = new Array(plan.length);
  for (const i of order) {
    const p = plan[i]!;
    const base = { client: p.client, key: p.key, callMs: p.callMs, returnMs: p.returnMs };
    if (p.isWrite) {
      const value = `v${i}`;
      if (p.applied) register.set(p.key, value);
      history[i] = { ...base, input: { kind: "write", value }, output: null };
    } else {
      history[i] = { ...base, input: { kind: "read" }, output: register.get(p.key) ?? null };
    }
  }
  return history;
}

/**
 * Search budget per key in these properties, in steps (deterministic, unlike a time limit). Over
 * 2,000 seeds of the stale-read property (600,000 histories) 17 keys needed more than 20,000
 * steps and the most was 77,000 (0.02 s), for a stale read after a burst of concurrent writes.
 * A key over budget is "unknown", which fails the property; with shrinking bounded below, such
 * a failure costs at most 200 checks of at most twice this per key (the blame search).
 */
const STEPS_MAX = 300_000;

/**
 * How many candidates fast-check's shrinking may try after a failure (fc.limitShrink). Unbounded,
 * shrinking an 80-operation history took 30,000 checks (over 3 minutes, and ten times that with
 * the default budget of 2,000,000 steps); bounded, a failure costs at most this many checks and
 * still reports a failing history, the smallest found by then, with its seed and path.
 */
const SHRINK_RUNS_MAX = 200;

/** fc.assert of `check` over `arb`, with shrinking bounded by SHRINK_RUNS_MAX. */
function assertProperty<T>(arb: fc.Arbitrary<T>, numRuns: number, check: (value: T) => void) {
  fc.assert(fc.property(fc.limitShrink(arb, SHRINK_RUNS_MAX), check), { numRuns });
}

const plans = fc.array(plannedOp, { minLength: 1, maxLength: 80 });
/** Long enough that most runs have a read to make stale. */
const longPlans = fc.array(plannedOp, { minLength: 30, maxLength: 80 });

test("a failing property stops shrinking after SHRINK_RUNS_MAX checks", () => {
  let checks = 0;
  let firstFailure = 0;
  assert.throws(() =>
    assertProperty(longPlans, 100, (plan) => {
      checks += 1;
      const ok = plan.reduce((sum, op) => sum + op.callMs, 0) < 2000;
      if (!ok && firstFailure === 0) firstFailure = checks;
      // Unbounded, fast-check takes 400 to 700 checks to shrink this to the boundary.
      assert.ok(ok, "sum of call times reaches 2000");
    }),
  );
  assert.ok(checks - firstFailure <= SHRINK_RUNS_MAX, `${checks - firstFailure} checks`);
  assert.ok(checks - firstFailure >= SHRINK_RUNS_MAX / 2, `${checks - firstFailure} checks`);
});

test("histories of an atomic register with random latencies are linearizable", () => {
  assertProperty(plans, 300, (plan) => {
    const result = checkHistory(simulate(plan), STEPS_MAX);
    assert.equal(result.kind, "linearizable", JSON.stringify(result.keys));
  });
});

/** A read that could be made stale: a completed write w1 overwritten by a completed w2 before it. */
function staleCandidate(history: readonly HistoryOp[]): { read: number; value: string } | null {
  for (let r = 0; r < history.length; r++) {
    const read = history[r]!;
    if (read.input.kind !== "read") continue;
    for (const w1 of history) {
      if (w1.key !== read.key || w1.input.kind !== "write" || w1.returnMs === Infinity) continue;
      const overwritten = history.some(
        (w2) =>
          w2.key === read.key &&
          w2.input.kind === "write" &&
          w2.callMs > w1.returnMs &&
          w2.returnMs < read.callMs,
      );
      if (overwritten) return { read: r, value: w1.input.value };
    }
  }
  return null;
}

test("a history with one injected stale read is not linearizable, on that key", () => {
  let injected = 0;
  assertProperty(longPlans, 300, (plan) => {
    const history = simulate(plan);
    const candidate = staleCandidate(history);
    if (candidate === null) return;
    injected += 1;
    const read = history[candidate.read]!;
    history[candidate.read] = { ...read, output: candidate.value };
    const result = checkHistory(history, STEPS_MAX);
    const verdicts = result.keys.map((v) => `${v.key}:${v.kind}`).join(" ");
    assert.equal(result.kind, "violation", verdicts);
    const bad = result.keys.filter((v) => v.kind === "violation").map((v) => v.key);
    assert.deepEqual(bad, [read.key]);
  });
  assert.ok(injected >= 100, `only ${injected} runs had a read to make stale`);
});

/**
 * The checker's answer on a small history, found by brute force: tries every order of the
 * operations that respects real time (a before b when a returned before b was called), every
 * write of unknown outcome either in it or left out, on a register starting absent.
 */
function linearizableByBruteForce(history: readonly HistoryOp[]): boolean {
  const ops = history.filter((op) => !(op.input.kind === "read" && op.returnMs === Infinity));
  const keys = new Set(ops.map((op) => op.key));
  return [...keys].every((key) => {
    const mine = ops.filter((op) => op.key === key);
    const done = new Array<boolean>(mine.length).fill(false);
    const search = (state: string | null): boolean => {
      const open = mine.flatMap((op, i) => (done[i] ? [] : [i]));
      if (open.every((i) => mine[i]!.returnMs === Infinity)) return true; // the rest never ran
      const earliestReturn = Math.min(...open.map((i) => mine[i]!.returnMs));
      return open.some((i) => {
        const op = mine[i]!;
        if (op.callMs > earliestReturn) return false; // another must come first
        if (op.input.kind === "read" && op.output !== state) return false;
        done[i] = true;
        const ok = search(op.input.kind === "write" ? op.input.value : state);
        done[i] = false;
        return ok;
      });
    };
    return search(null);
  });
}

const smallOp = (values: readonly string[]) =>
  fc
    .record({
      client: fc.integer({ min: 0, max: 3 }),
      key: fc.constantFrom("a", "b"),
      isWrite: fc.boolean(),
      value: fc.constantFrom(...values),
      readsAbsent: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      callMs: fc.integer({ min: 0, max: 12 }),
      lengthMs: fc.integer({ min: 0, max: 6 }),
      unknown: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
    })
    .map((o): HistoryOp => ({
      client: o.client,
      key: o.key,
      input: o.isWrite ? { kind: "write", value: o.value } : { kind: "read" },
      output: o.isWrite || o.readsAbsent ? null : o.value,
      callMs: o.callMs,
      returnMs: o.unknown ? Infinity : o.callMs + o.lengthMs,
    }));

/** Histories of up to 8 operations: writes of unique values, or of values that may repeat. */
const smallHistories = fc.oneof(
  fc
    .array(smallOp(["x", "y", "z", "w", "u"]), { minLength: 1, maxLength: 8 })
    .map((ops) =>
      ops.map((op, i) =>
        op.input.kind === "write"
          ? { ...op, input: { kind: "write" as const, value: `v${i}` } }
          : { ...op, output: op.output === null ? null : `v${op.output.charCodeAt(0) % 8}` },
      ),
    ),
  fc.array(smallOp(["x", "y", "z"]), { minLength: 1, maxLength: 8 }),
);

/**
 * The return time of the first completed operation after whose return the key's history is not
 * linearizable by brute force: operations called later left out, those still running of
 * unknown outcome.
 */
function firstStuckReturnMs(ops: readonly HistoryOp[]): number {
  const returns = ops.map((op) => op.returnMs).filter((t) => t !== Infinity);
  const stuck = [...new Set(returns)]
    .sort((a, b) => a - b)
    .find((t) => {
      const prefix = ops
        .filter((op) => op.callMs <= t)
        .map((op) => (op.returnMs > t ? { ...op, returnMs: Infinity } : op));
      return !linearizableByBruteForce(prefix);
    });
  assert.ok(stuck !== undefined, "a violation has an operation to blame");
  return stuck;
}

test("on small histories the checker agrees with trying every order", () => {
  let violations = 0;
  assertProperty(smallHistories, 2000, (history) => {
    const expected = linearizableByBruteForce(history);
    if (!expected) violations += 1;
    const result = checkHistory(history);
    assert.equal(result.kind, expected ? "linearizable" : "violation");
    for (const verdict of result.keys) {
      const mine = history.filter((op) => op.key === verdict.key);
      assert.equal(verdict.kind, linearizableByBruteForce(mine) ? "linearizable" : "violation");
      if (verdict.kind !== "violation") continue;
      // The blamed operation is the first one whose return the history could not get past.
      const stuck = verdict.ops[verdict.stuckAt]!;
      assert.notEqual(stuck.returnMs, Infinity);
      assert.equal(stuck.returnMs, firstStuckReturnMs(verdict.ops));
    }
  });
  assert.ok(violations >= 200, `only ${violations} of 2000 histories were not linearizable`);
});
