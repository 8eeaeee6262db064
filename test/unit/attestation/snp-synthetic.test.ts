// SEV-SNP verification on synthetic evidence (test/helpers/snp-synth.ts), for what no real
// vector covers: a Turin report (its TCB layout, CPUID and 8-byte chip id), a version 2 report
// whose product comes from the chain, a VLEK, and chains that are wrong in one way each
// (a root that is not AMD's, a root not self-signed, a VCEK certifying another TCB or chip,
// a missing extension). The TCB decoding is checked against the golden values of CCF's
// snp_attestation_validation.cpp, and CPUIDs against CCF's get_cpuid_of_snp_sev_product.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SnpErrorCode,
  SnpVerificationError,
  verifySnpReport,
  type SnpProduct,
} from "../../../src/attestation/snp.js";
import { cpuidHex, decodeSnpTcb, productOfCpuid } from "../../../src/attestation/snp-report.js";
import type { SnpRootKeys } from "../../../src/attestation/snp-chain.js";
import {
  makeSnpChain,
  makeSnpReportBody,
  signSnpReport,
  type SynthChainOptions,
  type SynthReportOptions,
} from "../../helpers/snp-synth.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const CHIP_ID = new Uint8Array(64).map((_, i) => i + 1);
const TURIN_CHIP_ID = new Uint8Array(64);
TURIN_CHIP_ID.set([0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d]);
/** Turin layout: fmc, bootloader, tee, snp, 3 reserved, microcode. */
const TURIN_TCB_BYTES = new Uint8Array([0x55, 0x44, 0x33, 0x22, 0, 0, 0, 0x11]);
const TURIN_TCB = { fmc: 0x55, bootloader: 0x44, tee: 0x33, snp: 0x22, microcode: 0x11 };
/** Milan/Genoa layout: bootloader, tee, 4 reserved, snp, microcode. */
const MILAN_TCB_BYTES = new Uint8Array([4, 0, 0, 0, 0, 0, 24, 219]);
const MILAN_TCB = { bootloader: 4, tee: 0, snp: 24, microcode: 219 };

function rootsFor(product: SnpProduct, spki: Uint8Array): SnpRootKeys {
  const none = new Uint8Array(0);
  return { Milan: none, Genoa: none, Turin: none, [product]: spki };
}

async function evidence(
  chain: SynthChainOptions,
  report: SynthReportOptions,
): Promise<{ report: Uint8Array; pem: string; roots: SnpRootKeys }> {
  const made = await makeSnpChain(chain);
  return {
    report: signSnpReport(makeSnpReportBody(report), made.leafKey),
    pem: made.pem,
    roots: rootsFor(chain.product, made.rootSpki),
  };
}

function assertSnpFails(fn: () => unknown, code: SnpErrorCode, pattern: RegExp = /./): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SnpVerificationError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test("TCB bytes decode as CCF's golden values for Milan/Genoa and Turin layouts", () => {
  // CCF: TcbVersionRaw::from_hex("d315000000000004") on Milan is microcode 0xd3, snp 0x15,
  // tee 0, boot_loader 4; from_hex("1100000022334455") on Turin is microcode 0x11, snp 0x22,
  // tee 0x33, boot_loader 0x44, fmc 0x55. from_hex reverses the hex into the raw bytes.
  const raw = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, "hex")).reverse();
  assert.deepEqual(decodeSnpTcb(raw("d315000000000004"), "Milan"), {
    bootloader: 4,
    tee: 0,
    snp: 0x15,
    microcode: 0xd3,
    hex: "d315000000000004",
  });
  assert.deepEqual(decodeSnpTcb(raw("1100000022334455"), "Turin"), {
    ...TURIN_TCB,
    hex: "1100000022334455",
  });
});

test("CPUIDs are CCF's tcb_versions keys and model ranges select the product", () => {
  assert.equal(cpuidHex(0x19, 0x01, 0x01), "00a00f11");
  assert.equal(cpuidHex(0x19, 0x11, 0x01), "00a10f11");
  assert.equal(cpuidHex(0x1a, 0x01, 0x01), "00b00f11");
  assert.equal(productOfCpuid(0x19, 0x01), "Milan");
  assert.equal(productOfCpuid(0x19, 0x11), "Genoa");
  assert.equal(productOfCpuid(0x19, 0xa0), "Genoa");
  assert.equal(productOfCpuid(0x1a, 0x02), "Turin");
  assert.equal(productOfCpuid(0x17, 0x31), null);
  assert.equal(productOfCpuid(0x1a, 0x50), null);
});

test("a Turin report verifies: Turin TCB layout with fmc, CPUID 00b00f11, 8-byte hwID", async () => {
  const e = await evidence(
    { product: "Turin", tcb: TURIN_TCB, hwId: TURIN_CHIP_ID.slice(0, 8) },
    { cpuid: [0x1a, 0x01, 0x01], reportedTcb: TURIN_TCB_BYTES, chipId: TURIN_CHIP_ID },
  );
  const report = verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots });
  assert.equal(report.product, "Turin");
  assert.equal(report.cpuid, "00b00f11");
  assert.deepEqual(report.reportedTcb, { ...TURIN_TCB, hex: "1100000022334455" });
});

test("a Turin VCEK certifying another fmc level is a TcbMismatch", async () => {
  const e = await evidence(
    { product: "Turin", tcb: { ...TURIN_TCB, fmc: 0x54 }, hwId: TURIN_CHIP_ID.slice(0, 8) },
    { cpuid: [0x1a, 0x01, 0x01], reportedTcb: TURIN_TCB_BYTES, chipId: TURIN_CHIP_ID },
  );
  assertSnpFails(
    () => verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots }),
    SnpErrorCode.TcbMismatch,
    /reported TCB \(fmc 85, .*\) is not the TCB the VCEK certifies \(.*fmc 84/,
  );
});

test("a VCEK for another chip is a ChipIdMismatch", async () => {
  const other = CHIP_ID.map((b) => b ^ 0xff);
  const e = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: other },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  assertSnpFails(
    () => verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots }),
    SnpErrorCode.ChipIdMismatch,
    /chip id is not the one the VCEK certifies/,
  );
});

test("a VCEK without its TCB or hwID extensions is refused (MissingExtension)", async () => {
  const noSnp = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: CHIP_ID, omitTcb: ["snp"] },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  assertSnpFails(
    () => verifySnpReport(noSnp.report, noSnp.pem, { now: NOW, roots: noSnp.roots }),
    SnpErrorCode.MissingExtension,
    /lacks the TCB extension\(s\) snp/,
  );
  const noHwId = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: null },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  assertSnpFails(
    () => verifySnpReport(noHwId.report, noHwId.pem, { now: NOW, roots: noHwId.roots }),
    SnpErrorCode.MissingExtension,
    /hwID/,
  );
});

test("a report signed by a VLEK needs no hwID and says VLEK", async () => {
  const e = await evidence(
    { product: "Genoa", tcb: MILAN_TCB, hwId: null },
    { cpuid: [0x19, 0x11, 0x01], reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID, signingKey: 1 },
  );
  const report = verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots });
  assert.equal(report.signingKey, "VLEK");
  assert.equal(report.product, "Genoa");
});

test("a version 2 report takes its product from the root its chain ends in", async () => {
  const e = await evidence(
    { product: "Genoa", tcb: MILAN_TCB, hwId: CHIP_ID },
    { version: 2, reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  const report = verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots });
  assert.equal(report.version, 2);
  assert.equal(report.product, "Genoa");
  assert.equal(report.cpuid, undefined);
  assertSnpFails(
    () => verifySnpReport(e.report, e.pem, { now: NOW }),
    SnpErrorCode.RootKeyMismatch,
    /not AMD's root key for any of Milan, Genoa, Turin/,
  );
});

test("a well-formed chain under a root that is not AMD's fails with the root-of-trust message", async () => {
  const e = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: CHIP_ID },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots });
  assertSnpFails(
    () => verifySnpReport(e.report, e.pem, { now: NOW }),
    SnpErrorCode.RootKeyMismatch,
    /the root of trust public key for this attestation is not the expected one for AMD Milan/,
  );
});

test("a root that did not sign itself is RootNotSelfSigned", async () => {
  const e = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: CHIP_ID, forgeRoot: true },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  assertSnpFails(
    () => verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots }),
    SnpErrorCode.RootNotSelfSigned,
  );
});

test("non-zero padding after r or s is ReportSignatureInvalid", async () => {
  const e = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: CHIP_ID },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  for (const offset of [0x2a0 + 48, 0x2e8 + 71]) {
    const padded = new Uint8Array(e.report);
    padded[offset] = 1;
    assertSnpFails(
      () => verifySnpReport(padded, e.pem, { now: NOW, roots: e.roots }),
      SnpErrorCode.ReportSignatureInvalid,
      /non-zero padding/,
    );
  }
});

test("a chip certificate whose key is not P-384 is refused", async () => {
  const e = await evidence(
    { product: "Milan", tcb: MILAN_TCB, hwId: CHIP_ID, leafCurve: "P-256" },
    { reportedTcb: MILAN_TCB_BYTES, chipId: CHIP_ID },
  );
  assertSnpFails(
    () => verifySnpReport(e.report, e.pem, { now: NOW, roots: e.roots }),
    SnpErrorCode.MalformedEndorsements,
    /does not hold an ECDSA P-384 key/,
  );
});
