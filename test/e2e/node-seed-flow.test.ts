// A real node process walking CCF's getting-started flow over HTTPS: members ack to become
// Active, a proposal adds user0 and opens the service, user0 writes and reads private and
// public records, a new member is proposed by member0 and accepted by member0 and member2
// while member1 votes against, the new member acks to Active, a second user is added and
// writes, and a receipt for a committed write verifies offline, in JSON and (once signatures
// carry COSE signatures) COSE. Bad input gets CCF errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signSign1 } from "../../src/crypto/cose.js";
import {
  generateEncryptionKey,
  generateIdentity,
  memberIdFromCert,
} from "../../src/crypto/identity.js";
import { decodeCoseReceipt, verifyCoseReceipt } from "../../src/ledger/cose-receipt.js";
import { verifyReceipt, parseReceipt } from "../../src/ledger/receipt.js";

interface Identity {
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly id: string;
  readonly encPubPem?: string;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly bytes: Uint8Array;
  json(): any;
}

const root = mkdtempSync(join(tmpdir(), "consortia-e2e-"));
let nodeProcess: ChildProcess | null = null;
let baseUrl = "";
let serviceCertPem = "";
let createdAt = Math.floor(Date.now() / 1000);

async function makeIdentity(name: string, withEncryption: boolean): Promise<Identity> {
  const id = await generateIdentity({ name, now: new Date(Date.now() - 60_000) });
  writeFileSync(join(root, `${name}_cert.pem`), id.certPem);
  const identity: Identity = {
    name,
    certPem: id.certPem,
    keyPem: id.privateKeyPem,
    id: memberIdFromCert(id.certPem),
  };
  if (!withEncryption) return identity;
  const enc = generateEncryptionKey();
  writeFileSync(join(root, `${name}_enc_pubk.pem`), enc.publicKeyPem);
  return { ...identity, encPubPem: enc.publicKeyPem };
}

function call(
  method: string,
  path: string,
  options: {
    body?: Uint8Array | string;
    contentType?: string;
    as?: Identity;
    headers?: Record<string, string>;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${baseUrl}${path}`,
      {
        method,
        ca: serviceCertPem,
        ...(options.as !== undefined ? { cert: options.as.certPem, key: options.as.keyPem } : {}),
        headers: {
          ...options.headers,
          ...(options.contentType !== undefined ? { "content-type": options.contentType } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const bytes = new Uint8Array(Buffer.concat(chunks));
          const text = Buffer.from(bytes).toString("utf8");
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            bytes,
            json: () => JSON.parse(text),
          });
        });
      },
    );
    req.on("error", reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

function callWithTxId(path: string, txId: string, as: Identity): Promise<Reply> {
  return call("GET", path, { as, headers: { "x-ms-ccf-transaction-id": txId } });
}

function signedBy(
  member: Identity,
  msgType: string,
  payload: unknown,
  proposalId?: string,
): Uint8Array {
  const header = new Map<number | string, unknown>([
    [4, new TextEncoder().encode(member.id)],
    ["ccf.gov.msg.type", msgType],
    ["ccf.gov.msg.created_at", createdAt++],
  ]);
  if (proposalId !== undefined) header.set("ccf.gov.msg.proposal_id", proposalId);
  const bytes =
    payload === "" ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(payload));
  return signSign1(createPrivateKey(member.keyPem), header, bytes);
}

const GOV = "?api-version=2024-07-01";

function gov(
  member: Identity,
  path: string,
  msgType: string,
  payload: unknown,
  proposalId?: string,
) {
  return call("POST", `/gov${path}${GOV}`, {
    body: signedBy(member, msgType, payload, proposalId),
    contentType: "application/cose",
  });
}

async function activate(member: Identity): Promise<void> {
  const update = await gov(
    member,
    `/members/state-digests/${member.id}:update`,
    "state_digest",
    "",
  );
  assert.equal(update.status, 200, update.text);
  const { stateDigest } = update.json();
  const ack = await gov(member, `/members/state-digests/${member.id}:ack`, "ack", { stateDigest });
  assert.equal(ack.status, 204, ack.text);
}

async function propose(member: Identity, actions: unknown[]): Promise<string> {
  const reply = await gov(member, "/members/proposals:create", "proposal", { actions });
  assert.equal(reply.status, 200, reply.text);
  return reply.json().proposalId;
}

async function vote(member: Identity, proposalId: string, accept: boolean) {
  const ballot = `export function vote (proposal, proposerId) { return ${accept}; }`;
  const path = `/members/proposals/${proposalId}/ballots/${member.id}:submit`;
  const reply = await gov(member, path, "ballot", { ballot }, proposalId);
  assert.equal(reply.status, 200, reply.text);
  return reply.json();
}

const members: Identity[] = [];
let user0: Identity;

before(async () => {
  for (let i = 0; i < 3; i++) members.push(await makeIdentity(`member${i}`, true));
  user0 = await makeIdentity("user0", false);
  const constitution = ["actions", "validate", "resolve", "apply"].map((f) =>
    join(process.cwd(), "constitution", `${f}.js`),
  );
  const config = {
    enclave: { platform: "Virtual", type: "Release" },
    network: {
      node_to_node_interface: { bind_address: "127.0.0.1:0" },
      rpc_interfaces: { primary_rpc_interface: { bind_address: "127.0.0.1:0" } },
    },
    command: {
      type: "Start",
      service_certificate_file: join(root, "service_cert.pem"),
      start: {
        constitution_files: constitution,
        members: members.map((m) => ({
          certificate_file: join(root, `${m.name}_cert.pem`),
          encryption_public_key_file: join(root, `${m.name}_enc_pubk.pem`),
        })),
        service_configuration: { recovery_threshold: 1 },
      },
    },
    ledger: { directory: join(root, "ledger") },
    snapshots: { directory: join(root, "snapshots") },
    ledger_signatures: { tx_count: 100, delay: "50ms" },
    output_files: {
      node_certificate_file: join(root, "node.pem"),
      pid_file: join(root, "node.pid"),
    },
  };
  writeFileSync(join(root, "config.json"), JSON.stringify(config));
  const entry = join(process.cwd(), "src", "cli", "entry.ts");
  nodeProcess = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), entry, "node", "--config", join(root, "config.json")],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  baseUrl = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 30_000);
    nodeProcess!.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /primary_rpc_interface: (https:\/\/[\d.]+:\d+)/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    nodeProcess!.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    nodeProcess!.on("exit", (code) => reject(new Error(`node exited ${code}: ${out}`)));
  });
  serviceCertPem = readFileSync(join(root, "service_cert.pem"), "utf8");
});

after(() => {
  nodeProcess?.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

test("members ack, a proposal adds user0 and opens the service, user0 writes and reads", async () => {
  const early = await call("POST", "/app/log/private", {
    body: JSON.stringify({ id: 1, msg: "too early" }),
    contentType: "application/json",
    as: user0,
  });
  assert.equal(early.status, 404);
  assert.equal(early.json().error.code, "FrontendNotOpen");
  for (const m of members) await activate(m);
  const open = await propose(members[0]!, [
    { name: "set_user", args: { cert: user0.certPem } },
    { name: "transition_service_to_open", args: { next_service_identity: serviceCertPem } },
  ]);
  await vote(members[0]!, open, true);
  const accepted = await vote(members[1]!, open, true);
  assert.equal(accepted.proposalState, "Accepted");
  const network = await call("GET", "/node/network");
  assert.equal(network.json().service_status, "Open");

  const write = await call("POST", "/app/log/private", {
    body: JSON.stringify({ id: 42, msg: "hello private" }),
    contentType: "application/json",
    as: user0,
  });
  assert.equal(write.status, 200, write.text);
  assert.equal(write.text, "true");
  assert.match(String(write.headers["x-ms-ccf-transaction-id"]), /^2\.\d+$/);
  const read = await call("GET", "/app/log/private?id=42", { as: user0 });
  assert.deepEqual(read.json(), { msg: "hello private" });
  const pub = await call("POST", "/app/log/public", {
    body: JSON.stringify({ id: 7, msg: "hello public" }),
    contentType: "application/json",
    as: user0,
  });
  assert.equal(pub.status, 200, pub.text);
  const pubRead = await call("GET", "/app/log/public?id=7", { as: user0 });
  assert.deepEqual(pubRead.json(), { msg: "hello public" });
});

test("a new member accepted by member0 and member2 against member1 acks to Active", async () => {
  const member3 = await makeIdentity("member3", true);
  const proposalId = await propose(members[0]!, [
    { name: "set_member", args: { cert: member3.certPem, encryption_pub_key: member3.encPubPem } },
  ]);
  await vote(members[0]!, proposalId, true);
  const against = await vote(members[1]!, proposalId, false);
  assert.equal(against.proposalState, "Open");
  const final = await vote(members[2]!, proposalId, true);
  assert.equal(final.proposalState, "Accepted");
  assert.equal(final.finalVotes[members[1]!.id], false);
  const before = await call("GET", `/gov/service/members/${member3.id}${GOV}`);
  assert.equal(before.json().status, "Accepted");
  await activate(member3);
  const afterAck = await call("GET", `/gov/service/members/${member3.id}${GOV}`);
  assert.equal(afterAck.json().status, "Active");
  members.push(member3);
});

test("a second user added by proposal writes, and its receipt verifies offline", async () => {
  const user1 = await makeIdentity("user1", false);
  const proposalId = await propose(members[0]!, [
    { name: "set_user", args: { cert: user1.certPem } },
  ]);
  for (const m of members.slice(0, 3)) await vote(m, proposalId, true);
  const status = await call("GET", `/gov/members/proposals/${proposalId}${GOV}`);
  assert.equal(status.json().proposalState, "Accepted");
  const write = await call("POST", "/app/log/private", {
    body: JSON.stringify({ id: 100, msg: "from user1" }),
    contentType: "application/json",
    as: user1,
  });
  assert.equal(write.status, 200, write.text);
  const txId = String(write.headers["x-ms-ccf-transaction-id"]);
  const pending = await call("GET", "/app/log/private/historical?id=100", { as: user1 });
  assert.equal(pending.status, 400, "the txId header is required");
  assert.equal(pending.json().error.code, "MissingRequiredHeader");
  let receiptReply: Reply | null = null;
  for (let attempt = 0; attempt < 50; attempt++) {
    receiptReply = await call("GET", `/app/receipt?transaction_id=${txId}`);
    if (receiptReply.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(receiptReply!.status, 200, receiptReply!.text);
  const verdict = verifyReceipt(parseReceipt(receiptReply!.json()), serviceCertPem);
  assert.equal(verdict.kind, "valid", verdict.kind === "invalid" ? verdict.reason : "");
  const tx = await call("GET", `/app/tx?transaction_id=${txId}`);
  assert.equal(tx.json().status, "Committed");
  const historical = await callWithTxId("/app/log/private/historical_receipt?id=100", txId, user1);
  assert.equal(historical.status, 200, historical.text);
  assert.equal(historical.json().msg, "from user1");
  const again = verifyReceipt(parseReceipt(historical.json().receipt), serviceCertPem);
  assert.equal(again.kind, "valid");
  const untouched = await callWithTxId("/app/log/private/historical?id=42", txId, user1);
  assert.equal(untouched.status, 204, "that transaction did not write record 42");
});

/**
 * The COSE forms of a receipt (ccf-compatibility.md §3.2, §3.5, §6.5) for the same committed
 * write: the logging app's cose_receipt (public and private) and cose_signature, and
 * /app/receipt with Accept: application/cose. Every signature transaction carries the service's
 * COSE signature, so each answer is a receipt that verifies against the service certificate.
 */
test("COSE receipts of a committed write verify against the service certificate", async () => {
  const write = await call("POST", "/app/log/public", {
    body: JSON.stringify({ id: 7, msg: "cose" }),
    contentType: "application/json",
    as: user0,
  });
  assert.equal(write.status, 200, write.text);
  const txId = String(write.headers["x-ms-ccf-transaction-id"]);
  let json: Reply | null = null;
  for (let attempt = 0; attempt < 50; attempt++) {
    json = await call("GET", `/app/receipt?transaction_id=${txId}`);
    if (json.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(json!.status, 200, json!.text);
  const answers = [
    await callWithTxId("/app/log/public/cose_receipt?id=7", txId, user0),
    await callWithTxId("/app/log/private/cose_receipt", txId, user0),
    await call("GET", `/app/receipt?transaction_id=${txId}`, {
      headers: { accept: "application/cose" },
    }),
  ];
  const signature = await callWithTxId("/app/log/public/cose_signature", txId, user0);
  assert.equal(signature.status, 200, signature.text);
  assert.equal(typeof signature.json().cose_signature, "string");
  for (const answer of answers) {
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["content-type"], "application/cose");
    const receipt = decodeCoseReceipt(answer.bytes);
    const verdict = verifyCoseReceipt(receipt, { serviceCertPem });
    assert.equal(verdict.kind, "valid", verdict.kind === "invalid" ? verdict.reason : "");
    assert.equal(receipt.proofs[0]!.commitEvidence, json!.json().leaf_components.commit_evidence);
  }
});

test("bad input gets CCF errors and changes nothing", async () => {
  const malformed = await call("POST", "/app/log/private", {
    body: "{not json",
    contentType: "application/json",
    as: user0,
  });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.json().error.code, "InvalidInput");
  const noCert = await call("POST", "/app/log/private", {
    body: JSON.stringify({ id: 1, msg: "x" }),
    contentType: "application/json",
  });
  assert.equal(noCert.status, 401);
  assert.equal(noCert.json().error.code, "InvalidAuthenticationInfo");
  const unknown = await call("GET", "/app/nope");
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json().error.code, "ResourceNotFound");
  const tooBig = await call("POST", "/app/log/private", {
    body: "x".repeat(2 * 1024 * 1024),
    contentType: "application/json",
    as: user0,
  });
  assert.equal(tooBig.status, 413);
  const noVersion = await call("GET", "/gov/members/proposals");
  assert.equal(noVersion.json().error.code, "MissingApiVersionParameter");
  const replayBody = signedBy(members[0]!, "proposal", { actions: [] });
  const first = await call("POST", `/gov/members/proposals:create${GOV}`, {
    body: replayBody,
    contentType: "application/cose",
  });
  assert.equal(first.status, 200, first.text);
  const replay = await call("POST", `/gov/members/proposals:create${GOV}`, {
    body: replayBody,
    contentType: "application/cose",
  });
  assert.equal(replay.status, 400);
  assert.equal(replay.json().error.code, "ProposalReplay");
  const forged = signedBy(members[0]!, "proposal", { actions: [] });
  forged[forged.length - 1]! ^= 1;
  const bad = await call("POST", `/gov/members/proposals:create${GOV}`, {
    body: forged,
    contentType: "application/cose",
  });
  assert.equal(bad.status, 401);
  const stillThere = await call("GET", "/app/log/private?id=42", { as: user0 });
  assert.deepEqual(stillThere.json(), { msg: "hello private" });
});
