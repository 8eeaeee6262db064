// Certificate signing requests and the synchronous node certificate issued from one
// (src/crypto/cert-issuance.ts: createCertificateSigningRequest, endorseCertificateRequest, with
// the DER of der-writer.ts): a joiner's request carries its subject and SANs, and the issued
// certificate keeps them, certifies the request's key, starts at valid_from, and chains to the
// service certificate, on both curves. The oracle is openssl: `openssl req -verify` for the
// request, `openssl verify` for the chain, `openssl x509 -text` for every field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  createCertificateSigningRequest,
  createServiceCertificate,
  endorseCertificateRequest,
} from "../../../src/crypto/cert-issuance.js";
import { CertError, CertErrorCode } from "../../../src/crypto/certs.js";
import { generateEcKeyPair, type EcCurveName } from "../../../src/crypto/identity.js";
import { openssl, tempDir } from "../../helpers/pki.js";

const DAY_MS = 86_400_000;
const pemBytes = (pem: string) => new TextEncoder().encode(pem);

for (const curve of ["secp384r1", "secp256r1"] as EcCurveName[]) {
  test(`a ${curve} service issues a request's subject and SANs, valid from valid_from`, async (t) => {
    const { dir, cleanup } = tempDir("consortia-csr-");
    t.after(cleanup);
    const now = new Date("2026-05-01T00:00:00Z");
    const serviceKeys = generateEcKeyPair(curve);
    const serviceCertPem = await createServiceCertificate({
      keys: serviceKeys,
      validityDays: 365,
      now,
    });
    const nodeKeys = generateEcKeyPair("secp384r1");
    const csrPem = await createCertificateSigningRequest({
      keys: nodeKeys,
      subject: "CN=node1",
      subjectAltNames: ["dNSName:node1.example.com", "iPAddress:10.0.0.2", "iPAddress:::1"],
    });
    const request = openssl(["req", "-verify", "-noout", "-text"], pemBytes(csrPem));
    assert.match(request.out, /verify OK|Certificate request self-signature verify OK/);
    assert.match(
      request.out,
      /DNS:node1\.example\.com, IP Address:10\.0\.0\.2, IP Address:0:0:0:0:0:0:0:1/,
    );

    const validFrom = new Date("2026-06-02T03:04:05Z");
    const pem = endorseCertificateRequest({
      csrPem,
      servicePrivateKey: serviceKeys.privateKey,
      serviceCertPem,
      validFrom,
      validityDays: 30,
    });
    writeFileSync(join(dir, "service.pem"), serviceCertPem);
    writeFileSync(join(dir, "node.pem"), pem);
    const attime = String(Math.floor(validFrom.getTime() / 1000) + 60);
    const chain = openssl([
      "verify",
      "-attime",
      attime,
      "-CAfile",
      join(dir, "service.pem"),
      join(dir, "node.pem"),
    ]);
    assert.equal(chain.status, 0, chain.out);
    const dump = openssl(["x509", "-noout", "-text"], pemBytes(pem)).out;
    assert.match(dump, /Subject: CN\s?=\s?node1/);
    assert.match(dump, /Issuer: CN\s?=\s?CCF Service/);
    assert.match(
      dump,
      /DNS:node1\.example\.com, IP Address:10\.0\.0\.2, IP Address:0:0:0:0:0:0:0:1/,
    );
    assert.match(dump, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(dump, /TLS Web Server Authentication, TLS Web Client Authentication/);
    const hash = curve === "secp384r1" ? "SHA384" : "SHA256";
    assert.match(dump, new RegExp(`Signature Algorithm: ecdsa-with-${hash}`));
    const cert = new X509Certificate(pem);
    assert.equal(Date.parse(cert.validFrom), validFrom.getTime());
    assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 30 * DAY_MS);
    assert.ok(cert.publicKey.equals(nodeKeys.publicKey), "certifies the request's key");
    const ski = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(text(serviceCertPem))?.[1];
    const aki = /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(dump)?.[1];
    assert.equal(aki, ski);
  });
}

function text(pem: string): string {
  return openssl(["x509", "-noout", "-text"], pemBytes(pem)).out;
}

test("a request without SANs gives a certificate without them; garbage is InvalidCsr", async () => {
  const now = new Date("2026-05-01T00:00:00Z");
  const serviceKeys = generateEcKeyPair("secp256r1");
  const serviceCertPem = await createServiceCertificate({
    keys: serviceKeys,
    validityDays: 9,
    now,
  });
  const csrPem = await createCertificateSigningRequest({
    keys: generateEcKeyPair("secp256r1"),
    subject: "CN=CCF Node",
    subjectAltNames: [],
  });
  const issue = (csr: string) =>
    endorseCertificateRequest({
      csrPem: csr,
      servicePrivateKey: serviceKeys.privateKey,
      serviceCertPem,
      validFrom: now,
      validityDays: 1,
    });
  assert.equal(new X509Certificate(issue(csrPem)).subjectAltName, undefined);
  const isInvalidCsr = (err: unknown) =>
    err instanceof CertError && err.code === CertErrorCode.InvalidCsr;
  assert.throws(
    () => issue("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
    isInvalidCsr,
  );
  assert.throws(() => issue("not a request"), isInvalidCsr);
});
