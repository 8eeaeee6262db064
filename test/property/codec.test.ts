// Random inputs for the write-set codec and the canonical write sets the Store produces. The
// ledger hashes these bytes, so: decode(encode(w)) deep-equals w and encode(decode(b)) equals b;
// the same writes give the same bytes however a tx made them; and no corruption of valid bytes
// (one changed byte, a cut, random garbage) escapes as anything but a CodecError or a write set
// that re-encodes to exactly the corrupted bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareBytes, toHex } from "../../src/base/bytes.js";
import { CodecError, decodeMaps, encodeMaps } from "../../src/kv/codec.js";
import { compareNames, type KeyWrite, type MapWrites } from "../../src/kv/write-set.js";
import { Store } from "../../src/kv/store.js";

const keyArb = fc.uint8Array({ maxLength: 4 });
const writesArb: fc.Arbitrary<KeyWrite[]> = fc
  .uniqueArray(
    fc.record({ key: keyArb, value: fc.option(fc.uint8Array({ maxLength: 6 }), { nil: null }) }),
    { maxLength: 6, selector: (w) => toHex(w.key) },
  )
  // fc.record builds null-prototype objects: rebuild plain ones, as the decoder returns.
  .map((writes) => writes.map(({ key, value }) => ({ key, value })))
  .map((writes) => writes.sort((a, b) => compareBytes(a.key, b.key)));
const nameArb = fc.string({ unit: "binary", minLength: 1, maxLength: 6 });
/** Canonical map writes: names of any code points (no lone surrogates; some start with a BOM,
 *  which a default UTF-8 decoder would strip), sorted and unique. */
const mapsArb: fc.Arbitrary<MapWrites[]> = fc
  .uniqueArray(
    fc.record({
      name: fc.oneof(
        nameArb,
        nameArb.map((name) => `\uFEFF${name}`),
      ),
      writes: writesArb,
    }),
    { maxLength: 4, selector: (m) => m.name },
  )
  .map((maps) => maps.map(({ name, writes }) => ({ name, writes })))
  .map((maps) => maps.sort((a, b) => compareNames(a.name, b.name)));

/** Decodes `bytes`; a CodecError gives null, anything else thrown fails the property. */
function decodeOrNull(bytes: Uint8Array): MapWrites[] | null {
  try {
    return decodeMaps(bytes);
  } catch (error) {
    if (error instanceof CodecError) return null;
    throw error;
  }
}

/** Maps in strict name order, keys in strict byte order inside each map. */
function assertCanonical(maps: readonly MapWrites[]): void {
  for (let m = 0; m < maps.length; m++) {
    const map = maps[m]!;
    if (m > 0) assert.ok(compareNames(maps[m - 1]!.name, map.name) < 0, "maps sorted");
    for (let i = 1; i < map.writes.length; i++) {
      assert.ok(compareBytes(map.writes[i - 1]!.key, map.writes[i]!.key) < 0, "keys sorted");
    }
  }
}

/** Corrupt bytes are either rejected with a CodecError or are themselves a canonical encoding. */
function assertRejectedOrCanonical(bytes: Uint8Array): void {
  const decoded = decodeOrNull(bytes);
  if (decoded === null) return;
  assertCanonical(decoded);
  assert.equal(toHex(encodeMaps(decoded)), toHex(bytes));
}

test("property: decode(encode(w)) deep-equals w and re-encoding gives the same bytes", () => {
  fc.assert(
    fc.property(mapsArb, (maps) => {
      const bytes = encodeMaps(maps);
      const decoded = decodeMaps(bytes);
      assert.deepEqual(decoded, maps);
      assert.equal(toHex(encodeMaps(decoded)), toHex(bytes));
    }),
    { numRuns: 1000 },
  );
});

test("property: changing any one byte of a valid encoding never escapes as another error", () => {
  fc.assert(
    fc.property(
      mapsArb.filter((maps) => maps.length > 0),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
      (maps, at, delta) => {
        const bytes = encodeMaps(maps);
        const mutated = bytes.slice();
        const index = at % bytes.byteLength;
        mutated[index] = (mutated[index]! + delta) & 0xff;
        assertRejectedOrCanonical(mutated);
      },
    ),
    { numRuns: 3000 },
  );
});

test("property: every truncation of a valid encoding is rejected or is a shorter encoding", () => {
  fc.assert(
    fc.property(
      mapsArb.filter((maps) => maps.length > 0),
      fc.nat(),
      (maps, at) => {
        const bytes = encodeMaps(maps);
        assertRejectedOrCanonical(bytes.subarray(0, at % bytes.byteLength));
      },
    ),
    { numRuns: 2000 },
  );
});

test("property: random bytes are rejected with a CodecError or re-encode exactly", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => assertRejectedOrCanonical(bytes)),
    { numRuns: 2000 },
  );
});

type Op =
  | { kind: "set"; map: number; key: Uint8Array; value: Uint8Array }
  | { kind: "delete"; map: number; key: Uint8Array }
  | { kind: "clear"; map: number };
const MAP_NAMES = ["public:b", "private", "public:a", "é-map"];
const opKey = fc.uint8Array({ maxLength: 2, max: 2 });
const mapIndex = fc.nat(MAP_NAMES.length - 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .tuple(mapIndex, opKey, fc.uint8Array({ maxLength: 3 }))
      .map(([map, key, value]): Op => ({ kind: "set", map, key, value })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(mapIndex, opKey).map(([map, key]): Op => ({ kind: "delete", map, key })),
  },
  { weight: 1, arbitrary: mapIndex.map((map): Op => ({ kind: "clear", map })) },
);

function runTx(store: Store, ops: readonly Op[]): MapWrites[] {
  const tx = store.begin();
  for (const op of ops) {
    const map = tx.rw(MAP_NAMES[op.map]!);
    if (op.kind === "set") map.set(op.key, op.value);
    else if (op.kind === "delete") map.delete(op.key);
    else map.clear();
  }
  const outcome = store.commit(tx);
  assert.notEqual(outcome.kind, "conflict");
  return outcome.kind === "committed" ? [...outcome.writeSet.maps] : [];
}

test("property: store write sets are canonical and their bytes do not depend on op order", () => {
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 10 }),
      fc.array(opArb, { maxLength: 10 }),
      (setup, ops) => {
        const store = new Store();
        runTx(store, setup);
        const maps = runTx(store, ops);
        assertCanonical(maps);
        assert.ok(
          maps.every((map) => map.writes.length > 0),
          "no empty maps",
        );
        const bytes = encodeMaps(maps);
        assert.deepEqual(decodeMaps(bytes), maps);

        // The same final writes, produced one op per key in reverse key order, encode the same.
        const replay = new Store();
        runTx(replay, setup);
        const reversed: Op[] = maps.flatMap((map) =>
          map.writes.map((w): Op => ({
            map: MAP_NAMES.indexOf(map.name),
            key: w.key,
            ...(w.value === null ? { kind: "delete" } : { kind: "set", value: w.value }),
          })),
        );
        assert.equal(toHex(encodeMaps(runTx(replay, reversed.reverse()))), toHex(bytes));
      },
    ),
    { numRuns: 1000 },
  );
});
