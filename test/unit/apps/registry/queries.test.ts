// The registry app's queries (FPC's queryListEnclaveCredentials, queryEnclaveCredentials,
// queryListProvisionedEnclaves, queryChaincodeEncryptionKey, queryChaincodeEndPoints, and the
// policy) run in the JS app runtime over a real Store after real registrations: what each
// answers, how a Revoked status shows and excludes an enclave, the registering transaction id
// (view.seqno of the enclaves row), R in base64, and 404 ResourceNotFound for unknown names.
// Oracles: the rows the registrations wrote and the API contract (docs/registry.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { simulateEnclave } from "../../../helpers/registry-enclave.js";
import { MAPS, VIEW, policy, registryApp } from "./harness.js";

const app = await registryApp();
app.setRow(MAPS.chaincodes, "cc1", policy("cc1"));
app.setRow(MAPS.chaincodes, "empty", policy("empty"));

const a = simulateEnclave({ peerEndpoint: "peer0:7051" });
const b = simulateEnclave({ peerEndpoint: "peer0:7051", chaincodeEk: true });
const c = simulateEnclave({ peerEndpoint: "peer1:7051", chaincodeEk: true });
const seqnos = [a, b, c].map((e) => {
  const answer = app.call("register", { body: e.body });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.seqno!;
});
app.setRow(MAPS.enclaveStatus, `cc1/${b.enclaveId}`, {
  status: "Revoked",
  reason: "revoked by governance",
  revoked_by: "governance",
});

const get = (handler: string, params: Record<string, string>) => app.call(handler, { params });

test("list: every registration of the chaincode in registration order, with status", () => {
  const answer = get("listEnclaves", { chaincode_id: "cc1" });
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, {
    enclaves: [
      {
        enclave_id: a.enclaveId,
        status: "Active",
        transaction_id: `${VIEW}.${seqnos[0]}`,
        peer_endpoint: "peer0:7051",
      },
      {
        enclave_id: b.enclaveId,
        status: "Revoked",
        transaction_id: `${VIEW}.${seqnos[1]}`,
        peer_endpoint: "peer0:7051",
      },
      {
        enclave_id: c.enclaveId,
        status: "Active",
        transaction_id: `${VIEW}.${seqnos[2]}`,
        peer_endpoint: "peer1:7051",
      },
    ],
  });
  assert.deepEqual(get("listEnclaves", { chaincode_id: "empty" }).body, { enclaves: [] });
});

test("show: the stored credentials, status, reason and the registering transaction", () => {
  const answer = get("getEnclave", { chaincode_id: "cc1", enclave_id: b.enclaveId.toLowerCase() });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const body = answer.body as Record<string, unknown>;
  const stored = app.row(MAPS.enclaves, `cc1/${b.enclaveId}`)!;
  assert.equal(body.registration, Buffer.from(stored, "utf8").toString("base64"));
  assert.deepEqual(body.attested_data, JSON.parse(b.attestedText));
  const r = JSON.parse(stored) as { evidence: unknown; verified: unknown };
  assert.deepEqual(body, {
    chaincode_id: "cc1",
    enclave_id: b.enclaveId,
    status: "Revoked",
    reason: "revoked by governance",
    revoked_by: "governance",
    transaction_id: `${VIEW}.${seqnos[1]}`,
    registration: body.registration,
    attested_data: body.attested_data,
    evidence: r.evidence,
    verified: r.verified,
  });
});

test("provisioned, encryption-key and endpoints only look at Active enclaves", () => {
  assert.deepEqual(get("provisioned", { chaincode_id: "cc1" }).body, {
    enclave_ids: [a.enclaveId, c.enclaveId],
  });
  const ek = (JSON.parse(c.attestedText) as { chaincode_ek: string }).chaincode_ek;
  assert.deepEqual(get("encryptionKey", { chaincode_id: "cc1" }).body, { chaincode_ek: ek });
  assert.deepEqual(get("endpoints", { chaincode_id: "cc1" }).body, {
    endpoints: ["peer0:7051", "peer1:7051"],
  });
  const none = get("encryptionKey", { chaincode_id: "empty" });
  assert.equal(none.status, 404);
  assert.equal(app.error(none).code, "ResourceNotFound");
});

test("the policy, and 404 ResourceNotFound for unknown chaincodes and enclaves", () => {
  assert.deepEqual(get("getChaincode", { chaincode_id: "cc1" }).body, policy("cc1"));
  for (const handler of [
    "getChaincode",
    "listEnclaves",
    "provisioned",
    "encryptionKey",
    "endpoints",
  ]) {
    const answer = get(handler, { chaincode_id: "nope" });
    assert.equal(answer.status, 404, handler);
    assert.equal(app.error(answer).code, "ResourceNotFound", handler);
  }
  const missing = get("getEnclave", { chaincode_id: "cc1", enclave_id: "AB".repeat(32) });
  assert.equal(missing.status, 404);
  assert.equal(app.error(missing).code, "ResourceNotFound");
  const wrongChaincode = get("getEnclave", { chaincode_id: "empty", enclave_id: a.enclaveId });
  assert.equal(wrongChaincode.status, 404);
});
