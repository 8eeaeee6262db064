/**
 * The Merkle leaf of a transaction, as CCF defines it (ccf-compatibility.md §6.4):
 *
 *   leaf = SHA-256(write_set_digest | commit_evidence_digest | claims_digest)
 *
 * where write_set_digest is the SHA-256 of the entry's ledger bytes, commit_evidence_digest the
 * SHA-256 of its commit evidence text and claims_digest the application's claims (zeros when it
 * has none). This is the one place that computes it: the history, receipts, the ledger verifier,
 * the sealers and the recovery replay all call txLeaf, so they cannot drift apart.
 *
 * Pure and synchronous. The three digests are joined in one module-level scratch buffer, which
 * is safe because nothing can run between filling it and hashing it; this keeps the per-entry
 * path free of temporary arrays.
 */
import { assert } from "../base/assert.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import { sha256Into } from "../crypto/sha256-js.js";

const leafInput = new Uint8Array(3 * SHA256_BYTES);

export function txLeaf(
  writeSetDigest: Uint8Array,
  commitEvidenceDigest: Uint8Array,
  claimsDigest: Uint8Array,
): Uint8Array {
  assert(writeSetDigest.byteLength === SHA256_BYTES, "the write set digest is 32 bytes");
  assert(commitEvidenceDigest.byteLength === SHA256_BYTES, "the evidence digest is 32 bytes");
  assert(claimsDigest.byteLength === SHA256_BYTES, "the claims digest is 32 bytes");
  leafInput.set(writeSetDigest, 0);
  leafInput.set(commitEvidenceDigest, SHA256_BYTES);
  leafInput.set(claimsDigest, 2 * SHA256_BYTES);
  const leaf = new Uint8Array(SHA256_BYTES);
  sha256Into(leafInput, 0, leafInput.byteLength, leaf, 0);
  return leaf;
}
