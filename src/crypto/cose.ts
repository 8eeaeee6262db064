/**
 * COSE_Sign1 (RFC 9052 section 4.2) with ECDSA, as CCF uses it for signed governance requests
 * (ccf-compatibility.md §4.1). Owns the wire format only; which headers a request must carry is
 * decided by the callers (src/gov/cose-request.ts).
 *
 *   COSE_Sign1 = [protected: bstr .cbor header_map, unprotected: header_map,
 *                 payload: bstr / nil, signature: bstr] (optionally wrapped in CBOR tag 18)
 * A nil payload is detached: the signer and verifier hold it (CCF's Merkle root signatures).
 *   Sig_structure = ["Signature1", protected, external_aad = h'', payload]
 *
 * Algorithms: ES256 (-7, P-256, SHA-256), ES384 (-35, P-384, SHA-384), ES512 (-36, P-521,
 * SHA-512). Signatures are IEEE P1363 r||s, each half the curve's byte length (RFC 9053 2.1).
 *
 * Invariants:
 * - decodeSign1 is strict: it accepts exactly a 4-element array (tagged 18 or untagged), a
 *   protected bstr holding one CBOR map (or empty, meaning an empty map) with int/text labels
 *   and no duplicates, an unprotected map, an attached bstr payload (or nil, when the caller
 *   holds the detached payload) and a signature of exactly the alg's length. Anything else is
 *   a CoseError with a code; it never returns partial data.
 * - `protectedBytes` are the bytes as received: the signature covers them, so they are never
 *   re-encoded.
 * - Header values that were CBOR floats decode as CborFloat, so callers can tell 1.0 from 1
 *   (an integer field encoded as a float is malformed, not equal to the integer).
 * - A wrong signature is an expected outcome (verifySign1 returns {kind: "invalid"}); only a
 *   key we cannot use at all is thrown.
 */
import { hash, sign, verify, type KeyObject } from "node:crypto";
import { Tagged, Token, Tokenizer, Type, decode, encode } from "cborg";
import type { DecodeOptions } from "cborg";
import { CcfError, isForeignError } from "../base/errors.js";
import { signDigest } from "./ecdsa.js";

export enum CoseAlg {
  ES256 = -7,
  ES384 = -35,
  ES512 = -36,
}

/** RFC 9052 header labels used here. */
export const COSE_HEADER_ALG = 1;
export const COSE_HEADER_KID = 4;
export const COSE_SIGN1_TAG = 18;

export type CoseLabel = number | string;
export type CoseHeaderMap = ReadonlyMap<CoseLabel, unknown>;

export enum CoseErrorCode {
  /** The bytes are not one well-formed CBOR item (or carry trailing bytes). */
  NotCbor = "NotCbor",
  /** The item is tagged with something other than 18 (COSE_Sign1). */
  WrongTag = "WrongTag",
  /** The tag is missing where the caller requires it. */
  NotTagged = "NotTagged",
  /** Not an array of exactly 4 elements. */
  NotSign1Array = "NotSign1Array",
  /** The protected header is not a bstr. */
  ProtectedNotBstr = "ProtectedNotBstr",
  /** The protected bstr does not hold exactly one CBOR map. */
  ProtectedNotMap = "ProtectedNotMap",
  /** A header label is neither an integer nor a text string, or is repeated. */
  InvalidHeaderLabel = "InvalidHeaderLabel",
  /** The unprotected header is not a map. */
  UnprotectedNotMap = "UnprotectedNotMap",
  /** The payload is nil (detached) or not a bstr. */
  PayloadNotBstr = "PayloadNotBstr",
  /** The signature is not a bstr. */
  SignatureNotBstr = "SignatureNotBstr",
  /** The protected header has no alg (label 1). */
  MissingAlg = "MissingAlg",
  /** alg is not ES256, ES384 or ES512. */
  UnsupportedAlg = "UnsupportedAlg",
  /** The signature's length is not 2 x the alg's curve size. */
  BadSignatureLength = "BadSignatureLength",
  /** The key is not an EC key on the curve that alg names. */
  AlgKeyMismatch = "AlgKeyMismatch",
  /** The key is not an EC key on P-256, P-384 or P-521 (or not private when signing). */
  UnsupportedKey = "UnsupportedKey",
  /** The signature does not verify over the Sig_structure. */
  SignatureMismatch = "SignatureMismatch",
}
export type CoseErrorType = { code: CoseErrorCode };
export class CoseError extends CcfError<CoseErrorType> {}

/** A header value that was encoded as a CBOR float (major type 7, minor 25..27). */
export class CborFloat {
  constructor(readonly value: number) {}
}

interface AlgInfo {
  readonly alg: CoseAlg;
  /** node's (OpenSSL's) curve name. */
  readonly nodeCurve: string;
  readonly hash: "sha256" | "sha384" | "sha512";
  /** Invariant: 2 x ceil(curve bits / 8). */
  readonly signatureBytes: number;
}

const ALG_LIST: readonly AlgInfo[] = [
  { alg: CoseAlg.ES256, nodeCurve: "prime256v1", hash: "sha256", signatureBytes: 64 },
  { alg: CoseAlg.ES384, nodeCurve: "secp384r1", hash: "sha384", signatureBytes: 96 },
  { alg: CoseAlg.ES512, nodeCurve: "secp521r1", hash: "sha512", signatureBytes: 132 },
];
const ALGS: ReadonlyMap<number, AlgInfo> = new Map(ALG_LIST.map((info) => [info.alg, info]));

function fail(code: CoseErrorCode, message: string): never {
  throw new CoseError({ code }, message);
}

/** The COSE alg that matches an EC key's curve; throws UnsupportedKey for any other key. */
export function coseAlgForKey(key: KeyObject): CoseAlg {
  const curve = key.asymmetricKeyType === "ec" ? key.asymmetricKeyDetails?.namedCurve : undefined;
  for (const info of ALGS.values()) if (info.nodeCurve === curve) return info.alg;
  return fail(
    CoseErrorCode.UnsupportedKey,
    `unsupported COSE signing key: ${key.asymmetricKeyType ?? "unknown"} ` +
      `${curve ?? ""} (need EC P-256, P-384 or P-521)`,
  );
}

export function isSupportedCoseAlg(alg: unknown): alg is CoseAlg {
  return typeof alg === "number" && ALGS.has(alg);
}

function algInfo(alg: CoseAlg): AlgInfo {
  const info = ALGS.get(alg);
  if (info === undefined) return fail(CoseErrorCode.UnsupportedAlg, `unsupported alg ${alg}`);
  return info;
}

/** The bytes ECDSA signs: Sig_structure for a Sign1 with empty external AAD. */
export function sign1ToBeSigned(protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  return encode(["Signature1", protectedBytes, new Uint8Array(0), payload]);
}

/** node returns its own Uint8Array subclass; callers get a plain copy. */
function plain(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

export interface SignSign1Options {
  /** Wrap in tag 18 (default true: CCF requires the tag). */
  readonly tagged?: boolean;
}

/**
 * Signs `payload` (attached) with an EC private key. The protected header gets alg from the
 * key's curve when it has none; an alg that disagrees with the key throws AlgKeyMismatch.
 * Labels are written in cborg's canonical (length-first) order; the unprotected header is empty.
 */
export function signSign1(
  privateKey: KeyObject,
  protectedHeader: CoseHeaderMap,
  payload: Uint8Array,
  options: SignSign1Options = {},
): Uint8Array {
  if (privateKey.type !== "private") {
    fail(CoseErrorCode.UnsupportedKey, "COSE signing needs a private key");
  }
  const keyAlg = coseAlgForKey(privateKey);
  const headerAlg = protectedHeader.get(COSE_HEADER_ALG);
  if (headerAlg !== undefined && headerAlg !== keyAlg) {
    fail(CoseErrorCode.AlgKeyMismatch, `alg ${String(headerAlg)} does not match key (${keyAlg})`);
  }
  const header = new Map<CoseLabel, unknown>([[COSE_HEADER_ALG, keyAlg]]);
  for (const [label, value] of protectedHeader) header.set(label, value);
  const protectedBytes = encode(header);
  const info = algInfo(keyAlg);
  const signature = plain(
    sign(info.hash, sign1ToBeSigned(protectedBytes, payload), {
      key: privateKey,
      dsaEncoding: "ieee-p1363",
    }),
  );
  const sign1 = [protectedBytes, new Map(), payload, signature];
  return encode(options.tagged === false ? sign1 : new Tagged(COSE_SIGN1_TAG, sign1));
}

/**
 * Signs `payload` as a COSE_Sign1 whose payload is detached (nil in the message; a verifier is
 * handed it separately), as CCF signs Merkle roots (ccf-compatibility.md §6.4). The protected
 * header holds alg (from the key's curve) and then `header` in the order given, nested maps
 * included: CCF writes its headers in a fixed, unsorted order, and keeping it makes the bytes
 * CCF's. The unprotected header is an empty map; the message is tagged 18. The signature is
 * deterministic (RFC 6979, ecdsa.ts), so equal inputs give equal ledgers; P-256 and P-384 keys.
 */
export function signSign1Detached(
  privateKey: KeyObject,
  header: readonly (readonly [CoseLabel, unknown])[],
  payload: Uint8Array,
): Uint8Array {
  if (privateKey.type !== "private") {
    fail(CoseErrorCode.UnsupportedKey, "COSE signing needs a private key");
  }
  const alg = coseAlgForKey(privateKey);
  const entries = header.filter(([label]) => label !== COSE_HEADER_ALG);
  const protectedBytes = encode(new Map<CoseLabel, unknown>([[COSE_HEADER_ALG, alg], ...entries]), {
    mapSorter: KEEP_ORDER,
  });
  const digest = hash(algInfo(alg).hash, sign1ToBeSigned(protectedBytes, payload), "buffer");
  const signature = signDigest(privateKey, plain(digest), "compact");
  return encode(new Tagged(COSE_SIGN1_TAG, [protectedBytes, new Map(), null, signature]));
}

/** A map sorter that keeps insertion order (Array.prototype.sort is stable). */
const KEEP_ORDER = (): number => 0;

/** A structurally valid COSE_Sign1; its signature is not yet checked. */
export interface Sign1Message {
  readonly tagged: boolean;
  readonly alg: CoseAlg;
  /** The protected header bstr exactly as received (what the signature covers). */
  readonly protectedBytes: Uint8Array;
  readonly protectedHeader: CoseHeaderMap;
  readonly unprotectedHeader: CoseHeaderMap;
  readonly payload: Uint8Array;
  /** Invariant: length is the alg's signatureBytes (IEEE P1363 r||s). */
  readonly signature: Uint8Array;
}

/**
 * Strict decoding: no indefinite lengths, no undefined, no duplicate map keys. Every option is
 * spelled out because our tokenizer does not get cborg's defaults (allowBigInt among them).
 */
const STRICT: DecodeOptions = {
  strict: false,
  allowBigInt: true,
  useMaps: true,
  rejectDuplicateMapKeys: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
};

/** Wraps cborg's tokenizer so float values survive decoding as CborFloat (see invariants). */
class FloatBoxingTokenizer {
  private readonly inner: Tokenizer;
  constructor(data: Uint8Array, options: DecodeOptions) {
    this.inner = new Tokenizer(data, options);
  }
  done(): boolean {
    return this.inner.done();
  }
  pos(): number {
    return this.inner.pos();
  }
  next(): Token {
    const token = this.inner.next();
    if (!Type.equals(token.type, Type.float)) return token;
    return new Token(Type.float, new CborFloat(token.value));
  }
}

function decodeCbor(bytes: Uint8Array, options: DecodeOptions, code: CoseErrorCode): unknown {
  try {
    return decode(bytes, { ...options, tokenizer: new FloatBoxingTokenizer(bytes, options) });
  } catch (err: unknown) {
    // cborg throws plain Errors for malformed CBOR; anything of ours is a bug and propagates.
    if (!isForeignError(err)) throw err;
    const detail = err.message;
    if (detail.includes("repeat map key")) fail(CoseErrorCode.InvalidHeaderLabel, detail);
    return fail(code, detail);
  }
}

/** The tag number of the first item, or null when it is not a tag. */
function leadingTag(bytes: Uint8Array): number | null {
  if (bytes.byteLength === 0) return fail(CoseErrorCode.NotCbor, "empty input");
  try {
    const first = new Tokenizer(bytes, STRICT).next();
    return Type.equals(first.type, Type.tag) ? Number(first.value) : null;
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    return fail(CoseErrorCode.NotCbor, err.message);
  }
}

function asHeaderMap(value: unknown, code: CoseErrorCode, what: string): CoseHeaderMap {
  if (!(value instanceof Map)) return fail(code, `${what} is not a CBOR map`);
  for (const label of value.keys()) {
    const isInt = typeof label === "number" && Number.isSafeInteger(label);
    if (!isInt && typeof label !== "string" && typeof label !== "bigint") {
      fail(CoseErrorCode.InvalidHeaderLabel, `${what} has a label that is not int or text`);
    }
  }
  return value as CoseHeaderMap;
}

function decodeProtected(protectedBytes: Uint8Array): CoseHeaderMap {
  // RFC 9052 3: a zero-length protected bstr stands for an empty map.
  if (protectedBytes.byteLength === 0) return new Map();
  const header = decodeCbor(protectedBytes, STRICT, CoseErrorCode.ProtectedNotMap);
  return asHeaderMap(header, CoseErrorCode.ProtectedNotMap, "protected header");
}

export interface DecodeSign1Options {
  /** Reject an untagged message (NotTagged). Default false. */
  readonly requireTag?: boolean;
  /**
   * The payload of a message that carries none (nil): a detached payload, as in CCF's ledger
   * signatures. Without it a nil payload is PayloadNotBstr; with it an attached one is.
   */
  readonly detachedPayload?: Uint8Array;
}

/** Parses a COSE_Sign1 strictly (see invariants); throws CoseError on any deviation. */
export function decodeSign1(bytes: Uint8Array, options: DecodeSign1Options = {}): Sign1Message {
  const tag = leadingTag(bytes);
  if (tag !== null && tag !== COSE_SIGN1_TAG) {
    fail(CoseErrorCode.WrongTag, `CBOR tag ${tag} is not COSE_Sign1 (18)`);
  }
  const opts = { ...STRICT, tags: Tagged.preserve(COSE_SIGN1_TAG) };
  let item = decodeCbor(bytes, opts, CoseErrorCode.NotCbor);
  if (tag === null && options.requireTag === true) {
    fail(CoseErrorCode.NotTagged, "COSE_Sign1 is not tagged");
  }
  if (item instanceof Tagged) item = item.value;
  if (!Array.isArray(item) || item.length !== 4) {
    return fail(CoseErrorCode.NotSign1Array, "COSE_Sign1 must be an array of 4 elements");
  }
  const [protectedBytes, unprotected, payload, signature] = item as unknown[];
  if (!(protectedBytes instanceof Uint8Array)) {
    return fail(CoseErrorCode.ProtectedNotBstr, "protected header is not a byte string");
  }
  const protectedHeader = decodeProtected(protectedBytes);
  const unprotectedHeader = asHeaderMap(
    unprotected,
    CoseErrorCode.UnprotectedNotMap,
    "unprotected header",
  );
  const body = payloadOf(payload, options.detachedPayload);
  if (!(signature instanceof Uint8Array)) {
    return fail(CoseErrorCode.SignatureNotBstr, "signature is not a byte string");
  }
  const alg = protectedHeader.get(COSE_HEADER_ALG);
  if (alg === undefined) return fail(CoseErrorCode.MissingAlg, "protected header has no alg");
  if (!isSupportedCoseAlg(alg)) {
    return fail(CoseErrorCode.UnsupportedAlg, `unsupported alg ${describe(alg)}`);
  }
  const info = algInfo(alg);
  if (signature.byteLength !== info.signatureBytes) {
    fail(
      CoseErrorCode.BadSignatureLength,
      `signature is ${signature.byteLength} bytes, alg ${alg} needs ${info.signatureBytes}`,
    );
  }
  return {
    tagged: tag !== null,
    alg,
    protectedBytes: view(protectedBytes),
    protectedHeader,
    unprotectedHeader,
    payload: view(body),
    signature: view(signature),
  };
}

/** The message's payload, or the detached one the caller holds for a nil payload. */
function payloadOf(payload: unknown, detached: Uint8Array | undefined): Uint8Array {
  if (detached !== undefined) {
    if (payload !== null) fail(CoseErrorCode.PayloadNotBstr, "payload is not detached (nil)");
    return detached;
  }
  if (!(payload instanceof Uint8Array)) {
    return fail(CoseErrorCode.PayloadNotBstr, "payload is not an attached byte string");
  }
  return payload;
}

/** cborg may hand back node's Uint8Array subclass; callers get a plain view (no copy). */
function view(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function describe(value: unknown): string {
  if (value instanceof CborFloat) return `${value.value} (float)`;
  if (value instanceof Uint8Array) return "a byte string";
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

export type Sign1Verification =
  | { readonly kind: "valid" }
  | {
      readonly kind: "invalid";
      readonly code: CoseErrorCode.AlgKeyMismatch | CoseErrorCode.SignatureMismatch;
      readonly message: string;
    };

/**
 * Checks the signature of a decoded message with a public (or private) EC key. The message's
 * alg must be the one for the key's curve: a P-384 key never verifies an ES256 message.
 * Throws CoseError(UnsupportedKey) only for a key that is not a supported EC key.
 */
export function verifySign1(message: Sign1Message, key: KeyObject): Sign1Verification {
  const keyAlg = coseAlgForKey(key);
  if (keyAlg !== message.alg) {
    return {
      kind: "invalid",
      code: CoseErrorCode.AlgKeyMismatch,
      message: `alg ${message.alg} does not match the signer's key (alg ${keyAlg})`,
    };
  }
  const info = algInfo(message.alg);
  const ok = verify(
    info.hash,
    sign1ToBeSigned(message.protectedBytes, message.payload),
    { key, dsaEncoding: "ieee-p1363" },
    message.signature,
  );
  return ok
    ? { kind: "valid" }
    : {
        kind: "invalid",
        code: CoseErrorCode.SignatureMismatch,
        message: "COSE_Sign1 signature does not verify",
      };
}

/** decodeSign1 + verifySign1, throwing CoseError for any failure; returns the message. */
export function decodeAndVerifySign1(
  bytes: Uint8Array,
  key: KeyObject,
  options: DecodeSign1Options = {},
): Sign1Message {
  const message = decodeSign1(bytes, options);
  const result = verifySign1(message, key);
  if (result.kind === "invalid") fail(result.code, result.message);
  return message;
}

export interface EncodeWithUnprotectedOptions {
  /** Write nil for the payload: the message was decoded with a detached payload. */
  readonly detached: boolean;
}

/**
 * The message again, tagged 18, with `unprotectedHeader` in place of its unprotected header: how
 * CCF turns the signature over a root into a receipt (ccf-compatibility.md §6.5; the proof rides
 * in the unprotected header, which the signature does not cover). The protected bytes, the
 * payload (nil when detached) and the signature are carried over, so the signature still
 * verifies.
 */
export function encodeSign1WithUnprotected(
  message: Sign1Message,
  unprotectedHeader: CoseHeaderMap,
  options: EncodeWithUnprotectedOptions,
): Uint8Array {
  const payload = options.detached ? null : message.payload;
  return encode(
    new Tagged(COSE_SIGN1_TAG, [
      message.protectedBytes,
      unprotectedHeader,
      payload,
      message.signature,
    ]),
  );
}

/**
 * One CBOR item decoded as strictly as COSE headers are (maps as Map, no duplicate keys, no
 * indefinite lengths, floats as CborFloat), for CBOR carried inside a COSE header such as a
 * receipt's inclusion proofs. Throws CoseError (NotCbor, or InvalidHeaderLabel for a repeated
 * map key) for anything else.
 */
export function decodeCborItem(bytes: Uint8Array): unknown {
  return decodeCbor(bytes, STRICT, CoseErrorCode.NotCbor);
}

/** Encodes one CBOR item (map keys in cborg's canonical order), e.g. a receipt's proof. */
export function encodeCborItem(value: unknown): Uint8Array {
  return encode(value);
}
