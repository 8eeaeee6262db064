/**
 * A Merkle history tree of 32-byte leaves: the ledger's (history.ts puts CCF's leaf 0 of 32 zero
 * bytes first, so the transaction at seqno s is leaf s) and the simulator's.
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
 * at sizes >= m all keep working while memory stays proportional to what is retained. (merklecpp
 * calls this flushing: its flush_to(m) keeps the same nodes.)
 *
 * Hashes are stored packed, one byte buffer per level; appended leaves are copied in and every
 * returned hash is a fresh copy, so callers and the tree never share mutable bytes.
 *
 * Peaks (serialised trees, merkle/serialised-tree.ts): the peaks of a size m >= minIndex are all
 * a tree needs to continue appending from m with the same roots, and they are exactly merklecpp's
 * "extra hashes on the left edge" of a tree flushed to m: the perfect subtrees left of leaf m, one
 * per set bit of m. fromPeaks builds the tree of size m with minIndex == m from them alone.
 */
import { assert } from "../../base/assert.js";
import { SHA256_BYTES } from "../../crypto/hash.js";
import { PackedHashes as Level } from "../packed-hashes.js";
import { hashNode, type ProofStep } from "./proof.js";

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** The levels of the peaks of a tree of `size` leaves (its set bits), lowest first. */
export function peakLevels(size: number): number[] {
  const levels: number[] = [];
  // Division, not bit operators: sizes may exceed 32 bits.
  for (let h = 0, width = 1; width <= size; h++, width *= 2) {
    if (Math.floor(size / width) % 2 === 1) levels.push(h);
  }
  return levels;
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
    // adjacent in the level's buffer, so SHA-256(left || right) hashes 64 bytes in place.
    for (let h = 1; level.count % 2 === 0; h++) {
      const parents = this.levels[h] ?? this.addLevel();
      parents.pushParentOf(level, level.count - 2);
      level = parents;
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

  /**
   * Leaves index..index+count-1, packed back to back: a view into the tree, valid until its next
   * mutation (serialisation copies it at once).
   */
  leafRange(index: number, count: number): Uint8Array {
    assert(isCount(count) && index + count <= this.count, "merkle leafRange beyond the end");
    if (count === 0) return new Uint8Array(0);
    this.checkIndex(index, this.count);
    return this.levels[0]!.view(index, count);
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
   * The peaks of the tree of `size` leaves (minIndex <= size <= size of this tree), lowest level
   * first: node floor(size / 2^h) - 1 of level h for each set bit h of size, fresh copies. A
   * compacted tree retains them, since compaction keeps the peaks of every size >= minIndex.
   */
  peaks(size: number): Uint8Array[] {
    assert(isCount(size) && size <= this.count, `merkle peaks(${size}) outside 0..${this.count}`);
    assert(size >= this.min, `merkle peaks(${size}) below compacted minIndex ${this.min}`);
    return peakLevels(size).map((h) => this.levels[h]!.copy(Math.floor(size / 2 ** h) - 1));
  }

  /**
   * The tree of `size` leaves with minIndex == size, from its peaks (lowest level first, as
   * peaks() gives them): root(), appends, rootAt(s) and path(i, s) for i >= size, retract(s >=
   * size) and compact behave as on the tree they were taken from. The caller checks the number
   * of peaks (popcount of size); the hashes themselves can only be checked against a signed root.
   */
  static fromPeaks(size: number, peaks: readonly Uint8Array[]): MerkleTree {
    assert(isCount(size), `merkle fromPeaks size ${size} is not a count`);
    const levels = peakLevels(size);
    assert(peaks.length === levels.length, `merkle size ${size} has ${levels.length} peaks`);
    const tree = new MerkleTree();
    for (let h = 0, width = 1; width <= size; h++, width *= 2) {
      const level = tree.levels[h] ?? tree.addLevel();
      const nodes = Math.floor(size / width);
      const slot = levels.indexOf(h);
      if (slot < 0) {
        skipTo(level, nodes);
      } else {
        const peak = peaks[slot]!;
        assert(peak.byteLength === SHA256_BYTES, "a merkle peak is 32 bytes");
        skipTo(level, nodes - 1);
        level.push(peak);
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
