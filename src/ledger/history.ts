/**
 * The transaction history: turns committed write sets into ledger entries, keeps the Merkle tree
 * over them, builds signature transactions and answers receipts (ccf-compatibility.md §6.4, §6.5).
 *
 * Pure and synchronous; the node loop owns one instance and drives it in seqno order:
 * appendWriteSet on the primary, appendEntry on followers and at replay, retract on rollback,
 * compact once old receipts are no longer served from memory. A node starting from a snapshot at
 * seqno N builds its history with fromSnapshot: the tree over leaves 0..N comes from the
 * snapshot's serialised tree (merkle/serialised-tree.ts) and nothing at or below N is retained,
 * as if compacted to N + 1.
 *
 * Leaf numbering is CCF's: the tree starts with leaf 0, 32 zero bytes that are not a hash of
 * anything, so the transaction at seqno s is leaf s, and the root a signature at seqno S signs
 * covers leaves 0..S-1. Each signature transaction carries the tree as CCF serialises it
 * (serialisedTreeForSignature).
 *
 * Invariant: tree.size == lastSeqno + 1 (leaf index = seqno) and
 * tree.minIndex <= firstRetainedSeqno; for every retained seqno in [firstRetainedSeqno,
 * lastSeqno] the history holds its view and write set digest (packed, no per-transaction
 * objects), and its claims digest and signature when it has one.
 */
import { assert } from "../base/assert.js";
import { equalBytes, toHex } from "../base/bytes.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import type { WriteSet } from "../kv/write-set.js";
import { decodeEntry, encodeEntry, type LedgerEntry } from "./entry-format.js";
import type { LedgerSecrets } from "./ledger-secrets.js";
import { MerkleTree } from "./merkle/merkle-tree.js";
import {
  decodeSerialisedTree,
  encodeSerialisedTree,
  SerialisedTreeError,
  SerialisedTreeErrorCode,
} from "./merkle/serialised-tree.js";
import { PackedHashes } from "./packed-hashes.js";
import type { Receipt } from "./receipt.js";
import type { SealedTx } from "./seal-batch.js";
import type { ProofStep } from "./merkle/proof.js";
import { findSignature, type SignatureValue } from "./signature.js";
import { txLeaf } from "./tx-leaf.js";

const ZERO_DIGEST = new Uint8Array(SHA256_BYTES);

/** CCF's leaf 0: 32 zero bytes, appended as is (not hashed) before the first transaction. */
export const FIRST_LEAF: Uint8Array = new Uint8Array(SHA256_BYTES);

/** An empty history tree as CCF starts one: leaf 0 only (the simulator's hosts use it too). */
export function newHistoryTree(): MerkleTree {
  const tree = new MerkleTree();
  tree.append(FIRST_LEAF);
  return tree;
}

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

/**
 * Where a history resumes: the snapshot's seqno and its Merkle tree. CCF's snapshots carry the
 * tree its signature at `seqno` wrote (leaves up to seqno - 1) and the leaf of `seqno` itself as
 * `hash_at_snapshot`; a tree that already holds leaf `seqno` needs no hashAtSnapshot (and must
 * agree with it when both are given).
 */
export interface HistorySnapshotStart {
  readonly seqno: Seqno;
  /** The snapshot's `public:ccf.internal.tree`: merklecpp's serialisation (serialised-tree.ts). */
  readonly tree: Uint8Array;
  /** The leaf of the transaction at `seqno`. */
  readonly hashAtSnapshot?: Uint8Array | undefined;
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
      this.tree = newHistoryTree();
      return;
    }
    this.tree = treeAtSnapshot(start);
    // Like a history compacted to seqno + 1: no digests live and the next one recorded is that of
    // seqno + 1 (truncate grows the count without allocating, dropBelow retires the empty slots).
    this.tree.compact(start.seqno + 1);
    this.digests.truncate(start.seqno);
    this.digests.dropBelow(start.seqno);
    this.firstRetainedSeqno = start.seqno + 1;
  }

  /**
   * A history whose last seqno is the snapshot's: receipts for later seqnos work once a signature
   * after them is recorded, earlier ones are "unavailable", and rootForNextSignature() equals that
   * of the history the tree was taken from. Throws SerialisedTreeError on a malformed tree or one
   * that does not end at `start.seqno` (LegacyFormatError on Consortia 0.1's frontier).
   */
  static fromSnapshot(secrets: LedgerSecrets, start: HistorySnapshotStart): TxHistory {
    return new TxHistory(secrets, start);
  }

  get lastSeqno(): Seqno {
    return (this.tree.size - 1) as Seqno;
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
    assert(txId.seqno === this.tree.size, "write sets are recorded in seqno order");
    const commitEvidenceDigest = this.secrets.commitEvidenceDigest(txId);
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
    assert(encoded.txId.seqno === this.tree.size, "entries are recorded in seqno order");
    const { txId, entry, commitEvidenceDigest, claimsDigest, signature } = encoded;
    const writeSetDigest = sha256(entry);
    const leaf = txLeaf(writeSetDigest, commitEvidenceDigest, claimsDigest);
    this.record(txId.view, claimsDigest, writeSetDigest, leaf, signature);
  }

  /** Records a transaction sealed elsewhere (seal-batch.ts, possibly in a worker). */
  recordSealed(sealed: SealedTx): void {
    const { txId } = sealed;
    assert(txId.seqno === this.tree.size, "sealed transactions are recorded in seqno order");
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
    assert(entry.seqno === this.tree.size, "entries are recorded in seqno order");
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
    assert(entry.seqno === this.tree.size, "entries are recorded in seqno order");
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
    const seqno = this.tree.size;
    this.tree.append(leaf);
    this.digests.push(writeSetDigest);
    this.views.push(view);
    if (!isZero(claimsDigest)) this.claims.set(seqno, claimsDigest.slice());
    if (signature !== null) {
      this.signatures.set(seqno, signature);
      this.signatureSeqnos.push(seqno);
    }
  }

  /** The root a signature at `this.lastSeqno + 1` signs: leaf 0 and every entry so far. */
  rootForNextSignature(): Uint8Array {
    return this.tree.root();
  }

  /**
   * The `public:ccf.internal.tree` value of a signature at `this.lastSeqno + 1`: the tree as CCF
   * serialises it there, leaves from `commitSeqno` (where CCF has flushed its tree to: the commit
   * point known when signing; never below what this history still holds) to lastSeqno.
   */
  serialisedTreeForSignature(commitSeqno: Seqno): Uint8Array {
    const toIndex = this.tree.size - 1;
    const fromIndex = Math.min(Math.max(commitSeqno, this.tree.minIndex), toIndex);
    return encodeSerialisedTree(this.tree, { fromIndex, toIndex });
  }

  /**
   * The `public:ccf.internal.tree` of a snapshot at lastSeqno, in the same layout: leaf lastSeqno
   * and the peaks left of it, so the snapshot alone rebuilds the tree over leaves 0..lastSeqno.
   * (A CCF snapshot keeps the tree its signature wrote, up to lastSeqno - 1, and carries the leaf
   * of lastSeqno as hash_at_snapshot; fromSnapshot reads either.)
   */
  serialisedTreeForSnapshot(): Uint8Array {
    const last = this.tree.size - 1;
    return encodeSerialisedTree(this.tree, { fromIndex: last, toIndex: last });
  }

  /** The leaf of a retained seqno (a snapshot's hash_at_snapshot). */
  leafAt(seqno: Seqno): Uint8Array {
    assert(seqno >= this.tree.minIndex && seqno <= this.lastSeqno, `leaf ${seqno} not retained`);
    return this.tree.leaf(seqno);
  }

  /** Roll back: forget every entry with seqno > `seqno`. */
  retract(seqno: Seqno): void {
    assert(seqno >= this.firstRetainedSeqno - 1, "cannot retract below the retained history");
    assert(seqno <= this.lastSeqno, "cannot retract beyond the end");
    const end = this.lastSeqno;
    this.tree.retract(seqno + 1);
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
    assert(seqno <= this.lastSeqno, "cannot compact beyond the end");
    if (seqno <= this.firstRetainedSeqno) return;
    this.tree.compact(seqno);
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
    return seqno >= this.firstRetainedSeqno && seqno <= this.lastSeqno;
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
      // The signature at S signs the tree of S leaves (0..S-1); seqno s is leaf s.
      proof: this.tree.path(seqno, signatureSeqno).map(hexStep),
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

/**
 * The tree a snapshot start describes, over leaves 0..start.seqno (see HistorySnapshotStart).
 * Throws SerialisedTreeError, or LegacyFormatError for Consortia 0.1's frontier.
 */
export function treeAtSnapshot(start: HistorySnapshotStart): MerkleTree {
  const tree = decodeSerialisedTree(start.tree);
  const { seqno, hashAtSnapshot } = start;
  if (hashAtSnapshot !== undefined && hashAtSnapshot.byteLength !== SHA256_BYTES) {
    throw new SerialisedTreeError(
      { code: SerialisedTreeErrorCode.Malformed },
      `the snapshot's hash_at_snapshot is ${hashAtSnapshot.byteLength} bytes, not 32`,
    );
  }
  if (tree.size === seqno && hashAtSnapshot !== undefined) {
    tree.append(hashAtSnapshot);
    return tree;
  }
  if (tree.size !== seqno + 1) {
    throw new SerialisedTreeError(
      { code: SerialisedTreeErrorCode.Malformed },
      `the snapshot's Merkle tree ends at leaf ${tree.size - 1}, not at its seqno ${seqno}`,
    );
  }
  if (hashAtSnapshot !== undefined && !equalBytes(tree.leaf(seqno), hashAtSnapshot)) {
    throw new SerialisedTreeError(
      { code: SerialisedTreeErrorCode.Malformed },
      `the snapshot's Merkle tree disagrees with its hash_at_snapshot at seqno ${seqno}`,
    );
  }
  return tree;
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
