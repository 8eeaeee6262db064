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
export function bits2int(params: Pick<Rfc6979Params, "bits">, bytes: Uint8Array): bigint {
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

/** Bits of the leading "digit" Lehmer's algorithm works on in doubles (exact below 2^53). */
const DIGIT_BITS = 50;
const DIGIT_LIMIT = 1n << BigInt(DIGIT_BITS);

/**
 * a^-1 mod m for 0 < a < m, m prime: the extended Euclidean algorithm with Lehmer's speed-up
 * (Menezes et al., Handbook of Applied Cryptography, algorithm 14.57). Most quotient steps are
 * decided on the leading 50 bits in doubles, and their combined cofactors applied to the BigInts
 * at once: ~10 us instead of ~25 us for plain Euclid on a 256-bit order. Variable time, as the
 * Euclid of @noble/curves that signing used before.
 */
export function invertMod(a: bigint, m: bigint): bigint {
  assert(a > 0n && a < m, "inverse of an out-of-range value");
  // Invariant: x = u * a and y = v * a (mod m), and gcd(x, y) = gcd(m, a).
  let x = m;
  let y = a;
  let u = 0n;
  let v = 1n;
  while (y !== 0n && (y >= DIGIT_LIMIT || x >= DIGIT_LIMIT)) {
    const f = y >= DIGIT_LIMIT ? lehmerCofactors(x, y) : null;
    if (f === null) {
      // One exact step: the leading bits could not decide a quotient (or y is already small).
      const q = x / y;
      [x, y] = [y, x - q * y];
      [u, v] = [v, u - q * v];
    } else {
      const [fa, fb, fc, fd] = [BigInt(f[0]), BigInt(f[1]), BigInt(f[2]), BigInt(f[3])];
      [x, y] = [fa * x + fb * y, fc * x + fd * y];
      [u, v] = [fa * u + fb * v, fc * u + fd * v];
    }
  }
  // Both below 2^50: finish exactly in doubles, then apply the cofactors once.
  const [gcd, fu, fv] = smallEuclid(Number(x), Number(y));
  assert(gcd === 1, "value not invertible");
  const inverse = (BigInt(fu) * u + BigInt(fv) * v) % m;
  return inverse < 0n ? inverse + m : inverse;
}

/**
 * HAC 14.57's inner loop: the cofactors [A, B, C, D] of the Euclid steps the leading bits of x
 * and y (x >= y >= 2^50) decide, so that (A x + B y, C x + D y) is where those steps lead; null
 * when not even one step is decided. |A..D| stay below 2^50, so doubles are exact.
 */
function lehmerCofactors(x: bigint, y: bigint): [number, number, number, number] | null {
  // Number(x) rounds to nearest, so this may overstate the bit length by one, never understate.
  const bits = Math.floor(Math.log2(Number(x))) + 1;
  const shift = BigInt(Math.max(0, bits - DIGIT_BITS));
  let xh = Number(x >> shift);
  let yh = Number(y >> shift);
  let [fa, fb, fc, fd] = [1, 0, 0, 1];
  while (yh + fc !== 0 && yh + fd !== 0) {
    const q = Math.floor((xh + fa) / (yh + fc));
    if (q !== Math.floor((xh + fb) / (yh + fd))) break;
    [fa, fc] = [fc, fa - q * fc];
    [fb, fd] = [fd, fb - q * fd];
    [xh, yh] = [yh, xh - q * yh];
  }
  return fb === 0 ? null : [fa, fb, fc, fd];
}

/** gcd(x, y) for 0 <= y <= x < 2^50 with its cofactors [g, s, t], g = s x + t y, in doubles. */
function smallEuclid(x: number, y: number): [number, number, number] {
  let [s0, s1, t0, t1] = [1, 0, 0, 1];
  while (y !== 0) {
    let q = Math.floor(x / y);
    // x / y is rounded; one correction keeps q the true quotient whatever the rounding.
    if (x - q * y < 0) q -= 1;
    else if (x - q * y >= y) q += 1;
    [x, y] = [y, x - q * y];
    [s0, s1] = [s1, s0 - q * s1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return [x, s0, t0];
}
