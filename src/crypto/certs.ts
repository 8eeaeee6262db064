/**
 * X.509 certificates: parsing and chain checks (node:crypto X509Certificate) and issuance
 * (@peculiar/x509 over WebCrypto, since node:crypto cannot create certificates).
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
import { KeyObject, X509Certificate, webcrypto } from "node:crypto";
import { toHex, utf8 } from "../base/bytes.js";
import { CcfError, isForeignError } from "../base/errors.js";
import { ecdsaCurveOf, type EcdsaCurve } from "./ecdsa.js";
import { sha256Concat } from "./hash.js";

x509.cryptoProvider.set(webcrypto);

export enum CertErrorCode {
  /** Input that is not a parseable X.509 certificate (PEM or DER). */
  InvalidCertificate = "InvalidCertificate",
  /** A key that cannot sign or be certified here (not EC P-256/P-384). */
  UnsupportedKey = "UnsupportedKey",
  /** A subject alternative name not in CCF's `iPAddress:<ip>` / `dNSName:<name>` syntax. */
  InvalidSubjectAltName = "InvalidSubjectAltName",
  /** A validity period that is not a positive whole number of days, or an invalid `now`. */
  InvalidValidity = "InvalidValidity",
  /** Input that is not a parseable PKCS#10 certificate signing request. */
  InvalidCsr = "InvalidCsr",
}
export type CertErrorType = { code: CertErrorCode };
export class CertError extends CcfError<CertErrorType> {}

/**
 * A wall-clock instant supplied by the caller. This layer never reads the clock (no Date.now(),
 * no new Date()): validity periods are computed from the instant it is given.
 */
export type Instant = Date;

export type PemOrDer = string | Uint8Array;

export interface EcKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const MS_PER_DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Parsing and chain checks

/** Parses a PEM or DER certificate; throws CertError(InvalidCertificate) on anything else. */
export function parseCertificate(pemOrDer: PemOrDer): X509Certificate {
  try {
    return new X509Certificate(pemOrDer);
  } catch (err: unknown) {
    // Whatever node:crypto throws here (ERR_OSSL_* for unparseable input, ERR_INVALID_ARG_TYPE
    // for a non-bytes argument) means "not a certificate"; our own errors cannot arise here.
    if (!isForeignError(err)) throw err;
    throw new CertError(
      { code: CertErrorCode.InvalidCertificate },
      `invalid certificate: ${err.message}`,
    );
  }
}

/** parseCertificate, with null for input that is not a certificate. */
function tryParseCertificate(pemOrDer: PemOrDer): X509Certificate | null {
  try {
    return parseCertificate(pemOrDer);
  } catch (err: unknown) {
    if (err instanceof CertError && err.code === CertErrorCode.InvalidCertificate) return null;
    throw err;
  }
}

/** The DER encoding of a certificate given as PEM or DER (validated by parsing). */
export function certificateDer(pemOrDer: PemOrDer): Uint8Array {
  return new Uint8Array(parseCertificate(pemOrDer).raw);
}

/**
 * Public keys of recently seen certificate PEMs. Verifiers look the same node cert up once per
 * signature; returning the same KeyObject lets ecdsa.ts reuse its per-key precomputation.
 * Bounded: the oldest entry is dropped first.
 */
const publicKeyCache = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE_ENTRIES = 256;

/** Whether two certificates (PEM or DER) are the same certificate; false if either is not one. */
export function sameCertificate(a: PemOrDer, b: PemOrDer): boolean {
  const x = tryParseCertificate(a)?.raw;
  const y = tryParseCertificate(b)?.raw;
  if (x === undefined || y === undefined) return false;
  return x.byteLength === y.byteLength && x.every((byte, i) => byte === y[i]);
}

/** The subject public key of a certificate; throws CertError(InvalidCertificate). */
export function publicKeyOfCert(pemOrDer: PemOrDer): KeyObject {
  if (typeof pemOrDer !== "string") return parseCertificate(pemOrDer).publicKey;
  const cached = publicKeyCache.get(pemOrDer);
  if (cached !== undefined) return cached;
  const key = parseCertificate(pemOrDer).publicKey;
  if (publicKeyCache.size >= PUBLIC_KEY_CACHE_ENTRIES) {
    const oldest = publicKeyCache.keys().next();
    if (oldest.done !== true) publicKeyCache.delete(oldest.value);
  }
  publicKeyCache.set(pemOrDer, key);
  return key;
}

/**
 * True when `issuer` issued `cert`: OpenSSL's issuer check (issuer name, key identifiers,
 * keyCertSign usage) and the signature verifies under the issuer's key. Validity dates are not
 * checked (CCF's receipt verification does not check them either). Malformed input gives false.
 */
export function isIssuedBy(cert: PemOrDer, issuer: PemOrDer): boolean {
  const child = tryParseCertificate(cert);
  const parent = tryParseCertificate(issuer);
  if (child === null || parent === null) return false;
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch (err: unknown) {
    // OpenSSL refuses to verify with a key it cannot use (ERR_OSSL_*): not issued by it.
    if (isForeignError(err)) return false;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Issuance

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

/** A node certificate issued by the service key (TLS server and client, with SANs). */
export async function endorseNodeCertificate(input: NodeCertificateInput): Promise<string> {
  const names = (input.subjectAltNames ?? DEFAULT_NODE_SANS).map(parseSubjectAltName);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]),
  ];
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
