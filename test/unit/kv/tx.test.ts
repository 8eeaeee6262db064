// Map handle semantics inside one transaction (CCF KvMap: has/get/set/delete/clear/forEach/size/
// getVersionOfPreviousWrite): reads see the tx's own writes, which write set a commit produces
// (no-op removals dropped, clear() as removals), the doomed-read rule, misuse errors, and the
// typed codecs of encoding.ts over a handle. Store-level behaviour is in store.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, toHex, utf8 } from "../../../src/base/bytes.js";
import { type CommitOutcome, Store } from "../../../src/kv/store.js";
import {
  jsonCodec,
  rawCodec,
  SINGLETON_KEY,
  stringCodec,
  typedMap,
  u64Codec,
} from "../../../src/kv/encoding.js";
import { KvError, KvErrorCode } from "../../../src/kv/tx.js";
import { type WriteSet } from "../../../src/kv/write-set.js";

const MAP = "public:records";
const b = utf8;

/** A store where MAP holds the given string pairs, committed in one tx at seqno 1. */
function storeWith(pairs: Record<string, string>): Store {
  const store = new Store();
  const tx = store.begin();
  for (const [k, v] of Object.entries(pairs)) tx.rw(MAP).set(b(k), b(v));
  assert.equal(store.commit(tx).kind, "committed");
  return store;
}

/** The write set as [map, key, value | null] text triples, in write-set order. */
function describe(writeSet: WriteSet): Array<[string, string, string | null]> {
  return writeSet.maps.flatMap((m) =>
    m.writes.map((w): [string, string, string | null] => [
      m.name,
      fromUtf8(w.key),
      w.value === null ? null : fromUtf8(w.value),
    ]),
  );
}

function committed(outcome: CommitOutcome): WriteSet {
  assert.equal(outcome.kind, "committed", JSON.stringify(outcome));
  return (outcome as Extract<CommitOutcome, { kind: "committed" }>).writeSet;
}

function isKvError(code: KvErrorCode): (error: unknown) => boolean {
  return (error) => error instanceof KvError && error.code === code;
}

test("a tx reads its own writes before commit and the store only sees them after", () => {
  const store = storeWith({ a: "1" });
  const tx = store.begin();
  const map = tx.rw(MAP);
  map.set(b("a"), b("2"));
  map.set(b("new"), b("3"));
  assert.equal(fromUtf8(map.get(b("a"))!), "2");
  assert.equal(fromUtf8(map.get(b("new"))!), "3");
  assert.equal(map.has(b("new")), true);
  assert.equal(fromUtf8(store.get(MAP, b("a"))!), "1");
  assert.equal(store.get(MAP, b("new")), undefined);
  committed(store.commit(tx));
  assert.equal(fromUtf8(store.get(MAP, b("a"))!), "2");
  assert.equal(fromUtf8(store.get(MAP, b("new"))!), "3");
});

test("rw and ro of the same name return one handle sharing the tx's writes", () => {
  const store = new Store();
  const tx = store.begin();
  tx.rw(MAP).set(b("k"), b("v"));
  assert.equal(tx.ro(MAP), tx.rw(MAP));
  assert.equal(fromUtf8(tx.ro(MAP).get(b("k"))!), "v");
  assert.equal(tx.ro(MAP).name, MAP);
});

test("delete reports whether the key had a value; deleting an absent key writes nothing", () => {
  const store = storeWith({ a: "1" });
  const tx = store.begin();
  const map = tx.rw(MAP);
  assert.equal(map.delete(b("missing")), false);
  assert.deepEqual(store.commit(tx), { kind: "read-only", seqno: 1 });
  const tx2 = store.begin();
  assert.equal(tx2.rw(MAP).delete(b("a")), true);
  assert.equal(tx2.rw(MAP).delete(b("a")), false, "already removed in this tx");
  assert.equal(tx2.rw(MAP).get(b("a")), undefined);
  assert.deepEqual(describe(committed(store.commit(tx2))), [[MAP, "a", null]]);
  assert.equal(store.get(MAP, b("a")), undefined);
});

test("set then delete drops a key absent from the store but removes a key present in it", () => {
  const store = storeWith({ present: "1" });
  const tx = store.begin();
  const map = tx.rw(MAP);
  map.set(b("absent"), b("x"));
  map.set(b("present"), b("y"));
  assert.equal(map.delete(b("absent")), true);
  assert.equal(map.delete(b("present")), true);
  assert.deepEqual(describe(committed(store.commit(tx))), [[MAP, "present", null]]);

  const tx2 = store.begin();
  tx2.rw(MAP).set(b("only"), b("z"));
  tx2.rw(MAP).delete(b("only"));
  assert.deepEqual(store.commit(tx2), { kind: "read-only", seqno: 2 });
});

test("clear removes every existing key, discards earlier sets and keeps later ones", () => {
  const store = storeWith({ a: "1", b: "2", c: "3" });
  const tx = store.begin();
  const map = tx.rw(MAP);
  map.set(b("early"), b("dropped"));
  map.set(b("a"), b("overwritten then cleared"));
  map.clear();
  assert.equal(map.size, 0);
  assert.equal(map.get(b("b")), undefined);
  map.set(b("c"), b("kept"));
  map.set(b("late"), b("kept"));
  assert.equal(map.size, 2);
  assert.deepEqual(describe(committed(store.commit(tx))), [
    [MAP, "a", null],
    [MAP, "b", null],
    [MAP, "c", "kept"],
    [MAP, "late", "kept"],
  ]);
  assert.deepEqual(
    [...store.entries(MAP)].map(([k, v]) => [fromUtf8(k), fromUtf8(v)]),
    [
      ["c", "kept"],
      ["late", "kept"],
    ],
  );
});

test("clear of an empty or unknown map commits nothing", () => {
  const store = new Store();
  const tx = store.begin();
  tx.rw("never-written").clear();
  assert.deepEqual(store.commit(tx), { kind: "read-only", seqno: 0 });
  assert.deepEqual(store.mapNames(), []);
});

test("size and forEach combine the store with the tx's sets and removals", () => {
  const store = storeWith({ a: "1", b: "2", c: "3" });
  const tx = store.begin();
  const map = tx.rw(MAP);
  map.set(b("b"), b("20"));
  map.delete(b("c"));
  map.set(b("d"), b("4"));
  assert.equal(map.size, 3);
  const seen: string[] = [];
  map.forEach((value, key) => seen.push(`${fromUtf8(key)}=${fromUtf8(value)}`));
  assert.deepEqual(seen.sort(), ["a=1", "b=20", "d=4"]);
});

test("a forEach callback may read but not write the map it iterates", () => {
  const store = storeWith({ a: "1", b: "2" });
  const tx = store.begin();
  const map = tx.rw(MAP);
  let reads = 0;
  map.forEach((_, key) => {
    if (map.get(key) !== undefined) reads++;
  });
  assert.equal(reads, 2);
  assert.throws(
    () => map.forEach((_, key) => map.set(key, b("x"))),
    isKvError(KvErrorCode.WriteDuringIteration),
  );
  map.set(b("a"), b("after"));
  assert.equal(fromUtf8(map.get(b("a"))!), "after", "writes work again once forEach returns");
});

test("getVersionOfPreviousWrite gives the seqno of the last committed write, not own ones", () => {
  const store = storeWith({ a: "1" });
  const tx = store.begin();
  tx.rw(MAP).set(b("b"), b("2"));
  committed(store.commit(tx));
  const tx2 = store.begin();
  tx2.rw(MAP).delete(b("a"));
  committed(store.commit(tx2));

  const reader = store.begin();
  const map = reader.rw(MAP);
  assert.equal(map.getVersionOfPreviousWrite(b("a")), undefined, "removed at 3");
  assert.equal(map.getVersionOfPreviousWrite(b("b")), 2);
  assert.equal(map.getVersionOfPreviousWrite(b("never")), undefined);
  map.set(b("b"), b("own write"));
  assert.equal(map.getVersionOfPreviousWrite(b("b")), 2);
  assert.equal(reader.ro("other-map").getVersionOfPreviousWrite(b("b")), undefined);
});

test("a read that sees a write newer than the tx's readSeqno returns it but dooms the tx", () => {
  const store = storeWith({ a: "1" });
  const slow = store.begin();
  const fast = store.begin();
  fast.rw(MAP).set(b("a"), b("2"));
  committed(store.commit(fast));
  assert.equal(fromUtf8(slow.ro(MAP).get(b("a"))!), "2");
  const outcome = store.commit(slow);
  assert.equal(outcome.kind, "conflict");
  assert.deepEqual(outcome, { kind: "conflict", map: MAP, key: b("a"), cause: "read" });
});

test("a whole-map read that sees a newer map write dooms the tx", () => {
  const store = storeWith({ a: "1" });
  const slow = store.begin();
  const fast = store.begin();
  fast.rw(MAP).set(b("other"), b("2"));
  committed(store.commit(fast));
  assert.equal(slow.ro(MAP).size, 2);
  const outcome = store.commit(slow);
  assert.deepEqual(outcome, { kind: "conflict", map: MAP, key: null, cause: "map-read" });
});

test("reading a key first written by the tx itself creates no read dependency", () => {
  const store = storeWith({ a: "1" });
  const tx = store.begin();
  tx.rw(MAP).set(b("a"), b("mine"));
  assert.equal(fromUtf8(tx.rw(MAP).get(b("a"))!), "mine");
  const other = store.begin();
  other.rw(MAP).set(b("a"), b("theirs"));
  committed(store.commit(other));
  assert.equal(fromUtf8(tx.rw(MAP).get(b("a"))!), "mine");
  assert.deepEqual(describe(committed(store.commit(tx))), [[MAP, "a", "mine"]]);
});

test("a committed tx cannot be used or committed again", () => {
  const store = new Store();
  const tx = store.begin();
  const map = tx.rw(MAP);
  map.set(b("k"), b("v"));
  committed(store.commit(tx));
  assert.throws(() => store.commit(tx), isKvError(KvErrorCode.TxClosed));
  assert.throws(() => map.get(b("k")), isKvError(KvErrorCode.TxClosed));
  assert.throws(() => map.set(b("k"), b("w")), isKvError(KvErrorCode.TxClosed));
  assert.throws(() => map.size, isKvError(KvErrorCode.TxClosed));
  assert.throws(() => tx.rw("another"), isKvError(KvErrorCode.TxClosed));
  assert.equal(store.seqno, 1);
});

test("map names must be non-empty well-formed strings", () => {
  const store = new Store();
  const tx = store.begin();
  for (const name of ["", "bad\uD800name", 42 as unknown as string, null as unknown as string]) {
    assert.throws(() => tx.rw(name), isKvError(KvErrorCode.InvalidMapName), String(name));
    assert.throws(() => tx.ro(name), isKvError(KvErrorCode.InvalidMapName), String(name));
    assert.throws(() => store.get(name, b("k")), isKvError(KvErrorCode.InvalidMapName));
    assert.throws(() => store.entries(name), isKvError(KvErrorCode.InvalidMapName));
  }
  assert.doesNotThrow(() => tx.rw("emoji \u{1F600} is fine"));
});

test("a tx over many maps commits them in name order", () => {
  const store = new Store();
  const tx = store.begin();
  const names = Array.from({ length: 20 }, (_, i) => `map-${(i * 7) % 20}`);
  for (const name of names) tx.rw(name).set(b("k"), b(name));
  // Past the linear-scan threshold the tx looks handles up by index: same handle either way.
  assert.equal(fromUtf8(tx.rw("map-3").get(b("k"))!), "map-3");
  const writeSet = committed(store.commit(tx));
  assert.deepEqual(
    writeSet.maps.map((m) => m.name),
    [...names].sort(),
  );
});

test("typed maps encode keys and decode values with the given codecs", () => {
  const store = new Store();
  const tx = store.begin();
  const users = typedMap(tx.rw("public:users"), stringCodec, jsonCodec<{ age: number }>());
  const counters = typedMap(tx.rw("public:counters"), u64Codec, u64Codec);
  users.set("alice", { age: 30 });
  counters.set(2 ** 40 + 5, 7);
  typedMap(tx.rw("public:service"), rawCodec, stringCodec).set(SINGLETON_KEY, "open");
  assert.deepEqual(users.get("alice"), { age: 30 });
  assert.equal(users.has("bob"), false);
  assert.equal(counters.get(2 ** 40 + 5), 7);
  committed(store.commit(tx));
  assert.equal(fromUtf8(store.get("public:users", b("alice"))!), '{"age":30}');
  assert.equal(toHex(store.get("public:service", new Uint8Array(8))!), toHex(b("open")));
  assert.equal(toHex(u64Codec.encode(2 ** 40 + 5)), "0500000000010000");

  const reader = store.begin();
  const ro = typedMap(reader.ro("public:users"), stringCodec, jsonCodec<{ age: number }>());
  const seen: string[] = [];
  ro.forEach((value, key) => seen.push(`${key}:${value.age}`));
  assert.deepEqual(seen, ["alice:30"]);
  assert.equal(ro.size, 1);
  assert.equal(ro.getVersionOfPreviousWrite("alice"), 1);
  const rw = typedMap(reader.rw("public:users"), stringCodec, jsonCodec<{ age: number }>());
  assert.equal(rw.delete("alice"), true);
  rw.clear();
  assert.equal(rw.size, 0);
});

test("codecs round-trip their values, including a leading BOM and 2^53 - 1", () => {
  for (const text of ["", "plain", "\uFEFFbom first", "\u{1F600}"]) {
    assert.equal(stringCodec.decode(stringCodec.encode(text)), text);
  }
  for (const n of [0, 1, 255, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
    assert.equal(u64Codec.decode(u64Codec.encode(n)), n);
  }
  const json = jsonCodec<unknown>();
  const value = { a: [1, "two", null, { b: true }], "\uFEFF": "x" };
  assert.deepEqual(json.decode(json.encode(value)), value);
  const raw = new Uint8Array([0, 255]);
  assert.equal(rawCodec.decode(rawCodec.encode(raw)), raw);
});

test("codecs reject values they cannot represent and bytes they cannot read", () => {
  const encodeFailed = isKvError(KvErrorCode.EncodeFailed);
  const decodeFailed = isKvError(KvErrorCode.DecodeFailed);
  assert.throws(() => stringCodec.encode("lone \uDC00"), encodeFailed);
  assert.throws(() => stringCodec.decode(new Uint8Array([0xc3])), decodeFailed);
  assert.throws(() => u64Codec.encode(-1), encodeFailed);
  assert.throws(() => u64Codec.encode(1.5), encodeFailed);
  assert.throws(() => u64Codec.encode(2 ** 53), encodeFailed);
  assert.throws(() => u64Codec.decode(new Uint8Array(7)), decodeFailed);
  assert.throws(() => u64Codec.decode(new Uint8Array(8).fill(0xff)), decodeFailed);
  const json = jsonCodec<unknown>();
  assert.throws(() => json.encode(undefined), encodeFailed);
  assert.throws(() => json.encode(10n), encodeFailed);
  assert.throws(() => json.decode(b("{not json")), decodeFailed);
  assert.throws(() => json.decode(new Uint8Array([0xff])), decodeFailed);
});
