/**
 * Disk faults with real node processes (SECURITY.md, "Disk faults"; issue #15 item 3). The
 * tmpfs mounts are made by the test (root); where mounting is impossible the tests skip and
 * say so.
 *   1. Start-up: a ledger directory on a read-only tmpfs (EROFS), existing or to be created:
 *      the node exits 1 before writing anything, with one line that names the directory and the
 *      errno, and no stack trace.
 *   2. Full disk: a one-node service whose ledger lives on a 4 MiB tmpfs (recovered there from a
 *      sandbox's ledger) takes 32 KiB writes until the tmpfs fills. The node logs one FATAL line
 *      (ENOSPC, the file, what to do) and exits with code 74, no stack trace. Every write that
 *      /app/tx reported Committed before that is read back after the tmpfs is grown and the
 *      service is recovered from the same ledger directory (torn tail cut), and new writes
 *      commit there.
 * Oracles: exit codes and logs of the processes, and the service's own answers before the fault
 * against those after the restart.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { submitMemberShare } from "../../src/cli/commands/recovery.js";
import { runCli } from "../helpers/cli.js";
import { Network, waitFor, type NetNode } from "../helpers/network.js";

/** What the CLI exits with after a storage fault (src/cli/commands/node.ts). */
const STORAGE_FAULT_EXIT_CODE = 74;
const MESSAGE_BYTES = 32 * 1024;
const WRITERS = 4;

/** Mounts a tmpfs of `sizeMiB` (with `ro` when asked) at a new directory; null if impossible. */
function mountTmpfs(
  sizeMiB: number,
  readOnly = false,
):
  | { dir: string; error: null }
  | {
      dir: null;
      error: string;
    } {
  const dir = mkdtempSync(join(tmpdir(), "consortia-tmpfs-"));
  const options = `size=${sizeMiB}m${readOnly ? ",ro" : ""}`;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "pipe" });
    return { dir, error: null };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { dir: null, error: e instanceof Error ? e.message : String(e) };
  }
}

function unmount(dir: string): void {
  execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  rmSync(dir, { recursive: true, force: true });
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Node 0's Start command, as the sandbox wrote it. */
function startCommand(net: Network): Record<string, unknown> {
  const config = JSON.parse(readFileSync(join(net.dirOf(0), "config.json"), "utf8")) as {
    command: Record<string, unknown>;
  };
  return config.command;
}

function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, `a stack trace was printed:\n${text}`);
}

/** The members open a recovered service (threshold 1: member 0's share); waits for Open. */
async function openRecovered(net: Network, node: NetNode, previousPem: string): Promise<void> {
  const gov = net.gov(node);
  try {
    const proposal = await net.decide(gov, [
      {
        name: "transition_service_to_open",
        args: { previous_service_identity: previousPem, next_service_identity: node.ca },
      },
    ]);
    assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
    const common = join(net.workspace, "sandbox_common");
    const key = readFileSync(join(common, "member0_enc_privk.pem"), "utf8");
    await submitMemberShare(gov, net.members[0]!, key);
    await waitFor("the recovered service Open", 30_000, async () =>
      (await net.serviceInfo(node)).status === "Open" ? true : undefined,
    );
  } finally {
    gov.close();
  }
}

/** Recovers the service from `ledgerDir` and opens it; answers the node and its process. */
async function recoverOnto(net: Network, ledgerDir: string, previousCertFile: string) {
  const recovering = net.spawnRecover({ ledgerDir, previousServiceCertFile: previousCertFile });
  const node = await recovering.ready();
  await openRecovered(net, node, readFileSync(previousCertFile, "utf8"));
  return { node, child: recovering.child, serviceCertFile: recovering.serviceCertFile };
}

/**
 * Writers post records until the node stops answering; each waits for its write's status and
 * keeps the ids /app/tx reported Committed (with their messages).
 */
async function writeUntilDown(
  net: Network,
  node: NetNode,
  child: ChildProcess,
): Promise<Map<number, string>> {
  const committed = new Map<number, string>();
  let next = 1000;
  const deadline = Date.now() + 60_000;
  const writer = async () => {
    while (child.exitCode === null && Date.now() < deadline) {
      const id = next++;
      const msg = `${id}:`.padEnd(MESSAGE_BYTES, String.fromCharCode(97 + (id % 26)));
      const reply = await net.call(node, "POST", "/app/log/private", { id, msg }).catch(() => null);
      if (reply?.status !== 200) continue;
      const txId = String(reply.headers["x-ms-ccf-transaction-id"]);
      for (let i = 0; i < 100 && child.exitCode === null; i++) {
        const status = await net.status(node, txId).catch(() => null);
        if (status === "Committed") {
          committed.set(id, msg);
          break;
        }
        if (status === null || status === "Invalid") break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  return committed;
}

test("disk faults", { timeout: 180_000 }, async (t: TestContext) => {
  const probe = mountTmpfs(1);
  if (probe.dir === null) {
    t.skip(`cannot mount a tmpfs here (${probe.error}): disk fault tests need root`);
    return;
  }
  unmount(probe.dir);
  const net = await Network.start(1, { spareNodes: 4 });
  try {
    await t.test("an unwritable ledger directory is one line naming it and the errno", () =>
      unwritableLedger(net),
    );
    await t.test("a full ledger disk stops the node cleanly; committed writes survive", () =>
      fullDisk(net),
    );
  } finally {
    await net.stop();
  }
});

async function unwritableLedger(net: Network): Promise<void> {
  const ro = mountTmpfs(1, true);
  assert.ok(ro.dir !== null, ro.error ?? "");
  try {
    const cases = [
      { ledger: ro.dir, errno: "EROFS" },
      { ledger: join(ro.dir, "ledger"), errno: "EROFS" },
    ];
    for (const c of cases) {
      const file = net.writeNodeConfig(3, startCommand(net), { ledger: c.ledger });
      const run = runCli(["node", "--config", file]);
      assert.equal(run.status, 1, run.stdout + run.stderr);
      const lines = run.stderr.trim().split("\n");
      assert.equal(lines.length, 1, run.stderr);
      assert.match(
        lines[0]!,
        new RegExp(`ledger directory ${c.ledger} is not writable: .*${c.errno}`),
      );
      assert.doesNotMatch(run.stderr, /cannot listen/);
      assertNoStack(run.stdout + run.stderr);
    }
  } finally {
    unmount(ro.dir);
  }
}

async function fullDisk(net: Network): Promise<void> {
  const node0 = net.nodes[0]!;
  const before = await net.write(node0, 1, "before the disk filled");
  await net.waitCommitted(node0, before);
  await net.terminateAll();
  const disk = mountTmpfs(4);
  assert.ok(disk.dir !== null, disk.error ?? "");
  try {
    const ledgerDir = join(disk.dir, "ledger");
    cpSync(join(net.dirOf(0), "0.ledger"), ledgerDir, { recursive: true });
    const common = join(net.workspace, "sandbox_common");
    const first = await recoverOnto(net, ledgerDir, join(common, "service_cert.pem"));
    const committed = await writeUntilDown(net, first.node, first.child);
    const code = await exitOf(first.child);
    const log = net.logOf(first.node);
    assert.equal(code, STORAGE_FAULT_EXIT_CODE, log);
    assert.ok(committed.size > 0, "some writes committed before the disk filled");
    const fatal = log.split("\n").filter((line) => line.includes("FATAL"));
    assert.equal(fatal.length, 1, log);
    assert.match(fatal[0]!, new RegExp(`${ledgerDir}/\\S+ failed: ENOSPC`));
    assert.match(fatal[0]!, /command Recover/);
    assertNoStack(log);
    // Space is freed; the service restarts from the same ledger directory.
    execFileSync("mount", ["-o", "remount,size=64m", disk.dir], { stdio: "pipe" });
    const second = await recoverOnto(net, ledgerDir, first.serviceCertFile);
    for (const [id, msg] of [...committed, [1, "before the disk filled"] as const]) {
      const reply = await net.read(second.node, id);
      assert.equal(reply.status, 200, `record ${id}, reported Committed, is lost`);
      assert.deepEqual(JSON.parse(reply.body), { msg });
    }
    const after = await net.write(second.node, 2, "after the restart");
    await net.waitCommitted(second.node, after);
    await net.terminateAll();
  } finally {
    unmount(disk.dir);
  }
}
