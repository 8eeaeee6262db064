/**
 * X.509 issuance (@peculiar/x509 over WebCrypto, since node:crypto cannot create certificates).
 *
 * What CCF issues (ccf-compatibility.md §2.2, §10):
 * - identity certs (members, users): self-signed, subject CN=<name>, as `openssl req -x509` in
 *   keygenerator.sh writes them (SKI, AKI, BasicConstraints CA:TRUE);
 * - the service cert: a self-signed CA (CN=CCF Service, pathlen 1 so that one level of service
 *   endorsement can sit between it and node certs after a recovery);
 * - node certs: issued by the service key, serverAuth + clientAuth, with the configured SANs;
 * - service endorsements: a previous service identity re-issued as a CA by the current one.
 *
 * Signature digest follows the signing key's curve: SHA-384 for P-384, SHA-256 for P-256.
 * The clock comes in as `now` (this layer never reads it). Serial numbers are derived from the
 * certificate's content, so issuance is reproducible apart from the ECDSA nonce.
 */
import "reflect-metadata"; // @peculiar/x509 2.x needs the Reflect polyfill before it loads.
import * as x509 from "@peculiar/x509";
import { createHash, createPublicKey, KeyObject, sign, webcrypto } from "node:crypto";
import { derToPem, fromHex, toHex, utf8 } from "../base/bytes.js";
import { assert } from "../base/assert.js";
import { isForeignError } from "../base/errors.js";
import { CertError, CertErrorCode, certificateDer, type EcKeyPair, type Instant } from "./certs.js";
import { ecdsaCurveOf, type EcdsaCurve } from "./ecdsa.js";
import { sha256Concat } from "./hash.js";
import {
  DER,
  derBitString,
  derOid,
  derSequence,
  derTime,
  derTlv,
  derUnsignedInteger,
} from "./der-writer.js";

x509.cryptoProvider.set(webcrypto);

const MS_PER_DAY = 86_400_000;

interface Signer {
  readonly key: webcrypto.CryptoKey;
  readonly algorithm: webcrypto.EcdsaParams;
}

function requireCurve(key: KeyObject, role: string): EcdsaCurve {
  const curve = ecdsaCurveOf(key);
  if (curve === null) {
    throw new CertError(
      { code: CertErrorCode.UnsupportedKey },
      `${role} must be an EC P-256 or P-384 key, got ${key.asymmetricKeyType ?? "unknown"}`,
    );
  }
  return curve;
}

async function signerOf(privateKey: KeyObject): Promise<Signer> {
  const curve = requireCurve(privateKey, "signing key");
  if (privateKey.type !== "private") {
    throw new CertError({ code: CertErrorCode.UnsupportedKey }, "signing key must be private");
  }
  const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
  const key = await webcrypto.subtle.importKey(
    "pkcs8",
    pkcs8,
    { name: "ECDSA", namedCurve: curve },
    false,
    ["sign"],
  );
  return { key, algorithm: { name: "ECDSA", hash: curve === "P-384" ? "SHA-384" : "SHA-256" } };
}

function spkiDer(publicKey: KeyObject): Uint8Array {
  requireCurve(publicKey, "certified key");
  return new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
}

interface Validity {
  readonly notBefore: Instant;
  readonly notAfter: Instant;
}

function validityOf(now: Instant, validityDays: number): Validity {
  if (!Number.isSafeInteger(validityDays) || validityDays <= 0) {
    throw new CertError(
      { code: CertErrorCode.InvalidValidity },
      `validity must be a positive whole number of days, got ${validityDays}`,
    );
  }
  if (!Number.isFinite(now.getTime())) {
    throw new CertError({ code: CertErrorCode.InvalidValidity }, "`now` is not a valid date");
  }
  const notAfter = new Date(now.getTime() + validityDays * MS_PER_DAY);
  return { notBefore: now, notAfter };
}

/**
 * A positive 16-byte serial derived from what the certificate binds (RFC 5280 4.1.2.2 asks
 * for uniqueness per issuer, which distinct content gives).
 */
function serialFor(
  subject: string,
  subjectSpki: Uint8Array,
  issuerSpki: Uint8Array,
  validity: Validity,
): string {
  const digest = sha256Concat([
    utf8(subject),
    subjectSpki,
    issuerSpki,
    utf8(`${validity.notBefore.getTime()}/${validity.notAfter.getTime()}`),
  ]).slice(0, 16);
  // High bit clear keeps the INTEGER positive; a non-zero top byte keeps the DER minimal.
  digest[0] = (digest[0]! & 0x7f) | 0x40;
  return toHex(digest);
}

function toPem(cert: x509.X509Certificate): string {
  const pem = cert.toString("pem").replace(/\r\n/g, "\n");
  return pem.endsWith("\n") ? pem : pem + "\n";
}

interface SelfSignedInput {
  readonly keys: EcKeyPair;
  readonly subject: string;
  readonly validity: Validity;
  readonly extensions: (spki: Uint8Array) => Promise<x509.Extension[]>;
}

async function selfSigned(input: SelfSignedInput): Promise<string> {
  const signer = await signerOf(input.keys.privateKey);
  const spki = spkiDer(input.keys.publicKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialFor(input.subject, spki, spki, input.validity),
    subject: input.subject,
    issuer: input.subject,
    publicKey: spki,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    notBefore: input.validity.notBefore,
    notAfter: input.validity.notAfter,
    extensions: await input.extensions(spki),
  });
  return toPem(cert);
}

interface IssuedInput {
  readonly issuerPrivateKey: KeyObject;
  readonly issuerCertPem: string;
  readonly subjectPublicKey: KeyObject;
  readonly subject: string;
  readonly validity: Validity;
  readonly extensions: x509.Extension[];
}

/** A certificate signed by an existing issuer cert's key; adds SKI and AKI. */
async function issued(input: IssuedInput): Promise<string> {
  const issuerCert = new x509.X509Certificate(certificateDer(input.issuerCertPem));
  const issuerSpki = new Uint8Array(issuerCert.publicKey.rawData);
  const signer = await signerOf(input.issuerPrivateKey);
  const spki = spkiDer(input.subjectPublicKey);
  // Reuse the issuer's own SKI when it has one, so AKI matches it byte for byte.
  const issuerSki = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki =
    issuerSki !== null
      ? new x509.AuthorityKeyIdentifierExtension(issuerSki.keyId)
      : await x509.AuthorityKeyIdentifierExtension.create(issuerSpki);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialFor(input.subject, spki, issuerSpki, input.validity),
    subject: input.subject,
    issuer: issuerCert.subjectName,
    publicKey: spki,
    signingKey: signer.key,
    signingAlgorithm: signer.algorithm,
    notBefore: input.validity.notBefore,
    notAfter: input.validity.notAfter,
    extensions: [...input.extensions, await x509.SubjectKeyIdentifierExtension.create(spki), aki],
  });
  return toPem(cert);
}

export interface SelfSignedIdentityInput {
  readonly keys: EcKeyPair;
  /** A distinguished name in string form, e.g. "CN=member0". */
  readonly subject: string;
  readonly validityDays: number;
  readonly now: Instant;
}

/** A self-signed certificate like `openssl req -x509` writes (member and user identities). */
export async function createSelfSignedCertificate(input: SelfSignedIdentityInput): Promise<string> {
  return selfSigned({
    keys: input.keys,
    subject: input.subject,
    validity: validityOf(input.now, input.validityDays),
    extensions: async (spki) => [
      await x509.SubjectKeyIdentifierExtension.create(spki),
      await x509.AuthorityKeyIdentifierExtension.create(spki),
      new x509.BasicConstraintsExtension(true, undefined, true),
    ],
  });
}

export interface ServiceCertificateInput {
  readonly keys: EcKeyPair;
  readonly subject?: string;
  readonly validityDays: number;
  readonly now: Instant;
}

/** The service identity: a self-signed CA (pathlen 1) that issues node certs. */
export async function createServiceCertificate(input: ServiceCertificateInput): Promise<string> {
  return selfSigned({
    keys: input.keys,
    subject: input.subject ?? "CN=CCF Service",
    validity: validityOf(input.now, input.validityDays),
    extensions: async (spki) => [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign |
          x509.KeyUsageFlags.cRLSign |
          x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(spki),
      await x509.AuthorityKeyIdentifierExtension.create(spki),
    ],
  });
}

export interface NodeCertificateInput {
  readonly servicePrivateKey: KeyObject;
  readonly serviceCertPem: string;
  readonly nodePublicKey: KeyObject;
  readonly subject?: string;
  /** CCF config syntax: "iPAddress:127.0.0.1", "dNSName:localhost". */
  readonly subjectAltNames?: readonly string[];
  readonly validityDays: number;
  readonly now: Instant;
}

export const DEFAULT_NODE_SANS: readonly string[] = ["iPAddress:127.0.0.1", "dNSName:localhost"];

/** Parses CCF's SAN syntax; throws CertError(InvalidSubjectAltName). */
export function parseSubjectAltName(text: string): x509.JsonGeneralName {
  const colon = text.indexOf(":");
  const kind = colon < 0 ? "" : text.slice(0, colon).toLowerCase();
  const value = colon < 0 ? "" : text.slice(colon + 1);
  if (kind === "ipaddress" && isIpAddress(value)) return { type: "ip", value };
  if (kind === "dnsname" && /^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,252})$/.test(value)) {
    return { type: "dns", value };
  }
  throw new CertError(
    { code: CertErrorCode.InvalidSubjectAltName },
    `invalid subject alternative name ${JSON.stringify(text)} (expected iPAddress:<ip> or ` +
      "dNSName:<name>)",
  );
}

function isIpAddress(text: string): boolean {
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  if (v4.test(text)) return true;
  // IPv6: hex groups and colons, at most one "::"; a full parser is not needed for config input.
  return /^[0-9A-Fa-f:]{2,39}$/.test(text) && text.includes(":") && text.split("::").length <= 2;
}

/** What every node certificate says of its use: an end entity for TLS server and client. */
function nodeUsageExtensions(): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]),
  ];
}

/** A node certificate issued by the service key (TLS server and client, with SANs). */
export async function endorseNodeCertificate(input: NodeCertificateInput): Promise<string> {
  const names = (input.subjectAltNames ?? DEFAULT_NODE_SANS).map(parseSubjectAltName);
  const extensions = nodeUsageExtensions();
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  return issued({
    issuerPrivateKey: input.servicePrivateKey,
    issuerCertPem: input.serviceCertPem,
    subjectPublicKey: input.nodePublicKey,
    subject: input.subject ?? "CN=CCF Node",
    validity: validityOf(input.now, input.validityDays),
    extensions,
  });
}

export interface ServiceEndorsementInput {
  readonly servicePrivateKey: KeyObject;
  readonly serviceCertPem: string;
  /** The key of the previous service identity, to be endorsed by the current one. */
  readonly endorsedPublicKey: KeyObject;
  readonly subject?: string;
  readonly validityDays: number;
  readonly now: Instant;
}

/**
 * A previous service identity re-issued as a CA (pathlen 0) by the current service key, so
 * node certs issued by the previous identity chain to the current one (`service_endorsements`
 * of receipts after a recovery).
 */
export async function endorseServiceCertificate(input: ServiceEndorsementInput): Promise<string> {
  return issued({
    issuerPrivateKey: input.servicePrivateKey,
    issuerCertPem: input.serviceCertPem,
    subjectPublicKey: input.endorsedPublicKey,
    subject: input.subject ?? "CN=CCF Service",
    validity: validityOf(input.now, input.validityDays),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
    ],
  });
}

/**
 * The SubjectPublicKeyInfo DER of a PEM PKCS#10 certificate signing request. Throws
 * CertError(InvalidCsr) when the text is not one.
 */
export function csrPublicKeyDer(csrPem: string): Uint8Array {
  try {
    return new Uint8Array(new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData);
  } catch (err: unknown) {
    // @peculiar/x509 and asn1js throw plain Errors (no codes) for input they cannot parse.
    if (!isForeignError(err)) throw err;
    throw new CertError(
      { code: CertErrorCode.InvalidCsr },
      `not a PEM certificate signing request: ${err.message}`,
    );
  }
}

// ---- Certificate signing requests (joins) ---------------------------------------------------

export interface CertificateRequestInput {
  readonly keys: EcKeyPair;
  /** A distinguished name in string form, e.g. "CN=CCF Node". */
  readonly subject: string;
  /** CCF config syntax: "iPAddress:10.0.0.2", "dNSName:node1.example.com". */
  readonly subjectAltNames: readonly string[];
}

/**
 * A PEM PKCS#10 request for `keys` with `subject` and an extension request for the SANs: the
 * `certificate_signing_request` a joining node sends, from which the service issues its node
 * certificate (endorseCertificateRequest).
 */
export async function createCertificateSigningRequest(
  input: CertificateRequestInput,
): Promise<string> {
  const curve = requireCurve(input.keys.publicKey, "requesting key");
  const signer = await signerOf(input.keys.privateKey);
  const publicKey = await webcrypto.subtle.importKey(
    "spki",
    spkiDer(input.keys.publicKey),
    { name: "ECDSA", namedCurve: curve },
    true,
    ["verify"],
  );
  const names = input.subjectAltNames.map(parseSubjectAltName);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: input.subject,
    keys: { privateKey: signer.key, publicKey },
    signingAlgorithm: signer.algorithm,
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  const pem = csr.toString("pem").replace(/\r\n/g, "\n");
  return pem.endsWith("\n") ? pem : pem + "\n";
}

const SUBJECT_ALT_NAME_OID = "2.5.29.17";

/** ecdsa-with-SHA256 / -SHA384 (RFC 5758), by the issuer key's curve. */
const ECDSA_SIGNATURE = {
  "P-256": { oid: "1.2.840.10045.4.3.2", hash: "sha256" },
  "P-384": { oid: "1.2.840.10045.4.3.3", hash: "sha384" },
} as const;

export interface CsrEndorsementInput {
  readonly csrPem: string;
  readonly servicePrivateKey: KeyObject;
  readonly serviceCertPem: string;
  readonly validFrom: Instant;
  readonly validityDays: number;
}

function parseCsr(csrPem: string): x509.Pkcs10CertificateRequest {
  try {
    return new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    throw new CertError(
      { code: CertErrorCode.InvalidCsr },
      `not a PEM certificate signing request: ${err.message}`,
    );
  }
}

/** Bytes of an uncompressed point (0x04 || x || y), by curve. */
const EC_POINT_BYTES = { "P-256": 65, "P-384": 97 } as const;

/**
 * The EC key of a SubjectPublicKeyInfo (CertError(UnsupportedKey) unless P-256 or P-384) and
 * RFC 5280 4.2.1.2 method (1) for its key identifier: SHA-1 of the uncompressed point, as
 * x509's SubjectKeyIdentifierExtension computes it.
 */
function ecKeyIdentifier(spki: Uint8Array, role: string): string {
  const key = createPublicKey(derToPem(spki, "PUBLIC KEY"));
  const curve = requireCurve(key, role);
  const der = new Uint8Array(key.export({ type: "spki", format: "der" }));
  return createHash("sha1")
    .update(der.subarray(der.length - EC_POINT_BYTES[curve]))
    .digest("hex");
}

/**
 * CCF's `generate_endorsed_certificate`: a node certificate for the key of a PKCS#10 request,
 * with the request's subject and SANs, issued by the service key from `validFrom`. Synchronous
 * (DER assembled here, signed by node:crypto), because the constitution calls it inside a
 * governance transaction that cannot await. Throws CertError(InvalidCsr) for a bad request.
 */
export function endorseCertificateRequest(input: CsrEndorsementInput): string {
  const csr = parseCsr(input.csrPem);
  const issuer = new x509.X509Certificate(certificateDer(input.serviceCertPem));
  const algorithm = ECDSA_SIGNATURE[requireCurve(input.servicePrivateKey, "signing key")];
  const spki = new Uint8Array(csr.publicKey.rawData);
  const keyId = ecKeyIdentifier(spki, "the request's key");
  const validity = validityOf(input.validFrom, input.validityDays);
  const issuerSpki = new Uint8Array(issuer.publicKey.rawData);
  const issuerSki = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  const sans = csr.extensions.find((e) => e?.type === SUBJECT_ALT_NAME_OID);
  const extensions = [
    ...nodeUsageExtensions(),
    ...(sans !== undefined ? [sans] : []),
    new x509.SubjectKeyIdentifierExtension(keyId),
    new x509.AuthorityKeyIdentifierExtension(
      issuerSki?.keyId ?? ecKeyIdentifier(issuerSpki, "issuer"),
    ),
  ].map((e) => new Uint8Array(e.rawData));
  const signatureAlgorithm = derSequence(derOid(algorithm.oid));
  const serial = fromHex(serialFor(csr.subject, spki, issuerSpki, validity));
  assert(serial !== null, "serialFor returns hex");
  const tbs = derSequence(
    derTlv(DER.context0, derUnsignedInteger(Uint8Array.of(2))),
    derUnsignedInteger(serial),
    signatureAlgorithm,
    new Uint8Array(issuer.subjectName.toArrayBuffer()),
    derSequence(derTime(validity.notBefore), derTime(validity.notAfter)),
    new Uint8Array(csr.subjectName.toArrayBuffer()),
    spki,
    derTlv(DER.context3, derSequence(...extensions)),
  );
  const signature = new Uint8Array(sign(algorithm.hash, tbs, input.servicePrivateKey));
  return derToPem(derSequence(tbs, signatureAlgorithm, derBitString(signature)), "CERTIFICATE");
}
