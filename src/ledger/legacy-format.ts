/**
 * Ledgers and snapshots written by Consortia 0.1, before issue #11 aligned the Merkle tree with
 * CCF's (ccf-compatibility.md §6.4): they are refused, never read as if they were CCF's.
 *
 * Two things tell them apart:
 * - Leaf numbering. Consortia 0.1's tree had no leading leaf, so seqno s was leaf s - 1, and the
 *   root a signature at seqno S signed covered seqnos 1..S-1 only. CCF's tree starts with a leaf
 *   of 32 zero bytes, so seqno s is leaf s and the root at S covers leaves 0..S-1. The two roots
 *   differ for every S, so at the first signature of a ledger read from seqno 1, a root that
 *   matches the old numbering and not the new one names the format. LegacyNumberingCheck keeps
 *   the old tree just that long.
 * - Tree layout. Consortia 0.1 kept its own frontier in `public:ccf.internal.tree` (u64 LE size,
 *   then 32 bytes per set bit of the size); CCF's merklecpp serialisation is recognised by its
 *   length (merkle/serialised-tree.ts), which never matches the old one's.
 *
 * Pure.
 */
import { equalBytes } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";
import { SERVICE_TABLES } from "../kv/service-tables.js";
import { MerkleTree } from "./merkle/merkle-tree.js";

export enum LegacyFormatErrorCode {
  /** A signed root matches Consortia 0.1's leaf numbering (no leaf 0). */
  LegacyLeafNumbering = "LegacyLeafNumbering",
  /** A snapshot's `public:ccf.internal.tree` holds Consortia 0.1's frontier layout. */
  LegacyTreeLayout = "LegacyTreeLayout",
}
export type LegacyFormatErrorType = { code: LegacyFormatErrorCode; seqno?: number };
/** Bytes of a format this version no longer reads (README: earlier ledgers are not readable). */
export class LegacyFormatError extends CcfError<LegacyFormatErrorType> {}

export const LEGACY_NUMBERING_MESSAGE =
  "this ledger numbers Merkle leaves from seqno 1 (Consortia 0.1 format); this version reads " +
  "CCF's format, where leaf 0 is 32 zero bytes";

export const LEGACY_TREE_MESSAGE =
  `this snapshot holds Consortia 0.1's Merkle frontier in ${SERVICE_TABLES.tree}; this version ` +
  "reads CCF's serialised merklecpp tree (ledgers and snapshots of Consortia 0.1 are not readable)";

/**
 * Follows a ledger read from seqno 1 with Consortia 0.1's numbering until its first signature,
 * to tell a ledger of that format from a damaged one. Costs one extra node hash per entry before
 * the first signature, and nothing after it.
 */
export class LegacyNumberingCheck {
  /** The tree over seqnos 1..n without leaf 0, until the first signature; then null. */
  private tree: MerkleTree | null = new MerkleTree();

  /** The next entry's leaf (call in seqno order, from seqno 1). */
  append(leaf: Uint8Array): void {
    this.tree?.append(leaf);
  }

  /**
   * At a signature whose claimed root does not match CCF's numbering: throws LegacyFormatError
   * when it matches Consortia 0.1's. Only the first signature can tell; after it, does nothing.
   */
  checkMismatch(claimedRoot: Uint8Array, seqno: number, where: string): void {
    const tree = this.tree;
    if (tree === null || tree.size === 0) return;
    if (equalBytes(tree.root(), claimedRoot)) {
      throw new LegacyFormatError(
        { code: LegacyFormatErrorCode.LegacyLeafNumbering, seqno },
        `${where}: ${LEGACY_NUMBERING_MESSAGE}`,
      );
    }
  }

  /** The first signature has been checked: the old tree is no longer needed. */
  done(): void {
    this.tree = null;
  }

  get active(): boolean {
    return this.tree !== null;
  }
}
