/**
 * End-to-end: the enclave registry's story with the CLI only, on one sandbox of two real node
 * processes with the `registry` app deployed (`consortia sandbox --js-app-bundle registry`), as
 * the README's "Enclave registry" section tells it:
 *   1. member0 proposes set_registry_chaincode (`consortia gov propose`), member0 and member1
 *      accept it (`consortia gov vote`);
 *   2. `consortia registry simulate-enclave` makes an enclave, `registry register --wait`
 *      registers it as user0, `registry list` and `registry show` see it Active; an enclave
 *      claiming another measurement is refused (exit 1, 403 MeasurementMismatch);
 *   3. `consortia registry verify` (through the backup) checks the registration's receipt
 *      against the service certificate and prints the enclave's keys, which are the files
 *      simulate-enclave wrote; a client expecting another measurement is refused;
 *   4. after revoke_registry_enclave by proposal, `registry verify` exits 1: Revoked.
 * The oracle is the files simulate-enclave wrote (the keys verify must print) and the registry
 * contract's status codes. The nodes are killed by their PIDs in `finally`; the test is bounded
 * (each CLI call by runCli's timeout, the whole by the test timeout).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli, type CliRun } from "../helpers/cli.js";
import { freePortBlock, isAlive } from "../helpers/network.js";

const CHAINCODE = "cc1";
const MEASUREMENT = "mrenclave-1";

async function killNode(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

function pidsOf(workspace: string, nodes: number): number[] {
  const pids: number[] = [];
  for (let i = 0; i < nodes; i++) {
    try {
      const text = readFileSync(join(workspace, `sandbox_${i}`, "node.pid"), "utf8");
      if (/^\d+\s*$/.test(text)) pids.push(Number(text));
    } catch (err: unknown) {
      if ((err as { code?: string }).code !== "ENOENT") throw err;
    }
  }
  return pids;
}

function ok(run: CliRun, what: string): string {
  assert.equal(run.status, 0, `${what} failed:\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

/** member0 proposes one action; member0 and member1 accept it (a majority of three). */
function passProposal(workspace: string, node: string, name: string, args: unknown): void {
  const connection = ["--workspace", workspace, "--node", node];
  const proposed = ok(
    runCli(["gov", "propose", "--action", name, "--args", JSON.stringify(args), ...connection]),
    `propose ${name}`,
  );
  const { proposalId } = JSON.parse(proposed) as { proposalId: string };
  const common = join(workspace, "sandbox_common");
  let state = "";
  for (const member of ["member0", "member1"]) {
    const identity = ["--cert", join(common, `${member}_cert.pem`)];
    identity.push("--key", join(common, `${member}_privk.pem`));
    const vote = ["gov", "vote", "--proposal-id", proposalId, "--accept"];
    const voted = ok(runCli([...vote, ...connection, ...identity]), `vote ${name}`);
    state = (JSON.parse(voted) as { proposalState: string }).proposalState;
  }
  assert.equal(state, "Accepted", `${name} was not accepted`);
}

test(
  "the enclave registry story with the CLI: policy, register, list, show, verify, revoke",
  {
    timeout: 300_000,
  },
  async () => {
    const workspace = mkdtempSync(join(tmpdir(), "consortia-registry-cli-"));
    const port = await freePortBlock(2);
    let pids: number[] = [];
    try {
      const started = runCli([
        ...["sandbox", "--no-wait", "--nodes", "2", "--workspace", workspace],
        ...["--port", String(port), "--sig-ms-interval", "50", "--js-app-bundle", "registry"],
      ]);
      pids = pidsOf(workspace, 2);
      ok(started, "sandbox");
      const primary = `https://127.0.0.1:${port}`;
      const backup = `https://127.0.0.1:${port + 1}`;
      const connection = ["--workspace", workspace, "--node", primary];
      const serviceCert = join(workspace, "sandbox_common", "service_cert.pem");

      // 1. The chaincode's policy, by proposal.
      passProposal(workspace, primary, "set_registry_chaincode", {
        chaincode_id: CHAINCODE,
        version: MEASUREMENT,
        sequence: 1,
        channel_id: "mychannel",
        platforms: ["Insecure_Virtual"],
      });

      // 2. An enclave registers; a second one claiming another measurement is refused.
      const dir = join(workspace, "enclave1");
      const simulated = ok(
        runCli([
          ...[
            "registry",
            "simulate-enclave",
            "--chaincode-id",
            CHAINCODE,
            "--version",
            MEASUREMENT,
          ],
          ...["--channel-id", "mychannel", "--peer-endpoint", "peer0.org1:7051", "--out", dir],
        ]),
        "simulate-enclave",
      );
      const enclaveId = /^enclave_id ([0-9A-F]{64})$/m.exec(simulated)?.[1] ?? "";
      const register = (d: string) =>
        runCli([
          ...["registry", "register", "--chaincode-id", CHAINCODE, "--wait", ...connection],
          ...[
            "--attested-data",
            join(d, "attested_data.json"),
            "--evidence",
            join(d, "evidence.json"),
          ],
        ]);
      const registered = JSON.parse(ok(register(dir), "register")) as Record<string, unknown>;
      assert.equal(registered.enclave_id, enclaveId);
      assert.match(String(registered.transaction_id), /^\d+\.\d+$/);
      assert.equal(registered.committed, true);

      const other = join(workspace, "enclave2");
      ok(
        runCli([
          ...["registry", "simulate-enclave", "--chaincode-id", CHAINCODE, "--version", "other"],
          ...["--channel-id", "mychannel", "--out", other],
        ]),
        "simulate-enclave (other)",
      );
      const refused = register(other);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /^consortia: .*403 MeasurementMismatch/);

      const listed = ok(
        runCli(["registry", "list", "--chaincode-id", CHAINCODE, ...connection]),
        "list",
      );
      assert.match(listed, /^1 enclave\(s\) of chaincode cc1\n/);
      assert.match(listed, new RegExp(`${enclaveId}  Active  ${registered.transaction_id}  peer0`));
      const show = ["registry", "show", "--chaincode-id", CHAINCODE, "--enclave-id", enclaveId];
      const shown = JSON.parse(ok(runCli([...show, "--json", ...connection]), "show")) as {
        status: string;
        transaction_id: string;
      };
      assert.equal(shown.status, "Active");
      assert.equal(shown.transaction_id, registered.transaction_id);
      assert.match(ok(runCli([...show, ...connection]), "show"), /status: Active\n/);

      // 3. A client verifies it, through the backup, with only the service certificate.
      const verifyArgs = [
        ...["registry", "verify", "--chaincode-id", CHAINCODE, "--enclave-id", enclaveId],
        ...["--service-cert", serviceCert, "--workspace", workspace, "--node", backup],
      ];
      const verified = ok(runCli([...verifyArgs, "--measurement", MEASUREMENT]), "verify");
      assert.match(verified, new RegExp(`^enclave ${enclaveId} of chaincode cc1 is verified`));
      assert.match(verified, /checked: its claims digest is SHA-256 of the registration record/);
      const trusted = JSON.parse(ok(runCli([...verifyArgs, "--json"]), "verify --json")) as Record<
        string,
        unknown
      >;
      const attested = JSON.parse(readFileSync(join(dir, "attested_data.json"), "utf8")) as Record<
        string,
        unknown
      >;
      assert.equal(trusted.enclave_vk, attested.enclave_vk);
      assert.equal(trusted.chaincode_ek, attested.chaincode_ek);
      assert.equal(trusted.measurement, MEASUREMENT);
      assert.equal(trusted.peer_endpoint, "peer0.org1:7051");
      const expectOther = runCli([...verifyArgs, "--measurement", "other"]);
      assert.equal(expectOther.status, 1);
      assert.match(expectOther.stderr, /is NOT verified: .*measurement "mrenclave-1", not "other"/);

      // 4. Revoked by governance: verification now fails.
      passProposal(workspace, primary, "revoke_registry_enclave", {
        chaincode_id: CHAINCODE,
        enclave_id: enclaveId,
      });
      let revoked = runCli(verifyArgs);
      for (let i = 0; i < 20 && revoked.status === 0; i++) {
        await new Promise((r) => setTimeout(r, 200)); // the backup catches up
        revoked = runCli(verifyArgs);
      }
      assert.equal(revoked.status, 1);
      assert.match(revoked.stderr, /^consortia: enclave [0-9A-F]+ is NOT verified: .*Revoked/);
    } finally {
      for (const pid of pids) await killNode(pid);
      rmSync(workspace, { recursive: true, force: true });
    }
  },
);
