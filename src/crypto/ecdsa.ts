/**
 * ECDSA over a caller-supplied digest ("prehashed"), as CCF signs Merkle roots: the 32-byte root is
 * the SHA-256 digest itself and is not hashed again (ccf-compatibility.md §6.4, ADR 0002).
 * node:crypto cannot do this (sign(null, ...) hashes with the key's default digest). Signing
 * therefore does the scalar arithmetic here in BigInt and the expensive part natively: the nonce
 * k comes from RFC 6979's HMAC-DRBG on node:crypto's HMAC, and the point k*G is the public key
 * node:crypto's ECDH computes for the private key k (OpenSSL's constant-time multiplication).
 * That is ~20x faster on P-256 than the pure-JS multiplication of @noble/curves, which stays for
 * verification. Signatures are DER (X9.62 Ecdsa-Sig-Value), byte-compatible with
 * `openssl pkeyutl -sign/-verify` on a raw digest.
 *
 * Supported curves: P-256 (secp256r1) and P-384 (secp384r1). The digest is converted with
 * bits2int (SEC 1 4.1.3 step 5): a 32-byte digest on P-384 is used as is, a longer digest is
 * truncated to the order's bit length.
 *
 * Invariants:
 * - verifyDigest never throws for a malformed signature or digest; it returns false. It accepts
 *   high-S signatures, as OpenSSL does (CCF's signatures come from OpenSSL and are not low-S).
 * - signDigest is deterministic (RFC 6979, with the curve's hash: SHA-256 on P-256, SHA-384 on
 *   P-384) and produces low-S signatures; they are byte-identical to @noble/curves' (lowS,
 *   prehash false), which test/unit/crypto/ecdsa-sign.test.ts checks.
 * - Derived key material is cached per KeyObject in WeakMaps: KeyObjects are immutable, so an
 *   entry is valid for the key's lifetime and is collected with it.
 */
import { createECDH, type ECDH, type KeyObject } from "node:crypto";
import { p256, p384 } from "@noble/curves/nist.js";
import type { ECDSA, WeierstrassPoint } from "@noble/curves/abstract/weierstrass.js";
import { fromBase64, fromHex } from "../base/bytes.js";
import { assert, AssertionError } from "../base/assert.js";
import { CcfError, isForeignError } from "../base/errors.js";
import {
  bigIntToBytes,
  bits2int,
  bytesToBigInt,
  invertMod,
  rfc6979Nonces,
  type Rfc6979Params,
} from "./rfc6979.js";

/** Curve names as JWK spells them. */
export type EcdsaCurve = "P-256" | "P-384";

export enum EcdsaErrorCode {
  /** The key is not an EC key on P-256 or P-384, or a private key was needed. */
  UnsupportedKey = "UnsupportedKey",
}
export type EcdsaErrorType = { code: EcdsaErrorCode };
export class EcdsaError extends CcfError<EcdsaErrorType> {}

const CURVES: Readonly<Record<EcdsaCurve, ECDSA>> = { "P-256": p256, "P-384": p384 };

/** Node reports P-256 under its OpenSSL name. */
const NODE_CURVE_NAMES: Readonly<Record<string, EcdsaCurve>> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
};

/**
 * A public key is used with wNAF precomputation once it has verified this many signatures:
 * precomputing costs ~120 ms on P-384 and then saves ~5 ms per verification, so it pays for
 * itself after ~25 uses (measured on the 2-core dev box). Keys seen once or twice (a single
 * receipt) never pay it; a node key in `ledger verify` does.
 */
const PRECOMPUTE_AFTER_USES = 32;
const PRECOMPUTE_WINDOW_BITS = 8;

/** What signing needs of a curve (SEC 2 parameters) and its RFC 6979 hash. */
interface SigningCurve extends Rfc6979Params {
  /** The curve's name for createECDH. */
  readonly ecdhName: string;
}

const SIGNING_CURVES: Readonly<Record<EcdsaCurve, SigningCurve>> = {
  "P-256": {
    order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    bytes: 32,
    bits: 256,
    ecdhName: "prime256v1",
    hash: "sha256",
    hashBytes: 32,
  },
  "P-384": {
    order: BigInt(
      "0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf" +
        "581a0db248b0a77aecec196accc52973",
    ),
    bytes: 48,
    bits: 384,
    ecdhName: "secp384r1",
    hash: "sha384",
    hashBytes: 48,
  },
};

interface SigningKey {
  readonly curve: SigningCurve;
  /** Invariant: the private scalar d, 1 <= d < n. */
  readonly scalar: bigint;
  /** d as int2octets (big-endian, exactly curve.bytes), the DRBG's seed. */
  readonly scalarBytes: Uint8Array;
  /**
   * Computes nonce points k*G: setPrivateKey(k) then getPublicKey(). Per key, so keys on one
   * curve never share state; single-threaded use, so reuse between signatures is safe. It keeps
   * the last nonce, which is no more secret than the private key this process already holds.
   */
  readonly ecdh: ECDH;
}

interface VerifyingKey {
  readonly curve: ECDSA;
  /** Invariant: a valid, non-identity point on `curve` (checked by Point.fromBytes). */
  readonly point: WeierstrassPoint<bigint>;
  uses: number;
}

const signingKeys = new WeakMap<KeyObject, SigningKey>();
const verifyingKeys = new WeakMap<KeyObject, VerifyingKey>();

/** The curve of an EC key we can sign or verify with, or null for any other key. */
export function ecdsaCurveOf(key: KeyObject): EcdsaCurve | null {
  if (key.asymmetricKeyType !== "ec") return null;
  const name = key.asymmetricKeyDetails?.namedCurve;
  return name === undefined ? null : (NODE_CURVE_NAMES[name] ?? null);
}

/** The curve of `key`; throws EcdsaError for any key we cannot use. */
function requireCurve(key: KeyObject): EcdsaCurve {
  const name = ecdsaCurveOf(key);
  if (name === null) {
    throw new EcdsaError(
      { code: EcdsaErrorCode.UnsupportedKey },
      `unsupported ECDSA key: ${key.asymmetricKeyType ?? "unknown"} (need EC P-256 or P-384)`,
    );
  }
  return name;
}

/** JWK coordinates and scalars are unpadded base64url. */
function fromBase64Url(text: string): Uint8Array {
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = standard + "=".repeat((4 - (standard.length % 4)) % 4);
  const bytes = fromBase64(padded);
  if (bytes === null)
    throw new EcdsaError({ code: EcdsaErrorCode.UnsupportedKey }, "bad JWK field");
  return bytes;
}

function signingKeyOf(privateKey: KeyObject): SigningKey {
  const cached = signingKeys.get(privateKey);
  if (cached !== undefined) return cached;
  if (privateKey.type !== "private") {
    throw new EcdsaError({ code: EcdsaErrorCode.UnsupportedKey }, "signing needs a private key");
  }
  const curve = SIGNING_CURVES[requireCurve(privateKey)];
  const jwk = privateKey.export({ format: "jwk" });
  if (jwk.d === undefined) {
    throw new EcdsaError({ code: EcdsaErrorCode.UnsupportedKey }, "private key has no scalar");
  }
  const scalar = bytesToBigInt(fromBase64Url(jwk.d));
  if (scalar <= 0n || scalar >= curve.order) {
    throw new EcdsaError({ code: EcdsaErrorCode.UnsupportedKey }, "private scalar out of range");
  }
  const entry: SigningKey = {
    curve,
    scalar,
    scalarBytes: bigIntToBytes(scalar, curve.bytes),
    ecdh: createECDH(curve.ecdhName),
  };
  signingKeys.set(privateKey, entry);
  return entry;
}

function verifyingKeyOf(key: KeyObject): VerifyingKey {
  const cached = verifyingKeys.get(key);
  if (cached !== undefined) return cached;
  const curve = CURVES[requireCurve(key)];
  // The JWK of a private key carries x and y too, so either kind of key works here.
  const jwk = key.export({ format: "jwk" });
  if (jwk.x === undefined || jwk.y === undefined) {
    throw new EcdsaError({ code: EcdsaErrorCode.UnsupportedKey }, "EC key has no public point");
  }
  const x = fromBase64Url(jwk.x);
  const y = fromBase64Url(jwk.y);
  const encoded = new Uint8Array(1 + x.byteLength + y.byteLength);
  encoded[0] = 0x04; // SEC 1 uncompressed point
  encoded.set(x, 1);
  encoded.set(y, 1 + x.byteLength);
  const entry: VerifyingKey = { curve, point: curve.Point.fromBytes(encoded), uses: 0 };
  verifyingKeys.set(key, entry);
  return entry;
}

/**
 * Signs `digest` (not hashed again) with an EC private key; returns a DER signature, or with
 * `format` "compact" the IEEE P1363 r||s that COSE uses. Deterministic (RFC 6979), so a node
 * writes the same signature transactions for the same inputs.
 * Throws EcdsaError for keys that are not P-256/P-384 private keys.
 */
export function signDigest(
  privateKey: KeyObject,
  digest: Uint8Array,
  format: "der" | "compact" = "der",
): Uint8Array {
  const key = signingKeyOf(privateKey);
  const { order, bytes } = key.curve;
  const h1 = bits2int(key.curve, digest) % order;
  for (const k of rfc6979Nonces(key.curve, key.scalarBytes, h1)) {
    // RFC 6979 3.2 h.3: a k outside [1, n-1], or one giving r = 0 or s = 0, is skipped.
    if (k <= 0n || k >= order) continue;
    key.ecdh.setPrivateKey(bigIntToBytes(k, bytes));
    const point = key.ecdh.getPublicKey(); // 0x04 || x || y, uncompressed
    const r = bytesToBigInt(point.subarray(1, 1 + bytes)) % order;
    if (r === 0n) continue;
    let s = (invertMod(k, order) * ((h1 + r * key.scalar) % order)) % order;
    if (s === 0n) continue;
    if (s > order >> 1n) s = order - s; // low-S
    return format === "der" ? encodeDer(r, s) : encodeCompact(r, s, bytes);
  }
  // rfc6979Nonces never ends; this satisfies the type checker.
  throw new AssertionError("nonce generator ended");
}

/** IEEE P1363 r || s, each exactly `size` bytes (COSE). */
function encodeCompact(r: bigint, s: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size * 2);
  out.set(bigIntToBytes(r, size), 0);
  out.set(bigIntToBytes(s, size), size);
  return out;
}

/** DER INTEGER contents: minimal big-endian, with a 0x00 first when the top bit is set. */
function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = "0" + hex;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = "00" + hex;
  const out = fromHex(hex);
  assert(out !== null, "hex of a bigint");
  return out;
}

/** X9.62 Ecdsa-Sig-Value: SEQUENCE { INTEGER r, INTEGER s } (short lengths: P-384 at most). */
function encodeDer(r: bigint, s: bigint): Uint8Array {
  const rBytes = derInteger(r);
  const sBytes = derInteger(s);
  const bodyLength = 2 + rBytes.byteLength + 2 + sBytes.byteLength;
  assert(bodyLength < 0x80, "DER signature needs a long length");
  const out = new Uint8Array(2 + bodyLength);
  out.set([0x30, bodyLength, 0x02, rBytes.byteLength], 0);
  out.set(rBytes, 4);
  out.set([0x02, sBytes.byteLength], 4 + rBytes.byteLength);
  out.set(sBytes, 6 + rBytes.byteLength);
  return out;
}

/** SEC 1 bits2int followed by reduction mod n. */
function digestToScalar(curve: ECDSA, digest: Uint8Array): bigint {
  const Fn = curve.Point.Fn;
  return Fn.create(bits2int({ bits: Fn.BITS }, digest));
}

/**
 * Checks a DER ECDSA signature over `digest` (not hashed again). Returns false for a wrong or
 * malformed signature; throws EcdsaError only when the key itself is unsupported.
 */
export function verifyDigest(
  publicKey: KeyObject,
  digest: Uint8Array,
  derSignature: Uint8Array,
): boolean {
  const key = verifyingKeyOf(publicKey);
  const { curve, point } = key;
  const Fn = curve.Point.Fn;
  let r: bigint;
  let s: bigint;
  try {
    // Strict DER; the Signature constructor also enforces 1 <= r, s < n.
    ({ r, s } = curve.Signature.fromBytes(derSignature, "der"));
  } catch (err: unknown) {
    // @noble/curves throws plain Errors for malformed DER or out-of-range r, s: not valid.
    if (isForeignError(err)) return false;
    throw err;
  }
  key.uses += 1;
  if (key.uses === PRECOMPUTE_AFTER_USES) point.precompute(PRECOMPUTE_WINDOW_BITS);
  const sInverse = Fn.inv(s);
  const u1 = Fn.mul(digestToScalar(curve, digest), sInverse);
  const u2 = Fn.mul(r, sInverse);
  // Public inputs only, so the variable-time multiplications are fine. After precomputation the
  // two separate multiplications use the cached table; before it the joint one is faster.
  const base = curve.Point.BASE;
  const sum =
    key.uses >= PRECOMPUTE_AFTER_USES
      ? base.multiplyUnsafe(u1).add(point.multiplyUnsafe(u2))
      : base.mulAddUnsafe(u1, point, u2);
  if (sum.is0()) return false;
  return Fn.create(sum.toAffine().x) === r;
}
