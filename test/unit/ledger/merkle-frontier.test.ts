// MerkleTree.frontier / MerkleTree.fromFrontier (src/ledger/merkle/merkle-tree.ts): the state a
// node restores from a snapshot at size N. The layout is pinned against bytes built here by hand
// (u64 LE size, then peaks highest level first); a property test cuts random leaf sequences at a
// random N and checks the restored tree against the original on roots, historical roots, every
// later proof, retract, compact and a canonical round trip; malformed frontiers (truncated,
// wrong size field, extra bytes) must throw MerkleError{InvalidFrontier}.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AssertionError } from "../../../src/base/assert.js";
import { concatBytes, toHex, utf8 } from "../../../src/base/bytes.js";
import { sha256 } from "../../../src/crypto/hash.js";
import {
  MerkleError,
  MerkleErrorCode,
  MerkleTree,
} from "../../../src/ledger/merkle/merkle-tree.js";
import { foldProof, type ProofStep } from "../../../src/ledger/merkle/proof.js";

function leafHash(i: number): Uint8Array {
  return sha256(utf8(`frontier-leaf-${i}`));
}

/** Independent of the tree's hashing: plain SHA-256 over the concatenation. */
function h(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes([left, right]));
}

/** A u64 little-endian size field, built with BigInt (independent of bytes.ts). */
function u64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

function treeOf(n: number, leaf: (i: number) => Uint8Array = leafHash): MerkleTree {
  const tree = new MerkleTree();
  for (let i = 0; i < n; i++) tree.append(leaf(i));
  return tree;
}

function describe(proof: readonly ProofStep[]): string[] {
  return proof.map((step) => ("left" in step ? `L:${toHex(step.left)}` : `R:${toHex(step.right)}`));
}

function popcount(n: number): number {
  return BigInt(n).toString(2).replace(/0/g, "").length;
}

function isInvalidFrontier(error: unknown): boolean {
  return error instanceof MerkleError && error.code === MerkleErrorCode.InvalidFrontier;
}

test("the frontier is the u64 LE size followed by the peaks, highest level first", () => {
  const l = [0, 1, 2, 3, 4, 5, 6].map((i) => leafHash(i));
  const [l0, l1, l2, l3, l4, l5, l6] = l as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  assert.equal(toHex(new MerkleTree().frontier()), toHex(u64(0)));
  assert.equal(toHex(treeOf(1).frontier()), toHex(concatBytes([u64(1), l0])));
  assert.equal(toHex(treeOf(4).frontier()), toHex(concatBytes([u64(4), h(h(l0, l1), h(l2, l3))])));
  const h0123 = h(h(l0, l1), h(l2, l3));
  assert.equal(toHex(treeOf(5).frontier()), toHex(concatBytes([u64(5), h0123, l4])));
  assert.equal(
    toHex(treeOf(7).frontier()),
    toHex(concatBytes([u64(7), h0123, h(l4, l5), l6])),
    "size 7 = 4 + 2 + 1: three peaks, highest first",
  );
  // Compaction keeps every peak of the current size, so the frontier is unchanged by it.
  const compacted = treeOf(7);
  compacted.compact(7);
  assert.equal(toHex(compacted.frontier()), toHex(treeOf(7).frontier()));
});

test("a tree restored from a frontier starts at minIndex N and refuses anything below it", () => {
  const original = treeOf(11);
  const restored = MerkleTree.fromFrontier(original.frontier());
  assert.equal(restored.size, 11);
  assert.equal(restored.minIndex, 11);
  assert.equal(toHex(restored.root()), toHex(original.root()));
  assert.equal(toHex(restored.rootAt(11)), toHex(original.rootAt(11)));
  assert.throws(() => restored.rootAt(10), AssertionError);
  assert.throws(() => restored.leaf(10), AssertionError);
  assert.throws(() => restored.retract(10), AssertionError);
  restored.append(leafHash(11));
  assert.throws(() => restored.path(10, 12), AssertionError);
  assert.deepEqual(describe(restored.path(11, 12)), describe(treeOf(12).path(11, 12)));
  // Memory is the peaks only: a few slots per level, not proportional to N.
  assert.ok(restored.storedNodeCount <= 4 * 5, `stored ${restored.storedNodeCount}`);

  const empty = MerkleTree.fromFrontier(u64(0));
  assert.equal(empty.size, 0);
  assert.equal(empty.minIndex, 0);
  assert.throws(() => empty.root(), AssertionError);
  empty.append(leafHash(0));
  assert.equal(toHex(empty.root()), toHex(leafHash(0)));
});

test("a frontier at a size beyond 2^45 restores in O(log N) memory and keeps appending", () => {
  // Size 2^45 + 3: peaks at levels 45, 1 and 0. The peak hashes are arbitrary 32-byte values.
  const [p45, p1, p0] = [sha256(utf8("p45")), sha256(utf8("p1")), sha256(utf8("p0"))];
  const size = 2 ** 45 + 3;
  const tree = MerkleTree.fromFrontier(concatBytes([u64(size), p45, p1, p0]));
  assert.equal(tree.size, size);
  assert.equal(toHex(tree.root()), toHex(h(p45, h(p1, p0))));
  const x = leafHash(1);
  tree.append(x); // 2^45 + 4: leaf pairs with p0, that pairs with p1 into a level-2 peak
  assert.equal(toHex(tree.root()), toHex(h(p45, h(p1, h(p0, x)))));
  assert.deepEqual(
    describe(tree.path(size, size + 1)),
    describe([{ left: p0 }, { left: p1 }, { left: p45 }]),
  );
  assert.equal(toHex(tree.frontier()), toHex(concatBytes([u64(size + 1), p45, h(p1, h(p0, x))])));
  assert.ok(tree.storedNodeCount <= 4 * 46, `stored ${tree.storedNodeCount}`);
  tree.retract(size);
  assert.equal(toHex(tree.root()), toHex(h(p45, h(p1, p0))));
});

test("restored trees agree with the original on roots, rootAt and every later proof", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 140 }),
      fc.integer({ min: 0, max: 140 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 1_000_000 }),
      (cut, more, compactFraction, salt) => {
        const leaf = (i: number): Uint8Array => leafHash(salt * 1000 + i);
        const total = cut + more;
        const original = treeOf(cut, leaf);
        // A compacted original still yields the same frontier.
        original.compact(Math.floor(compactFraction * cut));
        const frontier = original.frontier();
        assert.equal(frontier.byteLength, 8 + 32 * popcount(cut));
        const restored = MerkleTree.fromFrontier(frontier);
        assert.equal(toHex(restored.frontier()), toHex(frontier), "canonical round trip");
        assert.equal(restored.size, cut);
        assert.equal(restored.minIndex, cut);
        for (let i = cut; i < total; i++) {
          original.append(leaf(i));
          restored.append(leaf(i));
        }
        if (total === 0) return;
        assert.equal(toHex(restored.root()), toHex(original.root()));
        assert.equal(toHex(restored.frontier()), toHex(original.frontier()));
        for (let s = Math.max(cut, 1); s <= total; s++) {
          const root = original.rootAt(s);
          assert.equal(toHex(restored.rootAt(s)), toHex(root), `rootAt ${s}`);
          // Every later index at the final size and at sizes near the cut; a stride elsewhere.
          const stride = s === total || s - cut <= 3 ? 1 : 7;
          for (let i = cut; i < s; i += stride) {
            const proof = restored.path(i, s);
            assert.deepEqual(describe(proof), describe(original.path(i, s)), `${i} in ${s}`);
            assert.equal(toHex(foldProof(restored.leaf(i), proof)), toHex(root), `fold ${i}`);
          }
        }
        // Rollback to any size >= cut and divergent re-appends stay in step.
        const back = cut + Math.floor(compactFraction * more);
        original.retract(back);
        restored.retract(back);
        for (let i = back; i < back + 5; i++) {
          original.append(leafHash(-1 - i));
          restored.append(leafHash(-1 - i));
        }
        assert.equal(toHex(restored.root()), toHex(original.root()));
        // Compaction above the cut keeps the restored tree working too.
        const target = cut + Math.floor((restored.size - cut) / 2);
        restored.compact(target);
        assert.equal(restored.minIndex, target);
        assert.equal(toHex(restored.frontier()), toHex(original.frontier()));
        restored.append(leafHash(7));
        original.append(leafHash(7));
        assert.equal(toHex(restored.root()), toHex(original.root()));
        const last = restored.size - 1;
        assert.deepEqual(describe(restored.path(last)), describe(original.path(last)));
      },
    ),
    { numRuns: 120 },
  );
});

test("malformed frontiers throw MerkleError InvalidFrontier", () => {
  const bad = (bytes: Uint8Array, why: string): void => {
    assert.throws(() => MerkleTree.fromFrontier(bytes), isInvalidFrontier, why);
  };
  bad(new Uint8Array(0), "empty");
  bad(new Uint8Array(7), "shorter than the size field");
  bad(u64(2n ** 53n), "size above 2^53 - 1");
  bad(concatBytes([u64(2n ** 64n - 1n), new Uint8Array(64 * 32)]), "size 2^64 - 1");
  bad(concatBytes([u64(1), new Uint8Array(31)]), "a truncated peak");

  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 5000 }),
      fc.integer({ min: 1, max: 64 }),
      (n, otherSize, extra) => {
        const frontier = treeOf(n).frontier();
        bad(concatBytes([frontier, new Uint8Array(extra)]), `${extra} extra bytes`);
        if (frontier.byteLength > 8) {
          const cut = 1 + ((extra - 1) % (frontier.byteLength - 8));
          bad(frontier.subarray(0, frontier.byteLength - cut), `truncated by ${cut}`);
        }
        bad(frontier.subarray(0, Math.min(7, extra)), "truncated into the size field");
        if (popcount(otherSize) !== popcount(n)) {
          const wrong = frontier.slice();
          wrong.set(u64(otherSize), 0);
          bad(wrong, `size field ${otherSize} for ${n}`);
        }
      },
    ),
    { numRuns: 200 },
  );
  // A frontier is accepted exactly when its shape is right, whatever the peak bytes are.
  const ok = MerkleTree.fromFrontier(concatBytes([u64(3), new Uint8Array(64).fill(9)]));
  assert.equal(ok.size, 3);
});
