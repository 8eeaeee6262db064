// The process-wide QuickJS module's additions (src/js/quickjs.ts): the WASM memory growth cap
// (a refused grow throws, so emscripten's malloc fails and the guest sees out-of-memory), and
// fastHostCalls, the synchronous guest-to-host call path that must install on this pinned
// quickjs-emscripten and behave as the library's own: arguments in, a result or a `{error}` out,
// thrown errors as guest exceptions, argument handles dead after the call.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { QuickJSHandle } from "quickjs-emscripten-core";
import { fastHostCalls, getQuickJS, setWasmGrowthCap } from "../../../src/js/quickjs.js";

const quickjs = await getQuickJS();

test("growth past the cap is refused, before anything grows", () => {
  // Only refusals are tried here: growing the memory from outside would leave emscripten's views
  // of it stale (its own resize path refreshes them).
  const memory = quickjs.getWasmMemory();
  const size = memory.buffer.byteLength;
  const previous = setWasmGrowthCap(quickjs, size);
  try {
    assert.throws(() => memory.grow(1), RangeError);
    assert.equal(memory.buffer.byteLength, size);
    // Nested caps: the inner one is returned the outer, which is restored after.
    assert.equal(setWasmGrowthCap(quickjs, size + 65536), size);
  } finally {
    setWasmGrowthCap(quickjs, previous);
  }
});

test("fastHostCalls installs and keeps the library's host-call semantics", () => {
  const rt = quickjs.newRuntime();
  const ctx = rt.newContext();
  try {
    assert.equal(fastHostCalls(ctx), true, "quickjs-emscripten's internals changed");
    let kept: QuickJSHandle | undefined;
    let returned: QuickJSHandle | undefined;
    const fns: Record<string, (...args: QuickJSHandle[]) => unknown> = {
      add: (a, b) => ctx.newNumber(ctx.getNumber(a!) + ctx.getNumber(b!)),
      keep: (a) => {
        kept = a;
      },
      give: () => (returned = ctx.newString("given")),
      fail: () => ({ error: ctx.newError("refused") }),
      boom: () => {
        throw new TypeError("host says no");
      },
      self: function (this: QuickJSHandle) {
        return ctx.newString(ctx.typeof(this));
      },
    };
    for (const [name, impl] of Object.entries(fns)) {
      const fn = ctx.newFunction(name, impl as never);
      ctx.setProp(ctx.global, name, fn);
      fn.dispose();
    }
    const result = ctx.evalCode(`
      const out = [add(2, 3), keep({ x: 1 }), give(), self.call({})];
      for (const f of [fail, boom]) { try { f(); out.push("no throw"); } catch (e) { out.push(e.name + ": " + e.message); } }
      out;`);
    const handle = ctx.unwrapResult(result);
    const value = ctx.dump(handle) as unknown;
    handle.dispose();
    assert.deepEqual(value, [
      5,
      null,
      "given",
      "object",
      "Error: refused",
      "TypeError: host says no",
    ]);
    assert.equal(kept?.alive, false, "argument handles die with the call");
    assert.equal(returned?.alive, false, "the returned handle is handed to the guest");
  } finally {
    ctx.dispose();
    rt.dispose();
  }
});
