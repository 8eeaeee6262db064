// The TurnSlicer (src/http/turn-slicer.ts): tasks run at once while a slice has time, then wait
// for a slice that begins after the event loop has polled again. First with a fake clock and a
// deferral queue (each "turn" runs what was deferred before it), then on the real event loop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionSlicer, TurnSlicer } from "../../../src/http/turn-slicer.js";

/** A clock the tasks advance, and a check phase the test runs turn by turn. */
function fakeLoop(budgetMs: number) {
  let now = 0;
  let deferred: (() => void)[] = [];
  const slicer = new TurnSlicer({
    budgetMs,
    now: () => now,
    defer: (task) => deferred.push(task),
  });
  return {
    slicer,
    advance: (ms: number) => (now += ms),
    /** Runs the check phase: what was deferred before it (deferrals made in it wait a turn). */
    checkPhase: () => {
      const due = deferred;
      deferred = [];
      for (const task of due) task();
    },
    get pendingDeferrals() {
      return deferred.length;
    },
  };
}

test("tasks run at once while the slice has time, in order", () => {
  const loop = fakeLoop(1);
  const ran: number[] = [];
  for (let i = 0; i < 5; i++) loop.slicer.submit(() => ran.push(i));
  assert.deepEqual(ran, [0, 1, 2, 3, 4]);
  assert.equal(loop.slicer.queued, 0);
});

test("past the budget, tasks wait for a check phase after the next poll", () => {
  const loop = fakeLoop(1);
  const ran: number[] = [];
  const task = (i: number) => () => {
    ran.push(i);
    loop.advance(0.4);
  };
  // The poll phase: six requests arrive together.
  for (let i = 0; i < 6; i++) loop.slicer.submit(task(i));
  // 0.4 ms each: the third starts at 0.8 ms (< 1), the fourth at 1.2 ms waits.
  assert.deepEqual(ran, [0, 1, 2]);
  assert.equal(loop.slicer.queued, 3);
  // This turn's check phase: nothing more runs (the loop has not polled yet).
  loop.checkPhase();
  assert.deepEqual(ran, [0, 1, 2]);
  // The next turn's check phase, after its poll: a new slice of one budget.
  loop.checkPhase();
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5]);
  assert.equal(loop.slicer.queued, 0);
});

test("a long queue drains one budget per turn, and new arrivals queue behind it", () => {
  const loop = fakeLoop(1);
  const ran: string[] = [];
  const task = (name: string) => () => {
    ran.push(name);
    loop.advance(0.5);
  };
  for (let i = 0; i < 10; i++) loop.slicer.submit(task(`a${i}`));
  assert.deepEqual(ran, ["a0", "a1"]);
  loop.checkPhase();
  loop.checkPhase();
  assert.deepEqual(ran.slice(2), ["a2", "a3"]);
  // The next poll: another request arrives while eight wait; it goes behind them.
  loop.slicer.submit(task("b0"));
  assert.equal(ran.length, 4);
  for (let turn = 0; turn < 4; turn++) loop.checkPhase();
  assert.deepEqual(ran, [...Array.from({ length: 10 }, (_, i) => `a${i}`), "b0"]);
  assert.equal(loop.slicer.queued, 0);
});

test("once the queue is empty, the next turn's arrivals open a fresh slice", () => {
  const loop = fakeLoop(1);
  let count = 0;
  const task = () => {
    count++;
    loop.advance(0.6);
  };
  loop.slicer.submit(task);
  loop.slicer.submit(task);
  loop.slicer.submit(task);
  assert.equal(count, 2);
  loop.checkPhase();
  loop.checkPhase();
  assert.equal(count, 3);
  loop.advance(10);
  loop.checkPhase();
  assert.equal(loop.pendingDeferrals, 0);
  // A new turn: its first two tasks run at once again.
  loop.slicer.submit(task);
  loop.slicer.submit(task);
  assert.equal(count, 5);
});

test("a task that throws is rethrown, and the rest of the queue still runs", () => {
  const loop = fakeLoop(1);
  const ran: number[] = [];
  loop.slicer.submit(() => loop.advance(2));
  loop.slicer.submit(() => {
    throw new Error("boom");
  });
  loop.slicer.submit(() => ran.push(1));
  loop.checkPhase();
  assert.throws(() => loop.checkPhase(), /boom/);
  assert.deepEqual(ran, []);
  loop.checkPhase();
  assert.deepEqual(ran, [1]);
});

test("ConnectionSlicer: urgent tasks skip the queue unless their connection has one in it", () => {
  const loop = fakeLoop(1);
  const slicing = new ConnectionSlicer<object>(loop.slicer);
  const [a, b] = [{}, {}];
  const ran: string[] = [];
  const task = (name: string) => () => {
    ran.push(name);
    loop.advance(0.6);
  };
  slicing.submit(a, false, task("a1"));
  slicing.submit(a, false, task("a2"));
  slicing.submit(a, false, task("a3"));
  assert.deepEqual(ran, ["a1", "a2"]);
  slicing.submit(b, true, task("b-urgent"));
  slicing.submit(a, true, task("a-urgent"));
  assert.deepEqual(ran, ["a1", "a2", "b-urgent"], "a's urgent task waits behind a3");
  for (let turn = 0; turn < 4; turn++) loop.checkPhase();
  assert.deepEqual(ran, ["a1", "a2", "b-urgent", "a3", "a-urgent"]);
  // a's queue is empty again: its next urgent task runs at once.
  slicing.submit(a, true, task("a-urgent-2"));
  assert.equal(ran.at(-1), "a-urgent-2");
});

test("a budget that is not positive is refused", () => {
  assert.throws(() => new TurnSlicer({ budgetMs: 0 }), RangeError);
  assert.throws(() => new TurnSlicer({ budgetMs: Number.NaN }), RangeError);
});

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: a request's handling
  }
}

test("on the real event loop, timers and IO run between slices", async () => {
  const slicer = new TurnSlicer({ budgetMs: 1 });
  let done = 0;
  const total = 30;
  const finished = new Promise<void>((resolve) => {
    for (let i = 0; i < total; i++) {
      slicer.submit(() => {
        busy(0.5);
        if (++done === total) resolve();
      });
    }
  });
  // Due in 2 ms; without slicing it would fire only after all 15 ms of tasks.
  const doneAtTimer = await new Promise<number>((resolve) => setTimeout(() => resolve(done), 2));
  assert.ok(doneAtTimer < total, `the timer waited for all ${total} tasks`);
  await finished;
  assert.equal(done, total);
});
