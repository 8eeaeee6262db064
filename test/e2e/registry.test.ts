/**
 * End-to-end: the enclave registry on a 3-node sandbox. `consortia sandbox --js-app-bundle
 * registry` opens the service with the shipped registry app deployed; member0 proposes
 * set_registry_chaincode (`consortia gov propose`) and member0 and member1 vote it in; user0
 * registers a simulated virtual enclave (test/helpers/registry-enclave.ts), which a backup then
 * lists and shows as Active; the registering transaction's receipt (/app/receipt) verifies
 * against the service certificate and its claims_digest is SHA-256 of R as the registry shows
 * it; a member is refused with 403; a new policy (sequence 2) turns the enclave Revoked with its
 * reason; a second enclave registers under the new policy. Then the nodes stop and `consortia
 * sandbox --recover` recovers the service from its ledgers (disaster recovery): both
 * registrations and their statuses are back, and registering works again. Oracles: node:crypto (SHA-256, enclave id), the receipt verifier of src/ledger, and the
 * API contract of docs/registry.md.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { memberIdFromCert } from "../../src/crypto/identity.js";
import { parseReceipt, verifyReceipt } from "../../src/ledger/receipt.js";
import { runCli } from "../helpers/cli.js";
import { httpsRequest as https, type Reply, type Tls } from "../helpers/https.js";
import { freePortBlock, isAlive } from "../helpers/network.js";
import { simulateEnclave, type SimulatedEnclave } from "../helpers/registry-enclave.js";

const NODES = 3;

async function until(call: () => Promise<Reply>, done: (r: Reply) => boolean): Promise<Reply> {
  let reply = await call();
  for (let i = 0; i < 100 && !done(reply); i++) {
    await new Promise((r) => setTimeout(r, 100));
    reply = await call();
  }
  return reply;
}

function pidsOf(workspace: string): number[] {
  const pids: number[] = [];
  for (let i = 0; i < NODES; i++) {
    const file = join(workspace, `sandbox_${i}`, "node.pid");
    const pid = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : Number.NaN;
    if (Number.isSafeInteger(pid) && pid > 0) pids.push(pid);
  }
  return pids;
}

/** The nodes of the service and of every service set aside by a recovery. */
function allPids(workspace: string): number[] {
  const previous = existsSync(workspace)
    ? readdirSync(workspace).filter((n) => /^previous_service_\d+$/.test(n))
    : [];
  return [workspace, ...previous.map((n) => join(workspace, n))].flatMap(pidsOf);
}

async function stop(pids: number[]): Promise<void> {
  for (const pid of pids) if (pid > 0 && isAlive(pid)) process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && pids.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids) if (pid > 0 && isAlive(pid)) process.kill(pid, "SIGKILL");
}

/** member0 proposes one action; member0 and member1 vote for it. */
function govern(workspace: string, node: string, name: string, args: unknown): void {
  const where = ["--workspace", workspace, "--node", node];
  const proposed = runCli([
    "gov",
    "propose",
    "--action",
    name,
    "--args",
    JSON.stringify(args),
    ...where,
  ]);
  assert.equal(proposed.status, 0, proposed.stderr);
  const { proposalId } = JSON.parse(proposed.stdout) as { proposalId: string };
  const common = join(workspace, "sandbox_common");
  for (const member of ["member0", "member1"]) {
    const vote = runCli([
      ...["gov", "vote", "--proposal-id", proposalId, "--accept", ...where],
      ...[
        "--cert",
        join(common, `${member}_cert.pem`),
        "--key",
        join(common, `${member}_privk.pem`),
      ],
    ]);
    assert.equal(vote.status, 0, vote.stderr);
  }
}

const POLICY = {
  chaincode_id: "cc1",
  version: "v1-measurement",
  sequence: 1,
  platforms: ["Insecure_Virtual"],
};

interface Service {
  readonly workspace: string;
  readonly port: number;
  readonly ca: string;
  readonly user: Tls;
  readonly member: Tls;
}

function service(workspace: string, port: number): Service {
  const common = join(workspace, "sandbox_common");
  const read = (name: string) => readFileSync(join(common, name), "utf8");
  const ca = read("service_cert.pem");
  return {
    workspace,
    port,
    ca,
    user: { ca, cert: read("user0_cert.pem"), key: read("user0_privk.pem") },
    member: { ca, cert: read("member0_cert.pem"), key: read("member0_privk.pem") },
  };
}

const url = (s: Service, node: number, path: string) => `https://127.0.0.1:${s.port + node}${path}`;

/** Registers `enclave` as user0 on the primary; returns the registering txId. */
async function register(s: Service, enclave: SimulatedEnclave): Promise<string> {
  const reply = await https(url(s, 0, "/app/registry/enclaves"), s.user, "POST", enclave.body);
  assert.equal(reply.status, 200, reply.body);
  assert.deepEqual(JSON.parse(reply.body), { enclave_id: enclave.enclaveId });
  return String(reply.headers["x-ms-ccf-transaction-id"]);
}

/** queryEnclaveCredentials on `node`, retried until `done` (replication to a backup). */
async function show(s: Service, node: number, id: string, done: (body: string) => boolean) {
  const path = `/app/registry/chaincodes/cc1/enclaves/${id}`;
  const reply = await until(
    () => https(url(s, node, path), s.member, "GET"),
    (r) => r.status === 200 && done(r.body),
  );
  assert.equal(reply.status, 200, reply.body);
  return JSON.parse(reply.body) as Record<string, unknown>;
}

async function committed(s: Service, txId: string): Promise<void> {
  const reply = await until(
    () => https(url(s, 0, `/app/tx?transaction_id=${txId}`), s.user, "GET"),
    (r) => r.body.includes("Committed"),
  );
  assert.match(reply.body, /Committed/);
}

/** Registration, queries on a backup, the receipt of R, a member refused. */
async function registerAndProve(s: Service, enclave: SimulatedEnclave): Promise<string> {
  const txId = await register(s, enclave);
  const byMember = await https(url(s, 0, "/app/registry/enclaves"), s.member, "POST", enclave.body);
  assert.equal(byMember.status, 403, byMember.body);
  const shown = await show(s, 1, enclave.enclaveId, () => true);
  assert.equal(shown.status, "Active");
  assert.equal(shown.transaction_id, txId);
  const r = Buffer.from(shown.registration as string, "base64");
  const registeredBy = (JSON.parse(r.toString()) as { registered_by: string }).registered_by;
  assert.equal(registeredBy, memberIdFromCert(s.user.cert!));
  const list = await https(url(s, 1, "/app/registry/chaincodes/cc1/enclaves"), s.user, "GET");
  const peer = "peer0.org1:7051";
  assert.deepEqual(JSON.parse(list.body), {
    enclaves: [
      {
        enclave_id: enclave.enclaveId,
        status: "Active",
        transaction_id: txId,
        peer_endpoint: peer,
      },
    ],
  });
  const receipt = await until(
    () => https(url(s, 0, `/app/receipt?transaction_id=${txId}`), s.user, "GET"),
    (reply) => reply.status === 200,
  );
  assert.equal(receipt.status, 200, receipt.body);
  const json = JSON.parse(receipt.body) as { leaf_components: { claims_digest: string } };
  const verdict = verifyReceipt(parseReceipt(json), s.ca);
  assert.equal(verdict.kind, "valid", JSON.stringify(verdict));
  assert.equal(json.leaf_components.claims_digest, createHash("sha256").update(r).digest("hex"));
  return txId;
}

/** Stops the nodes and recovers the service (`sandbox --recover`); the registry is intact. */
async function recoverAndCheck(s: Service, revoked: string, active: string): Promise<void> {
  await stop(pidsOf(s.workspace));
  const run = runCli([
    ...["sandbox", "--recover", "--no-wait", "--nodes", String(NODES)],
    ...["--workspace", s.workspace, "--port", String(s.port), "--sig-ms-interval", "50"],
  ]);
  assert.equal(run.status, 0, `recovery failed:\n${run.stdout}\n${run.stderr}`);
  const after = service(s.workspace, s.port);
  assert.notEqual(after.ca, s.ca, "a recovered service has a new identity");
  const old = await show(after, 0, revoked, () => true);
  assert.equal(old.status, "Revoked");
  assert.match(String(old.reason), /^SequenceMismatch/);
  assert.equal((await show(after, 0, active, () => true)).status, "Active");
  const provisioned = await https(
    url(after, 0, "/app/registry/chaincodes/cc1/provisioned"),
    after.user,
    "GET",
  );
  assert.deepEqual(JSON.parse(provisioned.body), { enclave_ids: [active] });
  await register(after, simulateEnclave({ chaincodeId: "cc1", sequence: 2 }));
}

test(
  "registry: policy by proposal, registration, receipt of R, revocation, disaster recovery",
  { timeout: 240_000 },
  async () => {
    const workspace = mkdtempSync(join(tmpdir(), "consortia-registry-"));
    const port = await freePortBlock(NODES);
    try {
      const run = runCli([
        ...["sandbox", "--no-wait", "--nodes", String(NODES), "--workspace", workspace],
        ...["--port", String(port), "--sig-ms-interval", "50", "--js-app-bundle", "registry"],
      ]);
      assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
      const s = service(workspace, port);
      const primary = url(s, 0, "");

      govern(workspace, primary, "set_registry_chaincode", POLICY);
      const first = simulateEnclave({ chaincodeId: "cc1" });
      await registerAndProve(s, first);

      govern(workspace, primary, "set_registry_chaincode", { ...POLICY, sequence: 2 });
      const revoked = await show(s, 1, first.enclaveId, (body) => body.includes("Revoked"));
      assert.equal(revoked.status, "Revoked");
      assert.match(String(revoked.reason), /^SequenceMismatch/);
      const second = simulateEnclave({ chaincodeId: "cc1", sequence: 2 });
      await committed(s, await register(s, second));

      await recoverAndCheck(s, first.enclaveId, second.enclaveId);
    } finally {
      await stop(allPids(workspace));
      rmSync(workspace, { recursive: true, force: true });
    }
  },
);
