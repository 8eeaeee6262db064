/**
 * Verifying an enclave's evidence and its binding to the attested data, by format:
 * - Insecure_Virtual: the quote is base64 of the JSON {measurement, host_data, report_data}
 *   that virtual nodes send (report_data: base64 of the bound bytes); nothing is signed, so any
 *   measurement may be claimed. A quote that is not such a document fails as InvalidQuote.
 * - AMD_SEV_SNP_v1: the report is verified by the host's SNP verifier (the JS runtime's
 *   snp_attestation.verifySnpAttestation: signature, VCEK -> ASK -> ARK chain to AMD's root),
 *   whose refusal is 401 InvalidQuote with its reason.
 * Then report_data's first 32 bytes must be SHA-256 of the attested data bytes (401
 * ReportDataMismatch). For a virtual quote the binding is checked right after decoding (there
 * is nothing else to verify); for SNP only a verified report's report_data is trusted. No IO.
 */
import { equalBytes, fromBase64, fromUtf8, isHex, toHex } from "./codec.js";
import { PLATFORMS, RegistryError, type Platform, type Tcb, type Verified } from "./model.js";

/** The fields of a verified SNP report the registry uses (ccf-app's SnpAttestationResult). */
export interface SnpReport {
  readonly measurement: Uint8Array;
  readonly report_data: Uint8Array;
  readonly host_data: Uint8Array;
  readonly reported_tcb: Tcb;
  readonly cpuid_fam_id: number;
  readonly cpuid_mod_id: number;
  readonly cpuid_step: number;
}

export type SnpOutcome =
  | { readonly kind: "verified"; readonly report: SnpReport }
  | { readonly kind: "refused"; readonly reason: string };

export interface EvidenceHost {
  sha256(data: Uint8Array): Uint8Array;
  verifySnp(quote: Uint8Array, endorsements: Uint8Array): SnpOutcome;
}

export const REPORT_DATA_BOUND_BYTES = 32;

function invalidQuote(message: string): never {
  throw new RegistryError("InvalidQuote", message);
}

function checkBinding(reportData: Uint8Array, attestedHash: Uint8Array): void {
  const bound = reportData.subarray(0, REPORT_DATA_BOUND_BYTES);
  if (reportData.length < REPORT_DATA_BOUND_BYTES || !equalBytes(bound, attestedHash)) {
    throw new RegistryError(
      "ReportDataMismatch",
      "report_data does not start with SHA-256 of the attested data",
    );
  }
}

function virtualEvidence(quote: Uint8Array, attestedHash: Uint8Array): Verified {
  const text = fromUtf8(quote);
  let doc: unknown = null;
  try {
    doc = text === null ? null : (JSON.parse(text) as unknown);
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    invalidQuote("the virtual quote is not a JSON object");
  }
  const { measurement, host_data: hostData, report_data: rd } = doc as Record<string, unknown>;
  if (typeof measurement !== "string") invalidQuote("the virtual quote has no measurement");
  if (typeof hostData !== "string") invalidQuote("the virtual quote has no host_data");
  const reportData = typeof rd === "string" ? fromBase64(rd) : null;
  if (reportData === null) invalidQuote("the virtual quote's report_data is not base64");
  checkBinding(reportData, attestedHash);
  return {
    format: "Insecure_Virtual",
    measurement,
    host_data: isHex(hostData) ? hostData.toLowerCase() : hostData,
    report_data: toHex(reportData),
  };
}

/** AMD's product of a CPUID family and model (CCF's Milan / Genoa / Turin). */
export function productOf(family: number, model: number): string {
  if (family === 0x19 && model < 0x10) return "Milan";
  if (family === 0x19 && (model < 0x20 || (model >= 0xa0 && model < 0xb0))) return "Genoa";
  if (family === 0x1a) return "Turin";
  return "Unknown";
}

/** The CPUID (leaf 1 EAX, 8 lower-case hex digits) of a family, model and stepping. */
export function cpuidHex(family: number, model: number, stepping: number): string {
  const baseFamily = Math.min(family, 0xf);
  const extFamily = family - baseFamily;
  const value =
    (extFamily << 20) |
    ((model >> 4) << 16) |
    (baseFamily << 8) |
    ((model & 0xf) << 4) |
    (stepping & 0xf);
  return value.toString(16).padStart(8, "0");
}

function snpEvidence(
  host: EvidenceHost,
  quote: Uint8Array,
  endorsements: Uint8Array,
  hash: Uint8Array,
): Verified {
  const outcome = host.verifySnp(quote, endorsements);
  if (outcome.kind === "refused") invalidQuote(`SNP evidence does not verify: ${outcome.reason}`);
  const r = outcome.report;
  checkBinding(r.report_data, hash);
  const tcb: Tcb = {
    boot_loader: r.reported_tcb.boot_loader,
    tee: r.reported_tcb.tee,
    snp: r.reported_tcb.snp,
    microcode: r.reported_tcb.microcode,
    ...(r.reported_tcb.fmc === undefined ? {} : { fmc: r.reported_tcb.fmc }),
  };
  return {
    format: "AMD_SEV_SNP_v1",
    measurement: toHex(r.measurement),
    host_data: toHex(r.host_data),
    report_data: toHex(r.report_data),
    reported_tcb: tcb,
    product: productOf(r.cpuid_fam_id, r.cpuid_mod_id),
    cpuid: cpuidHex(r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step),
  };
}

export function isPlatform(format: string): format is Platform {
  return (PLATFORMS as readonly string[]).includes(format);
}

/** The verified facts of the evidence, bound to `attestedBytes`; throws 400/401. */
export function verifyEvidence(
  host: EvidenceHost,
  evidence: { format: string; quote: Uint8Array; endorsements: Uint8Array },
  attestedBytes: Uint8Array,
): Verified {
  const hash = host.sha256(attestedBytes);
  switch (evidence.format) {
    case "Insecure_Virtual":
      return virtualEvidence(evidence.quote, hash);
    case "AMD_SEV_SNP_v1":
      return snpEvidence(host, evidence.quote, evidence.endorsements, hash);
    default:
      throw new RegistryError(
        "InvalidInput",
        `unknown evidence format ${JSON.stringify(evidence.format)}: use ${PLATFORMS.join(" or ")}`,
      );
  }
}
