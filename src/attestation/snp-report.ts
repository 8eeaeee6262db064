/**
 * AMD SEV-SNP attestation reports (ccf-compatibility.md §2.4): the 1184-byte, little-endian
 * ATTESTATION_REPORT structure of AMD's SEV-SNP firmware ABI, its decoding into named fields,
 * and the checks on those fields that need no certificate (size, version, signature algorithm,
 * VMPL, flags, guest policy). The endorsement chain is checked in snp-chain.ts and the whole
 * verification is put together in snp.ts.
 *
 * Layout (offsets in bytes; reliability-and-attestation.md §3.3, as CCF's
 * `ccf::pal::snp::Attestation`): version 0x000 (u32), guest_svn 0x004 (u32), policy 0x008 (u64;
 * bit 18 migrate_ma, bit 19 debug), family_id 0x010 (16), image_id 0x020 (16), vmpl 0x030
 * (u32), signature_algo 0x034 (u32, 1 = ECDSA P-384 with SHA-384), platform_version 0x038 (8),
 * platform_info 0x040 (u64), flags 0x048 (u32: bit 0 author_key_en, bit 1 mask_chip_key, bits
 * 2-4 signing_key: 0 VCEK, 1 VLEK), report_data 0x050 (64), measurement 0x090 (48), host_data
 * 0x0C0 (32), id_key_digest 0x0E0 (48), author_key_digest 0x110 (48), report_id 0x140 (32),
 * report_id_ma 0x160 (32), reported_tcb 0x180 (8), CPUID family 0x188, model 0x189, stepping
 * 0x18A (report version 3 and later; zero in version 2), chip_id 0x1A0 (64), committed_tcb
 * 0x1E0 (8), launch_tcb 0x1F0 (8), signature 0x2A0 (r: 72 bytes, s: 72 bytes, little-endian;
 * P-384 uses the first 48 of each). The signature covers bytes [0, 0x2A0).
 *
 * A TCB version is 8 bytes whose meaning depends on the product: Milan and Genoa put
 * bootloader, tee, 4 reserved, snp, microcode; Turin puts fmc, bootloader, tee, snp,
 * 3 reserved, microcode (CCF's TcbVersionMilanGenoa and TcbVersionTurin). CCF shows a TCB as
 * the hex of the 8 bytes in reverse order (the u64 read little-endian), e.g. "db18000000000004".
 *
 * No IO. Throws SnpVerificationError, one code per reason.
 */
import { getU32LE, getU64LE, toHex } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";

export const SNP_REPORT_BYTES = 0x4a0;
/** The signed part of a report: bytes [0, SNP_SIGNED_BYTES). */
export const SNP_SIGNED_BYTES = 0x2a0;
/** Report versions before this one are refused (version 2 is the oldest AMD shipped to guests). */
export const SNP_REPORT_VERSION_MIN = 2;
/** The first report version that carries the CPUID family, model and stepping. */
export const SNP_REPORT_VERSION_CPUID = 3;
export const SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;
export const SNP_VMPL_MAX = 3;
export const SNP_POLICY_MIGRATE_MA_BIT = 18;
export const SNP_POLICY_DEBUG_BIT = 19;

export const SNP_OFFSETS = {
  version: 0x000,
  guestSvn: 0x004,
  policy: 0x008,
  familyId: 0x010,
  imageId: 0x020,
  vmpl: 0x030,
  signatureAlgo: 0x034,
  platformVersion: 0x038,
  flags: 0x048,
  reportData: 0x050,
  measurement: 0x090,
  hostData: 0x0c0,
  idKeyDigest: 0x0e0,
  authorKeyDigest: 0x110,
  reportId: 0x140,
  reportedTcb: 0x180,
  cpuidFamily: 0x188,
  cpuidModel: 0x189,
  cpuidStepping: 0x18a,
  chipId: 0x1a0,
  committedTcb: 0x1e0,
  launchTcb: 0x1f0,
  signatureR: 0x2a0,
  signatureS: 0x2e8,
} as const;
export const SNP_SIGNATURE_COMPONENT_BYTES = 72;
export const P384_SCALAR_BYTES = 48;

export type SnpProduct = "Milan" | "Genoa" | "Turin";
export const SNP_PRODUCTS: readonly SnpProduct[] = ["Milan", "Genoa", "Turin"];
export type SnpSigningKey = "VCEK" | "VLEK";

export interface SnpTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin only. */
  fmc?: number;
  /** The 8 raw bytes, hex, as CCF shows them (reversed: the little-endian u64). */
  hex: string;
}

export enum SnpErrorCode {
  /** The report is not 1184 bytes or a field holds a value the ABI does not allow. */
  MalformedReport = "MalformedReport",
  UnsupportedVersion = "UnsupportedVersion",
  UnsupportedSignatureAlgorithm = "UnsupportedSignatureAlgorithm",
  /** The CPUID family and model (or, for version 2, the chain) name no supported product. */
  UnsupportedProduct = "UnsupportedProduct",
  /** VMPL above 3: a report the host made, not the guest. */
  HostGeneratedReport = "HostGeneratedReport",
  MaskedChipKey = "MaskedChipKey",
  UnsupportedSigningKey = "UnsupportedSigningKey",
  DebugPolicy = "DebugPolicy",
  MigrationPolicy = "MigrationPolicy",
  /** The endorsements are not a PEM chain of parseable certificates. */
  MalformedEndorsements = "MalformedEndorsements",
  EndorsementCount = "EndorsementCount",
  RootKeyMismatch = "RootKeyMismatch",
  RootNotSelfSigned = "RootNotSelfSigned",
  ChainBroken = "ChainBroken",
  CertificateNotValid = "CertificateNotValid",
  ReportSignatureInvalid = "ReportSignatureInvalid",
  /** The chip certificate lacks an AMD extension it must carry (TCB levels, hwID). */
  MissingExtension = "MissingExtension",
  TcbMismatch = "TcbMismatch",
  ChipIdMismatch = "ChipIdMismatch",
}
export type SnpErrorType = { code: SnpErrorCode };
export class SnpVerificationError extends CcfError<SnpErrorType> {}

export function snpFail(code: SnpErrorCode, message: string): never {
  throw new SnpVerificationError({ code }, message);
}

/** The fields of a report, decoded but not yet verified. */
export interface SnpReportFields {
  version: number;
  guestSvn: number;
  policy: number;
  familyId: string;
  imageId: string;
  vmpl: number;
  signatureAlgo: number;
  /** flags bits 2-4; 0 VCEK, 1 VLEK, others unsupported. */
  signingKeyField: number;
  maskChipKey: boolean;
  authorKeyEn: boolean;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  /** The raw 8 bytes; decoded by decodeSnpTcb once the product is known. */
  reportedTcbBytes: Uint8Array;
  platformVersionBytes: Uint8Array;
  committedTcbBytes: Uint8Array;
  launchTcbBytes: Uint8Array;
  chipId: string;
  chipIdBytes: Uint8Array;
  /** Absent for version 2 reports, which carry no CPUID. */
  cpuid?: { family: number; model: number; stepping: number };
}

function slice(report: Uint8Array, offset: number, length: number): Uint8Array {
  return report.slice(offset, offset + length);
}

function hexAt(report: Uint8Array, offset: number, length: number): string {
  return toHex(report.subarray(offset, offset + length));
}

/** Decodes every field of a report of the right size; checks nothing else. */
export function decodeSnpReport(report: Uint8Array): SnpReportFields {
  if (report.length !== SNP_REPORT_BYTES) {
    snpFail(
      SnpErrorCode.MalformedReport,
      `the attestation report is ${report.length} bytes; an SEV-SNP report is ` +
        `${SNP_REPORT_BYTES}`,
    );
  }
  const o = SNP_OFFSETS;
  const policy = getU64LE(report, o.policy);
  if (Number.isNaN(policy)) {
    snpFail(SnpErrorCode.MalformedReport, "the guest policy has reserved high bits set");
  }
  const flags = getU32LE(report, o.flags);
  const version = getU32LE(report, o.version);
  const fields: SnpReportFields = {
    version,
    guestSvn: getU32LE(report, o.guestSvn),
    policy,
    familyId: hexAt(report, o.familyId, 16),
    imageId: hexAt(report, o.imageId, 16),
    vmpl: getU32LE(report, o.vmpl),
    signatureAlgo: getU32LE(report, o.signatureAlgo),
    signingKeyField: (flags >>> 2) & 0b111,
    maskChipKey: (flags & 0b10) !== 0,
    authorKeyEn: (flags & 0b1) !== 0,
    reportData: hexAt(report, o.reportData, 64),
    measurement: hexAt(report, o.measurement, 48),
    hostData: hexAt(report, o.hostData, 32),
    idKeyDigest: hexAt(report, o.idKeyDigest, 48),
    authorKeyDigest: hexAt(report, o.authorKeyDigest, 48),
    reportId: hexAt(report, o.reportId, 32),
    reportedTcbBytes: slice(report, o.reportedTcb, 8),
    platformVersionBytes: slice(report, o.platformVersion, 8),
    committedTcbBytes: slice(report, o.committedTcb, 8),
    launchTcbBytes: slice(report, o.launchTcb, 8),
    chipId: hexAt(report, o.chipId, 64),
    chipIdBytes: slice(report, o.chipId, 64),
  };
  if (version >= SNP_REPORT_VERSION_CPUID) {
    fields.cpuid = {
      family: report[o.cpuidFamily]!,
      model: report[o.cpuidModel]!,
      stepping: report[o.cpuidStepping]!,
    };
  }
  return fields;
}

function policyBit(policy: number, bit: number): boolean {
  return Math.floor(policy / 2 ** bit) % 2 === 1;
}

/**
 * The checks CCF makes on the report's own fields (verify_snp_attestation_report): version,
 * signature algorithm, signing key, chip key not masked, VMPL <= 3 (a guest's report), no debug
 * and no migration agent in the guest policy.
 */
export function checkSnpReportFields(fields: SnpReportFields): SnpSigningKey {
  if (fields.version < SNP_REPORT_VERSION_MIN) {
    snpFail(
      SnpErrorCode.UnsupportedVersion,
      `attestation report version ${fields.version} is not supported (minimum ` +
        `${SNP_REPORT_VERSION_MIN})`,
    );
  }
  if (fields.signatureAlgo !== SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    snpFail(
      SnpErrorCode.UnsupportedSignatureAlgorithm,
      `unsupported report signature algorithm ${fields.signatureAlgo} (supported: 1, ` +
        `ECDSA P-384 with SHA-384)`,
    );
  }
  if (fields.maskChipKey) {
    snpFail(SnpErrorCode.MaskedChipKey, "the report's chip key is masked (mask_chip_key set)");
  }
  if (fields.signingKeyField > 1) {
    snpFail(
      SnpErrorCode.UnsupportedSigningKey,
      `the report is signed by key ${fields.signingKeyField}; expected the VCEK (0) or a VLEK (1)`,
    );
  }
  if (fields.vmpl > SNP_VMPL_MAX) {
    snpFail(
      SnpErrorCode.HostGeneratedReport,
      `the report seems to be host generated (VMPL ${fields.vmpl} > ${SNP_VMPL_MAX})`,
    );
  }
  if (policyBit(fields.policy, SNP_POLICY_DEBUG_BIT)) {
    snpFail(SnpErrorCode.DebugPolicy, "debug policy bit set: the guest's memory can be read");
  }
  if (policyBit(fields.policy, SNP_POLICY_MIGRATE_MA_BIT)) {
    snpFail(
      SnpErrorCode.MigrationPolicy,
      "migration agent policy bit set: the guest could be migrated (duplicated)",
    );
  }
  return fields.signingKeyField === 0 ? "VCEK" : "VLEK";
}

/**
 * The product a CPUID family and model belong to, by AMD's model ranges (family 19h: models
 * 00h-0Fh Milan, 10h-1Fh and A0h-AFh Genoa; family 1Ah: models 00h-11h Turin); null otherwise.
 */
export function productOfCpuid(family: number, model: number): SnpProduct | null {
  if (family === 0x19) {
    if (model <= 0x0f) return "Milan";
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return "Genoa";
    return null;
  }
  if (family === 0x1a && model <= 0x11) return "Turin";
  return null;
}

/**
 * CPUID Fn0000_0001_EAX rebuilt from family, model and stepping, as 8 hex digits: CCF's key of
 * `nodes.snp.tcb_versions` (Milan "00a00f11", Genoa "00a10f11", Turin "00b00f11").
 */
export function cpuidHex(family: number, model: number, stepping: number): string {
  const baseFamily = Math.min(family, 0xf);
  const extendedFamily = family - baseFamily;
  const eax =
    extendedFamily * 0x10_0000 +
    (model >> 4) * 0x1_0000 +
    baseFamily * 0x100 +
    (model & 0xf) * 0x10 +
    (stepping & 0xf);
  return eax.toString(16).padStart(8, "0");
}

/** Decodes an 8-byte TCB version in the product's layout. */
export function decodeSnpTcb(bytes: Uint8Array, product: SnpProduct): SnpTcb {
  const hex = toHex(bytes.slice().reverse());
  if (product === "Turin") {
    return {
      fmc: bytes[0]!,
      bootloader: bytes[1]!,
      tee: bytes[2]!,
      snp: bytes[3]!,
      microcode: bytes[7]!,
      hex,
    };
  }
  return { bootloader: bytes[0]!, tee: bytes[1]!, snp: bytes[6]!, microcode: bytes[7]!, hex };
}
