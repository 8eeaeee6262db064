/**
 * Batches of committed transactions to seal (serialise, encrypt, digest) off the main thread,
 * and their results. The node encodes a batch (cheap: the canonical map encoding it needs
 * anyway), a sealer worker runs sealBatch (the expensive part: commit nonce HMAC, AES-GCM,
 * three SHA-256), and the node decodes the results and records them in seqno order.
 *
 * Batch layout, per transaction (little-endian):
 *   u32 seqno_lo | u32 seqno_hi | u32 view | u8 flags | u8 has_claims | u16 0 | [claims[32]]
 *   u32 public_len | public tables | u32 private_len | private tables (plaintext)
 * Result layout, per transaction: u32 entry_len | entry | write_set_digest[32] | leaf[32].
 *
 * Pure; the same functions run inline when no worker is configured, so both paths give
 * identical bytes.
 */
import { assert } from "../base/assert.js";
import { getU32LE, getU64LE, putU32LE, putU64LE } from "../base/bytes.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import { layoutMaps, writeMaps, type MapsLayout } from "../kv/codec.js";
import { splitDomains, type WriteSet } from "../kv/write-set.js";
import { sealEntryInto, sealedEntrySize } from "./entry-format.js";
import type { LedgerSecrets } from "./ledger-secrets.js";
import { txLeaf } from "./tx-leaf.js";

export interface SealJob {
  readonly txId: TxId;
  readonly writeSet: WriteSet;
  readonly claimsDigest?: Uint8Array | undefined;
  readonly flags?: number | undefined;
}

/** A sealed transaction. Byte fields are views into the results buffer. */
export interface SealedTx {
  readonly txId: TxId;
  readonly entry: Uint8Array;
  readonly writeSetDigest: Uint8Array;
  readonly leaf: Uint8Array;
  readonly claimsDigest: Uint8Array;
}

/** Offset of claims_digest inside an entry (header 8, GCM 28, public size 8, type 1, seqno 8). */
const ENTRY_CLAIMS_OFFSET = 53;
const JOB_HEADER_BYTES = 16;

interface LaidOutJob {
  readonly job: SealJob;
  readonly publicLayout: MapsLayout;
  readonly privateLayout: MapsLayout;
}

export function encodeSealBatch(jobs: readonly SealJob[]): Uint8Array {
  const laidOut: LaidOutJob[] = new Array(jobs.length);
  let size = 0;
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i]!;
    const { publicMaps, privateMaps } = splitDomains(job.writeSet);
    const publicLayout = layoutMaps(publicMaps);
    const privateLayout = layoutMaps(privateMaps);
    laidOut[i] = { job, publicLayout, privateLayout };
    size += JOB_HEADER_BYTES + (job.claimsDigest === undefined ? 0 : SHA256_BYTES) + 8;
    size += publicLayout.sizeBytes + privateLayout.sizeBytes;
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const { job, publicLayout, privateLayout } of laidOut) {
    putU64LE(out, o, job.txId.seqno);
    putU32LE(out, o + 8, job.txId.view);
    out[o + 12] = job.flags ?? 0;
    out[o + 13] = job.claimsDigest === undefined ? 0 : 1;
    o += JOB_HEADER_BYTES;
    if (job.claimsDigest !== undefined) {
      assert(job.claimsDigest.byteLength === SHA256_BYTES, "claims digest is 32 bytes");
      out.set(job.claimsDigest, o);
      o += SHA256_BYTES;
    }
    putU32LE(out, o, publicLayout.sizeBytes);
    o = writeMaps(publicLayout, out, o + 4);
    putU32LE(out, o, privateLayout.sizeBytes);
    o = writeMaps(privateLayout, out, o + 4);
  }
  assert(o === size, "seal batch size matches its layout");
  return out;
}

interface BatchJob {
  readonly txId: TxId;
  readonly flags: number;
  readonly claimsDigest: Uint8Array | undefined;
  readonly publicTables: Uint8Array;
  readonly privateTables: Uint8Array;
}

function readBatch(batch: Uint8Array): BatchJob[] {
  const jobs: BatchJob[] = [];
  let o = 0;
  while (o < batch.byteLength) {
    const seqno = getU64LE(batch, o) as Seqno;
    const txId: TxId = { view: getU32LE(batch, o + 8) as View, seqno };
    const flags = batch[o + 12]!;
    const hasClaims = batch[o + 13] === 1;
    o += JOB_HEADER_BYTES;
    const claimsDigest = hasClaims ? batch.subarray(o, o + SHA256_BYTES) : undefined;
    if (hasClaims) o += SHA256_BYTES;
    const publicLen = getU32LE(batch, o);
    const publicTables = batch.subarray(o + 4, o + 4 + publicLen);
    o += 4 + publicLen;
    const privateLen = getU32LE(batch, o);
    const privateTables = batch.subarray(o + 4, o + 4 + privateLen);
    o += 4 + privateLen;
    jobs.push({ txId, flags, claimsDigest, publicTables, privateTables });
  }
  assert(o === batch.byteLength, "seal batch ends on a job boundary");
  return jobs;
}

/** Seals every transaction of a batch; returns the results buffer (entries sealed in place). */
export function sealBatch(batch: Uint8Array, secrets: LedgerSecrets): Uint8Array {
  const jobs = readBatch(batch);
  let resultSize = 0;
  for (const job of jobs) {
    const entrySize = sealedEntrySize(job.publicTables.byteLength, job.privateTables.byteLength);
    resultSize += 4 + entrySize + 2 * SHA256_BYTES;
  }
  const out = new Uint8Array(resultSize);
  let r = 0;
  for (const job of jobs) {
    const entrySize = sealedEntrySize(job.publicTables.byteLength, job.privateTables.byteLength);
    putU32LE(out, r, entrySize);
    const entry = out.subarray(r + 4, r + 4 + entrySize);
    const commitEvidenceDigest = secrets.commitEvidenceDigest(job.txId);
    sealEntryInto({ ...job, commitEvidenceDigest }, secrets, entry);
    const writeSetDigest = sha256(entry);
    const claimsDigest = entry.subarray(ENTRY_CLAIMS_OFFSET, ENTRY_CLAIMS_OFFSET + SHA256_BYTES);
    const tail = r + 4 + entrySize;
    out.set(writeSetDigest, tail);
    out.set(txLeaf(writeSetDigest, commitEvidenceDigest, claimsDigest), tail + SHA256_BYTES);
    r = tail + 2 * SHA256_BYTES;
  }
  assert(r === resultSize, "seal results fill their buffer");
  return out;
}

export function decodeSealResults(results: Uint8Array): SealedTx[] {
  const out: SealedTx[] = [];
  let o = 0;
  while (o < results.byteLength) {
    const length = getU32LE(results, o);
    const entry = results.subarray(o + 4, o + 4 + length);
    // The IV holds the txId: u64 seqno then u32 view (entry-format.ts).
    const txId: TxId = { seqno: getU64LE(entry, 24) as Seqno, view: getU32LE(entry, 32) as View };
    o += 4 + length;
    out.push({
      txId,
      entry,
      writeSetDigest: results.subarray(o, o + SHA256_BYTES),
      leaf: results.subarray(o + SHA256_BYTES, o + 2 * SHA256_BYTES),
      claimsDigest: entry.subarray(ENTRY_CLAIMS_OFFSET, ENTRY_CLAIMS_OFFSET + SHA256_BYTES),
    });
    o += 2 * SHA256_BYTES;
  }
  return out;
}
