/**
 * UVM endorsements (CCF 6's src/node/uvm_endorsements.cpp): a COSE_Sign1 in which the issuer of
 * a utility VM (e.g. Microsoft for Azure confidential containers) endorses its SEV-SNP launch
 * measurement, so that governance may allow a signer and feed rather than each measurement.
 *
 * verifyUvmEndorsements checks, in CCF's order: a tagged COSE_Sign1 whose protected header has an
 * RSA-PSS or ECDSA `alg`, an `x5chain` (33) of DER certificates, `iss` (a did:x509 DID), `feed`
 * and content type `application/json`; that the chain resolves the DID (did-x509.ts) and its leaf
 * key signs the message; and a JSON payload with `x-ms-sevsnpvm-launchmeasurement` (hex) and
 * `x-ms-sevsnpvm-guestsvn` (decimal string or unsigned integer). It returns {did, feed, svn,
 * measurement}. matchUvmRootsOfTrust then checks an endorsement against the report's measurement
 * and a list of roots of trust {did, feed, svn}: one with the same DID and feed and an svn at
 * most the endorsed one (numbers compared as integers).
 *
 * Pure: node:crypto and CBOR only. Throws UvmEndorsementError with the reason.
 */
import { constants, verify, type KeyObject } from "node:crypto";
import { decode, Tagged } from "cborg";
import { fromUtf8 } from "../base/bytes.js";
import { CcfError, isForeignError, isTextDecodeError } from "../base/errors.js";
import { COSE_SIGN1_TAG, sign1ToBeSigned } from "./cose.js";
import { DidX509Error, resolveDidX509 } from "./did-x509.js";

export enum UvmEndorsementErrorCode {
  Malformed = "Malformed",
  UnsupportedAlg = "UnsupportedAlg",
  DidNotResolved = "DidNotResolved",
  SignatureInvalid = "SignatureInvalid",
  MeasurementMismatch = "MeasurementMismatch",
  NotTrusted = "NotTrusted",
}
export type UvmEndorsementErrorType = { code: UvmEndorsementErrorCode };
export class UvmEndorsementError extends CcfError<UvmEndorsementErrorType> {}

function fail(code: UvmEndorsementErrorCode, message: string): never {
  throw new UvmEndorsementError({ code }, message);
}

/** What an endorsement says, once verified; svn as a decimal string, as CCF keeps it. */
export interface UvmEndorsement {
  did: string;
  feed: string;
  svn: string;
  /** The endorsed launch measurement, as the payload gives it. */
  measurement: string;
}

/** A governed signer and feed, and the lowest svn it allows. */
export interface UvmRootOfTrust {
  did: string;
  feed: string;
  svn: string;
}

const HEADER_ALG = 1;
const HEADER_CONTENT_TYPE = 3;
const HEADER_X5CHAIN = 33;
const JSON_CONTENT_TYPE = "application/json";
const PAYLOAD_MEASUREMENT = "x-ms-sevsnpvm-launchmeasurement";
const PAYLOAD_SVN = "x-ms-sevsnpvm-guestsvn";

/** COSE algs (RFC 9053, RFC 8230) CCF accepts here: hash, and RSA-PSS or ECDSA. */
const ALGS: ReadonlyMap<number, { hash: string; pss: boolean }> = new Map([
  [-7, { hash: "sha256", pss: false }],
  [-35, { hash: "sha384", pss: false }],
  [-36, { hash: "sha512", pss: false }],
  [-37, { hash: "sha256", pss: true }],
  [-38, { hash: "sha384", pss: true }],
  [-39, { hash: "sha512", pss: true }],
]);

/** Tags that may appear in the message: COSE_Sign1, and date/times in headers (signingtime). */
const TAGS = Tagged.preserve(0, 1, COSE_SIGN1_TAG);

function decodeCbor(bytes: Uint8Array, what: string): unknown {
  try {
    return decode(bytes, { useMaps: true, tags: TAGS });
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    return fail(UvmEndorsementErrorCode.Malformed, `${what} is not CBOR: ${err.message}`);
  }
}

interface DecodedSign1 {
  protectedBytes: Uint8Array;
  header: Map<unknown, unknown>;
  payload: Uint8Array;
  signature: Uint8Array;
}

function decodeMessage(raw: Uint8Array): DecodedSign1 {
  const item = decodeCbor(raw, "the UVM endorsements");
  if (!(item instanceof Tagged) || item.tag !== COSE_SIGN1_TAG) {
    fail(UvmEndorsementErrorCode.Malformed, "the UVM endorsements are not a tagged COSE_Sign1");
  }
  const parts = item.value as unknown;
  if (!Array.isArray(parts) || parts.length !== 4) {
    fail(UvmEndorsementErrorCode.Malformed, "a COSE_Sign1 is an array of 4 elements");
  }
  const [protectedBytes, , payload, signature] = parts as unknown[];
  const bytes = [protectedBytes, payload, signature];
  if (!bytes.every((b) => b instanceof Uint8Array)) {
    fail(
      UvmEndorsementErrorCode.Malformed,
      "the protected header, payload or signature is not bytes",
    );
  }
  const header = decodeCbor(protectedBytes as Uint8Array, "the protected header");
  if (!(header instanceof Map)) {
    fail(UvmEndorsementErrorCode.Malformed, "the protected header is not a map");
  }
  return {
    protectedBytes: protectedBytes as Uint8Array,
    header,
    payload: payload as Uint8Array,
    signature: signature as Uint8Array,
  };
}

function textHeader(header: Map<unknown, unknown>, label: string | number, name: string): string {
  const value = header.get(label);
  if (typeof value !== "string") {
    fail(UvmEndorsementErrorCode.Malformed, `the protected header has no text ${name}`);
  }
  return value;
}

function x5chain(header: Map<unknown, unknown>): Uint8Array[] {
  const value = header.get(HEADER_X5CHAIN);
  const chain = value instanceof Uint8Array ? [value] : value;
  if (!Array.isArray(chain) || chain.length === 0 || !chain.every((c) => c instanceof Uint8Array)) {
    fail(UvmEndorsementErrorCode.Malformed, "the protected header has no x5chain of certificates");
  }
  return chain as Uint8Array[];
}

function checkSignature(
  message: DecodedSign1,
  alg: { hash: string; pss: boolean },
  key: KeyObject,
) {
  const data = sign1ToBeSigned(message.protectedBytes, message.payload);
  const options = alg.pss
    ? {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      }
    : { key, dsaEncoding: "ieee-p1363" as const };
  let ok: boolean;
  try {
    ok = verify(alg.hash, data, options, message.signature);
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    ok = false;
  }
  if (!ok) {
    fail(
      UvmEndorsementErrorCode.SignatureInvalid,
      "the UVM endorsements' signature does not verify",
    );
  }
}

function parsePayload(payload: Uint8Array): { measurement: string; svn: string } {
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(payload));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return fail(UvmEndorsementErrorCode.Malformed, `the payload is not JSON: ${err.message}`);
  }
  const fields = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const measurement = fields[PAYLOAD_MEASUREMENT];
  if (typeof measurement !== "string") {
    fail(UvmEndorsementErrorCode.Malformed, `the payload has no string ${PAYLOAD_MEASUREMENT}`);
  }
  const svn = fields[PAYLOAD_SVN];
  const isUint = typeof svn === "number" && Number.isSafeInteger(svn) && svn >= 0;
  if (!isUint && !(typeof svn === "string" && /^\d+$/.test(svn))) {
    fail(
      UvmEndorsementErrorCode.Malformed,
      `the payload's ${PAYLOAD_SVN} is not an unsigned integer or a string of digits`,
    );
  }
  return { measurement, svn: String(svn) };
}

/** Verifies raw UVM endorsements (COSE_Sign1 bytes) and returns what they endorse. */
export function verifyUvmEndorsements(raw: Uint8Array): UvmEndorsement {
  const message = decodeMessage(raw);
  const algId = message.header.get(HEADER_ALG);
  const alg = typeof algId === "number" ? ALGS.get(algId) : undefined;
  if (alg === undefined) {
    fail(
      UvmEndorsementErrorCode.UnsupportedAlg,
      `signature algorithm ${String(algId)} is not RSA-PSS or ECDSA`,
    );
  }
  const did = textHeader(message.header, "iss", "iss");
  const feed = textHeader(message.header, "feed", "feed");
  let key: KeyObject;
  try {
    key = resolveDidX509(x5chain(message.header), did);
  } catch (err: unknown) {
    if (!(err instanceof DidX509Error)) throw err;
    return fail(
      UvmEndorsementErrorCode.DidNotResolved,
      `the x5chain does not resolve ${did}: ${err.message}`,
    );
  }
  checkSignature(message, alg, key);
  const contentType = message.header.get(HEADER_CONTENT_TYPE);
  if (contentType !== JSON_CONTENT_TYPE) {
    fail(
      UvmEndorsementErrorCode.Malformed,
      `the payload content type ${String(contentType)} is not ${JSON_CONTENT_TYPE}`,
    );
  }
  return { did, feed, ...parsePayload(message.payload) };
}

/**
 * Checks a verified endorsement against the report's measurement (hex) and the roots of trust;
 * returns the root that allows it.
 */
export function matchUvmRootsOfTrust(
  endorsement: UvmEndorsement,
  measurement: string,
  roots: readonly UvmRootOfTrust[],
): UvmRootOfTrust {
  if (endorsement.measurement !== measurement) {
    fail(
      UvmEndorsementErrorCode.MeasurementMismatch,
      `the endorsed launch measurement ${endorsement.measurement} is not the report's ` +
        measurement,
    );
  }
  const svn = BigInt(endorsement.svn);
  const root = roots.find(
    (r) =>
      r.did === endorsement.did &&
      r.feed === endorsement.feed &&
      /^\d+$/.test(r.svn) &&
      BigInt(r.svn) <= svn,
  );
  if (root === undefined) {
    fail(
      UvmEndorsementErrorCode.NotTrusted,
      `UVM endorsements did ${endorsement.did}, feed ${endorsement.feed}, svn ${endorsement.svn} ` +
        "do not match any of the known UVM roots of trust",
    );
  }
  return root;
}
