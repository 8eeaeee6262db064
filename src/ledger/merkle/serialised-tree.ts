/**
 * The Merkle tree as CCF serialises it into `public:ccf.internal.tree` (ccf-compatibility.md
 * §6.4): merklecpp's `serialise(from, to)`, written by every signature transaction at seqno S
 * with to = S - 1 and from = the first leaf the tree still holds (CCF flushes its tree to the
 * commit point, so in practice the last committed signature), and read back by a node starting
 * from a snapshot. Layout, integers big-endian as merklecpp writes them:
 *
 *   u64 BE count     leaves from..to, count = to - from + 1
 *   u64 BE from      the first leaf index held (merklecpp's num_flushed)
 *   count x 32       the leaves from..to
 *   k x 32           the "extra hashes on the left edge": the roots of the perfect subtrees left
 *                    of leaf `from`, one per set bit of `from`, lowest level first (k is the
 *                    number of set bits). They are the peaks of the tree of `from` leaves.
 *
 * So the length is exactly 16 + 32 * (count + popcount(from)), and the bytes rebuild a tree of
 * from + count leaves whose root and later appends are those of the tree they came from (leaves
 * below `from` cannot be proven from it).
 *
 * Pure. Malformed bytes are a SerialisedTreeError; Consortia 0.1's frontier layout a
 * LegacyFormatError (legacy-format.ts).
 */
import { assert } from "../../base/assert.js";
import { getU64LE } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import { SHA256_BYTES } from "../../crypto/hash.js";
import { LEGACY_TREE_MESSAGE, LegacyFormatError, LegacyFormatErrorCode } from "../legacy-format.js";
import { MerkleTree, peakLevels } from "./merkle-tree.js";

const HEADER_BYTES = 16;

export enum SerialisedTreeErrorCode {
  /** Too short, a count or index above 2^53 - 1, or a length that disagrees with them. */
  Malformed = "Malformed",
}
export type SerialisedTreeErrorType = { code: SerialisedTreeErrorCode };
/** Malformed serialised tree bytes (from a ledger or snapshot); misuse in memory is an assert. */
export class SerialisedTreeError extends CcfError<SerialisedTreeErrorType> {}

function malformed(message: string): never {
  throw new SerialisedTreeError(
    { code: SerialisedTreeErrorCode.Malformed },
    `invalid serialised Merkle tree: ${message}`,
  );
}

/** Leaf indices to serialise, both inclusive (merklecpp's `from` and `to`). */
export interface TreeRange {
  readonly fromIndex: number;
  readonly toIndex: number;
}

/**
 * merklecpp's serialise(from, to) of `tree`: minIndex <= fromIndex <= toIndex < tree.size. The
 * extras depend only on fromIndex, so a tree longer than toIndex + 1 gives the same bytes.
 */
export function encodeSerialisedTree(tree: MerkleTree, range: TreeRange): Uint8Array {
  const { fromIndex, toIndex } = range;
  assert(fromIndex >= tree.minIndex, `serialise from ${fromIndex} below ${tree.minIndex}`);
  assert(fromIndex <= toIndex && toIndex < tree.size, `serialise to ${toIndex} out of range`);
  const count = toIndex - fromIndex + 1;
  const extras = tree.peaks(fromIndex);
  const out = new Uint8Array(HEADER_BYTES + (count + extras.length) * SHA256_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(count), false);
  view.setBigUint64(8, BigInt(fromIndex), false);
  out.set(tree.leafRange(fromIndex, count), HEADER_BYTES);
  let at = HEADER_BYTES + count * SHA256_BYTES;
  for (const extra of extras) {
    out.set(extra, at);
    at += SHA256_BYTES;
  }
  return out;
}

/** What a serialised tree's header says, once its length has been checked against it. */
export interface SerialisedTreeShape {
  /** merklecpp's num_flushed: the first leaf index held. */
  readonly fromIndex: number;
  readonly leafCount: number;
}

/** Reads and checks the header; throws SerialisedTreeError or LegacyFormatError. */
export function serialisedTreeShape(bytes: Uint8Array): SerialisedTreeShape {
  if (bytes.byteLength < HEADER_BYTES) {
    refuseLegacy(bytes);
    malformed(`${bytes.byteLength} bytes, shorter than its 16-byte header`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getBigUint64(0, false);
  const from = view.getBigUint64(8, false);
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (count > limit || from > limit) {
    refuseLegacy(bytes);
    malformed("leaf count or first index exceeds 2^53 - 1");
  }
  const leafCount = Number(count);
  const fromIndex = Number(from);
  const expected = HEADER_BYTES + (leafCount + peakLevels(fromIndex).length) * SHA256_BYTES;
  if (bytes.byteLength !== expected) {
    refuseLegacy(bytes);
    malformed(
      `${bytes.byteLength} bytes, ${leafCount} leaves from index ${fromIndex} need ${expected}`,
    );
  }
  return { fromIndex, leafCount };
}

/**
 * The tree the bytes describe: size fromIndex + leafCount, minIndex fromIndex. Rebuilding costs
 * about one node hash per leaf. Throws SerialisedTreeError or LegacyFormatError.
 */
export function decodeSerialisedTree(bytes: Uint8Array): MerkleTree {
  const { fromIndex, leafCount } = serialisedTreeShape(bytes);
  const extrasAt = HEADER_BYTES + leafCount * SHA256_BYTES;
  const extras = peakLevels(fromIndex).map((_, i) =>
    bytes.subarray(extrasAt + i * SHA256_BYTES, extrasAt + (i + 1) * SHA256_BYTES),
  );
  const tree = MerkleTree.fromPeaks(fromIndex, extras);
  for (let i = 0; i < leafCount; i++) {
    const at = HEADER_BYTES + i * SHA256_BYTES;
    tree.append(bytes.subarray(at, at + SHA256_BYTES));
  }
  return tree;
}

/**
 * Consortia 0.1's frontier (u64 LE size, then 32 bytes per set bit of the size) is 8 mod 32
 * bytes long, CCF's layout 16 mod 32: bytes of the old shape are refused by name.
 */
function refuseLegacy(bytes: Uint8Array): void {
  if (bytes.byteLength < 8) return;
  const size = getU64LE(bytes, 0);
  if (!Number.isSafeInteger(size)) return;
  if (bytes.byteLength === 8 + peakLevels(size).length * SHA256_BYTES) {
    throw new LegacyFormatError(
      { code: LegacyFormatErrorCode.LegacyTreeLayout },
      LEGACY_TREE_MESSAGE,
    );
  }
}
