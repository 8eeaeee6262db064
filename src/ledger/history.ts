/**
 * The transaction history: turns committed write sets into ledger entries, keeps the Merkle tree
 * over them, builds signature transactions and answers receipts (ccf-compatibility.md §6.4, §6.5).
 *
 * Pure and synchronous; the node loop owns one instance and drives it in seqno order:
 * appendWriteSet on the primary, appendEntry on followers and at replay, retract on rollback,
 * compact once old receipts are no longer served from memory. A node starting from a snapshot at
 * seqno N builds its history with fromSnapshot: the tree over 1..N comes from its frontier
 * (merkle-tree.ts) and nothing at or below N is retained, as if compacted to N + 1.
 *
 * Invariant: tree.size == lastSeqno (leaf index = seqno - 1) and
 * tree.minIndex == firstRetainedSeqno - 1; for every retained seqno in
 * [firstRetainedSeqno, lastSeqno] the history holds its view and write set digest (packed, no
 * per-transaction objects), and its claims digest and signature when it has one.
 */
import { assert } from "../base/assert.js";
import { toHex } from "../base/bytes.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import type { WriteSet } from "../kv/write-set.js";
import { decodeEntry, encodeEntry, type LedgerEntry } from "./entry-format.js";
import type { LedgerSecrets } from "./ledger-secrets.js";
import { MerkleError, MerkleErrorCode, MerkleTree } from "./merkle/merkle-tree.js";
import { PackedHashes } from "./packed-hashes.js";
import type { Receipt } from "./receipt.js";
import type { SealedTx } from "./seal-batch.js";
import type { ProofStep } from "./merkle/proof.js";
import { findSignature, type SignatureValue } from "./signature.js";
import { txLeaf } from "./tx-leaf.js";

const ZERO_DIGEST = new Uint8Array(SHA256_BYTES);

export interface AppendWriteSetInput {
  readonly txId: TxId;
  readonly writeSet: WriteSet;
  readonly claimsDigest?: Uint8Array | undefined;
  readonly flags?: number | undefined;
}

export interface EncodedTx {
  readonly txId: TxId;
  readonly entry: Uint8Array;
  readonly commitEvidenceDigest: Uint8Array;
  readonly claimsDigest: Uint8Array;
  readonly signature: SignatureValue | null;
}

/** Where a history resumes: the snapshot's seqno and the Merkle frontier at that seqno. */
export interface HistorySnapshotStart {
  readonly seqno: Seqno;
  /** MerkleTree.frontier() of the tree over seqnos 1..seqno. */
  readonly frontier: Uint8Array;
}

export type ReceiptOutcome =
  | { readonly kind: "receipt"; readonly receipt: Receipt; readonly signatureSeqno: Seqno }
  /** No signature after this seqno yet: retry once the next signature is recorded. */
  | { readonly kind: "not-signed" }
  /** Older than what this history retains (compacted), or beyond its end. */
  | { readonly kind: "unavailable" };

export class TxHistory {
  readonly tree: MerkleTree;
  /** Write set digests by seqno - 1, for receipts; retained from firstRetainedSeqno - 1. */
  private readonly digests = new PackedHashes();
  // Invariant: views[seqno - firstRetainedSeqno] is the view of a retained seqno.
  private views: View[] = [];
  /** Non-zero claims digests only (most transactions have none). */
  private readonly claims = new Map<number, Uint8Array>();
  private readonly signatures = new Map<number, SignatureValue>();
  /** Invariant: the keys of `signatures`, strictly increasing. */
  private signatureSeqnos: number[] = [];
  /** Invariant: 1 <= firstRetainedSeqno <= lastSeqno + 1. */
  private firstRetainedSeqno = 1;

  /** An empty history at seqno 0, or (with `start`) one resuming after a snapshot. */
  constructor(
    readonly secrets: LedgerSecrets,
    start?: HistorySnapshotStart,
  ) {
    if (start === undefined) {
      this.tree = new MerkleTree();
      return;
    }
    this.tree = MerkleTree.fromFrontier(start.frontier);
    if (this.tree.size !== start.seqno) {
      throw new MerkleError(
        { code: MerkleErrorCode.InvalidFrontier },
        `invalid frontier: size ${this.tree.size} for a snapshot at seqno ${start.seqno}`,
      );
    }
    // Like a history compacted to seqno + 1: no digests live and the next one recorded is that of
    // seqno + 1 (truncate grows the count without allocating, dropBelow retires the empty slots).
    this.digests.truncate(start.seqno);
    this.digests.dropBelow(start.seqno);
    this.firstRetainedSeqno = start.seqno + 1;
  }

  /**
   * A history whose last seqno is the snapshot's: receipts for later seqnos work once a signature
   * after them is recorded, earlier ones are "unavailable", and rootForNextSignature() equals that
   * of the history the frontier was taken from. Throws MerkleError on a malformed frontier or one
   * whose size is not `start.seqno`.
   */
  static fromSnapshot(secrets: LedgerSecrets, start: HistorySnapshotStart): TxHistory {
    return new TxHistory(secrets, start);
  }

  get lastSeqno(): Seqno {
    return this.tree.size as Seqno;
  }

  /** Primary path: serialise, encrypt and record a committed write set. Returns entry bytes. */
  appendWriteSet(input: AppendWriteSetInput): Uint8Array {
    const encoded = this.encodeWriteSet(input);
    this.recordEncoded(encoded);
    return encoded.entry;
  }

  /** Serialises and encrypts a write set at the next seqno; changes nothing (see recordEncoded). */
  encodeWriteSet(input: AppendWriteSetInput): EncodedTx {
    const { txId } = input;
    assert(txId.seqno === this.tree.size + 1, "write sets are recorded in seqno order");
    const commitEvidenceDigest = sha256(this.secrets.commitEvidence(txId));
    const entry = encodeEntry({ ...input, commitEvidenceDigest }, this.secrets);
    return {
      txId,
      entry,
      commitEvidenceDigest,
      claimsDigest: input.claimsDigest ?? ZERO_DIGEST,
      signature: findSignature(input.writeSet.maps),
    };
  }

  /** Appends an encoded transaction's leaf to the tree. */
  recordEncoded(encoded: EncodedTx): void {
    assert(encoded.txId.seqno === this.tree.size + 1, "entries are recorded in seqno order");
    const { txId, entry, commitEvidenceDigest, claimsDigest, signature } = encoded;
    const writeSetDigest = sha256(entry);
    const leaf = txLeaf(writeSetDigest, commitEvidenceDigest, claimsDigest);
    this.record(txId.view, claimsDigest, writeSetDigest, leaf, signature);
  }

  /** Records a transaction sealed elsewhere (seal-batch.ts, possibly in a worker). */
  recordSealed(sealed: SealedTx): void {
    const { txId } = sealed;
    assert(txId.seqno === this.tree.size + 1, "sealed transactions are recorded in seqno order");
    this.tree.append(sealed.leaf);
    this.digests.push(sealed.writeSetDigest);
    this.views.push(txId.view);
    if (!isZero(sealed.claimsDigest)) {
      this.claims.set(txId.seqno, sealed.claimsDigest.slice());
    }
  }

  /**
   * Follower and replay path: record entry bytes produced elsewhere (`decoded`: the caller's
   * decodeEntry of them, if it has one). Returns the decoded entry.
   */
  appendEntry(bytes: Uint8Array, decoded?: LedgerEntry): LedgerEntry {
    const entry = decoded ?? decodeEntry(bytes);
    assert(entry.seqno === this.tree.size + 1, "entries are recorded in seqno order");
    const signature = findSignature(entry.publicMaps);
    const writeSetDigest = sha256(bytes);
    const leaf = txLeaf(writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest);
    this.record(entry.view, entry.claimsDigest, writeSetDigest, leaf, signature);
    return entry;
  }

  /**
   * Replay path: records a decoded entry whose write set digest (SHA-256 of its bytes) and leaf
   * were computed elsewhere (a replay worker); the caller vouches that they are this entry's.
   */
  appendHashed(entry: LedgerEntry, writeSetDigest: Uint8Array, leaf: Uint8Array): void {
    assert(entry.seqno === this.tree.size + 1, "entries are recorded in seqno order");
    const signature = findSignature(entry.publicMaps);
    this.record(entry.view, entry.claimsDigest, writeSetDigest, leaf, signature);
  }

  private record(
    view: View,
    claimsDigest: Uint8Array,
    writeSetDigest: Uint8Array,
    leaf: Uint8Array,
    signature: SignatureValue | null,
  ): void {
    const seqno = this.tree.size + 1;
    this.tree.append(leaf);
    this.digests.push(writeSetDigest);
    this.views.push(view);
    if (!isZero(claimsDigest)) this.claims.set(seqno, claimsDigest.slice());
    if (signature !== null) {
      this.signatures.set(seqno, signature);
      this.signatureSeqnos.push(seqno);
    }
  }

  /** The root a signature at `this.lastSeqno + 1` signs: over every entry recorded so far. */
  rootForNextSignature(): Uint8Array {
    return this.tree.root();
  }

  /** Roll back: forget every entry with seqno > `seqno`. */
  retract(seqno: Seqno): void {
    assert(seqno >= this.firstRetainedSeqno - 1, "cannot retract below the retained history");
    assert(seqno <= this.tree.size, "cannot retract beyond the end");
    const end = this.tree.size;
    this.tree.retract(seqno);
    this.digests.truncate(seqno);
    this.views.length = seqno - this.firstRetainedSeqno + 1;
    for (let s = seqno + 1; s <= end; s++) {
      this.claims.delete(s);
      this.signatures.delete(s);
    }
    while ((this.signatureSeqnos.at(-1) ?? 0) > seqno) this.signatureSeqnos.pop();
  }

  /** Forget what is needed only for receipts of seqnos < `seqno` (bounds memory). */
  compact(seqno: Seqno): void {
    assert(seqno <= this.tree.size, "cannot compact beyond the end");
    if (seqno <= this.firstRetainedSeqno) return;
    this.tree.compact(seqno - 1);
    this.digests.dropBelow(seqno - 1);
    this.views = this.views.slice(seqno - this.firstRetainedSeqno);
    for (const map of [this.claims, this.signatures] as Map<number, unknown>[]) {
      for (const s of map.keys()) if (s < seqno) map.delete(s);
    }
    this.signatureSeqnos = this.signatureSeqnos.filter((s) => s >= seqno);
    this.firstRetainedSeqno = seqno;
  }

  get firstRetained(): Seqno {
    return this.firstRetainedSeqno as Seqno;
  }

  private isRetained(seqno: number): boolean {
    return seqno >= this.firstRetainedSeqno && seqno <= this.tree.size;
  }

  /**
   * A CCF JSON receipt for `seqno`, proven by the first signature after it (or, for a
   * signature transaction, by its own signed root).
   */
  receipt(seqno: Seqno): ReceiptOutcome {
    if (!this.isRetained(seqno)) return { kind: "unavailable" };
    const own = this.signatures.get(seqno);
    if (own !== undefined) {
      const receipt: Receipt = { ...receiptSigner(own), proof: [], leaf: own.root };
      return { kind: "receipt", receipt, signatureSeqno: seqno };
    }
    const signatureSeqno = this.nextSignatureAfter(seqno);
    if (signatureSeqno === null) return { kind: "not-signed" };
    const sig = this.signatures.get(signatureSeqno)!;
    const view = this.views[seqno - this.firstRetainedSeqno]!;
    const receipt: Receipt = {
      ...receiptSigner(sig),
      proof: this.tree.path(seqno - 1, signatureSeqno - 1).map(hexStep),
      leaf_components: {
        write_set_digest: toHex(this.digests.view(seqno - 1, 1)),
        commit_evidence: this.secrets.commitEvidence({ view, seqno }),
        claims_digest: toHex(this.claims.get(seqno) ?? ZERO_DIGEST),
      },
    };
    return { kind: "receipt", receipt, signatureSeqno: signatureSeqno as Seqno };
  }

  /** The first signature seqno after `seqno`, or null (binary search). */
  private nextSignatureAfter(seqno: number): number | null {
    const list = this.signatureSeqnos;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]! > seqno) hi = mid;
      else lo = mid + 1;
    }
    return list[lo] ?? null;
  }

  /** The signature recorded at `seqno`, if that transaction is a signature. */
  signatureAt(seqno: Seqno): SignatureValue | null {
    return this.signatures.get(seqno) ?? null;
  }
}

/** Whether every byte is zero (no claims): a plain loop, cheaper than a Buffer compare. */
function isZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

function receiptSigner(sig: SignatureValue): Pick<Receipt, "cert" | "node_id" | "signature"> {
  return { cert: sig.cert, node_id: sig.node, signature: sig.sig };
}

function hexStep(step: ProofStep): { left: string } | { right: string } {
  return "left" in step ? { left: toHex(step.left) } : { right: toHex(step.right) };
}
