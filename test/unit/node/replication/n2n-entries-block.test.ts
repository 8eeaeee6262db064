/**
 * The AppendEntries entries block (src/node/replication/n2n/entries-block.ts): its exact layout
 * (golden bytes), its place in a message (right after the CBOR envelope), payloads decoded as
 * views of the received frame rather than copies, and each way a block can be malformed
 * refused as a "malformed" outcome, through decodeN2n as N2nDecodeError.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode } from "cborg";
import { concatBytes, toHex, utf8 } from "../../../../src/base/bytes.js";
import type { NodeId, RaftEntry, Seqno, View } from "../../../../src/consensus/types.js";
import {
  decodeEntriesBlock,
  encodeEntriesBlock,
} from "../../../../src/node/replication/n2n/entries-block.js";
import {
  decodeN2n,
  encodeN2n,
  N2nDecodeError,
} from "../../../../src/node/replication/n2n/messages.js";

const ENTRIES: RaftEntry[] = [
  {
    seqno: 7 as Seqno,
    view: 2 as View,
    isSignature: false,
    configuration: ["n1", "é"] as NodeId[],
    payload: utf8("ab"),
  },
  {
    seqno: Number.MAX_SAFE_INTEGER as Seqno,
    view: 0x1_0000_0001 as View,
    isSignature: true,
    configuration: undefined,
    payload: new Uint8Array(0),
  },
];

const GOLDEN =
  "02000000" + // two entries
  "0700000000000000" +
  "0200000000000000" +
  "02" +
  "02000000" + // seqno 7, view 2, config, 2 B
  "0200" +
  "0200" +
  "6e31" +
  "0200" +
  "c3a9" + // configuration ["n1", "é"]
  "6162" + // payload "ab"
  "ffffffffffff1f00" +
  "0100000001000000" +
  "01" +
  "00000000"; // 2^53-1, 2^32+1, signature, 0 B

test("the block layout is fixed: golden bytes, and they decode back to the entries", () => {
  assert.equal(toHex(encodeEntriesBlock(ENTRIES)), GOLDEN);
  assert.deepEqual(decodeEntriesBlock(encodeEntriesBlock(ENTRIES)), {
    kind: "ok",
    entries: ENTRIES,
  });
  assert.equal(toHex(encodeEntriesBlock([])), "00000000");
  assert.deepEqual(decodeEntriesBlock(encodeEntriesBlock([])), { kind: "ok", entries: [] });
});

test("decoded payloads are views of the block, not copies", () => {
  const entries = [1, 2, 3].map((i) => ({
    seqno: i as Seqno,
    view: 1 as View,
    isSignature: false,
    configuration: undefined,
    payload: new Uint8Array(100).fill(i),
  }));
  const block = encodeEntriesBlock(entries);
  const decoded = decodeEntriesBlock(block);
  assert.ok(decoded.kind === "ok");
  for (const [i, e] of decoded.entries.entries()) {
    assert.equal(e.payload.buffer, block.buffer, `entry ${i} shares the block's buffer`);
    assert.equal(e.payload.byteLength, 100);
    assert.equal(e.payload[0], i + 1);
  }
  // An offset block (a view into a larger buffer) decodes the same.
  const padded = new Uint8Array(block.byteLength + 3);
  padded.set(block, 3);
  assert.deepEqual(decodeEntriesBlock(padded.subarray(3)), decoded);
});

test("an AppendEntries is its CBOR envelope, then the block; decodeN2n reads it in place", () => {
  const message = {
    type: "append_entries" as const,
    view: 3 as View,
    prevSeqno: 6 as Seqno,
    prevView: 2 as View,
    leaderCommit: 5 as Seqno,
    entries: ENTRIES,
  };
  const wire = encodeN2n({ kind: "raft", fromAddress: "h:1", message });
  assert.equal(toHex(wire), toHex(encode([0, "h:1", [0, 3, 6, 2, 5]])) + GOLDEN);
  const frame = wire.slice(); // as the frame decoder hands it over: a buffer of its own
  const decoded = decodeN2n(frame);
  assert.ok(decoded.kind === "raft" && decoded.message.type === "append_entries");
  assert.deepEqual(decoded.message, message);
  for (const e of decoded.message.entries) assert.equal(e.payload.buffer, frame.buffer, "a view");
  // Bytes after any other message are refused, as before.
  const response = { type: "append_entries_response" as const, view: 1 as View };
  const ack = encodeN2n({
    kind: "raft",
    fromAddress: "h:1",
    message: { ...response, success: true, lastSeqno: 1 as Seqno },
  });
  assert.throws(() => decodeN2n(concatBytes([ack, encodeEntriesBlock([])])), N2nDecodeError);
});

/** GOLDEN with the hex at `offset` (in bytes) replaced by `hex`. */
function patched(offset: number, hex: string): string {
  return GOLDEN.slice(0, offset * 2) + hex + GOLDEN.slice(offset * 2 + hex.length);
}

const MALFORMED: readonly [string, string][] = [
  ["", "no entry count"],
  ["000000", "no entry count"],
  ["01000000", "1 entries in 0 bytes"],
  ["ffffffff" + "00".repeat(21), "4294967295 entries"],
  [GOLDEN.slice(0, -2), "past the end"], // truncated last header
  [GOLDEN + "00", "1 trailing bytes"],
  [patched(4 + 7, "ff"), "beyond a safe integer"], // seqno high word above 2^21
  [patched(4 + 8 + 7, "20"), "beyond a safe integer"], // view high word above 2^21
  [patched(4 + 16, "06"), "unknown entry flags 6"],
  [patched(4 + 16, "00"), "entry 1: "], // configuration flag cleared: the next header is garbage
  [patched(4 + 17, "ff"), "payload past the end"],
  [patched(4 + 21, "ff00"), "configuration past the end"],
  [patched(4 + 21 + 2, "ff00"), "node id past the end"],
  [patched(4 + 21 + 2 + 4 + 2, "c328"), "node id not UTF-8"],
];

test("malformed blocks are refused with a reason, and decodeN2n turns them into N2nDecodeError", () => {
  for (const [hex, reason] of MALFORMED) {
    const block = Uint8Array.from(Buffer.from(hex, "hex"));
    const outcome = decodeEntriesBlock(block);
    assert.equal(outcome.kind, "malformed", hex);
    assert.ok(
      outcome.kind === "malformed" && outcome.reason.includes(reason),
      `${hex}: ${outcome.kind === "malformed" ? outcome.reason : ""}`,
    );
    const wire = concatBytes([encode([0, "127.0.0.1:1", [0, 1, 0, 0, 0]]), block]);
    assert.throws(() => decodeN2n(wire), N2nDecodeError, hex);
  }
});
