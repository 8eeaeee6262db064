/**
 * COSE receipts (ccf-compatibility.md §6.5): CCF 6's CBOR receipt of a transaction. It is the
 * COSE signature of the signature transaction that covers the transaction (the service key's
 * COSE_Sign1 over the Merkle root, payload detached; §6.4) with the transaction's inclusion proof
 * added in the unprotected header, which the signature does not cover. The layout is CCF's
 * (its ccf-receipt.cddl, the profile of the IETF COSE receipts draft for CCF ledgers):
 *
 *   receipt = #6.18([
 *     protected:   bstr .cbor {1: alg, 4: kid, 15: {1: iss, 2: sub, 6: iat}, 395: vds,
 *                              "ccf.v1": {"txid": "<view>.<seqno>"}},
 *     unprotected: {396: {-1: [+ bstr .cbor proof]}},
 *     payload:     nil,                     (the root, detached)
 *     signature:   bstr])
 *   proof = {1: [write_set_digest: bstr .size 32, commit_evidence: tstr,
 *                claims_digest: bstr .size 32],
 *            2: [* [left: bool, hash: bstr .size 32]]}     (leaf to root)
 *
 * Verification (what CCF's `ccf.cose.verify_receipt` does):
 *   kid = the bytes of the lowercase hex SHA-256 of the signer's SPKI DER;  vds = 2 (CCF ledger,
 *   SHA-256);  for each proof, acc = SHA-256(write_set_digest || SHA-256(commit_evidence) ||
 *   claims_digest), then per step acc = SHA-256(hash || acc) when left is true, else
 *   SHA-256(acc || hash);  the signature verifies with acc as the detached payload.
 * The signer is the service certificate's key or, for transactions of a service before a
 * disaster recovery, a previous identity given as a service endorsement that the service
 * certificate issued (§8.4).
 *
 * The stored signature, its value codec and its header labels are src/ledger/cose-signature.ts's;
 * this module adds the proof, and decodes and verifies receipts.
 *
 * Invariants: a decoded CoseReceipt is well-formed (tagged, detached, kid a bstr, vds an integer,
 * 1..INCLUSION_PROOFS_MAX proofs of 32-byte digests and at most PATH_STEPS_MAX steps); whether it
 * is valid is verifyCoseReceipt's question, answered as a value. No IO.
 */
import { assert } from "../base/assert.js";
import { equalBytes, fromHex, fromUtf8, toHex, utf8 } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";
import { CertError, isIssuedBy, publicKeyOfCert } from "../crypto/certs.js";
import {
  COSE_HEADER_KID,
  CoseError,
  decodeCborItem,
  decodeSign1,
  encodeCborItem,
  encodeSign1WithUnprotected,
  verifySign1,
  type CoseHeaderMap,
  type Sign1Message,
} from "../crypto/cose.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import { publicKeyId } from "../crypto/identity.js";
import {
  CCF_HEADER,
  CCF_HEADER_TXID,
  COSE_HEADER_CWT,
  COSE_HEADER_VDS,
  CWT_IAT,
  CWT_ISS,
  CWT_SUB,
  VDS_CCF_LEDGER_SHA256,
} from "./cose-signature.js";
import { foldProof, type ProofStep } from "./merkle/proof.js";
import type { Receipt } from "./receipt.js";
import { txLeaf } from "./tx-leaf.js";

/** Unprotected header label of the verifiable data proofs, and its inclusion-proof key. */
export const COSE_HEADER_VDP = 396;
export const VDP_INCLUSION_PROOFS = -1;
const PROOF_LEAF = 1;
const PROOF_PATH = 2;
/**
 * What a detached message is decoded with before its root is known (the root comes from each
 * proof); verification substitutes the root.
 */
const PAYLOAD_PLACEHOLDER = new Uint8Array(0);
/** The CDDL bounds a commit evidence to 1..1024 bytes. */
const COMMIT_EVIDENCE_BYTES_MAX = 1024;
/** A tree of at most 2^64 leaves has paths of at most 64 steps. */
export const PATH_STEPS_MAX = 64;
/** CCF sends one proof; a few more are accepted, never an unbounded list. */
export const INCLUSION_PROOFS_MAX = 16;

export enum CoseReceiptErrorCode {
  /** The bytes are not a COSE receipt in CCF's layout. */
  MalformedReceipt = "MalformedReceipt",
  /** The stored COSE signature a receipt is built on is not a detached COSE_Sign1. */
  MalformedCoseSignature = "MalformedCoseSignature",
}
/** `path` names the offending part, e.g. "unprotected[396][-1][0].path[3]". */
export type CoseReceiptErrorType = { code: CoseReceiptErrorCode; path: string };
export class CoseReceiptError extends CcfError<CoseReceiptErrorType> {}

function fail(path: string, problem: string): never {
  throw new CoseReceiptError(
    { code: CoseReceiptErrorCode.MalformedReceipt, path },
    `${path}: ${problem}`,
  );
}

function badSignature(problem: string): never {
  throw new CoseReceiptError(
    { code: CoseReceiptErrorCode.MalformedCoseSignature, path: "cose_signature" },
    `COSE signature: ${problem}`,
  );
}

/** A transaction's leaf components and its path to the signed root. */
export interface CoseInclusionProof {
  /** Invariant: 32 bytes. */
  readonly writeSetDigest: Uint8Array;
  /** Invariant: 1..1024 bytes of UTF-8 ("ce:<view>.<seqno>:<hex>" when CCF or we wrote it). */
  readonly commitEvidence: string;
  /** Invariant: 32 bytes; zeros when the transaction set no claims. */
  readonly claimsDigest: Uint8Array;
  /** Leaf to root; invariant: at most PATH_STEPS_MAX steps of 32-byte hashes. */
  readonly path: readonly ProofStep[];
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** A JSON receipt's proof in COSE form; null for a signature transaction's receipt (no leaf). */
export function coseProofOfReceipt(receipt: Receipt): CoseInclusionProof | null {
  const components = receipt.leaf_components;
  if (components === undefined) return null;
  const digest = (hex: string): Uint8Array => {
    const bytes = fromHex(hex);
    assert(bytes !== null && bytes.byteLength === SHA256_BYTES, "receipt digests are 32 bytes");
    return bytes;
  };
  return {
    writeSetDigest: digest(components.write_set_digest),
    commitEvidence: components.commit_evidence,
    claimsDigest: digest(components.claims_digest),
    path: receipt.proof.map((step) =>
      "left" in step ? { left: digest(step.left) } : { right: digest(step.right) },
    ),
  };
}

/** CCF's CBOR inclusion proof: {1: [wsd, ce, cd], 2: [[left, hash], ...]}. */
export function encodeInclusionProof(proof: CoseInclusionProof): Uint8Array {
  const leaf = [proof.writeSetDigest, proof.commitEvidence, proof.claimsDigest];
  const path = proof.path.map((step) => ("left" in step ? [true, step.left] : [false, step.right]));
  return encodeCborItem(
    new Map<number, unknown>([
      [PROOF_LEAF, leaf],
      [PROOF_PATH, path],
    ]),
  );
}

/**
 * The COSE receipt of a transaction: the covering signature transaction's stored COSE signature
 * with `proof` in its unprotected header, as CCF's logging sample builds it. Throws
 * MalformedCoseSignature when `coseSign1` is not a detached COSE_Sign1.
 */
export function encodeCoseReceipt(coseSign1: Uint8Array, proof: CoseInclusionProof): Uint8Array {
  let message: Sign1Message;
  try {
    message = decodeSign1(coseSign1, { requireTag: true, detachedPayload: PAYLOAD_PLACEHOLDER });
  } catch (err: unknown) {
    if (err instanceof CoseError) return badSignature(err.message);
    throw err;
  }
  const proofs = new Map<number, unknown>([[VDP_INCLUSION_PROOFS, [encodeInclusionProof(proof)]]]);
  const unprotected = new Map([[COSE_HEADER_VDP, proofs]]);
  return encodeSign1WithUnprotected(message, unprotected, { detached: true });
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** The optional claims of the protected header (CWT and "ccf.v1"), for display. */
export interface CoseReceiptClaims {
  readonly issuer?: string;
  readonly subject?: string;
  /** Seconds since the epoch. */
  readonly issuedAt?: number;
  /** The txId of the signature transaction that signed the root ("<view>.<seqno>"). */
  readonly txid?: string;
}

export interface CoseReceipt {
  /** Invariant: its payload was nil (detached); `payload` holds a placeholder, not the root. */
  readonly message: Sign1Message;
  readonly kid: Uint8Array;
  /** Invariant: a safe integer (verifyCoseReceipt checks it is VDS_CCF_LEDGER_SHA256). */
  readonly vds: number;
  /** Invariant: 1..INCLUSION_PROOFS_MAX proofs. */
  readonly proofs: readonly CoseInclusionProof[];
  readonly claims: CoseReceiptClaims;
}

function isCborMap(value: unknown): value is ReadonlyMap<unknown, unknown> {
  return value instanceof Map;
}

function bstr32(value: unknown, path: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== SHA256_BYTES) {
    return fail(path, "expected a 32-byte byte string");
  }
  return new Uint8Array(value);
}

function safeInt(value: unknown, path: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    return fail(path, "expected an integer");
  }
  return value;
}

function text(value: unknown, path: string): string {
  if (typeof value !== "string") return fail(path, "expected a text string");
  return value;
}

function decodeLeaf(value: unknown, path: string): Omit<CoseInclusionProof, "path"> {
  if (!Array.isArray(value) || value.length !== 3) {
    return fail(path, "expected [write_set_digest, commit_evidence, claims_digest]");
  }
  const commitEvidence = text(value[1], `${path}[1]`);
  const size = utf8(commitEvidence).byteLength;
  if (size < 1 || size > COMMIT_EVIDENCE_BYTES_MAX) {
    fail(`${path}[1]`, `commit evidence must be 1 to ${COMMIT_EVIDENCE_BYTES_MAX} bytes`);
  }
  return {
    writeSetDigest: bstr32(value[0], `${path}[0]`),
    commitEvidence,
    claimsDigest: bstr32(value[2], `${path}[2]`),
  };
}

function decodePath(value: unknown, path: string): ProofStep[] {
  if (!Array.isArray(value)) return fail(path, "expected an array of [left, hash] steps");
  if (value.length > PATH_STEPS_MAX) fail(path, `more than ${PATH_STEPS_MAX} steps`);
  return value.map((step: unknown, i): ProofStep => {
    const at = `${path}[${i}]`;
    if (!Array.isArray(step) || step.length !== 2 || typeof step[0] !== "boolean") {
      return fail(at, "expected [left: bool, hash: bstr]");
    }
    const hash = bstr32(step[1], `${at}[1]`);
    return step[0] ? { left: hash } : { right: hash };
  });
}

function decodeInclusionProof(bytes: unknown, path: string): CoseInclusionProof {
  if (!(bytes instanceof Uint8Array)) return fail(path, "expected a byte string");
  let item: unknown;
  try {
    item = decodeCborItem(bytes);
  } catch (err: unknown) {
    if (err instanceof CoseError) return fail(path, `not one CBOR item (${err.message})`);
    throw err;
  }
  if (!isCborMap(item)) return fail(path, "expected a CBOR map {1: leaf, 2: path}");
  if (!item.has(PROOF_LEAF)) fail(`${path}.leaf`, "missing (label 1)");
  if (!item.has(PROOF_PATH)) fail(`${path}.path`, "missing (label 2)");
  return {
    ...decodeLeaf(item.get(PROOF_LEAF), `${path}.leaf`),
    path: decodePath(item.get(PROOF_PATH), `${path}.path`),
  };
}

function decodeProofs(unprotected: CoseHeaderMap): CoseInclusionProof[] {
  const vdpPath = `unprotected[${COSE_HEADER_VDP}]`;
  const vdp = unprotected.get(COSE_HEADER_VDP);
  if (vdp === undefined) return fail(vdpPath, "missing: no verifiable data proof");
  if (!isCborMap(vdp)) return fail(vdpPath, "expected a map");
  const listPath = `${vdpPath}[${VDP_INCLUSION_PROOFS}]`;
  const list = vdp.get(VDP_INCLUSION_PROOFS);
  if (list === undefined) return fail(listPath, "missing: no inclusion proofs");
  if (!Array.isArray(list) || list.length === 0) {
    return fail(listPath, "expected a non-empty array of inclusion proofs");
  }
  if (list.length > INCLUSION_PROOFS_MAX) {
    fail(listPath, `more than ${INCLUSION_PROOFS_MAX} inclusion proofs`);
  }
  return list.map((proof: unknown, i) => decodeInclusionProof(proof, `${listPath}[${i}]`));
}

function decodeClaims(header: CoseHeaderMap): CoseReceiptClaims {
  const claims: { -readonly [K in keyof CoseReceiptClaims]: CoseReceiptClaims[K] } = {};
  const cwt = header.get(COSE_HEADER_CWT);
  if (cwt !== undefined) {
    const path = `protected[${COSE_HEADER_CWT}]`;
    if (!isCborMap(cwt)) return fail(path, "expected a CWT claims map");
    if (cwt.has(CWT_ISS)) claims.issuer = text(cwt.get(CWT_ISS), `${path}[${CWT_ISS}]`);
    if (cwt.has(CWT_SUB)) claims.subject = text(cwt.get(CWT_SUB), `${path}[${CWT_SUB}]`);
    if (cwt.has(CWT_IAT)) claims.issuedAt = safeInt(cwt.get(CWT_IAT), `${path}[${CWT_IAT}]`);
  }
  const ccf = header.get(CCF_HEADER);
  if (ccf !== undefined) {
    const path = `protected["${CCF_HEADER}"]`;
    if (!isCborMap(ccf)) return fail(path, "expected a map");
    if (ccf.has(CCF_HEADER_TXID)) {
      claims.txid = text(ccf.get(CCF_HEADER_TXID), `${path}.${CCF_HEADER_TXID}`);
    }
  }
  return claims;
}

/**
 * Parses a COSE receipt in CCF's layout (see the module comment). Throws
 * CoseReceiptError(MalformedReceipt) naming the offending part; never returns partial data.
 */
export function decodeCoseReceipt(bytes: Uint8Array): CoseReceipt {
  let message: Sign1Message;
  try {
    message = decodeSign1(bytes, { requireTag: true, detachedPayload: PAYLOAD_PLACEHOLDER });
  } catch (err: unknown) {
    if (err instanceof CoseError) return fail("COSE_Sign1", err.message);
    throw err;
  }
  const header = message.protectedHeader;
  const kid = header.get(COSE_HEADER_KID);
  if (!(kid instanceof Uint8Array)) return fail("protected[4]", "kid must be a byte string");
  const vds = header.get(COSE_HEADER_VDS);
  if (vds === undefined) return fail(`protected[${COSE_HEADER_VDS}]`, "missing: no vds");
  return {
    message,
    kid: new Uint8Array(kid),
    vds: safeInt(vds, `protected[${COSE_HEADER_VDS}]`),
    proofs: decodeProofs(message.unprotectedHeader),
    claims: decodeClaims(header),
  };
}

/** Whether `bytes` start like a COSE_Sign1 (tag 18, or an array of 4) rather than JSON text. */
export function looksLikeCoseSign1(bytes: Uint8Array): boolean {
  const first = bytes[0];
  return first === 0xd2 || first === 0x84;
}

// ---------------------------------------------------------------------------------------------
// Verification

/** The trust anchors a COSE receipt is checked against. */
export interface CoseReceiptTrust {
  /** PEM of the current service certificate. */
  readonly serviceCertPem: string;
  /**
   * PEMs of previous service identities re-issued by the service certificate after a recovery
   * (a JSON receipt's `service_endorsements`, §8.4). Each one the service certificate issued
   * may have signed the receipt; any other is refused when the receipt names its key.
   */
  readonly serviceEndorsements?: readonly string[];
}

export interface VerifyCoseReceiptOptions {
  /** When given, every proof's claims digest must equal it (CCF's verifier requires one). */
  readonly claimsDigest?: Uint8Array;
}

/** Which trusted key signed: the service certificate's, or endorsement `index`'s. */
export type CoseReceiptSigner =
  { readonly kind: "service" } | { readonly kind: "endorsement"; readonly index: number };

export type CoseReceiptVerification =
  | {
      readonly kind: "valid";
      readonly signer: CoseReceiptSigner;
      /** The root each proof folds to, in order; the signature verifies over each. */
      readonly roots: readonly Uint8Array[];
    }
  | { readonly kind: "invalid"; readonly reason: string };

type SignerChoice =
  | { readonly kind: "found"; readonly signer: CoseReceiptSigner; readonly pem: string }
  | { readonly kind: "none"; readonly reason: string };

/** The kid a key gives: the bytes of the lowercase hex SHA-256 of its SPKI DER. */
export function coseKidOf(certPem: string): Uint8Array | null {
  try {
    return utf8(publicKeyId(publicKeyOfCert(certPem)));
  } catch (err: unknown) {
    if (err instanceof CertError) return null;
    throw err;
  }
}

function describeKid(kid: Uint8Array): string {
  const printable = kid.every((byte) => byte >= 0x20 && byte < 0x7f);
  return printable ? JSON.stringify(fromUtf8(kid)) : `h'${toHex(kid)}'`;
}

/** Finds the trusted certificate whose key the receipt's kid names. */
function chooseSigner(kid: Uint8Array, trust: CoseReceiptTrust): SignerChoice {
  const serviceKid = coseKidOf(trust.serviceCertPem);
  if (serviceKid === null) {
    return { kind: "none", reason: "service certificate is not a valid X.509 certificate" };
  }
  if (equalBytes(kid, serviceKid)) {
    return { kind: "found", signer: { kind: "service" }, pem: trust.serviceCertPem };
  }
  const endorsements = trust.serviceEndorsements ?? [];
  for (const [index, pem] of endorsements.entries()) {
    const endorsedKid = coseKidOf(pem);
    if (endorsedKid === null || !equalBytes(kid, endorsedKid)) continue;
    if (!isIssuedBy(pem, trust.serviceCertPem)) {
      return {
        kind: "none",
        reason:
          `kid names the key of service endorsement ${index}, which the service ` +
          "certificate did not issue",
      };
    }
    return { kind: "found", signer: { kind: "endorsement", index }, pem };
  }
  const others = endorsements.length === 0 ? "" : " nor of any service endorsement";
  return {
    kind: "none",
    reason:
      `kid ${describeKid(kid)} is not that of the service key ` +
      `(${describeKid(serviceKid)})${others}`,
  };
}

/** The root a proof claims: its leaf folded with its path. */
export function inclusionProofRoot(proof: CoseInclusionProof): Uint8Array {
  const evidenceDigest = sha256(utf8(proof.commitEvidence));
  const leaf = txLeaf(proof.writeSetDigest, evidenceDigest, proof.claimsDigest);
  return foldProof(leaf, proof.path);
}

function invalid(reason: string): CoseReceiptVerification {
  return { kind: "invalid", reason };
}

/**
 * Checks a decoded COSE receipt as CCF's verifier does (module comment), against the service
 * certificate or an endorsed previous identity. Every failure is an `invalid` result.
 */
export function verifyCoseReceipt(
  receipt: CoseReceipt,
  trust: CoseReceiptTrust,
  options: VerifyCoseReceiptOptions = {},
): CoseReceiptVerification {
  const choice = chooseSigner(receipt.kid, trust);
  if (choice.kind === "none") return invalid(choice.reason);
  if (receipt.vds !== VDS_CCF_LEDGER_SHA256) {
    return invalid(
      `vds (${COSE_HEADER_VDS}) is ${receipt.vds}, not ${VDS_CCF_LEDGER_SHA256} ` +
        "(CCF ledger, SHA-256)",
    );
  }
  const key = publicKeyOfCert(choice.pem);
  const roots: Uint8Array[] = [];
  for (const [i, proof] of receipt.proofs.entries()) {
    const root = inclusionProofRoot(proof);
    let verdict: ReturnType<typeof verifySign1>;
    try {
      verdict = verifySign1({ ...receipt.message, payload: root }, key);
    } catch (err: unknown) {
      if (err instanceof CoseError) return invalid(`the signer's key: ${err.message}`);
      throw err;
    }
    if (verdict.kind === "invalid") {
      return invalid(`inclusion proof ${i}: ${verdict.message} over root ${toHex(root)}`);
    }
    const expected = options.claimsDigest;
    if (expected !== undefined && !equalBytes(expected, proof.claimsDigest)) {
      return invalid(
        `inclusion proof ${i}: claims digest ${toHex(proof.claimsDigest)} is not the ` +
          `expected ${toHex(expected)}`,
      );
    }
    roots.push(root);
  }
  return { kind: "valid", signer: choice.signer, roots };
}
