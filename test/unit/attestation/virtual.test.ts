// Virtual attestation (src/attestation/virtual.ts): a quote made for a key verifies for that key
// only; the encoding is CCF's (base64 of the JSON report, keys in CCF's order, report_data =
// base64 SHA-256 of the public key DER), checked against an independent node:crypto digest; and
// each malformed input is refused with its own AttestationError code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import {
  AttestationError,
  AttestationErrorCode,
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
