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
import { execFileSync } from "node:child_process";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { runCli } from "../helpers/cli.js";
import {
  assertNoStack,
  exitOf,
  mountTmpfs,
  recoverOnto,
  startCommand,
  STORAGE_FAULT_EXIT_CODE,
  unmount,
  writeUntilDown,
} from "../helpers/disk-faults.js";
import { Network } from "../helpers/network.js";

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
