/**
 * did:x509 resolution (the DID method of https://github.com/microsoft/did-x509, as CCF 6 uses it
 * through didx509cpp for UVM endorsements): which public key a certificate chain proves for a
 * DID such as `did:x509:0:sha256:<base64url CA fingerprint>::eku:<OID>`.
 *
 * A chain (leaf first, DER) resolves a DID when:
 *  - it has at least two certificates, each issued and signed by the next, and the last is
 *    self-signed (it is taken as the trust anchor; validity dates are ignored, as CCF does);
 *  - the DID is `did:x509:0:<sha256|sha384|sha512>:<fingerprint>` followed by one or more
 *    `::`-separated policies, and some certificate other than the leaf has that base64url
 *    fingerprint of its DER;
 *  - every policy holds for the leaf: `eku:<OID>` (an extended key usage), `subject:<key>:
 *    <value>...` (each value, URL-unescaped, found within the subject's field; "S" means "ST"),
 *    `san:<dns|email|uri>:<value>` (a subject alternative name). `fulcio-issuer` is not
 *    supported.
 * The result is the leaf's public key. Not checked (as didx509cpp does): the leaf's key usage
 * extension allowing digital signatures.
 *
 * Pure: node:crypto only. Throws DidX509Error with a reason a person can act on.
 */
import { hash, X509Certificate, type KeyObject } from "node:crypto";
import { CcfError, isForeignError } from "../base/errors.js";

export enum DidX509ErrorCode {
  MalformedDid = "MalformedDid",
  BadChain = "BadChain",
  FingerprintMismatch = "FingerprintMismatch",
  PolicyFailed = "PolicyFailed",
  UnsupportedPolicy = "UnsupportedPolicy",
}
export type DidX509ErrorType = { code: DidX509ErrorCode };
export class DidX509Error extends CcfError<DidX509ErrorType> {}

function fail(code: DidX509ErrorCode, message: string): never {
  throw new DidX509Error({ code }, message);
}

const FINGERPRINT_ALGS: Readonly<Record<string, string>> = {
  sha256: "sha256",
  sha384: "sha384",
  sha512: "sha512",
};

interface ParsedDid {
  fingerprintAlg: string;
  fingerprint: string;
  policies: { name: string; args: string[] }[];
}

export function parseDidX509(did: string): ParsedDid {
  const [prefix, ...policyTexts] = did.split("::");
  const head = (prefix ?? "").split(":");
  if (head.length !== 5 || head[0] !== "did" || head[1] !== "x509") {
    fail(DidX509ErrorCode.MalformedDid, `${JSON.stringify(did)} is not a did:x509 DID`);
  }
  if (head[2] !== "0")
    fail(DidX509ErrorCode.MalformedDid, `unsupported did:x509 version ${head[2]}`);
  const fingerprintAlg = FINGERPRINT_ALGS[head[3]!];
  if (fingerprintAlg === undefined) {
    fail(DidX509ErrorCode.MalformedDid, `unsupported fingerprint algorithm ${head[3]}`);
  }
  if (policyTexts.length === 0) fail(DidX509ErrorCode.MalformedDid, "the DID has no policy");
  const policies = policyTexts.map((text) => {
    const [name, ...args] = text.split(":");
    if (name === undefined || name === "" || args.length === 0) {
      fail(DidX509ErrorCode.MalformedDid, `invalid policy ${JSON.stringify(text)}`);
    }
    return { name, args };
  });
  return { fingerprintAlg, fingerprint: head[4]!, policies };
}

function parseChain(chainDer: readonly Uint8Array[]): X509Certificate[] {
  if (chainDer.length < 2) fail(DidX509ErrorCode.BadChain, "the certificate chain is too short");
  return chainDer.map((der, i) => {
    try {
      return new X509Certificate(der);
    } catch (err: unknown) {
      if (!isForeignError(err)) throw err;
      return fail(DidX509ErrorCode.BadChain, `certificate ${i} does not parse: ${err.message}`);
    }
  });
}

function checkChain(chain: readonly X509Certificate[]): void {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1] ?? cert;
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      const what = i + 1 < chain.length ? `certificate ${i + 1}` : "itself (the root)";
      fail(
        DidX509ErrorCode.BadChain,
        `certificate ${i} (${cert.subject}) is not signed by ${what}`,
      );
    }
  }
}

function checkFingerprint(chain: readonly X509Certificate[], did: ParsedDid): void {
  const found = chain
    .slice(1)
    .some((cert) => hash(did.fingerprintAlg, cert.raw, "base64url") === did.fingerprint);
  if (!found) {
    fail(
      DidX509ErrorCode.FingerprintMismatch,
      `no CA certificate in the chain has the DID's ${did.fingerprintAlg} fingerprint ` +
        did.fingerprint,
    );
  }
}

function unescape(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch (err: unknown) {
    if (!(err instanceof URIError)) throw err;
    return fail(DidX509ErrorCode.MalformedDid, `${JSON.stringify(text)} is not URL-escaped text`);
  }
}

/** The subject's fields: key -> values, from node's "KEY=value" lines. */
function subjectFields(cert: X509Certificate): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const line of cert.subject.split("\n")) {
    const at = line.indexOf("=");
    if (at < 0) continue;
    const key = line.slice(0, at);
    fields.set(key, [...(fields.get(key) ?? []), line.slice(at + 1)]);
  }
  return fields;
}

function checkSubject(leaf: X509Certificate, args: readonly string[]): void {
  if (args.length % 2 !== 0) fail(DidX509ErrorCode.MalformedDid, "subject: key-value pairs needed");
  const fields = subjectFields(leaf);
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i] === "S" ? "ST" : args[i]!;
    const value = unescape(args[i + 1]!);
    if (seen.has(key)) fail(DidX509ErrorCode.MalformedDid, `subject: duplicate field ${key}`);
    seen.add(key);
    if (!(fields.get(key) ?? []).some((v) => v.includes(value))) {
      fail(DidX509ErrorCode.PolicyFailed, `the leaf's subject has no ${key}=${value}`);
    }
  }
}

const SAN_PREFIXES: Readonly<Record<string, string>> = {
  dns: "DNS:",
  email: "email:",
  uri: "URI:",
};

function checkSan(leaf: X509Certificate, args: readonly string[]): void {
  const prefix = SAN_PREFIXES[args[0] ?? ""];
  if (args.length !== 2 || prefix === undefined) {
    fail(DidX509ErrorCode.MalformedDid, "san: one type (dns, email, uri) and one value needed");
  }
  const wanted = prefix + unescape(args[1]!);
  const names = (leaf.subjectAltName ?? "").split(", ");
  if (!names.includes(wanted)) {
    fail(DidX509ErrorCode.PolicyFailed, `the leaf has no subject alternative name ${wanted}`);
  }
}

function checkPolicy(leaf: X509Certificate, policy: { name: string; args: string[] }): void {
  switch (policy.name) {
    case "eku": {
      if (policy.args.length !== 1) fail(DidX509ErrorCode.MalformedDid, "eku: one OID needed");
      const oid = policy.args[0]!;
      if (!(leaf.keyUsage ?? []).includes(oid)) {
        fail(
          DidX509ErrorCode.PolicyFailed,
          `the leaf certificate has no extended key usage ${oid}`,
        );
      }
      return;
    }
    case "subject":
      return checkSubject(leaf, policy.args);
    case "san":
      return checkSan(leaf, policy.args);
    default:
      fail(DidX509ErrorCode.UnsupportedPolicy, `unsupported did:x509 policy ${policy.name}`);
  }
}

/** The leaf's public key, once `chainDer` (leaf first) is shown to resolve `did`. */
export function resolveDidX509(chainDer: readonly Uint8Array[], did: string): KeyObject {
  const parsed = parseDidX509(did);
  const chain = parseChain(chainDer);
  checkChain(chain);
  checkFingerprint(chain, parsed);
  const leaf = chain[0]!;
  for (const policy of parsed.policies) checkPolicy(leaf, policy);
  return leaf.publicKey;
}
