/**
 * End-to-end: @consortia/client against a real sandbox (`consortia sandbox --no-wait`: real node
 * processes, real TLS pinned to the service certificate). A user's app write returns its
 * transaction id, waitForCommit sees it Committed, a historical query reads it back, and both
 * its JSON and its COSE receipt verify on the client (a tampered copy of each is refused).
 * Governance through the SDK's COSE signing: member0 proposes a new member, member0 and member1
 * vote it through to Accepted, the new member acks its state digest and becomes Active, and a
 * second proposal is withdrawn. The oracle is the node: it accepts only correctly signed
 * requests, and the states it reports (gov list/show, members) must be the ones asked for.
 * Nodes are killed by their PIDs in `finally`.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  ClientError,
  ClientErrorCode,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "@consortia/client";
import { connect, nodeCoseSigner } from "@consortia/client/node";
import { generateIdentity } from "../../src/crypto/identity.js";
import { runCli } from "../helpers/cli.js";
import { freePortBlock, isAlive } from "../helpers/network.js";

async function killNode(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

function pidOf(workspace: string, i: number): number | null {
  try {
    const text = readFileSync(join(workspace, `sandbox_${i}`, "node.pid"), "utf8");
    return /^\d+\s*$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

async function refusedAsInvalid(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ClientError, String(err));
    assert.equal(err.code, ClientErrorCode.ReceiptInvalid);
    return true;
  });
}

test("the SDK writes, waits for commit, verifies receipts and governs a real sandbox", async () => {
  const workspace = mkdtempSync(join(tmpdir(), "consortia-sdk-"));
  const port = await freePortBlock(1);
  try {
    const args = ["sandbox", "--no-wait", "--nodes", "1", "--members", "3"];
    const run = runCli([
      ...args,
      "--workspace",
      workspace,
      "--port",
      String(port),
      "--sig-ms-interval",
      "50",
    ]);
    assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
    const common = join(workspace, "sandbox_common");
    const pem = (name: string) => readFileSync(join(common, name), "utf8");
    const url = `https://127.0.0.1:${port}`;
    const serviceCertPem = pem("service_cert.pem");

    // ---- app call, commit, historical query and receipts (user0 over mTLS) ----
    const user = connect({
      url,
      caPem: serviceCertPem,
      certPem: pem("user0_cert.pem"),
      keyPem: pem("user0_privk.pem"),
    });
    try {
      const write = await user.post("/app/log/public", { id: 42, msg: "hello sdk" });
      assert.equal(write.status, 200);
      assert.equal(write.body, true);
      assert.match(write.txId ?? "", /^\d+\.\d+$/);
      const txId = write.txId!;
      await user.waitForCommit(txId, { timeoutMs: 30_000 });
      assert.equal(await user.txStatus(txId), "Committed");
      const old = await user.historical<{ msg: string }>("/app/log/public/historical?id=42", txId);
      assert.deepEqual(old.body, { msg: "hello sdk" });

      const json = (await user.receipt(txId)) as Record<string, unknown>;
      const proven = await verifyJsonReceipt(json, { serviceCertPem });
      assert.match(proven.commitEvidence ?? "", new RegExp(`^ce:${txId.replace(".", "\\.")}:`));
      const components = json.leaf_components as Record<string, string>;
      const forged = { ...components, write_set_digest: "00".repeat(32) };
      await refusedAsInvalid(
        verifyJsonReceipt({ ...json, leaf_components: forged }, { serviceCertPem }),
      );

      const cose = await user.coseReceipt(txId);
      const coseProven = await verifyCoseReceipt(cose, { serviceCertPem });
      assert.equal(coseProven.commitEvidence, proven.commitEvidence);
      const tampered = new Uint8Array(cose);
      tampered[tampered.length - 1]! ^= 1;
      await refusedAsInvalid(verifyCoseReceipt(tampered, { serviceCertPem }));
    } finally {
      user.close();
    }

    // ---- governance, signed by the SDK ----
    const member = (i: number) =>
      nodeCoseSigner({ certPem: pem(`member${i}_cert.pem`), keyPem: pem(`member${i}_privk.pem`) });
    const gov = connect({ url, caPem: serviceCertPem });
    try {
      const [m0, m1] = [member(0), member(1)];
      const newcomer = await generateIdentity({ name: "member3", now: new Date() });
      const created = await gov.gov.propose(
        [{ name: "set_member", args: { cert: newcomer.certPem } }],
        m0,
      );
      assert.equal(created.body.proposalState, "Open");
      assert.match(created.txId ?? "", /^\d+\.\d+$/);
      const id = created.body.proposalId;
      assert.equal((await gov.gov.vote(id, true, m0)).body.proposalState, "Open");
      const decided = await gov.gov.vote(id, true, m1);
      assert.equal(decided.body.proposalState, "Accepted");
      await gov.waitForCommit(decided.txId!, { timeoutMs: 30_000 });
      const shown = await gov.gov.showProposal(id);
      assert.equal(shown.proposal.proposalState, "Accepted");
      assert.deepEqual(shown.actions, [{ name: "set_member", args: { cert: newcomer.certPem } }]);
      assert.deepEqual(Object.keys(shown.ballots).sort(), [m0.memberId, m1.memberId].sort());
      assert.ok((await gov.gov.listProposals()).some((p) => p.proposalId === id));

      const joiner = nodeCoseSigner({ certPem: newcomer.certPem, keyPem: newcomer.privateKeyPem });
      const statusOf = async () =>
        (await gov.gov.members()).find((m) => m.memberId === joiner.memberId)?.status;
      assert.equal(await statusOf(), "Accepted");
      const digest = await gov.gov.ack(joiner);
      assert.equal(digest.memberId, joiner.memberId);
      assert.equal(await statusOf(), "Active");

      const second = await gov.gov.propose([{ name: "trigger_snapshot", args: {} }], m0);
      const withdrawn = await gov.gov.withdraw(second.body.proposalId, m0);
      assert.equal(withdrawn.body?.proposalState, "Withdrawn");
      await assert.rejects(gov.gov.vote(second.body.proposalId, true, m1), (err: unknown) => {
        assert.ok(err instanceof ClientError);
        assert.equal(err.type.status, 400);
        assert.equal(err.type.ccfCode, "ProposalNotOpen");
        return true;
      });
    } finally {
      gov.close();
    }
  } finally {
    const pid = pidOf(workspace, 0);
    if (pid !== null) await killNode(pid);
    rmSync(workspace, { recursive: true, force: true });
  }
});
