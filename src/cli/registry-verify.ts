/**
 * The offline half of `consortia registry verify` (issue #13 item 4): given what a node answered
 * for an enclave's credentials (GET /app/registry/chaincodes/{c}/enclaves/{e}) and the receipt of
 * their registering transaction (GET /app/receipt), decides whether a client may trust the
 * enclave's keys, with only the service certificate as trust anchor.
 *
 * Checked, in order (the first failure is thrown as a typed error with the reason):
 *   1. the answer carries a base64 registration record R, a transaction id and a status;
 *   2. R is the JSON record of this chaincode and enclave;
 *   3. the receipt verifies against the service certificate (ledger/receipt.ts), is the receipt
 *      of the answer's transaction id, and its claims_digest is SHA-256(R) -- the registry sets
 *      it when it registers, so the receipt proves R, byte for byte;
 *   4. R's attested data names this chaincode, and its enclave_vk hashes to the enclave id;
 *   5. R's evidence verifies again locally and binds the attested data (registry-enclave.ts),
 *      and reports what R says the registry verified;
 *   6. the status is Active (the status is not covered by the receipt: revocation is later
 *      state, read from the node answering);
 *   7. with an expected measurement, the evidence reports it.
 * Everything a client is then told to trust comes from R, never from the answer's other fields.
 * No IO here.
 */
import { fromBase64, fromUtf8, toHex } from "../base/bytes.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import { sha256 } from "../crypto/hash.js";
import { parseReceipt, verifyReceipt } from "../ledger/receipt.js";
import {
  enclaveIdOfAttestedData,
  parseAttestedData,
  parseEvidence,
  verifyEvidence,
  type AttestedData,
  type VerifiedEvidence,
} from "./registry-enclave.js";

export enum RegistrationCheckErrorCode {
  /** The node's answer lacks the registration, transaction id or status. */
  MalformedCredentials = "MalformedCredentials",
  /** R is not a record of the requested chaincode and enclave. */
  WrongRegistration = "WrongRegistration",
  /** The receipt does not verify, or is not the registering transaction's. */
  InvalidReceipt = "InvalidReceipt",
  /** The receipt's claims digest is not SHA-256(R). */
  ClaimsDigestMismatch = "ClaimsDigestMismatch",
  /** The evidence reports something other than what R says was verified. */
  VerifiedMismatch = "VerifiedMismatch",
  /** The registration is not Active. */
  NotActive = "NotActive",
  /** The evidence does not report the measurement the client expects. */
  MeasurementMismatch = "MeasurementMismatch",
}
export type RegistrationCheckErrorType = { code: RegistrationCheckErrorCode };
export class RegistrationCheckError extends CcfError<RegistrationCheckErrorType> {}

function fail(code: RegistrationCheckErrorCode, message: string): never {
  throw new RegistrationCheckError({ code }, message);
}

export interface VerifyRegistrationInput {
  readonly chaincodeId: string;
  /** Compared case-insensitively; enclave ids are upper-case hex. */
  readonly enclaveId: string;
  /** The node's JSON answer for the enclave's credentials. */
  readonly credentials: unknown;
  /** The JSON receipt of the registering transaction. */
  readonly receipt: unknown;
  readonly serviceCertPem: string;
  readonly expectedMeasurement?: string;
  /** When SEV-SNP endorsement certificates must be valid (the caller's clock). */
  readonly now: Date;
}

/** What a client may trust once every check passed. */
export interface TrustedEnclave {
  readonly chaincodeId: string;
  readonly enclaveId: string;
  readonly transactionId: string;
  readonly status: string;
  readonly attestedData: AttestedData;
  readonly evidence: VerifiedEvidence;
  /** Hex SHA-256(R), as the receipt carries it. */
  readonly claimsDigest: string;
  /** One line per check made. */
  readonly checks: readonly string[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

interface Credentials {
  readonly registration: Uint8Array;
  readonly transactionId: string;
  readonly status: string;
  readonly reason: string | undefined;
}

function parseCredentials(value: unknown): Credentials {
  const malformed = RegistrationCheckErrorCode.MalformedCredentials;
  if (!isObject(value)) fail(malformed, "the node's answer is not a JSON object");
  const { registration, transaction_id: transactionId, status, reason } = value;
  if (typeof registration !== "string") fail(malformed, 'the answer has no "registration"');
  const bytes = fromBase64(registration);
  if (bytes === null || bytes.byteLength === 0) {
    fail(malformed, "the answer's registration is not base64 of a record");
  }
  if (typeof transactionId !== "string" || !/^\d+\.\d+$/.test(transactionId)) {
    fail(malformed, 'the answer has no "transaction_id" of the form <view>.<seqno>');
  }
  if (typeof status !== "string") fail(malformed, 'the answer has no "status"');
  return {
    registration: bytes,
    transactionId,
    status,
    reason: typeof reason === "string" ? reason : undefined,
  };
}

interface RegistrationRecord {
  readonly attestedData: Uint8Array;
  readonly evidence: unknown;
  readonly verified: Record<string, unknown> | undefined;
}

function parseRecord(bytes: Uint8Array, input: VerifyRegistrationInput): RegistrationRecord {
  const wrong = RegistrationCheckErrorCode.WrongRegistration;
  let record: unknown;
  try {
    record = JSON.parse(fromUtf8(bytes));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    fail(wrong, `the registration record is not UTF-8 JSON: ${err.message}`);
  }
  if (!isObject(record)) fail(wrong, "the registration record is not a JSON object");
  if (record.chaincode_id !== input.chaincodeId) {
    fail(wrong, `the registration record is of chaincode ${JSON.stringify(record.chaincode_id)}`);
  }
  const enclaveId = typeof record.enclave_id === "string" ? record.enclave_id : "";
  if (enclaveId.toUpperCase() !== input.enclaveId.toUpperCase()) {
    fail(wrong, `the registration record is of enclave ${JSON.stringify(record.enclave_id)}`);
  }
  const attested =
    typeof record.attested_data === "string" ? fromBase64(record.attested_data) : null;
  if (attested === null) fail(wrong, "the registration record has no base64 attested_data");
  const verified = isObject(record.verified) ? record.verified : undefined;
  return { attestedData: attested, evidence: record.evidence, verified };
}

/** Checks the receipt; returns its claims digest (hex) and the lines to report. */
function checkReceipt(
  input: VerifyRegistrationInput,
  credentials: Credentials,
): { claimsDigest: string; checks: string[] } {
  const invalid = RegistrationCheckErrorCode.InvalidReceipt;
  let receipt;
  try {
    receipt = parseReceipt(input.receipt);
  } catch (err: unknown) {
    if (!(err instanceof CcfError)) throw err;
    fail(invalid, `the receipt is malformed: ${err.message}`);
  }
  const verdict = verifyReceipt(receipt, input.serviceCertPem);
  if (verdict.kind === "invalid") fail(invalid, `the receipt does not verify: ${verdict.reason}`);
  const components = receipt.leaf_components;
  if (components === undefined) fail(invalid, "the receipt has no leaf_components");
  const txid = /^ce:(\d+\.\d+):/.exec(components.commit_evidence)?.[1];
  if (txid !== credentials.transactionId) {
    fail(invalid, `the receipt is of transaction ${txid}, not ${credentials.transactionId}`);
  }
  const digest = toHex(sha256(credentials.registration));
  if (components.claims_digest.toLowerCase() !== digest) {
    fail(
      RegistrationCheckErrorCode.ClaimsDigestMismatch,
      `the receipt's claims digest ${components.claims_digest} is not SHA-256 of the ` +
        `registration record (${digest})`,
    );
  }
  return {
    claimsDigest: digest,
    checks: [
      `the receipt of ${txid} verifies against the service certificate ` +
        `(root ${toHex(verdict.root)})`,
      `its claims digest is SHA-256 of the registration record (${digest})`,
    ],
  };
}

function checkVerified(evidence: VerifiedEvidence, verified: Record<string, unknown> | undefined) {
  if (verified === undefined) return;
  const same = (key: string, value: string) =>
    typeof verified[key] !== "string" || verified[key].toLowerCase() === value.toLowerCase();
  for (const [key, value] of [
    ["format", evidence.format],
    ["measurement", evidence.measurement],
    ["host_data", evidence.hostData],
  ] as const) {
    if (!same(key, value)) {
      fail(
        RegistrationCheckErrorCode.VerifiedMismatch,
        `the evidence reports ${key} ${JSON.stringify(value)}, the registry recorded ` +
          JSON.stringify(verified[key]),
      );
    }
  }
}

/** Runs every check (see the module comment); throws a CcfError with the first failure. */
export function verifyRegistration(input: VerifyRegistrationInput): TrustedEnclave {
  const credentials = parseCredentials(input.credentials);
  const record = parseRecord(credentials.registration, input);
  const receipt = checkReceipt(input, credentials);
  const attestedData = parseAttestedData(record.attestedData);
  const wrong = RegistrationCheckErrorCode.WrongRegistration;
  if (attestedData.chaincode_id !== input.chaincodeId) {
    fail(wrong, `the attested data is of chaincode ${JSON.stringify(attestedData.chaincode_id)}`);
  }
  const enclaveId = enclaveIdOfAttestedData(attestedData);
  if (enclaveId !== input.enclaveId.toUpperCase()) {
    fail(wrong, `the attested data's enclave_vk hashes to enclave id ${enclaveId}`);
  }
  const evidence = verifyEvidence(parseEvidence(record.evidence), record.attestedData, input.now);
  checkVerified(evidence, record.verified);
  if (credentials.status !== "Active") {
    const why = credentials.reason === undefined ? "" : ` (${credentials.reason})`;
    fail(RegistrationCheckErrorCode.NotActive, `the enclave is ${credentials.status}${why}`);
  }
  const expected = input.expectedMeasurement;
  if (expected !== undefined && evidence.measurement !== expected) {
    fail(
      RegistrationCheckErrorCode.MeasurementMismatch,
      `the evidence reports measurement ${JSON.stringify(evidence.measurement)}, not ` +
        JSON.stringify(expected),
    );
  }
  const checks = [
    ...receipt.checks,
    `the record is of chaincode ${input.chaincodeId}, and enclave_vk hashes to ${enclaveId}`,
    `the ${evidence.format} evidence verifies and its report_data binds the attested data`,
    `the registration is ${credentials.status}`,
    ...(expected === undefined ? [] : [`the measurement is the expected ${expected}`]),
  ];
  return {
    chaincodeId: input.chaincodeId,
    enclaveId,
    transactionId: credentials.transactionId,
    status: credentials.status,
    attestedData,
    evidence,
    claimsDigest: receipt.claimsDigest,
    checks,
  };
}
