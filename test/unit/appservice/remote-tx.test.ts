// The app server's transaction (src/appservice/remote-tx.ts) and the protocol codec
// (src/appservice/messages.ts), ADR 0005. Oracles: src/kv Tx's semantics for the same operations
// (read-your-writes, delete's answer, clear then set, forEach/size overlaying own writes), the
// versions the test put in the cache, and codec round trips; malformed frames are refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode } from "cborg";
import { utf8, fromUtf8 } from "../../../src/base/bytes.js";
import {
  AppServiceError,
  decodeNodeMessage,
  decodeServerMessage,
  encodeAppMessage,
  type Values,
} from "../../../src/appservice/messages.js";
import {
  CallServices,
  Misses,
  RemoteMiss,
  RemoteTx,
  VersionedCache,
} from "../../../src/appservice/remote-tx.js";
import { Store } from "../../../src/kv/store.js";
import { sampleCallMessage, sampleResultMessage } from "../../helpers/app-service-messages.js";

const NONE: Values = { epoch: 0, keys: [], maps: [], tx_status: [], views: [] };

function cacheWith(values: Partial<Values>): VersionedCache {
  const cache = new VersionedCache();
  cache.apply({ ...NONE, ...values });
  return cache;
}

test("a read the cache lacks is a miss that stays recorded even if the guest catches it", () => {
  const tx = new RemoteTx(cacheWith({}), new Misses());
  assert.throws(() => tx.ro("public:m").get(utf8("k")), RemoteMiss);
  assert.throws(() => tx.ro("public:m").size, RemoteMiss);
  assert.equal(tx.misses.any, true);
  const need = tx.misses.need(9);
  assert.deepEqual(need.keys, [["public:m", utf8("k")]]);
  assert.deepEqual(need.maps, ["public:m"]);
  assert.equal(need.id, 9);
});

test("reads are served with their versions; writes are buffered and read back, as in a kv Tx", () => {
  const cache = cacheWith({
    keys: [
      ["public:m", utf8("a"), utf8("1"), 5],
      ["public:m", utf8("gone"), null, 0],
    ],
  });
  const tx = new RemoteTx(cache, new Misses());
  const m = tx.rw("public:m");
  assert.equal(fromUtf8(m.get(utf8("a"))!), "1");
  assert.equal(m.getVersionOfPreviousWrite(utf8("a")), 5);
  assert.equal(m.delete(utf8("gone")), false);
  m.set(utf8("a"), utf8("2"));
  assert.equal(fromUtf8(m.get(utf8("a"))!), "2");
  assert.equal(m.delete(utf8("a")), true);
  assert.equal(m.has(utf8("a")), false);
  const effects = tx.effects();
  assert.deepEqual(effects.reads, [
    ["public:m", utf8("a"), 5],
    ["public:m", utf8("gone"), 0],
  ]);
  assert.deepEqual(effects.writes, [["public:m", utf8("a"), null]]);
  assert.equal(tx.misses.any, false);
});

test("forEach and size see the cached map overlaid with the run's writes, like a kv Tx", () => {
  const rows: [string, string][] = [
    ["x", "1"],
    ["y", "2"],
  ];
  const cache = cacheWith({
    maps: [["public:m", 7, rows.map(([k, v], i) => [utf8(k), utf8(v), 3 + i] as const)]],
  });
  const remote = new RemoteTx(cache, new Misses()).rw("public:m");
  const store = new Store();
  const seed = store.begin();
  for (const [k, v] of rows) seed.rw("public:m").set(utf8(k), utf8(v));
  store.commit(seed);
  const local = store.begin().rw("public:m");
  for (const handle of [remote, local]) {
    handle.set(utf8("z"), utf8("3"));
    handle.delete(utf8("x"));
  }
  const seen = (h: typeof remote) => {
    const out: string[] = [];
    h.forEach((v, k) => out.push(`${fromUtf8(k)}=${fromUtf8(v)}`));
    return out.sort();
  };
  assert.deepEqual(seen(remote), seen(local));
  assert.equal(remote.size, local.size);
  assert.equal(remote.size, 2);
  // An unknown key of a cached map is absent at version 0.
  assert.equal(remote.getVersionOfPreviousWrite(utf8("nope")), undefined);
});

test("clear then set: the result clears the map and then writes, and reads after clear see none", () => {
  const tx = new RemoteTx(cacheWith({}), new Misses());
  const m = tx.rw("public:m");
  m.clear();
  assert.equal(m.get(utf8("any")), undefined);
  m.set(utf8("k"), utf8("v"));
  assert.equal(m.size, 1);
  const effects = tx.effects();
  assert.deepEqual(effects.cleared, ["public:m"]);
  assert.deepEqual(effects.writes, [["public:m", utf8("k"), utf8("v")]]);
  assert.deepEqual(effects.reads, []);
  assert.equal(tx.misses.any, false);
});

test("values of another epoch (a rollback on the node) replace everything cached", () => {
  const cache = cacheWith({ keys: [["public:m", utf8("a"), utf8("1"), 5]] });
  cache.apply({ ...NONE, epoch: 1, keys: [["public:m", utf8("b"), utf8("2"), 6]] });
  const tx = new RemoteTx(cache, new Misses());
  assert.throws(() => tx.ro("public:m").get(utf8("a")), RemoteMiss);
  assert.equal(fromUtf8(tx.ro("public:m").get(utf8("b"))!), "2");
});

test("calls and results round-trip through the codec", () => {
  const call = sampleCallMessage();
  assert.deepEqual(decodeNodeMessage(encodeAppMessage(call)), call);
  const result = sampleResultMessage();
  assert.deepEqual(decodeServerMessage(encodeAppMessage(result)), result);
});

test("malformed frames are refused with MalformedMessage", () => {
  const bad = [
    new Uint8Array([0xff]),
    encode({ t: "nope" }),
    encode({ t: "hello", package_id: 1 }),
    encode({ t: "values", id: -1, epoch: 0, keys: [], maps: [], tx_status: [], views: [] }),
    encode([1, 2]),
  ];
  const call = decodeNodeMessage(encodeAppMessage(sampleCallMessage()));
  bad.push(encode({ ...call, caller: "{not json" }));
  for (const frame of bad) {
    assert.throws(() => decodeNodeMessage(frame), AppServiceError);
  }
  const result = { t: "result", id: 1, epoch: 0, status: 42, headers: {}, body_kind: "json" };
  assert.throws(() => decodeServerMessage(encode(result)), AppServiceError);
});

test("ccf.consensus answers from the call and the node's answers, and misses what it lacks", () => {
  const services = new CallServices([2, 40]);
  const misses = new Misses();
  const run = services.forRun(misses);
  assert.deepEqual(run.lastCommittedTxId(), { view: 2, seqno: 40 });
  assert.throws(() => run.statusForTxId(2, 41), RemoteMiss);
  assert.throws(() => run.viewForSeqno(41), RemoteMiss);
  assert.deepEqual(misses.need(1).tx_status, [[2, 41]]);
  assert.deepEqual(misses.need(1).views, [41]);
  services.apply({ ...NONE, tx_status: [[2, 41, "Pending"]], views: [[41, 2]] });
  const again = services.forRun(new Misses());
  assert.equal(again.statusForTxId(2, 41), "Pending");
  assert.equal(again.viewForSeqno(41), 2);
});
