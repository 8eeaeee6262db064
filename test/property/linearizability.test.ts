/**
 * The linearizability checker against a simulated atomic register (fast-check). Oracle: the
 * simulation itself. Each operation gets a random call time, a linearization point inside its
 * interval and a return time after it; applying the operations to a register in
 * linearization-point order gives every read's output, so the history is linearizable by
 * construction and the checker must say so. Some writes lose their answer (return +Infinity)
 * and may or may not have been applied. Then one read is made stale (it returns a value that a
 * completed write had definitely overwritten before the read was called) and the checker must
 * find the violation on that read's key.
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

const plans = fc.array(plannedOp, { minLength: 1, maxLength: 80 });
/** Long enough that most runs have a read to make stale. */
const longPlans = fc.array(plannedOp, { minLength: 30, maxLength: 80 });

test("histories of an atomic register with random latencies are linearizable", () => {
  fc.assert(
    fc.property(plans, (plan) => {
      const result = checkHistory(simulate(plan));
      assert.equal(result.kind, "linearizable", JSON.stringify(result.keys));
    }),
    { numRuns: 300 },
  );
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
  fc.assert(
    fc.property(longPlans, (plan) => {
      const history = simulate(plan);
      const candidate = staleCandidate(history);
      if (candidate === null) return;
      injected += 1;
      const read = history[candidate.read]!;
      history[candidate.read] = { ...read, output: candidate.value };
      const result = checkHistory(history);
      assert.equal(result.kind, "violation");
      const bad = result.keys.filter((v) => v.kind === "violation").map((v) => v.key);
      assert.deepEqual(bad, [read.key]);
    }),
    { numRuns: 300 },
  );
  assert.ok(injected >= 100, `only ${injected} runs had a read to make stale`);
});
