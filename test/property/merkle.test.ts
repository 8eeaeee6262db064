// Property tests for the Merkle history tree (src/ledger/merkle) against a naive model written
// here from the definition (recursive left-balanced root, RFC 6962 PATH without prefixes), sharing
// no code with the implementation: every size 1..2000 root, every proof for sizes up to 200,
// sampled proofs for larger sizes, and random append/retract/compact sequences. The incremental
// per-level bookkeeping is exactly where off-by-one bugs hide, so exhaustive small sizes matter.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { concatBytes, toHex, utf8 } from "../../src/base/bytes.js";
import { sha256 } from "../../src/crypto/hash.js";
import { MerkleTree } from "../../src/ledger/merkle/merkle-tree.js";
import { foldProof, type ProofStep } from "../../src/ledger/merkle/proof.js";

function leafHash(i: number): Uint8Array {
  return sha256(utf8(`prop-leaf-${i}`));
}

function naiveNode(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes([left, right]));
}

/** Largest power of two strictly below n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function naiveRoot(leaves: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const n = to - from;
  assert.ok(n >= 1);
  if (n === 1) return leaves[from]!;
  const k = splitPoint(n);
  return naiveNode(naiveRoot(leaves, from, from + k), naiveRoot(leaves, from + k, to));
}

/** RFC 6962 PATH(m, D[from..to)), leaf to root, as "L:hex"/"R:hex" strings. */
function naivePath(leaves: readonly Uint8Array[], m: number, from: number, to: number): string[] {
  const n = to - from;
  if (n === 1) return [];
  const k = splitPoint(n);
  if (m < k) {
    return [...naivePath(leaves, m, from, from + k), `R:${toHex(naiveRoot(leaves, from + k, to))}`];
  }
  const left = `L:${toHex(naiveRoot(leaves, from, from + k))}`;
  return [...naivePath(leaves, m - k, from + k, to), left];
}

function describe(proof: readonly ProofStep[]): string[] {
  return proof.map((step) => ("left" in step ? `L:${toHex(step.left)}` : `R:${toHex(step.right)}`));
}

const leaves2000 = Array.from({ length: 2000 }, (_, i) => leafHash(i));

test("root() equals the naive recursive root after every append up to 2000 leaves", () => {
  const tree = new MerkleTree();
  // The naive root memoizes nothing, but the left half of size n is a perfect power-of-two tree
  // that only changes at powers of two, so caching it keeps the check independent yet O(n log n).
  let perfectSize = 0;
  let perfectRoot: Uint8Array = new Uint8Array(0);
  for (let n = 1; n <= 2000; n++) {
    tree.append(leaves2000[n - 1]!);
    let expected: Uint8Array;
    if (n === 1) {
      expected = leaves2000[0]!;
    } else {
      const k = splitPoint(n);
      if (k !== perfectSize) {
        perfectSize = k;
        perfectRoot = naiveRoot(leaves2000, 0, k);
      }
      expected = naiveNode(perfectRoot, naiveRoot(leaves2000, k, n));
    }
    assert.equal(toHex(tree.root()), toHex(expected), `size ${n}`);
  }
});

test("every proof in every tree up to 200 leaves is the RFC 6962 path and folds to rootAt", () => {
  const tree = new MerkleTree();
  for (let i = 0; i < 200; i++) tree.append(leaves2000[i]!);
  for (let size = 1; size <= 200; size++) {
    const root = tree.rootAt(size);
    assert.equal(toHex(root), toHex(naiveRoot(leaves2000, 0, size)), `rootAt ${size}`);
    for (let i = 0; i < size; i++) {
      const proof = tree.path(i, size);
      assert.equal(toHex(foldProof(tree.leaf(i), proof)), toHex(root), `leaf ${i} in ${size}`);
      if (size <= 64) assert.deepEqual(describe(proof), naivePath(leaves2000, i, 0, size));
    }
  }
});

test("sampled proofs in larger trees fold to the naive root", () => {
  const tree = new MerkleTree();
  for (const leaf of leaves2000) tree.append(leaf);
  fc.assert(
    fc.property(fc.integer({ min: 201, max: 2000 }), fc.nat(), (size, seed) => {
      const i = seed % size;
      const proof = tree.path(i, size);
      assert.equal(toHex(foldProof(tree.leaf(i), proof)), toHex(tree.rootAt(size)));
      assert.deepEqual(describe(proof), naivePath(leaves2000, i, 0, size));
    }),
    { numRuns: 150 },
  );
});

type Op =
  | { kind: "append"; count: number }
  | { kind: "retract"; fraction: number }
  | { kind: "compact"; fraction: number };

const fractionArb = fc.double({ min: 0, max: 1, noNaN: true });
const countArb = fc.integer({ min: 1, max: 70 });
const appendArb = fc.record({ kind: fc.constant("append" as const), count: countArb });
const retractArb = fc.record({ kind: fc.constant("retract" as const), fraction: fractionArb });
const compactArb = fc.record({ kind: fc.constant("compact" as const), fraction: fractionArb });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: appendArb, weight: 3 },
  { arbitrary: retractArb, weight: 1 },
  { arbitrary: compactArb, weight: 1 },
);

/** Checks the tree against the model: root, a few historical roots and proofs, leaf access. */
function checkAgainstModel(
  tree: MerkleTree,
  model: readonly Uint8Array[],
  minIndex: number,
  pick: (bound: number) => number,
): void {
  assert.equal(tree.size, model.length);
  assert.equal(tree.minIndex, minIndex);
  if (model.length === 0) return;
  assert.equal(toHex(tree.root()), toHex(naiveRoot(model, 0, model.length)));
  const lowest = Math.max(minIndex, 1);
  for (let sample = 0; sample < 4; sample++) {
    const size = lowest + pick(model.length - lowest + 1);
    const expected = toHex(naiveRoot(model, 0, size));
    assert.equal(toHex(tree.rootAt(size)), expected, `rootAt ${size}`);
    if (size > minIndex) {
      const i = minIndex + pick(size - minIndex);
      assert.equal(toHex(tree.leaf(i)), toHex(model[i]!));
      assert.equal(toHex(foldProof(tree.leaf(i), tree.path(i, size))), expected, `${i} in ${size}`);
    }
  }
  if (minIndex > 0) assert.throws(() => tree.leaf(minIndex - 1));
}

test("random append/retract/compact sequences agree with the naive model", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 25 }), fc.infiniteStream(fc.nat()), (ops, picks) => {
      const pick = (bound: number): number => picks.next().value % bound;
      const tree = new MerkleTree();
      const model: Uint8Array[] = [];
      let minIndex = 0;
      let next = 0; // leaf content counter, so re-appended leaves differ from retracted ones
      for (const op of ops) {
        if (op.kind === "append") {
          for (let k = 0; k < op.count; k++) {
            const leaf = leafHash(100_000 + next++);
            tree.append(leaf);
            model.push(leaf);
          }
        } else if (op.kind === "retract") {
          const size = minIndex + Math.floor(op.fraction * (model.length - minIndex));
          tree.retract(size);
          model.length = size;
        } else {
          const target = Math.floor(op.fraction * model.length);
          tree.compact(target);
          minIndex = Math.max(minIndex, target);
        }
        checkAgainstModel(tree, model, minIndex, pick);
        const span = model.length - minIndex;
        // Memory follows what is retained: <= span / 2^h + 2 live nodes on each of <= 12 levels,
        // each level's buffer at most 4x its live nodes (and at least 4 slots).
        assert.ok(tree.storedNodeCount <= 8 * span + 24 * 12, `stored ${tree.storedNodeCount}`);
      }
      if (minIndex > 0) assert.throws(() => tree.retract(minIndex - 1));
    }),
    { numRuns: 300 },
  );
});
