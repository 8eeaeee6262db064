// The DER reader of src/attestation/der.ts: object identifiers decode to the dotted form openssl
// prints, a certificate's extensions are found by OID (openssl's `x509 -text` lists the same
// ones), and truncated or overrunning input is a DerError, never a read past the end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import {
  certificateExtensions,
  decodeOid,
  decodeSmallUint,
  DerError,
  readDer,
} from "../../../src/attestation/der.js";

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

test("object identifiers decode as openssl prints them", () => {
  // openssl names the OIDs it knows; these it prints in dotted form.
  const cases: [string, string][] = [
    ["2b060104019c78010308", "1.3.6.1.4.1.3704.1.3.8"],
    ["2b060104019c780104", "1.3.6.1.4.1.3704.1.4"],
    ["883703", "2.999.3"],
  ];
  assert.equal(decodeOid(hex("2a864886f70d01010a")), "1.2.840.113549.1.1.10");
  for (const [der, dotted] of cases) {
    assert.equal(decodeOid(hex(der)), dotted);
    const printed = execFileSync("openssl", ["asn1parse", "-inform", "DER"], {
      input: Buffer.from(`06${(der.length / 2).toString(16).padStart(2, "0")}${der}`, "hex"),
      encoding: "utf8",
    });
    assert.match(printed, new RegExp(`OBJECT +:${dotted.replace(/\./g, "\\.")}\\b`));
  }
});

test("the Milan VCEK's extensions are those openssl lists", () => {
  const pem = readFileSync("test/fixtures/snp/milan-endorsements.pem", "utf8").split(
    "-----END CERTIFICATE-----",
  )[0]!;
  const cert = new X509Certificate(pem + "-----END CERTIFICATE-----\n");
  const ours = [...certificateExtensions(new Uint8Array(cert.raw)).keys()].sort();
  const text = execFileSync("openssl", ["x509", "-noout", "-text"], {
    input: cert.toString(),
    encoding: "utf8",
  });
  const theirs = [...text.matchAll(/^ {12}(1\.3\.6\.1\.4\.1\.3704\.[0-9.]+):/gm)].map((m) => m[1]);
  assert.deepEqual(ours, theirs.sort());
  assert.equal(ours.length, 11);
});

test("truncated, overrunning and oversized input is a DerError", () => {
  const bad = ["30", "3005020101", "0481", "04850000000001", "300302010100"];
  for (const der of bad) {
    assert.throws(() => readDer(hex(der)), DerError, der);
  }
  assert.throws(() => decodeOid(hex("2b86")), DerError);
  assert.throws(() => decodeSmallUint(hex("80")), DerError);
  assert.throws(() => decodeSmallUint(hex("01020304050607")), DerError);
  assert.equal(decodeSmallUint(hex("00db")), 219);
});
