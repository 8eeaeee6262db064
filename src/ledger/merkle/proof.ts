/**
 * Merkle node hashing and inclusion-proof folding for the ledger's history tree.
 *
 * Spec: CCF's merklecpp tree. An internal node is SHA-256(left || right) with NO domain-separation
 * prefix (unlike RFC 6962), and a receipt's proof is a leaf-to-root list of siblings, each tagged
 * with the side the sibling sits on. Folding a proof over its leaf must give the signed root.
 *
 * Owns: `hashNode`, `foldProof` and the `ProofStep` shape; merkle-tree.ts produces the proofs.
 */
import { concatBytes } from "../../base/bytes.js";
import { SHA256_BYTES, sha256 } from "../../crypto/hash.js";
import { sha256PairInto } from "../../crypto/sha256-js.js";

/** One sibling on the path from a leaf to the root; the key says which side the sibling is on. */
export type ProofStep = { readonly left: Uint8Array } | { readonly right: Uint8Array };

// Reused input buffer for the common 32+32 byte case, so a node hash allocates only its output.
// Safe because hashing is synchronous and copies nothing out of the scratch.
const scratch = new Uint8Array(2 * SHA256_BYTES);

/** SHA-256(left || right): the hash of an internal Merkle node. Returns a fresh array. */
export function hashNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.byteLength === SHA256_BYTES && right.byteLength === SHA256_BYTES) {
    scratch.set(left, 0);
    scratch.set(right, SHA256_BYTES);
    const out = new Uint8Array(SHA256_BYTES);
    sha256PairInto(scratch, 0, out, 0);
    return out;
  }
  // Odd lengths only come from malformed proofs; hash them faithfully rather than mis-hash.
  return sha256(concatBytes([left, right]));
}

/**
 * CCF receipt fold: `{left: h}` gives cur = SHA-256(h || cur), `{right: h}` gives
 * cur = SHA-256(cur || h). Returns the root the proof claims (a fresh array, even for an empty
 * proof, so the caller may keep or mutate it freely).
 */
export function foldProof(leaf: Uint8Array, proof: readonly ProofStep[]): Uint8Array {
  let current = leaf;
  for (const step of proof) {
    current = "left" in step ? hashNode(step.left, current) : hashNode(current, step.right);
  }
  return current === leaf ? new Uint8Array(leaf) : current;
}
