// The `ccf` global (src/js/ccf-globals.ts) run inside the real sandbox over a real Store tx:
// guest writes become host commits, read-only and prefix policies refuse writes with a JS
// error, forEach/size see the tx's view, ArrayBuffer conversions round-trip, and pemToId agrees
// with the host's member id. These are the contracts constitutions and ballots rely on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, toHex, utf8 } from "../../../src/base/bytes.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { generateIdentity, memberIdFromCert } from "../../../src/crypto/identity.js";
import { Store } from "../../../src/kv/store.js";
import { ccfGlobalsSetup, type KvAccess, writeDenial } from "../../../src/js/ccf-globals.js";
import { JsSandbox, type JsonValue, type JsOutcome } from "../../../src/js/sandbox.js";

const GOV = "public:ccf.gov.members.info";

const SCRIPT = `
const s = ccf.strToBuf, str = ccf.bufToStr;
export function put(map, k, v) { ccf.kv[map].set(s(k), ccf.jsonCompatibleToBuf(v)); }
export function get(map, k) {
  const v = ccf.kv[map].get(s(k));
  return v === undefined ? "absent" : ccf.bufToJsonCompatible(v);
}
export function del(map, k) { return ccf.kv[map].delete(s(k)); }
export function clear(map) { ccf.kv[map].clear(); }
export function has(map, k) { return ccf.kv[map].has(s(k)); }
export function list(map) {
  const out = [];
  ccf.kv[map].forEach((v, k, m) => { out.push([str(k), str(v), m === ccf.kv[map]]); });
  out.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return { size: ccf.kv[map].size, entries: out };
}
export function throwInForEach(map) { ccf.kv[map].forEach(() => { throw new Error("stop here"); }); }
export function visitsUntilThrow(map) {
  let visits = 0;
  try {
    ccf.kv[map].forEach(() => { visits++; throw new Error("stop"); });
  } catch (e) {
    return visits;
  }
  return -1;
}
export function writeInForEach(map) { ccf.kv[map].forEach((v, k) => ccf.kv[map].set(k, v)); }
export function badKey(map) { return ccf.kv[map].get("not a buffer"); }
export function version(map, k) { return ccf.kv[map].getVersionOfPreviousWrite(s(k)) ?? null; }
export function conversions() {
  const b = ccf.strToBuf("h\u00e9llo \u{1F600}");
  const j = ccf.jsonCompatibleToBuf({ a: [1, "x"], b: null });
  return [b instanceof ArrayBuffer, b.byteLength, ccf.bufToStr(b),
          ccf.bufToJsonCompatible(j), ccf.bufToStr(ccf.strToBuf(""))];
}
export function digest(text) {
  const d = new Uint8Array(ccf.crypto.digest("SHA-256", ccf.strToBuf(text)));
  return Array.from(d, (x) => x.toString(16).padStart(2, "0")).join("");
}
export function badDigest() { return ccf.crypto.digest("MD5", new ArrayBuffer(1)); }
export function pemToId(pem) { return ccf.pemToId(pem); }
export function assignKv() { ccf.kv.x = 1; }
`;

const READ_ONLY: KvAccess = { mode: "read-only" };
const READ_WRITE: KvAccess = { mode: "read-write" };

async function makeBox(): Promise<JsSandbox> {
  return JsSandbox.create({ "gov.js": SCRIPT }, { limits: { deadlineMs: 1000 } });
}

function run(
  box: JsSandbox,
  store: Store,
  access: KvAccess,
  exportName: string,
  args: JsonValue[],
): { outcome: JsOutcome; commit: () => ReturnType<Store["commit"]> } {
  const tx = store.begin();
  const outcome = box.call({
    module: "gov.js",
    exportName,
    args,
    setup: ccfGlobalsSetup({ tx, access }),
  });
  return { outcome, commit: () => store.commit(tx) };
}

function ok(outcome: JsOutcome): JsonValue | undefined {
  assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
  return (outcome as { value: JsonValue | undefined }).value;
}

function exceptionMessage(outcome: JsOutcome): string {
  assert.equal(outcome.kind, "exception", JSON.stringify(outcome));
  return (outcome as { message: string }).message;
}

test("a value set by the guest is committed by the host and visible to later txs", async () => {
  const box = await makeBox();
  const store = new Store();
  const write = run(box, store, READ_WRITE, "put", [GOV, "m1", { status: "Accepted" }]);
  ok(write.outcome);
  assert.equal(write.commit().kind, "committed");
  const hostTx = store.begin();
  const stored = hostTx.ro(GOV).get(utf8("m1"));
  assert.deepEqual(JSON.parse(fromUtf8(stored!)), { status: "Accepted" });
  const read = run(box, store, READ_ONLY, "get", [GOV, "m1"]);
  assert.deepEqual(ok(read.outcome), { status: "Accepted" });
  assert.deepEqual(ok(run(box, store, READ_ONLY, "get", [GOV, "m2"]).outcome), "absent");
  assert.equal(ok(run(box, store, READ_ONLY, "has", [GOV, "m1"]).outcome), true);
  assert.equal(ok(run(box, store, READ_ONLY, "version", [GOV, "m1"]).outcome), 1);
});

test("read-only mode rejects set, delete and clear with a JS error and writes nothing", async () => {
  const box = await makeBox();
  const store = new Store();
  for (const [fn, args] of [
    ["put", [GOV, "k", 1]],
    ["del", [GOV, "k"]],
    ["clear", [GOV]],
  ] as const) {
    const attempt = run(box, store, READ_ONLY, fn, [...args]);
    assert.match(exceptionMessage(attempt.outcome), /is read-only/);
    assert.equal(attempt.commit().kind, "read-only");
  }
  assert.equal(store.seqno, 0);
});

test("writes outside the allowed prefixes are refused with a clear message", async () => {
  const box = await makeBox();
  const store = new Store();
  const access: KvAccess = {
    mode: "read-write",
    writablePrefixes: ["public:ccf.gov.", "public:"],
    readOnlyPrefixes: ["public:ccf.internal."],
  };
  ok(run(box, store, access, "put", [GOV, "a", 1]).outcome);
  ok(run(box, store, access, "put", ["public:records", "a", 1]).outcome);
  const priv = exceptionMessage(run(box, store, access, "put", ["records", "a", 1]).outcome);
  assert.match(priv, /"records" is read-only here: writes are limited to maps starting with/);
  const internal = run(box, store, access, "put", ["public:ccf.internal.tree", "a", 1]).outcome;
  assert.match(exceptionMessage(internal), /"public:ccf\.internal\." are/);
  assert.equal(writeDenial(access, "public:ccf.gov.x"), null);
});

test("forEach and size see the tx's own writes and deletions", async () => {
  const box = await makeBox();
  const store = new Store();
  const seed = store.begin();
  for (const k of ["a", "b", "c"]) seed.rw(GOV).set(utf8(k), utf8(`v${k}`));
  assert.equal(store.commit(seed).kind, "committed");
  // One guest call that writes and then lists, through the same tx.
  const tx = store.begin();
  const setup = ccfGlobalsSetup({ tx, access: READ_WRITE });
  const box2 = await JsSandbox.create({
    "t.js": `${SCRIPT}
export function mutateThenList(map) {
  ccf.kv[map].delete(ccf.strToBuf("b"));
  ccf.kv[map].set(ccf.strToBuf("d"), ccf.strToBuf("vd"));
  return list(map);
}`,
  });
  const listed = ok(
    box2.call({ module: "t.js", exportName: "mutateThenList", args: [GOV], setup }),
  );
  assert.deepEqual(listed, {
    size: 3,
    entries: [
      ["a", "va", true],
      ["c", "vc", true],
      ["d", "vd", true],
    ],
  });
  assert.deepEqual(ok(run(box, store, READ_ONLY, "list", ["public:empty"]).outcome), {
    size: 0,
    entries: [],
  });
});

test("exceptions inside forEach stop it, and writing the iterated map is refused", async () => {
  const box = await makeBox();
  const store = new Store();
  const seed = store.begin();
  seed.rw(GOV).set(utf8("a"), utf8("1"));
  seed.rw(GOV).set(utf8("b"), utf8("2"));
  store.commit(seed);
  const thrown = run(box, store, READ_ONLY, "throwInForEach", [GOV]).outcome;
  assert.equal(exceptionMessage(thrown), "stop here");
  // The first exception ends the visits: the second entry never reaches the callback.
  assert.equal(ok(run(box, store, READ_ONLY, "visitsUntilThrow", [GOV]).outcome), 1);
  const written = run(box, store, READ_WRITE, "writeInForEach", [GOV]).outcome;
  assert.match(exceptionMessage(written), /written during forEach/);
});

test("keys must be ArrayBuffers and ccf.kv cannot be assigned to", async () => {
  const box = await makeBox();
  const store = new Store();
  assert.match(
    exceptionMessage(run(box, store, READ_ONLY, "badKey", [GOV]).outcome),
    /TypeError: .*key must be an ArrayBuffer/,
  );
  assert.match(
    exceptionMessage(run(box, store, READ_ONLY, "assignKv", []).outcome),
    /cannot be assigned/,
  );
});

test("string, JSON and digest conversions match the host's", async () => {
  const box = await makeBox();
  const store = new Store();
  const text = "h\u00e9llo \u{1F600}";
  assert.deepEqual(ok(run(box, store, READ_ONLY, "conversions", []).outcome), [
    true,
    utf8(text).length,
    text,
    { a: [1, "x"], b: null },
    "",
  ]);
  assert.equal(
    ok(run(box, store, READ_ONLY, "digest", ["abc"]).outcome),
    toHex(sha256(utf8("abc"))),
  );
  assert.match(
    exceptionMessage(run(box, store, READ_ONLY, "badDigest", []).outcome),
    /unsupported digest algorithm MD5/,
  );
});

test("ccf.pemToId equals memberIdFromCert", async () => {
  const box = await makeBox();
  const store = new Store();
  const identity = await generateIdentity({ name: "member0", now: new Date() });
  assert.equal(
    ok(run(box, store, READ_ONLY, "pemToId", [identity.certPem]).outcome),
    memberIdFromCert(identity.certPem),
  );
  assert.equal(run(box, store, READ_ONLY, "pemToId", ["not a pem"]).outcome.kind, "exception");
});

test("per-call overhead with the ccf globals installed", async (t) => {
  const box = await makeBox();
  const store = new Store();
  for (let i = 0; i < 10; i++) run(box, store, READ_ONLY, "has", [GOV, "x"]);
  const calls = 200;
  const started = performance.now();
  for (let i = 0; i < calls; i++) run(box, store, READ_ONLY, "has", [GOV, "x"]);
  const perCallMs = (performance.now() - started) / calls;
  t.diagnostic(`fresh runtime + ccf globals + module + kv read: ${perCallMs.toFixed(3)} ms/call`);
  assert.ok(perCallMs < 25, `${perCallMs} ms per call`);
});
