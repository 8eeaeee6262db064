// The Merkle tree as CCF serialises it (src/ledger/merkle/serialised-tree.ts, MerkleTree.peaks and
// fromPeaks): merklecpp's serialise(from, to). Oracles: the layout is pinned against bytes built
// here by hand from merklecpp's definition (u64 BE count, u64 BE first index, the leaves, then
// the left-edge hashes of `from`, lowest level first); a tree value recorded from a ledger CCF
// 6.0.17 wrote (its tests/testdata/cose_flipflop_service, signature 2.16) decodes to the root
// CCF signed there; a property test cuts random leaf sequences at a random `from` and checks
// the decoded tree against the original on roots, historical roots, every later proof, retract,
// compact and re-encoding. Malformed bytes throw SerialisedTreeError, and Consortia 0.1's
// frontier layout a LegacyFormatError naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AssertionError } from "../../../src/base/assert.js";
import { concatBytes, fromHex, toHex, utf8 } from "../../../src/base/bytes.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { LegacyFormatError, LegacyFormatErrorCode } from "../../../src/ledger/legacy-format.js";
import { MerkleTree } from "../../../src/ledger/merkle/merkle-tree.js";
import { foldProof, type ProofStep } from "../../../src/ledger/merkle/proof.js";
import {
  decodeSerialisedTree,
  encodeSerialisedTree,
  SerialisedTreeError,
  SerialisedTreeErrorCode,
} from "../../../src/ledger/merkle/serialised-tree.js";

function leafHash(i: number): Uint8Array {
  return sha256(utf8(`serialised-leaf-${i}`));
}

/** Independent of the tree's hashing: plain SHA-256 over the concatenation. */
function h(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concatBytes([left, right]));
}

/** A u64, big-endian (merklecpp) or little-endian (Consortia 0.1), built with BigInt. */
function u64(n: number | bigint, littleEndian = false): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), littleEndian);
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

function isMalformed(error: unknown): boolean {
  return error instanceof SerialisedTreeError && error.code === SerialisedTreeErrorCode.Malformed;
}

function serialise(tree: MerkleTree, fromIndex: number, toIndex = tree.size - 1): Uint8Array {
  return encodeSerialisedTree(tree, { fromIndex, toIndex });
}

test("the layout is merklecpp's: count, first index, leaves, then left-edge hashes lowest first", () => {
  const l = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => leafHash(i));
  const [l0, l1, l2, l3, l4, l5, l6] = l as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  const tree = treeOf(8);
  // From 0: the leaves only (as CCF's first signature writes leaves 0 and 1).
  assert.equal(toHex(serialise(treeOf(2), 0)), toHex(concatBytes([u64(2), u64(0), l0, l1])));
  // From 2 (binary 10): one extra, the level-1 node left of leaf 2.
  assert.equal(
    toHex(serialise(treeOf(4), 2)),
    toHex(concatBytes([u64(2), u64(2), l2, l3, h(l0, l1)])),
  );
  // From 7 (binary 111): three extras, lowest level first; `to` below the end is allowed.
  const h0123 = h(h(l0, l1), h(l2, l3));
  assert.equal(
    toHex(serialise(tree, 7, 7)),
    toHex(concatBytes([u64(1), u64(7), l[7]!, l6, h(l4, l5), h0123])),
  );
  assert.equal(
    toHex(serialise(tree, 6, 6)),
    toHex(concatBytes([u64(1), u64(6), l6, h(l4, l5), h0123])),
  );
});

test("a tree CCF 6 wrote decodes to the root CCF signed at that signature", () => {
  // Signature 2.16 of CCF's cose_flipflop_service test ledger: leaves 14 and 15, and the three
  // left-edge hashes of 14 (binary 1110); CCF signed the root below over leaves 0..15.
  const bytes = fromHex(
    "0000000000000002000000000000000e42d2afbe8f87eaa91f35d2795bb70cf07f80f09b2ed5fd2a9027a210ef" +
      "e4a030f1e48ff93543c7e82ff008585a6b10e3c76601f08783c868c20538350d7084f381152903a79ef942f2" +
      "ca018f815d60b1517434da4555cff31f6c61691c310e60b726053b166eb365b2d7efb9a8cc53beae5f510b6469" +
      "f5a1aaf1834f40f0ce575db0ec23915fcb0201cccad120cf436dd5c1ba51bdae744b2ae113e2c19de60d",
  )!;
  const tree = decodeSerialisedTree(bytes);
  assert.equal(tree.size, 16);
  assert.equal(tree.minIndex, 14);
  assert.equal(
    toHex(tree.root()),
    "e05d50857029a0ae4f86b9563239b5b1f2097b76108e692034b16358221cea97",
  );
  assert.equal(toHex(serialise(tree, 14)), toHex(bytes), "re-encodes to CCF's bytes");
});

test("a decoded tree starts at minIndex `from` and refuses anything below it", () => {
  const original = treeOf(11);
  const restored = decodeSerialisedTree(serialise(original, 9));
  assert.equal(restored.size, 11);
  assert.equal(restored.minIndex, 9);
  assert.equal(toHex(restored.root()), toHex(original.root()));
  assert.equal(toHex(restored.rootAt(9)), toHex(original.rootAt(9)));
  assert.equal(toHex(restored.leaf(9)), toHex(original.leaf(9)));
  assert.throws(() => restored.rootAt(8), AssertionError);
  assert.throws(() => restored.leaf(8), AssertionError);
  assert.throws(() => restored.retract(8), AssertionError);
  restored.append(leafHash(11));
  assert.throws(() => restored.path(8, 12), AssertionError);
  assert.deepEqual(describe(restored.path(9, 12)), describe(treeOf(12).path(9, 12)));

  const empty = decodeSerialisedTree(concatBytes([u64(0), u64(0)]));
  assert.equal(empty.size, 0);
  assert.throws(() => empty.root(), AssertionError);
});

test("a tree beyond 2^45 leaves decodes in O(log N) memory and keeps appending", () => {
  // From 2^45 + 3 with no leaves: extras at levels 0, 1 and 45 (arbitrary 32-byte values).
  const [p45, p1, p0] = [sha256(utf8("p45")), sha256(utf8("p1")), sha256(utf8("p0"))];
  const size = 2 ** 45 + 3;
  const tree = decodeSerialisedTree(concatBytes([u64(0), u64(size), p0, p1, p45]));
  assert.equal(tree.size, size);
  assert.equal(toHex(tree.root()), toHex(h(p45, h(p1, p0))));
  const x = leafHash(1);
  tree.append(x);
  assert.equal(toHex(tree.root()), toHex(h(p45, h(p1, h(p0, x)))));
  assert.deepEqual(
    describe(tree.path(size, size + 1)),
    describe([{ left: p0 }, { left: p1 }, { left: p45 }]),
  );
  assert.deepEqual(tree.peaks(size + 1).map(toHex), [h(p1, h(p0, x)), p45].map(toHex));
  assert.ok(tree.storedNodeCount <= 4 * 46, `stored ${tree.storedNodeCount}`);
  tree.retract(size);
  assert.equal(toHex(tree.root()), toHex(h(p45, h(p1, p0))));
});

test("decoded trees agree with the original on roots, rootAt and every later proof", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 140 }),
      fc.integer({ min: 0, max: 60 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.integer({ min: 0, max: 1_000_000 }),
      (size, more, fromFraction, salt) => {
        const leaf = (i: number): Uint8Array => leafHash(salt * 1000 + i);
        const from = Math.floor(fromFraction * (size - 1));
        const original = treeOf(size, leaf);
        // A compacted original serialises the same bytes.
        const bytes = serialise(original, from);
        original.compact(from);
        assert.equal(toHex(serialise(original, from)), toHex(bytes));
        assert.equal(bytes.byteLength, 16 + 32 * (size - from + popcount(from)));
        const restored = decodeSerialisedTree(bytes);
        assert.equal(toHex(serialise(restored, from)), toHex(bytes), "round trip");
        assert.equal(restored.size, size);
        assert.equal(restored.minIndex, from);
        const total = size + more;
        for (let i = size; i < total; i++) {
          original.append(leaf(i));
          restored.append(leaf(i));
        }
        assert.equal(toHex(restored.root()), toHex(original.root()));
        for (let s = Math.max(from, 1); s <= total; s += s - from <= 3 || s === total ? 1 : 5) {
          const root = original.rootAt(s);
          assert.equal(toHex(restored.rootAt(s)), toHex(root), `rootAt ${s}`);
          for (let i = from; i < s; i += s === total ? 1 : 3) {
            const proof = restored.path(i, s);
            assert.deepEqual(describe(proof), describe(original.path(i, s)), `${i} in ${s}`);
            assert.equal(toHex(foldProof(restored.leaf(i), proof)), toHex(root), `fold ${i}`);
          }
        }
        // Rollback to any size >= from and divergent re-appends stay in step.
        const back = from + Math.floor(fromFraction * (total - from));
        original.retract(back);
        restored.retract(back);
        for (let i = back; i < back + 5; i++) {
          original.append(leafHash(-1 - i));
          restored.append(leafHash(-1 - i));
        }
        assert.equal(toHex(restored.root()), toHex(original.root()));
        const last = restored.size - 1;
        assert.equal(toHex(serialise(restored, last)), toHex(serialise(original, last)));
      },
    ),
    { numRuns: 120 },
  );
});

test("malformed serialised trees throw SerialisedTreeError Malformed", () => {
  const bad = (bytes: Uint8Array, why: string): void => {
    assert.throws(() => decodeSerialisedTree(bytes), isMalformed, why);
  };
  bad(new Uint8Array(0), "empty");
  bad(new Uint8Array(15), "shorter than the header");
  bad(concatBytes([u64(2n ** 53n), u64(0)]), "count above 2^53 - 1");
  bad(concatBytes([u64(0), u64(2n ** 64n - 1n)]), "first index 2^64 - 1");
  bad(concatBytes([u64(1), u64(0), new Uint8Array(31)]), "a truncated leaf");
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 39 }),
      fc.integer({ min: 1, max: 64 }),
      (n, fromSeed, extra) => {
        const from = fromSeed % n;
        const bytes = serialise(treeOf(n), from);
        bad(concatBytes([bytes, new Uint8Array(extra * 32)]), `${extra} extra hashes`);
        bad(bytes.subarray(0, bytes.byteLength - 1 - ((extra - 1) % 16)), "truncated");
        const wrongFrom = bytes.slice();
        wrongFrom.set(u64(from + 1 + extra), 8);
        if (popcount(from + 1 + extra) !== popcount(from)) bad(wrongFrom, "another first index");
      },
    ),
    { numRuns: 200 },
  );
  // Bytes of the right shape are accepted, whatever the hashes are.
  const ok = decodeSerialisedTree(concatBytes([u64(1), u64(3), new Uint8Array(96).fill(9)]));
  assert.equal(ok.size, 4);
});

test("Consortia 0.1's frontier layout is refused naming the format", () => {
  const legacy = (bytes: Uint8Array): void => {
    assert.throws(
      () => decodeSerialisedTree(bytes),
      (e: unknown) =>
        e instanceof LegacyFormatError &&
        e.code === LegacyFormatErrorCode.LegacyTreeLayout &&
        /Consortia 0\.1/.test(e.message),
    );
  };
  // u64 LE size, then one peak per set bit of the size, highest level first.
  legacy(u64(0, true));
  legacy(concatBytes([u64(1, true), leafHash(0)]));
  legacy(concatBytes([u64(7, true), leafHash(1), leafHash(2), leafHash(3)]));
  legacy(concatBytes([u64(1000, true), new Uint8Array(32 * popcount(1000))]));
});
