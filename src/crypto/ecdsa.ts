/**
 * ECDSA over a caller-supplied digest ("prehashed"), as CCF signs Merkle roots: the 32-byte root is
 * the SHA-256 digest itself and is not hashed again (ccf-compatibility.md §6.4, ADR 0002).
 * node:crypto cannot do this (sign(null, ...) hashes with the key's default digest), so the
 * arithmetic comes from @noble/curves; node:crypto only supplies the keys. Signatures are DER
 * (X9.62 Ecdsa-Sig-Value), byte-compatible with `openssl pkeyutl -sign/-verify` on a raw digest.
 *
 * Supported curves: P-256 (secp256r1) and P-384 (secp384r1). The digest is converted with
 * bits2int (SEC 1 4.1.3 step 5): a 32-byte digest on P-384 is used as is, a longer digest is
 * truncated to the order's bit length.
 *
 * Invariants:
 * - verifyDigest never throws for a malformed signature or digest; it returns false. It accepts
 *   high-S signatures, as OpenSSL does (CCF's signatures come from OpenSSL and are not low-S).
 * - signDigest is deterministic (RFC 6979) and produces low-S signatures.
 * - Derived key material is cached per KeyObject in WeakMaps: KeyObjects are immutable, so an
 *   entry is valid for the key's lifetime and is collected with it.
 */
import type { KeyObject } from "node:crypto";
import { p256, p384 } from "@noble/curves/nist.js";
import type { ECDSA, WeierstrassPoint } from "@noble/curves/abstract/weierstrass.js";
import { fromBase64, toHex } from "../base/bytes.js";
import { CcfError, isForeignError } from "../base/errors.js";

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

interface SigningKey {
  readonly curve: ECDSA;
  /** Invariant: the big-endian private scalar, exactly the curve's scalar length. */
  readonly secretKey: Uint8Array;
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

function curveOf(key: KeyObject): ECDSA {
  const name = ecdsaCurveOf(key);
  if (name === null) {
    throw new EcdsaError(
      { code: EcdsaErrorCode.UnsupportedKey },
      `unsupported ECDSA key: ${key.asymmetricKeyType ?? "unknown"} (need EC P-256 or P-384)`,
    );
  }
  return CURVES[name];
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
  const curve = curveOf(privateKey);
  const jwk = privateKey.export({ format: "jwk" });
  if (jwk.d === undefined) {
    throw new EcdsaError({ code: EcdsaErrorCode.UnsupportedKey }, "private key has no scalar");
  }
  const entry: SigningKey = { curve, secretKey: fromBase64Url(jwk.d) };
  signingKeys.set(privateKey, entry);
  return entry;
}

function verifyingKeyOf(key: KeyObject): VerifyingKey {
  const cached = verifyingKeys.get(key);
  if (cached !== undefined) return cached;
  const curve = curveOf(key);
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
  const { curve, secretKey } = signingKeyOf(privateKey);
  return curve.sign(digest, secretKey, { prehash: false, format, lowS: true });
}

/** SEC 1 bits2int followed by reduction mod n. */
function digestToScalar(curve: ECDSA, digest: Uint8Array): bigint {
  const Fn = curve.Point.Fn;
  let value = digest.byteLength === 0 ? 0n : BigInt("0x" + toHex(digest));
  const excessBits = digest.byteLength * 8 - Fn.BITS;
  if (excessBits > 0) value >>= BigInt(excessBits);
  return Fn.create(value);
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
