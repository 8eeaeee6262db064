// UTF-8 encoding (src/base/bytes.ts): utf8() takes a loop for short ASCII strings and TextEncoder
// otherwise; both must give exactly TextEncoder's bytes, in an array of their own.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { utf8 } from "../../../src/base/bytes.js";

const encoder = new TextEncoder();

test("utf8 gives TextEncoder's bytes for short, long, ASCII and non-ASCII text", () => {
  const samples = [
    "",
    "0",
    "42",
    "records",
    "x".repeat(64),
    "x".repeat(65),
    "\u007f",
    "\u0080",
    "é",
    "ab\u00ffcd",
    "€",
    "\ud83d\ude00",
    "lone \ud800 surrogate",
    "\udc00",
    "a".repeat(63) + "é",
  ];
  for (const text of samples) assert.deepEqual(utf8(text), encoder.encode(text), text);
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 80 }), (text) => {
      assert.deepEqual(utf8(text), encoder.encode(text));
    }),
    { numRuns: 2000 },
  );
});

test("utf8 returns a fresh array that owns its whole buffer", () => {
  const a = utf8("key");
  const b = utf8("key");
  assert.notEqual(a, b);
  assert.notEqual(a.buffer, b.buffer);
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, 3);
  assert.ok(Object.getPrototypeOf(a) === Uint8Array.prototype, "a plain Uint8Array");
});
