// Certificates (src/crypto/certs.ts): the service CA, node certs it endorses, service
// endorsements after a recovery, and the isIssuedBy chain check. openssl verify and openssl's
// text dump are the oracle for what the certificates contain and whether they chain.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate, generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CertError,
  CertErrorCode,
  parseCertificate,
  sameCertificate,
  tryParseCertificate,
} from "../../../src/crypto/certs.js";
import {
  createServiceCertificate,
  csrPublicKeyDer,
  endorseNodeCertificate,
  endorseServiceCertificate,
  parseSubjectAltName,
} from "../../../src/crypto/cert-issuance.js";
import {
  generateEcKeyPair,
  generateIdentity,
  isIssuedBy,
  publicKeyOfCert,
} from "../../../src/crypto/identity.js";
import { makePki, openssl, tempDir } from "../../helpers/pki.js";
import { mutate } from "../../helpers/byte-mutations.js";

const DAY_MS = 86_400_000;

function text(pem: string): string {
  return openssl(["x509", "-noout", "-text"], new TextEncoder().encode(pem)).out;
}

function isCertError(code: CertErrorCode) {
  return (err: unknown): boolean => err instanceof CertError && err.code === code;
}

test("the service cert is a self-signed CA with pathlen 1, keyCertSign and an SKI", async () => {
  const now = new Date("2026-05-01T00:00:00Z");
  const keys = generateEcKeyPair("secp384r1");
  const pem = await createServiceCertificate({ keys, validityDays: 90, now });
  const cert = new X509Certificate(pem);
  assert.equal(cert.subject, "CN=CCF Service");
  assert.equal(cert.ca, true);
  assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 90 * DAY_MS);
  assert.equal(Date.parse(cert.validFrom), now.getTime());
  const dump = text(pem);
  assert.match(dump, /Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
  assert.match(dump, /Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
  assert.match(dump, /Subject Key Identifier/);
  assert.match(dump, /ecdsa-with-SHA384/);
  assert.equal(isIssuedBy(pem, pem), true);
  assert.equal(
    publicKeyOfCert(pem).export({ type: "spki", format: "pem" }),
    keys.publicKey.export({ type: "spki", format: "pem" }),
  );
});

test("a P-256 service signs its certificates with SHA-256", async () => {
  const pki = await makePki({ curve: "secp256r1" });
  assert.match(text(pki.serviceCertPem), /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text(pki.nodeCertPem), /Signature Algorithm: ecdsa-with-SHA256/);
});

test("a node cert is issued by the service, with TLS usages, SANs and a matching AKI", async () => {
  const pki = await makePki({ subject: "CN=Consortia Test Service" });
  const cert = new X509Certificate(pki.nodeCertPem);
  assert.equal(cert.subject, "CN=CCF Node");
  assert.equal(cert.issuer, "CN=Consortia Test Service");
  assert.equal(cert.ca, false);
  assert.equal(cert.subjectAltName, "IP Address:127.0.0.1, DNS:localhost");
  assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  const serviceSki = /Subject Key Identifier:\s*\n\s*([0-9A-F:]+)/.exec(
    text(pki.serviceCertPem),
  )![1];
  const nodeAki = /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(
    text(pki.nodeCertPem),
  )![1];
  assert.equal(nodeAki, serviceSki);
  assert.equal(isIssuedBy(pki.nodeCertPem, pki.serviceCertPem), true);

  const { dir, cleanup } = tempDir("certs-");
  try {
    writeFileSync(join(dir, "service_cert.pem"), pki.serviceCertPem);
    writeFileSync(join(dir, "node_cert.pem"), pki.nodeCertPem);
    const r = openssl([
      "verify",
      "-CAfile",
      join(dir, "service_cert.pem"),
      "-purpose",
      "sslserver",
      join(dir, "node_cert.pem"),
    ]);
    assert.equal(r.status, 0, r.out);
    const c = openssl([
      "verify",
      "-CAfile",
      join(dir, "service_cert.pem"),
      "-purpose",
      "sslclient",
      join(dir, "node_cert.pem"),
    ]);
    assert.equal(c.status, 0, c.out);
  } finally {
    cleanup();
  }
});

test("node certificates take custom subjects and SANs in CCF's config syntax", async () => {
  const pki = await makePki();
  const node = generateEcKeyPair();
  const pem = await endorseNodeCertificate({
    servicePrivateKey: pki.serviceKeys.privateKey,
    serviceCertPem: pki.serviceCertPem,
    nodePublicKey: node.publicKey,
    subject: "CN=node7",
    subjectAltNames: ["iPAddress:10.1.2.3", "dNSName:node7.example", "iPAddress:::1"],
    validityDays: 1,
    now: new Date(),
  });
  const cert = new X509Certificate(pem);
  assert.equal(cert.subject, "CN=node7");
  assert.equal(
    cert.subjectAltName,
    "IP Address:10.1.2.3, DNS:node7.example, IP Address:0:0:0:0:0:0:0:1",
  );
  assert.equal(cert.checkHost("node7.example"), "node7.example");
  assert.equal(cert.checkIP("10.1.2.3"), "10.1.2.3");
});

test("malformed SANs, non-positive validity and unsupported keys are rejected", async () => {
  for (const bad of [
    "127.0.0.1",
    "ip:127.0.0.1",
    "iPAddress:300.1.1.1",
    "iPAddress:",
    "dNSName:",
    "dNSName:a b",
    "email:x@y",
  ]) {
    assert.throws(
      () => parseSubjectAltName(bad),
      isCertError(CertErrorCode.InvalidSubjectAltName),
      bad,
    );
  }
  const pki = await makePki();
  const base = {
    servicePrivateKey: pki.serviceKeys.privateKey,
    serviceCertPem: pki.serviceCertPem,
    nodePublicKey: generateEcKeyPair().publicKey,
    validityDays: 1,
    now: new Date(),
  };
  await assert.rejects(
    endorseNodeCertificate({ ...base, validityDays: -1 }),
    isCertError(CertErrorCode.InvalidValidity),
  );
  await assert.rejects(
    endorseNodeCertificate({ ...base, validityDays: 1.5 }),
    isCertError(CertErrorCode.InvalidValidity),
  );
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  await assert.rejects(
    endorseNodeCertificate({ ...base, nodePublicKey: rsa.publicKey }),
    isCertError(CertErrorCode.UnsupportedKey),
  );
  await assert.rejects(
    createServiceCertificate({ keys: rsa, validityDays: 1, now: new Date() }),
    isCertError(CertErrorCode.UnsupportedKey),
  );
  await assert.rejects(
    endorseNodeCertificate({ ...base, serviceCertPem: "junk" }),
    isCertError(CertErrorCode.InvalidCertificate),
  );
});

test("isIssuedBy is false for another CA, a self-signed cert, swapped roles, garbage", async () => {
  const pki = await makePki();
  const other = await makePki();
  const self = await generateIdentity({ name: "CCF Service", now: new Date() });
  assert.equal(isIssuedBy(pki.nodeCertPem, other.serviceCertPem), false, "other CA");
  assert.equal(isIssuedBy(pki.nodeCertPem, self.certPem), false, "same subject, other key");
  assert.equal(isIssuedBy(self.certPem, pki.serviceCertPem), false, "self-signed");
  assert.equal(isIssuedBy(pki.serviceCertPem, pki.nodeCertPem), false, "swapped");
  assert.equal(isIssuedBy(pki.nodeCertPem, pki.nodeCertPem), false, "node is not self-signed");
  assert.equal(isIssuedBy("garbage", pki.serviceCertPem), false);
  assert.equal(isIssuedBy(pki.nodeCertPem, "garbage"), false);
});

test("an endorsement chains the previous service's node certs to the current one", async () => {
  const previous = await makePki();
  const current = await makePki();
  const endorsement = await endorseServiceCertificate({
    servicePrivateKey: current.serviceKeys.privateKey,
    serviceCertPem: current.serviceCertPem,
    endorsedPublicKey: previous.serviceKeys.publicKey,
    validityDays: 30,
    now: new Date(),
  });
  assert.equal(isIssuedBy(endorsement, current.serviceCertPem), true);
  assert.equal(isIssuedBy(previous.nodeCertPem, endorsement), true);
  assert.equal(isIssuedBy(previous.nodeCertPem, current.serviceCertPem), false);
  assert.match(text(endorsement), /CA:TRUE, pathlen:0/);

  const { dir, cleanup } = tempDir("certs-");
  try {
    writeFileSync(join(dir, "current.pem"), current.serviceCertPem);
    writeFileSync(join(dir, "endorsement.pem"), endorsement);
    writeFileSync(join(dir, "node.pem"), previous.nodeCertPem);
    const chained = openssl([
      "verify",
      "-CAfile",
      join(dir, "current.pem"),
      "-untrusted",
      join(dir, "endorsement.pem"),
      join(dir, "node.pem"),
    ]);
    assert.equal(chained.status, 0, chained.out);
    const direct = openssl(["verify", "-CAfile", join(dir, "current.pem"), join(dir, "node.pem")]);
    assert.notEqual(direct.status, 0, "without the endorsement the chain must not verify");
  } finally {
    cleanup();
  }
});

test("corrupt certificate input is false or a coded CertError, never another error", async () => {
  const pki = await makePki();
  const truncated = pki.nodeCertPem.slice(0, pki.nodeCertPem.length / 2);
  for (const bad of ["garbage", "", truncated, new Uint8Array([0x30, 0x03, 0x02, 0x01])]) {
    assert.equal(sameCertificate(bad, pki.nodeCertPem), false);
    assert.equal(sameCertificate(pki.nodeCertPem, bad), false);
    assert.equal(isIssuedBy(bad, pki.serviceCertPem), false);
    assert.throws(() => parseCertificate(bad), isCertError(CertErrorCode.InvalidCertificate));
  }
  assert.equal(sameCertificate(pki.nodeCertPem, pki.nodeCertPem), true);
  assert.equal(sameCertificate(pki.nodeCertPem, parseCertificate(pki.nodeCertPem).raw), true);
  for (const bad of ["garbage", "", pki.nodeCertPem]) {
    assert.throws(() => csrPublicKeyDer(bad), isCertError(CertErrorCode.InvalidCsr));
  }
});

test("a certificate whose public key does not decode is an InvalidCertificate, not a later throw", () => {
  // The attestation fuzzer's case (seed 1667604558): one base64 character of the genoa ARK
  // overwritten. node parses the certificate and decodes its key only when asked.
  const pem = readFileSync("test/fixtures/snp/genoa-endorsements.pem", "latin1");
  const bytes = mutate(Buffer.from(pem, "latin1"), {
    kind: "overwrite",
    at: 1752526202,
    bytes: Uint8Array.from([66]),
  });
  const blocks = Buffer.from(bytes)
    .toString("latin1")
    .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
  const ark = blocks?.[2];
  assert.ok(ark !== undefined, "the mutated chain still has three certificates");
  assert.throws(() => new X509Certificate(ark).publicKey, "node's own lazy decode fails");
  assert.throws(() => parseCertificate(ark), isCertError(CertErrorCode.InvalidCertificate));
  assert.equal(tryParseCertificate(ark), null);
});
