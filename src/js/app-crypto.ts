/**
 * The host side of `ccf.crypto` for JS apps (CCF 6's js/ccf-app/src/global.ts CCFCrypto;
 * ccf-compatibility.md §9.1): digests, signatures, key generation and key wrapping over
 * node:crypto. Plain bytes and strings in and out, no QuickJS types: app-crypto-globals.ts
 * carries values across the sandbox boundary. PEM <-> JWK conversions are in app-crypto-jwk.ts,
 * X.509 checks in app-crypto-x509.ts.
 *
 * Formats, as CCF has them:
 * - ECDSA signatures are IEEE P1363 (r || s, each the curve's size), not DER, both ways;
 * - RSA-PSS uses MGF1 with the signature's hash and `saltLength` bytes of salt (0 when absent);
 * - HMAC's key is the UTF-8 bytes of the key string;
 * - generated private keys are PKCS#8 PEM ("BEGIN PRIVATE KEY"), public keys SPKI PEM;
 * - RSA-OAEP is OAEP with SHA-256 (MGF1 SHA-256), an empty label meaning no label;
 * - AES-KWP is RFC 5649 key wrap with padding; RSA-OAEP-AES-KWP is PKCS#11's
 *   CKM_RSA_AES_KEY_WRAP: RSA-OAEP(fresh AES key) || AES-KWP(fresh AES key, key);
 * - a key for verifySignature may be a public key or an X.509 certificate PEM.
 *
 * Differences from CCF 6, all supersets: digest also takes SHA-384 and SHA-512 (CCF 6 only
 * SHA-256), verifySignature takes SHA-384, SHA-512 and HMAC (CCF 6 only SHA-256 for ECDSA and
 * RSA-PSS, no HMAC). RSA key generation is limited to RSA_KEY_BITS_MAX bits, because a host
 * call cannot be interrupted by the guest's deadline.
 *
 * Every failure the caller can cause is an AppCryptoError with a code; what node:crypto throws
 * is caught only where it means bad input, and rethrown with a message that says which input.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign as nodeSign,
  timingSafeEqual,
  verify as nodeVerify,
  X509Certificate,
  type KeyObject,
} from "node:crypto";
import { concatBytes, fromUtf8, utf8 } from "../base/bytes.js";
import { CcfError, isForeignError } from "../base/errors.js";

export enum AppCryptoErrorCode {
  /** An algorithm, hash, curve or parameter name that is not supported (CCF: RangeError). */
  UnsupportedAlgorithm = "UnsupportedAlgorithm",
  /** A number out of range: a key size, an exponent, a salt length (CCF: RangeError). */
  InvalidParameter = "InvalidParameter",
  /** A key (PEM, JWK or raw bytes) that cannot be used for the operation. */
  InvalidKey = "InvalidKey",
  /** The operation itself failed on well-formed input (e.g. an unwrap integrity check). */
  OperationFailed = "OperationFailed",
}
export type AppCryptoErrorType = { code: AppCryptoErrorCode };
export class AppCryptoError extends CcfError<AppCryptoErrorType> {}

function fail(code: AppCryptoErrorCode, message: string): never {
  throw new AppCryptoError({ code }, message);
}

/** Runs a node:crypto call; what it throws is bad input, reported as `code` with `what`. */
function guarded<T>(code: AppCryptoErrorCode, what: string, body: () => T): T {
  try {
    return body();
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    return fail(code, `${what}: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Digests

export type DigestAlgorithm = "SHA-256" | "SHA-384" | "SHA-512";
const DIGESTS: Readonly<Record<DigestAlgorithm, string>> = {
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
};

/** node:crypto's name for `algorithm`; throws UnsupportedAlgorithm otherwise. */
function hashName(algorithm: string, what: string): string {
  const name = (DIGESTS as Readonly<Record<string, string>>)[algorithm];
  if (name === undefined || !Object.hasOwn(DIGESTS, algorithm)) {
    fail(
      AppCryptoErrorCode.UnsupportedAlgorithm,
      `unsupported ${what} ${JSON.stringify(algorithm)}, supported: SHA-256, SHA-384, SHA-512`,
    );
  }
  return name;
}

export function digest(algorithm: string, data: Uint8Array): Uint8Array {
  const name = hashName(algorithm, "digest algorithm");
  return new Uint8Array(createHash(name).update(data).digest());
}

// ---------------------------------------------------------------------------------------------
// Keys from PEM

const PEM_LABEL = /-----BEGIN ([A-Z0-9 ]+)-----/;
const PUBLIC_LABELS = ["PUBLIC KEY", "RSA PUBLIC KEY"];
const PRIVATE_LABELS = ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

function pemLabel(pem: string, what: string): string {
  const label = PEM_LABEL.exec(pem)?.[1];
  if (label === undefined) fail(AppCryptoErrorCode.InvalidKey, `${what} is not a PEM`);
  return label;
}

/** A private key from PEM (unencrypted), of one of `types` (node's asymmetricKeyType). */
export function privateKeyFromPem(pem: string, types: readonly string[], what: string): KeyObject {
  const label = pemLabel(pem, what);
  if (!PRIVATE_LABELS.includes(label)) {
    fail(AppCryptoErrorCode.InvalidKey, `${what} must be a private key PEM, not ${label}`);
  }
  const key = guarded(AppCryptoErrorCode.InvalidKey, `${what} is not a valid private key`, () =>
    createPrivateKey({ key: pem, format: "pem" }),
  );
  return ofType(key, types, what);
}

/** A public key from a public key PEM or, when `certificates` allows, an X.509 certificate. */
export function publicKeyFromPem(
  pem: string,
  types: readonly string[],
  what: string,
  certificates: "certificate-allowed" | "key-only" = "key-only",
): KeyObject {
  const label = pemLabel(pem, what);
  if (label === "CERTIFICATE" && certificates === "certificate-allowed") {
    const cert = guarded(
      AppCryptoErrorCode.InvalidKey,
      `${what} is not a valid certificate`,
      () => new X509Certificate(pem),
    );
    return ofType(cert.publicKey, types, `${what} (the certificate's key)`);
  }
  if (!PUBLIC_LABELS.includes(label)) {
    const allowed = certificates === "certificate-allowed" ? " or certificate" : "";
    fail(AppCryptoErrorCode.InvalidKey, `${what} must be a public key${allowed} PEM, not ${label}`);
  }
  const key = guarded(AppCryptoErrorCode.InvalidKey, `${what} is not a valid public key`, () =>
    createPublicKey({ key: pem, format: "pem" }),
  );
  return ofType(key, types, what);
}

/** EC curves CCF's JS API accepts, by node's namedCurve name. */
const EC_CURVES: Readonly<Record<string, "P-256" | "P-384">> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
};

function ofType(key: KeyObject, types: readonly string[], what: string): KeyObject {
  const type = key.asymmetricKeyType ?? "unknown";
  if (!types.includes(type)) {
    fail(AppCryptoErrorCode.InvalidKey, `${what} is a ${type} key; expected ${types.join(" or ")}`);
  }
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? "unknown";
    if (!Object.hasOwn(EC_CURVES, curve)) {
      fail(
        AppCryptoErrorCode.InvalidKey,
        `${what} is on curve ${curve}; supported: P-256 (secp256r1), P-384 (secp384r1)`,
      );
    }
  }
  return key;
}

/** The JWK curve name of an EC key accepted by ofType. */
export function ecCurveOf(key: KeyObject): "P-256" | "P-384" {
  const curve = EC_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
  if (curve === undefined) fail(AppCryptoErrorCode.InvalidKey, "not a P-256 or P-384 key");
  return curve;
}

// ---------------------------------------------------------------------------------------------
// Signatures

export type SigningAlgorithm =
  | { readonly name: "ECDSA" | "HMAC"; readonly hash: string }
  | { readonly name: "RSA-PSS"; readonly hash: string; readonly saltLength?: number }
  | { readonly name: "EdDSA" };

const SIGNING_NAMES = ["RSA-PSS", "ECDSA", "EdDSA", "HMAC"];

/** Checks an algorithm object's name (fields read by the caller, e.g. from guest values). */
export function signingAlgorithm(fields: {
  name: string;
  hash?: string | undefined;
  saltLength?: number | undefined;
}): SigningAlgorithm {
  const { name, hash, saltLength } = fields;
  if (name === "EdDSA") return { name };
  if (!SIGNING_NAMES.includes(name)) {
    fail(
      AppCryptoErrorCode.UnsupportedAlgorithm,
      `unsupported signing algorithm ${JSON.stringify(name)}, supported: ` +
        SIGNING_NAMES.join(", "),
    );
  }
  if (hash === undefined) {
    fail(AppCryptoErrorCode.UnsupportedAlgorithm, `signing algorithm ${name} needs a hash`);
  }
  hashName(hash, "hash algorithm");
  if (name === "RSA-PSS")
    return saltLength === undefined ? { name, hash } : { name, hash, saltLength };
  return { name: name as "ECDSA" | "HMAC", hash };
}

/** A salt length in bytes: a whole number >= 0 (CCF reads an absent one as 0). */
function pssSaltLength(saltLength: number | undefined): number {
  const salt = saltLength ?? 0;
  if (!Number.isSafeInteger(salt) || salt < 0) {
    fail(AppCryptoErrorCode.InvalidParameter, `saltLength must be a whole number >= 0`);
  }
  return salt;
}

export function sign(algorithm: SigningAlgorithm, key: string, data: Uint8Array): Uint8Array {
  const what = "signing key";
  switch (algorithm.name) {
    case "EdDSA": {
      const k = privateKeyFromPem(key, ["ed25519"], what);
      return new Uint8Array(nodeSign(null, data, k));
    }
    case "HMAC": {
      const h = hashName(algorithm.hash, "hash algorithm");
      return new Uint8Array(createHmac(h, utf8(key)).update(data).digest());
    }
    case "ECDSA": {
      const h = hashName(algorithm.hash, "hash algorithm");
      const k = privateKeyFromPem(key, ["ec"], what);
      return new Uint8Array(nodeSign(h, data, { key: k, dsaEncoding: "ieee-p1363" }));
    }
    case "RSA-PSS": {
      const h = hashName(algorithm.hash, "hash algorithm");
      const k = privateKeyFromPem(key, ["rsa", "rsa-pss"], what);
      const saltLength = pssSaltLength(algorithm.saltLength);
      const padding = constants.RSA_PKCS1_PSS_PADDING;
      return guarded(
        AppCryptoErrorCode.InvalidParameter,
        "RSA-PSS signing failed",
        () => new Uint8Array(nodeSign(h, data, { key: k, padding, saltLength })),
      );
    }
  }
}

export interface VerifyInput {
  readonly algorithm: SigningAlgorithm;
  /** A public key PEM or a certificate PEM (the HMAC key string for HMAC). */
  readonly key: string;
  readonly signature: Uint8Array;
  readonly data: Uint8Array;
}

/** True when the signature is valid; false for a wrong or malformed signature. */
export function verifySignature(input: VerifyInput): boolean {
  const { algorithm, key, signature, data } = input;
  const what = "verification key";
  switch (algorithm.name) {
    case "EdDSA": {
      const k = publicKeyFromPem(key, ["ed25519"], what, "certificate-allowed");
      return nodeVerify(null, data, k, signature);
    }
    case "HMAC": {
      const expected = sign(algorithm, key, data);
      return expected.length === signature.length && timingSafeEqual(expected, signature);
    }
    case "ECDSA": {
      const h = hashName(algorithm.hash, "hash algorithm");
      const k = publicKeyFromPem(key, ["ec"], what, "certificate-allowed");
      const size = ecCurveOf(k) === "P-256" ? 64 : 96;
      if (signature.length !== size) return false;
      return nodeVerify(h, data, { key: k, dsaEncoding: "ieee-p1363" }, signature);
    }
    case "RSA-PSS": {
      const h = hashName(algorithm.hash, "hash algorithm");
      const k = publicKeyFromPem(key, ["rsa", "rsa-pss"], what, "certificate-allowed");
      const saltLength = pssSaltLength(algorithm.saltLength);
      const padding = constants.RSA_PKCS1_PSS_PADDING;
      return nodeVerify(h, data, { key: k, padding, saltLength }, signature);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Key generation

export interface PemKeyPair {
  readonly privateKey: string;
  readonly publicKey: string;
}

const AES_KEY_BITS = [128, 192, 256];
/** CCF's documented minimum. */
export const RSA_KEY_BITS_MIN = 2048;
/** Generating larger keys takes seconds on the node's thread, where no deadline can stop it. */
export const RSA_KEY_BITS_MAX = 4096;
const RSA_DEFAULT_EXPONENT = 65537;

export function generateAesKey(sizeBits: number): Uint8Array {
  if (!AES_KEY_BITS.includes(sizeBits)) {
    fail(AppCryptoErrorCode.InvalidParameter, "invalid key size (not one of 128, 192, 256)");
  }
  return new Uint8Array(randomBytes(sizeBits / 8));
}

function pemPair(pair: { privateKey: KeyObject; publicKey: KeyObject }): PemKeyPair {
  return {
    privateKey: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKey: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

export function generateRsaKeyPair(sizeBits: number, exponent = RSA_DEFAULT_EXPONENT): PemKeyPair {
  if (!Number.isInteger(sizeBits) || sizeBits < RSA_KEY_BITS_MIN || sizeBits > RSA_KEY_BITS_MAX) {
    fail(
      AppCryptoErrorCode.InvalidParameter,
      `invalid RSA key size ${sizeBits}: must be a whole number of bits from ` +
        `${RSA_KEY_BITS_MIN} to ${RSA_KEY_BITS_MAX}`,
    );
  }
  if (!Number.isSafeInteger(exponent) || exponent < 3 || exponent % 2 === 0 || exponent > 2 ** 32) {
    fail(
      AppCryptoErrorCode.InvalidParameter,
      `invalid RSA exponent ${exponent}: must be an odd number from 3 to 2^32`,
    );
  }
  return pemPair(generateKeyPairSync("rsa", { modulusLength: sizeBits, publicExponent: exponent }));
}

const ECDSA_CURVES: Readonly<Record<string, string>> = {
  secp256r1: "P-256",
  secp384r1: "P-384",
};

export function generateEcdsaKeyPair(curve: string): PemKeyPair {
  const namedCurve = Object.hasOwn(ECDSA_CURVES, curve) ? ECDSA_CURVES[curve] : undefined;
  if (namedCurve === undefined) {
    fail(
      AppCryptoErrorCode.UnsupportedAlgorithm,
      `unsupported curve id ${JSON.stringify(curve)}, supported: secp256r1, secp384r1`,
    );
  }
  return pemPair(generateKeyPairSync("ec", { namedCurve }));
}

export function generateEddsaKeyPair(curve: string): PemKeyPair {
  switch (curve) {
    case "curve25519":
      return pemPair(generateKeyPairSync("ed25519"));
    case "x25519":
      return pemPair(generateKeyPairSync("x25519"));
    default:
      return fail(
        AppCryptoErrorCode.UnsupportedAlgorithm,
        `unsupported curve id ${JSON.stringify(curve)}, supported: curve25519, x25519`,
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Key wrapping

export type WrapAlgorithm =
  | { readonly name: "RSA-OAEP"; readonly label?: Uint8Array }
  | { readonly name: "AES-KWP" }
  | { readonly name: "RSA-OAEP-AES-KWP"; readonly aesKeySize: number; readonly label?: Uint8Array };

const WRAP_NAMES = ["RSA-OAEP", "AES-KWP", "RSA-OAEP-AES-KWP"];

/** Checks a wrapping algorithm's fields, as read from the guest. */
export function wrapAlgorithm(fields: {
  name: string;
  aesKeySize?: number | undefined;
  label?: Uint8Array | undefined;
}): WrapAlgorithm {
  const { name, aesKeySize } = fields;
  const label = fields.label !== undefined && fields.label.length > 0 ? fields.label : undefined;
  const withLabel = label === undefined ? {} : { label };
  switch (name) {
    case "AES-KWP":
      return { name };
    case "RSA-OAEP":
      return { name, ...withLabel };
    case "RSA-OAEP-AES-KWP":
      if (aesKeySize === undefined || !AES_KEY_BITS.includes(aesKeySize)) {
        fail(
          AppCryptoErrorCode.InvalidParameter,
          "RSA-OAEP-AES-KWP needs aesKeySize of 128, 192 or 256",
        );
      }
      return { name, aesKeySize, ...withLabel };
    default:
      return fail(
        AppCryptoErrorCode.UnsupportedAlgorithm,
        `unsupported key wrapping algorithm ${JSON.stringify(name)}, supported: ` +
          WRAP_NAMES.join(", "),
      );
  }
}

/** RFC 5649's alternative initial value, as node:crypto's wrap-pad ciphers take it. */
const KWP_IV = Uint8Array.of(0xa6, 0x59, 0x59, 0xa6);

function kwpCipher(
  aesKey: Uint8Array,
): "id-aes128-wrap-pad" | "id-aes192-wrap-pad" | "id-aes256-wrap-pad" {
  switch (aesKey.length) {
    case 16:
      return "id-aes128-wrap-pad";
    case 24:
      return "id-aes192-wrap-pad";
    case 32:
      return "id-aes256-wrap-pad";
    default:
      return fail(
        AppCryptoErrorCode.InvalidKey,
        `AES-KWP wrapping key must be 16, 24 or 32 bytes, not ${aesKey.length}`,
      );
  }
}

/** RFC 5649 key wrap with padding. */
export function aesKwpWrap(aesKey: Uint8Array, key: Uint8Array): Uint8Array {
  const cipher = createCipheriv(kwpCipher(aesKey), aesKey, KWP_IV);
  if (key.length === 0) fail(AppCryptoErrorCode.InvalidParameter, "the key to wrap is empty");
  return concatBytes([cipher.update(key), cipher.final()]);
}

/** RFC 5649 unwrap; a wrong key or damaged input fails the integrity check. */
export function aesKwpUnwrap(aesKey: Uint8Array, wrapped: Uint8Array): Uint8Array {
  const decipher = createDecipheriv(kwpCipher(aesKey), aesKey, KWP_IV);
  if (wrapped.length < 16 || wrapped.length % 8 !== 0) {
    fail(
      AppCryptoErrorCode.OperationFailed,
      `AES-KWP unwrap failed: a wrapped key is a multiple of 8 bytes, at least 16, ` +
        `not ${wrapped.length}`,
    );
  }
  return guarded(AppCryptoErrorCode.OperationFailed, "AES-KWP unwrap failed", () =>
    concatBytes([decipher.update(wrapped), decipher.final()]),
  );
}

/** A PEM passed as bytes (wrapKey's RSA keys are ArrayBuffers in CCF's API). */
function pemText(bytes: Uint8Array, what: string): string {
  return guarded(AppCryptoErrorCode.InvalidKey, `${what} is not a PEM`, () => fromUtf8(bytes));
}

function oaep(key: KeyObject, label: Uint8Array | undefined) {
  const padding = constants.RSA_PKCS1_OAEP_PADDING;
  const base = { key, padding, oaepHash: "sha256" };
  return label === undefined ? base : { ...base, oaepLabel: label };
}

function rsaOaepWrap(publicPem: Uint8Array, key: Uint8Array, label?: Uint8Array): Uint8Array {
  const k = publicKeyFromPem(pemText(publicPem, "wrapping key"), ["rsa"], "wrapping key");
  return guarded(
    AppCryptoErrorCode.InvalidParameter,
    "RSA-OAEP wrap failed",
    () => new Uint8Array(publicEncrypt(oaep(k, label), key)),
  );
}

function rsaOaepUnwrap(k: KeyObject, wrapped: Uint8Array, label?: Uint8Array): Uint8Array {
  return guarded(
    AppCryptoErrorCode.OperationFailed,
    "RSA-OAEP unwrap failed",
    () => new Uint8Array(privateDecrypt(oaep(k, label), wrapped)),
  );
}

export function wrapKey(key: Uint8Array, wrappingKey: Uint8Array, algo: WrapAlgorithm): Uint8Array {
  switch (algo.name) {
    case "AES-KWP":
      return aesKwpWrap(wrappingKey, key);
    case "RSA-OAEP":
      return rsaOaepWrap(wrappingKey, key, algo.label);
    case "RSA-OAEP-AES-KWP": {
      const aesKey = new Uint8Array(randomBytes(algo.aesKeySize / 8));
      const wrappedAesKey = rsaOaepWrap(wrappingKey, aesKey, algo.label);
      const wrappedKey = aesKwpWrap(aesKey, key);
      aesKey.fill(0);
      return concatBytes([wrappedAesKey, wrappedKey]);
    }
  }
}

export function unwrapKey(
  wrapped: Uint8Array,
  unwrappingKey: Uint8Array,
  algo: WrapAlgorithm,
): Uint8Array {
  switch (algo.name) {
    case "AES-KWP":
      return aesKwpUnwrap(unwrappingKey, wrapped);
    case "RSA-OAEP": {
      const k = privateKeyFromPem(
        pemText(unwrappingKey, "unwrapping key"),
        ["rsa"],
        "unwrapping key",
      );
      return rsaOaepUnwrap(k, wrapped, algo.label);
    }
    case "RSA-OAEP-AES-KWP": {
      const k = privateKeyFromPem(
        pemText(unwrappingKey, "unwrapping key"),
        ["rsa"],
        "unwrapping key",
      );
      const modulusBytes = (k.asymmetricKeyDetails?.modulusLength ?? 0) / 8;
      if (wrapped.length <= modulusBytes) {
        fail(AppCryptoErrorCode.OperationFailed, "RSA-OAEP-AES-KWP unwrap failed: input too short");
      }
      const aesKey = rsaOaepUnwrap(k, wrapped.subarray(0, modulusBytes), algo.label);
      if (!AES_KEY_BITS.includes(aesKey.length * 8)) {
        fail(
          AppCryptoErrorCode.OperationFailed,
          "RSA-OAEP-AES-KWP unwrap failed: bad AES key size",
        );
      }
      const key = aesKwpUnwrap(aesKey, wrapped.subarray(modulusBytes));
      aesKey.fill(0);
      return key;
    }
  }
}
