/**
 * X.509 certificates: parsing and chain checks (node:crypto X509Certificate). Issuance is in
 * cert-issuance.ts, apart, so that what only reads certificates (the ledger verifier, receipts,
 * the CLI's offline commands) does not load @peculiar/x509.
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
import { KeyObject, X509Certificate } from "node:crypto";
import { toHex, utf8 } from "../base/bytes.js";
import { CcfError, isForeignError } from "../base/errors.js";
import { ecdsaCurveOf, type EcdsaCurve } from "./ecdsa.js";
import { sha256Concat } from "./hash.js";

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

// ---------------------------------------------------------------------------------------------
// Parsing and chain checks

/**
 * Parses a PEM or DER certificate; throws CertError(InvalidCertificate) on anything else,
 * including a certificate whose public key does not decode (node decodes it only when asked,
 * and would throw an untyped error at the first use of `publicKey`).
 */
export function parseCertificate(pemOrDer: PemOrDer): X509Certificate {
  try {
    const cert = new X509Certificate(pemOrDer);
    void cert.publicKey;
    return cert;
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
export function tryParseCertificate(pemOrDer: PemOrDer): X509Certificate | null {
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
