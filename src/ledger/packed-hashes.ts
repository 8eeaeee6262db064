/**
 * A growable sequence of 32-byte hashes packed in one byte buffer, indexed by a logical index
 * that keeps counting across compaction. Used for the Merkle tree's levels and the history's
 * per-transaction digests: packing (rather than one Buffer per hash) saves ~100 bytes of object
 * overhead per hash and keeps the GC from tracing millions of small objects.
 */
import { assert } from "../base/assert.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import { sha256PairInto } from "../crypto/sha256-js.js";

const NODE_BYTES = SHA256_BYTES;
/** Smallest capacity, in nodes, a level's buffer is shrunk to (upper levels stay tiny). */
const MIN_CAPACITY_NODES = 4;

/**
 * Hashes first..count-1, packed. In the Merkle tree two siblings sit next to each other, so a
 * parent is hashed straight from the buffer.
 */
export class PackedHashes {
  /**
   * Invariant: bytes[(j - base) * 32, (j - base + 1) * 32) is node j for first <= j < count;
   * slots below first - base are dead (compacted) and are reclaimed lazily.
   */
  private bytes = new Uint8Array(MIN_CAPACITY_NODES * NODE_BYTES);
  /** Logical index of the node at byte 0. Invariant: base <= first. */
  private base = 0;
  /** First retained node. Invariant: first <= count. */
  private first = 0;
  /** Nodes ever completed at this level and not retracted. */
  count = 0;

  get capacityNodes(): number {
    return this.bytes.byteLength / NODE_BYTES;
  }

  push(hash: Uint8Array): void {
    const at = this.reserve(); // before reading this.bytes: reserve may replace it
    this.bytes.set(hash, at);
    this.count += 1;
  }

  /**
   * Pushes SHA-256(node index || node index + 1) of `children` (a Merkle parent), hashed from
   * the children's buffer straight into this one.
   */
  pushParentOf(children: PackedHashes, index: number): void {
    assert(index >= children.first && index + 2 <= children.count, "merkle node is not retained");
    const at = this.reserve();
    sha256PairInto(children.bytes, (index - children.base) * NODE_BYTES, this.bytes, at);
    this.count += 1;
  }

  /** Room for one more node: the byte offset where node `count` goes. */
  private reserve(): number {
    if ((this.count - this.base + 1) * NODE_BYTES > this.bytes.byteLength) {
      this.resize(2 * (this.count + 1 - this.first)); // also drops the dead prefix
    }
    return (this.count - this.base) * NODE_BYTES;
  }

  /** A view of `n` consecutive nodes from `index` (valid until the next mutation). */
  view(index: number, n: number): Uint8Array {
    assert(index >= this.first && index + n <= this.count, "merkle node is not retained");
    const offset = (index - this.base) * NODE_BYTES;
    return this.bytes.subarray(offset, offset + n * NODE_BYTES);
  }

  /** A fresh copy of node `index`. */
  copy(index: number): Uint8Array {
    return this.view(index, 1).slice();
  }

  /** Keeps only the first `count` nodes; count >= first. */
  truncate(count: number): void {
    this.count = count;
    this.fit();
  }

  /** Forgets nodes below `keep`. */
  dropBelow(keep: number): void {
    if (keep <= this.first) return;
    this.first = keep;
    this.fit();
  }

  /**
   * Reclaims space after the live range shrank: slides the live nodes to the front once dead
   * slots outnumber them (the copy costs no more than the slots freed), and reallocates when
   * under a quarter of the capacity is live (the usual amortized dynamic-array shrink).
   */
  private fit(): void {
    const live = this.count - this.first;
    const dead = this.first - this.base;
    if (this.capacityNodes > 4 * Math.max(live, MIN_CAPACITY_NODES)) {
      this.resize(2 * live);
    } else if (dead > 0 && dead >= live) {
      const from = dead * NODE_BYTES;
      this.bytes.copyWithin(0, from, from + live * NODE_BYTES);
      this.base = this.first;
    }
  }

  /** Moves the live nodes into a fresh buffer of `nodes` capacity (at least the minimum). */
  private resize(nodes: number): void {
    const next = new Uint8Array(Math.max(nodes, MIN_CAPACITY_NODES) * NODE_BYTES);
    next.set(this.view(this.first, this.count - this.first));
    this.bytes = next;
    this.base = this.first;
  }
}
