/**
 * Deterministic ECDSA nonces (RFC 6979 section 3.2) and the scalar helpers prehashed signing
 * needs (ecdsa.ts signDigest). HMAC is node:crypto's, so the DRBG runs natively; integers are
 * BigInt. The parameters are the curve's order and the hash of the DRBG (the curve's own hash
 * in CCF's use: SHA-256 for P-256, SHA-384 for P-384), so any curve and hash pair works, which
 * the tests use to check RFC 6979's own examples.
 *
 * Not constant time in JS (BigInt arithmetic never is, as with the @noble/curves code this
 * replaced); the point multiplication by the nonce is native and constant time (ecdsa.ts).
 */
import { createHmac } from "node:crypto";
import { assert } from "../base/assert.js";
import { fromHex, toHex } from "../base/bytes.js";

export interface Rfc6979Params {
  /** The group order q (n): a prime. */
  readonly order: bigint;
  /** Bit length of the order (qlen). */
  readonly bits: number;
  /** Bytes of a scalar: ceil(bits / 8) (rlen / 8). */
  readonly bytes: number;
  /** The HMAC hash as node:crypto names it, and its output bytes (hlen / 8). */
  readonly hash: string;
  readonly hashBytes: number;
}

/** SEC 1 / RFC 6979 bits2int: the leftmost `bits` bits of `bytes` as an integer (not reduced). */
export function bits2int(params: Rfc6979Params, bytes: Uint8Array): bigint {
  const value = bytesToBigInt(bytes);
  const excessBits = bytes.byteLength * 8 - params.bits;
  return excessBits > 0 ? value >> BigInt(excessBits) : value;
}

export function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.byteLength === 0 ? 0n : BigInt("0x" + toHex(bytes));
}

/** Big-endian, left-padded to exactly `size` bytes (int2octets); `value` must fit. */
export function bigIntToBytes(value: bigint, size: number): Uint8Array {
  const hex = value.toString(16).padStart(size * 2, "0");
  assert(value >= 0n && hex.length === size * 2, "integer does not fit its encoding");
  const out = fromHex(hex);
  assert(out !== null, "hex of a bigint");
  return out;
}

const ZERO_BYTE = new Uint8Array([0x00]);
const ONE_BYTE = new Uint8Array([0x01]);

function hmac(params: Rfc6979Params, key: Uint8Array, parts: readonly Uint8Array[]): Uint8Array {
  const mac = createHmac(params.hash, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/**
 * The candidate nonces of RFC 6979 3.2 for the private key int2octets(x) (`scalarBytes`) and
 * h1 = bits2int(H(m)) mod q: steps b to h, then step h.3's update before each further candidate.
 * The caller takes the first k with 1 <= k < q that gives r != 0 and s != 0, and asks for the
 * next one otherwise; candidates are bits2int(T), not range-checked here.
 */
export function* rfc6979Nonces(
  params: Rfc6979Params,
  scalarBytes: Uint8Array,
  h1: bigint,
): Generator<bigint, never> {
  const h1Bytes = bigIntToBytes(h1 % params.order, params.bytes);
  let v: Uint8Array = new Uint8Array(params.hashBytes).fill(0x01);
  let k: Uint8Array = new Uint8Array(params.hashBytes);
  k = hmac(params, k, [v, ZERO_BYTE, scalarBytes, h1Bytes]);
  v = hmac(params, k, [v]);
  k = hmac(params, k, [v, ONE_BYTE, scalarBytes, h1Bytes]);
  v = hmac(params, k, [v]);
  const t = new Uint8Array(Math.ceil(params.bytes / params.hashBytes) * params.hashBytes);
  for (;;) {
    for (let filled = 0; filled < params.bytes; filled += params.hashBytes) {
      v = hmac(params, k, [v]);
      t.set(v, filled);
    }
    yield bits2int(params, t.subarray(0, params.bytes));
    k = hmac(params, k, [v, ZERO_BYTE]);
    v = hmac(params, k, [v]);
  }
}

/** a^-1 mod m for 0 < a < m, m prime (extended Euclid; variable time). */
export function invertMod(a: bigint, m: bigint): bigint {
  assert(a > 0n && a < m, "inverse of an out-of-range value");
  let r0 = m;
  let r1 = a;
  let t0 = 0n;
  let t1 = 1n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    const r2 = r0 - q * r1;
    r0 = r1;
    r1 = r2;
    const t2 = t0 - q * t1;
    t0 = t1;
    t1 = t2;
  }
  assert(r0 === 1n, "value not invertible");
  return t0 < 0n ? t0 + m : t0;
}
