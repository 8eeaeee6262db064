// The genesis governance writes (src/gov/genesis.ts) and the table encoding they rely on
// (src/gov/tables.ts): member records (Accepted, ack digest "", role defaults), the constitution
// singleton, service info and configuration (threshold 0 = number of recovery members), the
// Trusted start node and the virtual join policy. The tests read the raw bytes back so a change
// of key or value encoding (which would make our ledgers unreadable to CCF tools) fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { utf8 } from "../../../src/base/bytes.js";
import {
  generateEncryptionKey,
  generateIdentity,
  memberIdFromCert,
} from "../../../src/crypto/identity.js";
import { SINGLETON_KEY } from "../../../src/kv/encoding.js";
import { Store } from "../../../src/kv/store.js";
import { type GenesisInput, writeGenesis } from "../../../src/gov/genesis.js";
import { getById, getSingleton, GOV_MAPS, type NodeInfo } from "../../../src/gov/tables.js";
import { GovError, GovErrorCode } from "../../../src/gov/errors.js";
import { SERVICE_TABLES } from "../../../src/kv/service-tables.js";

const NOW = new Date("2024-01-01T00:00:00Z");
const [alice, bob] = await Promise.all([
  generateIdentity({ name: "alice", now: NOW }),
  generateIdentity({ name: "bob", now: NOW }),
]);
const aliceKey = generateEncryptionKey();
const NODE_ID = "b".repeat(64);
const HOST_DATA = "c".repeat(64);

const NODE_INFO: NodeInfo = {
  node_to_node_interface: { bind_address: "127.0.0.1:8081", published_address: "n:8081" },
  rpc_interfaces: { primary: { bind_address: "127.0.0.1:8080", published_address: "n:8080" } },
  quote_info: { format: "Insecure_Virtual", quote: "e30=", endorsements: "" },
  encryption_pub_key: "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
  status: "Pending",
  node_data: { rack: 1 },
};

function input(overrides: Partial<GenesisInput> = {}): GenesisInput {
  return {
    members: [
      { certPem: alice.certPem, encryptionPublicKeyPem: aliceKey.publicKeyPem },
      { certPem: bob.certPem, memberData: { team: "ops" } },
    ],
    constitution: 'export function resolve() { return "Open"; }',
    serviceCertPem: "SERVICE CERT PEM",
    serviceData: { region: "eu" },
    configuration: {
      recovery_threshold: 0,
      maximum_node_certificate_validity_days: 30,
      maximum_service_certificate_validity_days: 60,
      reconfiguration_type: "OneTransaction",
      recent_cose_proposals_window_size: 100,
    },
    node: { nodeId: NODE_ID, info: NODE_INFO, endorsedCertificatePem: "NODE CERT PEM" },
    createTxId: "2.1",
    virtualMeasurement: "measurement-1",
    virtualHostData: HOST_DATA,
    ...overrides,
  };
}

function decode(bytes: Uint8Array | undefined): unknown {
  assert.ok(bytes !== undefined, "missing value");
  return JSON.parse(new TextDecoder().decode(bytes));
}

test("genesis members are Accepted, keyed by cert fingerprint, with an empty ack digest", () => {
  const store = new Store();
  const tx = store.begin();
  const { memberIds } = writeGenesis(tx, input());
  const aliceId: string = memberIdFromCert(alice.certPem);
  const bobId: string = memberIdFromCert(bob.certPem);
  assert.deepEqual(memberIds, [aliceId, bobId]);
  // Raw encoding: the key is the id's UTF-8 bytes, the value JSON.
  assert.deepEqual(decode(tx.ro(SERVICE_TABLES.memberInfo).get(utf8(aliceId))), {
    status: "Accepted",
    recovery_role: "Participant",
  });
  assert.deepEqual(getById(tx, GOV_MAPS.memberInfo, bobId), {
    status: "Accepted",
    recovery_role: "NonParticipant",
    member_data: { team: "ops" },
  });
  assert.deepEqual(decode(tx.ro(SERVICE_TABLES.memberAcks).get(utf8(bobId))), { state_digest: "" });
  const certBytes = tx.ro(SERVICE_TABLES.memberCerts).get(utf8(aliceId));
  assert.equal(new TextDecoder().decode(certBytes), alice.certPem, "certs are raw PEM");
  assert.equal(getById(tx, GOV_MAPS.memberEncryptionKeys, aliceId), aliceKey.publicKeyPem);
  assert.equal(getById(tx, GOV_MAPS.memberEncryptionKeys, bobId), undefined);
  assert.equal(store.commit(tx).kind, "committed");
});

test("the constitution, service info and configuration are singletons under 8 zero bytes", () => {
  const tx = new Store().begin();
  const source = input().constitution;
  writeGenesis(tx, input());
  const raw = tx.ro(SERVICE_TABLES.constitution).get(new Uint8Array(8));
  assert.equal(new TextDecoder().decode(raw), JSON.stringify(source), "a JSON string");
  assert.deepEqual(SINGLETON_KEY, new Uint8Array(8));
  assert.deepEqual(getSingleton(tx, GOV_MAPS.serviceInfo), {
    cert: "SERVICE CERT PEM",
    status: "Opening",
    recovery_count: 0,
    service_data: { region: "eu" },
    current_service_create_txid: "2.1",
  });
  assert.deepEqual(getSingleton(tx, GOV_MAPS.serviceConfig), {
    recovery_threshold: 1, // 0 asked for "the number of recovery members": alice only
    consensus: "CFT",
    maximum_node_certificate_validity_days: 30,
    maximum_service_certificate_validity_days: 60,
    reconfiguration_type: "OneTransaction",
    recent_cose_proposals_window_size: 100,
  });
});

test("the start node is Trusted and its virtual measurement and host data may join", () => {
  const tx = new Store().begin();
  writeGenesis(tx, input());
  assert.deepEqual(getById(tx, GOV_MAPS.nodeInfo, NODE_ID), { ...NODE_INFO, status: "Trusted" });
  assert.equal(getById(tx, GOV_MAPS.nodeEndorsedCerts, NODE_ID), "NODE CERT PEM");
  assert.equal(getById(tx, GOV_MAPS.virtualMeasurements, "measurement-1"), "AllowedToJoin");
  assert.equal(getById(tx, GOV_MAPS.virtualHostData, HOST_DATA), "");
});

test("an explicit recovery threshold is kept when the recovery members can reach it", () => {
  const tx = new Store().begin();
  const configuration = { ...input().configuration, recovery_threshold: 1 };
  const { recoveryThreshold } = writeGenesis(tx, input({ configuration }));
  assert.equal(recoveryThreshold, 1);
  assert.equal(getSingleton(tx, GOV_MAPS.serviceConfig)?.recovery_threshold, 1);
});

test("genesis refuses inputs no service could work from", () => {
  const cases: Array<[string, Partial<GenesisInput>]> = [
    ["no members", { members: [] }],
    ["recovery role without key", { members: [{ certPem: bob.certPem, recoveryRole: "Owner" }] }],
    [
      "unreachable threshold",
      { configuration: { ...input().configuration, recovery_threshold: 2 } },
    ],
  ];
  for (const [what, overrides] of cases) {
    assert.throws(
      () => writeGenesis(new Store().begin(), input(overrides)),
      (e: unknown) => e instanceof GovError && e.code === GovErrorCode.InvalidInput,
      what,
    );
  }
});
