/**
 * CCF signed governance requests (ccf-compatibility.md §4.1): a tagged COSE_Sign1 whose protected
 * header names the signing member and the message's purpose and time, plus the proposal replay
 * window. The COSE wire format itself is src/crypto/cose.ts; this module owns the governance
 * headers:
 *
 *   1 (alg)                    -7 | -35 | -36, and it must match the member key's curve
 *   4 (kid)                    bstr: the member id as 64 lowercase ASCII hex characters
 *   "ccf.gov.msg.type"         proposal | ballot | withdrawal | state_digest | ack | recovery_share
 *   "ccf.gov.msg.created_at"   integer seconds since the epoch, 0..9999999999
 *   "ccf.gov.msg.proposal_id"  text; required for ballot and withdrawal
 *
 * Failures are GovCoseError with a code; ccfErrorOf maps each code to the CCF error CCF
 * answers with: decoding failures are 401 InvalidAuthenticationInfo, a created_at above
 * 9999999999 is 400 InvalidCreatedAt, a ballot or withdrawal without proposal_id is 400
 * InvalidResourceName ("Authenticated proposal id does not match URL").
 *
 * Replay window (CCF's validate_proposal_submission_time): keys are created_at zero-padded to 10
 * digits, ":", hex SHA-256 of the signature. A new key must not already be present (replay), and
 * its created_at must be >= the created_at of the median kept key (the key at index n/2 of the
 * sorted keys). Once it is added, the oldest keys are evicted so the window keeps windowSize keys.
 * checkReplay is pure: the caller stores the key and deletes the evicted ones.
 */
import { bytesToKey, toHex } from "../base/bytes.js";
import { assert } from "../base/assert.js";
import { CcfError } from "../base/errors.js";
import type { MemberId } from "../base/ids.js";
import { CertError, publicKeyOfCert, type PemOrDer } from "../crypto/certs.js";
import {
  COSE_HEADER_KID,
  CborFloat,
  CoseError,
  CoseErrorCode,
  decodeSign1,
  verifySign1,
  type CoseAlg,
  type Sign1Message,
} from "../crypto/cose.js";
import { sha256 } from "../crypto/hash.js";
import { memberIdFromCert } from "../crypto/identity.js";

export const HEADER_MSG_TYPE = "ccf.gov.msg.type";
export const HEADER_MSG_CREATED_AT = "ccf.gov.msg.created_at";
export const HEADER_MSG_PROPOSAL_ID = "ccf.gov.msg.proposal_id";

export type GovMsgType =
  "proposal" | "ballot" | "withdrawal" | "state_digest" | "ack" | "recovery_share";
export const GOV_MSG_TYPES: readonly GovMsgType[] = [
  "proposal",
  "ballot",
  "withdrawal",
  "state_digest",
  "ack",
  "recovery_share",
];
/** Message types that act on one proposal and so must name it. */
const NEEDS_PROPOSAL_ID: ReadonlySet<GovMsgType> = new Set(["ballot", "withdrawal"]);

/** CCF pads created_at to 10 digits in replay keys, so larger values are refused. */
export const MAX_CREATED_AT = 9_999_999_999;
export const CREATED_AT_DIGITS = 10;
/** CCF's default recent_cose_proposals_window_size. */
export const DEFAULT_REPLAY_WINDOW_SIZE = 100;

const MEMBER_ID_RE = /^[0-9a-f]{64}$/;

export enum GovCoseErrorCode {
  /** The COSE_Sign1 structure is malformed; `coseCode` says how. */
  MalformedCose = "MalformedCose",
  MissingKid = "MissingKid",
  /** kid is not a bstr of 64 lowercase hex ASCII characters. */
  InvalidKid = "InvalidKid",
  MissingMsgType = "MissingMsgType",
  /** msg.type is not text or not one of the six governance types. */
  InvalidMsgType = "InvalidMsgType",
  MissingCreatedAt = "MissingCreatedAt",
  /** created_at is not a CBOR integer (text, float, ...). */
  CreatedAtNotInteger = "CreatedAtNotInteger",
  NegativeCreatedAt = "NegativeCreatedAt",
  /** created_at > 9999999999 (CCF: InvalidCreatedAt). */
  CreatedAtTooLarge = "CreatedAtTooLarge",
  /** ballot / withdrawal without proposal_id. */
  MissingProposalId = "MissingProposalId",
  /** proposal_id present but not text. */
  InvalidProposalId = "InvalidProposalId",
}
export type GovCoseErrorType = { code: GovCoseErrorCode; coseCode: CoseErrorCode | null };
export class GovCoseError extends CcfError<GovCoseErrorType> {}

/** The CCF error codes (include/ccf/odata_error.h) this module's outcomes map to. */
export type GovCcfErrorCode =
  | "InvalidAuthenticationInfo"
  | "InvalidCreatedAt"
  | "InvalidResourceName"
  | "ProposalReplay"
  | "ProposalCreatedTooLongAgo";

export function ccfErrorOf(code: GovCoseErrorCode): GovCcfErrorCode {
  switch (code) {
    case GovCoseErrorCode.CreatedAtTooLarge:
      return "InvalidCreatedAt";
    case GovCoseErrorCode.MissingProposalId:
      return "InvalidResourceName";
    default:
      return "InvalidAuthenticationInfo";
  }
}

export interface GovCoseRequest {
  readonly alg: CoseAlg;
  /** Invariant: 64 lowercase hex characters (the signer's member id, as claimed). */
  readonly kid: MemberId;
  readonly msgType: GovMsgType;
  /** Invariant: an integer in 0..MAX_CREATED_AT, seconds since the Unix epoch. */
  readonly createdAt: number;
  readonly proposalId?: string;
  readonly payload: Uint8Array;
  readonly protectedBytes: Uint8Array;
  readonly signature: Uint8Array;
  /** The decoded envelope, kept for signature verification. */
  readonly message: Sign1Message;
}

function fail(code: GovCoseErrorCode, message: string): never {
  throw new GovCoseError({ code, coseCode: null }, message);
}

function parseKid(value: unknown): MemberId {
  if (value === undefined) return fail(GovCoseErrorCode.MissingKid, "protected header has no kid");
  if (!(value instanceof Uint8Array)) {
    return fail(GovCoseErrorCode.InvalidKid, "kid must be a byte string");
  }
  // Read as latin1 (one char per byte, never throws): any non-ASCII byte fails the regex.
  const text = bytesToKey(value);
  if (!MEMBER_ID_RE.test(text)) {
    return fail(GovCoseErrorCode.InvalidKid, "kid must be 64 lowercase hex characters");
  }
  return text as MemberId;
}

function parseMsgType(value: unknown): GovMsgType {
  if (value === undefined) {
    return fail(GovCoseErrorCode.MissingMsgType, `protected header has no ${HEADER_MSG_TYPE}`);
  }
  if (typeof value !== "string" || !(GOV_MSG_TYPES as readonly string[]).includes(value)) {
    const shown = typeof value === "string" ? JSON.stringify(value) : "a non-text value";
    return fail(
      GovCoseErrorCode.InvalidMsgType,
      `${HEADER_MSG_TYPE} is ${shown}, expected one of ${GOV_MSG_TYPES.join(", ")}`,
    );
  }
  return value as GovMsgType;
}

function parseCreatedAt(value: unknown): number {
  const name = HEADER_MSG_CREATED_AT;
  if (value === undefined) {
    fail(GovCoseErrorCode.MissingCreatedAt, `protected header has no ${name}`);
  }
  // A CBOR float (even 1.7e9) is not an integer: CCF reads created_at as a signed integer.
  if (typeof value !== "bigint" && !(typeof value === "number" && Number.isInteger(value))) {
    const shown = value instanceof CborFloat ? "a float" : typeof value;
    return fail(GovCoseErrorCode.CreatedAtNotInteger, `${name} must be an integer, not ${shown}`);
  }
  if (value < 0) fail(GovCoseErrorCode.NegativeCreatedAt, `${name} must be positive`);
  if (value > MAX_CREATED_AT) {
    fail(GovCoseErrorCode.CreatedAtTooLarge, "Header parameter created_at value is too large");
  }
  return Number(value);
}

function parseProposalId(value: unknown, msgType: GovMsgType): string | undefined {
  if (value === undefined) {
    if (NEEDS_PROPOSAL_ID.has(msgType)) {
      fail(GovCoseErrorCode.MissingProposalId, `${msgType} requires ${HEADER_MSG_PROPOSAL_ID}`);
    }
    return undefined;
  }
  if (typeof value !== "string") {
    return fail(GovCoseErrorCode.InvalidProposalId, `${HEADER_MSG_PROPOSAL_ID} must be text`);
  }
  return value;
}

function decodeEnvelope(bytes: Uint8Array): Sign1Message {
  try {
    // CCF refuses an untagged envelope ("COSE_Sign1 is not tagged").
    return decodeSign1(bytes, { requireTag: true });
  } catch (err: unknown) {
    if (!(err instanceof CoseError)) throw err;
    const type = { code: GovCoseErrorCode.MalformedCose, coseCode: err.code };
    throw new GovCoseError(type, err.message);
  }
}

/**
 * Parses and validates a governance request's envelope and headers. The signature is NOT
 * checked here: look up the member by `kid`, then call verifyGovCoseRequest.
 */
export function parseGovCoseRequest(bytes: Uint8Array): GovCoseRequest {
  const message = decodeEnvelope(bytes);
  const header = message.protectedHeader;
  const kid = parseKid(header.get(COSE_HEADER_KID));
  const msgType = parseMsgType(header.get(HEADER_MSG_TYPE));
  const createdAt = parseCreatedAt(header.get(HEADER_MSG_CREATED_AT));
  const proposalId = parseProposalId(header.get(HEADER_MSG_PROPOSAL_ID), msgType);
  return {
    alg: message.alg,
    kid,
    msgType,
    createdAt,
    ...(proposalId !== undefined ? { proposalId } : {}),
    payload: message.payload,
    protectedBytes: message.protectedBytes,
    signature: message.signature,
    message,
  };
}

export type GovSignatureCheck =
  | { readonly kind: "valid" }
  | {
      readonly kind: "invalid";
      /** Every signature failure is 401 InvalidAuthenticationInfo in CCF. */
      readonly code: "KidMismatch" | "AlgKeyMismatch" | "SignatureMismatch" | "BadCertificate";
      readonly message: string;
    };

/**
 * Checks the request's signature with the member certificate. The kid must be that
 * certificate's member id, and alg must match its key's curve.
 */
export function checkGovCoseSignature(
  request: GovCoseRequest,
  memberCert: PemOrDer,
): GovSignatureCheck {
  let key: ReturnType<typeof publicKeyOfCert>;
  let memberId: MemberId;
  try {
    key = publicKeyOfCert(memberCert);
    memberId = memberIdFromCert(memberCert);
  } catch (err: unknown) {
    if (!(err instanceof CertError)) throw err;
    return { kind: "invalid", code: "BadCertificate", message: err.message };
  }
  if (memberId !== request.kid) {
    return { kind: "invalid", code: "KidMismatch", message: "kid is not this member's id" };
  }
  let result: ReturnType<typeof verifySign1>;
  try {
    result = verifySign1(request.message, key);
  } catch (err: unknown) {
    if (!(err instanceof CoseError)) throw err;
    return { kind: "invalid", code: "BadCertificate", message: err.message };
  }
  if (result.kind === "valid") return result;
  const code =
    result.code === CoseErrorCode.AlgKeyMismatch ? "AlgKeyMismatch" : "SignatureMismatch";
  return { kind: "invalid", code, message: result.message };
}

export function verifyGovCoseRequest(request: GovCoseRequest, memberCert: PemOrDer): boolean {
  return checkGovCoseSignature(request, memberCert).kind === "valid";
}

// --- Replay window ---------------------------------------------------------------------------

export interface ReplayEntry {
  /** Invariant: a replayKey() value. */
  readonly key: string;
  /** The proposal this key created (the value in public:ccf.gov.cose_recent_proposals). */
  readonly proposalId: string;
}

export type ReplayCheck =
  | { readonly kind: "ok"; readonly evicted: string[] }
  | { readonly kind: "replay"; readonly collidingProposalId: string }
  | { readonly kind: "too-old"; readonly minCreatedAt: string };

function paddedCreatedAt(createdAt: number): string {
  assert(
    Number.isSafeInteger(createdAt) && createdAt >= 0 && createdAt <= MAX_CREATED_AT,
    "created_at out of range",
  );
  return String(createdAt).padStart(CREATED_AT_DIGITS, "0");
}

/** created_at (10 digits) ":" hex SHA-256(signature), as CCF keys recent proposals. */
export function replayKey(createdAt: number, signature: Uint8Array): string {
  return `${paddedCreatedAt(createdAt)}:${toHex(sha256(signature))}`;
}

/**
 * Decides whether a proposal with `key` (made from `createdAt`) may enter the window, and which
 * kept keys to evict when it does. Follows CCF: duplicate check first, then the median rule,
 * then eviction of the oldest old keys so that windowSize keys remain (the new one included).
 */
export function checkReplay(
  window: readonly ReplayEntry[],
  key: string,
  createdAt: number,
  windowSize: number = DEFAULT_REPLAY_WINDOW_SIZE,
): ReplayCheck {
  assert(Number.isSafeInteger(windowSize) && windowSize >= 1, "window size must be >= 1");
  const created = paddedCreatedAt(createdAt);
  assert(key.startsWith(`${created}:`), "replay key does not match created_at");
  const colliding = window.find((entry) => entry.key === key);
  if (colliding !== undefined) {
    return { kind: "replay", collidingProposalId: colliding.proposalId };
  }
  // Keys are ASCII, so the default (UTF-16 code unit) order is CCF's bytewise std::sort order.
  const sorted = window.map((entry) => entry.key).sort();
  const median = sorted[Math.floor(sorted.length / 2)];
  if (median !== undefined) {
    const minCreatedAt = median.slice(0, median.indexOf(":"));
    // Both sides are 10-digit strings, so string order is numeric order.
    if (created < minCreatedAt) return { kind: "too-old", minCreatedAt };
  }
  const excess = sorted.length - (windowSize - 1);
  return { kind: "ok", evicted: excess > 0 ? sorted.slice(0, excess) : [] };
}

/**
 * How far ahead of the primary's wall clock a proposal's created_at may be, in seconds. The
 * replay window's median rule means one proposal stamped far in the future would refuse every
 * later proposal (ProposalCreatedTooLongAgo) until it is evicted, so such a proposal is refused
 * at submission instead (400 InvalidCreatedAt). Five minutes covers ordinary clock skew between
 * members and nodes.
 */
export const MAX_CREATED_AT_SKEW_S = 300;

/**
 * Null when `createdAt` (seconds) is at most MAX_CREATED_AT_SKEW_S past `nowMs` (the node's
 * wall clock, milliseconds since the epoch), else CCF's error for it.
 */
export function createdAtSkewError(
  createdAt: number,
  nowMs: number,
): { code: GovCcfErrorCode; message: string } | null {
  const latest = Math.floor(nowMs / 1000) + MAX_CREATED_AT_SKEW_S;
  if (createdAt <= latest) return null;
  return {
    code: "InvalidCreatedAt",
    message:
      `Header parameter created_at ${createdAt} is in the future: it must be at most ` +
      `${latest} (the node's time plus ${MAX_CREATED_AT_SKEW_S} seconds of clock skew)`,
  };
}

/** CCF's error code and message for a refused replay check. */
export function replayError(check: Exclude<ReplayCheck, { kind: "ok" }>): {
  code: GovCcfErrorCode;
  message: string;
} {
  if (check.kind === "replay") {
    const id = check.collidingProposalId;
    return {
      code: "ProposalReplay",
      message: `Proposal submission replay, already exists as proposal ${id}`,
    };
  }
  return {
    code: "ProposalCreatedTooLongAgo",
    message: `Proposal created too long ago, created_at must be greater than ${check.minCreatedAt}`,
  };
}
