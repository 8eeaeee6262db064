// Ballots in a worker thread (src/js/ballot-pool.ts, ballot-worker.ts, ballot-view.ts): hostile
// ballots (allocation loop, infinite loop, 100,000 nested parentheses, one endless C call) end as
// vote failures within a bounded time while this thread's event loop keeps running, the worker
// is replaced after a limit or the watchdog and the next ballot still votes, and ballots read
// the governance tables copied into the view, read-only.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { utf8 } from "../../../src/base/bytes.js";
import { Store } from "../../../src/kv/store.js";
import { BALLOT_THREAD_NICE, BallotPool, type BallotJob } from "../../../src/js/ballot-pool.js";
import { ballotViewStamp, readBallotView } from "../../../src/js/ballot-view.js";
import { STACK_OVERFLOW_REASON } from "../../../src/js/ballot-protocol.js";
import { OUT_OF_MEMORY_REASON, TIMEOUT_REASON } from "../../../src/js/constitution.js";
import type { JsCallOutcome } from "../../../src/gov/constitution-runner.js";

const GOV_MAP = "public:ccf.gov.members.info";
const APP_MAP = "public:records";

const ALLOCATION_LOOP =
  "export function vote(p, id) { const a = []; while (true) a.push(new Array(1e6).fill(1)); }";
const INFINITE_LOOP = "export function vote() { while (true) {} }";
const DEEP_PARENS = `export function vote() { return ${"(".repeat(100_000)}true${")".repeat(100_000)}; }`;
/** One C call (naive substring search, ~40 s) that QuickJS's interrupt handler never sees. */
const ENDLESS_C_CALL =
  'export function vote() { const h = "a".repeat(200000) + "b"; return h.indexOf("a".repeat(100000) + "b") > 0; }';
const GOOD = "export function vote(p, id) { return JSON.parse(p).ok === true && id === 'm0'; }";

function storeWith(entries: [string, string, string][]): Store {
  const store = new Store();
  const tx = store.begin();
  for (const [map, key, value] of entries) tx.rw(map).set(utf8(key), utf8(value));
  assert.equal(store.commit(tx).kind, entries.length === 0 ? "read-only" : "committed");
  return store;
}

function job(ballots: string[], store = storeWith([])): BallotJob {
  const view = readBallotView(store.begin());
  return { view: view.writeSet, proposal: '{"ok":true}', proposerId: "m0", ballots };
}

/** Runs `f` while measuring the longest gap between 10 ms ticks of this thread's event loop. */
async function withLag<T>(f: () => Promise<T>): Promise<{ result: T; maxLagMs: number }> {
  let last = performance.now();
  let maxLagMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last);
    last = now;
  }, 10);
  try {
    return { result: await f(), maxLagMs };
  } finally {
    clearInterval(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function reasonOf(outcome: JsCallOutcome<boolean> | undefined): string {
  assert.equal(outcome?.kind, "error", JSON.stringify(outcome));
  return outcome.kind === "error" ? outcome.reason : "";
}

const pool = new BallotPool();
after(() => pool.close());

test("hostile ballots are vote failures in bounded time, and the node's thread keeps running", async () => {
  pool.warm();
  const started = performance.now();
  const { result, maxLagMs } = await withLag(() =>
    pool.evaluate(job([ALLOCATION_LOOP, INFINITE_LOOP, DEEP_PARENS, GOOD])),
  );
  const elapsedMs = performance.now() - started;
  // Memory or time, whichever bites first: each fill() of a 1e6-element array is one C call of
  // about a second on a busy machine, inside which QuickJS never polls its deadline.
  assert.ok([OUT_OF_MEMORY_REASON, TIMEOUT_REASON].includes(reasonOf(result[0])));
  assert.equal(reasonOf(result[1]), TIMEOUT_REASON);
  assert.equal(reasonOf(result[2]), STACK_OVERFLOW_REASON);
  assert.deepEqual(result[3], { kind: "ok", value: true });
  // Each ballot ran once (4 outcomes, in order); the worker that hit the limits is retired
  // once its spare is ready: a worker and its spare at first, then at least one more spare.
  assert.equal(result.length, 4);
  const retiredBy = performance.now() + 20_000;
  while (pool.started < 3 && performance.now() < retiredBy) await sleep(50);
  assert.ok(pool.started >= 3, `${pool.started} workers started`);
  // Generous for a shared machine; on this thread the infinite loop alone would stall 1000 ms.
  assert.ok(maxLagMs < 750, `this thread stalled for ${maxLagMs.toFixed(0)} ms`);
  assert.ok(elapsedMs < 30_000, `${elapsedMs.toFixed(0)} ms for four ballots`);
});

test("the watchdog terminates a worker stuck in one C call; a fresh one takes the next ballot", async () => {
  const quick = new BallotPool({ limits: { deadlineMs: 300 }, graceMs: 200 });
  try {
    quick.warm();
    await quick.evaluate(job([GOOD])); // started and warm
    await quick.whenStarted(); // the spare too, however loaded the machine
    const started = performance.now();
    const [stuck] = await quick.evaluate(job([ENDLESS_C_CALL]));
    const elapsedMs = performance.now() - started;
    assert.equal(reasonOf(stuck), TIMEOUT_REASON);
    assert.ok(elapsedMs < 5000, `stopped after ${elapsedMs.toFixed(0)} ms`);
    const nextStarted = performance.now();
    const [next] = await quick.evaluate(job([GOOD]));
    const nextMs = performance.now() - nextStarted;
    assert.deepEqual(next, { kind: "ok", value: true });
    // The spare, started ahead, took over at once (a start from source takes seconds here).
    assert.ok(nextMs < 1000, `the next ballot waited ${nextMs.toFixed(0)} ms`);
    assert.equal(quick.started, 3, "a worker and its spare, then one new spare");
    assert.equal(new BallotPool().started, 0, "nothing starts before warm() or a job");
  } finally {
    await quick.close();
  }
});

test("ballots read governance tables from the view, cannot write them, and see no app table", async () => {
  const store = storeWith([
    [GOV_MAP, "m1", '{"status":"Active"}'],
    [APP_MAP, "k", "secret"],
  ]);
  const reads = `export function vote() {
    const v = ccf.kv["${GOV_MAP}"].get(ccf.strToBuf("m1"));
    return ccf.bufToStr(v) === '{"status":"Active"}' && ccf.kv["${APP_MAP}"].size === 0;
  }`;
  const writes = `export function vote() { ccf.kv["${GOV_MAP}"].set(ccf.strToBuf("x"), ccf.strToBuf("y")); return true; }`;
  const [read, write] = await pool.evaluate(job([reads, writes], store));
  assert.deepEqual(read, { kind: "ok", value: true });
  assert.match(reasonOf(write), /read-only/);
});

test("the view's stamp changes with a write to a gov map, not with signatures or request bookkeeping", () => {
  const store = storeWith([[GOV_MAP, "m1", "a"]]);
  const before = ballotViewStamp(store.begin());
  const sign = store.begin();
  sign.rw("public:ccf.internal.signatures").set(utf8("k"), utf8("sig"));
  sign.rw("public:ccf.internal.tree").set(utf8("k"), utf8("tree"));
  sign.rw(APP_MAP).set(utf8("k"), utf8("v"));
  sign.rw("public:ccf.gov.cose_history").set(utf8("m1"), utf8("request"));
  assert.equal(store.commit(sign).kind, "committed");
  assert.equal(ballotViewStamp(store.begin()), before);
  const gov = store.begin();
  gov.rw(GOV_MAP).set(utf8("m2"), utf8("b"));
  assert.equal(store.commit(gov).kind, "committed");
  assert.notEqual(ballotViewStamp(store.begin()), before);
});

/** The nice value of thread `tid` of this process (Linux: /proc/self/task/<tid>/stat, field 19). */
function threadNice(tid: string | number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** The nice value of each thread of this process, in no particular order. */
function threadNiceValues(): number[] {
  return readdirSync("/proc/self/task").map(threadNice);
}

test("the workers run below the node's thread (nice BALLOT_THREAD_NICE)", async () => {
  assert.ok(BALLOT_THREAD_NICE > 0);
  const before = threadNiceValues().filter((nice) => nice === BALLOT_THREAD_NICE).length;
  const own = new BallotPool();
  try {
    own.warm();
    await own.evaluate(job([GOOD]));
    const after = threadNiceValues().filter((nice) => nice === BALLOT_THREAD_NICE).length;
    assert.ok(
      after >= before + 1,
      `threads at the workers' nice: ${before} before, ${after} after`,
    );
    // The main thread's tid is the pid. (readdir's order is no guide: libuv sorts the names
    // as strings, so "100012" comes before "99823".)
    assert.equal(threadNice(process.pid), 0, "the main thread keeps its priority");
  } finally {
    await own.close();
  }
});
