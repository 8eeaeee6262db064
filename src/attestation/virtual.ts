/**
 * Attestation quotes (ccf-compatibility.md §2.4): making and checking the evidence a node
 * presents when it joins. Verification is dispatched on `QuoteInfo.format` through one table of
 * per-format verifiers, so a new format (AMD SEV-SNP) is one more entry and callers do not change.
 *
 * Two formats, as CCF's:
 * - "Insecure_Virtual": the quote is base64 of the JSON document
 *   `{"measurement","host_data","report_data"}` (keys in that order, byte-compatible with what
 *   CCF's virtual nodes send), with `report_data` = base64(SHA-256(node public key DER)). It
 *   binds the node key but proves nothing about the code that runs, hence "Insecure".
 * - "AMD_SEV_SNP_v1": the quote is base64 of the raw 1184-byte SEV-SNP report and the
 *   endorsements base64 of the PEM chain VCEK, ASK, ARK; snp.ts verifies both, and the first 32
 *   bytes of the report's report_data must be SHA-256(node public key DER).
 *
 * Invariant: verifyQuote either returns a VerifiedQuote whose report data matched the given key,
 * or throws AttestationError. It does not decide whether the measurement or host data may join:
 * that is governance policy (nodes.virtual.* tables), which the join handler checks.
 */
import { fromBase64, fromUtf8, toBase64, toHex, utf8 } from "../base/bytes.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import { sha256 } from "../crypto/hash.js";
import { SnpVerificationError, verifySnpReport, type SnpErrorCode, type SnpReport } from "./snp.js";

/** CCF's fixed measurement of every virtual node. */
export const VIRTUAL_MEASUREMENT = "Insecure hard-coded virtual measurement v1";
export const VIRTUAL_FORMAT = "Insecure_Virtual";
export const SNP_FORMAT = "AMD_SEV_SNP_v1";

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

/** What a quote attests, once its format, signatures and key binding have been checked. */
export type VerifiedQuote =
  | {
      format: "Insecure_Virtual";
      measurement: string;
      /** Hex host data (for virtual nodes: SHA-256 of the package they run). */
      hostData: string;
    }
  | {
      format: "AMD_SEV_SNP_v1";
      /** Hex launch digest (96 chars). */
      measurement: string;
      /** Hex host data (64 chars; on ACI, SHA-256 of the security policy). */
      hostData: string;
      report: SnpReport;
    };

export enum AttestationErrorCode {
  /** No verifier for `QuoteInfo.format`. */
  UnsupportedFormat = "UnsupportedFormat",
  /** The quote does not decode to what its format prescribes. */
  MalformedQuote = "MalformedQuote",
  /** The quote is not bound to the presented public key. */
  ReportDataMismatch = "ReportDataMismatch",
  /** Hardware evidence that does not verify; `reason` says which check failed. */
  EvidenceRejected = "EvidenceRejected",
  /** `endorsed_tcb` was given (collateral from the environment) and is not the reported TCB. */
  EndorsedTcbMismatch = "EndorsedTcbMismatch",
}
export type AttestationErrorType = { code: AttestationErrorCode; reason?: SnpErrorCode };
export class AttestationError extends CcfError<AttestationErrorType> {}

function fail(code: AttestationErrorCode, message: string): never {
  throw new AttestationError({ code }, message);
}

/** base64(SHA-256(public key DER)): the report data that binds a quote to a node key. */
export function reportDataOf(publicKeyDer: Uint8Array): string {
  return toBase64(sha256(publicKeyDer));
}

/**
 * A virtual quote binding `bound` (report_data = base64(SHA-256(bound))): for a node, its
 * SubjectPublicKeyInfo DER; for an enclave registering in the registry, its attested data. Nodes
 * always claim VIRTUAL_MEASUREMENT; a simulated enclave may claim any measurement.
 */
export function makeVirtualQuote(
  bound: Uint8Array,
  hostData: string,
  measurement: string = VIRTUAL_MEASUREMENT,
): QuoteInfo {
  // Key order is part of the format: measurement, host_data, report_data.
  const report = {
    measurement,
    host_data: hostData,
    report_data: reportDataOf(bound),
  };
  return {
    format: VIRTUAL_FORMAT,
    quote: toBase64(utf8(JSON.stringify(report))),
    endorsements: "",
  };
}

type FormatVerifier = (quote: QuoteInfo, publicKeyDer: Uint8Array, now: Date) => VerifiedQuote;

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

/** The fields of a virtual quote (base64 of its JSON report); throws MalformedQuote. */
export function decodeVirtualQuote(quote: string): {
  measurement: string;
  hostData: string;
  /** base64 of SHA-256(node public key DER). */
  reportData: string;
} {
  const report = decodeVirtualReport(quote);
  return {
    measurement: stringField(report, "measurement"),
    hostData: stringField(report, "host_data"),
    reportData: stringField(report, "report_data"),
  };
}

const verifyVirtual: FormatVerifier = (quote, publicKeyDer) => {
  const { measurement, hostData, reportData } = decodeVirtualQuote(quote.quote);
  if (reportData !== reportDataOf(publicKeyDer)) {
    fail(
      AttestationErrorCode.ReportDataMismatch,
      "Quote report data does not match the SHA-256 of the node public key",
    );
  }
  return { format: VIRTUAL_FORMAT, measurement, hostData };
};

function decodeBase64Field(text: string, what: string): Uint8Array {
  const bytes = fromBase64(text);
  if (bytes === null) fail(AttestationErrorCode.MalformedQuote, `${what} is not valid base64`);
  return bytes;
}

/** An SNP quote as CCF carries it: base64 of the raw report and of the PEM endorsements. */
export function makeSnpQuote(report: Uint8Array, endorsementsPem: string): QuoteInfo {
  return {
    format: SNP_FORMAT,
    quote: toBase64(report),
    endorsements: toBase64(utf8(endorsementsPem)),
  };
}

const verifySnp: FormatVerifier = (quote, publicKeyDer, now) => {
  const report = decodeBase64Field(quote.quote, "Quote");
  let endorsementsPem: string;
  try {
    endorsementsPem = fromUtf8(decodeBase64Field(quote.endorsements, "Endorsements"));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    fail(AttestationErrorCode.MalformedQuote, "Endorsements are not a PEM text");
  }
  let verified: SnpReport;
  try {
    verified = verifySnpReport(report, endorsementsPem, { now });
  } catch (err: unknown) {
    if (!(err instanceof SnpVerificationError)) throw err;
    throw new AttestationError(
      { code: AttestationErrorCode.EvidenceRejected, reason: err.code },
      `SEV-SNP evidence rejected: ${err.message}`,
    );
  }
  // As CCF: an endorsed TCB (the TCB the endorsements were fetched for) must be the reported one.
  const endorsed = quote.endorsed_tcb;
  if (endorsed !== undefined && endorsed.toLowerCase() !== verified.reportedTcb.hex) {
    fail(
      AttestationErrorCode.EndorsedTcbMismatch,
      `The endorsed TCB ${endorsed} is not the reported TCB ${verified.reportedTcb.hex}`,
    );
  }
  const bound = toHex(sha256(publicKeyDer));
  if (verified.reportData.slice(0, 64) !== bound) {
    fail(
      AttestationErrorCode.ReportDataMismatch,
      "The first 32 bytes of the report data are not the SHA-256 of the node public key",
    );
  }
  const { measurement, hostData } = verified;
  return { format: SNP_FORMAT, measurement, hostData, report: verified };
};

/** Invariant: one verifier per supported format. */
const VERIFIERS: ReadonlyMap<string, FormatVerifier> = new Map([
  [VIRTUAL_FORMAT, verifyVirtual],
  [SNP_FORMAT, verifySnp],
]);

/**
 * Checks the format, decodes the quote, verifies it (SNP: signature and endorsement chain, with
 * certificates valid at `now`) and that its report data binds `publicKeyDer`. Throws
 * AttestationError (UnsupportedFormat, MalformedQuote, EvidenceRejected, EndorsedTcbMismatch,
 * ReportDataMismatch).
 * Does not check measurement, host data or TCB policy: that is governance's.
 */
export function verifyQuote(quote: QuoteInfo, publicKeyDer: Uint8Array, now: Date): VerifiedQuote {
  const verifier = VERIFIERS.get(quote.format);
  if (verifier === undefined) {
    fail(
      AttestationErrorCode.UnsupportedFormat,
      `Unsupported quote format ${JSON.stringify(quote.format)} (supported: ` +
        `${[...VERIFIERS.keys()].join(", ")})`,
    );
  }
  return verifier(quote, publicKeyDer, now);
}
