// Snapshots (src/ledger/snapshot.ts) and the store's side of them (Store.snapshotWriteSet,
// Store.fromSnapshot): a store's whole state survives encode -> decode -> restore, private maps
// are encrypted (absent from the clear bytes) and authenticated, the bytes are canonical, the IV
// never collides with the transaction at the same seqno, and malformed files are refused with
// typed errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { concatBytes, toHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno, View } from "../../../src/base/ids.js";
import { Store } from "../../../src/kv/store.js";
import { decodeEntry, EntryError } from "../../../src/ledger/entry-format.js";
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
  SnapshotError,
  SnapshotErrorCode,
} from "../../../src/ledger/snapshot.js";
import { SERVICE_TABLES } from "../../../src/kv/service-tables.js";

const SECRET = new Uint8Array(32).fill(7);

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
  });
  write((tx) => {
    tx.rw("records").delete(utf8("k3"));
    tx.rw("records").set(utf8("k4"), utf8("changed"));
    tx.rw(SERVICE_TABLES.tree).set(utf8("tree"), new Uint8Array([1, 2, 3]));
  });
  return store;
}

function expectSnapshotError(f: () => unknown, code: SnapshotErrorCode): void {
  assert.throws(f, (e: unknown) => e instanceof SnapshotError && e.type.code === code);
}

test("a store's whole state round-trips through a snapshot and a restored store", () => {
  const store = populatedStore();
  const secrets = new LedgerSecrets(SECRET);
  const bytes = encodeSnapshot(
    { seqno: store.seqno, view: 3 as View, writeSet: store.snapshotWriteSet() },
    secrets,
  );
  const decoded = decodeSnapshot(bytes, secrets);
  assert.equal(decoded.seqno, store.seqno);
  assert.equal(decoded.view, 3);
  assert.equal(decoded.receipt, null);
  assert.deepEqual(decoded.entryBytes, bytes);
  const restored = Store.fromSnapshot(decoded.seqno, decoded.writeSet);
  assert.equal(restored.seqno, store.seqno);
  assert.deepEqual(restored.mapNames(), store.mapNames());
  for (const name of store.mapNames()) {
    assert.deepEqual([...restored.entries(name)], [...store.entries(name)], name);
  }
  assert.equal(restored.get("records", utf8("k3")), undefined);
  assert.deepEqual(restored.get("records", utf8("k4")), utf8("changed"));
  // The restored store takes new transactions at seqno + 1 and cannot roll back below it.
  const tx = restored.begin();
  tx.rw("records").set(utf8("new"), utf8("x"));
  const outcome = restored.commit(tx);
  assert.equal(outcome.kind, "committed");
  assert.equal(outcome.kind === "committed" && outcome.seqno, store.seqno + 1);
  assert.throws(() => restored.rollback((store.seqno - 1) as Seqno));
});

test("snapshots are canonical, encrypt private maps and never share a transaction's IV", () => {
  const secrets = new LedgerSecrets(SECRET);
  const a = populatedStore();
  const b = populatedStore();
  const snap = (s: Store) =>
    encodeSnapshot({ seqno: s.seqno, view: 2 as View, writeSet: s.snapshotWriteSet() }, secrets);
  const bytes = snap(a);
  assert.deepEqual(bytes, snap(b), "same state, same bytes");
  assert.equal(toHex(snapshotDigest(bytes)), toHex(snapshotDigest(snap(b))));
  const text = Buffer.from(bytes).toString("latin1");
  assert.ok(text.includes("public value 7"), "public maps are in clear");
  assert.ok(!text.includes("secret value 7"), "private maps are encrypted");
  // The snapshot bit: the IV differs from a write set's at the same seqno and view.
  const entry = decodeEntry(bytes, "snapshot");
  assert.equal(entry.kind, "snapshot");
  assert.equal(entry.iv[11]! & 0x80, 0x80);
  assert.throws(() => decodeEntry(bytes), EntryError, "a snapshot is not a ledger entry");
});

test("a receipt appended after the entry is parsed; the digest covers the entry only", () => {
  const secrets = new LedgerSecrets(SECRET);
  const store = populatedStore();
  const entry = encodeSnapshot(
    { seqno: store.seqno, view: 2 as View, writeSet: store.snapshotWriteSet() },
    secrets,
  );
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
  const store = populatedStore();
  const bytes = encodeSnapshot(
    { seqno: store.seqno, view: 2 as View, writeSet: store.snapshotWriteSet() },
    secrets,
  );
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
    { name: "records", keys: ["b", "a", "ab", "", "aa", "\u00ff", "a\u0000"] },
    { name: "public:z", keys: ["k2", "k10", "k1"] },
    { name: "public:ccf.internal.tree", keys: ["\u0000"] },
    { name: "empty", keys: [] as string[] },
  ];
  const latin1 = (text: string) => new Uint8Array(Buffer.from(text, "latin1"));
  const packed = packSnapshotState(
    maps.map((m) => ({
      name: m.name,
      entries: m.keys.map((k): [Uint8Array, Uint8Array] => [latin1(k), utf8(`v:${k}`)]),
    })),
  );
  const sorted = maps
    .filter((m) => m.keys.length > 0)
    .map((m) => ({
      name: m.name,
      writes: m.keys
        .map((k) => latin1(k))
        .sort((a, b) => Buffer.compare(a, b))
        .map((key) => ({ key, value: utf8(`v:${Buffer.from(key).toString("latin1")}`) })),
    }))
    .sort((a, b) => compareNames(a.name, b.name));
  const at = { seqno: 7 as Seqno, view: 3 as View };
  const expected = encodeSnapshot({ ...at, writeSet: { maps: sorted } }, secrets);
  assert.deepEqual(encodePackedSnapshot(packed, at, secrets), expected);
});
