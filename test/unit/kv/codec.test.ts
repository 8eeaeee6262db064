// The write-set codec on hand-made inputs: the exact bytes of a known write set (the CCF domain
// layout, ccf-compatibility.md §6.3), and one malformed input per rejection rule, each with
// the CodecErrorCode a caller branches on. Random inputs are in test/property/codec.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes, toHex, utf8 } from "../../../src/base/bytes.js";
import { CodecError, CodecErrorCode, decodeMaps, encodeMaps } from "../../../src/kv/codec.js";
import { type MapWrites } from "../../../src/kv/write-set.js";

function u64(n: number | bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

function blob(bytes: Uint8Array | string): Uint8Array {
  const raw = typeof bytes === "string" ? utf8(bytes) : bytes;
  return concatBytes([u64(raw.byteLength), raw]);
}

interface RawMap {
  name: Uint8Array | string;
  readVersion?: number;
  readCount?: number;
  writes?: Array<[string, string]>;
  removals?: string[];
}

/** Encodes a map by hand, canonical or not, so tests can build what encodeMaps never would. */
function rawMap(map: RawMap): Uint8Array {
  const writes = map.writes ?? [];
  const removals = map.removals ?? [];
  return concatBytes([
    blob(map.name),
    u64(map.readVersion ?? 0),
    u64(map.readCount ?? 0),
    u64(writes.length),
    ...writes.flatMap(([k, v]) => [blob(k), blob(v)]),
    u64(removals.length),
    ...removals.map((k) => blob(k)),
  ]);
}

function codeOf(bytes: Uint8Array): CodecErrorCode | "decoded" {
  try {
    decodeMaps(bytes);
    return "decoded";
  } catch (error) {
    assert.ok(error instanceof CodecError, `not a CodecError: ${String(error)}`);
    return error.code;
  }
}

test("a write set encodes to the CCF per-map layout, byte for byte", () => {
  const maps: MapWrites[] = [
    {
      name: "public:a",
      writes: [
        { key: new Uint8Array([1]), value: new Uint8Array([2, 3]) },
        { key: new Uint8Array([4]), value: null },
      ],
    },
  ];
  const expected = [
    ["0800000000000000", toHex(utf8("public:a"))], // name
    ["0000000000000000", "0000000000000000"], // read version, read count
    ["0100000000000000", "0100000000000000", "01", "0200000000000000", "0203"], // 1 write
    ["0100000000000000", "0100000000000000", "04"], // 1 removal
  ];
  assert.equal(toHex(encodeMaps(maps)), expected.flat().join(""));
  const oneWrite = [{ name: "public:a", writes: [{ key: utf8("k"), value: utf8("v") }] }];
  assert.equal(
    toHex(rawMap({ name: "public:a", writes: [["k", "v"]] })),
    toHex(encodeMaps(oneWrite)),
  );
  assert.deepEqual(decodeMaps(encodeMaps(maps)), maps);
  assert.deepEqual(decodeMaps(new Uint8Array(0)), []);
});

test("a name starting with a BOM and an empty value survive a round trip", () => {
  const maps: MapWrites[] = [
    { name: "\uFEFFbom", writes: [{ key: new Uint8Array(0), value: new Uint8Array(0) }] },
  ];
  assert.deepEqual(decodeMaps(encodeMaps(maps)), maps);
});

test("each malformed input is rejected with the code for its rule", () => {
  const good = rawMap({ name: "a", writes: [["k", "v"]], removals: ["r"] });
  const { Truncated, LengthOutOfRange, InvalidName, NotCanonical, UnexpectedField } =
    CodecErrorCode;
  const two = (first: RawMap, second: RawMap): Uint8Array =>
    concatBytes([rawMap(first), rawMap(second)]);
  const both = rawMap({ name: "a", writes: [["k", "1"]], removals: ["k"] });
  const cases: Array<[string, Uint8Array, CodecErrorCode]> = [
    ["truncated length field", good.subarray(0, 5), Truncated],
    ["name length beyond the end", concatBytes([u64(100), utf8("abc")]), Truncated],
    ["value cut short", good.subarray(0, good.byteLength - 18), Truncated],
    ["missing remove count", good.subarray(0, good.byteLength - 17), Truncated],
    ["remove count cut short", good.subarray(0, good.byteLength - 12), Truncated],
    ["removed key cut short", good.subarray(0, good.byteLength - 1), Truncated],
    ["length of 2^60", concatBytes([u64(2n ** 60n), utf8("a")]), LengthOutOfRange],
    [
      "huge write count",
      concatBytes([blob("a"), u64(0), u64(0), u64(1_000_000), u64(0)]),
      LengthOutOfRange,
    ],
    [
      "remove count of 2^62",
      concatBytes([blob("a"), u64(0), u64(0), u64(0), u64(2n ** 62n)]),
      LengthOutOfRange,
    ],
    ["non-UTF-8 name", rawMap({ name: new Uint8Array([0x61, 0xff]) }), InvalidName],
    ["UTF-8 surrogate in name", rawMap({ name: new Uint8Array([0xed, 0xa0, 0x80]) }), InvalidName],
    ["overlong UTF-8 in name", rawMap({ name: new Uint8Array([0xc0, 0xaf]) }), InvalidName],
    ["empty name", rawMap({ name: "" }), InvalidName],
    ["maps out of order", two({ name: "b" }, { name: "a" }), NotCanonical],
    ["duplicate map", two({ name: "a" }, { name: "a" }), NotCanonical],
    [
      "writes out of order",
      rawMap({
        name: "a",
        writes: [
          ["b", "1"],
          ["a", "2"],
        ],
      }),
      NotCanonical,
    ],
    [
      "duplicate write",
      rawMap({
        name: "a",
        writes: [
          ["a", "1"],
          ["a", "2"],
        ],
      }),
      NotCanonical,
    ],
    ["removals out of order", rawMap({ name: "a", removals: ["b", "a"] }), NotCanonical],
    ["written and removed", both, NotCanonical],
    ["non-zero read count", rawMap({ name: "a", readCount: 1 }), UnexpectedField],
    ["non-zero read version", rawMap({ name: "a", readVersion: 7 }), UnexpectedField],
  ];
  assert.equal(codeOf(good), "decoded");
  for (const [what, bytes, code] of cases) assert.equal(codeOf(bytes), code, what);
});

test("a codec error reports the offset where decoding stopped", () => {
  const bytes = concatBytes([rawMap({ name: "b" }), rawMap({ name: "a" })]);
  const second = rawMap({ name: "b" }).byteLength;
  assert.throws(
    () => decodeMaps(bytes),
    (error: unknown) =>
      error instanceof CodecError &&
      error.code === CodecErrorCode.NotCanonical &&
      error.type.offset === second + 9,
  );
});
