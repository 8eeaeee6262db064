/**
 * X.509 checks of `ccf.crypto` for JS apps (CCF 6's isValidX509CertBundle and
 * isValidX509CertChain; ccf-compatibility.md §9.1), over node:crypto's X509Certificate.
 *
 * - A bundle is valid when it holds at least one PEM certificate and every one parses; the
 *   certificates need not be related, and validity dates are not checked (as in CCF).
 * - A chain is "target, then untrusted intermediates"; it is valid when a path leads from the
 *   target to any trusted certificate, as OpenSSL's X509_verify_cert with X509_V_FLAG_PARTIAL_CHAIN
 *   decides it in CCF: a trusted certificate may be an intermediate (or the target itself), each
 *   issuer is named by its child (checkIssued), signed its child, and is a CA, and every
 *   certificate on the path is within its validity period at `now`.
 *
 * Malformed input gives false, never an exception. `now` comes from the caller.
 */
import { X509Certificate } from "node:crypto";
import { isForeignError } from "../base/errors.js";

const PEM_CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
/** Bounds path building: no real chain is longer, and a loop of cross-signed CAs ends here. */
export const CHAIN_DEPTH_MAX = 10;

/** The certificates of a PEM bundle, or null when there are none or one does not parse. */
function parseBundle(pem: string): X509Certificate[] | null {
  const blocks = pem.match(PEM_CERT_BLOCK);
  if (blocks === null) return null;
  try {
    return blocks.map((block) => new X509Certificate(block));
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    return null;
  }
}

export function isValidX509CertBundle(pem: string): boolean {
  return parseBundle(pem) !== null;
}

function isCurrent(cert: X509Certificate, now: Date): boolean {
  const from = new Date(cert.validFrom).getTime();
  const to = new Date(cert.validTo).getTime();
  return from <= now.getTime() && now.getTime() <= to;
}

function issued(child: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);
  } catch (err: unknown) {
    // A key OpenSSL cannot verify with (ERR_OSSL_*) did not issue the certificate.
    if (!isForeignError(err)) throw err;
    return false;
  }
}

function sameCert(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

interface PathSearch {
  readonly trusted: readonly X509Certificate[];
  readonly untrusted: readonly X509Certificate[];
  readonly now: Date;
}

/** Whether a path leads from `cert` (already checked as current) to a trusted certificate. */
function reachesTrust(cert: X509Certificate, search: PathSearch, depth: number): boolean {
  if (search.trusted.some((t) => sameCert(t, cert))) return true;
  if (depth >= CHAIN_DEPTH_MAX) return false;
  for (const anchor of search.trusted) {
    if (isCurrent(anchor, search.now) && issued(cert, anchor)) return true;
  }
  for (const next of search.untrusted) {
    if (sameCert(next, cert) || !isCurrent(next, search.now) || !issued(cert, next)) continue;
    if (reachesTrust(next, search, depth + 1)) return true;
  }
  return false;
}

export interface CertChainInput {
  /** PEM bundle: the target certificate first, then intermediates in any order. */
  readonly chain: string;
  /** PEM bundle of trusted certificates. */
  readonly trusted: string;
  readonly now: Date;
}

export function isValidX509CertChain(input: CertChainInput): boolean {
  const chain = parseBundle(input.chain);
  const trusted = parseBundle(input.trusted);
  if (chain === null || trusted === null) return false;
  const [target, ...untrusted] = chain;
  if (target === undefined || !isCurrent(target, input.now)) return false;
  return reachesTrust(target, { trusted, untrusted, now: input.now }, 0);
}
