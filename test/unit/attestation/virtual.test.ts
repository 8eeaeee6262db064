// Attestation quotes (src/attestation/virtual.ts): a virtual quote made for a key verifies for
// that key only; the encoding is CCF's (base64 of the JSON report, keys in CCF's order, report_data =
// base64 SHA-256 of the public key DER), checked against an independent node:crypto digest; and
// each malformed input is refused with its own AttestationError code. SEV-SNP quotes
// (AMD_SEV_SNP_v1, base64 of CCF's Milan vector and its PEM chain) go through snp.ts: evidence
// that fails is EvidenceRejected with snp.ts's reason, and a verified report whose report_data
// does not start with SHA-256(key) is ReportDataMismatch (the vector's report_data is zero).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { SnpErrorCode } from "../../../src/attestation/snp.js";
import {
  AttestationError,
  AttestationErrorCode,
  makeSnpQuote,
  makeVirtualQuote,
  verifyQuote,
  VIRTUAL_MEASUREMENT,
  type QuoteInfo,
} from "../../../src/attestation/virtual.js";

function spkiDer(): Uint8Array {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  return new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
}

const KEY = spkiDer();
const OTHER_KEY = spkiDer();
const HOST_DATA = "ab".repeat(32);
const NOW = new Date("2026-01-01T00:00:00Z");

function rawQuote(report: unknown): QuoteInfo {
  const text = typeof report === "string" ? report : JSON.stringify(report);
  return {
    format: "Insecure_Virtual",
    quote: Buffer.from(text, "utf8").toString("base64"),
    endorsements: "",
  };
}

function assertCode(fn: () => unknown, code: AttestationErrorCode, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AttestationError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

test("a virtual quote is CCF's JSON report, in CCF's key order, bound to the key", () => {
  const quote = makeVirtualQuote(KEY, HOST_DATA);
  assert.equal(quote.format, "Insecure_Virtual");
  assert.equal(quote.endorsements, "");
  const text = Buffer.from(quote.quote, "base64").toString("utf8");
  const reportData = createHash("sha256").update(KEY).digest("base64");
  assert.equal(
    text,
    `{"measurement":"${VIRTUAL_MEASUREMENT}","host_data":"${HOST_DATA}",` +
      `"report_data":"${reportData}"}`,
  );
});

test("a virtual quote verifies for its own key and reports measurement and host data", () => {
  const verified = verifyQuote(makeVirtualQuote(KEY, HOST_DATA), KEY, NOW);
  assert.deepEqual(verified, {
    format: "Insecure_Virtual",
    measurement: VIRTUAL_MEASUREMENT,
    hostData: HOST_DATA,
  });
});

test("a quote made for another key is a ReportDataMismatch", () => {
  assertCode(
    () => verifyQuote(makeVirtualQuote(OTHER_KEY, HOST_DATA), KEY, NOW),
    AttestationErrorCode.ReportDataMismatch,
    /report data does not match/,
  );
});

test("verification does not judge the measurement (that is governance policy)", () => {
  const reportData = createHash("sha256").update(KEY).digest("base64");
  const quote = rawQuote({ measurement: "other", host_data: "x", report_data: reportData });
  assert.equal(verifyQuote(quote, KEY, NOW).measurement, "other");
});

test("an unknown format is UnsupportedFormat, naming the format", () => {
  const quote = { ...makeVirtualQuote(KEY, HOST_DATA), format: "OE_SGX_v1" };
  assertCode(
    () => verifyQuote(quote, KEY, NOW),
    AttestationErrorCode.UnsupportedFormat,
    /OE_SGX_v1/,
  );
});

test("malformed quotes are MalformedQuote with the reason", () => {
  const cases: [QuoteInfo, RegExp][] = [
    [{ format: "Insecure_Virtual", quote: "not base64!", endorsements: "" }, /base64/],
    [rawQuote("{not json"), /not a JSON document/],
    [rawQuote("[1,2]"), /not a JSON object/],
    [rawQuote("null"), /not a JSON object/],
    [rawQuote({ measurement: "m", host_data: "h" }), /"report_data"/],
    [rawQuote({ measurement: 1, host_data: "h", report_data: "r" }), /"measurement"/],
  ];
  for (const [quote, pattern] of cases) {
    assertCode(() => verifyQuote(quote, KEY, NOW), AttestationErrorCode.MalformedQuote, pattern);
  }
});

const MILAN = new Uint8Array(readFileSync("test/fixtures/snp/milan-report.bin"));
const MILAN_CHAIN = readFileSync("test/fixtures/snp/milan-endorsements.pem", "utf8");

test("an SNP quote is base64 of the raw report and of the PEM chain, as CCF carries it", () => {
  const quote = makeSnpQuote(MILAN, MILAN_CHAIN);
  assert.equal(quote.format, "AMD_SEV_SNP_v1");
  assert.deepEqual(new Uint8Array(Buffer.from(quote.quote, "base64")), MILAN);
  assert.equal(Buffer.from(quote.endorsements, "base64").toString("utf8"), MILAN_CHAIN);
});

test("a genuine SNP report not bound to the key is a ReportDataMismatch", () => {
  assertCode(
    () => verifyQuote(makeSnpQuote(MILAN, MILAN_CHAIN), KEY, NOW),
    AttestationErrorCode.ReportDataMismatch,
    /first 32 bytes of the report data are not the SHA-256 of the node public key/,
  );
});

test("an endorsed TCB other than the reported one is refused; the reported one passes", () => {
  const quote = makeSnpQuote(MILAN, MILAN_CHAIN);
  assertCode(
    () => verifyQuote({ ...quote, endorsed_tcb: "db18000000000005" }, KEY, NOW),
    AttestationErrorCode.EndorsedTcbMismatch,
    /endorsed TCB db18000000000005 is not the reported TCB db18000000000004/,
  );
  // The reported TCB (any case) passes this check and reaches the key binding.
  assertCode(
    () => verifyQuote({ ...quote, endorsed_tcb: "DB18000000000004" }, KEY, NOW),
    AttestationErrorCode.ReportDataMismatch,
    /report data/,
  );
});

test("SNP evidence that does not verify is EvidenceRejected, with snp.ts's reason", () => {
  const tampered = new Uint8Array(MILAN);
  tampered[0x90] = MILAN[0x90]! ^ 1;
  assert.throws(
    () => verifyQuote(makeSnpQuote(tampered, MILAN_CHAIN), KEY, NOW),
    (err: unknown) => {
      assert.ok(err instanceof AttestationError);
      assert.equal(err.code, AttestationErrorCode.EvidenceRejected);
      assert.equal(err.type.reason, SnpErrorCode.ReportSignatureInvalid);
      assert.match(err.message, /SEV-SNP evidence rejected: the report signature does not verify/);
      return true;
    },
  );
  assertCode(
    () => verifyQuote(makeSnpQuote(MILAN, MILAN_CHAIN), KEY, new Date("2050-01-01T00:00:00Z")),
    AttestationErrorCode.EvidenceRejected,
    /not valid at 2050/,
  );
});

test("an SNP quote that is not base64 is MalformedQuote", () => {
  const quote = { ...makeSnpQuote(MILAN, MILAN_CHAIN), quote: "not base64!" };
  assertCode(() => verifyQuote(quote, KEY, NOW), AttestationErrorCode.MalformedQuote, /base64/);
  const bad = { ...makeSnpQuote(MILAN, MILAN_CHAIN), endorsements: "%%" };
  assertCode(() => verifyQuote(bad, KEY, NOW), AttestationErrorCode.MalformedQuote, /Endorsements/);
});
