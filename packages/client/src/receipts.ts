/**
 * Receipts verified on the client, with only the service certificate as trust anchor.
 *
 * JSON receipt (CCF's describe_receipt_v1, `GET /app/receipt`):
 *   leaf = SHA-256(write_set_digest || SHA-256(utf8(commit_evidence)) || claims_digest), or the
 *          receipt's `leaf` for a signature transaction;
 *   root = the leaf folded with `proof`: {left: h} gives SHA-256(h || acc), {right: h}
 *          SHA-256(acc || h);
 *   `signature` is the node key's DER ECDSA over root taken as a SHA-256 digest (prehashed:
 *          WebCrypto cannot verify a prehash, so @noble/curves does), node_id is the SHA-256
 *          of the node key's SPKI, and `cert` is issued by the service certificate, directly or
 *          through one of `service_endorsements` the service certificate issued.
 * COSE receipt (CCF 6, `Accept: application/cose`): a tagged COSE_Sign1 by the service key
 *   (kid = hex SHA-256 of its SPKI) with a detached payload and vds (395) = 2; unprotected
 *   header 396 holds {-1: [bstr .cbor {1: [write_set_digest, commit_evidence, claims_digest],
 *   2: [[left, hash]...]}]}; each proof's root is the payload the signature must verify over.
 *
 * A receipt that does not verify throws ClientError(ReceiptInvalid) whose message says which
 * check failed; a verified one returns what was proven.
 */
import { p256, p384, p521 } from "@noble/curves/nist.js";
import {
  owned,
  concatBytes,
  equalBytes,
  fromBase64,
  fromHex,
  sha256,
  toHex,
  utf8,
} from "./bytes.js";
import { decodeCbor, decodeSign1, sigStructure, HEADER_ALG, HEADER_KID } from "./cose.js";
import { ClientError, ClientErrorCode } from "./errors.js";
import { ALG_HASH, CURVE_ALG, type CoseAlg } from "./signer.js";
import { ecCurveOf, isIssuedBy, keyIdOf, parseCertificate, spkiDer, type EcCurve } from "./x509.js";
import type { X509Certificate } from "@peculiar/x509";

const HEADER_VDS = 395;
const HEADER_VDP = 396;
const VDP_INCLUSION_PROOFS = -1;
const VDS_CCF_LEDGER_SHA256 = 2;
/** A tree of at most 2^64 leaves has paths of at most 64 steps. */
const PATH_STEPS_MAX = 64;

export type ProofStep = { readonly left: Uint8Array } | { readonly right: Uint8Array };

export interface VerifiedReceipt {
  /** The Merkle root the node (JSON) or service (COSE) signed. */
  readonly root: Uint8Array;
  /** The claims digest the receipt proves (zeros when the transaction set none). */
  readonly claimsDigest: Uint8Array | null;
  /** "ce:<view>.<seqno>:<hex>", or null for a signature transaction's JSON receipt. */
  readonly commitEvidence: string | null;
}

export interface ReceiptTrust {
  /** PEM of the service certificate. */
  readonly serviceCertPem: string;
  /** COSE: PEMs of previous service identities the service certificate issued (recoveries). */
  readonly serviceEndorsements?: readonly string[];
  /** When given, the receipt's claims digest must equal it. */
  readonly claimsDigest?: Uint8Array;
}

function invalid(reason: string): never {
  throw new ClientError({ code: ClientErrorCode.ReceiptInvalid }, `receipt is invalid: ${reason}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function digestField(value: unknown, field: string): Uint8Array {
  const bytes = typeof value === "string" ? fromHex(value) : null;
  if (bytes === null || bytes.byteLength !== 32)
    return invalid(`${field} is not 64 hex characters`);
  return bytes;
}

async function hashNode(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(concatBytes([left, right]));
}

/** The root a leaf and its leaf-to-root path give. */
export async function foldPath(leaf: Uint8Array, path: readonly ProofStep[]): Promise<Uint8Array> {
  let acc = leaf;
  for (const step of path) {
    acc = "left" in step ? await hashNode(step.left, acc) : await hashNode(acc, step.right);
  }
  return acc;
}

/** CCF's transaction leaf. */
export async function txLeaf(
  writeSetDigest: Uint8Array,
  commitEvidence: string,
  claimsDigest: Uint8Array,
): Promise<Uint8Array> {
  const evidenceDigest = await sha256(utf8(commitEvidence));
  return sha256(concatBytes([writeSetDigest, evidenceDigest, claimsDigest]));
}

function certOf(pem: unknown, field: string): X509Certificate {
  const cert = typeof pem === "string" ? parseCertificate(pem) : null;
  if (cert === null) return invalid(`${field} is not a PEM X.509 certificate`);
  return cert;
}

function curveOf(cert: X509Certificate, field: string): EcCurve {
  const curve = ecCurveOf(cert);
  if (curve === null) return invalid(`${field}'s key is not EC P-256, P-384 or P-521`);
  return curve;
}

/** The certificate's public key as a WebCrypto ECDSA verifying key. */
function verifyingKey(cert: X509Certificate, curve: EcCurve): Promise<CryptoKey> {
  const algorithm = { name: "ECDSA", namedCurve: curve };
  return globalThis.crypto.subtle.importKey("spki", owned(spkiDer(cert)), algorithm, true, [
    "verify",
  ]);
}

/** The uncompressed EC point of a certificate's key (what @noble/curves verifies with). */
async function ecPoint(cert: X509Certificate, curve: EcCurve): Promise<Uint8Array> {
  const key = await verifyingKey(cert, curve);
  return new Uint8Array(await globalThis.crypto.subtle.exportKey("raw", key));
}

const NOBLE = { "P-256": p256, "P-384": p384, "P-521": p521 } as const;

function verifyPrehashed(
  curve: EcCurve,
  point: Uint8Array,
  digest: Uint8Array,
  der: Uint8Array,
): boolean {
  try {
    return NOBLE[curve].verify(der, digest, point, { prehash: false, lowS: false, format: "der" });
  } catch (err: unknown) {
    // @noble/curves throws plain Errors for malformed DER or out-of-range r, s: not valid.
    if (err instanceof Error) return false;
    throw err;
  }
}

function parseProof(value: unknown): ProofStep[] {
  if (!Array.isArray(value)) return invalid("proof is not an array");
  if (value.length > PATH_STEPS_MAX) return invalid(`proof has more than ${PATH_STEPS_MAX} steps`);
  return value.map((step: unknown, i) => {
    if (isRecord(step) && Object.keys(step).length === 1) {
      if ("left" in step) return { left: digestField(step.left, `proof[${i}].left`) };
      if ("right" in step) return { right: digestField(step.right, `proof[${i}].right`) };
    }
    return invalid(`proof[${i}] is not {"left": hex} or {"right": hex}`);
  });
}

/** The leaf a JSON receipt proves, with its claims digest and commit evidence. */
async function jsonLeaf(
  receipt: Record<string, unknown>,
): Promise<VerifiedReceipt & { leaf: Uint8Array }> {
  if ((receipt.leaf === undefined) === (receipt.leaf_components === undefined)) {
    return invalid('expected exactly one of "leaf" or "leaf_components"');
  }
  if (receipt.leaf !== undefined) {
    const leaf = digestField(receipt.leaf, "leaf");
    return { leaf, root: leaf, claimsDigest: null, commitEvidence: null };
  }
  const components = receipt.leaf_components;
  if (!isRecord(components)) return invalid("leaf_components is not an object");
  const evidence = components.commit_evidence;
  if (typeof evidence !== "string" || !/^ce:\d+\.\d+:[0-9a-f]+$/.test(evidence)) {
    return invalid('leaf_components.commit_evidence is not "ce:<view>.<seqno>:<hex>"');
  }
  const claimsDigest = digestField(components.claims_digest, "leaf_components.claims_digest");
  const writeSet = digestField(components.write_set_digest, "leaf_components.write_set_digest");
  const leaf = await txLeaf(writeSet, evidence, claimsDigest);
  return { leaf, root: leaf, claimsDigest, commitEvidence: evidence };
}

/** Whether the node certificate chains to the service certificate (maybe via an endorsement). */
async function chainsToService(
  node: X509Certificate,
  service: X509Certificate,
  endorsements: unknown,
): Promise<boolean> {
  if (await isIssuedBy(node, service)) return true;
  if (endorsements === undefined) return false;
  if (!Array.isArray(endorsements)) return invalid("service_endorsements is not an array");
  for (const [i, pem] of endorsements.entries()) {
    const endorsement = certOf(pem, `service_endorsements[${i}]`);
    if ((await isIssuedBy(endorsement, service)) && (await isIssuedBy(node, endorsement)))
      return true;
  }
  return false;
}

function checkClaims(found: Uint8Array | null, expected: Uint8Array | undefined): void {
  if (expected === undefined) return;
  if (found === null) invalid("the receipt has no claims digest to compare");
  if (!equalBytes(found, expected)) {
    invalid(`claims digest ${toHex(found)} is not the expected ${toHex(expected)}`);
  }
}

/**
 * Verifies a JSON receipt (as parsed from `GET /app/receipt`) against the service certificate.
 * Throws ClientError(ReceiptInvalid) naming the failed check.
 */
export async function verifyJsonReceipt(
  json: unknown,
  trust: ReceiptTrust,
): Promise<VerifiedReceipt> {
  if (!isRecord(json)) return invalid("not a JSON object");
  const service = certOf(trust.serviceCertPem, "the service certificate");
  const node = certOf(json.cert, "cert");
  const curve = curveOf(node, "cert");
  const nodeId = await keyIdOf(node);
  if (json.node_id !== nodeId) {
    return invalid(
      `node_id ${String(json.node_id)} is not the SHA-256 of the cert's key (${nodeId})`,
    );
  }
  const proven = await jsonLeaf(json);
  const root = await foldPath(proven.leaf, parseProof(json.proof));
  const signature = typeof json.signature === "string" ? fromBase64(json.signature) : null;
  if (signature === null) return invalid("signature is not base64");
  if (!verifyPrehashed(curve, await ecPoint(node, curve), root, signature)) {
    return invalid(`signature does not verify over root ${toHex(root)} with the cert's key`);
  }
  if (!(await chainsToService(node, service, json.service_endorsements))) {
    return invalid("cert is not issued by the service certificate (nor by an endorsement of it)");
  }
  checkClaims(proven.claimsDigest, trust.claimsDigest);
  return { root, claimsDigest: proven.claimsDigest, commitEvidence: proven.commitEvidence };
}

interface CoseProof {
  readonly writeSetDigest: Uint8Array;
  readonly commitEvidence: string;
  readonly claimsDigest: Uint8Array;
  readonly path: ProofStep[];
}

function bstr32(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== 32) {
    return invalid(`${what} is not a 32-byte byte string`);
  }
  return value;
}

function decodeCoseProof(bytes: unknown, at: string): CoseProof {
  if (!(bytes instanceof Uint8Array)) return invalid(`${at} is not a byte string`);
  const proof = decodeCbor(bytes, at);
  if (!(proof instanceof Map)) return invalid(`${at} is not a map {1: leaf, 2: path}`);
  const leaf: unknown = proof.get(1);
  const path: unknown = proof.get(2);
  if (!Array.isArray(leaf) || leaf.length !== 3 || typeof leaf[1] !== "string") {
    return invalid(`${at}.leaf is not [write_set_digest, commit_evidence, claims_digest]`);
  }
  if (!Array.isArray(path) || path.length > PATH_STEPS_MAX) {
    return invalid(`${at}.path is not an array of at most ${PATH_STEPS_MAX} steps`);
  }
  return {
    writeSetDigest: bstr32(leaf[0], `${at}.leaf[0]`),
    commitEvidence: leaf[1],
    claimsDigest: bstr32(leaf[2], `${at}.leaf[2]`),
    path: path.map((step: unknown, i) => {
      if (!Array.isArray(step) || step.length !== 2 || typeof step[0] !== "boolean") {
        return invalid(`${at}.path[${i}] is not [left: bool, hash: bstr]`);
      }
      const hash = bstr32(step[1], `${at}.path[${i}][1]`);
      return step[0] ? { left: hash } : { right: hash };
    }),
  };
}

function coseProofs(unprotected: ReadonlyMap<unknown, unknown>): CoseProof[] {
  const vdp = unprotected.get(HEADER_VDP);
  if (!(vdp instanceof Map)) return invalid(`unprotected header ${HEADER_VDP} (proofs) is missing`);
  const list: unknown = vdp.get(VDP_INCLUSION_PROOFS);
  if (!Array.isArray(list) || list.length === 0 || list.length > 16) {
    return invalid("no inclusion proofs (or more than 16)");
  }
  return list.map((bytes: unknown, i) => decodeCoseProof(bytes, `inclusion proof ${i}`));
}

/** The certificate whose key the kid names: the service's or an endorsement it issued. */
async function coseSigner(kid: Uint8Array, trust: ReceiptTrust): Promise<X509Certificate> {
  const service = certOf(trust.serviceCertPem, "the service certificate");
  const wanted = new TextDecoder().decode(kid);
  if ((await keyIdOf(service)) === wanted) return service;
  for (const [i, pem] of (trust.serviceEndorsements ?? []).entries()) {
    const endorsement = certOf(pem, `service endorsement ${i}`);
    if ((await keyIdOf(endorsement)) !== wanted) continue;
    if (await isIssuedBy(endorsement, service)) return endorsement;
    return invalid(
      `kid names service endorsement ${i}, which the service certificate did not issue`,
    );
  }
  return invalid(`kid ${JSON.stringify(wanted)} is not the service key's`);
}

/**
 * Verifies a COSE receipt's bytes against the service certificate (or an endorsed previous
 * identity). Throws ClientError(ReceiptInvalid) naming the failed check.
 */
export async function verifyCoseReceipt(
  bytes: Uint8Array,
  trust: ReceiptTrust,
): Promise<VerifiedReceipt> {
  const message = decodeSign1(bytes);
  if (message.payload !== null) invalid("the payload is attached; a COSE receipt's is detached");
  const kid = message.protectedHeader.get(HEADER_KID);
  if (!(kid instanceof Uint8Array)) return invalid("kid (4) is not a byte string");
  if (message.protectedHeader.get(HEADER_VDS) !== VDS_CCF_LEDGER_SHA256) {
    invalid(`vds (${HEADER_VDS}) is not ${VDS_CCF_LEDGER_SHA256} (CCF ledger, SHA-256)`);
  }
  const signer = await coseSigner(kid, trust);
  const curve = curveOf(signer, "the signing certificate");
  const alg = CURVE_ALG[curve];
  if (message.protectedHeader.get(HEADER_ALG) !== alg) {
    invalid(
      `alg ${String(message.protectedHeader.get(HEADER_ALG))} is not ${alg} for a ${curve} key`,
    );
  }
  const subtle = globalThis.crypto.subtle;
  const key = await verifyingKey(signer, curve);
  let last: VerifiedReceipt | null = null;
  for (const [i, proof] of coseProofs(message.unprotectedHeader).entries()) {
    const leaf = await txLeaf(proof.writeSetDigest, proof.commitEvidence, proof.claimsDigest);
    const root = await foldPath(leaf, proof.path);
    const tbs = sigStructure(message.protectedBytes, root);
    const hash = ALG_HASH[alg as CoseAlg];
    if (
      !(await subtle.verify({ name: "ECDSA", hash }, key, owned(message.signature), owned(tbs)))
    ) {
      invalid(`inclusion proof ${i}: the signature does not verify over root ${toHex(root)}`);
    }
    checkClaims(proof.claimsDigest, trust.claimsDigest);
    last = { root, claimsDigest: proof.claimsDigest, commitEvidence: proof.commitEvidence };
  }
  return last ?? invalid("no inclusion proofs");
}

/** Whether bytes look like a COSE_Sign1 (tag 18 or an array of 4) rather than JSON text. */
export function isCoseBytes(bytes: Uint8Array): boolean {
  return bytes[0] === 0xd2 || bytes[0] === 0x84;
}
