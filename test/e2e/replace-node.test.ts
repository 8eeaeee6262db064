/**
 * End-to-end (issue #5 item 3): replacing a crashed node with real processes. A 3-node service
 * takes a few records and a snapshot; a backup is SIGKILLed for good; a new node joins (from the
 * snapshot, fetched from the primary) and waits Pending; then one `consortia node replace` run
 * trusts the new node, retires the dead one and deletes it. Afterwards the new node is Trusted
 * and serves every record, the dead node is gone from the nodes table, a new write commits on
 * every live node, and running the same replacement again fails with one clear line.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { Network, waitFor } from "../helpers/network.js";

test("`consortia node replace` swaps a dead backup for a new node", async (t) => {
  const net = await Network.start(3);
  t.after(() => net.stop());
  const common = join(net.workspace, "sandbox_common");
  const primary = await net.primary();
  const records = [1, 2, 3, 4, 5].map((id) => ({ id, msg: `record ${id}` }));
  for (const { id, msg } of records)
    await net.waitCommitted(primary, await net.write(primary, id, msg));

  // A committed snapshot on the primary, so the new node joins from it.
  await net.pass(primary, [{ name: "trigger_snapshot", args: {} }]);
  const snapshots = join(net.workspace, `sandbox_${primary.index}`, `${primary.index}.snapshots`);
  await waitFor("a committed snapshot", 20_000, async () => {
    await net.write(primary, 100, "keep signing");
    return readdirSync(snapshots).find((f) => f.endsWith(".committed"));
  });

  const dead = net.alive().find((n) => n.id !== primary.id)!;
  net.kill(dead);
  const joiner = net.spawnJoiner(primary);
  joiner.id = await waitFor("a Pending node", 30_000, async () => {
    const reply = await net.get(primary, "/node/network/nodes?status=Pending");
    return (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes[0]?.node_id;
  });
  const joinerLog = readFileSync(join(net.workspace, `sandbox_${joiner.index}`, "out"), "utf8");
  assert.match(joinerLog, /snapshot fetch: .* complete/);

  const members = [0, 1, 2].flatMap((i) => [
    ["--member-cert", join(common, `member${i}_cert.pem`)],
    ["--member-key", join(common, `member${i}_privk.pem`)],
  ]);
  // The operator's form (docs/operating.md): a node's address and the service certificate.
  const serviceCert = join(common, "service_cert.pem");
  const connection = ["--node", `https://127.0.0.1:${primary.port}`, "--cacert", serviceCert];
  const started = Date.now();
  const run = runCli([
    "node",
    "replace",
    "--old",
    dead.id,
    "--new",
    joiner.id,
    ...connection,
    ...members.flat(),
    "--timeout",
    "30",
  ]);
  t.diagnostic(`node replace took ${Date.now() - started} ms`);
  assert.equal(run.status, 0, `node replace failed:\n${run.stdout}\n${run.stderr}`);
  const steps = run.stdout.trim().split("\n");
  for (const line of [...steps, ...run.stderr.trim().split("\n")]) t.diagnostic(line);
  assert.match(steps[0]!, new RegExp(`^checked: node ${dead.id} is Trusted, node ${joiner.id}`));
  assert.match(steps[1]!, /^proposed: \w+ by member \w+ \(tx \d+\.\d+\): trust .*, remove /);
  assert.match(steps.at(-4)!, /^voted: member \w+ accepts \w+, now Accepted \(tx \d+\.\d+\)$/);
  assert.match(steps.at(-3)!, new RegExp(`^trusted: node ${joiner.id} is Trusted`));
  assert.match(steps.at(-2)!, new RegExp(`^retired: node ${dead.id}`));
  assert.match(
    steps.at(-1)!,
    new RegExp(`^deleted: node ${dead.id} \\(tx \\d+\\.\\d+, committed\\)`),
  );

  await t.test("the new node is Trusted and serves every record", async () => {
    // PartOfNetwork means serving, not caught up: the new node learns its own nodes-table row
    // as it replays the ledger from the primary.
    const self = await waitFor("the new node knows itself", 20_000, async () => {
      const reply = await net.get(joiner, "/node/network/nodes/self");
      return reply.status === 200
        ? (JSON.parse(reply.body) as { node_id: string; status: string })
        : undefined;
    });
    assert.deepEqual(self, { ...self, node_id: joiner.id, status: "Trusted" });
    await waitFor("the new node caught up", 20_000, async () =>
      (await net.read(joiner, records.at(-1)!.id)).status === 200 ? true : undefined,
    );
    for (const { id, msg } of records) {
      const reply = await net.read(joiner, id);
      assert.equal(reply.status, 200, `record ${id} on the new node: ${reply.body}`);
      assert.deepEqual(JSON.parse(reply.body), { msg });
    }
  });

  await t.test("the dead node is gone from the nodes table", async () => {
    for (const node of net.alive()) {
      await waitFor(`node ${node.index} without the dead node`, 10_000, async () => {
        const reply = await net.get(node, "/node/network/nodes");
        const ids = (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes.map(
          (n) => n.node_id,
        );
        return ids.includes(dead.id) ? undefined : ids;
      });
      assert.equal((await net.get(node, `/node/network/nodes/${dead.id}`)).status, 404);
    }
  });

  await t.test("a new write commits on the survivors and the new node", async () => {
    const live = net.alive();
    assert.deepEqual(
      live.map((n) => n.id).sort(),
      net.nodes
        .filter((n) => n !== dead)
        .map((n) => n.id)
        .sort(),
    );
    const txId = await net.write(primary, 200, "after the replacement");
    for (const node of live) {
      await net.waitCommitted(node, txId);
      const reply = await net.read(node, 200);
      assert.equal(reply.status, 200, `the new record on node ${node.index}: ${reply.body}`);
    }
  });

  await t.test("replacing the same node again fails with one clear line", () => {
    const ids = ["--old", dead.id, "--new", joiner.id];
    const again = runCli(["node", "replace", ...ids, ...connection, ...members.flat()]);
    assert.equal(again.status, 1, again.stdout);
    assert.equal(again.stdout, "");
    assert.equal(
      again.stderr,
      `consortia: unknown node id ${dead.id} (--old): the service has no such node\n`,
    );
  });
});
