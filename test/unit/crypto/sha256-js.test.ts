// The JavaScript SHA-256 (src/crypto/sha256-js.ts) against node:crypto's OpenSSL: every length
// around the block and padding boundaries, random contents and offsets, and the Merkle pair.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import fc from "fast-check";
import { HmacSha256 } from "../../../src/crypto/hash.js";
import {
  sha256AfterBlockInto,
  sha256BlockState,
  sha256Into,
  sha256Js,
  sha256Of3x32Into,
  sha256PairInto,
} from "../../../src/crypto/sha256-js.js";

function openssl(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

test("FIPS 180-4 examples: empty, abc, and the two-block message", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.equal(
    hex(sha256Js(enc(""))),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    hex(sha256Js(enc("abc"))),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    hex(sha256Js(enc("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

test("every length from 0 to 300 bytes agrees with OpenSSL", () => {
  for (let length = 0; length <= 300; length++) {
    const data = randomBytes(length);
    assert.equal(hex(sha256Js(data)), openssl(data), `length ${length}`);
  }
});

test("random inputs at random offsets, written at random offsets", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(40), fc.nat(40), (data, before, at) => {
      const padded = new Uint8Array(before + data.byteLength + 7);
      padded.set(data, before);
      const out = new Uint8Array(at + 32 + 5).fill(0xaa);
      sha256Into(padded, before, data.byteLength, out, at);
      assert.equal(hex(out.subarray(at, at + 32)), openssl(data));
      assert.ok(
        out.subarray(0, at).every((b) => b === 0xaa),
        "nothing written before",
      );
      assert.ok(
        out.subarray(at + 32).every((b) => b === 0xaa),
        "nothing written after",
      );
    }),
    { numRuns: 500 },
  );
});

test("a Merkle pair is SHA-256 of its 64 bytes, also when written over its own input", () => {
  for (let i = 0; i < 200; i++) {
    const buffer = randomBytes(64 * 3);
    const offset = 32 * (i % 4);
    const expected = openssl(buffer.subarray(offset, offset + 64));
    const out = new Uint8Array(32);
    sha256PairInto(buffer, offset, out, 0);
    assert.equal(hex(out), expected);
    sha256PairInto(buffer, offset, buffer, offset + 16);
    assert.equal(hex(buffer.subarray(offset + 16, offset + 48)), expected);
  }
});

test("inputs out of range are refused, not read past", () => {
  const data = new Uint8Array(64);
  const out = new Uint8Array(32);
  assert.throws(() => sha256PairInto(data, 1, out, 0));
  assert.throws(() => sha256Into(data, 10, 60, out, 0));
  assert.throws(() => sha256Into(data, 0, 10, out, 1));
});

test("three 32-byte parts read in place hash as their concatenation", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 96, maxLength: 96 }),
      fc.nat(16),
      fc.nat(16),
      (parts, pad, at) => {
        const a = new Uint8Array(pad + 32);
        a.set(parts.subarray(0, 32), pad);
        const bc = new Uint8Array(64 + pad + 7);
        bc.set(parts.subarray(64, 96), pad); // c first, as in an entry (claims before evidence)
        bc.set(parts.subarray(32, 64), pad + 32);
        const out = new Uint8Array(at + 32);
        sha256Of3x32Into([a, pad, bc, pad + 32, bc, pad], out, at);
        assert.equal(hex(out.subarray(at)), openssl(parts));
      },
    ),
    { numRuns: 300 },
  );
});

test("a message after a precomputed block state hashes as block || message", () => {
  for (let length = 0; length <= 200; length++) {
    const block = randomBytes(64);
    const data = randomBytes(length + 3);
    const out = new Uint8Array(35);
    sha256AfterBlockInto(sha256BlockState(block), data, 3, length, out, 2);
    const want = openssl(Buffer.concat([block, data.subarray(3)]));
    assert.equal(hex(out.subarray(2, 34)), want, `length ${length}`);
  }
});

test("HmacSha256 agrees with createHmac: key sizes around the block, message lengths, UTF-8", () => {
  const messages = ["", "2.1", "ce:2.5", "é€😀", "x".repeat(55), "y".repeat(56), "z".repeat(192)];
  messages.push("w".repeat(193)); // past the scratch room: the createHmac fallback
  for (const keyLength of [0, 1, 32, 63, 64, 65, 100]) {
    const key = randomBytes(keyLength);
    const hmac = new HmacSha256(key);
    for (const message of messages) {
      const want = createHmac("sha256", key).update(message).digest("hex");
      assert.equal(hex(hmac.digest(message)), want, `key ${keyLength}, "${message.slice(0, 9)}"`);
    }
  }
});
