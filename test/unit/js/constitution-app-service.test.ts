// The app service actions (constitution/actions-app-service.js, ADR 0005) run by the QuickJS
// constitution runner over a real Store, loaded with the default constitution as the sandbox
// loads it: validation names the bad argument; set_app_service writes the row the node reads
// (src/gov/app-services.ts parses it back, with the default timeout), remove_app_service deletes
// it and refuses an unknown package. Oracles: the Store's rows and appServiceRows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { QuickJsConstitution } from "../../../src/js/constitution.js";
import { Store } from "../../../src/kv/store.js";
import { SERVICE_TABLES } from "../../../src/kv/service-tables.js";
import { appServiceRows } from "../../../src/gov/app-services.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";
import {
  defaultConstitutionSource,
  expectError,
  expectOk,
  inTx,
  proposal,
  readJson,
  RecordingHost,
} from "../../fixtures/constitution/harness.js";

const gov = await QuickJsConstitution.create(defaultConstitutionSource(), {
  host: new RecordingHost(),
});
const CA = (await createStartIdentities({ now: new Date() })).serviceCertPem;
const ID = "ab".repeat(32);

function verdict(store: Store, name: string, args: unknown) {
  return expectOk(gov.validate(store.begin(), proposal([name, args])));
}

function apply(store: Store, name: string, args: unknown) {
  return inTx(store, (tx) => gov.apply(tx, proposal([name, args]), "p1"));
}

test("set_app_service validation names the bad argument", () => {
  const store = new Store();
  const ok = { package_id: ID, address: "127.0.0.1:8200" };
  const bad: [unknown, RegExp][] = [
    [{ ...ok, package_id: "AB".repeat(32) }, /package_id must be the lower-case hex SHA-256/],
    [{ ...ok, address: "127.0.0.1" }, /address must be host:port/],
    [{ ...ok, address: "h:70000" }, /address must be host:port/],
    [{ ...ok, ca_cert: "not a cert" }, /ca_cert must be a valid X509 cert bundle/],
    [{ ...ok, timeout_ms: 0 }, /timeout_ms must be between 1 and 600000/],
    [{ ...ok, extra: 1 }, /extra is not an argument of this action/],
  ];
  for (const [args, pattern] of bad) {
    const v = verdict(store, "set_app_service", args);
    assert.equal(v.valid, false, JSON.stringify(args));
    assert.match(v.description, pattern);
  }
  assert.deepEqual(verdict(store, "set_app_service", { ...ok, ca_cert: CA, timeout_ms: 250 }), {
    valid: true,
    description: "",
  });
});

test("set_app_service writes the row nodes read; remove_app_service deletes it", () => {
  const store = new Store();
  expectOk(apply(store, "set_app_service", { package_id: ID, address: "h:1", ca_cert: CA }));
  assert.deepEqual(readJson(store, SERVICE_TABLES.appServices, ID), {
    address: "h:1",
    ca_cert: CA,
  });
  const tx = store.begin();
  assert.deepEqual(appServiceRows(tx.ro(SERVICE_TABLES.appServices)), [
    { packageId: ID, address: "h:1", caCert: CA, timeoutMs: 5000 },
  ]);
  expectOk(apply(store, "set_app_service", { package_id: ID, address: "h:2", timeout_ms: 9 }));
  assert.deepEqual(readJson(store, SERVICE_TABLES.appServices, ID), {
    address: "h:2",
    timeout_ms: 9,
  });
  expectOk(apply(store, "remove_app_service", { package_id: ID }));
  assert.equal(readJson(store, SERVICE_TABLES.appServices, ID), undefined);
  expectError(apply(store, "remove_app_service", { package_id: ID }), /no app service is set/);
});
