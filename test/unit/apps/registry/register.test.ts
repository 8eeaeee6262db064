// registerEnclave of the registry app (apps/registry) run in the JS app runtime over a real
// Store: Fabric Private Chaincode's negative cases for registration (registry_test.go: empty or
// garbled credentials, empty evidence, invalid attested data, wrong channel, unknown chaincode,
// measurement and sequence mismatch, evidence that fails, empty host params, caller mismatch)
// and the registry's own (report_data binding, platform, host_data, registrars, members, limits),
// each with its HTTP status and code and nothing written; then success: the enclave id, R as
// stored and the claims digest. Oracles: node:crypto (SHA-256 of the SPKI DER and of R's bytes)
// and the API contract (docs/registry.md).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { simulateEnclave, virtualQuote, sha256 } from "../../../helpers/registry-enclave.js";
import { MAPS, USER, policy, registryApp, type Answer } from "./harness.js";

const app = await registryApp();
app.setRow(MAPS.chaincodes, "cc1", policy("cc1", { channel_id: "ch1" }));
app.setRow(MAPS.chaincodes, "snp-only", policy("snp-only", { platforms: ["AMD_SEV_SNP_v1"] }));
app.setRow(
  MAPS.chaincodes,
  "strict",
  policy("strict", { host_data: ["cd".repeat(32)], registrars: ["b2".repeat(32)] }),
);
app.setRow(MAPS.chaincodes, "one", policy("one", { max_enclaves: 1 }));

const register = (body: string, caller = USER): Answer => app.call("register", { body, caller });

function refused(answer: Answer, status: number, code: string, message?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  const error = app.error(answer);
  assert.equal(error.code, code, error.message);
  if (message !== undefined) assert.match(error.message, message);
  assert.equal(answer.seqno, null, "a refusal writes nothing");
}

const cc1 = { chaincodeId: "cc1", channelId: "ch1" };

function withBody(change: (body: Record<string, unknown>) => void): string {
  const body = JSON.parse(simulateEnclave(cc1).body) as Record<string, unknown>;
  change(body);
  return JSON.stringify(body);
}

function withAttested(text: string): string {
  return withBody((b) => {
    b.attested_data = Buffer.from(text).toString("base64");
    b.evidence = {
      format: "Insecure_Virtual",
      quote: virtualQuote("v1-measurement", "ab".repeat(32), sha256(text)),
      endorsements: "",
    };
  });
}

test("empty or garbled credentials are 400 InvalidInput", () => {
  refused(register(""), 400, "InvalidInput", /empty/);
  refused(register("{not json"), 400, "InvalidInput", /not valid JSON/);
  refused(register("[]"), 400, "InvalidInput", /JSON object/);
  refused(register("{}"), 400, "InvalidInput", /attested_data/);
  refused(register(withBody((b) => (b.attested_data = "@@@@"))), 400, "InvalidInput", /base64/);
  refused(register(withBody((b) => (b.attested_data = "QQ="))), 400, "InvalidInput", /base64/);
  const garbledKey = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
  const enclave = simulateEnclave({ ...cc1, attested: { enclave_vk: garbledKey } });
  refused(register(enclave.body), 400, "InvalidInput", /enclave_vk is not a valid public key/);
});

test("empty evidence and an unknown format are 400 InvalidInput", () => {
  refused(register(withBody((b) => delete b.evidence)), 400, "InvalidInput", /evidence is empty/);
  refused(register(withBody((b) => (b.evidence = {}))), 400, "InvalidInput", /evidence is empty/);
  const noQuote = withBody((b) => ((b.evidence as Record<string, unknown>).quote = ""));
  refused(register(noQuote), 400, "InvalidInput", /evidence.quote is empty/);
  const sgx = simulateEnclave({ ...cc1, format: "OE_SGX_v1" });
  refused(register(sgx.body), 400, "InvalidInput", /unknown evidence format/);
});

test("invalid attested data and empty host params are 400 InvalidInput", () => {
  refused(register(withAttested("[1]")), 400, "InvalidInput", /JSON object/);
  refused(register(withAttested("{oops")), 400, "InvalidInput", /not valid JSON/);
  const noVersion = simulateEnclave({ ...cc1, attested: { version: undefined } });
  refused(register(noVersion.body), 400, "InvalidInput", /version/);
  const badSequence = simulateEnclave({ ...cc1, attested: { sequence: "1" } });
  refused(register(badSequence.body), 400, "InvalidInput", /sequence/);
  const noHost = simulateEnclave({ ...cc1, attested: { host_params: {} } });
  refused(register(noHost.body), 400, "InvalidInput", /host_params are empty/);
  const noEndpoint = simulateEnclave({ ...cc1, attested: { host_params: { peer_endpoint: "" } } });
  refused(register(noEndpoint.body), 400, "InvalidInput", /peer_endpoint/);
});

test("report_data not bound to the attested data is 401 ReportDataMismatch", () => {
  const other = simulateEnclave({ ...cc1, reportData: sha256("something else") });
  refused(register(other.body), 401, "ReportDataMismatch");
  const short = simulateEnclave({ ...cc1, reportData: Buffer.alloc(16) });
  refused(register(short.body), 401, "ReportDataMismatch");
});

test("evidence that fails is 401 InvalidQuote with the verifier's reason", () => {
  const notJson = withBody((b) => {
    (b.evidence as Record<string, unknown>).quote = Buffer.from("junk").toString("base64");
  });
  refused(register(notJson), 401, "InvalidQuote", /not a JSON object/);
  // SNP goes through snp_attestation.verifySnpAttestation; here it refuses every report.
  const snp = simulateEnclave({ chaincodeId: "snp-only", format: "AMD_SEV_SNP_v1" });
  refused(register(snp.body), 401, "InvalidQuote", /SNP evidence does not verify: .*not supported/);
});

test("an unknown chaincode is 404 ResourceNotFound", () => {
  refused(register(simulateEnclave({ chaincodeId: "nope" }).body), 404, "ResourceNotFound");
});

test("measurement, sequence, channel, platform and host_data are checked against the policy", () => {
  const measured = simulateEnclave({ ...cc1, measurement: "evil" });
  refused(register(measured.body), 403, "MeasurementMismatch", /measurement evil/);
  const attestedVersion = simulateEnclave({ ...cc1, version: "v2", measurement: "v1-measurement" });
  refused(register(attestedVersion.body), 403, "MeasurementMismatch", /attested version v2/);
  refused(register(simulateEnclave({ ...cc1, sequence: 2 }).body), 403, "SequenceMismatch");
  refused(
    register(simulateEnclave({ chaincodeId: "cc1", channelId: "ch2" }).body),
    403,
    "ChannelMismatch",
  );
  refused(register(simulateEnclave({ chaincodeId: "cc1" }).body), 403, "ChannelMismatch");
  const virtual = simulateEnclave({ chaincodeId: "snp-only" });
  refused(register(virtual.body), 403, "PlatformNotAllowed");
  const host = simulateEnclave({ chaincodeId: "strict", hostData: "ef".repeat(32) });
  refused(register(host.body), 403, "HostDataNotAllowed");
});

test("members, registrars and the caller's MSP: 403", () => {
  const member = { policy: "member_cert", id: "c3".repeat(32), data: null };
  refused(register(simulateEnclave(cc1).body, member), 403, "AuthorizationFailed", /not a user/);
  refused(register(simulateEnclave(cc1).body, { policy: "no_auth" }), 403, "AuthorizationFailed");
  const strict = simulateEnclave({ chaincodeId: "strict", hostData: "CD".repeat(32) });
  refused(register(strict.body), 403, "CallerNotRegistrar");
  const registrar = { policy: "user_cert", id: "b2".repeat(32), data: null };
  assert.equal(register(strict.body, registrar).status, 200);
  const other = simulateEnclave({ ...cc1, peerMspId: "Org2MSP" });
  refused(register(other.body), 403, "CallerMismatch");
  const org1 = { ...USER, data: { msp_id: "Org1MSP" } };
  assert.equal(register(simulateEnclave({ ...cc1, peerMspId: "Org1MSP" }).body, org1).status, 200);
  assert.equal(register(simulateEnclave({ ...cc1, peerMspId: USER.id! }).body).status, 200);
});

test("the same enclave twice is 409, and so is one more than max_enclaves", () => {
  const first = simulateEnclave({ chaincodeId: "one" });
  assert.equal(register(first.body).status, 200);
  refused(register(first.body), 409, "EnclaveAlreadyRegistered");
  refused(register(simulateEnclave({ chaincodeId: "one" }).body), 409, "TooManyEnclaves");
  // A revoked enclave no longer counts.
  app.setRow(MAPS.enclaveStatus, `one/${first.enclaveId}`, { status: "Revoked", reason: "x" });
  assert.equal(register(simulateEnclave({ chaincodeId: "one" }).body).status, 200);
});

test("success: the enclave id, R stored once and the claims digest SHA-256(R)", () => {
  const enclave = simulateEnclave({ ...cc1, chaincodeEk: true });
  const answer = register(enclave.body);
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body, { enclave_id: enclave.enclaveId });
  assert.match(enclave.enclaveId, /^[0-9A-F]{64}$/);
  const stored = app.row(MAPS.enclaves, `cc1/${enclave.enclaveId}`)!;
  const r = JSON.parse(stored) as Record<string, unknown>;
  assert.deepEqual(Object.keys(r), [
    "chaincode_id",
    "enclave_id",
    "attested_data",
    "evidence",
    "verified",
    "registered_by",
  ]);
  const sent = JSON.parse(enclave.body) as { attested_data: string; evidence: unknown };
  assert.equal(r.attested_data, sent.attested_data);
  assert.deepEqual(r.evidence, sent.evidence);
  assert.equal(r.registered_by, USER.id);
  assert.deepEqual(r.verified, {
    format: "Insecure_Virtual",
    measurement: "v1-measurement",
    host_data: "ab".repeat(32),
    report_data: sha256(enclave.attestedText).toString("hex"),
  });
  const digest = createHash("sha256").update(Buffer.from(stored, "utf8")).digest();
  assert.deepEqual(Buffer.from(answer.claimsDigest!), digest);
  assert.equal(app.row(MAPS.enclaveStatus, `cc1/${enclave.enclaveId}`), undefined, "Active");
});
