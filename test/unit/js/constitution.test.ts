// The QuickJS constitution runner (src/js/constitution.ts) with the real default constitution
// over a real Store: validate's verdicts and descriptions, resolve's majority of Active members,
// ballots, the KV access policy of each entry point, failures as outcomes (exceptions, timeouts,
// bad results, throwing hosts) and the gov globals (cert bundles, validateConstitution).
// The per-action apply behaviour is in constitution-actions.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateIdentity } from "../../../src/crypto/identity.js";
import { Store } from "../../../src/kv/store.js";
import { QuickJsConstitution, TIMEOUT_REASON } from "../../../src/js/constitution.js";
import { isValidX509CertBundle } from "../../../src/js/gov-globals.js";
import {
  defaultConstitutionSource,
  expectError,
  expectOk,
  inTx,
  proposal,
  readRaw,
  RecordingHost,
  seed,
  SINGLETON,
  T,
} from "../../fixtures/constitution/harness.js";

const SOURCE = defaultConstitutionSource();
const member = await generateIdentity({ name: "member0", now: new Date() });
const other = await generateIdentity({ name: "member1", now: new Date() });

async function runner(
  source = SOURCE,
  host = new RecordingHost(),
  deadlineMs?: number,
): Promise<QuickJsConstitution> {
  return QuickJsConstitution.create(
    source,
    deadlineMs === undefined ? { host } : { host, limits: { deadlineMs } },
  );
}

test("validate accepts a well-formed proposal with an empty description", async () => {
  const gov = await runner();
  const p = proposal(
    ["set_member", { cert: member.certPem, member_data: { name: "m0" } }],
    ["set_recovery_threshold", { recovery_threshold: 2 }],
    ["trigger_snapshot"],
  );
  const verdict = expectOk(gov.validate(new Store().begin(), p));
  assert.deepEqual(verdict, { valid: true, description: "" });
});

test("validate rejects an unknown action, naming it", async () => {
  const gov = await runner();
  const verdict = expectOk(gov.validate(new Store().begin(), proposal(["make_coffee", {}])));
  assert.equal(verdict.valid, false);
  assert.equal(verdict.description, "make_coffee: no such action");
});

test("validate rejects bad arguments, naming the action, its position and the argument", async () => {
  const gov = await runner();
  const p = proposal(
    ["trigger_snapshot"],
    ["set_recovery_threshold", { recovery_threshold: 255 }],
    ["set_member", { cert: "not a cert" }],
  );
  const verdict = expectOk(gov.validate(new Store().begin(), p));
  assert.equal(verdict.valid, false);
  assert.match(
    verdict.description,
    /^set_recovery_threshold at position 1 failed validation: recovery_threshold must be between/,
  );
  assert.match(
    verdict.description,
    /set_member at position 2 failed validation: cert must be a valid X509/,
  );
});

test("validate of set_constitution compiles the new constitution in a nested runtime", async () => {
  const gov = await runner();
  const tx = new Store().begin();
  const good = expectOk(gov.validate(tx, proposal(["set_constitution", { constitution: SOURCE }])));
  assert.deepEqual(good, { valid: true, description: "" });
  const cases: [string, RegExp][] = [
    ["export function validate() {}", /does not export resolve, apply/],
    ["export function validate( {", /invalid constitution: evaluating it threw: SyntaxError/],
    ["throw new Error('at top level');", /evaluating it threw: at top level/],
  ];
  for (const [constitution, pattern] of cases) {
    const verdict = expectOk(gov.validate(tx, proposal(["set_constitution", { constitution }])));
    assert.equal(verdict.valid, false);
    assert.match(verdict.description, pattern);
  }
});

test("a proposal without an actions array is invalid, and non-JSON is an exception", async () => {
  const gov = await runner();
  const tx = new Store().begin();
  assert.deepEqual(expectOk(gov.validate(tx, "{}")), {
    valid: false,
    description: "proposal must have an actions array",
  });
  expectError(gov.validate(tx, "not json"), /^Exception thrown: SyntaxError/);
});

function activeMembers(store: Store, statuses: string[]): string[] {
  const ids = statuses.map((_, i) => String(i).padStart(64, "0"));
  seed(
    store,
    statuses.map((status, i) => [T.memberInfo, ids[i] ?? "", { status }]),
  );
  return ids;
}

test("resolve counts only Active members: a strict majority of them accepts", async () => {
  const gov = await runner();
  const store = new Store();
  // 3 Active + 2 Accepted: a majority of Active members is 2 votes (of 5 members it would be 3).
  const ids = activeMembers(store, ["Active", "Active", "Active", "Accepted", "Accepted"]);
  const votes = (...flags: boolean[]) =>
    flags.map((vote, i) => ({ member_id: ids[i] ?? "", vote }));
  const p = proposal(["trigger_snapshot"]);
  const resolve = (v: { member_id: string; vote: boolean }[]) =>
    expectOk(gov.resolve(store.begin(), p, ids[0] ?? "", v, "p1"));
  assert.equal(resolve([]), "Open");
  assert.equal(resolve(votes(true)), "Open");
  assert.equal(resolve(votes(true, false, false)), "Open");
  assert.equal(resolve(votes(true, true)), "Accepted");
  assert.equal(resolve(votes(false, true, true)), "Accepted");
});

test("resolve with no Active member accepts on a single vote (floor(0/2) = 0)", async () => {
  const gov = await runner();
  const store = new Store();
  const ids = activeMembers(store, ["Accepted"]);
  const votes = [{ member_id: ids[0] ?? "", vote: true }];
  assert.equal(expectOk(gov.resolve(store.begin(), "{}", "m", votes, "p")), "Accepted");
  assert.equal(expectOk(gov.resolve(store.begin(), "{}", "m", [], "p")), "Open");
});

test("a ballot votes for only by returning true; a throwing ballot is an error", async () => {
  const gov = await runner();
  const store = new Store();
  const p = proposal(["trigger_snapshot"]);
  const vote = (src: string) => gov.vote(store.begin(), src, p, "proposer");
  assert.equal(expectOk(vote("export function vote() { return true; }")), true);
  assert.equal(expectOk(vote("export function vote() { return false; }")), false);
  const inspects = `export function vote(proposal, proposerId) {
    return JSON.parse(proposal).actions[0].name === "trigger_snapshot" && proposerId === "proposer";
  }`;
  assert.equal(expectOk(vote(inspects)), true);
  expectError(
    vote("export function vote() { throw new Error('no way'); }"),
    /^Exception thrown: no way$/,
  );
  assert.equal(expectOk(vote("export function vote() { return 1; }")), false);
  assert.equal(expectOk(vote("export function vote() { return 'true'; }")), false);
  expectError(vote("export function ballot() { return true; }"), /exports no function "vote"/);
});

test("a throwing ballot carries the guest stack as its trace", async () => {
  const gov = await runner();
  const outcome = gov.vote(new Store().begin(), "export function vote() { null.x; }", "{}", "m");
  assert.equal(outcome.kind, "error");
  assert.match(outcome.kind === "error" ? outcome.reason : "", /^Exception thrown: TypeError/);
  assert.match(outcome.kind === "error" ? (outcome.trace ?? "") : "", /ballot\.js/);
});

test("ballots read the KV but cannot write it", async () => {
  const gov = await runner();
  const store = new Store();
  seed(store, [["public:ccf.gov.flag", "k", true]]);
  const reads = `export function vote() {
    return ccf.bufToJsonCompatible(ccf.kv["public:ccf.gov.flag"].get(ccf.strToBuf("k")));
  }`;
  assert.equal(expectOk(gov.vote(store.begin(), reads, "{}", "m")), true);
  const writes = `export function vote() {
    ccf.kv["public:ccf.gov.flag"].set(ccf.strToBuf("k"), ccf.strToBuf("false")); return true;
  }`;
  expectError(gov.vote(store.begin(), writes, "{}", "m"), /is read-only/);
});

const PROBE = `
function put(map) { ccf.kv[map].set(ccf.strToBuf("k"), ccf.strToBuf("\\"v\\"")); }
export function validate(p) { put(JSON.parse(p).map); return { valid: true, description: "" }; }
export function resolve(p) { put(JSON.parse(p).map); return "Open"; }
export function apply(p) { put(JSON.parse(p).map); }
`;

test("validate and resolve are read-only; apply writes public maps except ccf.internal", async () => {
  const gov = await runner(PROBE);
  const store = new Store();
  const p = (map: string) => JSON.stringify({ map });
  expectError(gov.validate(store.begin(), p("public:ccf.gov.x")), /is read-only/);
  expectError(gov.resolve(store.begin(), p("public:ccf.gov.x"), "m", [], "p1"), /is read-only/);
  for (const map of ["public:ccf.gov.x", "public:my_app.table"]) {
    expectOk(inTx(store, (tx) => gov.apply(tx, p(map), "p1")));
    assert.equal(readRaw(store, map, "k"), '"v"');
  }
  expectError(gov.apply(store.begin(), p("public:ccf.internal.signatures"), "p1"), /read-only/);
  expectError(gov.apply(store.begin(), p("my_app.private"), "p1"), /read-only/);
  assert.equal(readRaw(store, "public:ccf.internal.signatures", "k"), undefined);
});

test("ccf.node and ccf.network exist in apply only", async () => {
  const src = `
    export function validate() { return { valid: typeof ccf.node === "undefined", description: "" }; }
    export function resolve() { return typeof ccf.network; }
    export function apply() { ccf.node.triggerSnapshot(); ccf.network.getLatestLedgerSecretSeqno(); }
  `;
  const host = new RecordingHost();
  const gov = await runner(src, host);
  const store = new Store();
  assert.equal(expectOk(gov.validate(store.begin(), "{}")).valid, true);
  assert.equal(expectOk(gov.resolve(store.begin(), "{}", "m", [], "p")), "undefined");
  assert.deepEqual(host.names(), []);
  expectOk(gov.apply(store.begin(), "{}", "p"));
  assert.deepEqual(host.names(), ["triggerSnapshot", "getLatestLedgerSecretSeqno"]);
});

test("a host function that throws is a JS exception the constitution sees", async () => {
  const host = new RecordingHost();
  host.fail = "triggerSnapshot";
  const gov = await runner(SOURCE, host);
  expectError(
    gov.apply(new Store().begin(), proposal(["trigger_snapshot"]), "p1"),
    /^Exception thrown: .*host refused triggerSnapshot/,
  );
  const catching = `export function validate() { return { valid: true, description: "" }; }
    export function resolve() { return "Open"; }
    export function apply() {
      try { ccf.node.triggerSnapshot(); } catch (e) { ccf.node.triggerLedgerChunk(); }
    }`;
  const gov2 = await runner(catching, host);
  expectOk(gov2.apply(new Store().begin(), "{}", "p1"));
  assert.deepEqual(host.names(), ["triggerSnapshot", "triggerSnapshot", "triggerLedgerChunk"]);
});

test("a constitution that loops forever times out with CCF's message", async () => {
  const src = `export function validate() { for (;;) {} }
    export function resolve() { return "Open"; } export function apply() {}`;
  const gov = await runner(src, new RecordingHost(), 100);
  const started = Date.now();
  const outcome = gov.validate(new Store().begin(), "{}");
  assert.deepEqual(outcome, { kind: "error", reason: TIMEOUT_REASON });
  assert.ok(Date.now() - started < 2000);
});

test("results are normalised as CCF does: objects from validate, String() of resolve", async () => {
  const src = `export function validate(p) { return JSON.parse(p); }
    export function resolve(p) { return JSON.parse(p); } export function apply() { return 1; }`;
  const gov = await runner(src);
  const tx = new Store().begin();
  const validate = (result: unknown) => gov.validate(tx, JSON.stringify(result));
  assert.deepEqual(expectOk(validate({ valid: true, description: "d" })), {
    valid: true,
    description: "d",
  });
  assert.deepEqual(expectOk(validate({ valid: "yes", description: 3 })), {
    valid: false,
    description: "",
  });
  for (const bad of [true, "valid", null, [1]]) {
    expectError(validate(bad), /^Validation failed to return an object$/);
  }
  const resolve = (result: unknown) =>
    expectOk(gov.resolve(tx, JSON.stringify(result), "m", [], "p"));
  assert.equal(resolve("Accepted"), "Accepted");
  assert.equal(resolve(7), "7");
  assert.equal(resolve(null), "null");
  assert.equal(resolve({ state: "Accepted" }), "[object Object]");
  expectOk(gov.apply(tx, "{}", "p")); // apply's return value is ignored, as in CCF
});

test("fromKv runs the constitution the tx sees, so set_constitution governs what follows", async () => {
  const gov = await QuickJsConstitution.fromKv({ host: new RecordingHost() });
  const store = new Store();
  expectError(gov.resolve(store.begin(), "{}", "m", [], "p"), /^no constitution in public:ccf/);
  seed(store, [[T.constitution, SINGLETON, SOURCE]]);
  const p = proposal(["trigger_snapshot"]);
  assert.equal(expectOk(gov.resolve(store.begin(), p, "m", [], "p1")), "Open");
  const always = SOURCE.replace(/return votesFor > .*;/, 'return "Accepted";');
  assert.notEqual(always, SOURCE);
  expectOk(
    inTx(store, (tx) =>
      gov.apply(tx, proposal(["set_constitution", { constitution: always }]), "p1"),
    ),
  );
  assert.equal(expectOk(gov.resolve(store.begin(), p, "m", [], "p2")), "Accepted");
});

test("isValidX509CertBundle needs at least one certificate and every block to parse", () => {
  assert.equal(isValidX509CertBundle(member.certPem), true);
  assert.equal(isValidX509CertBundle(member.certPem + other.certPem), true);
  assert.equal(isValidX509CertBundle(""), false);
  assert.equal(isValidX509CertBundle("hello"), false);
  const broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  assert.equal(isValidX509CertBundle(member.certPem + broken), false);
  assert.equal(isValidX509CertBundle(member.privateKeyPem), false);
});

test("a governance call costs a few milliseconds", async (t) => {
  const gov = await runner();
  const store = new Store();
  const p = proposal(["set_recovery_threshold", { recovery_threshold: 2 }]);
  gov.validate(store.begin(), p);
  const rounds = 20;
  const started = performance.now();
  for (let i = 0; i < rounds; i++) expectOk(gov.validate(store.begin(), p));
  const perCallMs = (performance.now() - started) / rounds;
  t.diagnostic(`validate with the default constitution: ${perCallMs.toFixed(2)} ms per call`);
  assert.ok(perCallMs < 50, `${perCallMs} ms per call`);
});

/** A ballot whose source nests `depth` parentheses: QuickJS's parser recurses per level. */
function deepParensBallot(depth: number): string {
  return `export function vote() { return ${"(".repeat(depth)}true${")".repeat(depth)}; }`;
}

test("100,000 nested parentheses are a stack-overflow error, not a host RangeError", async () => {
  const gov = await runner();
  const store = new Store();
  for (let i = 0; i < 3; i++) {
    const outcome = gov.vote(store.begin(), deepParensBallot(100_000), "{}", "m");
    expectError(outcome, /^Exception thrown: InternalError: stack overflow$/);
  }
  // The module is still sound afterwards.
  const vote = gov.vote(store.begin(), "export function vote() { return true; }", "{}", "m");
  assert.equal(expectOk(vote), true);
  const deep = deepParensBallot(100_000);
  const verdict = expectOk(
    gov.validate(store.begin(), proposal(["set_constitution", { constitution: deep }])),
  );
  assert.equal(verdict.valid, false);
  assert.match(verdict.description, /stack overflow/);
});
