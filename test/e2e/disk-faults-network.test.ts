/**
 * A full disk under the primary of a 3-node service, with real node processes (SECURITY.md,
 * "Disk faults"; issue #15 item 3). The service is recovered from a sandbox's ledger onto a
 * 4 MiB tmpfs the test mounts (root; skipped with a message where mounting is impossible), so
 * its first node, the primary, writes its ledger there; two nodes join with ordinary ledger
 * directories. Writes of 32 KiB go through that node until its tmpfs fills. It must log one
 * FATAL line naming the file and ENOSPC and exit with code 74, and the two others must elect a
 * primary that serves every write /app/tx had reported Committed, and commit new ones.
 * Oracles: the exit code and log of the process, and the service's answers before the fault
 * against the survivors' answers after it.
 */
import assert from "node:assert/strict";
import { cpSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { asn1Now } from "../../src/cli/commands/node-replace.js";
import {
  assertNoStack,
  exitOf,
  mountTmpfs,
  recoverOnto,
  STORAGE_FAULT_EXIT_CODE,
  unmount,
  writeUntilDown,
} from "../helpers/disk-faults.js";
import { Network, waitFor, type NetNode } from "../helpers/network.js";

/**
 * Two nodes join through `primary` at once; one proposal trusts both; waits until they serve.
 * A node process starts in a few seconds on a quiet machine but much slower while the suite's
 * two lanes load both cores (one full-suite run missed the old 30 s bound), hence 60 s.
 */
const JOIN_WAIT_MS = 60_000;

async function joinTwo(net: Network, primary: NetNode, serviceCertFile: string) {
  const joiners = [0, 1].map(() => net.spawnJoiner(primary, { serviceCertFile }));
  const ids = await waitFor("two Pending nodes", JOIN_WAIT_MS, async () => {
    const reply = await net.get(primary, "/node/network/nodes?status=Pending");
    const nodes = (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes;
    return nodes.length === 2 ? nodes.map((n) => n.node_id) : undefined;
  });
  await net.pass(
    primary,
    ids.map((id) => ({
      name: "transition_node_to_trusted",
      args: { node_id: id, valid_from: asn1Now() },
    })),
  );
  for (const joiner of joiners) {
    if (primary.ca !== undefined) joiner.ca = primary.ca;
    await waitFor(`node ${joiner.index} serving`, JOIN_WAIT_MS, async () =>
      (await net.read(joiner, 1).catch(() => null))?.status === 200 ? true : undefined,
    );
    const self = await net.get(joiner, "/node/network/nodes/self");
    joiner.id = (JSON.parse(self.body) as { node_id: string }).node_id;
    assert.ok(ids.includes(joiner.id), `node ${joiner.index} is one of the trusted joiners`);
  }
  return joiners;
}

test(
  "a full disk under the primary stops it cleanly; the others keep every commit",
  {
    timeout: 180_000,
  },
  async (t: TestContext) => {
    const disk = mountTmpfs(4);
    if (disk.dir === null) {
      t.skip(`cannot mount a tmpfs here (${disk.error}): disk fault tests need root`);
      return;
    }
    const net = await Network.start(1, { spareNodes: 4 });
    try {
      const node0 = net.nodes[0]!;
      await net.waitCommitted(node0, await net.write(node0, 1, "before"));
      await net.terminateAll();
      const ledgerDir = join(disk.dir, "ledger");
      cpSync(join(net.dirOf(0), "0.ledger"), ledgerDir, { recursive: true });
      const common = join(net.workspace, "sandbox_common");
      const first = await recoverOnto(net, ledgerDir, join(common, "service_cert.pem"));
      const others = await joinTwo(net, first.node, first.serviceCertFile);
      const committed = await writeUntilDown(net, first.node, first.child);
      assert.equal(await exitOf(first.child), STORAGE_FAULT_EXIT_CODE, net.logOf(first.node));
      first.node.killed = true;
      const log = net.logOf(first.node);
      const fatal = log.split("\n").filter((line) => line.includes("FATAL"));
      assert.equal(fatal.length, 1, log);
      assert.match(fatal[0]!, new RegExp(`${ledgerDir}/\\S+ failed: ENOSPC`));
      assertNoStack(log);
      assert.ok(committed.size > 0, "some writes committed before the disk filled");
      const primary = await net.primary(30_000);
      assert.ok(others.includes(primary), "a survivor is the primary");
      for (const [id, msg] of [...committed, [1, "before"] as const]) {
        const reply = await net.read(primary, id);
        assert.equal(reply.status, 200, `record ${id}, reported Committed, is lost`);
        assert.deepEqual(JSON.parse(reply.body), { msg });
      }
      await net.waitCommitted(primary, await net.write(primary, 2, "after"));
    } finally {
      await net.stop();
      unmount(disk.dir);
    }
  },
);
