/**
 * Enclave credentials for the enclave registry (issue #13, the registry contract): what
 * `consortia registry simulate-enclave` makes and what `consortia registry verify` checks again
 * on the client's side, with no node involved.
 *
 * - attested data: the UTF-8 JSON object {chaincode_id, version, sequence, channel_id?,
 *   host_params {peer_endpoint, peer_msp_id?}, enclave_vk (SPKI PEM), chaincode_ek? (SPKI PEM)},
 *   sent as base64 of its exact bytes, so the bytes hashed are the bytes stored;
 * - evidence {format, quote, endorsements}: for "Insecure_Virtual" the quote is base64 of the
 *   JSON {"measurement","host_data","report_data"} (the key order CCF's virtual nodes use) with
 *   report_data = base64(SHA-256(attested data bytes)); endorsements are "";
 * - for "AMD_SEV_SNP_v1" the quote is base64 of the raw SEV-SNP report and the endorsements base64
 *   of the PEM chain VCEK, ASK, ARK (as CCF's); attestation/snp.ts verifies both, and the first
 *   32 bytes of the report's report_data must be SHA-256 of the attested data bytes;
 * - enclave id: upper-case hex SHA-256 of enclave_vk's SubjectPublicKeyInfo DER.
 *
 * A simulated enclave proves nothing about the code it runs: any measurement may be claimed,
 * exactly as a virtual node's. Checks throw typed EnclaveEvidenceErrors; no IO here (the time at
 * which SEV-SNP certificates must be valid comes from the caller).
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { fromBase64, fromUtf8, toHex, utf8 } from "../base/bytes.js";
import { CcfError, isForeignError, isTextDecodeError } from "../base/errors.js";
import { sha256 } from "../crypto/hash.js";
import { SnpVerificationError, verifySnpReport, type SnpReport } from "../attestation/snp.js";
import { AttestationError, decodeVirtualQuote, makeVirtualQuote } from "../attestation/virtual.js";
import {
  ecPrivateKeyPem,
  generateEcKeyPair,
  generateEncryptionKey,
  nodeIdFromPublicKey,
  type EcCurveName,
} from "../crypto/identity.js";

export const INSECURE_VIRTUAL = "Insecure_Virtual";
export const AMD_SEV_SNP_V1 = "AMD_SEV_SNP_v1";
/** The host data a simulated enclave reports unless told otherwise: SHA-256 of this text. */
export const SIMULATED_HOST_DATA_TEXT = "consortia simulated enclave host";
/** Bytes of report_data bound to the attested data: a SHA-256. */
const BOUND_BYTES = 32;

export enum EnclaveEvidenceErrorCode {
  /** The attested data is not the JSON object the registry expects. */
  InvalidAttestedData = "InvalidAttestedData",
  /** The evidence or its quote does not decode to what its format prescribes. */
  MalformedEvidence = "MalformedEvidence",
  /** report_data does not start with SHA-256 of the attested data bytes. */
  ReportDataMismatch = "ReportDataMismatch",
  /** The evidence decodes but does not verify (SEV-SNP: signature, chain, root key). */
  EvidenceRejected = "EvidenceRejected",
  /** No local verifier for this evidence format. */
  UnsupportedFormat = "UnsupportedFormat",
}
export type EnclaveEvidenceErrorType = { code: EnclaveEvidenceErrorCode };
export class EnclaveEvidenceError extends CcfError<EnclaveEvidenceErrorType> {}

function fail(code: EnclaveEvidenceErrorCode, message: string): never {
  throw new EnclaveEvidenceError({ code }, message);
}

export interface Evidence {
  readonly format: string;
  /** Base64 of the raw quote. */
  readonly quote: string;
  /** Base64 of the endorsements ("" for virtual evidence). */
  readonly endorsements: string;
}

export interface AttestedData {
  readonly chaincode_id: string;
  readonly version: string;
  readonly sequence: number;
  readonly channel_id?: string;
  readonly host_params: { readonly peer_endpoint: string; readonly peer_msp_id?: string };
  readonly enclave_vk: string;
  readonly chaincode_ek?: string;
}

/** What evidence attests once its binding to the attested data has been checked. */
export interface VerifiedEvidence {
  readonly format: string;
  readonly measurement: string;
  /** Hex. */
  readonly hostData: string;
  /** Hex of the whole report_data. */
  readonly reportData: string;
  /** SEV-SNP only: the verified report (product, reported TCB, chip id, policy...). */
  readonly snp?: SnpReport;
}

export interface SimulateOptions {
  readonly chaincodeId: string;
  readonly version: string;
  readonly sequence: number;
  readonly channelId?: string;
  readonly peerEndpoint: string;
  readonly mspId?: string;
  /** Hex; default SHA-256 of SIMULATED_HOST_DATA_TEXT. */
  readonly hostData?: string;
  readonly curve?: EcCurveName;
}

/** A simulated enclave: its credentials and the private halves it keeps. */
export interface SimulatedEnclave {
  readonly enclaveId: string;
  /** The exact bytes to register (base64 of them goes in the request). */
  readonly attestedData: Uint8Array;
  readonly evidence: Evidence;
  /** SEC 1 PEM of the enclave signing key. */
  readonly enclaveSkPem: string;
  /** PKCS#8 PEM of the chaincode decryption key (RSA-OAEP). */
  readonly chaincodeDkPem: string;
}

/** Upper-case hex SHA-256 of the SPKI DER of a public key (PEM or KeyObject). */
export function enclaveIdOf(key: KeyObject | string): string {
  return nodeIdFromPublicKey(key).toUpperCase();
}

function spkiPem(key: KeyObject): string {
  return key.export({ type: "spki", format: "pem" }).toString();
}

/** Insecure_Virtual evidence binding `attestedData` (the quote virtual nodes send). */
export function virtualEvidence(
  attestedData: Uint8Array,
  report: { measurement: string; hostData: string },
): Evidence {
  const quote = makeVirtualQuote(attestedData, report.hostData, report.measurement);
  return { format: INSECURE_VIRTUAL, quote: quote.quote, endorsements: quote.endorsements };
}

/** A fresh enclave key pair, chaincode encryption key, attested data and virtual evidence. */
export function simulateEnclave(options: SimulateOptions): SimulatedEnclave {
  const enclaveKeys = generateEcKeyPair(options.curve ?? "secp256r1");
  const encryption = generateEncryptionKey();
  const hostParams: AttestedData["host_params"] = {
    peer_endpoint: options.peerEndpoint,
    ...(options.mspId !== undefined && { peer_msp_id: options.mspId }),
  };
  const data: AttestedData = {
    chaincode_id: options.chaincodeId,
    version: options.version,
    sequence: options.sequence,
    ...(options.channelId !== undefined && { channel_id: options.channelId }),
    host_params: hostParams,
    enclave_vk: spkiPem(enclaveKeys.publicKey),
    chaincode_ek: encryption.publicKeyPem,
  };
  const attestedData = utf8(JSON.stringify(data));
  const hostData = options.hostData ?? toHex(sha256(SIMULATED_HOST_DATA_TEXT));
  return {
    enclaveId: enclaveIdOf(enclaveKeys.publicKey),
    attestedData,
    evidence: virtualEvidence(attestedData, { measurement: options.version, hostData }),
    enclaveSkPem: ecPrivateKeyPem(enclaveKeys.privateKey),
    chaincodeDkPem: encryption.privateKeyPem,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function decodeJsonObject(bytes: Uint8Array, what: string, code: EnclaveEvidenceErrorCode) {
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    fail(code, `${what} is not UTF-8 JSON: ${err.message}`);
  }
  if (!isObject(value)) fail(code, `${what} is not a JSON object`);
  return value;
}

function requireString(obj: Record<string, unknown>, key: string, what: string): string {
  const value = obj[key];
  if (typeof value !== "string" || value === "") {
    fail(EnclaveEvidenceErrorCode.InvalidAttestedData, `${what} has no non-empty string "${key}"`);
  }
  return value;
}

/** Parses attested data bytes; throws InvalidAttestedData naming the missing field. */
export function parseAttestedData(bytes: Uint8Array): AttestedData {
  const what = "the attested data";
  const obj = decodeJsonObject(bytes, what, EnclaveEvidenceErrorCode.InvalidAttestedData);
  const chaincodeId = requireString(obj, "chaincode_id", what);
  const version = requireString(obj, "version", what);
  const sequence = obj.sequence;
  if (typeof sequence !== "number" || !Number.isSafeInteger(sequence) || sequence < 0) {
    fail(EnclaveEvidenceErrorCode.InvalidAttestedData, `${what} has no integer "sequence"`);
  }
  const host = obj.host_params;
  if (!isObject(host)) {
    fail(EnclaveEvidenceErrorCode.InvalidAttestedData, `${what} has no object "host_params"`);
  }
  const peerEndpoint = requireString(host, "peer_endpoint", `${what}'s host_params`);
  const enclaveVk = requireString(obj, "enclave_vk", what);
  const optional = (o: Record<string, unknown>, key: string) =>
    typeof o[key] === "string" ? { [key]: o[key] } : {};
  return {
    chaincode_id: chaincodeId,
    version,
    sequence,
    ...optional(obj, "channel_id"),
    host_params: { peer_endpoint: peerEndpoint, ...optional(host, "peer_msp_id") },
    enclave_vk: enclaveVk,
    ...optional(obj, "chaincode_ek"),
  };
}

/** The enclave id of the attested data's enclave_vk; InvalidAttestedData if it is no key. */
export function enclaveIdOfAttestedData(data: AttestedData): string {
  try {
    return enclaveIdOf(createPublicKey(data.enclave_vk));
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    fail(
      EnclaveEvidenceErrorCode.InvalidAttestedData,
      `enclave_vk is not a PEM public key (${err.message})`,
    );
  }
}

/** Checks the shape of an evidence object {format, quote, endorsements}. */
export function parseEvidence(value: unknown): Evidence {
  const malformed = EnclaveEvidenceErrorCode.MalformedEvidence;
  if (!isObject(value)) fail(malformed, "the evidence is not a JSON object");
  for (const key of ["format", "quote", "endorsements"]) {
    if (typeof value[key] !== "string") fail(malformed, `the evidence has no string "${key}"`);
  }
  if (value.quote === "") fail(malformed, "the evidence's quote is empty");
  const { format, quote, endorsements } = value as unknown as Evidence;
  return { format, quote, endorsements };
}

function verifyVirtualEvidence(evidence: Evidence, attestedData: Uint8Array): VerifiedEvidence {
  const malformed = EnclaveEvidenceErrorCode.MalformedEvidence;
  let decoded: ReturnType<typeof decodeVirtualQuote>;
  try {
    decoded = decodeVirtualQuote(evidence.quote);
  } catch (err: unknown) {
    if (!(err instanceof AttestationError)) throw err;
    fail(malformed, `the virtual quote is malformed: ${err.message}`);
  }
  const { measurement, hostData } = decoded;
  const reportData = fromBase64(decoded.reportData);
  if (reportData === null || reportData.byteLength < BOUND_BYTES) {
    fail(malformed, `the quote's report_data is not base64 of at least ${BOUND_BYTES} bytes`);
  }
  const bound = toHex(reportData.subarray(0, BOUND_BYTES));
  const expected = toHex(sha256(attestedData));
  if (bound !== expected) {
    fail(
      EnclaveEvidenceErrorCode.ReportDataMismatch,
      `the quote's report_data ${bound} is not the SHA-256 of the attested data (${expected})`,
    );
  }
  return { format: INSECURE_VIRTUAL, measurement, hostData, reportData: toHex(reportData) };
}

function verifySnpEvidence(
  evidence: Evidence,
  attestedData: Uint8Array,
  now: Date,
): VerifiedEvidence {
  const malformed = EnclaveEvidenceErrorCode.MalformedEvidence;
  const report = fromBase64(evidence.quote);
  if (report === null) fail(malformed, "the quote is not base64");
  const chain = fromBase64(evidence.endorsements);
  if (chain === null) fail(malformed, "the endorsements are not base64");
  let verified: SnpReport;
  try {
    verified = verifySnpReport(report, fromUtf8(chain), { now });
  } catch (err: unknown) {
    if (isTextDecodeError(err)) fail(malformed, "the endorsements are not a PEM text");
    if (!(err instanceof SnpVerificationError)) throw err;
    fail(EnclaveEvidenceErrorCode.EvidenceRejected, `SEV-SNP evidence rejected: ${err.message}`);
  }
  const bound = verified.reportData.slice(0, 2 * BOUND_BYTES);
  const expected = toHex(sha256(attestedData));
  if (bound !== expected) {
    fail(
      EnclaveEvidenceErrorCode.ReportDataMismatch,
      `the report's report_data ${bound} is not the SHA-256 of the attested data (${expected})`,
    );
  }
  const { measurement, hostData, reportData } = verified;
  return { format: AMD_SEV_SNP_V1, measurement, hostData, reportData, snp: verified };
}

/**
 * Verifies evidence locally: its format's checks and that report_data binds `attestedData`;
 * `now` is when SEV-SNP endorsement certificates must be valid.
 */
export function verifyEvidence(
  evidence: Evidence,
  attestedData: Uint8Array,
  now: Date,
): VerifiedEvidence {
  switch (evidence.format) {
    case INSECURE_VIRTUAL:
      return verifyVirtualEvidence(evidence, attestedData);
    case AMD_SEV_SNP_V1:
      return verifySnpEvidence(evidence, attestedData, now);
    default:
      return fail(
        EnclaveEvidenceErrorCode.UnsupportedFormat,
        `unknown evidence format ${JSON.stringify(evidence.format)}`,
      );
  }
}
