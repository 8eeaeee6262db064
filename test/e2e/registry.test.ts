/**
 * End-to-end: the enclave registry on a 3-node sandbox. `consortia sandbox --js-app-bundle
 * registry` opens the service with the shipped registry app deployed; member0 proposes
 * set_registry_chaincode (`consortia gov propose`) and member0 and member1 vote it in; user0
 * registers a simulated virtual enclave (test/helpers/registry-enclave.ts), which a backup then
 * lists and shows as Active; the registering transaction's receipt (/app/receipt) verifies
 * against the service certificate and its claims_digest is SHA-256 of R as the registry shows
 * it; a member is refused with 403; a new policy (sequence 2) turns the enclave Revoked with its
 * reason. Oracles: node:crypto (SHA-256, enclave id), the receipt verifier of src/ledger, and the
 * API contract of docs/registry.md.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { memberIdFromCert } from "../../src/crypto/identity.js";
import { parseReceipt, verifyReceipt } from "../../src/ledger/receipt.js";
import { runCli } from "../helpers/cli.js";
import { httpsRequest as https, type Reply, type Tls } from "../helpers/https.js";
import { freePortBlock, isAlive } from "../helpers/network.js";
import { simulateEnclave } from "../helpers/registry-enclave.js";

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
    try {
      pids.push(Number(readFileSync(join(workspace, `sandbox_${i}`, "node.pid"), "utf8")));
    } catch (err: unknown) {
      if ((err as { code?: string }).code !== "ENOENT") throw err;
    }
  }
  return pids;
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

test("registry: policy by proposal, registration, queries, receipt of R, revocation", async () => {
  const workspace = mkdtempSync(join(tmpdir(), "consortia-registry-"));
  const port = await freePortBlock(NODES);
  let pids: number[] = [];
  try {
    const run = runCli([
      ...["sandbox", "--no-wait", "--nodes", String(NODES), "--workspace", workspace],
      ...["--port", String(port), "--sig-ms-interval", "50", "--js-app-bundle", "registry"],
    ]);
    pids = pidsOf(workspace);
    assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
    const common = join(workspace, "sandbox_common");
    const read = (name: string) => readFileSync(join(common, name), "utf8");
    const ca = read("service_cert.pem");
    const user: Tls = { ca, cert: read("user0_cert.pem"), key: read("user0_privk.pem") };
    const member: Tls = { ca, cert: read("member0_cert.pem"), key: read("member0_privk.pem") };
    const primary = `https://127.0.0.1:${port}`;
    const backup = `https://127.0.0.1:${port + 1}`;

    govern(workspace, primary, "set_registry_chaincode", POLICY);
    const enclave = simulateEnclave({ chaincodeId: "cc1" });
    const registered = await https(`${primary}/app/registry/enclaves`, user, "POST", enclave.body);
    assert.equal(registered.status, 200, registered.body);
    assert.deepEqual(JSON.parse(registered.body), { enclave_id: enclave.enclaveId });
    const txId = String(registered.headers["x-ms-ccf-transaction-id"]);
    const byMember = await https(`${primary}/app/registry/enclaves`, member, "POST", enclave.body);
    assert.equal(byMember.status, 403, byMember.body);

    const enclaveUrl = `${backup}/app/registry/chaincodes/cc1/enclaves/${enclave.enclaveId}`;
    const shown = await until(
      () => https(enclaveUrl, member, "GET"),
      (r) => r.status === 200,
    );
    assert.equal(shown.status, 200, shown.body);
    const show = JSON.parse(shown.body) as Record<string, unknown>;
    assert.equal(show.status, "Active");
    assert.equal(show.transaction_id, txId);
    const r = Buffer.from(show.registration as string, "base64");
    assert.equal(
      (JSON.parse(r.toString()) as { registered_by: string }).registered_by,
      memberIdFromCert(user.cert!),
    );
    const list = await https(`${backup}/app/registry/chaincodes/cc1/enclaves`, user, "GET");
    assert.deepEqual(JSON.parse(list.body), {
      enclaves: [
        {
          enclave_id: enclave.enclaveId,
          status: "Active",
          transaction_id: txId,
          peer_endpoint: "peer0.org1:7051",
        },
      ],
    });

    const receipt = await until(
      () => https(`${primary}/app/receipt?transaction_id=${txId}`, user, "GET"),
      (reply) => reply.status === 200,
    );
    assert.equal(receipt.status, 200, receipt.body);
    const json = JSON.parse(receipt.body) as { leaf_components: { claims_digest: string } };
    const verdict = verifyReceipt(parseReceipt(json), ca);
    assert.equal(verdict.kind, "valid", JSON.stringify(verdict));
    assert.equal(json.leaf_components.claims_digest, createHash("sha256").update(r).digest("hex"));

    govern(workspace, primary, "set_registry_chaincode", { ...POLICY, sequence: 2 });
    const revoked = await until(
      () => https(enclaveUrl, user, "GET"),
      (reply) => reply.body.includes("Revoked"),
    );
    const after = JSON.parse(revoked.body) as { status: string; reason: string };
    assert.equal(after.status, "Revoked", revoked.body);
    assert.match(after.reason, /^SequenceMismatch/);
  } finally {
    await stop(pids.length > 0 ? pids : pidsOf(workspace));
    rmSync(workspace, { recursive: true, force: true });
  }
});
