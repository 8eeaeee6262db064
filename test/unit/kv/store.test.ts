// The Store: seqno assignment, optimistic conflicts (read keys, whole-map reads, rollbacks),
// rollback and compaction of the undo log, and the follower apply path. Two fast-check
// properties compare the store with a naive model (a copy of every state by seqno) across random
// txs, rollbacks and compactions, and check that conflicts are exactly read/write overlaps.
// Ends with a timing diagnostic of the hot path (begin + one set + commit).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AssertionError } from "../../../src/base/assert.js";
import { fromHex, fromUtf8, toHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno } from "../../../src/base/ids.js";
import { type CommitOutcome, Store } from "../../../src/kv/store.js";
import { type Tx } from "../../../src/kv/tx.js";
import { type WriteSet } from "../../../src/kv/write-set.js";

const MAP = "public:records";
const b = utf8;
const s = (n: number): Seqno => n as Seqno;

function commitSet(store: Store, pairs: Record<string, string | null>, map = MAP): CommitOutcome {
  const tx = store.begin();
  for (const [k, v] of Object.entries(pairs)) {
    if (v === null) tx.rw(map).delete(b(k));
    else tx.rw(map).set(b(k), b(v));
  }
  return store.commit(tx);
}

function text(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : fromUtf8(value);
}

const isAssertion = (error: unknown): boolean => error instanceof AssertionError;

test("commits take consecutive seqnos and read-only txs take none", () => {
  const store = new Store();
  assert.equal(store.seqno, 0);
  for (let i = 1; i <= 3; i++) {
    const outcome = commitSet(store, { [`k${i}`]: "v" });
    assert.equal(outcome.kind, "committed");
    assert.equal(outcome.kind === "committed" && outcome.seqno, i);
    assert.equal(store.seqno, i);
  }
  const reader = store.begin();
  assert.equal(text(reader.ro(MAP).get(b("k2"))), "v");
  assert.deepEqual(store.commit(reader), { kind: "read-only", seqno: 3 });
  assert.equal(commitSet(store, { k4: "v" }).kind === "committed" && store.seqno, 4);
});

test("a tx conflicts when a key it read was changed by a commit after it began", () => {
  const store = new Store();
  commitSet(store, { a: "1", b: "1" });
  const reader = store.begin();
  assert.equal(text(reader.rw(MAP).get(b("a"))), "1");
  reader.rw(MAP).set(b("b"), b("from reader"));
  assert.equal(commitSet(store, { a: "2" }).kind, "committed");
  const outcome = store.commit(reader);
  assert.deepEqual(outcome, { kind: "conflict", map: MAP, key: b("a"), cause: "read" });
  assert.equal(text(store.get(MAP, b("b"))), "1", "a conflicting tx writes nothing");
  assert.equal(store.seqno, 2);
});

test("a tx does not conflict with a commit to keys it did not read", () => {
  const store = new Store();
  commitSet(store, { a: "1", b: "1" });
  const reader = store.begin();
  reader.rw(MAP).get(b("a"));
  reader.rw("other").get(b("b"));
  reader.rw(MAP).set(b("c"), b("3"));
  assert.equal(commitSet(store, { b: "2" }).kind, "committed");
  assert.equal(store.commit(reader).kind, "committed");
  assert.equal(text(store.get(MAP, b("c"))), "3");
});

test("blind writes to the same key do not conflict: the last writer wins", () => {
  const store = new Store();
  const first = store.begin();
  const second = store.begin();
  first.rw(MAP).set(b("k"), b("first"));
  second.rw(MAP).set(b("k"), b("second"));
  assert.equal(store.commit(second).kind, "committed");
  assert.equal(store.commit(first).kind, "committed");
  assert.equal(text(store.get(MAP, b("k"))), "first");
  assert.equal(store.lastWriteSeqno(MAP, b("k")), 2);
});

test("forEach, size and clear read the whole map and conflict with any write to it", () => {
  const wholeMapReads: Array<(tx: Tx) => void> = [
    (tx) => tx.ro(MAP).forEach(() => {}),
    (tx) => void tx.ro(MAP).size,
    (tx) => tx.rw(MAP).clear(),
  ];
  for (const read of wholeMapReads) {
    const store = new Store();
    commitSet(store, { a: "1" });
    const tx = store.begin();
    read(tx);
    tx.rw("elsewhere").set(b("x"), b("y"));
    commitSet(store, { unrelated: "2" });
    const outcome = store.commit(tx);
    assert.deepEqual(outcome, { kind: "conflict", map: MAP, key: null, cause: "map-read" });
  }
  const store = new Store();
  commitSet(store, { a: "1" });
  const tx = store.begin();
  void tx.ro(MAP).size;
  tx.rw("elsewhere").set(b("x"), b("y"));
  commitSet(store, { other: "2" }, "another-map");
  assert.equal(store.commit(tx).kind, "committed", "writes to other maps do not conflict");
});

test("rollback restores values, key and map seqnos, tombstones and absent keys exactly", () => {
  const store = new Store();
  commitSet(store, { a: "1", b: "1", gone: "1" }); // 1
  commitSet(store, { gone: null }); // 2: tombstone
  const before = {
    a: store.lastWriteSeqno(MAP, b("a")),
    gone: store.lastWriteSeqno(MAP, b("gone")),
    map: store.lastWriteSeqno(MAP),
  };
  assert.deepEqual(before, { a: 1, gone: 2, map: 2 });
  commitSet(store, { a: "3", gone: "back", fresh: "3" }); // 3
  commitSet(store, { b: null }); // 4
  commitSet(store, { x: "5" }, "public:new-map"); // 5
  assert.deepEqual(store.mapNames(), ["public:new-map", MAP]);

  store.rollback(s(2));
  assert.equal(store.seqno, 2);
  assert.equal(text(store.get(MAP, b("a"))), "1");
  assert.equal(text(store.get(MAP, b("b"))), "1");
  assert.equal(store.get(MAP, b("gone")), undefined);
  assert.equal(store.get(MAP, b("fresh")), undefined);
  assert.equal(store.lastWriteSeqno(MAP, b("fresh")), 0, "absent again, not a tombstone");
  assert.deepEqual(
    {
      a: store.lastWriteSeqno(MAP, b("a")),
      gone: store.lastWriteSeqno(MAP, b("gone")),
      map: store.lastWriteSeqno(MAP),
    },
    before,
  );
  assert.deepEqual(store.mapNames(), [MAP]);
  assert.deepEqual(
    [...store.entries(MAP)].map(([k, v]) => `${fromUtf8(k)}=${fromUtf8(v)}`),
    ["a=1", "b=1"],
  );
  const next = commitSet(store, { after: "rollback" });
  assert.equal(next.kind === "committed" && next.seqno, 3, "seqnos are reused after rollback");
});

test("a tx begun before a rollback below its readSeqno conflicts, even without reads", () => {
  const store = new Store();
  commitSet(store, { a: "1" }); // 1
  commitSet(store, { b: "2" }); // 2
  const stale = store.begin(); // readSeqno 2: saw b
  stale.rw(MAP).set(b("c"), b("blind"));
  const unaffected = store.begin();
  unaffected.rw(MAP).set(b("d"), b("blind"));
  store.rollback(s(1));
  commitSet(store, { b: "other 2" }); // a different tx takes seqno 2
  const outcome = store.commit(stale);
  assert.deepEqual(outcome, { kind: "conflict", map: "", key: null, cause: "rollback" });
  assert.equal(store.commit(unaffected).kind, "conflict", "also began at 2");

  const atTarget = store.begin(); // readSeqno 2
  commitSet(store, { e: "3" }); // 3
  store.rollback(s(2)); // removes only seqno 3, which atTarget never saw
  atTarget.rw(MAP).set(b("f"), b("ok"));
  assert.equal(store.commit(atTarget).kind, "committed");
  // A harmless rollback first, then a deep one: the deep one must still be seen.
  const early = store.begin(); // readSeqno 3
  commitSet(store, { h: "4" });
  store.rollback(s(3));
  store.rollback(s(1));
  assert.equal(store.commit(early).kind, "conflict");

  const fresh = store.begin();
  fresh.rw(MAP).get(b("b"));
  fresh.rw(MAP).set(b("g"), b("ok"));
  assert.equal(store.commit(fresh).kind, "committed");
});

test("a tx still conflicts after more rollbacks than the store keeps marks for", () => {
  const store = new Store();
  for (let i = 0; i < 40; i++) commitSet(store, { [`k${i}`]: "v" });
  const old = store.begin(); // readSeqno 40
  store.rollback(s(38));
  const mid = store.begin(); // readSeqno 38
  // Rollbacks to ever higher seqnos each leave a mark: far more than the store keeps.
  for (let i = 0; i < 40; i++) {
    commitSet(store, { [`r${i}`]: "v" });
    commitSet(store, { [`q${i}`]: "v" });
    store.rollback(s(store.seqno - 1));
  }
  assert.equal(store.seqno, 78);
  assert.equal(store.commit(old).kind, "conflict");
  // Every rollback after mid began stayed at or above 38.
  assert.equal(store.commit(mid).kind, "read-only");
});

test("rollback and compaction refuse to cross the compacted seqno or the head", () => {
  const store = new Store();
  for (let i = 0; i < 5; i++) commitSet(store, { k: `${i}` });
  store.compact(s(3));
  assert.equal(store.compactedSeqno, 3);
  assert.throws(() => store.rollback(s(2)), isAssertion);
  assert.throws(() => store.rollback(s(6)), isAssertion);
  assert.throws(() => store.compact(s(2)), isAssertion);
  assert.throws(() => store.compact(s(6)), isAssertion);
  store.rollback(s(3));
  assert.equal(text(store.get(MAP, b("k"))), "2");
  assert.equal(store.seqno, 3);
  store.compact(s(3));
  assert.equal(store.compactedSeqno, 3);
});

test("compaction drops tombstones without making txs that read them conflict", () => {
  const store = new Store();
  commitSet(store, { a: "1", b: "1" }); // 1
  commitSet(store, { a: null }); // 2
  const reader = store.begin(); // readSeqno 2
  assert.equal(reader.rw(MAP).get(b("a")), undefined);
  reader.rw(MAP).set(b("c"), b("3"));
  assert.equal(store.lastWriteSeqno(MAP, b("a")), 2);
  store.compact(s(2));
  assert.equal(store.lastWriteSeqno(MAP, b("a")), 0, "tombstone dropped");
  assert.equal(store.lastWriteSeqno(MAP), 2, "map seqno kept");
  assert.equal(store.commit(reader).kind, "committed");
});

test("a tombstone restored by rollback below the compacted seqno is dropped too", () => {
  const store = new Store();
  commitSet(store, { a: "1" }); // 1
  commitSet(store, { a: null }); // 2
  commitSet(store, { a: "3" }); // 3
  store.compact(s(2)); // the tombstone at 2 was overwritten: nothing to drop yet
  store.rollback(s(2)); // would restore the tombstone at 2
  assert.equal(store.get(MAP, b("a")), undefined);
  assert.equal(store.lastWriteSeqno(MAP, b("a")), 0);
});

test("apply takes exactly the next seqno and leaves the state a commit would", () => {
  const leader = new Store();
  const follower = new Store();
  const writeSets: WriteSet[] = [];
  for (const pairs of [{ a: "1", b: "2" }, { a: null, c: "3" }, { b: "4" }]) {
    const outcome = commitSet(leader, pairs);
    assert.equal(outcome.kind, "committed");
    if (outcome.kind === "committed") writeSets.push(outcome.writeSet);
  }
  assert.throws(() => follower.apply(s(2), writeSets[0]!), isAssertion);
  assert.throws(() => follower.apply(s(0), writeSets[0]!), isAssertion);
  writeSets.forEach((writeSet, i) => follower.apply(s(i + 1), writeSet));
  assert.throws(() => follower.apply(s(3), writeSets[2]!), isAssertion);
  assert.equal(follower.seqno, 3);
  for (const key of ["a", "b", "c"]) {
    assert.equal(text(follower.get(MAP, b(key))), text(leader.get(MAP, b(key))));
    assert.equal(follower.lastWriteSeqno(MAP, b(key)), leader.lastWriteSeqno(MAP, b(key)));
  }
  follower.rollback(s(1));
  assert.equal(text(follower.get(MAP, b("a"))), "1");
});

test("apply copies keys and values, which may be views into a ledger entry", () => {
  const store = new Store();
  const entry = utf8("kkvv");
  store.apply(s(1), {
    maps: [{ name: MAP, writes: [{ key: entry.subarray(0, 2), value: entry.subarray(2) }] }],
  });
  entry.fill(0);
  assert.equal(text(store.get(MAP, b("kk"))), "vv");
  assert.deepEqual(
    [...store.entries(MAP)].map(([k, v]) => [text(k), text(v)]),
    [["kk", "vv"]],
  );
});

test("entries lists live keys in key-byte order and mapNames lists written maps", () => {
  const store = new Store();
  const keys = [[2], [1, 0], [0xff], [1], []].map((k) => new Uint8Array(k));
  const tx = store.begin();
  for (const key of keys) tx.rw(MAP).set(key, b("v"));
  tx.rw("b-map").set(b("k"), b("v"));
  tx.ro("read-only-map").get(b("k"));
  store.commit(tx);
  commitSet(store, { "\x02": null });
  assert.deepEqual(
    [...store.entries(MAP)].map(([k]) => toHex(k)),
    ["", "01", "0100", "ff"],
  );
  assert.deepEqual(store.mapNames(), ["b-map", MAP]);
  assert.deepEqual([...store.entries("never-written")], []);
});

test("committing a tx on another store is an assertion", () => {
  const a = new Store();
  const other = new Store();
  assert.throws(() => other.commit(a.begin()), isAssertion);
});

// ---- model-based properties ----

const MAPS = ["public:a", "public:b", "private"];
type Op =
  | { kind: "set"; map: string; key: string; value: string }
  | { kind: "delete"; map: string; key: string }
  | { kind: "clear"; map: string }
  | { kind: "get"; map: string; key: string };
type Command =
  | { kind: "tx"; ops: Op[] }
  | { kind: "rollback"; back: number }
  | { kind: "compact"; back: number };

/** Keys are 0-2 bytes as hex, so txs collide often. */
const keyArb = fc.uint8Array({ maxLength: 2, max: 3 }).map(toHex);
const mapArb = fc.constantFrom(...MAPS);
const valueArb = fc.uint8Array({ maxLength: 3 }).map(toHex);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(mapArb, keyArb, valueArb)
      .map(([map, key, value]): Op => ({ kind: "set", map, key, value })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(mapArb, keyArb).map(([map, key]): Op => ({ kind: "delete", map, key })),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(mapArb, keyArb).map(([map, key]): Op => ({ kind: "get", map, key })),
  },
  { weight: 1, arbitrary: mapArb.map((map): Op => ({ kind: "clear", map })) },
);
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.array(opArb, { maxLength: 8 }).map((ops): Command => ({ kind: "tx", ops })),
  },
  { weight: 1, arbitrary: fc.nat(4).map((back): Command => ({ kind: "rollback", back })) },
  { weight: 1, arbitrary: fc.nat(4).map((back): Command => ({ kind: "compact", back })) },
);

/** The naive model: every map as plain key -> {value, seqno}, tombstones as value null. */
interface ModelMap {
  seqno: number;
  entries: Map<string, { value: string | null; seqno: number }>;
}
type Model = Map<string, ModelMap>;
type Triple = [string, string, string | null];

function cloneModel(model: Model): Model {
  const copy: Model = new Map();
  for (const [name, m] of model) copy.set(name, { seqno: m.seqno, entries: new Map(m.entries) });
  return copy;
}

function liveValue(model: Model, map: string, key: string): string | null {
  return model.get(map)?.entries.get(key)?.value ?? null;
}

/** The canonical write set the spec asks of `ops` against `model`, as sorted triples. */
function modelWriteSet(model: Model, ops: readonly Op[]): Triple[] {
  const pending = new Map<string, Map<string, string | null>>();
  const cleared = new Set<string>();
  const visible = (map: string, key: string): string | null => {
    const own = pending.get(map);
    if (own?.has(key)) return own.get(key)!;
    return cleared.has(map) ? null : liveValue(model, map, key);
  };
  for (const op of ops) {
    const own = pending.get(op.map) ?? new Map<string, string | null>();
    pending.set(op.map, own);
    if (op.kind === "set") own.set(op.key, op.value);
    else if (op.kind === "delete" && visible(op.map, op.key) !== null) own.set(op.key, null);
    else if (op.kind === "clear") {
      cleared.add(op.map);
      own.clear();
      for (const [key, entry] of model.get(op.map)?.entries ?? []) {
        if (entry.value !== null) own.set(key, null);
      }
    }
  }
  const out: Triple[] = [];
  for (const [map, writes] of pending) {
    for (const [key, value] of writes) {
      if (value !== null || liveValue(model, map, key) !== null) out.push([map, key, value]);
    }
  }
  // Map names and hex keys both sort as plain strings (hex order is byte order).
  return out.sort((x, y) => compareText(x[0], y[0]) || compareText(x[1], y[1]));
}

function compareText(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

function modelApply(model: Model, writes: readonly Triple[], seqno: number): Model {
  const next = cloneModel(model);
  for (const [map, key, value] of writes) {
    const m = next.get(map) ?? { seqno: 0, entries: new Map() };
    next.set(map, m);
    m.entries.set(key, { value, seqno });
    m.seqno = seqno;
  }
  return next;
}

function runOps(store: Store, ops: readonly Op[]): CommitOutcome {
  const tx = store.begin();
  for (const op of ops) {
    const map = tx.rw(op.map);
    if (op.kind === "set") map.set(fromHex(op.key)!, fromHex(op.value)!);
    else if (op.kind === "delete") map.delete(fromHex(op.key)!);
    else if (op.kind === "clear") map.clear();
    else map.get(fromHex(op.key)!);
  }
  return store.commit(tx);
}

function triples(writeSet: WriteSet): Triple[] {
  return writeSet.maps.flatMap((m) =>
    m.writes.map((w): Triple => [m.name, toHex(w.key), w.value === null ? null : toHex(w.value)]),
  );
}

/** Asserts the store holds exactly `model` (tombstones at or below compacted read as absent). */
function assertMatches(store: Store, model: Model, keysUsed: ReadonlySet<string>): void {
  const compacted = store.compactedSeqno;
  const written = [...model].filter(([, m]) => m.seqno > 0).map(([name]) => name);
  assert.deepEqual(store.mapNames(), written.sort());
  for (const name of MAPS) {
    const m = model.get(name);
    const live = [...(m?.entries ?? [])].filter(([, e]) => e.value !== null);
    live.sort(([x], [y]) => compareText(x, y));
    assert.deepEqual(
      [...store.entries(name)].map(([k, v]) => [toHex(k), toHex(v)]),
      live.map(([k, e]) => [k, e.value]),
    );
    assert.equal(store.lastWriteSeqno(name), m?.seqno ?? 0);
    for (const key of keysUsed) {
      const entry = m?.entries.get(key);
      const expected =
        entry === undefined || (entry.value === null && entry.seqno <= compacted) ? 0 : entry.seqno;
      assert.equal(store.lastWriteSeqno(name, fromHex(key)!), expected, `${name}/${key}`);
    }
  }
}

test("property: random txs, rollbacks and compactions leave the state of a naive model", () => {
  fc.assert(
    fc.property(fc.array(commandArb, { maxLength: 30 }), (commands) => {
      const store = new Store();
      const history: Model[] = [new Map()]; // history[seqno] = model state at seqno
      const keysUsed = new Set<string>();
      for (const command of commands) {
        const model = history[history.length - 1]!;
        if (command.kind === "tx") {
          for (const op of command.ops) if (op.kind !== "clear") keysUsed.add(op.key);
          const expected = modelWriteSet(model, command.ops);
          const outcome = runOps(store, command.ops);
          if (expected.length === 0) {
            assert.deepEqual(outcome, { kind: "read-only", seqno: history.length - 1 });
          } else {
            assert.equal(outcome.kind, "committed");
            if (outcome.kind !== "committed") return;
            assert.equal(outcome.seqno, history.length);
            assert.deepEqual(triples(outcome.writeSet), expected);
            history.push(modelApply(model, expected, history.length));
          }
        } else {
          const target = Math.max(store.compactedSeqno, store.seqno - command.back) as Seqno;
          if (command.kind === "rollback") {
            store.rollback(target);
            history.length = target + 1;
          } else {
            store.compact(target);
          }
        }
        assert.equal(store.seqno, history.length - 1);
        assertMatches(store, history[history.length - 1]!, keysUsed);
      }
    }),
    { numRuns: 300 },
  );
});

test("property: a tx conflicts exactly when another commit wrote something it read", () => {
  const readArb = fc.oneof(
    fc.record({ map: mapArb, key: keyArb }),
    fc.record({ map: mapArb, key: fc.constant(null) }), // whole-map read (size)
  );
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 8 }),
      fc.array(readArb, { maxLength: 4 }),
      fc.array(readArb, { maxLength: 4 }),
      fc.array(opArb, { maxLength: 6 }),
      (setup, readsBefore, readsAfter, otherOps) => {
        const store = new Store();
        runOps(store, setup);
        const tx = store.begin();
        const read = (r: { map: string; key: string | null }): void => {
          if (r.key === null) void tx.ro(r.map).size;
          else tx.ro(r.map).get(fromHex(r.key)!);
        };
        readsBefore.forEach(read);
        const other = runOps(store, otherOps);
        readsAfter.forEach(read); // reads of newer writes doom the tx
        tx.rw("public:out").set(b("k"), b("v"));
        const written = other.kind === "committed" ? triples(other.writeSet) : [];
        const overlaps = [...readsBefore, ...readsAfter].some((r) =>
          written.some(([map, key]) => map === r.map && (r.key === null || r.key === key)),
        );
        assert.equal(store.commit(tx).kind, overlaps ? "conflict" : "committed");
      },
    ),
    { numRuns: 500 },
  );
});

test("hot path timing: begin + one set (16-byte key, 100-byte value) + commit", (t) => {
  const store = new Store();
  const keys = Array.from({ length: 1024 }, (_, i) => {
    const key = new Uint8Array(16);
    new DataView(key.buffer).setUint32(12, i);
    return key;
  });
  const value = new Uint8Array(100).fill(7);
  const count = 200_000;
  const startNs = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const tx = store.begin();
    tx.rw(MAP).set(keys[i & 1023]!, value);
    store.commit(tx);
    // Consensus compacts as it commits: keep the undo log bounded as a node would.
    if ((i & 1023) === 1023) store.compact(store.seqno);
  }
  const perTxUs = Number(process.hrtime.bigint() - startNs) / 1000 / count;
  assert.equal(store.seqno, count);
  t.diagnostic(`${count} txs: ${perTxUs.toFixed(2)} us per begin + set + commit`);
});
