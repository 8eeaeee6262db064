// The registry's governance actions (constitution/actions-registry.js, loaded after the default
// constitution as the sandbox loads it) run by the QuickJS constitution runner on the same real
// Store as the registry app (apps/registry in the JS app runtime): validation messages naming
// the bad argument; set_registry_chaincode writing the policy and, on a change, revoking exactly
// the Active registrations the new policy refuses (each reason: platform, measurement, sequence,
// channel, host_data), in the same transaction; remove_registry_chaincode and
// revoke_registry_enclave. Oracles: the rows in the Store and the app's own queries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QuickJsConstitution } from "../../../../src/js/constitution.js";
import {
  defaultConstitutionSource,
  expectError,
  expectOk,
  inTx,
  proposal,
  RecordingHost,
} from "../../../fixtures/constitution/harness.js";
import { simulateEnclave } from "../../../helpers/registry-enclave.js";
import { MAPS, policy, registryApp, type RegistryApp } from "./harness.js";

const gov = await QuickJsConstitution.create(defaultConstitutionSource(), {
  host: new RecordingHost(),
});

function invalid(app: RegistryApp, name: string, args: unknown, pattern: RegExp): void {
  const verdict = expectOk(gov.validate(app.store.begin(), proposal([name, args])));
  assert.equal(verdict.valid, false, JSON.stringify(args));
  assert.match(verdict.description, pattern);
}

function pass(app: RegistryApp, name: string, args: unknown): void {
  const p = proposal([name, args]);
  const verdict = expectOk(gov.validate(app.store.begin(), p));
  assert.deepEqual(verdict, { valid: true, description: "" }, JSON.stringify(args));
  expectOk(inTx(app.store, (tx) => gov.apply(tx, p, "p1")));
}

function status(app: RegistryApp, chaincode: string, enclaveId: string): unknown {
  const text = app.row(MAPS.enclaveStatus, `${chaincode}/${enclaveId}`);
  return text === undefined ? { status: "Active" } : JSON.parse(text);
}

function register(app: RegistryApp, o: Parameters<typeof simulateEnclave>[0]): string {
  const e = simulateEnclave(o);
  const answer = app.call("register", { body: e.body });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return e.enclaveId;
}

test("set_registry_chaincode validation names the bad argument", async () => {
  const app = await registryApp();
  const ok = policy("cc1");
  invalid(app, "set_registry_chaincode", { ...ok, chaincode_id: "a/b" }, /chaincode_id must be/);
  invalid(app, "set_registry_chaincode", { ...ok, version: "" }, /version must not be empty/);
  invalid(app, "set_registry_chaincode", { ...ok, sequence: 1.5 }, /sequence must be an integer/);
  invalid(app, "set_registry_chaincode", { ...ok, platforms: [] }, /platforms must name/);
  invalid(app, "set_registry_chaincode", { ...ok, platforms: ["SGX"] }, /platforms\[0\] must be/);
  invalid(
    app,
    "set_registry_chaincode",
    { ...ok, host_data: ["xyz"] },
    /host_data\[0\] must be hex/,
  );
  const tcb = { boot_loader: 1, tee: 0, snp: 8, microcode: 115 };
  invalid(app, "set_registry_chaincode", { ...ok, min_tcb: { Rome: tcb } }, /min_tcb\["Rome"\]/);
  const badTcb = { Milan: { ...tcb, snp: -1 } };
  invalid(app, "set_registry_chaincode", { ...ok, min_tcb: badTcb }, /min_tcb\["Milan"\].snp/);
  invalid(app, "set_registry_chaincode", { ...ok, registrars: ["bob"] }, /registrars\[0\]/);
  invalid(app, "set_registry_chaincode", { ...ok, max_enclaves: 0 }, /max_enclaves/);
  invalid(app, "set_registry_chaincode", { ...ok, colour: "red" }, /colour is not an argument/);
  invalid(app, "remove_registry_chaincode", {}, /chaincode_id must be of type string/);
  invalid(app, "revoke_registry_enclave", { chaincode_id: "cc1", enclave_id: "x" }, /enclave_id/);
  pass(app, "set_registry_chaincode", { ...ok, min_tcb: { Milan: tcb, "00A10F11": tcb } });
  assert.deepEqual(JSON.parse(app.row(MAPS.chaincodes, "cc1")!), {
    ...ok,
    min_tcb: { Milan: tcb, "00A10F11": tcb },
  });
});

test("a policy change revokes exactly the registrations it refuses, each with its reason", async () => {
  const app = await registryApp();
  pass(app, "set_registry_chaincode", policy("cc1", { channel_id: "ch1" }));
  pass(app, "set_registry_chaincode", policy("cc2"));
  const a = register(app, { chaincodeId: "cc1", channelId: "ch1", hostData: "aa".repeat(32) });
  const b = register(app, { chaincodeId: "cc1", channelId: "ch1", hostData: "bb".repeat(32) });
  const other = register(app, { chaincodeId: "cc2" });

  // host_data narrowed: only b goes.
  pass(
    app,
    "set_registry_chaincode",
    policy("cc1", { channel_id: "ch1", host_data: ["AA".repeat(32)] }),
  );
  assert.deepEqual(status(app, "cc1", a), { status: "Active" });
  assert.deepEqual(status(app, "cc1", b), {
    status: "Revoked",
    reason: `HostDataNotAllowed: host_data ${"bb".repeat(32)} is no longer allowed`,
    revoked_by: "policy",
  });
  const reasonAfter = (change: Record<string, unknown>): string => {
    const fresh = register(app, { chaincodeId: "cc2" });
    pass(app, "set_registry_chaincode", policy("cc2", change));
    const s = status(app, "cc2", fresh) as { status: string; reason: string };
    assert.equal(s.status, "Revoked", JSON.stringify(change));
    pass(app, "set_registry_chaincode", policy("cc2"));
    return s.reason;
  };
  assert.match(reasonAfter({ platforms: ["AMD_SEV_SNP_v1"] }), /^PlatformNotAllowed/);
  assert.match(
    reasonAfter({ version: "v2-measurement" }),
    /^MeasurementMismatch: measurement v1-measurement/,
  );
  assert.match(reasonAfter({ sequence: 2 }), /^SequenceMismatch: sequence 1 is not sequence 2/);
  assert.match(reasonAfter({ channel_id: "ch9" }), /^ChannelMismatch/);
  // A revoked enclave stays revoked when the policy returns; the queries show it.
  assert.equal((status(app, "cc2", other) as { status: string }).status, "Revoked");
  const provisioned = app.call("provisioned", { params: { chaincode_id: "cc1" } });
  assert.deepEqual(provisioned.body, { enclave_ids: [a] });
});

test("remove_registry_chaincode and revoke_registry_enclave", async () => {
  const app = await registryApp();
  pass(app, "set_registry_chaincode", policy("cc1"));
  const a = register(app, { chaincodeId: "cc1" });
  const b = register(app, { chaincodeId: "cc1" });
  pass(app, "revoke_registry_enclave", { chaincode_id: "cc1", enclave_id: a.toLowerCase() });
  assert.deepEqual(status(app, "cc1", a), {
    status: "Revoked",
    reason: "revoked by governance",
    revoked_by: "governance",
  });
  assert.deepEqual(status(app, "cc1", b), { status: "Active" });
  const p = proposal([
    "revoke_registry_enclave",
    { chaincode_id: "cc1", enclave_id: "AB".repeat(32) },
  ]);
  expectError(
    inTx(app.store, (tx) => gov.apply(tx, p, "p2")),
    /is not registered for chaincode cc1/,
  );

  pass(app, "remove_registry_chaincode", { chaincode_id: "cc1" });
  assert.equal(app.row(MAPS.chaincodes, "cc1"), undefined);
  assert.deepEqual(status(app, "cc1", b), {
    status: "Revoked",
    reason: "chaincode removed",
    revoked_by: "governance",
  });
  assert.equal((status(app, "cc1", a) as { reason: string }).reason, "revoked by governance");
  const shown = app.call("getEnclave", { params: { chaincode_id: "cc1", enclave_id: b } });
  assert.equal((shown.body as { status: string }).status, "Revoked");
  const again = proposal(["remove_registry_chaincode", { chaincode_id: "cc1" }]);
  expectError(
    inTx(app.store, (tx) => gov.apply(tx, again, "p3")),
    /cc1 is not in the registry/,
  );
  const late = simulateEnclave({ chaincodeId: "cc1" });
  assert.equal(app.call("register", { body: late.body }).status, 404);
});
