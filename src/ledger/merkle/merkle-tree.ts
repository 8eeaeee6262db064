/**
 * The ledger's Merkle history tree: one 32-byte leaf per transaction (leaf index = seqno - 1).
 *
 * Spec: CCF's merklecpp tree. Internal node = SHA-256(left || right), no domain-separation prefix.
 * The tree over n leaves is left-balanced as in RFC 6962 (without its prefixes):
 *   root(D[0..n)) = D[0] if n == 1, else SHA-256(root(D[0..k)) || root(D[k..n)))
 * with k the largest power of two below n. Equivalently, pair nodes level by level and promote an
 * odd last node unchanged.
 *
 * Representation: per level h, the hashes of the PERFECT subtrees of 2^h leaves, in order (level 0
 * holds the leaves). Node j of level h covers leaves [j * 2^h, (j + 1) * 2^h). Any tree size s is
 * the sum of its binary digits; each set bit h of s contributes one "peak", node floor(s / 2^h) - 1
 * of level h, and the root folds the peaks right to left. So append is amortized one hash, root()
 * is O(log n) hashes, and a proof reads stored siblings plus at most one folded partial sibling.
 *
 * Compaction to m keeps, per level h, nodes from floor(m / 2^h) - 1 onward: that is every left
 * sibling of a leaf >= m and every peak of any size >= m, so roots, proofs, appends and retracts
 * at sizes >= m all keep working while memory stays proportional to what is retained.
 *
 * Hashes are stored packed, one byte buffer per level; appended leaves are copied in and every
 * returned hash is a fresh copy, so callers and the tree never share mutable bytes.
 *
 * Frontier (snapshots): the peaks of the current size are all a tree needs to continue appending
 * with the same roots, so a node starting from a snapshot at seqno N restores the tree over leaves
 * 0..N-1 from them alone. The layout is our own format, not CCF's (CCF serialises its whole
 * merklecpp tree into the `public:ccf.internal.tree` map); it is canonical, one byte string per
 * tree contents and size:
 *   u64 LE size
 *   then one 32-byte peak per set bit h of size, from the highest h down to the lowest: the root
 *   of the perfect subtree over leaves [size - (size mod 2^(h+1)), ... + 2^h)
 * so its length is exactly 8 + 32 * popcount(size) (8 zero bytes for the empty tree). A restored
 * tree has minIndex == size: nothing below it is provable, everything at sizes >= it works.
 */
import { assert } from "../../base/assert.js";
import { getU64LE, putU64LE } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import { SHA256_BYTES, sha256 } from "../../crypto/hash.js";
import { PackedHashes as Level } from "../packed-hashes.js";
import { hashNode, type ProofStep } from "./proof.js";

/** Bytes of the frontier's size field. */
const SIZE_BYTES = 8;

export enum MerkleErrorCode {
  /** fromFrontier: too short, size above 2^53 - 1, or length != 8 + 32 * popcount(size). */
  InvalidFrontier = "InvalidFrontier",
}
export type MerkleErrorType = { code: MerkleErrorCode };
/** Malformed serialised tree state (bytes from a snapshot); in-memory misuse is an assertion. */
export class MerkleError extends CcfError<MerkleErrorType> {}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The levels of the peaks of a tree of `size` leaves (its set bits), highest first. */
function peakLevels(size: number): number[] {
  const levels: number[] = [];
  // Division, not bit operators: sizes may exceed 32 bits.
  for (let h = 0, width = 1; width <= size; h++, width *= 2) {
    if (Math.floor(size / width) % 2 === 1) levels.push(h);
  }
  return levels.reverse();
}

/**
 * Makes an empty level hold no nodes yet count `next` of them, so the next push is node `next`.
 * PackedHashes has no constructor for that: growing the count with truncate and then dropping
 * everything below it leaves the empty live range [next, next) without allocating.
 */
function skipTo(level: Level, next: number): void {
  assert(level.count === 0, "merkle skipTo on a non-empty level");
  level.truncate(next);
  level.dropBelow(next);
}

function invalidFrontier(message: string): MerkleError {
  return new MerkleError({ code: MerkleErrorCode.InvalidFrontier }, `invalid frontier: ${message}`);
}

export class MerkleTree {
  /** Invariant: levels[0] exists; levels[h].count = floor(count / 2^h). */
  private readonly levels: Level[] = [new Level()];
  /** Leaves appended and not retracted. */
  private count = 0;
  /**
   * First provable leaf. Invariant: 0 <= min <= count; nodes are retained as the header says (a
   * tree from fromFrontier retains only the peaks of min, which is all that sizes >= min read).
   */
  private min = 0;

  get size(): number {
    return this.count;
  }

  get minIndex(): number {
    return this.min;
  }

  /**
   * Node slots allocated across all levels, live or not. For memory tests and metrics: it stays
   * within a small constant factor of the retained nodes, O(size - minIndex + log size).
   */
  get storedNodeCount(): number {
    let total = 0;
    for (const level of this.levels) total += level.capacityNodes;
    return total;
  }

  append(leaf: Uint8Array): void {
    // Hot path: build the message only on failure.
    if (leaf.byteLength !== SHA256_BYTES) {
      assert(false, `merkle leaf must be 32 bytes, got ${leaf.byteLength}`);
    }
    let level = this.levels[0]!;
    level.push(leaf);
    this.count += 1;
    // Each time a level's count becomes even, its last two nodes complete a parent; they are
    // adjacent in the level's buffer, so SHA-256(left || right) hashes one 64-byte view.
    for (let h = 1; level.count % 2 === 0; h++) {
      const parent = sha256(level.view(level.count - 2, 2));
      level = this.levels[h] ?? this.addLevel();
      level.push(parent);
    }
  }

  root(): Uint8Array {
    assert(this.count > 0, "root of an empty merkle tree");
    return this.rootAt(this.count);
  }

  /** Root over the first `size` leaves; minIndex <= size (the peaks of minIndex are retained). */
  rootAt(size: number): Uint8Array {
    assert(
      isCount(size) && size >= 1 && size <= this.count,
      `merkle rootAt(${size}) outside 1..${this.count}`,
    );
    assert(size >= this.min, `merkle rootAt(${size}) below compacted minIndex ${this.min}`);
    const root = this.foldPeaks(size, Infinity);
    assert(root !== undefined, "merkle tree has no peaks");
    return root;
  }

  leaf(index: number): Uint8Array {
    this.checkIndex(index, this.count);
    return this.levels[0]!.copy(index);
  }

  /** Leaf-to-root inclusion proof of leaf `index` in the tree over the first `size` leaves. */
  path(index: number, size: number = this.count): ProofStep[] {
    assert(
      isCount(size) && size <= this.count,
      `merkle path size ${size} outside 0..${this.count}`,
    );
    this.checkIndex(index, size);
    const proof: ProofStep[] = [];
    for (let h = 0, width = 1; width < size; h++, width *= 2) {
      const level = this.levels[h]!;
      const j = Math.floor(index / width); // our node at this level
      const complete = Math.floor(size / width); // perfect nodes of this level within `size`
      if (j % 2 === 1) {
        proof.push({ left: level.copy(j - 1) });
      } else if (j + 1 < complete) {
        proof.push({ right: level.copy(j + 1) });
      } else if ((j + 1) * width < size) {
        // The right sibling is the partial subtree over leaves [complete * width, size): its root
        // is the fold of the peaks of `size` below this level.
        const partial = this.foldPeaks(size, h);
        assert(partial !== undefined, "merkle partial sibling has no peaks");
        proof.push({ right: partial });
      }
      // else: our node is the odd last one and is promoted unchanged.
    }
    return proof;
  }

  /** Rolls back to `size` leaves. Nodes below minIndex were compacted, so size >= minIndex. */
  retract(size: number): void {
    assert(isCount(size) && size <= this.count, `merkle retract(${size}) outside 0..${this.count}`);
    assert(size >= this.min, `merkle retract(${size}) below compacted minIndex ${this.min}`);
    for (let h = 0, width = 1; h < this.levels.length; h++, width *= 2) {
      // Retained nodes start at floor(min / width) - 1 <= floor(size / width): never cut into.
      this.levels[h]!.truncate(Math.floor(size / width));
    }
    this.count = size;
  }

  /**
   * The canonical serialisation of what sizes >= `size` need (layout in the module comment). The
   * peaks of the current size are always retained, so this works on a compacted tree too.
   */
  frontier(): Uint8Array {
    const levels = peakLevels(this.count);
    const out = new Uint8Array(SIZE_BYTES + levels.length * SHA256_BYTES);
    putU64LE(out, 0, this.count);
    levels.forEach((h, slot) => {
      // The peak of level h is that level's last node: levels[h].count = floor(count / 2^h).
      const level = this.levels[h]!;
      out.set(level.view(level.count - 1, 1), SIZE_BYTES + slot * SHA256_BYTES);
    });
    return out;
  }

  /**
   * A tree of the frontier's size with minIndex == size: root(), appends, rootAt(s) and path(i, s)
   * for i >= size, retract(s >= size) and compact behave as on the tree it was taken from.
   * Throws MerkleError (InvalidFrontier) when the bytes do not have the documented shape; the
   * peak hashes themselves cannot be checked here (the caller checks the root against a signature).
   */
  static fromFrontier(bytes: Uint8Array): MerkleTree {
    if (bytes.byteLength < SIZE_BYTES) {
      throw invalidFrontier(`${bytes.byteLength} bytes, shorter than the size field`);
    }
    const size = getU64LE(bytes, 0);
    if (!isCount(size)) throw invalidFrontier("size field exceeds 2^53 - 1");
    const levels = peakLevels(size);
    const expected = SIZE_BYTES + levels.length * SHA256_BYTES;
    if (bytes.byteLength !== expected) {
      throw invalidFrontier(`${bytes.byteLength} bytes, size ${size} needs ${expected}`);
    }
    const tree = new MerkleTree();
    for (let h = 0, width = 1; width <= size; h++, width *= 2) {
      const level = tree.levels[h] ?? tree.addLevel();
      const nodes = Math.floor(size / width);
      const slot = levels.indexOf(h);
      if (slot < 0) {
        skipTo(level, nodes);
      } else {
        skipTo(level, nodes - 1);
        const offset = SIZE_BYTES + slot * SHA256_BYTES;
        level.push(bytes.subarray(offset, offset + SHA256_BYTES));
      }
    }
    // The retained nodes are exactly the peaks of `size`: a subset of what compact(size) keeps,
    // and all that sizes >= size read (a non-peak node floor(size / 2^h) - 1 is a right child,
    // read only as the sibling of a node below `size`).
    tree.count = size;
    tree.min = size;
    return tree;
  }

  /** Forgets what only leaves below `minIndex` need. Lowering minIndex is a no-op. */
  compact(minIndex: number): void {
    assert(
      isCount(minIndex) && minIndex <= this.count,
      `merkle compact(${minIndex}) outside 0..${this.count}`,
    );
    if (minIndex <= this.min) return;
    for (let h = 0, width = 1; h < this.levels.length; h++, width *= 2) {
      this.levels[h]!.dropBelow(Math.max(0, Math.floor(minIndex / width) - 1));
    }
    this.min = minIndex;
  }

  private addLevel(): Level {
    const level = new Level();
    this.levels.push(level);
    return level;
  }

  private checkIndex(index: number, size: number): void {
    assert(isCount(index) && index < size, `merkle leaf index ${index} outside 0..${size - 1}`);
    assert(index >= this.min, `merkle leaf ${index} is below compacted minIndex ${this.min}`);
  }

  /**
   * Folds, right to left, the peaks of a tree of `size` leaves at levels below `belowLevel`: the
   * root of the last (size mod 2^belowLevel) leaves. Undefined when there are none; otherwise a
   * fresh array.
   */
  private foldPeaks(size: number, belowLevel: number): Uint8Array | undefined {
    let acc: Uint8Array | undefined;
    for (let h = 0, width = 1; h < belowLevel && width <= size; h++, width *= 2) {
      const complete = Math.floor(size / width);
      if (complete % 2 === 1) {
        const level = this.levels[h]!;
        acc =
          acc === undefined ? level.copy(complete - 1) : hashNode(level.view(complete - 1, 1), acc);
      }
    }
    return acc;
  }
}
