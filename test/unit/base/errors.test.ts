// The error predicates of src/base/errors.ts that narrow catches around foreign code (house
// style 6.5): a catch that converts "the library failed" into an outcome must never also
// convert our own AssertionError or CcfError, so those two are never foreign.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { AssertionError } from "../../../src/base/assert.js";
import { CcfError, isForeignError, isNodeError } from "../../../src/base/errors.js";

class SampleError extends CcfError<{ code: "Sample" }> {}

function thrownBy(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  assert.fail("expected a throw");
}

test("our own AssertionError and CcfError are neither foreign nor node errors", () => {
  for (const own of [new AssertionError("bug"), new SampleError({ code: "Sample" }, "typed")]) {
    assert.equal(isForeignError(own), false, own.name);
    assert.equal(isNodeError(own), false, own.name);
  }
});

test("library and node errors are foreign; only coded node errors are node errors", () => {
  const plain = new Error("Too big integer");
  const enoent = thrownBy(() => readFileSync("/no/such/file/anywhere"));
  const badArg = thrownBy(() => readFileSync({} as unknown as string));
  assert.equal(isForeignError(plain), true);
  assert.equal(isNodeError(plain), false, "no code: not raised by node");
  assert.equal(isForeignError(enoent), true);
  assert.equal(isNodeError(enoent), true, "ENOENT");
  assert.equal(isNodeError(badArg), true);
  assert.equal((badArg as { code?: unknown }).code, "ERR_INVALID_ARG_TYPE");
  assert.equal(isForeignError("a string"), false, "only Errors are narrowed");
  assert.equal(isNodeError({ code: "ENOENT" }), false, "an object is not an Error");
});
