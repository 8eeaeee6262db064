/**
 * `snp_attestation.verifySnpAttestation(evidence, endorsements, uvm_endorsements?,
 * endorsed_tcb?)` for JS apps (ccf-compatibility.md §9; @microsoft/ccf-app 6's
 * snp_attestation module, CCF 6's src/js/extensions/snp_attestation.cpp): verifies a raw
 * SEV-SNP report against its PEM endorsements with the node's verifier (attestation/snp.ts),
 * at the current time, and describes every field of the report as SnpAttestationResult.
 *
 * As in CCF, a report that does not verify is a RangeError in the guest carrying the verifier's
 * message, and so is an `endorsed_tcb` (CCF's hex form) other than the reported TCB. Differences
 * from CCF 6.0.17, where its runtime and ccf-app's declaration disagree or CCF does more:
 *  - TCB versions (platform_version, reported_tcb, committed_tcb, launch_tcb) are objects
 *    {boot_loader, tee, snp, microcode, fmc (Turin only)} as ccf-app declares TcbVersion, plus
 *    `hexstring`, the hex string CCF's runtime returns in their place;
 *  - platform_info is given under ccf-app's name and under CCF's misspelt "plaform_info";
 *  - current_build/minor/major are read at AMD's offsets (build first), where CCF reads minor
 *    and build swapped;
 *  - UVM endorsements are not verified: passing them is a RangeError saying so.
 *
 * Byte fields travel to the guest as hex and become ArrayBuffers there (app-globals.ts).
 */
import { fromHex, fromUtf8, getU32LE, toHex } from "../base/bytes.js";
import { isTextDecodeError } from "../base/errors.js";
import { SnpVerificationError, verifySnpReport, type SnpReport } from "../attestation/snp.js";
import type { SnpTcb } from "../attestation/snp.js";

/** The fields of SnpAttestationResult.attestation that are ArrayBuffers (hex on the wire). */
export const SNP_BYTE_FIELDS = [
  "family_id",
  "image_id",
  "report_data",
  "measurement",
  "host_data",
  "id_key_digest",
  "author_key_digest",
  "report_id",
  "report_id_ma",
  "chip_id",
] as const;

/** ccf-app's TcbVersion, plus Turin's fmc and CCF's hex form. */
export interface SnpTcbVersionJson {
  boot_loader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
  hexstring: string;
}

/** SnpAttestationResult with every ArrayBuffer as hex. */
export interface SnpAttestationJson {
  attestation: Record<string, unknown>;
}

/** Byte ranges of the report not named by SnpReport (AMD SEV-SNP ABI, ATTESTATION_REPORT). */
const OFFSETS = {
  policy: 0x008,
  platformInfo: 0x040,
  flags: 0x048,
  reportIdMa: 0x160,
  cpuidFamily: 0x188,
  cpuidModel: 0x189,
  cpuidStepping: 0x18a,
  currentBuild: 0x1e8,
  currentMinor: 0x1e9,
  currentMajor: 0x1ea,
  committedBuild: 0x1ec,
  committedMinor: 0x1ed,
  committedMajor: 0x1ee,
  signatureR: 0x2a0,
  signatureS: 0x2e8,
} as const;
const SIGNATURE_COMPONENT_BYTES = 72;
const REPORT_ID_BYTES = 32;

/** A failure the guest sees as CCF's: a RangeError with the reason. */
function refuse(message: string): never {
  throw new RangeError(message);
}

function tcbJson(tcb: SnpTcb): SnpTcbVersionJson {
  return {
    boot_loader: tcb.bootloader,
    tee: tcb.tee,
    snp: tcb.snp,
    microcode: tcb.microcode,
    ...(tcb.fmc !== undefined ? { fmc: tcb.fmc } : {}),
    hexstring: tcb.hex,
  };
}

function bit(word: number, index: number): number {
  return (word >>> index) & 1;
}

function hexAt(raw: Uint8Array, offset: number, length: number): string {
  return toHex(raw.subarray(offset, offset + length));
}

/** Guest policy, platform info and flags: the bits ccf-app names. */
function bitFields(raw: Uint8Array) {
  const policy = getU32LE(raw, OFFSETS.policy);
  const platformInfo = getU32LE(raw, OFFSETS.platformInfo);
  const flags = getU32LE(raw, OFFSETS.flags);
  const platform = { smt_en: bit(platformInfo, 0), tsme_en: bit(platformInfo, 1) };
  return {
    policy: {
      abi_minor: policy & 0xff,
      abi_major: (policy >>> 8) & 0xff,
      smt: bit(policy, 16),
      migrate_ma: bit(policy, 18),
      debug: bit(policy, 19),
      single_socket: bit(policy, 20),
    },
    platform_info: platform,
    plaform_info: platform,
    flags: {
      author_key_en: bit(flags, 0),
      mask_chip_key: bit(flags, 1),
      signing_key: (flags >>> 2) & 0b111,
    },
  };
}

/** The one-byte fields: CPUID and firmware versions. */
function byteFields(raw: Uint8Array) {
  const at = (offset: number) => raw[offset]!;
  return {
    cpuid_fam_id: at(OFFSETS.cpuidFamily),
    cpuid_mod_id: at(OFFSETS.cpuidModel),
    cpuid_step: at(OFFSETS.cpuidStepping),
    current_build: at(OFFSETS.currentBuild),
    current_minor: at(OFFSETS.currentMinor),
    current_major: at(OFFSETS.currentMajor),
    committed_build: at(OFFSETS.committedBuild),
    committed_minor: at(OFFSETS.committedMinor),
    committed_major: at(OFFSETS.committedMajor),
  };
}

/** SnpAttestationResult.attestation, in ccf-app's field order, bytes as hex. */
export function describeSnpReport(raw: Uint8Array, report: SnpReport): Record<string, unknown> {
  const bits = bitFields(raw);
  const bytes = byteFields(raw);
  return {
    version: report.version,
    guest_svn: report.guestSvn,
    policy: bits.policy,
    family_id: report.familyId,
    image_id: report.imageId,
    vmpl: report.vmpl,
    signature_algo: getU32LE(raw, 0x034),
    platform_version: tcbJson(report.platformTcb),
    platform_info: bits.platform_info,
    plaform_info: bits.plaform_info,
    flags: bits.flags,
    report_data: report.reportData,
    measurement: report.measurement,
    host_data: report.hostData,
    id_key_digest: report.idKeyDigest,
    author_key_digest: report.authorKeyDigest,
    report_id: report.reportId,
    report_id_ma: hexAt(raw, OFFSETS.reportIdMa, REPORT_ID_BYTES),
    reported_tcb: tcbJson(report.reportedTcb),
    chip_id: report.chipId,
    committed_tcb: tcbJson(report.committedTcb),
    launch_tcb: tcbJson(report.launchTcb),
    ...bytes,
    signature: {
      r: hexAt(raw, OFFSETS.signatureR, SIGNATURE_COMPONENT_BYTES),
      s: hexAt(raw, OFFSETS.signatureS, SIGNATURE_COMPONENT_BYTES),
    },
  };
}

function checkEndorsedTcb(endorsedTcb: string, report: SnpReport): void {
  const raw = fromHex(endorsedTcb);
  if (raw === null || raw.length !== 8) {
    refuse(`SEV-SNP: endorsed TCB ${JSON.stringify(endorsedTcb)} is not 16 hex digits`);
  }
  if (toHex(raw) !== report.reportedTcb.hex) {
    refuse(
      `SEV-SNP: endorsed TCB ${toHex(raw)} does not match reported TCB ` +
        `${report.reportedTcb.hex}`,
    );
  }
}

export interface SnpAttestationArgs {
  evidence: Uint8Array;
  /** The PEM chain (chip certificate, ASK, ARK) as bytes. */
  endorsements: Uint8Array;
  uvmEndorsements?: Uint8Array | undefined;
  endorsedTcb?: string | undefined;
}

/** Verifies and describes; throws RangeError (the guest's exception) when it does not verify. */
export function verifySnpAttestation(args: SnpAttestationArgs, now: Date): SnpAttestationJson {
  if (args.uvmEndorsements !== undefined) {
    refuse("UVM endorsements are not supported by verifySnpAttestation on Consortia");
  }
  let pem: string;
  try {
    pem = fromUtf8(args.endorsements);
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    refuse("SEV-SNP: the endorsements are not PEM text");
  }
  let report: SnpReport;
  try {
    report = verifySnpReport(args.evidence, pem, { now });
  } catch (err: unknown) {
    if (!(err instanceof SnpVerificationError)) throw err;
    refuse(`SEV-SNP: ${err.message}`);
  }
  if (args.endorsedTcb !== undefined) checkEndorsedTcb(args.endorsedTcb, report);
  return { attestation: describeSnpReport(args.evidence, report) };
}
