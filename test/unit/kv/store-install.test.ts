// Store.installRecovered (disaster recovery): the private domain replayed from the previous
// service's ledger is installed into the new service's store without a transaction. Checked
// through the public API only: values (get), per-key versions (getVersionOfPreviousWrite,
// lastWriteSeqno), map sizes as a tx sees them (the store's live counts), mapNames, entries,
// snapshotMaps, and what a later rollback above the recovery point leaves behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../../src/base/assert.js";
import { fromUtf8, utf8 } from "../../../src/base/bytes.js";
import type { Seqno } from "../../../src/base/ids.js";
import { Store } from "../../../src/kv/store.js";
import { compareNames } from "../../../src/kv/write-set.js";

const PRIVATE = "records";
const OTHER_PRIVATE = "accounts";
const PUBLIC = "public:records";
const s = (n: number): Seqno => n as Seqno;

/** Commits one tx writing `pairs` (null removes) to `map`; returns its seqno. */
function commit(store: Store, map: string, pairs: Record<string, string | null>): number {
  const tx = store.begin();
  for (const [k, v] of Object.entries(pairs)) {
    if (v === null) tx.rw(map).delete(utf8(k));
    else tx.rw(map).set(utf8(k), utf8(v));
  }
  const outcome = store.commit(tx);
  assert.equal(outcome.kind, "committed");
  return outcome.kind === "committed" ? outcome.seqno : -1;
}

function text(store: Store, map: string, key: string): string | undefined {
  const value = store.get(map, utf8(key));
  return value === undefined ? undefined : fromUtf8(value);
}

/** What a fresh tx sees of `map`: its size and the version of `key`. */
function seen(store: Store, map: string, key?: string): { size: number; version?: number } {
  const tx = store.begin();
  try {
    const handle = tx.ro(map);
    const version = key === undefined ? undefined : handle.getVersionOfPreviousWrite(utf8(key));
    return version === undefined ? { size: handle.size } : { size: handle.size, version };
  } finally {
    tx.close();
  }
}

/**
 * The previous service's private domain as replayPrivate builds it, but not compacted, so it
 * still holds a tombstone: seqno 1 writes a, b, c; 2 writes d; 3 removes b; 4 updates a.
 */
function recoveredStore(): Store {
  const recovered = new Store();
  commit(recovered, PRIVATE, { a: "a1", b: "b1", c: "c1" });
  commit(recovered, OTHER_PRIVATE, { d: "d2" });
  commit(recovered, PRIVATE, { b: null });
  commit(recovered, PRIVATE, { a: "a4" });
  return recovered;
}

/** The new service's store: a public replay through `upTo`, compacted there. */
function newServiceStore(upTo: number): Store {
  const store = new Store();
  for (let i = 1; i <= upTo; i++) commit(store, PUBLIC, { [`p${i}`]: `public ${i}` });
  store.compact(s(upTo));
  return store;
}

test("installs every live entry with its version and skips tombstones", () => {
  const recovered = recoveredStore();
  const store = newServiceStore(5);
  store.installRecovered(recovered, s(5));
  assert.equal(text(store, PRIVATE, "a"), "a4");
  assert.equal(text(store, PRIVATE, "b"), undefined, "a tombstone installs nothing");
  assert.equal(text(store, PRIVATE, "c"), "c1");
  assert.equal(text(store, OTHER_PRIVATE, "d"), "d2");
  // Versions are those of the previous service's ledger.
  assert.equal(store.lastWriteSeqno(PRIVATE, utf8("a")), 4);
  assert.equal(store.lastWriteSeqno(PRIVATE, utf8("c")), 1);
  assert.equal(store.lastWriteSeqno(PRIVATE, utf8("b")), 0, "no entry for the removed key");
  assert.deepEqual(seen(store, PRIVATE, "a"), { size: 2, version: 4 });
  assert.deepEqual(seen(store, OTHER_PRIVATE, "d"), { size: 1, version: 2 });
  // Map seqnos: the last write to the map in the recovered state (the removal at 3 is one).
  assert.equal(store.lastWriteSeqno(PRIVATE), 4);
  assert.equal(store.lastWriteSeqno(OTHER_PRIVATE), 2);
  assert.deepEqual(store.mapNames(), [PUBLIC, OTHER_PRIVATE, PRIVATE].sort(compareNames));
  assert.deepEqual(
    [...store.entries(PRIVATE)].map(([k, v]) => `${fromUtf8(k)}=${fromUtf8(v)}`),
    ["a=a4", "c=c1"],
  );
  // The public domain and the store's own position are untouched.
  assert.equal(store.seqno, 5);
  assert.equal(store.compactedSeqno, 5);
  assert.equal(text(store, PUBLIC, "p3"), "public 3");
  assert.equal(seen(store, PUBLIC).size, 5);
});

test("installed entries are independent of the recovered store", () => {
  const recovered = recoveredStore();
  const store = newServiceStore(4);
  store.installRecovered(recovered, s(4));
  commit(recovered, PRIVATE, { c: "changed in the source" });
  assert.equal(text(store, PRIVATE, "c"), "c1");
});

test("refuses, installing nothing, when the new service wrote a recovered map after upTo", () => {
  // An update of a recovered key, a new key, and a removal (compacted: its tombstone is gone).
  const cases: Record<string, string | null>[][] = [
    [{ a: "new a" }],
    [{ e: "new e" }],
    [{ c: "new c" }, { c: null }],
  ];
  for (const writes of cases) {
    const recovered = recoveredStore();
    const store = newServiceStore(4);
    let written = 0;
    for (const pairs of writes) written = commit(store, PRIVATE, pairs);
    store.compact(s(written));
    assert.throws(() => store.installRecovered(recovered, s(4)), AssertionError);
    assert.equal(text(store, PRIVATE, "c"), undefined, "nothing installed");
    assert.equal(text(store, OTHER_PRIVATE, "d"), undefined);
  }
});

test("a replaced entry at or below upTo is overwritten and counted once", () => {
  const recovered = recoveredStore();
  const store = new Store();
  commit(store, PRIVATE, { c: "stale c" }); // seqno 1, at or below upTo
  for (let i = 2; i <= 4; i++) commit(store, PUBLIC, { [`p${i}`]: "p" });
  store.compact(s(4));
  store.installRecovered(recovered, s(4));
  assert.equal(text(store, PRIVATE, "c"), "c1");
  assert.deepEqual(seen(store, PRIVATE, "c"), { size: 2, version: 1 });
});

test("asserts when upTo is above the compacted seqno, or the recovered state goes past it", () => {
  const recovered = recoveredStore(); // ends at 4
  const store = newServiceStore(4);
  commit(store, PUBLIC, { q: "uncompacted" }); // seqno 5, not compacted
  assert.throws(() => store.installRecovered(recovered, s(5)), AssertionError);
  const other = newServiceStore(3);
  assert.throws(() => other.installRecovered(recovered, s(3)), AssertionError);
  assert.equal(text(store, PRIVATE, "a"), undefined, "nothing installed by a refused call");
  assert.equal(text(other, PRIVATE, "a"), undefined);
});

test("a later rollback above upTo keeps the installed entries", () => {
  const recovered = recoveredStore();
  const store = newServiceStore(4);
  const kept = commit(store, PUBLIC, { q: "committed" });
  store.compact(s(kept));
  // Uncommitted public txs after the compaction point.
  commit(store, PUBLIC, { r: "uncommitted r" });
  store.installRecovered(recovered, s(4));
  store.rollback(s(kept));
  assert.equal(text(store, PUBLIC, "r"), undefined);
  assert.equal(text(store, PRIVATE, "a"), "a4");
  assert.equal(text(store, PRIVATE, "c"), "c1");
  assert.equal(text(store, OTHER_PRIVATE, "d"), "d2");
  assert.deepEqual(seen(store, OTHER_PRIVATE, "d"), { size: 1, version: 2 });
  assert.deepEqual(seen(store, PRIVATE, "a"), { size: 2, version: 4 });
  assert.ok(store.mapNames().includes(OTHER_PRIVATE), "the installed map is listed");
  const snapshot = store.snapshotMaps();
  assert.ok(
    snapshot.some((m) => m.name === OTHER_PRIVATE),
    "and snapshotted",
  );
  assert.equal(store.seqno, kept);
});

test("applyFinal gives the state apply then compact gives, with no undo or tombstones", () => {
  // A deterministic mix of sets and removals over a few keys of two maps.
  const sets = [] as {
    maps: { name: string; writes: { key: Uint8Array; value: Uint8Array | null }[] }[];
  }[];
  for (let seqno = 1; seqno <= 200; seqno++) {
    const writes = [0, 1, 2].map((j) => {
      const k = (seqno * 7 + j * 3) % 11;
      const remove = (seqno + j) % 5 === 0;
      return { key: utf8(`k${k}`), value: remove ? null : utf8(`v${seqno}.${j}`) };
    });
    sets.push({ maps: [{ name: seqno % 3 === 0 ? OTHER_PRIVATE : PRIVATE, writes }] });
  }
  const final = new Store();
  const reference = new Store();
  sets.forEach((ws, i) => {
    final.applyFinal(s(i + 1), ws);
    reference.apply(s(i + 1), ws);
  });
  reference.compact(s(200));
  assert.equal(final.seqno, 200);
  assert.equal(final.compactedSeqno, 200);
  for (const map of [PRIVATE, OTHER_PRIVATE]) {
    const dump = (st: Store) =>
      [...st.entries(map)].map(([k, v]) => `${fromUtf8(k)}=${fromUtf8(v)}`);
    assert.deepEqual(dump(final), dump(reference));
    assert.deepEqual(seen(final, map), seen(reference, map));
    assert.equal(final.lastWriteSeqno(map), reference.lastWriteSeqno(map));
    for (let k = 0; k < 11; k++) {
      const key = utf8(`k${k}`);
      assert.equal(final.lastWriteSeqno(map, key), reference.lastWriteSeqno(map, key), `k${k}`);
    }
  }
  // Only a compacted store takes final writes.
  const open = new Store();
  commit(open, PRIVATE, { a: "1" });
  assert.throws(() => open.applyFinal(s(2), sets[0]!), AssertionError);
});
