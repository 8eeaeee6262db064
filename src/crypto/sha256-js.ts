/**
 * SHA-256 (FIPS 180-4) in plain JavaScript, for the many small inputs of the Merkle tree: a
 * parent is SHA-256 of 64 bytes, a transaction leaf of 96. node:crypto's one-shot `hash` costs
 * ~1.2 us per call on Node 20 whatever the size (argument checks, a fresh EVP context and a
 * fresh Buffer), while this code hashes 64 bytes in ~0.5 us, writes the digest where the caller
 * wants it and allocates nothing. Long inputs (whole ledger entries) stay with node:crypto,
 * which is faster per byte.
 *
 * Same digests as node:crypto (checked against it by test/unit/sha256-js.test.ts over random
 * lengths and contents). Not re-entrant: one module-level schedule and state, which is safe
 * because nothing can run between filling and reading them.
 */
import { assert } from "../base/assert.js";

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

const BLOCK_BYTES = 64;
const DIGEST_BYTES = 32;

/** The message schedule of the block being compressed. */
const W = new Int32Array(64);
/** The running hash state. */
const H = new Int32Array(8);
/** Padding and length of the last block(s) of a message; two blocks at most. */
const tail = new Uint8Array(2 * BLOCK_BYTES);
const tailView = new DataView(tail.buffer);

/** Loads the big-endian words of the block at `bytes[offset..offset+64)` and expands them. */
function schedule(bytes: Uint8Array, offset: number): void {
  loadWords(bytes, offset, 0, 16);
  expand();
}

/** W[first..first+count) from the big-endian words at `bytes[offset..]`. */
function loadWords(bytes: Uint8Array, offset: number, first: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const j = offset + 4 * i;
    W[first + i] = (bytes[j]! << 24) | (bytes[j + 1]! << 16) | (bytes[j + 2]! << 8) | bytes[j + 3]!;
  }
}

/** W[16..64) from W[0..16). */
function expand(): void {
  for (let i = 16; i < 64; i++) {
    const w15 = W[i - 15]!;
    const w2 = W[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
  }
}

/** The 64 rounds over k[i] + w[i], folded into H. */
function rounds(k: Int32Array, w: Int32Array): void {
  let a = H[0]!;
  let b = H[1]!;
  let c = H[2]!;
  let d = H[3]!;
  let e = H[4]!;
  let f = H[5]!;
  let g = H[6]!;
  let h = H[7]!;
  for (let i = 0; i < 64; i++) {
    const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + s1 + ch + k[i]! + w[i]!) | 0;
    const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + s0 + maj) | 0;
  }
  H[0] = (H[0]! + a) | 0;
  H[1] = (H[1]! + b) | 0;
  H[2] = (H[2]! + c) | 0;
  H[3] = (H[3]! + d) | 0;
  H[4] = (H[4]! + e) | 0;
  H[5] = (H[5]! + f) | 0;
  H[6] = (H[6]! + g) | 0;
  H[7] = (H[7]! + h) | 0;
}

function compress(bytes: Uint8Array, offset: number): void {
  schedule(bytes, offset);
  rounds(K, W);
}

const ZEROS = new Int32Array(64);

/**
 * K + W of the block that ends every 64-byte message (0x80, zeros, bit length 512): the same
 * block each time, so its schedule is computed once.
 */
const PAIR_PADDING_KW = (() => {
  const block = new Uint8Array(BLOCK_BYTES);
  block[0] = 0x80;
  block[62] = 0x02; // 512 bits, big-endian in the last 8 bytes
  schedule(block, 0);
  const kw = new Int32Array(64);
  for (let i = 0; i < 64; i++) kw[i] = (K[i]! + W[i]!) | 0;
  return kw;
})();

function writeDigest(out: Uint8Array, outOffset: number): void {
  for (let i = 0; i < 8; i++) {
    const v = H[i]!;
    const o = outOffset + 4 * i;
    out[o] = v >>> 24;
    out[o + 1] = v >>> 16;
    out[o + 2] = v >>> 8;
    out[o + 3] = v;
  }
}

/**
 * SHA-256 of the 64 bytes at `src[srcOffset..]` (a Merkle parent: left || right), written to
 * `out[outOffset..outOffset+32)`. `out` may be `src`, even overlapping.
 */
export function sha256PairInto(
  src: Uint8Array,
  srcOffset: number,
  out: Uint8Array,
  outOffset: number,
): void {
  assert(srcOffset >= 0 && srcOffset + BLOCK_BYTES <= src.byteLength, "sha256 pair out of range");
  assert(outOffset >= 0 && outOffset + DIGEST_BYTES <= out.byteLength, "sha256 out of range");
  H.set(IV);
  compress(src, srcOffset);
  rounds(PAIR_PADDING_KW, ZEROS);
  writeDigest(out, outOffset);
}

/** Bit length of a 96-byte message, the last word of its second block. */
const BITS_OF_96_BYTES = 96 * 8;

/**
 * SHA-256 of three 32-byte parts, a[aOffset..] || b[bOffset..] || c[cOffset..] (a Merkle leaf:
 * write set digest, commit evidence digest, claims digest), read where they are and written to
 * `out[outOffset..outOffset+32)`.
 */
export function sha256Of3x32Into(
  parts: readonly [Uint8Array, number, Uint8Array, number, Uint8Array, number],
  out: Uint8Array,
  outOffset: number,
): void {
  const [a, aOffset, b, bOffset, c, cOffset] = parts;
  assert(aOffset >= 0 && aOffset + DIGEST_BYTES <= a.byteLength, "sha256 part out of range");
  assert(bOffset >= 0 && bOffset + DIGEST_BYTES <= b.byteLength, "sha256 part out of range");
  assert(cOffset >= 0 && cOffset + DIGEST_BYTES <= c.byteLength, "sha256 part out of range");
  assert(outOffset >= 0 && outOffset + DIGEST_BYTES <= out.byteLength, "sha256 out of range");
  H.set(IV);
  loadWords(a, aOffset, 0, 8);
  loadWords(b, bOffset, 8, 8);
  expand();
  rounds(K, W);
  loadWords(c, cOffset, 0, 8);
  W[8] = 0x80000000 | 0;
  for (let i = 9; i < 15; i++) W[i] = 0;
  W[15] = BITS_OF_96_BYTES;
  expand();
  rounds(K, W);
  writeDigest(out, outOffset);
}

/**
 * SHA-256 of `data[offset..offset+length)`, written to `out[outOffset..outOffset+32)`. Any
 * length; meant for short ones (see the module comment).
 */
export function sha256Into(
  data: Uint8Array,
  offset: number,
  length: number,
  out: Uint8Array,
  outOffset: number,
): void {
  H.set(IV);
  finishInto(data, offset, length, 0, out, outOffset);
}

/**
 * The state after one 64-byte block from the start (an HMAC key pad), for
 * sha256AfterBlockInto: a message that always begins with that block then costs its other
 * blocks only.
 */
export function sha256BlockState(block: Uint8Array): Int32Array {
  assert(block.byteLength === BLOCK_BYTES, "a sha256 block is 64 bytes");
  H.set(IV);
  compress(block, 0);
  return H.slice();
}

/**
 * SHA-256 of block || data[offset..offset+length), where `state` is sha256BlockState(block),
 * written to `out[outOffset..outOffset+32)`.
 */
export function sha256AfterBlockInto(
  state: Int32Array,
  data: Uint8Array,
  offset: number,
  length: number,
  out: Uint8Array,
  outOffset: number,
): void {
  assert(state.length === 8, "a sha256 state is 8 words");
  H.set(state);
  finishInto(data, offset, length, BLOCK_BYTES, out, outOffset);
}

/** Hashes the rest of a message from state H, after `before` bytes (whole blocks) already in. */
function finishInto(
  data: Uint8Array,
  offset: number,
  length: number,
  before: number,
  out: Uint8Array,
  outOffset: number,
): void {
  assert(offset >= 0 && length >= 0 && offset + length <= data.byteLength, "sha256 range");
  assert(outOffset >= 0 && outOffset + DIGEST_BYTES <= out.byteLength, "sha256 out of range");
  const whole = Math.floor(length / BLOCK_BYTES) * BLOCK_BYTES;
  for (let at = 0; at < whole; at += BLOCK_BYTES) compress(data, offset + at);
  // The rest, 0x80, zeros, then the bit length in the last 8 bytes: one block, or two when the
  // rest leaves fewer than 9 bytes of room.
  const rest = length - whole;
  const tailBytes = rest + 9 <= BLOCK_BYTES ? BLOCK_BYTES : 2 * BLOCK_BYTES;
  tail.fill(0);
  tail.set(data.subarray(offset + whole, offset + length), 0);
  tail[rest] = 0x80;
  const bits = (before + length) * 8;
  tailView.setUint32(tailBytes - 8, Math.floor(bits / 2 ** 32));
  tailView.setUint32(tailBytes - 4, bits >>> 0);
  compress(tail, 0);
  if (tailBytes > BLOCK_BYTES) compress(tail, BLOCK_BYTES);
  writeDigest(out, outOffset);
}

/** SHA-256 of a short input, as a fresh 32-byte array. */
export function sha256Js(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(DIGEST_BYTES);
  sha256Into(data, 0, data.byteLength, out, 0);
  return out;
}
