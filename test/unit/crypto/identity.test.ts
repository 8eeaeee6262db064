// Identities (src/crypto/identity.ts): member/user ids are the SHA-256 of the certificate DER
// and node ids the SHA-256 of the SPKI DER, checked against openssl's own DER output; generated
// identities and encryption keys must be what keygenerator.sh makes and must load in openssl
// and node.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  constants,
} from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CertError, CertErrorCode, certificateDer } from "../../../src/crypto/certs.js";
import {
  generateEcKeyPair,
  generateEncryptionKey,
  generateIdentity,
  memberIdFromCert,
  nodeIdFromPublicKey,
  userIdFromCert,
} from "../../../src/crypto/identity.js";
import { openssl, sha256, tempDir } from "../../helpers/pki.js";

const NOW = new Date("2026-03-01T12:00:00Z");
const DAY_MS = 86_400_000;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

test("the member id is the SHA-256 of the cert DER, as openssl computes it", async () => {
  const { certPem } = await generateIdentity({ name: "member0", now: NOW });
  const der = openssl(["x509", "-outform", "DER"], new TextEncoder().encode(certPem));
  assert.equal(der.status, 0);
  const { dir, cleanup } = tempDir("identity-");
  try {
    writeFileSync(join(dir, "cert.pem"), certPem);
    const out = openssl([
      "x509",
      "-in",
      join(dir, "cert.pem"),
      "-noout",
      "-fingerprint",
      "-sha256",
    ]);
    const fingerprint = /=([0-9A-F:]+)/.exec(out.out)![1]!.replace(/:/g, "").toLowerCase();
    assert.equal(memberIdFromCert(certPem), fingerprint);
    assert.match(memberIdFromCert(certPem), /^[a-f0-9]{64}$/);
    // PEM and DER input name the same identity; user ids use the same rule.
    assert.equal(memberIdFromCert(certificateDer(certPem)), fingerprint);
    assert.equal(userIdFromCert(certPem), fingerprint);
  } finally {
    cleanup();
  }
});

test("the node id is the SHA-256 of the SPKI DER, whichever form the key comes in", () => {
  const keys = generateEcKeyPair("secp384r1");
  const spkiPem = keys.publicKey.export({ type: "spki", format: "pem" }).toString();
  const der = openssl(["pkey", "-pubin", "-outform", "DER"], new TextEncoder().encode(spkiPem));
  assert.equal(der.status, 0);
  const expected = hex(sha256(keys.publicKey.export({ type: "spki", format: "der" })));
  assert.equal(nodeIdFromPublicKey(keys.publicKey), expected);
  assert.equal(nodeIdFromPublicKey(keys.privateKey), expected);
  assert.equal(nodeIdFromPublicKey(spkiPem), expected);
  assert.notEqual(nodeIdFromPublicKey(generateEcKeyPair("secp384r1").publicKey), expected);
});

test("openssl's DER of the public key hashes to the node id", () => {
  const keys = generateEcKeyPair("secp256r1");
  const { dir, cleanup } = tempDir("identity-");
  try {
    writeFileSync(join(dir, "pub.pem"), keys.publicKey.export({ type: "spki", format: "pem" }));
    const r = openssl([
      "pkey",
      "-pubin",
      "-in",
      join(dir, "pub.pem"),
      "-outform",
      "DER",
      "-out",
      join(dir, "pub.der"),
    ]);
    assert.equal(r.status, 0, r.out);
    const dgst = openssl(["dgst", "-sha256", "-r", join(dir, "pub.der")]);
    assert.equal(dgst.out.split(" ")[0], nodeIdFromPublicKey(keys.publicKey));
  } finally {
    cleanup();
  }
});

for (const [curve, bits, digest] of [
  ["secp384r1", 384, "SHA384"],
  ["secp256r1", 256, "SHA256"],
] as const) {
  test(`a ${curve} identity is self-signed, CN=<name>, ${digest}, 365 days`, async () => {
    const identity = await generateIdentity({ name: "user7", curve, now: NOW });
    const cert = new X509Certificate(identity.certPem);
    assert.equal(cert.subject, "CN=user7");
    assert.equal(cert.issuer, "CN=user7");
    assert.equal(cert.verify(cert.publicKey), true, "self-signed");
    assert.equal(
      cert.publicKey.asymmetricKeyDetails?.namedCurve,
      curve === "secp384r1" ? "secp384r1" : "prime256v1",
    );
    assert.equal(Date.parse(cert.validFrom), NOW.getTime());
    assert.equal(Date.parse(cert.validTo), NOW.getTime() + 365 * DAY_MS);
    const text = openssl(["x509", "-noout", "-text"], new TextEncoder().encode(identity.certPem));
    assert.match(text.out, new RegExp(`Signature Algorithm: ecdsa-with-${digest}`));
    assert.match(text.out, new RegExp(`Public-Key: \\(${bits} bit\\)`));
    // The key is SEC 1 PEM, loads in node and openssl, and matches the certificate.
    assert.match(identity.privateKeyPem, /^-----BEGIN EC PRIVATE KEY-----\n/);
    const privateKey = createPrivateKey(identity.privateKeyPem);
    assert.equal(cert.checkPrivateKey(privateKey), true);
    const check = openssl(
      ["ec", "-check", "-noout"],
      new TextEncoder().encode(identity.privateKeyPem),
    );
    assert.equal(check.status, 0, check.out);
    assert.match(check.out, /EC Key valid/);
  });
}

test("identity validity follows validityDays and the given clock", async () => {
  const identity = await generateIdentity({ name: "short", now: NOW, validityDays: 2 });
  const cert = new X509Certificate(identity.certPem);
  assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 2 * DAY_MS);
  await assert.rejects(
    generateIdentity({ name: "bad", now: NOW, validityDays: 0 }),
    (err: unknown) => err instanceof CertError && err.code === CertErrorCode.InvalidValidity,
  );
  await assert.rejects(
    generateIdentity({ name: "bad", now: new Date(Number.NaN) }),
    (err: unknown) => err instanceof CertError && err.code === CertErrorCode.InvalidValidity,
  );
});

test("two identities with the same name get different keys, certificates and ids", async () => {
  const a = await generateIdentity({ name: "same", now: NOW });
  const b = await generateIdentity({ name: "same", now: NOW });
  assert.notEqual(a.privateKeyPem, b.privateKeyPem);
  assert.notEqual(memberIdFromCert(a.certPem), memberIdFromCert(b.certPem));
});

test("the encryption key is RSA-2048 PKCS#8/SPKI PEM and its halves match", () => {
  const enc = generateEncryptionKey();
  assert.match(enc.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(enc.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
  const privateKey = createPrivateKey(enc.privateKeyPem);
  assert.equal(privateKey.asymmetricKeyType, "rsa");
  assert.equal(privateKey.asymmetricKeyDetails?.modulusLength, 2048);
  const derived = createPublicKey(privateKey).export({ type: "spki", format: "pem" });
  assert.equal(derived, enc.publicKeyPem);
  const secret = new TextEncoder().encode("recovery share");
  const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" };
  const wrapped = publicEncrypt({ key: enc.publicKeyPem, ...oaep }, secret);
  assert.deepEqual(
    new Uint8Array(privateDecrypt({ key: enc.privateKeyPem, ...oaep }, wrapped)),
    secret,
  );
  const check = openssl(["rsa", "-check", "-noout"], new TextEncoder().encode(enc.privateKeyPem));
  assert.equal(check.status, 0, check.out);
});

test("ids of something that is not a certificate throw CertError(InvalidCertificate)", () => {
  for (const input of [
    "not a cert",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]),
  ]) {
    assert.throws(
      () => memberIdFromCert(input),
      (err: unknown) => err instanceof CertError && err.code === CertErrorCode.InvalidCertificate,
    );
  }
});
