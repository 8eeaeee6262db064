/**
 * CCF JSON receipts (ccf-compatibility.md §6.5, `describe_receipt_v1`): the proof that a
 * transaction is in the ledger, checkable offline with only the service certificate.
 *
 * A receipt carries the signing node's cert and id, its signature over a Merkle root, and either
 * the leaf components of the transaction plus a leaf-to-root proof, or (for a signature
 * transaction) the signed root itself as `leaf` with an empty proof.
 *
 * Verification (ccf-compatibility.md §6.4, §6.5):
 *   leaf = SHA-256(write_set_digest || SHA-256(utf8(commit_evidence)) || claims_digest)
 *   root = fold(proof, leaf) with {left: h} -> H(h || cur), {right: h} -> H(cur || h)
 *   signature = prehashed ECDSA by the node key over root
 *   node_id = SHA-256(SPKI DER of the cert key)
 *   cert issued by the service cert, or by a service endorsement that the service cert issued.
 *
 * Invariant: a parsed Receipt is well-formed (hex digests of 32 bytes, base64 signature, PEM
 * certs, commit evidence "ce:<view>.<seqno>:<64 hex>", exactly one of leaf / leaf_components);
 * whether it is *valid* is verifyReceipt's question, answered as a value, not an exception.
 */
import { fromBase64, fromHex, toBase64, toHex, utf8 } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";
import { isHexId } from "../base/ids.js";
import { ecdsaCurveOf, verifyDigest } from "../crypto/ecdsa.js";
import { CertError, isIssuedBy, publicKeyOfCert } from "../crypto/certs.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import { nodeIdFromPublicKey } from "../crypto/identity.js";
import { foldProof, type ProofStep } from "./merkle/proof.js";
import { txLeaf } from "./tx-leaf.js";

export type HexProofStep = { readonly left: string } | { readonly right: string };

export interface LeafComponents {
  /** Invariant: 64 hex chars (SHA-256 of the entry bytes). */
  readonly write_set_digest: string;
  /** Invariant: "ce:<view>.<seqno>:<64 hex nonce>". */
  readonly commit_evidence: string;
  /** Invariant: 64 hex chars; all zero when the transaction set no claims. */
  readonly claims_digest: string;
}

export interface Receipt {
  /** PEM of the signing node's certificate, endorsed by the service. */
  readonly cert: string;
  /** Invariant: lowercase 64-hex node id. */
  readonly node_id: string;
  /** Base64 DER ECDSA signature over the root. */
  readonly signature: string;
  readonly proof: readonly HexProofStep[];
  /** Present for ordinary transactions; absent when `leaf` is. */
  readonly leaf_components?: LeafComponents;
  /** Signature transactions: the signed root itself (proof empty). */
  readonly leaf?: string;
  /** Present after a recovery: previous service identities endorsed by the current one. */
  readonly service_endorsements?: readonly string[];
}

export enum ReceiptErrorCode {
  InvalidReceipt = "InvalidReceipt",
}
/** `path` names the offending field, e.g. "proof[2].left" or "leaf_components.claims_digest". */
export type ReceiptErrorType = { code: ReceiptErrorCode; path: string };
export class ReceiptError extends CcfError<ReceiptErrorType> {}

export type ReceiptVerification =
  | { readonly kind: "valid"; readonly root: Uint8Array }
  | { readonly kind: "invalid"; readonly reason: string };

// ---------------------------------------------------------------------------------------------
// Parsing

const HEX_DIGEST_RE = /^[0-9a-fA-F]{64}$/;
const COMMIT_EVIDENCE_RE = /^ce:(0|[1-9]\d{0,15})\.(0|[1-9]\d{0,15}):[0-9a-f]{64}$/;
const PEM_CERT_RE =
  /^\s*-----BEGIN CERTIFICATE-----\r?\n(?:[A-Za-z0-9+/=]{1,76}\r?\n)+-----END CERTIFICATE-----\s*$/;
const BASE64_NONEMPTY_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function fail(path: string, problem: string): never {
  throw new ReceiptError({ code: ReceiptErrorCode.InvalidReceipt, path }, `${path}: ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function str(value: unknown, path: string): string {
  if (typeof value !== "string") fail(path, `expected a string, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function hexDigest(value: unknown, path: string): string {
  const text = str(value, path);
  if (!HEX_DIGEST_RE.test(text)) fail(path, "expected 64 hex characters (a SHA-256 digest)");
  return text;
}

function pemCert(value: unknown, path: string): string {
  const text = str(value, path);
  if (!PEM_CERT_RE.test(text)) fail(path, "expected a PEM certificate");
  return text;
}

function parseProof(value: unknown): HexProofStep[] {
  if (!Array.isArray(value)) fail("proof", `expected an array, got ${describe(value)}`);
  return value.map((step: unknown, i): HexProofStep => {
    const path = `proof[${i}]`;
    if (!isRecord(step)) fail(path, `expected an object, got ${describe(step)}`);
    const keys = Object.keys(step);
    if (keys.length !== 1 || (keys[0] !== "left" && keys[0] !== "right")) {
      fail(path, 'expected exactly one of "left" or "right"');
    }
    return keys[0] === "left"
      ? { left: hexDigest(step.left, `${path}.left`) }
      : { right: hexDigest(step.right, `${path}.right`) };
  });
}

function parseLeafComponents(value: unknown): LeafComponents {
  const path = "leaf_components";
  if (!isRecord(value)) fail(path, `expected an object, got ${describe(value)}`);
  const commitEvidence = str(value.commit_evidence, `${path}.commit_evidence`);
  if (!COMMIT_EVIDENCE_RE.test(commitEvidence)) {
    fail(`${path}.commit_evidence`, 'expected "ce:<view>.<seqno>:<64 lowercase hex>"');
  }
  return {
    write_set_digest: hexDigest(value.write_set_digest, `${path}.write_set_digest`),
    commit_evidence: commitEvidence,
    claims_digest: hexDigest(value.claims_digest, `${path}.claims_digest`),
  };
}

function parseEndorsements(value: unknown): string[] {
  const path = "service_endorsements";
  if (!Array.isArray(value)) fail(path, `expected an array, got ${describe(value)}`);
  return value.map((pem: unknown, i) => pemCert(pem, `${path}[${i}]`));
}

/**
 * Validates the shape of a JSON receipt (already JSON.parse'd) and returns a copy. Unknown
 * top-level fields are ignored (forward compatibility); malformed known fields throw
 * ReceiptError(InvalidReceipt) naming the field.
 */
export function parseReceipt(json: unknown): Receipt {
  if (!isRecord(json)) fail("receipt", `expected a JSON object, got ${describe(json)}`);
  const nodeId = str(json.node_id, "node_id");
  if (!isHexId(nodeId)) fail("node_id", "expected 64 lowercase hex characters");
  const signature = str(json.signature, "signature");
  if (signature.length === 0 || !BASE64_NONEMPTY_RE.test(signature)) {
    fail("signature", "expected non-empty base64");
  }
  const hasLeaf = json.leaf !== undefined;
  const hasComponents = json.leaf_components !== undefined;
  if (hasLeaf === hasComponents) {
    fail("receipt", 'expected exactly one of "leaf" or "leaf_components"');
  }
  const receipt: {
    -readonly [K in keyof Receipt]: Receipt[K];
  } = {
    cert: pemCert(json.cert, "cert"),
    node_id: nodeId,
    signature,
    proof: parseProof(json.proof),
  };
  if (hasLeaf) receipt.leaf = hexDigest(json.leaf, "leaf");
  else receipt.leaf_components = parseLeafComponents(json.leaf_components);
  if (json.service_endorsements !== undefined) {
    receipt.service_endorsements = parseEndorsements(json.service_endorsements);
  }
  return receipt;
}

// ---------------------------------------------------------------------------------------------
// Roots and verification

function digestBytes(hex: string): Uint8Array {
  const bytes = fromHex(hex);
  // Callers pass parsed receipts; anything else is a programming error, reported loudly.
  if (bytes === null || bytes.byteLength !== SHA256_BYTES) {
    throw new ReceiptError(
      { code: ReceiptErrorCode.InvalidReceipt, path: "digest" },
      `not a 32-byte hex digest: ${JSON.stringify(hex)}`,
    );
  }
  return bytes;
}

/**
 * The leaf a receipt proves: its `leaf` (a signature transaction's signed root), or the
 * transaction leaf (tx-leaf.ts) of its components, whose commit evidence is hashed here.
 */
export function receiptLeaf(receipt: Receipt): Uint8Array {
  if (receipt.leaf !== undefined) return digestBytes(receipt.leaf);
  const components = receipt.leaf_components ?? digestMissing();
  return txLeaf(
    digestBytes(components.write_set_digest),
    sha256(utf8(components.commit_evidence)),
    digestBytes(components.claims_digest),
  );
}

function proofBytes(proof: readonly HexProofStep[]): ProofStep[] {
  return proof.map((step) =>
    "left" in step ? { left: digestBytes(step.left) } : { right: digestBytes(step.right) },
  );
}

/** The root a receipt claims: its leaf folded with its proof. */
export function receiptRoot(receipt: Receipt): Uint8Array {
  return foldProof(receiptLeaf(receipt), proofBytes(receipt.proof));
}

function digestMissing(): never {
  throw new ReceiptError(
    { code: ReceiptErrorCode.InvalidReceipt, path: "receipt" },
    'receipt has neither "leaf" nor "leaf_components"',
  );
}

function invalid(reason: string): ReceiptVerification {
  return { kind: "invalid", reason };
}

/** Why the receipt's cert does not chain to the service cert, or null when it does. */
function chainProblem(receipt: Receipt, serviceCertPem: string): string | null {
  if (isIssuedBy(receipt.cert, serviceCertPem)) return null;
  const endorsements = receipt.service_endorsements ?? [];
  for (const endorsement of endorsements) {
    if (isIssuedBy(endorsement, serviceCertPem) && isIssuedBy(receipt.cert, endorsement)) {
      return null;
    }
  }
  return endorsements.length === 0
    ? "node certificate is not issued by the service certificate"
    : "node certificate is not issued by the service certificate nor by any service " +
        "endorsement issued by it";
}

/** The public key of a certificate, or null when the text is not a certificate. */
function certKey(pem: string) {
  try {
    return publicKeyOfCert(pem);
  } catch (err: unknown) {
    if (err instanceof CertError) return null;
    throw err;
  }
}

/**
 * Checks a parsed receipt against the service certificate. Every failure, including an
 * unparseable cert or a key of the wrong type, is an `invalid` result with a reason.
 */
export function verifyReceipt(receipt: Receipt, serviceCertPem: string): ReceiptVerification {
  if (certKey(serviceCertPem) === null) {
    return invalid("service certificate is not a valid X.509 certificate");
  }
  const key = certKey(receipt.cert);
  if (key === null) return invalid("cert is not a valid X.509 certificate");
  if (ecdsaCurveOf(key) === null) return invalid("cert key is not an EC P-256 or P-384 key");
  const keyNodeId = nodeIdFromPublicKey(key);
  if (keyNodeId !== receipt.node_id) {
    return invalid(`node_id ${receipt.node_id} does not match the cert's key (${keyNodeId})`);
  }
  let root: Uint8Array;
  try {
    root = receiptRoot(receipt);
  } catch (err: unknown) {
    // Only receipts built without parseReceipt can get here with a malformed digest.
    if (err instanceof ReceiptError) return invalid(err.message);
    throw err;
  }
  const signature = fromBase64(receipt.signature);
  if (signature === null || !verifyDigest(key, root, signature)) {
    return invalid(
      `signature does not verify over root ${toHex(root)} (computed from the ` +
        "leaf and proof) with the cert's key",
    );
  }
  const problem = chainProblem(receipt, serviceCertPem);
  return problem === null ? { kind: "valid", root } : invalid(problem);
}

// ---------------------------------------------------------------------------------------------
// Building

export interface LeafComponentsInput {
  readonly writeSetDigest: Uint8Array;
  readonly commitEvidence: string;
  readonly claimsDigest: Uint8Array;
}

interface BuildReceiptCommon {
  readonly certPem: string;
  readonly nodeId: string;
  /** DER ECDSA signature over the root. */
  readonly signature: Uint8Array;
  readonly proof: readonly ProofStep[];
  readonly serviceEndorsements?: readonly string[];
}

export type BuildReceiptInput = BuildReceiptCommon &
  (
    | { readonly leafComponents: LeafComponentsInput; readonly leaf?: undefined }
    | { readonly leaf: Uint8Array; readonly leafComponents?: undefined }
  );

/** Encodes a receipt (hex digests, base64 signature) in CCF's JSON shape. */
export function buildReceipt(input: BuildReceiptInput): Receipt {
  const proof = input.proof.map((step): HexProofStep =>
    "left" in step ? { left: toHex(step.left) } : { right: toHex(step.right) },
  );
  const common = {
    cert: input.certPem,
    node_id: input.nodeId,
    signature: toBase64(input.signature),
    proof,
  };
  const endorsements =
    input.serviceEndorsements !== undefined
      ? { service_endorsements: [...input.serviceEndorsements] }
      : {};
  if (input.leafComponents !== undefined) {
    const c = input.leafComponents;
    const leafComponents: LeafComponents = {
      write_set_digest: toHex(c.writeSetDigest),
      commit_evidence: c.commitEvidence,
      claims_digest: toHex(c.claimsDigest),
    };
    return { ...common, leaf_components: leafComponents, ...endorsements };
  }
  return { ...common, leaf: toHex(input.leaf), ...endorsements };
}
