// Every action of the default constitution (constitution/*.js) applied by the QuickJS runner to
// a real Store, with a recording GovHost: the rows each action writes or removes, its guards
// (threshold checks, service status, node status) and the host calls it makes. A failed apply
// is not committed, so guards are also checked to leave the store untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  generateEncryptionKey,
  generateIdentity,
  memberIdFromCert,
} from "../../../src/crypto/identity.js";
import { Store } from "../../../src/kv/store.js";
import { QuickJsConstitution } from "../../../src/js/constitution.js";
import {
  defaultConstitutionSource,
  expectError,
  expectOk,
  inTx,
  proposal,
  readJson,
  readRaw,
  RecordingHost,
  seed,
  SINGLETON,
  T,
} from "../../fixtures/constitution/harness.js";

const SOURCE = defaultConstitutionSource();
const now = new Date();
const m0 = await generateIdentity({ name: "m0", now });
const m1 = await generateIdentity({ name: "m1", now });
const user = await generateIdentity({ name: "user", now });
const service = await generateIdentity({ name: "service", now });
const oldService = await generateIdentity({ name: "old service", now });
const encKey = generateEncryptionKey().publicKeyPem;
const ROOT = "ab".repeat(32);
const NODE = "0e".repeat(32);
const CSR = "-----BEGIN CERTIFICATE REQUEST-----\nCSR\n-----END CERTIFICATE REQUEST-----\n";

interface World {
  readonly store: Store;
  readonly host: RecordingHost;
  readonly gov: QuickJsConstitution;
}

/** A service in `status` with recovery threshold `threshold` and a signature root. */
async function world(status = "Opening", threshold = 1): Promise<World> {
  const store = new Store();
  seed(store, [
    [T.serviceInfo, SINGLETON, { status, cert: service.certPem }],
    [T.serviceConfig, SINGLETON, { recovery_threshold: threshold, consensus: "CFT" }],
    [T.signatures, SINGLETON, { root: ROOT, seqno: 1, view: 2 }],
  ]);
  const host = new RecordingHost();
  return { store, host, gov: await QuickJsConstitution.create(SOURCE, { host }) };
}

/** Validates, then applies and commits `actions` as proposal "p1"; returns apply's outcome. */
function run(w: World, ...actions: [name: string, args?: unknown][]) {
  const p = proposal(...actions);
  const verdict = expectOk(w.gov.validate(w.store.begin(), p));
  assert.deepEqual(verdict, { valid: true, description: "" }, "validate");
  return inTx(w.store, (tx) => w.gov.apply(tx, p, "p1"));
}

function invalid(w: World, name: string, args: unknown, pattern: RegExp): void {
  const verdict = expectOk(w.gov.validate(w.store.begin(), proposal([name, args])));
  assert.equal(verdict.valid, false, JSON.stringify(args));
  assert.match(verdict.description, pattern);
}

/** Adds a member directly: info with `status`, and an encryption key when `recovery`. */
function addMember(w: World, cert: string, status: string, recovery: boolean): string {
  const id = memberIdFromCert(cert);
  const role = recovery ? "Participant" : "NonParticipant";
  seed(w.store, [[T.memberInfo, id, { status, recovery_role: role }]]);
  seed(
    w.store,
    [[T.memberCerts, id, cert], ...(recovery ? [[T.memberKeys, id, encKey]] : [])] as [
      string,
      string,
      unknown,
    ][],
    true,
  );
  return id;
}

test("set_constitution stores the source and drops the other Open proposals", async () => {
  const w = await world();
  seed(w.store, [
    [T.proposalsInfo, "p1", { proposer_id: "m", state: "Open" }],
    [T.proposalsInfo, "p2", { proposer_id: "m", state: "Open", ballots: {} }],
    [T.proposalsInfo, "p3", { proposer_id: "m", state: "Withdrawn" }],
  ]);
  const next = SOURCE + "\n// v2\n";
  expectOk(run(w, ["set_constitution", { constitution: next }]));
  assert.equal(readJson(w.store, T.constitution, SINGLETON), next);
  assert.deepEqual(readJson(w.store, T.proposalsInfo, "p1"), { proposer_id: "m", state: "Open" });
  assert.deepEqual(readJson(w.store, T.proposalsInfo, "p2"), {
    proposer_id: "m",
    state: "Dropped",
    ballots: {},
  });
  assert.equal((readJson(w.store, T.proposalsInfo, "p3") as { state: string }).state, "Withdrawn");
});

test("set_member writes cert, encryption key, Accepted info and an ack of the latest root", async () => {
  const w = await world();
  const data = { name: "m0", team: ["a"] };
  expectOk(
    run(w, ["set_member", { cert: m0.certPem, encryption_pub_key: encKey, member_data: data }]),
  );
  const id = memberIdFromCert(m0.certPem);
  assert.equal(readRaw(w.store, T.memberCerts, id), m0.certPem);
  assert.equal(readRaw(w.store, T.memberKeys, id), encKey);
  assert.deepEqual(readJson(w.store, T.memberInfo, id), {
    status: "Accepted",
    recovery_role: "Participant",
    member_data: data,
  });
  assert.deepEqual(readJson(w.store, T.memberAcks, id), { state_digest: ROOT });
});

test("set_member without an encryption key is a NonParticipant; roles need a key", async () => {
  const w = await world();
  expectOk(run(w, ["set_member", { cert: m1.certPem }]));
  const id = memberIdFromCert(m1.certPem);
  assert.deepEqual(readJson(w.store, T.memberInfo, id), {
    status: "Accepted",
    recovery_role: "NonParticipant",
  });
  assert.equal(readRaw(w.store, T.memberKeys, id), undefined);
  invalid(
    w,
    "set_member",
    { cert: m1.certPem, recovery_role: "Owner" },
    /requires encryption_pub_key/,
  );
  invalid(
    w,
    "set_member",
    { cert: m1.certPem, recovery_role: "Boss" },
    /recovery_role must be one/,
  );
  invalid(w, "set_member", { cert: m1.certPem, encryption_pub_key: "x" }, /PEM public key/);
  expectOk(
    run(w, [
      "set_member",
      { cert: m1.certPem, encryption_pub_key: encKey, recovery_role: "Owner" },
    ]),
  );
  assert.equal(
    (readJson(w.store, T.memberInfo, id) as { recovery_role: string }).recovery_role,
    "Owner",
  );
});

test("remove_member deletes every row of the member and refreshes shares for recovery members", async () => {
  const w = await world();
  const id = addMember(w, m0.certPem, "Active", true);
  seed(w.store, [[T.memberAcks, id, { state_digest: ROOT }]]);
  expectOk(run(w, ["remove_member", { member_id: id }]));
  for (const map of [T.memberCerts, T.memberKeys, T.memberInfo, T.memberAcks]) {
    assert.equal(readRaw(w.store, map, id), undefined, map);
  }
  assert.deepEqual(w.host.names(), ["triggerRecoverySharesRefresh"]);
  expectOk(run(w, ["remove_member", { member_id: id }])); // absent: a no-op
  assert.deepEqual(w.host.names(), ["triggerRecoverySharesRefresh"]);
  invalid(
    w,
    "remove_member",
    { member_id: "ABC" },
    /remove_member at position 0.*member_id must be/,
  );
});

test("remove_member refuses to leave an Open service below its recovery threshold", async () => {
  const w = await world("Open", 2);
  const a = addMember(w, m0.certPem, "Active", true);
  const b = addMember(w, m1.certPem, "Active", true);
  expectError(run(w, ["remove_member", { member_id: a }]), /recovery threshold \(2\)/);
  assert.notEqual(readRaw(w.store, T.memberInfo, a), undefined);
  const c = addMember(w, user.certPem, "Active", true);
  expectOk(run(w, ["remove_member", { member_id: a }]));
  assert.equal(readRaw(w.store, T.memberInfo, a), undefined);
  assert.notEqual(readRaw(w.store, T.memberInfo, b), undefined);
  assert.notEqual(readRaw(w.store, T.memberInfo, c), undefined);
});

test("set_member_data replaces member_data and keeps the status", async () => {
  const w = await world();
  const id = addMember(w, m0.certPem, "Active", false);
  expectOk(run(w, ["set_member_data", { member_id: id, member_data: { x: 1 } }]));
  assert.deepEqual(readJson(w.store, T.memberInfo, id), {
    status: "Active",
    recovery_role: "NonParticipant",
    member_data: { x: 1 },
  });
  const ghost = "1".repeat(64);
  expectError(run(w, ["set_member_data", { member_id: ghost, member_data: {} }]), /does not exist/);
  invalid(
    w,
    "set_member_data",
    { member_id: id, member_data: 3 },
    /member_data must be of type object/,
  );
});

test("set_user, set_user_data and remove_user maintain users.certs and users.info", async () => {
  const w = await world();
  const id = memberIdFromCert(user.certPem);
  expectOk(run(w, ["set_user", { cert: user.certPem, user_data: { role: "reader" } }]));
  assert.equal(readRaw(w.store, T.userCerts, id), user.certPem);
  assert.deepEqual(readJson(w.store, T.userInfo, id), { user_data: { role: "reader" } });
  expectOk(run(w, ["set_user_data", { user_id: id, user_data: { role: "writer" } }]));
  assert.deepEqual(readJson(w.store, T.userInfo, id), { user_data: { role: "writer" } });
  expectOk(run(w, ["set_user_data", { user_id: id }]));
  assert.equal(readRaw(w.store, T.userInfo, id), undefined);
  expectError(run(w, ["set_user_data", { user_id: "2".repeat(64) }]), /user .* does not exist/);
  expectOk(run(w, ["set_user_data", { user_id: id, user_data: { v: 2 } }]));
  expectOk(run(w, ["remove_user", { user_id: id }]));
  assert.equal(readRaw(w.store, T.userCerts, id), undefined);
  assert.equal(readRaw(w.store, T.userInfo, id), undefined);
  invalid(w, "set_user", { cert: 5 }, /cert must be of type string/);
});

test("set_recovery_threshold checks bounds, keeps other config keys and refreshes shares", async () => {
  const w = await world();
  for (const bad of [0, 255, 1.5, "2"]) {
    invalid(w, "set_recovery_threshold", { recovery_threshold: bad }, /recovery_threshold must/);
  }
  expectOk(run(w, ["set_recovery_threshold", { recovery_threshold: 254 }]));
  assert.deepEqual(readJson(w.store, T.serviceConfig, SINGLETON), {
    recovery_threshold: 254,
    consensus: "CFT",
  });
  assert.deepEqual(w.host.names(), ["triggerRecoverySharesRefresh"]);
});

test("set_recovery_threshold on an Open service cannot exceed the active recovery members", async () => {
  const w = await world("Open", 1);
  addMember(w, m0.certPem, "Active", true);
  addMember(w, m1.certPem, "Active", false); // no key: not a recovery member
  addMember(w, user.certPem, "Accepted", true); // not Active
  expectError(run(w, ["set_recovery_threshold", { recovery_threshold: 2 }]), /exceeds .*\(1\)/);
  assert.deepEqual(w.host.names(), []);
  expectOk(run(w, ["set_recovery_threshold", { recovery_threshold: 1 }]));
});

test("set_service_configuration accepts only the known keys and merges them", async () => {
  const w = await world();
  invalid(
    w,
    "set_service_configuration",
    { consensus: "BFT" },
    /unknown service configuration key consensus/,
  );
  invalid(w, "set_service_configuration", { reconfiguration_type: "Magic" }, /one of/);
  invalid(w, "set_service_configuration", { recent_cose_proposals_window_size: 0 }, /between 1/);
  const args = { reconfiguration_type: "TwoTransaction", recent_cose_proposals_window_size: 50 };
  expectOk(run(w, ["set_service_configuration", args]));
  assert.deepEqual(readJson(w.store, T.serviceConfig, SINGLETON), {
    recovery_threshold: 1,
    consensus: "CFT",
    ...args,
  });
  assert.deepEqual(w.host.names(), []); // no threshold change, no refresh
});

test("transition_service_to_open hands the next identity to the host from Opening", async () => {
  const w = await world("Opening", 1);
  addMember(w, m0.certPem, "Active", true);
  invalid(w, "transition_service_to_open", { next_service_identity: "nope" }, /valid X509/);
  expectOk(run(w, ["transition_service_to_open", { next_service_identity: service.certPem }]));
  assert.deepEqual(w.host.calls, [["transitionServiceToOpen", undefined, service.certPem]]);
  const withPrevious = {
    next_service_identity: service.certPem,
    previous_service_identity: oldService.certPem,
  };
  expectError(run(w, ["transition_service_to_open", withPrevious]), /only for a recovered service/);
});

test("transition_service_to_open from Recovering needs and passes the previous identity", async () => {
  const w = await world("Recovering", 1);
  addMember(w, m0.certPem, "Active", true);
  const next = { next_service_identity: service.certPem };
  expectError(
    run(w, ["transition_service_to_open", next]),
    /previous_service_identity is required/,
  );
  const both = { ...next, previous_service_identity: oldService.certPem };
  expectOk(run(w, ["transition_service_to_open", both]));
  assert.deepEqual(w.host.calls, [
    ["transitionServiceToOpen", oldService.certPem, service.certPem],
  ]);
});

test("transition_service_to_open fails when Open or short of recovery members", async () => {
  const open = await world("Open", 1);
  addMember(open, m0.certPem, "Active", true);
  const args = { next_service_identity: service.certPem };
  expectError(run(open, ["transition_service_to_open", args]), /not Open/);
  const short = await world("Opening", 2);
  addMember(short, m0.certPem, "Active", true);
  addMember(short, m1.certPem, "Accepted", true);
  expectError(
    run(short, ["transition_service_to_open", args]),
    /1 active recovery members .*\(2\)/,
  );
  assert.deepEqual([...open.host.names(), ...short.host.names()], []);
});

function seedNode(w: World, node: Record<string, unknown>): void {
  seed(w.store, [[T.nodeInfo, NODE, { encryption_pub_key: "k", node_data: null, ...node }]]);
}

test("transition_node_to_trusted trusts a Pending node and endorses its CSR through the host", async () => {
  const w = await world();
  seedNode(w, { status: "Pending", certificate_signing_request: CSR });
  invalid(w, "transition_node_to_trusted", { node_id: NODE, valid_from: "2024" }, /ASN\.1 time/);
  expectOk(run(w, ["transition_node_to_trusted", { node_id: NODE, valid_from: "240101120000Z" }]));
  const info = readJson(w.store, T.nodeInfo, NODE) as Record<string, unknown>;
  assert.equal(info.status, "Trusted");
  assert.equal(info.ledger_secret_seqno, 42);
  assert.equal(info.certificate_signing_request, CSR);
  assert.equal(readRaw(w.store, T.nodeEndorsedCerts, NODE), w.host.endorsedCert);
  assert.deepEqual(w.host.calls, [
    ["getLatestLedgerSecretSeqno"],
    ["generateEndorsedCertificate", CSR, "240101120000Z", 365],
  ]);
  // Already Trusted: nothing more happens.
  expectOk(run(w, ["transition_node_to_trusted", { node_id: NODE, valid_from: "240101120000Z" }]));
  assert.equal(w.host.calls.length, 2);
});

test("transition_node_to_trusted without a CSR, with explicit days, and its refusals", async () => {
  const w = await world();
  seedNode(w, { status: "Pending" });
  const args = { node_id: NODE, valid_from: "20240101120000Z", validity_period_days: 30 };
  expectError(
    run(w, ["transition_node_to_trusted", { ...args, validity_period_days: 366 }]),
    /exceeds the maximum 365/,
  );
  expectOk(run(w, ["transition_node_to_trusted", args]));
  assert.equal((readJson(w.store, T.nodeInfo, NODE) as { status: string }).status, "Trusted");
  assert.equal(readRaw(w.store, T.nodeEndorsedCerts, NODE), undefined);
  assert.deepEqual(w.host.names(), ["getLatestLedgerSecretSeqno"]);
  const ghost = { ...args, node_id: "3".repeat(64) };
  expectError(run(w, ["transition_node_to_trusted", ghost]), /does not exist/);
  seedNode(w, { status: "Retired" });
  expectError(run(w, ["transition_node_to_trusted", args]), /is retired/);
});

test("remove_node deletes a Pending node and retires a Trusted one", async () => {
  const w = await world();
  seedNode(w, { status: "Pending" });
  seed(w.store, [[T.nodeEndorsedCerts, NODE, "pem"]], true);
  expectOk(run(w, ["remove_node", { node_id: NODE }]));
  assert.equal(readRaw(w.store, T.nodeInfo, NODE), undefined);
  assert.equal(readRaw(w.store, T.nodeEndorsedCerts, NODE), undefined);
  seedNode(w, { status: "Trusted", ledger_secret_seqno: 3 });
  expectOk(run(w, ["remove_node", { node_id: NODE }]));
  const info = readJson(w.store, T.nodeInfo, NODE) as Record<string, unknown>;
  assert.deepEqual([info.status, info.ledger_secret_seqno], ["Retired", 3]);
  expectOk(run(w, ["remove_node", { node_id: "4".repeat(64) }])); // absent: a no-op
});

test("set_node_data replaces node_data of an existing node", async () => {
  const w = await world();
  seedNode(w, { status: "Trusted" });
  expectOk(run(w, ["set_node_data", { node_id: NODE, node_data: { rack: 7 } }]));
  const info = readJson(w.store, T.nodeInfo, NODE) as Record<string, unknown>;
  assert.deepEqual([info.status, info.node_data], ["Trusted", { rack: 7 }]);
  expectError(
    run(w, ["set_node_data", { node_id: "5".repeat(64), node_data: 1 }]),
    /does not exist/,
  );
});

test("trigger_ledger_chunk, trigger_snapshot and trigger_ledger_rekey call the host", async () => {
  const w = await world();
  expectOk(run(w, ["trigger_ledger_chunk"], ["trigger_snapshot", {}], ["trigger_ledger_rekey"]));
  assert.deepEqual(w.host.names(), ["triggerLedgerChunk", "triggerSnapshot", "triggerLedgerRekey"]);
  invalid(w, "trigger_ledger_rekey", { now: true }, /takes no arguments/);
  invalid(w, "trigger_snapshot", { now: true }, /takes no arguments/);
});

test("virtual measurements and host data are added and removed", async () => {
  const w = await world();
  const hostData = "c".repeat(64);
  expectOk(
    run(
      w,
      ["add_virtual_measurement", { measurement: "m-1" }],
      ["add_virtual_host_data", { host_data: hostData }],
    ),
  );
  assert.equal(readJson(w.store, T.measurements, "m-1"), "AllowedToJoin");
  assert.equal(readJson(w.store, T.hostData, hostData), "");
  invalid(w, "add_virtual_host_data", { host_data: "XYZ" }, /64 lowercase hex/);
  invalid(w, "add_virtual_measurement", {}, /measurement must be of type string/);
  expectOk(
    run(
      w,
      ["remove_virtual_measurement", { measurement: "m-1" }],
      ["remove_virtual_host_data", { host_data: hostData }],
    ),
  );
  assert.equal(readRaw(w.store, T.measurements, "m-1"), undefined);
  assert.equal(readRaw(w.store, T.hostData, hostData), undefined);
});

test("a failing action fails the whole proposal: earlier actions' writes are not committed", async () => {
  const w = await world();
  const outcome = run(
    w,
    ["add_virtual_measurement", { measurement: "m-2" }],
    ["set_node_data", { node_id: "6".repeat(64), node_data: 1 }],
  );
  expectError(outcome, /^Exception thrown: node 6+ does not exist$/);
  assert.equal(readRaw(w.store, T.measurements, "m-2"), undefined);
});
