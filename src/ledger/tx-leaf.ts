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
 * Pure and synchronous. The three digests are hashed where they are (sha256-js.ts), with no
 * temporary arrays on the per-entry path.
 */
import { assert } from "../base/assert.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import { sha256Of3x32Into } from "../crypto/sha256-js.js";
import { CLAIMS_DIGEST_OFFSET, COMMIT_EVIDENCE_DIGEST_OFFSET } from "./entry-format.js";

/** A leaf is a SHA-256 digest. */
export const LEAF_BYTES = SHA256_BYTES;

export function txLeaf(
  writeSetDigest: Uint8Array,
  commitEvidenceDigest: Uint8Array,
  claimsDigest: Uint8Array,
): Uint8Array {
  assert(writeSetDigest.byteLength === SHA256_BYTES, "the write set digest is 32 bytes");
  assert(commitEvidenceDigest.byteLength === SHA256_BYTES, "the evidence digest is 32 bytes");
  assert(claimsDigest.byteLength === SHA256_BYTES, "the claims digest is 32 bytes");
  const leaf = new Uint8Array(SHA256_BYTES);
  sha256Of3x32Into([writeSetDigest, 0, commitEvidenceDigest, 0, claimsDigest, 0], leaf, 0);
  return leaf;
}

/**
 * The leaf of a write-set entry whose framing has been checked (its digests are read from the
 * entry at their offsets, with no views made): txLeaf(writeSetDigest, its commit evidence
 * digest, its claims digest).
 */
export function txLeafOfEntry(writeSetDigest: Uint8Array, entry: Uint8Array): Uint8Array {
  assert(writeSetDigest.byteLength === SHA256_BYTES, "the write set digest is 32 bytes");
  const leaf = new Uint8Array(SHA256_BYTES);
  const parts = [
    writeSetDigest,
    0,
    entry,
    COMMIT_EVIDENCE_DIGEST_OFFSET,
    entry,
    CLAIMS_DIGEST_OFFSET,
  ] as const;
  sha256Of3x32Into(parts, leaf, 0);
  return leaf;
}
