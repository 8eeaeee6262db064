// Snapshots (src/ledger/snapshot.ts, snapshot-format.ts) and the store's side of them
// (Store.snapshotMaps, Store.fromSnapshot), in CCF's snapshot layout (ccf-compatibility.md
// §6.6): a store's whole state, key and map seqnos included, survives encode -> decode ->
// restore; the bytes are those laid out by hand from CCF's layout; private maps are encrypted
// and authenticated; the bytes are canonical; the IV never collides with the transaction at the
// same seqno; malformed files and files of the earlier layout are refused with typed errors.
// CCF's own reader of these bytes is checked in snapshot-ccf-oracle.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes, toHex, utf8 } from "../../../src/base/bytes.js";
import { txId, type Seqno } from "../../../src/base/ids.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { Store } from "../../../src/kv/store.js";
import type { SnapshotMap } from "../../../src/kv/snapshot-state.js";
import {
  decodeEntry,
  decryptFramed,
  encodeEntry,
  EntryError,
  EntryErrorCode,
} from "../../../src/ledger/entry-format.js";
import { LedgerSecrets } from "../../../src/ledger/ledger-secrets.js";
import { compareNames } from "../../../src/kv/write-set.js";
import {
  decodeSnapshot,
  encodePackedSnapshot,
  encodeSnapshot,
  packSnapshotState,
  parseSnapshotFileName,
  snapshotDigest,
  snapshotFileName,
} from "../../../src/ledger/snapshot.js";
import {
  decodeSnapshotEntry,
  SnapshotError,
  SnapshotErrorCode,
  type SnapshotHeader,
} from "../../../src/ledger/snapshot-format.js";
import { SERVICE_TABLES } from "../../../src/kv/service-tables.js";

const SECRET = new Uint8Array(32).fill(7);
const s = (n: number) => n as Seqno;

function populatedStore(): Store {
  const store = new Store();
  const write = (f: (tx: ReturnType<Store["begin"]>) => void) => {
    const tx = store.begin();
    f(tx);
    assert.equal(store.commit(tx).kind, "committed");
  };
  write((tx) => {
    for (let i = 0; i < 50; i++) {
      tx.rw("records").set(utf8(`k${i}`), utf8(`secret value ${i}`));
      tx.rw("public:records").set(utf8(`p${i}`), utf8(`public value ${i}`));
    }
    tx.rw("public:emptied").set(utf8("gone"), utf8("soon"));
  });
  write((tx) => {
    tx.rw("records").delete(utf8("k3"));
    tx.rw("records").set(utf8("k4"), utf8("changed"));
    tx.rw(SERVICE_TABLES.tree).set(utf8("tree"), new Uint8Array([1, 2, 3]));
  });
  write((tx) => tx.rw("public:emptied").delete(utf8("gone")));
  write((tx) => tx.rw("public:records").set(utf8("p7"), utf8("public value 7, again")));
  return store;
}

/** A snapshot header at the store's seqno: views 1 and 2 start at 1, view 3 at 3. */
function headerOf(store: Store): SnapshotHeader {
  return {
    seqno: store.seqno,
    hashAtSnapshot: sha256(`leaf ${store.seqno}`),
    viewHistory: [s(1), s(1), s(3)],
  };
}

function snap(store: Store, secrets: LedgerSecrets): Uint8Array {
  return encodeSnapshot({ ...headerOf(store), maps: store.snapshotMaps() }, secrets);
}

function expectSnapshotError(f: () => unknown, code: SnapshotErrorCode): void {
  assert.throws(f, (e: unknown) => e instanceof SnapshotError && e.type.code === code);
}

test("a store's whole state, with every key's and map's seqno, round-trips through a snapshot", () => {
  const store = populatedStore();
  const secrets = new LedgerSecrets(SECRET);
  const bytes = snap(store, secrets);
  const decoded = decodeSnapshot(bytes, secrets);
  assert.equal(decoded.seqno, store.seqno);
  assert.equal(decoded.view, 3, "the view history has one item per view");
  assert.deepEqual(decoded.viewHistory, [1, 1, 3]);
  assert.deepEqual(decoded.hashAtSnapshot, sha256(`leaf ${store.seqno}`));
  assert.equal(decoded.receipt, null);
  assert.deepEqual(decoded.entryBytes, bytes);
  assert.deepEqual(decoded.maps, store.snapshotMaps());
  const restored = Store.fromSnapshot(decoded.seqno, decoded.maps);
  assert.equal(restored.seqno, store.seqno);
  assert.deepEqual(restored.mapNames(), store.mapNames());
  assert.ok(restored.mapNames().includes("public:emptied"), "a map with no key left is kept");
  for (const name of store.mapNames()) {
    assert.deepEqual([...restored.entries(name)], [...store.entries(name)], name);
    assert.equal(restored.lastWriteSeqno(name), store.lastWriteSeqno(name), name);
    for (const [key] of store.entries(name)) {
      assert.equal(restored.lastWriteSeqno(name, key), store.lastWriteSeqno(name, key));
    }
  }
  assert.equal(restored.lastWriteSeqno("public:records", utf8("p7")), 4);
  assert.equal(restored.lastWriteSeqno("public:records", utf8("p8")), 1);
  assert.equal(restored.get("records", utf8("k3")), undefined);
  assert.deepEqual(restored.get("records", utf8("k4")), utf8("changed"));
  // The restored store takes new transactions at seqno + 1 and cannot roll back below it.
  const tx = restored.begin();
  tx.rw("records").set(utf8("new"), utf8("x"));
  const outcome = restored.commit(tx);
  assert.equal(outcome.kind, "committed");
  assert.equal(outcome.kind === "committed" && outcome.seqno, store.seqno + 1);
  assert.throws(() => restored.rollback(s(store.seqno - 1)));
});

/** u64 little-endian, as hex. */
function u64(n: number): string {
  return Buffer.from(new BigUint64Array([BigInt(n)]).buffer).toString("hex");
}
const hex = (text: string) => Buffer.from(text).toString("hex");

test("the domains are laid out byte for byte as CCF lays out a snapshot", () => {
  const secrets = new LedgerSecrets(SECRET);
  const hash = sha256("leaf 9");
  const maps: SnapshotMap[] = [
    {
      name: "public:a",
      seqno: s(8),
      keys: [
        { key: utf8("k"), value: utf8("value"), seqno: s(5) },
        { key: utf8("key-of-8"), value: utf8(""), seqno: s(8) },
      ],
    },
    { name: "public:b", seqno: s(2), keys: [] },
    { name: "secret", seqno: s(3), keys: [{ key: utf8("x"), value: utf8("y"), seqno: s(3) }] },
  ];
  const header = { seqno: s(9), hashAtSnapshot: hash, viewHistory: [s(1), s(1), s(6)] };
  const entry = decodeSnapshotEntry(encodeSnapshot({ ...header, maps }, secrets));
  const zeros = (n: number) => "00".repeat(n);
  const expectedPublic = [
    "01" + u64(9) + u64(0), // type Snapshot, seqno, max_conflict_version: no digests
    u64(32) + toHex(hash), // hash at snapshot
    u64(24) + u64(1) + u64(1) + u64(6), // view history: views 1, 2 and 3 start at 1, 1, 6
    u64(8) + hex("public:a") + u64(8) + u64(72), // name, map seqno, size of its keys
    u64(1) + hex("k") + zeros(7), // key, padded to 8
    u64(13) + u64(5) + hex("value") + zeros(3), // 8 + value length, key seqno, value, padding
    u64(8) + hex("key-of-8"), // a key of 8 bytes needs no padding
    u64(8) + u64(8), // an empty value: its seqno only
    u64(8) + hex("public:b") + u64(2) + u64(0), // a map with no key left
  ].join("");
  assert.equal(toHex(entry.frame.publicDomain), expectedPublic);
  assert.deepEqual(
    entry.frame.iv.subarray(8),
    new Uint8Array([0, 0, 0, 0x80]),
    "IV: view 0 and the snapshot bit, as CCF writes a snapshot's",
  );
  const plaintext = decryptFramed(entry.frame, secrets);
  const expectedPrivate = u64(6) + hex("secret") + u64(3) + u64(40) + u64(1) + hex("x") + zeros(7);
  assert.equal(
    plaintext && toHex(plaintext),
    expectedPrivate + u64(9) + u64(3) + hex("y") + zeros(7),
  );
});

test("snapshots are canonical, encrypt private maps and never share a transaction's IV", () => {
  const secrets = new LedgerSecrets(SECRET);
  const bytes = snap(populatedStore(), secrets);
  assert.deepEqual(bytes, snap(populatedStore(), secrets), "same state, same bytes");
  const text = Buffer.from(bytes).toString("latin1");
  assert.ok(text.includes("public value 7"), "public maps are in clear");
  assert.ok(!text.includes("secret value 7"), "private maps are encrypted");
  // The snapshot bit: the IV differs from a write set's at the same seqno and any view.
  const entry = decodeSnapshotEntry(bytes);
  assert.equal(entry.frame.iv[11]! & 0x80, 0x80);
  assert.throws(
    () => decodeEntry(bytes),
    (e: unknown) => e instanceof EntryError && e.type.code === EntryErrorCode.UnsupportedEntryType,
    "a snapshot is not a ledger entry",
  );
});

test("a receipt appended after the entry is parsed; the digest covers the entry only", () => {
  const secrets = new LedgerSecrets(SECRET);
  const entry = snap(populatedStore(), secrets);
  const receipt = { cert: "x", signature: "y", proof: [] };
  const file = concatBytes([entry, utf8(JSON.stringify(receipt))]);
  const decoded = decodeSnapshot(file, secrets);
  assert.deepEqual(decoded.receipt, receipt);
  assert.deepEqual(snapshotDigest(decoded.entryBytes), snapshotDigest(entry));
  expectSnapshotError(
    () => decodeSnapshot(concatBytes([entry, utf8("{not json")]), secrets),
    SnapshotErrorCode.BadReceipt,
  );
});

test("altered, truncated or foreign snapshots are refused with typed errors", () => {
  const secrets = new LedgerSecrets(SECRET);
  const bytes = snap(populatedStore(), secrets);
  // A flipped bit in the private domain (the end), or in the public domain (the AAD).
  for (const offset of [bytes.byteLength - 3, 120]) {
    const flipped = bytes.slice();
    flipped[offset]! ^= 0x10;
    assert.throws(
      () => decodeSnapshot(flipped, secrets),
      (e: unknown) => e instanceof SnapshotError,
      `flip at ${offset}`,
    );
  }
  expectSnapshotError(
    () => decodeSnapshot(bytes, new LedgerSecrets(new Uint8Array(32).fill(8))),
    SnapshotErrorCode.Tampered,
  );
  expectSnapshotError(
    () => decodeSnapshot(bytes.subarray(0, 200), secrets),
    SnapshotErrorCode.Malformed,
  );
  expectSnapshotError(
    () => decodeSnapshot(new Uint8Array(3), secrets),
    SnapshotErrorCode.Malformed,
  );
});

test("the public domain's shape is checked before anything is decrypted", () => {
  const secrets = new LedgerSecrets(SECRET);
  const maps: SnapshotMap[] = [
    {
      name: "public:a",
      seqno: s(8),
      keys: [
        { key: utf8("k1"), value: utf8("v"), seqno: s(5) },
        { key: utf8("k2"), value: utf8("w"), seqno: s(8) },
      ],
    },
  ];
  const header = { seqno: s(9), hashAtSnapshot: sha256("leaf"), viewHistory: [s(1), s(4)] };
  const good = encodeSnapshot({ ...header, maps }, secrets);
  const body = 36 + 8 + 17; // the public body starts after the framing and the public header
  const patched = (offset: number, value: number) => {
    const bytes = good.slice();
    new DataView(bytes.buffer).setBigUint64(offset, BigInt(value), true);
    return bytes;
  };
  const views = body + 8 + 32 + 8;
  const map = views + 16 + 8 + 8; // after the name "public:a"
  const firstKey = map + 16;
  const cases: [string, Uint8Array][] = [
    ["a hash at snapshot of 31 bytes", patched(body, 31)],
    ["a view history that decreases", patched(views + 8, 0)],
    ["a view starting after the snapshot", patched(views + 8, 10)],
    ["a map written after the snapshot", patched(map, 10)],
    ["a key written after its map", patched(firstKey + 16 + 8, 9)],
    ["a map size past the domain", patched(map + 8, 4096)],
    ["non-zero padding", patched(firstKey + 8, 0x01_316b)], // "k1" then a 1
    ["keys out of order", patched(firstKey + 8, 0x336b)], // "k3" before "k2"
  ];
  decodeSnapshotEntry(good);
  for (const [what, bytes] of cases) {
    assert.throws(
      () => decodeSnapshotEntry(bytes),
      (e: unknown) => e instanceof SnapshotError && e.type.code === SnapshotErrorCode.Malformed,
      what,
    );
  }
});

test("a snapshot of Consortia's earlier layout is refused as such, never misread", () => {
  // The earlier layout: a write-set entry's public header (zero claims and commit evidence
  // digests) with type 1 and the snapshot bit, and the maps encoded as write sets.
  const secrets = new LedgerSecrets(SECRET);
  const earlier = encodeEntry(
    {
      txId: txId(2, 12),
      writeSet: { maps: [{ name: "public:a", writes: [{ key: utf8("k"), value: utf8("v") }] }] },
      commitEvidenceDigest: new Uint8Array(32),
    },
    secrets,
  );
  earlier[44] = 1; // entry type Snapshot
  earlier[8 + 16 + 11]! |= 0x80; // the snapshot bit of the IV
  for (const decode of [
    () => decodeSnapshotEntry(earlier),
    () => decodeSnapshot(concatBytes([earlier, utf8("{}")]), secrets),
  ]) {
    assert.throws(
      decode,
      (e: unknown) =>
        e instanceof SnapshotError &&
        e.type.code === SnapshotErrorCode.UnsupportedFormat &&
        /earlier snapshot format/.test(e.message),
    );
  }
});

test("snapshot file names", () => {
  const name = { seqno: 120 as Seqno, evidenceSeqno: 122 as Seqno, committed: false };
  assert.equal(snapshotFileName(name), "snapshot_120_122");
  assert.equal(snapshotFileName({ ...name, committed: true }), "snapshot_120_122.committed");
  assert.deepEqual(parseSnapshotFileName("snapshot_120_122.committed"), {
    ...name,
    committed: true,
  });
  assert.deepEqual(parseSnapshotFileName("snapshot_120_122"), name);
  for (const bad of [
    "snapshot_120",
    "snapshot_0_1",
    "snapshot_5_5",
    "snapshot_1_2.tmp",
    "ledger_1",
  ]) {
    assert.equal(parseSnapshotFileName(bad), null, bad);
  }
});

test("encodePackedSnapshot of packed, unsorted state is encodeSnapshot of the sorted state", () => {
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(9));
  // Keys of varied lengths and shared prefixes, maps out of order, an empty map.
  const maps = [
    { name: "records", seqno: 7, keys: ["b", "a", "ab", "", "aa", "\u00ff", "a\u0000"] },
    { name: "public:z", seqno: 6, keys: ["k2", "k10", "k1"] },
    { name: "public:ccf.internal.tree", seqno: 7, keys: ["\u0000"] },
    { name: "empty", seqno: 2, keys: [] as string[] },
  ];
  const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
  // Each key's seqno: its length plus one (any seqno up to its map's would do).
  const keyOf = (k: string) => ({ key: latin1(k), value: utf8(`v:${k}`), seqno: s(k.length + 1) });
  const packed = packSnapshotState(
    maps.map((m) => ({ name: m.name, seqno: s(m.seqno), keys: m.keys.map(keyOf) })),
  );
  const sorted: SnapshotMap[] = maps
    .map((m) => ({
      name: m.name,
      seqno: s(m.seqno),
      keys: m.keys.map(keyOf).sort((a, b) => Buffer.compare(a.key, b.key)),
    }))
    .sort((a, b) => compareNames(a.name, b.name));
  const header = { seqno: s(7), hashAtSnapshot: sha256("leaf 7"), viewHistory: [s(1), s(1)] };
  const expected = encodeSnapshot({ ...header, maps: sorted }, secrets);
  assert.deepEqual(encodePackedSnapshot(packed, header, secrets), expected);
  assert.deepEqual(decodeSnapshot(expected, secrets).maps, sorted);
});
