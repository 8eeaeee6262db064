// Host functions behind the guest's globals (src/js/host-function.ts): a refusal the host
// raises as a JsHostError reaches the guest as a plain Error with the same message (so guest-
// visible messages do not name our classes), a TypeError stays a TypeError, and a host
// AssertionError cannot be swallowed by guest code: the sandbox rethrows it on the host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../../src/base/assert.js";
import { JsHostError, JsHostErrorCode, newHostFunction } from "../../../src/js/host-function.js";
import { JsSandbox, type ContextSetup } from "../../../src/js/sandbox.js";

const GUEST = `
export function call(what) {
  try {
    host(what);
    return "returned";
  } catch (e) {
    return e.name + "|" + e.message;
  }
}`;

/** Installs `host(what)`, which fails the way `what` names. */
const setup: ContextSetup = (ctx) => {
  const fn = newHostFunction(ctx, "host", (arg) => {
    const what = arg === undefined ? "" : ctx.getString(arg);
    if (what === "refuse") {
      throw new JsHostError(
        { code: JsHostErrorCode.WriteDenied, map: "m" },
        'map "m" is read-only in this context',
      );
    }
    if (what === "type") throw new TypeError("needs an ArrayBuffer");
    if (what === "assert") throw new AssertionError("host invariant broken");
  });
  ctx.setProp(ctx.global, "host", fn);
  fn.dispose();
};

async function box(): Promise<JsSandbox> {
  return JsSandbox.create({ "app.js": GUEST }, { limits: { deadlineMs: 1000 } });
}

test("a JsHostError is a plain guest Error with the host's message", async () => {
  const outcome = (await box()).call({
    module: "app.js",
    exportName: "call",
    args: ["refuse"],
    setup,
  });
  assert.deepEqual(outcome, { kind: "ok", value: 'Error|map "m" is read-only in this context' });
});

test("a host TypeError stays a TypeError, and a call that succeeds returns", async () => {
  const sandbox = await box();
  const typed = sandbox.call({ module: "app.js", exportName: "call", args: ["type"], setup });
  assert.deepEqual(typed, { kind: "ok", value: "TypeError|needs an ArrayBuffer" });
  const fine = sandbox.call({ module: "app.js", exportName: "call", args: ["ok"], setup });
  assert.deepEqual(fine, { kind: "ok", value: "returned" });
});

test("a host AssertionError caught by the guest is still rethrown on the host", async () => {
  const sandbox = await box();
  assert.throws(
    () => sandbox.call({ module: "app.js", exportName: "call", args: ["assert"], setup }),
    (e: unknown) => e instanceof AssertionError && e.message === "host invariant broken",
  );
  // The fault belonged to that call's context only: the next call is unaffected.
  const next = sandbox.call({ module: "app.js", exportName: "call", args: ["ok"], setup });
  assert.deepEqual(next, { kind: "ok", value: "returned" });
});
