// The QuickJS sandbox (src/js/sandbox.ts): module sets with imports, JSON in and out, and every
// way a guest can fail (throw, spin, allocate, recurse, import what is not there) coming back as
// a typed outcome while the host keeps running. Also checks that the guest has no ambient
// capabilities, and reports the per-call overhead of the fresh-runtime-per-call design.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  JsSandbox,
  JsSandboxError,
  normalizeModuleName,
  type JsLogLevel,
  type JsOutcome,
} from "../../../src/js/sandbox.js";

const LIB = `export function double(x) { return x * 2; }
export const VERSION = "1";`;
const MAIN = `import { double } from "./lib/math.js";
export function quadruple(x) { return double(double(x)); }
export function echo(...args) { return args; }
export function fail(msg) { throw new Error(msg); }
export function nothing() {}
export function spin() { while (true) {} }
export function bomb() { const parts = []; while (true) { parts.push({ n: parts.length }); } }
export function recurse(n) { return recurse(n + 1) + 1; }
export function ambient() {
  return [typeof process, typeof require, typeof fetch, typeof setTimeout, typeof setInterval,
          typeof globalThis.std, typeof globalThis.os, typeof XMLHttpRequest];
}
export function say(x) { console.log("hello", x, { a: 1 }); console.warn("careful"); return 1; }
export async function later(x) { await null; return x + 1; }
export function withFunction() { return { a: 1, f() {} }; }
export function notJson() { return 10n; }
export function bigBomb() { const kept = []; while (true) { kept.push("x".repeat(65536) + kept.length); } }`;

const MODULES = { "app.js": MAIN, "/lib/math.js": LIB };

async function sandbox(log?: (level: JsLogLevel, message: string) => void): Promise<JsSandbox> {
  return JsSandbox.create(MODULES, {
    limits: { deadlineMs: 200, memoryBytes: 16 << 20 },
    ...(log === undefined ? {} : { log }),
  });
}

function expectException(outcome: JsOutcome): { message: string; stack?: string } {
  assert.equal(outcome.kind, "exception", JSON.stringify(outcome));
  return outcome as { message: string; stack?: string };
}

test("module names normalise like CCF bundle paths", () => {
  assert.equal(normalizeModuleName("/", "app.js"), "/app.js");
  assert.equal(normalizeModuleName("/a/b.js", "./c.js"), "/a/c.js");
  assert.equal(normalizeModuleName("/a/b.js", "../c.js"), "/c.js");
  assert.equal(normalizeModuleName("/a/b.js", "../../../c.js"), "/c.js");
  assert.equal(normalizeModuleName("/a/b.js", "std"), "/std");
  assert.equal(normalizeModuleName("<entry>", "/x/y.js"), "/x/y.js");
});

test("a call into a module that imports another module runs both", async () => {
  const box = await sandbox();
  assert.deepEqual(box.call({ module: "app.js", exportName: "quadruple", args: [5] }), {
    kind: "ok",
    value: 20,
  });
  assert.deepEqual(box.call({ module: "/lib/math.js", exportName: "double", args: [4] }), {
    kind: "ok",
    value: 8,
  });
  assert.deepEqual(box.exportsOf("/lib/math.js"), { kind: "ok", value: ["VERSION", "double"] });
});

test("JSON arguments and results round-trip unchanged", async () => {
  const box = await sandbox();
  const args = [
    { proposal: { actions: [{ name: "set_member", args: { cert: "-----BEGIN" } }] } },
    "s\u00e9\u{1F600}",
    [1, 2.5, -0.125, null, true],
    null,
  ];
  assert.deepEqual(box.call({ module: "app.js", exportName: "echo", args }), {
    kind: "ok",
    value: args,
  });
  assert.deepEqual(box.call({ module: "app.js", exportName: "nothing" }), {
    kind: "ok",
    value: undefined,
  });
  assert.deepEqual(box.call({ module: "app.js", exportName: "withFunction" }), {
    kind: "ok",
    value: { a: 1 },
  });
});

test("an async export is awaited", async () => {
  const box = await sandbox();
  assert.deepEqual(box.call({ module: "app.js", exportName: "later", args: [41] }), {
    kind: "ok",
    value: 42,
  });
});

test("a throwing function becomes an exception outcome with its message and stack", async () => {
  const box = await sandbox();
  const outcome = expectException(
    box.call({ module: "app.js", exportName: "fail", args: ["no quorum"] }),
  );
  assert.equal(outcome.message, "no quorum");
  assert.match(outcome.stack ?? "", /fail/);
  const bigint = expectException(box.call({ module: "app.js", exportName: "notJson" }));
  assert.match(bigint.message, /TypeError/);
});

test("calling a missing export or an unknown module is an exception", async () => {
  const box = await sandbox();
  assert.match(
    expectException(box.call({ module: "app.js", exportName: "nope" })).message,
    /exports no function "nope"/,
  );
  assert.match(
    expectException(box.call({ module: "missing.js", exportName: "f" })).message,
    /module not found: \/missing\.js/,
  );
  const importsStd = await JsSandbox.create({
    "a.js": 'import * as std from "std"; export const x = 1;',
  });
  assert.match(
    expectException(importsStd.call({ module: "a.js", exportName: "x" })).message,
    /module not found: \/std/,
  );
  const syntax = await JsSandbox.create({ "a.js": "export function f( {" });
  assert.match(expectException(syntax.call({ module: "a.js", exportName: "f" })).message, /Syntax/);
});

test("an endless loop times out within about twice the deadline", async () => {
  const box = await sandbox();
  const started = performance.now();
  const outcome = box.call({ module: "app.js", exportName: "spin" });
  const elapsedMs = performance.now() - started;
  assert.deepEqual(outcome, { kind: "timeout" });
  assert.ok(elapsedMs >= 190 && elapsedMs < 400, `took ${elapsedMs} ms for a 200 ms deadline`);
});

test("retaining large strings is stopped as out-of-memory by WASM growth, well before the deadline", async () => {
  const box = await sandbox();
  // Large blocks slip past QuickJS's own (count-based) limit; the sandbox watches WASM growth.
  const limits = { memoryBytes: 32 << 20, deadlineMs: 20_000 };
  const started = Date.now();
  const outcome = box.call({ module: "app.js", exportName: "bigBomb", limits });
  assert.deepEqual(outcome, { kind: "out-of-memory" });
  assert.ok(Date.now() - started < 10_000, "stopped by memory, not by the 20 s deadline");
  assert.deepEqual(box.call({ module: "app.js", exportName: "quadruple", args: [1] }), {
    kind: "ok",
    value: 4,
  });
});

test("an allocation bomb runs out of memory and the next call still works", async () => {
  const box = await sandbox();
  // Small objects: this QuickJS build only accounts allocations by count (see sandbox.ts), so a
  // bomb of few large blocks would not reach the limit.
  const limits = { memoryBytes: 4 << 20, deadlineMs: 5000 };
  assert.deepEqual(box.call({ module: "app.js", exportName: "bomb", limits }), {
    kind: "out-of-memory",
  });
  assert.deepEqual(box.call({ module: "app.js", exportName: "quadruple", args: [1] }), {
    kind: "ok",
    value: 4,
  });
});

test("unbounded recursion is a stack-overflow exception and the host survives", async () => {
  const box = await sandbox();
  for (let i = 0; i < 3; i++) {
    const outcome = expectException(
      box.call({ module: "app.js", exportName: "recurse", args: [0] }),
    );
    assert.match(outcome.message, /stack overflow/);
    assert.ok((outcome.stack ?? "").length <= 4096);
  }
  assert.equal(box.call({ module: "app.js", exportName: "quadruple", args: [2] }).kind, "ok");
});

test("the guest has no process, require, fetch, timers or std/os", async () => {
  const box = await sandbox();
  const outcome = box.call({ module: "app.js", exportName: "ambient" });
  assert.deepEqual(outcome, { kind: "ok", value: Array(8).fill("undefined") });
});

test("console output goes to the injected log function", async () => {
  const lines: [JsLogLevel, string][] = [];
  const box = await sandbox((level, message) => lines.push([level, message]));
  assert.deepEqual(box.call({ module: "app.js", exportName: "say", args: [7] }), {
    kind: "ok",
    value: 1,
  });
  assert.deepEqual(lines, [
    ["log", 'hello 7 {"a":1}'],
    ["warn", "careful"],
  ]);
});

test("module names that collide after normalisation are rejected", async () => {
  await assert.rejects(
    JsSandbox.create({ "a.js": "", "/a.js": "" }),
    (e: unknown) => e instanceof JsSandboxError && e.code === "DuplicateModule",
  );
});

test("per-call overhead of a fresh runtime with two modules is small", async (t) => {
  const box = await sandbox();
  for (let i = 0; i < 20; i++) box.call({ module: "app.js", exportName: "quadruple", args: [i] });
  const calls = 300;
  const started = performance.now();
  for (let i = 0; i < calls; i++)
    box.call({ module: "app.js", exportName: "quadruple", args: [i] });
  const perCallMs = (performance.now() - started) / calls;
  t.diagnostic(`fresh runtime + 2 modules + call + dispose: ${perCallMs.toFixed(3)} ms per call`);
  assert.ok(perCallMs < 20, `${perCallMs} ms per call`);
});
