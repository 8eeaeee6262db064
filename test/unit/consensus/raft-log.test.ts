/**
 * The consensus log (src/consensus/raft-log.ts): contiguous appends with non-decreasing views,
 * truncation of views, signatures and configurations, the signature and configuration queries,
 * and payload compaction. After `compactPayloads(n)` the payloads below n must come from the
 * PayloadReader, a slice over a compacted range must read it with ONE range call, and a reader
 * that returns too few payloads is an assertion failure. A property test compares the log with
 * a naive array model under random append / truncate / compact sequences. The view history a
 * snapshot records is checked against CCF's own example (ccf-compatibility.md §6.6).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AssertionError } from "../../../src/base/assert.js";
import { utf8 } from "../../../src/base/bytes.js";
import { RaftLog, type PayloadReader } from "../../../src/consensus/raft-log.js";
import type { NodeId, RaftEntry, Seqno, View } from "../../../src/consensus/types.js";

const ids = (...names: string[]): NodeId[] => names as NodeId[];

/** A payload unique to (seqno, generation) and of varying size. */
function payloadOf(seqno: number, generation = 0): Uint8Array {
  return utf8(`g${generation}-s${seqno}-${"x".repeat(seqno % 7)}`);
}

function entry(
  seqno: number,
  view: number,
  options: { sig?: boolean; config?: string[]; payload?: Uint8Array } = {},
): RaftEntry {
  return {
    seqno: seqno as Seqno,
    view: view as View,
    isSignature: options.sig ?? false,
    ...(options.config !== undefined ? { configuration: ids(...options.config) } : {}),
    payload: options.payload ?? payloadOf(seqno),
  };
}

/**
 * A fake ledger: payloads by seqno, read back as copies (so a test can tell a payload that came
 * from the reader from the one the log kept), counting every call.
 */
class ArrayReader implements PayloadReader {
  readonly store: Uint8Array[] = [];
  readonly calls: [number, number][] = [];
  /** When set, returns this many payloads fewer than asked. */
  shortBy = 0;

  payloads(from: Seqno, count: number): Uint8Array[] {
    this.calls.push([from, count]);
    const out: Uint8Array[] = [];
    for (let s = from; s < from + count - this.shortBy; s++) {
      const p = this.store[s];
      assert.ok(p !== undefined, `reader asked for unknown seqno ${s}`);
      out.push(p.slice());
    }
    return out;
  }
}

/** A log from base 0 with `n` entries in views 1, 1, 2, 2, 3..., the reader holding them all. */
function filledLog(n: number): { log: RaftLog; reader: ArrayReader; entries: RaftEntry[] } {
  const reader = new ArrayReader();
  const log = new RaftLog({ seqno: 0 as Seqno, view: 0 as View, configuration: ids("a") }, reader);
  const entries: RaftEntry[] = [];
  for (let s = 1; s <= n; s++) {
    const e = entry(s, Math.ceil(s / 2), { sig: s % 3 === 0 });
    log.append(e);
    reader.store[s] = e.payload;
    entries.push(e);
  }
  return { log, reader, entries };
}

test("an empty log from genesis answers its queries from the base", () => {
  const log = new RaftLog({
    seqno: 0 as Seqno,
    view: 0 as View,
    configuration: ids("c", "a", "b"),
  });
  assert.equal(log.baseSeqno, 0);
  assert.equal(log.last, 0);
  assert.equal(log.lastView, 0);
  assert.equal(log.lastCommittable, 0);
  assert.equal(log.has(0), true);
  assert.equal(log.has(1), false);
  assert.equal(log.isSignature(0), false, "genesis is not a signature");
  assert.deepEqual(log.configurations(), [{ seqno: 0, nodes: ["a", "b", "c"] }]);
  assert.deepEqual(log.slice(1, 10, 1000), []);
  assert.throws(() => log.viewAt(1), AssertionError);
  assert.throws(() => log.entry(0), AssertionError);
  assert.throws(() => log.entry(1), AssertionError);
});

test("the view history is CCF's: the first seqno of each view, empty views sharing the next's", () => {
  // CCF's own example (src/consensus/aft/test/view_history.cpp): views 1, 2, 3, 4, 5 start at
  // 1, 2, 5, 5, 10; view 3 has no entries.
  const views = [1, 2, 2, 2, 4, 4, 4, 4, 4, 5, 5];
  const log = new RaftLog({ seqno: 0 as Seqno, view: 0 as View, configuration: ids("a") });
  views.forEach((view, i) => log.append(entry(i + 1, view)));
  const at = (seqno: number) => log.viewHistory({ seqno, view: log.viewAt(seqno) });
  assert.deepEqual(at(0), []);
  assert.deepEqual(at(1), [1]);
  assert.deepEqual(at(4), [1, 2]);
  assert.deepEqual(at(5), [1, 2, 5, 5]);
  assert.deepEqual(at(9), [1, 2, 5, 5]);
  assert.deepEqual(at(11), [1, 2, 5, 5, 10]);
  // A primary's newest entries, in its view, may not have reached its log yet.
  assert.deepEqual(log.viewHistory({ seqno: 13, view: 7 }), [1, 2, 5, 5, 10, 12, 12]);
  assert.deepEqual(log.viewHistory({ seqno: 13, view: 5 }), [1, 2, 5, 5, 10]);
  assert.throws(() => log.viewHistory({ seqno: 9, view: 5 }), AssertionError);

  // From a snapshot at 5, whose view history the log extends.
  const fromSnapshot = new RaftLog({
    seqno: 5 as Seqno,
    view: 4 as View,
    configuration: ids("a"),
    viewHistory: [1, 2, 5, 5] as Seqno[],
  });
  views.slice(5).forEach((view, i) => fromSnapshot.append(entry(i + 6, view)));
  assert.deepEqual(fromSnapshot.viewHistory({ seqno: 5, view: 4 }), [1, 2, 5, 5]);
  assert.deepEqual(fromSnapshot.viewHistory({ seqno: 11, view: 5 }), [1, 2, 5, 5, 10]);
  // Below its base, the view of each seqno comes from that history.
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((seqno) => fromSnapshot.viewBelowBase(seqno)),
    [1, 2, 2, 2, 4],
  );
  assert.throws(() => fromSnapshot.viewBelowBase(6), AssertionError);
  // Without the history before its base, a log cannot give one.
  const unknown = new RaftLog({ seqno: 5 as Seqno, view: 4 as View, configuration: ids("a") });
  assert.throws(() => unknown.viewHistory({ seqno: 5, view: 4 }), AssertionError);
  assert.equal(unknown.viewBelowBase(3), null);
});

test("a log starting from a snapshot treats the base as committable", () => {
  const log = new RaftLog({ seqno: 10 as Seqno, view: 3 as View, configuration: ids("a") });
  assert.equal(log.last, 10);
  assert.equal(log.lastView, 3);
  assert.equal(log.viewAt(10), 3);
  assert.equal(log.isSignature(10), true);
  assert.equal(log.lastCommittable, 10);
  assert.equal(log.lastSignatureAtOrBelow(12), 10);
  assert.equal(log.has(9), false);
  assert.throws(() => log.viewAt(9), AssertionError);
  assert.throws(() => log.entry(10), AssertionError);
  assert.throws(() => log.append(entry(10, 3)), AssertionError);
  log.append(entry(11, 3, { sig: true }));
  assert.equal(log.last, 11);
  assert.equal(log.lastCommittable, 11);
  assert.deepEqual(log.entry(11), entry(11, 3, { sig: true }));
  assert.throws(() => log.truncate(9 as Seqno), AssertionError);
  log.truncate(10 as Seqno);
  assert.equal(log.last, 10);
  assert.equal(log.lastCommittable, 10);
});

test("append keeps seqnos contiguous and views non-decreasing", () => {
  const log = new RaftLog({ seqno: 0 as Seqno, view: 2 as View, configuration: ids("a") });
  assert.throws(() => log.append(entry(2, 2)), AssertionError, "gap");
  assert.throws(() => log.append(entry(1, 1)), AssertionError, "view below the base view");
  log.append(entry(1, 2));
  log.append(entry(2, 4));
  assert.throws(() => log.append(entry(3, 3)), AssertionError, "view decreases");
  assert.throws(() => log.append(entry(2, 4)), AssertionError, "seqno repeated");
  log.append(entry(3, 4, { sig: true, config: ["b", "a"] }));
  assert.equal(log.last, 3);
  assert.deepEqual(
    [0, 1, 2, 3].map((s) => log.viewAt(s)),
    [2, 2, 4, 4],
  );
  assert.deepEqual(log.meta(1), { view: 2, isSignature: false });
  assert.deepEqual(log.meta(3), { view: 4, isSignature: true, configuration: ["a", "b"] });
  assert.deepEqual(log.entry(2), entry(2, 4));
  assert.equal(log.lastAtOrBelowWithViewAtMost(3, 3), 1);
  assert.equal(log.lastAtOrBelowWithViewAtMost(99, 4), 3);
  assert.equal(log.lastAtOrBelowWithViewAtMost(3, 1), 0);
  assert.equal(log.firstOfView(4), 2);
  assert.equal(log.firstOfView(3), null);
  assert.equal(log.firstOfView(5), null);
});

test("signature queries: lastCommittable, signaturesIn, lastSignatureAtOrBelow", () => {
  const { log } = filledLog(10); // signatures at 3, 6, 9
  assert.equal(log.lastCommittable, 9);
  assert.deepEqual(log.signaturesIn(0, 10), [3, 6, 9]);
  assert.deepEqual(log.signaturesIn(3, 9), [6, 9]);
  assert.deepEqual(log.signaturesIn(2, 8), [3, 6]);
  assert.deepEqual(log.signaturesIn(6, 8), []);
  assert.deepEqual(log.signaturesIn(9, 100), []);
  assert.equal(log.lastSignatureAtOrBelow(2), 0);
  assert.equal(log.lastSignatureAtOrBelow(3), 3);
  assert.equal(log.lastSignatureAtOrBelow(8), 6);
  assert.equal(log.lastSignatureAtOrBelow(100), 9);
  assert.equal(log.isSignature(6), true);
  assert.equal(log.isSignature(7), false);

  log.truncate(7 as Seqno);
  assert.equal(log.lastCommittable, 6);
  assert.equal(log.isSignature(9), false);
  assert.deepEqual(log.signaturesIn(0, 100), [3, 6]);
  log.truncate(2 as Seqno);
  assert.equal(log.lastCommittable, 0);
  assert.deepEqual(log.signaturesIn(0, 100), []);
  assert.equal(log.isSignature(3), false);
  log.append(entry(3, 5, { sig: true }));
  assert.equal(log.lastCommittable, 3);
  assert.equal(log.lastView, 5);
});

test("truncate drops views, signatures, configurations and payloads after the seqno", () => {
  const log = new RaftLog({ seqno: 0 as Seqno, view: 0 as View, configuration: ids("a") });
  log.append(entry(1, 1, { config: ["a", "b"] }));
  log.append(entry(2, 1, { sig: true }));
  log.append(entry(3, 2, { config: ["a", "b", "c"] }));
  log.append(entry(4, 2, { sig: true }));
  assert.throws(() => log.truncate(5 as Seqno), AssertionError);
  log.truncate(4 as Seqno);
  assert.equal(log.last, 4, "truncate to last is a no-op");
  log.truncate(2 as Seqno);
  assert.equal(log.last, 2);
  assert.equal(log.lastView, 1);
  assert.deepEqual(log.configurations(), [
    { seqno: 0, nodes: ["a"] },
    { seqno: 1, nodes: ["a", "b"] },
  ]);
  assert.throws(() => log.viewAt(3), AssertionError);
  assert.throws(() => log.entry(3), AssertionError);
  log.append(entry(3, 3, { payload: utf8("new three") }));
  assert.deepEqual(log.entry(3), entry(3, 3, { payload: utf8("new three") }));
  assert.deepEqual(log.meta(3), { view: 3, isSignature: false });
  log.truncate(0 as Seqno);
  assert.equal(log.last, 0);
  assert.deepEqual(log.configurations(), [{ seqno: 0, nodes: ["a"] }]);
});

test("configurations and the ones active at a commit", () => {
  const log = new RaftLog({ seqno: 0 as Seqno, view: 0 as View, configuration: ids("b", "a") });
  for (let s = 1; s <= 8; s++) {
    const config = s === 3 ? ["c", "a", "b"] : s === 6 ? ["b", "c"] : undefined;
    log.append(entry(s, 1, config === undefined ? {} : { config }));
  }
  const base = { seqno: 0, nodes: ["a", "b"] };
  const c3 = { seqno: 3, nodes: ["a", "b", "c"] };
  const c6 = { seqno: 6, nodes: ["b", "c"] };
  assert.deepEqual(log.configurations(), [base, c3, c6]);
  assert.deepEqual(log.activeConfigurations(0), [base, c3, c6]);
  assert.deepEqual(log.activeConfigurations(2), [base, c3, c6]);
  assert.deepEqual(log.activeConfigurations(3), [c3, c6]);
  assert.deepEqual(log.activeConfigurations(5), [c3, c6]);
  assert.deepEqual(log.activeConfigurations(6), [c6]);
  assert.deepEqual(log.activeConfigurations(100), [c6]);
  assert.deepEqual(log.meta(6).configuration, ["b", "c"]);
  assert.equal(log.meta(5).configuration, undefined);
  log.truncate(5 as Seqno);
  assert.deepEqual(log.configurations(), [base, c3]);
  assert.deepEqual(log.activeConfigurations(100), [c3]);
});

test("slice honours maxEntries and maxBytes but always returns at least one entry", () => {
  const { log, entries } = filledLog(10);
  assert.deepEqual(log.slice(1, 100, Infinity), entries);
  assert.deepEqual(log.slice(4, 3, Infinity), entries.slice(3, 6));
  assert.deepEqual(log.slice(10, 5, Infinity), entries.slice(9));
  assert.deepEqual(log.slice(11, 5, Infinity), []);
  assert.deepEqual(log.slice(5, 5, 0), [entries[4]], "one entry even above maxBytes");
  const twoBytes = entries[1]!.payload.byteLength + entries[2]!.payload.byteLength;
  assert.deepEqual(log.slice(2, 10, twoBytes), entries.slice(1, 3));
  assert.deepEqual(log.slice(2, 10, twoBytes - 1), entries.slice(1, 2));
});

test("compacted payloads come from the reader, one range read per slice", () => {
  const { log, reader, entries } = filledLog(10);
  log.compactPayloads(6);
  assert.equal(reader.calls.length, 0, "compaction itself reads nothing");

  // entry(s) below the compaction point: one read of one payload, identical bytes, a new copy.
  for (let s = 1; s <= 5; s++) {
    reader.calls.length = 0;
    const got = log.entry(s);
    assert.deepEqual(got, entries[s - 1]);
    assert.notEqual(got.payload, entries[s - 1]!.payload, "served by the reader");
    assert.deepEqual(reader.calls, [[s, 1]]);
  }
  reader.calls.length = 0;
  for (let s = 6; s <= 10; s++) assert.equal(log.entry(s).payload, entries[s - 1]!.payload);
  assert.deepEqual(reader.calls, [], "payloads at and above the point stay in memory");

  const cases: [from: number, maxEntries: number, calls: [number, number][]][] = [
    [1, 100, [[1, 5]]], // straddles the compaction point
    [1, 3, [[1, 3]]], // entirely compacted, bounded by maxEntries
    [4, 5, [[4, 2]]], // straddles
    [5, 1, [[5, 1]]],
    [6, 100, []], // entirely in memory
    [9, 100, []],
  ];
  for (const [from, maxEntries, calls] of cases) {
    reader.calls.length = 0;
    const got = log.slice(from, maxEntries, Infinity);
    assert.deepEqual(got, entries.slice(from - 1, from - 1 + maxEntries), `slice(${from})`);
    assert.deepEqual(reader.calls, calls, `reader calls for slice(${from}, ${maxEntries})`);
  }

  // maxBytes still applies to compacted entries (still a single read).
  reader.calls.length = 0;
  assert.deepEqual(log.slice(1, 100, 0), [entries[0]]);
  assert.equal(reader.calls.length, 1);

  // Compacting to a lower or equal seqno changes nothing.
  log.compactPayloads(3);
  log.compactPayloads(6);
  reader.calls.length = 0;
  log.entry(6);
  assert.deepEqual(reader.calls, []);
});

test("compacting beyond the last entry keeps later appends in memory", () => {
  const { log, reader, entries } = filledLog(4);
  log.compactPayloads(100);
  reader.calls.length = 0;
  assert.deepEqual(log.slice(1, 100, Infinity), entries);
  assert.deepEqual(reader.calls, [[1, 4]]);
  const e5 = entry(5, 3);
  log.append(e5);
  reader.calls.length = 0;
  assert.equal(log.entry(5).payload, e5.payload);
  assert.deepEqual(log.slice(3, 100, Infinity), [...entries.slice(2), e5]);
  assert.deepEqual(reader.calls, [[3, 2]]);
});

test("truncating below the compaction point, then appending again", () => {
  const { log, reader, entries } = filledLog(10);
  log.compactPayloads(6);
  log.truncate(3 as Seqno);
  reader.store.length = 4; // the host's ledger is truncated too
  const fresh = [4, 5, 6, 7].map((s) => entry(s, 5, { payload: payloadOf(s, 1) }));
  for (const e of fresh) log.append(e);
  reader.calls.length = 0;
  for (const e of fresh) assert.equal(log.entry(e.seqno).payload, e.payload);
  assert.deepEqual(reader.calls, [], "re-appended entries are held in memory");
  assert.deepEqual(log.entry(2), entries[1]);
  reader.calls.length = 0;
  assert.deepEqual(log.slice(1, 100, Infinity), [...entries.slice(0, 3), ...fresh]);
  assert.deepEqual(reader.calls, [[1, 3]]);

  // Compacting again moves the point past the re-appended entries.
  for (const e of fresh) reader.store[e.seqno] = e.payload;
  log.compactPayloads(6);
  reader.calls.length = 0;
  assert.deepEqual(log.slice(2, 100, Infinity), [...entries.slice(1, 3), ...fresh]);
  assert.deepEqual(reader.calls, [[2, 4]]);
});

test("a reader returning too few payloads is an assertion failure", () => {
  const { log, reader } = filledLog(6);
  log.compactPayloads(5);
  reader.shortBy = 1;
  assert.throws(() => log.entry(2), AssertionError);
  assert.throws(() => log.slice(1, 10, Infinity), /reader returned 3 of 4 payloads/);
  assert.throws(() => log.slice(3, 10, Infinity), AssertionError);
  reader.shortBy = 0;
  assert.equal(log.slice(1, 10, Infinity).length, 6);
});

test("without a reader a compacted payload cannot be read", () => {
  const log = new RaftLog({ seqno: 0 as Seqno, view: 0 as View, configuration: ids("a") });
  for (let s = 1; s <= 3; s++) log.append(entry(s, 1));
  log.compactPayloads(3);
  assert.throws(() => log.entry(1), /compacted and no reader/);
  assert.throws(() => log.slice(2, 10, Infinity), /compacted and no reader/);
  assert.deepEqual(log.entry(3), entry(3, 1));
});

// ---- Property: RaftLog against a naive array model --------------------------------------------

type Command =
  | { op: "append"; viewBump: number; sig: boolean; config: string[] | null; size: number }
  | { op: "truncate"; at: number }
  | { op: "compact"; at: number }
  | { op: "check"; from: number; maxEntries: number; maxBytes: number; commit: number };

const NODES = ["n1", "n2", "n3", "n4"];

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("append" as const),
      viewBump: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 2 })),
      sig: fc.boolean(),
      config: fc.option(fc.subarray(NODES, { minLength: 1 }), { freq: 5 }),
      size: fc.integer({ min: 0, max: 9 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("compact" as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("check" as const),
      from: fc.nat(),
      maxEntries: fc.integer({ min: 1, max: 8 }),
      maxBytes: fc.integer({ min: 0, max: 40 }),
      commit: fc.nat(),
    }),
  },
);

interface Model {
  readonly base: number;
  readonly baseView: number;
  readonly baseConfig: string[];
  entries: RaftEntry[]; // entries[i].seqno === base + 1 + i
  /** Where the log should keep payloads from (the compaction point as specified). */
  payloadFrom: number;
}

function modelLast(m: Model): number {
  return m.base + m.entries.length;
}

function modelSlice(m: Model, from: number, maxEntries: number, maxBytes: number): RaftEntry[] {
  const out: RaftEntry[] = [];
  let bytes = 0;
  for (const e of m.entries.filter((x) => x.seqno >= from)) {
    if (out.length === maxEntries) break;
    if (out.length > 0 && bytes + e.payload.byteLength > maxBytes) break;
    bytes += e.payload.byteLength;
    out.push(e);
  }
  return out;
}

function checkAgainstModel(log: RaftLog, reader: ArrayReader, m: Model, c: Command): void {
  const last = modelLast(m);
  assert.equal(log.last, last);
  assert.equal(log.lastView, m.entries.at(-1)?.view ?? m.baseView);
  let previousView = m.baseView;
  for (let s = m.base; s <= last; s++) {
    const v = log.viewAt(s);
    assert.ok(v >= previousView, "views never decrease");
    previousView = v;
  }
  for (const e of m.entries) {
    reader.calls.length = 0;
    assert.deepEqual(log.entry(e.seqno), e);
    assert.deepEqual(reader.calls, e.seqno < m.payloadFrom ? [[e.seqno, 1]] : []);
  }
  const sigs = m.entries.filter((e) => e.isSignature).map((e) => e.seqno as number);
  assert.equal(log.lastCommittable, sigs.at(-1) ?? m.base);
  const configs = [
    { seqno: m.base, nodes: [...m.baseConfig].sort() },
    ...m.entries
      .filter((e) => e.configuration !== undefined)
      .map((e) => ({ seqno: e.seqno as number, nodes: [...e.configuration!] })),
  ];
  assert.deepEqual(log.configurations(), configs);
  if (c.op !== "check") return;

  const from = m.base + 1 + (c.from % (m.entries.length + 2));
  reader.calls.length = 0;
  assert.deepEqual(
    log.slice(from, c.maxEntries, c.maxBytes),
    modelSlice(m, from, c.maxEntries, c.maxBytes),
  );
  const readsCompacted = from < m.payloadFrom && from <= last;
  assert.equal(reader.calls.length, readsCompacted ? 1 : 0, "one range read at most");
  const at = m.base + (c.from % (m.entries.length + 2));
  assert.deepEqual(
    log.signaturesIn(at, at + c.maxEntries),
    sigs.filter((s) => s > at && s <= at + c.maxEntries),
  );
  assert.equal(log.lastSignatureAtOrBelow(at), sigs.filter((s) => s <= at).at(-1) ?? m.base);
  const commit = m.base + (c.commit % (m.entries.length + 1));
  // The last configuration introduced at or before the commit, and every later one.
  const activeFrom = configs.filter((x) => x.seqno <= commit).length - 1;
  assert.deepEqual(log.activeConfigurations(commit), configs.slice(Math.max(0, activeFrom)));
}

test("property: RaftLog behaves like an array model under append/truncate/compact", () => {
  let generation = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5 }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(commandArb, { maxLength: 40 }),
      (base, baseView, commands) => {
        generation++;
        const reader = new ArrayReader();
        const m: Model = {
          base,
          baseView,
          baseConfig: ["n2", "n1"],
          entries: [],
          payloadFrom: base + 1,
        };
        const log = new RaftLog(
          { seqno: base as Seqno, view: baseView as View, configuration: ids(...m.baseConfig) },
          reader,
        );
        for (const c of commands) {
          const last = modelLast(m);
          if (c.op === "append") {
            const seqno = last + 1;
            const view = (m.entries.at(-1)?.view ?? baseView) + c.viewBump;
            const payload = utf8(`${generation}:${seqno}:${"y".repeat(c.size)}`);
            const e = entry(seqno, view, {
              sig: c.sig,
              payload,
              ...(c.config !== null ? { config: c.config } : {}),
            });
            log.append(e);
            m.entries.push(e);
            reader.store[seqno] = payload;
          } else if (c.op === "truncate") {
            const to = base + (c.at % (m.entries.length + 1));
            log.truncate(to as Seqno);
            m.entries.length = to - base;
            reader.store.length = to + 1;
            if (to < m.payloadFrom) m.payloadFrom = to + 1;
          } else if (c.op === "compact") {
            const at = base + (c.at % (m.entries.length + 3));
            log.compactPayloads(at);
            m.payloadFrom = Math.max(m.payloadFrom, Math.min(at, last + 1));
          }
          checkAgainstModel(log, reader, m, c);
        }
      },
    ),
    { numRuns: 150 },
  );
});
