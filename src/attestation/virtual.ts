/**
 * Attestation quotes (ccf-compatibility.md §2.4): making and checking the evidence a node
 * presents when it joins. Verification is dispatched on `QuoteInfo.format` through one table of
 * per-format verifiers, so a new format (AMD SEV-SNP) is one more entry and callers do not change.
 *
 * The only format today is CCF's "Insecure_Virtual": the quote is base64 of the JSON document
 * `{"measurement","host_data","report_data"}` (keys in that order, byte-compatible with what
 * CCF's virtual nodes send), with `report_data` = base64(SHA-256(node public key DER)). It binds
 * the node key but proves nothing about the code that runs, hence "Insecure".
 *
 * Invariant: verifyQuote either returns a VerifiedQuote whose report data matched the given key,
 * or throws AttestationError. It does not decide whether the measurement or host data may join:
 * that is governance policy (nodes.virtual.* tables), which the join handler checks.
 */
import { fromBase64, fromUtf8, toBase64, utf8 } from "../base/bytes.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import { sha256 } from "../crypto/hash.js";

/** CCF's fixed measurement of every virtual node. */
export const VIRTUAL_MEASUREMENT = "Insecure hard-coded virtual measurement v1";
export const VIRTUAL_FORMAT = "Insecure_Virtual";

/** A node's attestation as the join request and `nodes.info.quote_info` carry it. */
export interface QuoteInfo {
  format: string;
  /** Base64 of the raw quote. */
  quote: string;
  /** Base64 of the endorsements ("" for virtual quotes). */
  endorsements: string;
  uvm_endorsements?: string | undefined;
  endorsed_tcb?: string | undefined;
}

/** What a quote attests, once its format and key binding have been checked. */
export interface VerifiedQuote {
  format: "Insecure_Virtual";
  measurement: string;
  /** Hex host data (for virtual nodes: SHA-256 of the package they run). */
  hostData: string;
}

export enum AttestationErrorCode {
  /** No verifier for `QuoteInfo.format`. */
  UnsupportedFormat = "UnsupportedFormat",
  /** The quote does not decode to what its format prescribes. */
  MalformedQuote = "MalformedQuote",
  /** The quote is not bound to the presented public key. */
  ReportDataMismatch = "ReportDataMismatch",
}
export type AttestationErrorType = { code: AttestationErrorCode };
export class AttestationError extends CcfError<AttestationErrorType> {}

function fail(code: AttestationErrorCode, message: string): never {
  throw new AttestationError({ code }, message);
}

/** base64(SHA-256(public key DER)): the report data that binds a quote to a node key. */
export function reportDataOf(publicKeyDer: Uint8Array): string {
  return toBase64(sha256(publicKeyDer));
}

/** A virtual quote for the node whose SubjectPublicKeyInfo DER is `publicKeyDer`. */
export function makeVirtualQuote(publicKeyDer: Uint8Array, hostData: string): QuoteInfo {
  // Key order is part of the format: measurement, host_data, report_data.
  const report = {
    measurement: VIRTUAL_MEASUREMENT,
    host_data: hostData,
    report_data: reportDataOf(publicKeyDer),
  };
  return {
    format: VIRTUAL_FORMAT,
    quote: toBase64(utf8(JSON.stringify(report))),
    endorsements: "",
  };
}

type FormatVerifier = (quote: QuoteInfo, publicKeyDer: Uint8Array) => VerifiedQuote;

/** Decodes base64 -> UTF-8 -> JSON object; throws MalformedQuote. */
function decodeVirtualReport(text: string): Record<string, unknown> {
  const bytes = fromBase64(text);
  if (bytes === null) fail(AttestationErrorCode.MalformedQuote, "Quote is not valid base64");
  let report: unknown;
  try {
    report = JSON.parse(fromUtf8(bytes));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    fail(
      AttestationErrorCode.MalformedQuote,
      `Virtual quote is not a JSON document: ${err.message}`,
    );
  }
  if (typeof report !== "object" || report === null || Array.isArray(report)) {
    fail(AttestationErrorCode.MalformedQuote, "Virtual quote is not a JSON object");
  }
  return report as Record<string, unknown>;
}

function stringField(report: Record<string, unknown>, key: string): string {
  const value = report[key];
  if (typeof value !== "string") {
    fail(AttestationErrorCode.MalformedQuote, `Virtual quote has no string "${key}"`);
  }
  return value;
}

const verifyVirtual: FormatVerifier = (quote, publicKeyDer) => {
  const report = decodeVirtualReport(quote.quote);
  const measurement = stringField(report, "measurement");
  const hostData = stringField(report, "host_data");
  const reportData = stringField(report, "report_data");
  if (reportData !== reportDataOf(publicKeyDer)) {
    fail(
      AttestationErrorCode.ReportDataMismatch,
      "Quote report data does not match the SHA-256 of the node public key",
    );
  }
  return { format: VIRTUAL_FORMAT, measurement, hostData };
};

/** Invariant: one verifier per supported format; adding SEV-SNP adds an entry here. */
const VERIFIERS: ReadonlyMap<string, FormatVerifier> = new Map([[VIRTUAL_FORMAT, verifyVirtual]]);

/**
 * Checks the format, decodes the quote, and that its report data is
 * base64(SHA-256(publicKeyDer)). Throws AttestationError (UnsupportedFormat, MalformedQuote,
 * ReportDataMismatch). Does not check measurement or host data policy.
 */
export function verifyQuote(quote: QuoteInfo, publicKeyDer: Uint8Array): VerifiedQuote {
  const verifier = VERIFIERS.get(quote.format);
  if (verifier === undefined) {
    fail(
      AttestationErrorCode.UnsupportedFormat,
      `Unsupported quote format ${JSON.stringify(quote.format)} (supported: ` +
        `${[...VERIFIERS.keys()].join(", ")})`,
    );
  }
  return verifier(quote, publicKeyDer);
}
