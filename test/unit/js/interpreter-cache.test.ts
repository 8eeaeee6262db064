// Interpreter reuse for JS apps (src/js/interpreter-cache.ts, app-runtime.ts) as CCF 6 defines
// it (doc/build_apps/js_app_bundle.rst, js/interpreter_cache.h): an endpoint with
// interpreter_reuse keeps module-level state across requests in the interpreter cached under its
// key and access; one without gets a fresh interpreter; a new app version drops the cache;
// max_cached_interpreters bounds it (LRU, 0 = none); ccf.kv follows each request's transaction;
// and a request that loops, recurses or allocates without bound answers a failure within its
// limit, its interpreter is discarded, the next request is served, and the memory is reused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../../src/base/bytes.js";
import { Store } from "../../../src/kv/store.js";
import { getQuickJS } from "../../../src/js/quickjs.js";
import { InterpreterCache } from "../../../src/js/interpreter-cache.js";
import {
  DEFAULT_JS_RUNTIME_OPTIONS,
  JsAppRuntime,
  type JsAppOutcome,
  type JsAppRequest,
  type JsRuntimeOptions,
} from "../../../src/js/app-runtime.js";
import type { JsAppServices } from "../../../src/js/app-globals.js";
import type { KvAccess } from "../../../src/js/ccf-globals.js";

const quickjs = await getQuickJS();

const APP = `
let count = 0;
const records = ccf.kv["records"];
export function counter() { count += 1; return { body: count }; }
export function write(r) { records.set(ccf.strToBuf("k"), ccf.strToBuf(r.body.text())); return { body: count }; }
export function read() { const v = records.get(ccf.strToBuf("k")); return { body: { v: v === undefined ? null : ccf.bufToStr(v) } }; }
export function spin() { count += 1; for (;;) {} }
export function recurse() { count += 1; const f = (n) => f(n + 1) + 1; return { body: f(0) }; }
export function hoard() { count += 1; const keep = []; for (;;) keep.push(new ArrayBuffer(1 << 20)); }
export function retain() { count += 1; globalThis.kept = (globalThis.kept ?? []); for (let i = 0; i < 64; i++) globalThis.kept.push("x".repeat(1 << 16) + i); return { body: count }; }
export function keepArrays() { count += 1; globalThis.arrays = (globalThis.arrays ?? []); for (let i = 0; i < 4; i++) globalThis.arrays.push(new Array(32768).fill(i + 0.5)); return { body: count }; }
export function range() { globalThis.kept = ccf.historical.getStateRange(1, 1, 1); return { body: [ccf.bufToStr(globalThis.kept[0].kv["m"].get(ccf.strToBuf("k")))] }; }
export function stale() { try { globalThis.kept[0].kv["m"].get(ccf.strToBuf("k")); return { body: ["readable"] }; } catch (e) { return { body: [String(e.message)] }; } }
export function boom() { count += 1; throw new Error("kaboom"); }
export function who(r) { const c = r.caller; if (c !== undefined) c.seen = true; return { body: [c === undefined ? null : c.id] }; }`;

const SERVICES: JsAppServices = {
  lastCommittedTxId: () => ({ view: 2, seqno: 1 }),
  statusForTxId: () => "Committed",
  viewForSeqno: () => 2,
};

const REQUEST: JsAppRequest = {
  method: "POST",
  url: "/app/x",
  path: "/app/x",
  route: "/app/x",
  query: "",
  hostname: "",
  headers: {},
  params: {},
  body: utf8("hello"),
};

function runtime(
  options: Partial<JsRuntimeOptions> = {},
  cache?: InterpreterCache,
  version = "v1",
): JsAppRuntime {
  return new JsAppRuntime(quickjs, new Map([["/app.js", APP]]), {
    runtimeOptions: { ...DEFAULT_JS_RUNTIME_OPTIONS, ...options },
    version,
    ...(cache === undefined ? {} : { cache }),
  });
}

function call(
  rt: JsAppRuntime,
  handler: string,
  reuse: string | undefined,
  store = new Store(),
  access: KvAccess = { mode: "read-write" },
  body = "hello",
): JsAppOutcome {
  const tx = store.begin();
  const endpoint = {
    module: "/app.js",
    handler,
    ...(reuse === undefined ? {} : { interpreterReuse: reuse }),
  };
  const outcome = rt.call(endpoint, { ...REQUEST, body: utf8(body) }, { tx, access }, SERVICES);
  if (outcome.kind === "response" && tx.hasWrites) store.commit(tx);
  return outcome;
}

function body(outcome: JsAppOutcome): unknown {
  assert.equal(outcome.kind, "response", JSON.stringify(outcome));
  if (outcome.kind !== "response" || outcome.body.kind !== "json") throw new Error("no JSON");
  return JSON.parse(outcome.body.text);
}

const counts = (rt: JsAppRuntime, reuse: string | undefined, n: number): unknown[] =>
  Array.from({ length: n }, () => body(call(rt, "counter", reuse)));

test("an endpoint with interpreter_reuse keeps module state; one without starts afresh", () => {
  const cache = new InterpreterCache(10);
  const rt = runtime({}, cache);
  assert.deepEqual(counts(rt, "k", 3), [1, 2, 3]);
  assert.equal(cache.size, 1);
  assert.equal(cache.created, 1);
  assert.deepEqual(counts(rt, undefined, 3), [1, 1, 1]);
  assert.equal(cache.size, 1, "fresh interpreters are not cached");
  // Endpoints sharing a key share the interpreter; another key has its own.
  assert.equal(body(call(rt, "write", "k")), 3);
  assert.deepEqual(counts(rt, "other", 2), [1, 2]);
});

test("a reused interpreter sees each request's own caller, repeated, changed or absent", () => {
  const rt = runtime();
  const caller = (id: string) => ({ policy: "user_cert", id, data: null, cert: "PEM " + id });
  const callers = [caller("a"), caller("a"), caller("b"), undefined, caller("b"), caller("a")];
  const seen = callers.map((c) => {
    const tx = new Store().begin();
    const request = c === undefined ? REQUEST : { ...REQUEST, caller: c };
    const endpoint = { module: "/app.js", handler: "who", interpreterReuse: "k" };
    return body(rt.call(endpoint, request, { tx, access: { mode: "read-write" } }, SERVICES));
  });
  assert.deepEqual(seen, [["a"], ["a"], ["b"], [null], ["b"], ["a"]]);
});

test("read-write and read-only uses of a key get separate interpreters, as in CCF", () => {
  const cache = new InterpreterCache(10);
  const rt = runtime({}, cache);
  assert.deepEqual(counts(rt, "k", 2), [1, 2]);
  const ro = call(rt, "counter", "k", new Store(), { mode: "read-only" });
  assert.equal(body(ro), 1);
  assert.equal(cache.size, 2);
});

test("ccf.kv of a reused interpreter acts on each request's transaction and access", () => {
  const rt = runtime();
  const first = new Store();
  const second = new Store();
  call(rt, "write", "k", first, { mode: "read-write" }, "one");
  call(rt, "write", "k", second, { mode: "read-write" }, "two");
  assert.equal(fromUtf8(first.get("records", utf8("k"))!), "one");
  assert.equal(fromUtf8(second.get("records", utf8("k"))!), "two");
  assert.deepEqual(body(call(rt, "read", "k", first)), { v: "one" });
  assert.deepEqual(body(call(rt, "read", "k", new Store())), { v: null });
  const refused = call(rt, "write", "k", second, { mode: "read-only" }, "three");
  assert.ok(refused.kind === "failure" && /read-only/.test(refused.message));
});

test("a new app version drops the cached interpreters", () => {
  const cache = new InterpreterCache(10);
  assert.deepEqual(counts(runtime({}, cache, "v1"), "k", 2), [1, 2]);
  const next = runtime({}, cache, "v2");
  assert.deepEqual(counts(next, "k", 2), [1, 2]);
  assert.equal(cache.size, 1);
  assert.equal(cache.created, 2);
  cache.clear();
  assert.deepEqual(counts(next, "k", 1), [1], "cleared (flush) interpreters are rebuilt");
});

test("max_cached_interpreters bounds the cache, least recently used first; 0 caches none", () => {
  const cache = new InterpreterCache(10);
  const rt = runtime({ max_cached_interpreters: 2 }, cache);
  assert.equal(cache.capacity, 2);
  assert.deepEqual(counts(rt, "a", 2), [1, 2]);
  assert.deepEqual(counts(rt, "b", 1), [1]);
  assert.deepEqual(counts(rt, "a", 1), [3], "a is now the most recently used");
  assert.deepEqual(counts(rt, "c", 1), [1], "c evicts b");
  assert.equal(cache.size, 2);
  assert.deepEqual(counts(rt, "b", 1), [1], "b was evicted");
  assert.deepEqual(counts(rt, "c", 1), [2]);
  rt.setRuntimeOptions({ ...DEFAULT_JS_RUNTIME_OPTIONS, max_cached_interpreters: 0 });
  assert.equal(cache.size, 0);
  assert.deepEqual(counts(rt, "a", 2), [1, 1]);
});

test("an exception keeps the interpreter; a limit hit discards it", () => {
  const cache = new InterpreterCache(10);
  const rt = runtime({ max_execution_time_ms: 100, max_heap_bytes: 16 << 20 }, cache);
  assert.deepEqual(counts(rt, "k", 1), [1]);
  const boom = call(rt, "boom", "k");
  assert.ok(boom.kind === "failure" && boom.reason === "exception");
  assert.deepEqual(counts(rt, "k", 1), [3], "an ordinary exception keeps the state");
  const limits: [string, string][] = [
    ["spin", "timeout"],
    ["recurse", "exception"],
    ["hoard", "out-of-memory"],
  ];
  for (const [handler, reason] of limits) {
    const started = Date.now();
    const outcome = call(rt, handler, "k");
    assert.equal(outcome.kind === "failure" && outcome.reason, reason, handler);
    if (handler === "recurse")
      assert.match(outcome.kind === "failure" ? outcome.message : "", /stack overflow/);
    assert.ok(Date.now() - started < 1000, `${handler} stopped within its limit`);
    assert.equal(cache.size, 0, `${handler}: the interpreter is discarded`);
    assert.deepEqual(counts(rt, "k", 2), [1, 2], `${handler}: the next request runs afresh`);
  }
});

test("the deadline covers making the interpreter, so a first request still ends in time", () => {
  const rt = runtime({ max_execution_time_ms: 50 });
  const started = Date.now();
  const outcome = call(rt, "spin", "k");
  assert.equal(outcome.kind === "failure" && outcome.reason, "timeout");
  assert.ok(Date.now() - started < 500);
});

test("memory of discarded interpreters is reused: repeated allocation bombs do not grow WASM", () => {
  const rt = runtime({ max_heap_bytes: 8 << 20, max_execution_time_ms: 2000 });
  const memory = quickjs.getWasmMemory();
  const bomb = () => assert.equal(call(rt, "hoard", "k").kind, "failure");
  bomb();
  const afterFirst = memory.buffer.byteLength;
  for (let i = 0; i < 4; i++) bomb();
  // Each bomb holds ~8 MiB when stopped: had its runtime leaked, 4 more would add ~32 MiB.
  const growth = memory.buffer.byteLength - afterFirst;
  assert.ok(growth < 8 << 20, `WASM memory grew by ${growth} bytes over 4 bombs`);
  assert.deepEqual(counts(rt, "k", 1), [1]);
});

test("state kept by a reused interpreter counts against max_heap_bytes", () => {
  const cache = new InterpreterCache(10);
  const rt = runtime({ max_heap_bytes: 6 << 20 }, cache);
  const seen: string[] = [];
  for (let i = 0; i < 20; i++) {
    const outcome = call(rt, "retain", "k");
    seen.push(outcome.kind === "failure" ? outcome.reason : "ok");
    if (outcome.kind === "failure") break;
  }
  assert.equal(seen.at(-1), "out-of-memory", seen.join(","));
  assert.ok(seen.length > 1, "the first requests fit");
  assert.equal(cache.size, 0);
  assert.equal(body(call(rt, "retain", "k")), 1, "a fresh interpreter serves the next one");
});

test("a reused interpreter holding more than max_heap_bytes after a call is not reused", () => {
  const cache = new InterpreterCache(10);
  const rt = runtime({ max_heap_bytes: 6 << 20 }, cache);
  // Each call keeps ~1 MiB of arrays; the heap is measured at least every 8th call.
  const seen: string[] = [];
  for (let i = 0; i < 14; i++) {
    const outcome = call(rt, "keepArrays", "k");
    seen.push(outcome.kind === "failure" ? outcome.reason : String(body(outcome)));
  }
  const firstReset = seen.indexOf("1", 1);
  assert.ok(firstReset > 0 && firstReset <= 10, seen.join(","));
  assert.ok(
    seen.slice(0, firstReset).every((s) => s !== "timeout"),
    seen.join(","),
  );
});

test("unbounded recursion under a deep host stack is still QuickJS's clean stack overflow", () => {
  const rt = runtime({ max_stack_bytes: 1 << 20 });
  // 2,000 host frames below the call: more than a request's path through the node.
  const deep = (n: number): JsAppOutcome => (n === 0 ? call(rt, "recurse", "k") : deep(n - 1));
  const outcome = deep(2000);
  assert.ok(outcome.kind === "failure" && /stack overflow/.test(outcome.message));
  assert.deepEqual(counts(rt, "k", 1), [1]);
});

test("historical range states of a request are gone in the next one (reused interpreter)", () => {
  const rt = runtime();
  const services: JsAppServices = {
    ...SERVICES,
    stateRange: () => [{ transactionId: "2.1", receipt: null, get: () => utf8("then") }],
    dropCachedStates: () => true,
  };
  const run = (handler: string) =>
    rt.call(
      { module: "/app.js", handler, interpreterReuse: "k" },
      REQUEST,
      { tx: new Store().begin(), access: { mode: "read-only" } },
      services,
    );
  assert.deepEqual(body(run("range")), ["then"]);
  assert.deepEqual(body(run("stale")), ["no such historical state"]);
});
