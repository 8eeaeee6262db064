// `consortia registry` without a node: simulate-enclave's files and the offline checks of
// `registry verify` (src/cli/registry-verify.ts). Oracles independent of the code under test:
// openssl derives the SPKI DER whose SHA-256 is the enclave id, node:crypto's createHash gives
// SHA-256 of the attested data bytes, the enclave keys sign/verify and encrypt/decrypt as pairs,
// and receipts come from the PKI helper's naive Merkle tree (test/helpers/pki.ts), with the
// claims digest set to SHA-256 of a registration record built here the way the registry
// contract describes it (issue #13, registry-api: R's fields and claims_digest = SHA-256(R)).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  constants,
  createHash,
  createPrivateKey,
  privateDecrypt,
  publicEncrypt,
  sign,
  verify,
} from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { signDigest } from "../../../src/crypto/ecdsa.js";
import { buildReceipt } from "../../../src/ledger/receipt.js";
import {
  EnclaveEvidenceError,
  simulateEnclave,
  verifyEvidence,
  virtualEvidence,
  type SimulatedEnclave,
} from "../../../src/cli/registry-enclave.js";
import {
  RegistrationCheckError,
  verifyRegistration,
  type VerifyRegistrationInput,
} from "../../../src/cli/registry-verify.js";
import { runCli } from "../../helpers/cli.js";
import {
  leafHash,
  makePki,
  merkleLevels,
  merklePath,
  openssl,
  tempDir,
  testLeaf,
  type TestPki,
} from "../../helpers/pki.js";

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest();
const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64");

test("simulate-enclave writes attested data, virtual evidence binding it, and its keys", () => {
  const { dir, cleanup } = tempDir("registry-sim-");
  try {
    const out = join(dir, "enclave");
    const run = runCli([
      ...["registry", "simulate-enclave", "--chaincode-id", "cc1", "--version", "mrenclave-1"],
      ...["--sequence", "3", "--channel-id", "mychannel", "--peer-endpoint", "peer0:7051"],
      ...["--msp-id", "Org1MSP", "--out", out],
    ]);
    assert.equal(run.status, 0, run.stderr);
    const enclaveId = /^enclave_id ([0-9A-F]{64})$/m.exec(run.stdout)?.[1];
    assert.ok(enclaveId !== undefined, run.stdout);

    const attested = readFileSync(join(out, "attested_data.json"));
    const data = JSON.parse(attested.toString("utf8")) as Record<string, unknown>;
    assert.deepEqual(
      { ...data, enclave_vk: "", chaincode_ek: "" },
      {
        chaincode_id: "cc1",
        version: "mrenclave-1",
        sequence: 3,
        channel_id: "mychannel",
        host_params: { peer_endpoint: "peer0:7051", peer_msp_id: "Org1MSP" },
        enclave_vk: "",
        chaincode_ek: "",
      },
    );
    // The enclave id is upper hex SHA-256 of the SPKI DER, as openssl derives it.
    writeFileSync(join(dir, "vk.pem"), String(data.enclave_vk));
    const der = openssl([
      "pkey",
      "-pubin",
      "-in",
      join(dir, "vk.pem"),
      "-outform",
      "DER",
      "-out",
      join(dir, "vk.der"),
    ]);
    assert.equal(der.status, 0, der.out);
    assert.equal(
      sha256(readFileSync(join(dir, "vk.der")))
        .toString("hex")
        .toUpperCase(),
      enclaveId,
    );

    const evidence = JSON.parse(readFileSync(join(out, "evidence.json"), "utf8")) as {
      format: string;
      quote: string;
      endorsements: string;
    };
    assert.equal(evidence.format, "Insecure_Virtual");
    assert.equal(evidence.endorsements, "");
    const quote = JSON.parse(Buffer.from(evidence.quote, "base64").toString("utf8")) as Record<
      string,
      string
    >;
    assert.deepEqual(Object.keys(quote), ["measurement", "host_data", "report_data"]);
    assert.equal(quote.measurement, "mrenclave-1");
    assert.match(quote.host_data!, /^[0-9a-f]{64}$/);
    assert.equal(quote.report_data, sha256(attested).toString("base64"));

    // The private keys are private, and pair with the published ones.
    for (const name of ["enclave_sk.pem", "chaincode_dk.pem"]) {
      assert.equal(statSync(join(out, name)).mode & 0o777, 0o600, name);
    }
    const sk = createPrivateKey(readFileSync(join(out, "enclave_sk.pem")));
    const signature = sign("sha256", Buffer.from("tx"), sk);
    assert.ok(verify("sha256", Buffer.from("tx"), String(data.enclave_vk), signature));
    const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" };
    const sealed = publicEncrypt({ key: String(data.chaincode_ek), ...oaep }, Buffer.from("k"));
    const dk = readFileSync(join(out, "chaincode_dk.pem"));
    assert.equal(privateDecrypt({ key: dk, ...oaep }, sealed).toString(), "k");
  } finally {
    cleanup();
  }
});

test("simulate-enclave refuses bad options with one line and exit 1", () => {
  const { dir, cleanup } = tempDir("registry-sim-bad-");
  try {
    const base = ["registry", "simulate-enclave", "--chaincode-id", "c", "--version", "v"];
    const badSeq = runCli([...base, "--sequence", "-1", "--out", dir]);
    assert.equal(badSeq.status, 1);
    assert.match(badSeq.stderr, /^consortia: --sequence must be a non-negative integer\n$/);
    const badHost = runCli([...base, "--host-data", "xyz", "--out", dir]);
    assert.equal(badHost.status, 1);
    assert.match(badHost.stderr, /--host-data must be hex/);
  } finally {
    cleanup();
  }
});

test("register refuses attested data of another chaincode before contacting a node", () => {
  const { dir, cleanup } = tempDir("registry-reg-");
  try {
    const enclave = simulated("cc-a");
    writeFileSync(join(dir, "a.json"), enclave.attestedData);
    writeFileSync(join(dir, "e.json"), JSON.stringify(enclave.evidence));
    const run = runCli([
      ...["registry", "register", "--chaincode-id", "cc-b", "--attested-data", join(dir, "a.json")],
      ...["--evidence", join(dir, "e.json"), "--workspace", dir],
    ]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^consortia: the attested data is for chaincode "cc-a", not cc-b\n$/);
    const missing = runCli([
      ...["registry", "register", "--chaincode-id", "cc-a", "--attested-data", join(dir, "no")],
      ...["--evidence", join(dir, "e.json")],
    ]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /cannot read --attested-data .*no: ENOENT/);
  } finally {
    cleanup();
  }
});

function simulated(chaincodeId: string): SimulatedEnclave {
  return simulateEnclave({
    chaincodeId,
    version: "m1",
    sequence: 1,
    peerEndpoint: "peer0:7051",
  });
}

/** A registration record R as the registry writes it (registry-api: R's fields). */
function recordOf(enclave: SimulatedEnclave, attestedData = enclave.attestedData): string {
  const quote = JSON.parse(Buffer.from(enclave.evidence.quote, "base64").toString()) as Record<
    string,
    string
  >;
  return JSON.stringify({
    chaincode_id: "cc1",
    enclave_id: enclave.enclaveId,
    attested_data: b64(attestedData),
    evidence: enclave.evidence,
    verified: {
      format: "Insecure_Virtual",
      measurement: quote.measurement,
      host_data: quote.host_data,
      report_data: Buffer.from(quote.report_data!, "base64").toString("hex"),
    },
    registered_by: "ab".repeat(32),
  });
}

/** A JSON receipt for tx 2.<seqno> (leaf 1 of 3) whose claims digest is SHA-256(record). */
function receiptFor(pki: TestPki, record: string, seqno = 7) {
  const nonce = sha256(`nonce ${seqno}`).toString("hex");
  const leaf = {
    writeSetDigest: sha256(`write set ${seqno}`),
    commitEvidence: `ce:2.${seqno}:${nonce}`,
    claimsDigest: sha256(record),
  };
  const leaves = [testLeaf(seqno - 1), leaf, testLeaf(seqno + 1)];
  const levels = merkleLevels(leaves.map(leafHash));
  const root = levels[levels.length - 1]![0]!;
  return buildReceipt({
    certPem: pki.nodeCertPem,
    nodeId: pki.nodeId,
    signature: signDigest(pki.nodeKeys.privateKey, root),
    proof: merklePath(levels, 1),
    leafComponents: leaf,
  });
}

function inputFor(pki: TestPki, enclave: SimulatedEnclave, record = recordOf(enclave)) {
  return {
    chaincodeId: "cc1",
    enclaveId: enclave.enclaveId,
    credentials: {
      chaincode_id: "cc1",
      enclave_id: enclave.enclaveId,
      status: "Active",
      transaction_id: "2.7",
      registration: b64(record),
    },
    receipt: receiptFor(pki, record) as unknown,
    serviceCertPem: pki.serviceCertPem,
    now: new Date(),
  } satisfies VerifyRegistrationInput;
}

function assertRefused(input: VerifyRegistrationInput, code: string, message: RegExp): void {
  assert.throws(
    () => verifyRegistration(input),
    (err: unknown) => {
      assert.ok(err instanceof RegistrationCheckError || err instanceof EnclaveEvidenceError);
      assert.equal(err.code, code);
      assert.match(err.message, message);
      return true;
    },
  );
}

test("verify trusts the keys of a registration its receipt proves", async () => {
  const pki = await makePki();
  const enclave = simulated("cc1");
  const trusted = verifyRegistration({ ...inputFor(pki, enclave), expectedMeasurement: "m1" });
  const data = JSON.parse(Buffer.from(enclave.attestedData).toString()) as Record<string, string>;
  assert.equal(trusted.enclaveId, enclave.enclaveId);
  assert.equal(trusted.transactionId, "2.7");
  assert.equal(trusted.attestedData.enclave_vk, data.enclave_vk);
  assert.equal(trusted.attestedData.chaincode_ek, data.chaincode_ek);
  assert.equal(trusted.evidence.measurement, "m1");
  assert.equal(trusted.attestedData.host_params.peer_endpoint, "peer0:7051");
  assert.equal(trusted.claimsDigest, sha256(recordOf(enclave)).toString("hex"));
  // A lower-case enclave id names the same enclave.
  const lower = inputFor(pki, enclave);
  assert.equal(
    verifyRegistration({ ...lower, enclaveId: enclave.enclaveId.toLowerCase() }).enclaveId,
    enclave.enclaveId,
  );
});

test("verify refuses a tampered record R: the receipt's claims digest no longer matches", async () => {
  const pki = await makePki();
  const enclave = simulated("cc1");
  const input = inputFor(pki, enclave);
  const record = recordOf(enclave);
  // R with another registering user, all else the same.
  const forged = record.replace(/"registered_by":"(ab)+"/, `"registered_by":"${"cd".repeat(32)}"`);
  assert.notEqual(forged, record);
  const credentials = { ...input.credentials, registration: b64(forged) };
  assertRefused({ ...input, credentials }, "ClaimsDigestMismatch", /not SHA-256 of the regist/);
  // R whose attested data was changed: also caught by the claims digest.
  const other = simulated("cc1");
  const swapped = recordOf(enclave, other.attestedData);
  const credentials2 = { ...input.credentials, registration: b64(swapped) };
  assertRefused({ ...input, credentials: credentials2 }, "ClaimsDigestMismatch", /claims digest/);
});

test("verify refuses a tampered or foreign receipt", async () => {
  const pki = await makePki();
  const other = await makePki();
  const enclave = simulated("cc1");
  const input = inputFor(pki, enclave);
  const receipt = input.receipt as ReturnType<typeof receiptFor>;
  const tampered = {
    ...receipt,
    leaf_components: { ...receipt.leaf_components!, write_set_digest: "00".repeat(32) },
  };
  assertRefused({ ...input, receipt: tampered }, "InvalidReceipt", /does not verify: signature/);
  assertRefused(
    { ...input, serviceCertPem: other.serviceCertPem },
    "InvalidReceipt",
    /not issued by the service/,
  );
  const elsewhere = receiptFor(pki, recordOf(enclave), 9);
  assertRefused(
    { ...input, receipt: elsewhere },
    "InvalidReceipt",
    /of transaction 2\.9, not 2\.7/,
  );
  assertRefused({ ...input, receipt: { cert: "x" } }, "InvalidReceipt", /malformed/);
});

test("verify refuses a proven record whose evidence does not bind, or that is not Active", async () => {
  const pki = await makePki();
  const enclave = simulated("cc1");
  // A registry that recorded evidence of other attested data: R and its receipt agree.
  const other = simulated("cc1");
  const unbound = { ...enclave, evidence: other.evidence };
  assertRefused(inputFor(pki, unbound), "ReportDataMismatch", /report_data .* is not the SHA-256/);
  const evidence = virtualEvidence(enclave.attestedData, { measurement: "m2", hostData: "00" });
  // Evidence (and R's "verified") of measurement m2, when the client expects m1.
  const m2 = { ...enclave, evidence };
  assertRefused(
    { ...inputFor(pki, m2), expectedMeasurement: "m1" },
    "MeasurementMismatch",
    /reports measurement "m2", not "m1"/,
  );
  const base = inputFor(pki, enclave);
  const revoked = { ...base.credentials, status: "Revoked", reason: "chaincode removed" };
  assertRefused({ ...base, credentials: revoked }, "NotActive", /Revoked \(chaincode removed\)/);
  assertRefused({ ...base, enclaveId: other.enclaveId }, "WrongRegistration", /of enclave/);
  assertRefused({ ...base, chaincodeId: "cc2" }, "WrongRegistration", /of chaincode "cc1"/);
});

const NOW = new Date("2026-06-01T00:00:00Z");

test("local evidence checks: malformed quotes and unknown formats", () => {
  const enclave = simulated("cc1");
  const check = (evidence: { format: string; quote: string; endorsements: string }) =>
    assert.throws(() => verifyEvidence(evidence, enclave.attestedData, NOW), EnclaveEvidenceError);
  check({ ...enclave.evidence, quote: "not base64!" });
  check({ ...enclave.evidence, quote: b64("[1,2]") });
  check({ ...enclave.evidence, quote: b64('{"measurement":"m","host_data":"00"}') });
  assert.throws(
    () => verifyEvidence({ ...enclave.evidence, format: "OE_SGX_v1" }, enclave.attestedData, NOW),
    /unknown evidence format "OE_SGX_v1"/,
  );
  assert.equal(verifyEvidence(enclave.evidence, enclave.attestedData, NOW).measurement, "m1");
});

test("local evidence checks: AMD_SEV_SNP_v1 goes through the SEV-SNP verifier", () => {
  // CCF's Milan vector (test/fixtures/snp): genuine, with report_data all zeros, so it verifies
  // but binds no attested data; one changed byte in the signed part fails the signature.
  const fixtures = join(import.meta.dirname, "..", "..", "fixtures", "snp");
  const report = readFileSync(join(fixtures, "milan-report.bin"));
  const chain = readFileSync(join(fixtures, "milan-endorsements.pem"));
  const evidence = { format: "AMD_SEV_SNP_v1", quote: b64(report), endorsements: b64(chain) };
  const attested = Buffer.from('{"chaincode_id":"cc1"}');
  const refusedWith = (e: typeof evidence, code: string, message: RegExp) =>
    assert.throws(
      () => verifyEvidence(e, attested, NOW),
      (err: unknown) =>
        err instanceof EnclaveEvidenceError && err.code === code && message.test(err.message),
    );
  refusedWith(evidence, "ReportDataMismatch", /report_data 0{64} is not the SHA-256/);
  const flipped = Buffer.from(report);
  flipped[0x50] = flipped[0x50]! ^ 1; // a byte of report_data, inside the signed part
  refusedWith(
    { ...evidence, quote: b64(flipped) },
    "EvidenceRejected",
    /SEV-SNP evidence rejected/,
  );
  const genoa = readFileSync(join(fixtures, "genoa-endorsements.pem"));
  refusedWith({ ...evidence, endorsements: b64(genoa) }, "EvidenceRejected", /rejected/);
  refusedWith({ ...evidence, endorsements: "%%" }, "MalformedEvidence", /not base64/);
});

test("verify and list report an unreachable node in one line and exit 1", async () => {
  const pki = await makePki();
  const { dir, cleanup } = tempDir("registry-down-");
  try {
    const cert = join(dir, "service_cert.pem");
    writeFileSync(cert, pki.serviceCertPem);
    // A user identity for TLS: any key and certificate will do, the node is not there.
    writeFileSync(join(dir, "user_cert.pem"), pki.nodeCertPem);
    writeFileSync(
      join(dir, "user_privk.pem"),
      pki.nodeKeys.privateKey.export({ type: "pkcs8", format: "pem" }),
    );
    const identity = ["--cert", join(dir, "user_cert.pem"), "--key", join(dir, "user_privk.pem")];
    const node = ["--node", "https://127.0.0.1:1", ...identity];
    const verify = runCli([
      ...["registry", "verify", "--chaincode-id", "cc1", "--enclave-id", "AB"],
      ...["--service-cert", cert, ...node],
    ]);
    assert.equal(verify.status, 1);
    assert.match(verify.stderr, /^consortia: GET \/app\/registry\/chaincodes\/cc1\/enclaves\/AB /);
    assert.doesNotMatch(verify.stderr, /\n\s+at /);
    const list = runCli(["registry", "list", "--chaincode-id", "cc1", "--cacert", cert, ...node]);
    assert.equal(list.status, 1);
    assert.match(list.stderr, /^consortia: GET .*ECONNREFUSED/);
  } finally {
    cleanup();
  }
});
