// SEV-SNP verification against real AMD evidence (ccf-compatibility.md §2.4): CCF's Milan and
// Genoa test vectors (test/fixtures/snp/README.md) verify and expose the values CCF's own tests
// and reliability-and-attestation.md §3.4 list; any changed byte of the signed part, a foreign
// chain, a truncated chain or report, a forbidden policy or an expired certificate each fail
// with their own code. The oracles are values read independently of our parser (CCF's test
// assertions, openssl's view of the certificates) and the AMD hardware's own signature.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import {
  SnpErrorCode,
  SnpVerificationError,
  verifySnpReport,
} from "../../../src/attestation/snp.js";
import { decodeSnpReport, checkSnpReportFields } from "../../../src/attestation/snp-report.js";

const FIXTURES = "test/fixtures/snp/";
const bin = (name: string): Uint8Array => new Uint8Array(readFileSync(FIXTURES + name));
const text = (name: string): string => readFileSync(FIXTURES + name, "utf8");

const MILAN = bin("milan-report.bin");
const MILAN_CHAIN = text("milan-endorsements.pem");
const GENOA = bin("genoa-report.bin");
const GENOA_CHAIN = text("genoa-endorsements.pem");
const V2_MILAN = bin("v2-milan-report.bin");
const NOW = new Date("2026-06-01T00:00:00Z");

function pems(chain: string): string[] {
  return chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g) ?? [];
}

function assertSnpFails(fn: () => unknown, code: SnpErrorCode, pattern: RegExp = /./): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SnpVerificationError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

function withByte(report: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = new Uint8Array(report);
  copy[offset] = value;
  return copy;
}

function withU32(report: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = new Uint8Array(report);
  new DataView(copy.buffer).setUint32(offset, value, true);
  return copy;
}

test("CCF's Milan vector verifies and exposes its known values (§3.4)", () => {
  const report = verifySnpReport(MILAN, MILAN_CHAIN, { now: NOW });
  assert.equal(report.version, 3);
  assert.equal(report.guestSvn, 2);
  assert.equal(report.policy, 0x3001f);
  assert.equal(report.vmpl, 0);
  assert.equal(report.signingKey, "VCEK");
  assert.equal(report.product, "Milan");
  assert.equal(report.cpuid, "00a00f11");
  assert.equal(
    report.measurement,
    "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f" +
      "98189887920ab2fa0096903a0c23fca1",
  );
  assert.equal(report.hostData, "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10");
  assert.equal(report.reportData, "00".repeat(64));
  assert.deepEqual(report.reportedTcb, {
    bootloader: 4,
    tee: 0,
    snp: 24,
    microcode: 219,
    hex: "db18000000000004",
  });
  assert.match(report.chipId, /^4ffb5cb4[0-9a-f]{116}9ba5$/);
});

test("CCF's Genoa vector verifies: Genoa, CPUID 00a10f11, CCF's TCB 541700000000000a", () => {
  const report = verifySnpReport(GENOA, GENOA_CHAIN, { now: NOW });
  assert.equal(report.product, "Genoa");
  assert.equal(report.cpuid, "00a10f11");
  // CCF's snp_attestation_validation.cpp derives the AMD KDS URL of this report with
  // tcbVersion 541700000000000a.
  assert.equal(report.reportedTcb.hex, "541700000000000a");
  assert.deepEqual(
    [report.reportedTcb.bootloader, report.reportedTcb.tee, report.reportedTcb.snp],
    [10, 0, 23],
  );
  assert.equal(report.reportedTcb.microcode, 84);
});

test("the chip id of each vector is the hwID that openssl shows in its VCEK", () => {
  for (const [report, chain] of [
    [MILAN, MILAN_CHAIN],
    [GENOA, GENOA_CHAIN],
  ] as const) {
    const verified = verifySnpReport(report, chain, { now: NOW });
    const dump = execFileSync("openssl", ["asn1parse"], {
      input: pems(chain)[0]!,
      encoding: "utf8",
    });
    const hwId = /:1\.3\.6\.1\.4\.1\.3704\.1\.4\n.*\[HEX DUMP\]:([0-9A-F]+)/.exec(dump);
    assert.ok(hwId !== null, dump);
    assert.equal(hwId[1]!.toLowerCase(), verified.chipId);
  }
});

test("a version 2 report (no CPUID) parses; its chain is not published so it does not verify", () => {
  const fields = decodeSnpReport(V2_MILAN);
  assert.equal(fields.version, 2);
  assert.equal(fields.cpuid, undefined);
  assert.equal(checkSnpReportFields(fields), "VCEK");
  assert.equal(fields.hostData, "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10");
  // The Milan chain is taken as Milan's (by its ARK), but its VCEK is another chip's.
  assertSnpFails(
    () => verifySnpReport(V2_MILAN, MILAN_CHAIN, { now: NOW }),
    SnpErrorCode.ReportSignatureInvalid,
    /does not verify with the VCEK's public key/,
  );
});

test("any changed byte in the signed part [0, 0x2A0) or in the signature fails", () => {
  const offsets = [];
  for (let offset = 0; offset < 0x2a0; offset += 7) offsets.push(offset);
  offsets.push(0x29f, 0x2a0, 0x2a0 + 47, 0x2e8, 0x2e8 + 47, 0x2a0 + 60);
  for (const offset of offsets) {
    const changed = withByte(MILAN, offset, MILAN[offset]! ^ 0x01);
    assert.throws(
      () => verifySnpReport(changed, MILAN_CHAIN, { now: NOW }),
      SnpVerificationError,
      `offset 0x${offset.toString(16)}`,
    );
  }
  // A byte only the signature covers (the measurement) gives the signature's own message.
  assertSnpFails(
    () => verifySnpReport(withByte(MILAN, 0x90, MILAN[0x90]! ^ 0x80), MILAN_CHAIN, { now: NOW }),
    SnpErrorCode.ReportSignatureInvalid,
    /the report signature does not verify with the VCEK's public key/,
  );
});

test("the Milan report with the Genoa chain fails: the root is not Milan's", () => {
  assertSnpFails(
    () => verifySnpReport(MILAN, GENOA_CHAIN, { now: NOW }),
    SnpErrorCode.RootKeyMismatch,
    /the root of trust public key for this attestation is not the expected one for AMD Milan/,
  );
});

test("a Milan chain whose ASK is Genoa's is broken", () => {
  const [vcek, , ark] = pems(MILAN_CHAIN);
  const genoaAsk = pems(GENOA_CHAIN)[1]!;
  assertSnpFails(
    () => verifySnpReport(MILAN, vcek! + genoaAsk + ark!, { now: NOW }),
    SnpErrorCode.ChainBroken,
    /ASK\) is not issued by the root of trust/,
  );
  const genoaVcek = pems(GENOA_CHAIN)[0]!;
  const [, ask] = pems(MILAN_CHAIN);
  assertSnpFails(
    () => verifySnpReport(MILAN, genoaVcek + ask! + ark!, { now: NOW }),
    SnpErrorCode.ChainBroken,
    /chip certificate \(VCEK\) is not issued/,
  );
});

test("a truncated or padded report is MalformedReport", () => {
  assertSnpFails(
    () => verifySnpReport(MILAN.subarray(0, 1000), MILAN_CHAIN, { now: NOW }),
    SnpErrorCode.MalformedReport,
    /1000 bytes; an SEV-SNP report is 1184/,
  );
  const padded = new Uint8Array(1185);
  padded.set(MILAN);
  assertSnpFails(
    () => verifySnpReport(padded, MILAN_CHAIN, { now: NOW }),
    SnpErrorCode.MalformedReport,
  );
});

test("each forbidden report field fails with its own code", () => {
  const cases: [Uint8Array, SnpErrorCode, RegExp][] = [
    [withU32(MILAN, 0x34, 2), SnpErrorCode.UnsupportedSignatureAlgorithm, /algorithm 2/],
    [withU32(MILAN, 0x0, 1), SnpErrorCode.UnsupportedVersion, /version 1/],
    [withU32(MILAN, 0x30, 4), SnpErrorCode.HostGeneratedReport, /VMPL 4 > 3/],
    [withByte(MILAN, 0x0a, MILAN[0x0a]! | 0x08), SnpErrorCode.DebugPolicy, /debug policy bit set/],
    [withByte(MILAN, 0x0a, MILAN[0x0a]! | 0x04), SnpErrorCode.MigrationPolicy, /migration/],
    [withU32(MILAN, 0x48, 0b10), SnpErrorCode.MaskedChipKey, /masked/],
    [withU32(MILAN, 0x48, 2 << 2), SnpErrorCode.UnsupportedSigningKey, /key 2/],
    [withByte(MILAN, 0x189, 0x31), SnpErrorCode.UnsupportedProduct, /model 0x31/],
  ];
  for (const [report, code, pattern] of cases) {
    assertSnpFails(() => verifySnpReport(report, MILAN_CHAIN, { now: NOW }), code, pattern);
  }
});

test("endorsements must hold exactly 3 certificates", () => {
  const [vcek, ask, ark] = pems(MILAN_CHAIN);
  assertSnpFails(
    () => verifySnpReport(MILAN, vcek! + ask!, { now: NOW }),
    SnpErrorCode.EndorsementCount,
    /the endorsements hold 2 certificates; expected 3 \(VCEK, ASK, ARK\)/,
  );
  assertSnpFails(
    () => verifySnpReport(MILAN, MILAN_CHAIN + ark!, { now: NOW }),
    SnpErrorCode.EndorsementCount,
    /hold 4 certificates/,
  );
  assertSnpFails(() => verifySnpReport(MILAN, "", { now: NOW }), SnpErrorCode.EndorsementCount);
  const garbled = vcek!.replace(/\n[A-Za-z0-9+/]{64}\n/, "\nAAAA\n");
  assertSnpFails(
    () => verifySnpReport(MILAN, garbled + ask! + ark!, { now: NOW }),
    SnpErrorCode.MalformedEndorsements,
    /certificate 1 cannot be parsed/,
  );
});

test("certificates must be valid at `now`: 2050 (expired) and 2024 (VCEK not yet valid) fail", () => {
  assertSnpFails(
    () => verifySnpReport(MILAN, MILAN_CHAIN, { now: new Date("2050-01-01T00:00:00Z") }),
    SnpErrorCode.CertificateNotValid,
    /chip certificate is not valid at 2050-01-01T00:00:00.000Z/,
  );
  assertSnpFails(
    () => verifySnpReport(MILAN, MILAN_CHAIN, { now: new Date("2024-06-01T00:00:00Z") }),
    SnpErrorCode.CertificateNotValid,
  );
  // The VCEK's first second of validity (openssl: notBefore=Jan 28 16:22:58 2025 GMT).
  verifySnpReport(MILAN, MILAN_CHAIN, { now: new Date("2025-01-28T16:22:58Z") });
});

test("the pinned Milan root key is the one the reference pins by its SHA-256", () => {
  const ark = new X509Certificate(pems(MILAN_CHAIN)[2]!);
  const spki = ark.publicKey.export({ type: "spki", format: "der" });
  assert.equal(
    createHash("sha256").update(spki).digest("hex"),
    "9f056bee44377e29308cb5ffa895bdfb62d18881fa6bed8d6f075b0204089cb9",
  );
});
