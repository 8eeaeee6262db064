/**
 * Verification of AMD SEV-SNP attestation reports against their endorsements
 * (ccf-compatibility.md §2.4), in the order and with the checks of CCF's
 * `verify_snp_attestation_report`:
 *
 * 1. the report's own fields (snp-report.ts): 1184 bytes, version >= 2, signature algorithm
 *    ECDSA P-384/SHA-384, chip key not masked, signed by the VCEK or a VLEK, VMPL <= 3, guest
 *    policy without debug (bit 19) or migration agent (bit 18);
 * 2. the product: from the CPUID family and model (version 3 and later), else (version 2) the
 *    product whose AMD root key the chain's ARK holds;
 * 3. the chain (snp-chain.ts): exactly 3 certificates; the ARK's public key is AMD's pinned root
 *    key for the product; ARK self-signed, ASK issued by the ARK, chip certificate by the ASK;
 *    all three valid at `now`;
 * 4. the report signature over bytes [0, 0x2A0) with the chip certificate's P-384 key (r and s
 *    little-endian, 72 bytes each, of which P-384 uses the first 48; the rest must be zero);
 * 5. what the chip certificate certifies: its TCB extensions equal the reported TCB, and (VCEK
 *    only: a VLEK is not chip-specific) its hwID equals the chip id (on Turin, the first 8 bytes
 *    of it).
 *
 * Stricter than CCF in two places: CCF accepts a reported TCB at or above the VCEK's, we require
 * it equal (the VCEK is derived from that very TCB, so a genuine report always matches), and
 * CCF skips the TCB and hwID comparison when the VCEK lacks the extensions, we refuse.
 *
 * Invariant: verifySnpReport returns only for a report whose every check above passed; it
 * throws SnpVerificationError with one code per reason otherwise. No IO; the time to check the
 * certificates' validity comes from the caller.
 */
import { verify as verifySignature } from "node:crypto";
import { concatBytes, equalBytes, toHex } from "../base/bytes.js";
import {
  AMD_ROOT_KEYS,
  matchRootProduct,
  parseSnpChain,
  readSnpLeafClaims,
  verifySnpChainSignatures,
  verifySnpChainValidity,
  type SnpChain,
  type SnpRootKeys,
} from "./snp-chain.js";
import {
  checkSnpReportFields,
  cpuidHex,
  decodeSnpReport,
  decodeSnpTcb,
  P384_SCALAR_BYTES,
  productOfCpuid,
  SNP_OFFSETS,
  SNP_SIGNATURE_COMPONENT_BYTES,
  SNP_SIGNED_BYTES,
  SnpErrorCode,
  snpFail,
  type SnpProduct,
  type SnpReportFields,
  type SnpSigningKey,
  type SnpTcb,
} from "./snp-report.js";

export { SnpErrorCode, SnpVerificationError, type SnpProduct, type SnpTcb } from "./snp-report.js";

/** A verified SEV-SNP report's fields. Hex is lower case. */
export interface SnpReport {
  version: number;
  guestSvn: number;
  /** The guest policy (a u64; bits above 52 are reserved and refused). */
  policy: number;
  vmpl: number;
  signingKey: SnpSigningKey;
  /** The launch digest: hex, 96 chars. */
  measurement: string;
  /** hex, 128 chars; CCF puts SHA-256(node public key DER) in the first 32 bytes. */
  reportData: string;
  /** hex, 64 chars. */
  hostData: string;
  reportedTcb: SnpTcb;
  /** The current TCB of the platform (platform_version). */
  platformTcb: SnpTcb;
  committedTcb: SnpTcb;
  launchTcb: SnpTcb;
  /** hex, 128 chars. */
  chipId: string;
  product: SnpProduct;
  /** CPUID Fn0000_0001_EAX as CCF's `nodes.snp.tcb_versions` keys it ("00a00f11"); v3+ only. */
  cpuid?: string;
  familyId: string;
  imageId: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
}

export interface SnpVerifyOptions {
  /** The instant at which the three certificates must be valid. */
  now: Date;
  /**
   * TESTS ONLY: root keys to trust instead of AMD's pinned ones (SubjectPublicKeyInfo DER by
   * product), for chains a test generates. Production callers never pass it.
   */
  roots?: SnpRootKeys;
}

/** The product the CPUID names (v3+), or null for a report without CPUID (v2). */
function cpuidProduct(fields: SnpReportFields): SnpProduct | null {
  if (fields.cpuid === undefined) return null;
  const { family, model } = fields.cpuid;
  const product = productOfCpuid(family, model);
  if (product === null) {
    snpFail(
      SnpErrorCode.UnsupportedProduct,
      `CPUID family 0x${family.toString(16)} model 0x${model.toString(16)} is not an ` +
        `SEV-SNP product we support (Milan, Genoa, Turin)`,
    );
  }
  return product;
}

/** r or s: the first 48 of 72 little-endian bytes, big-endian; the other 24 must be zero. */
function scalarAt(report: Uint8Array, offset: number): Uint8Array {
  const field = report.subarray(offset, offset + SNP_SIGNATURE_COMPONENT_BYTES);
  if (field.subarray(P384_SCALAR_BYTES).some((b) => b !== 0)) {
    snpFail(
      SnpErrorCode.ReportSignatureInvalid,
      "the report signature has non-zero padding after its P-384 components",
    );
  }
  return field.slice(0, P384_SCALAR_BYTES).reverse();
}

function verifyReportSignature(report: Uint8Array, chain: SnpChain, leafName: string): void {
  const key = chain.leaf.publicKey;
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "secp384r1") {
    snpFail(
      SnpErrorCode.MalformedEndorsements,
      `the ${leafName} certificate does not hold an ECDSA P-384 key`,
    );
  }
  const signature = concatBytes([
    scalarAt(report, SNP_OFFSETS.signatureR),
    scalarAt(report, SNP_OFFSETS.signatureS),
  ]);
  const signed = report.subarray(0, SNP_SIGNED_BYTES);
  if (!verifySignature("sha384", signed, { key, dsaEncoding: "ieee-p1363" }, signature)) {
    snpFail(
      SnpErrorCode.ReportSignatureInvalid,
      `the report signature does not verify with the ${leafName}'s public key`,
    );
  }
}

function describeTcb(tcb: Omit<SnpTcb, "hex">): string {
  const fmc = tcb.fmc === undefined ? "" : `fmc ${tcb.fmc}, `;
  return `${fmc}bootloader ${tcb.bootloader}, tee ${tcb.tee}, snp ${tcb.snp}, microcode ${tcb.microcode}`;
}

/** The chip certificate's TCB extensions equal the reported TCB; its hwID the chip id (VCEK). */
function verifyLeafClaims(
  chain: SnpChain,
  fields: SnpReportFields,
  context: { product: SnpProduct; signingKey: SnpSigningKey; reported: SnpTcb },
): void {
  const claims = readSnpLeafClaims(chain.leaf);
  const { product, signingKey, reported } = context;
  const certified = {
    bootloader: claims.bootloader,
    tee: claims.tee,
    snp: claims.snp,
    microcode: claims.microcode,
    ...(product === "Turin" ? { fmc: claims.fmc } : {}),
  };
  const missing = Object.entries(certified).filter(([, v]) => v === null);
  if (missing.length > 0) {
    snpFail(
      SnpErrorCode.MissingExtension,
      `the ${signingKey} certificate lacks the TCB extension(s) ` +
        missing.map(([name]) => name).join(", "),
    );
  }
  const equal = Object.entries(certified).every(
    ([name, value]) => reported[name as keyof typeof certified] === value,
  );
  if (!equal) {
    snpFail(
      SnpErrorCode.TcbMismatch,
      `the reported TCB (${describeTcb(reported)}) is not the TCB the ${signingKey} certifies ` +
        `(${describeTcb(certified as Omit<SnpTcb, "hex">)})`,
    );
  }
  if (signingKey === "VLEK") return;
  if (claims.hwId === null) {
    snpFail(SnpErrorCode.MissingExtension, "the VCEK certificate lacks the hwID extension");
  }
  const expected = product === "Turin" ? fields.chipIdBytes.subarray(0, 8) : fields.chipIdBytes;
  if (!equalBytes(claims.hwId, expected)) {
    snpFail(
      SnpErrorCode.ChipIdMismatch,
      `the report's chip id is not the one the VCEK certifies (${toHex(claims.hwId)})`,
    );
  }
}

function toSnpReport(
  fields: SnpReportFields,
  context: { product: SnpProduct; signingKey: SnpSigningKey },
): SnpReport {
  const { product, signingKey } = context;
  const report: SnpReport = {
    version: fields.version,
    guestSvn: fields.guestSvn,
    policy: fields.policy,
    vmpl: fields.vmpl,
    signingKey,
    measurement: fields.measurement,
    reportData: fields.reportData,
    hostData: fields.hostData,
    reportedTcb: decodeSnpTcb(fields.reportedTcbBytes, product),
    platformTcb: decodeSnpTcb(fields.platformVersionBytes, product),
    committedTcb: decodeSnpTcb(fields.committedTcbBytes, product),
    launchTcb: decodeSnpTcb(fields.launchTcbBytes, product),
    chipId: fields.chipId,
    product,
    familyId: fields.familyId,
    imageId: fields.imageId,
    idKeyDigest: fields.idKeyDigest,
    authorKeyDigest: fields.authorKeyDigest,
    reportId: fields.reportId,
  };
  if (fields.cpuid !== undefined) {
    const { family, model, stepping } = fields.cpuid;
    report.cpuid = cpuidHex(family, model, stepping);
  }
  return report;
}

/**
 * Verifies a raw SEV-SNP report against its PEM endorsements (chip certificate, ASK, ARK) and
 * returns its fields. Throws SnpVerificationError naming the first check that failed.
 */
export function verifySnpReport(
  report: Uint8Array,
  endorsementsPem: string,
  options: SnpVerifyOptions,
): SnpReport {
  const fields = decodeSnpReport(report);
  const signingKey = checkSnpReportFields(fields);
  const expected = cpuidProduct(fields);
  const chain = parseSnpChain(endorsementsPem);
  const product = matchRootProduct(chain.root, options.roots ?? AMD_ROOT_KEYS, expected);
  verifySnpChainSignatures(chain, signingKey);
  verifySnpChainValidity(chain, options.now);
  verifyReportSignature(report, chain, signingKey);
  const reported = decodeSnpTcb(fields.reportedTcbBytes, product);
  verifyLeafClaims(chain, fields, { product, signingKey, reported });
  return toSnpReport(fields, { product, signingKey });
}
