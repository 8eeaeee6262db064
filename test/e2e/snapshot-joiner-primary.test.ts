/**
 * End-to-end (issue #15, chaos seed 99): a node that joined from a snapshot taken before
 * another node joined must follow that newer node once it becomes primary. Its nodes table
 * (from the snapshot) does not list the newer node, and only the new primary can bring it up to
 * date: refusing the primary's node-to-node connection, or its vote request, deadlocks the
 * network. Real processes and TLS: node 0 snapshots; node 1 joins; node 2 joins from the older
 * snapshot, is trusted, but node 0's replication never reaches it (its published node-to-node
 * address is a proxy the test keeps shut); node 0 is killed and the proxy opened. Node 1 must
 * be elected with node 2's vote, and node 2 must follow it and catch up.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { Network, waitFor, type NetNode } from "../helpers/network.js";
import { asn1Now } from "../../src/cli/commands/node-replace.js";

/** A TCP proxy to `target` that drops every connection until opened. */
async function gate(target: number): Promise<{ port: number; open(): void; close(): void }> {
  let open = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    if (!open) {
      inbound.destroy();
      return;
    }
    const outbound = connect(target, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    open: () => (open = true),
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
    },
  };
}

async function trustPending(net: Network, via: NetNode): Promise<string> {
  const id = await waitFor("a Pending joiner", 30_000, async () => {
    const reply = await net.get(via, "/node/network/nodes?status=Pending");
    return (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes[0]?.node_id;
  });
  const args = { node_id: id, valid_from: asn1Now() };
  await net.pass(via, [{ name: "transition_node_to_trusted", args }]);
  return id;
}

async function configNodes(net: Network, node: NetNode): Promise<string[]> {
  const reply = await net.get(node, "/node/consensus");
  const details = JSON.parse(reply.body) as { details: { configs: { nodes: object }[] } };
  return Object.keys(details.details.configs.at(-1)!.nodes);
}

test("a snapshot joiner follows a newer primary its snapshot does not list", async (t) => {
  const net = await Network.start(1, { electionTimeoutMs: 1000 });
  let proxy: Awaited<ReturnType<typeof gate>> | null = null;
  t.after(async () => {
    proxy?.close();
    await net.stop();
  });
  const n0 = net.nodes[0]!;
  for (let i = 0; i < 3; i++) await net.write(n0, i, `record ${i}`);
  await net.pass(n0, [{ name: "trigger_snapshot", args: {} }]);
  const snapshots = join(net.dirOf(0), "0.snapshots");
  const name = await waitFor("a committed snapshot", 20_000, async () => {
    await net.write(n0, 100, "keep signing");
    return readdirSync(snapshots).find((f) => f.endsWith(".committed"));
  });
  const snapshotSeqno = Number(/^snapshot_(\d+)_/.exec(name)![1]);

  // Node 1 joins after the snapshot was taken.
  const n1 = net.spawnJoiner(n0);
  n1.id = await trustPending(net, n0);
  await waitFor("node 1 serving record 2", 30_000, async () =>
    (await net.read(n1, 2).catch(() => null))?.status === 200 ? true : undefined,
  );
  for (let i = 3; i < 5; i++) await net.waitCommitted(n0, await net.write(n0, i, `record ${i}`));

  // Node 2 joins from that snapshot, which does not list node 1; nothing reaches it over
  // node-to-node until node 0 is gone.
  const index = net.nodes.length;
  proxy = await gate(net.basePort + index + 100);
  mkdirSync(join(net.dirOf(index), `${index}.snapshots`), { recursive: true });
  copyFileSync(join(snapshots, name), join(net.dirOf(index), `${index}.snapshots`, name));
  const n2 = net.spawnJoiner(n0, {
    n2nInterface: { published_address: `127.0.0.1:${proxy.port}` },
  });
  n2.id = await trustPending(net, n0);
  await waitFor("node 1 in a configuration with node 2", 20_000, async () =>
    (await configNodes(net, n1)).includes(n2.id) ? true : undefined,
  );
  await waitFor("node 2 part of the network", 30_000, async () => {
    const reply = await net.get(n2, "/node/state").catch(() => null);
    if (reply?.status !== 200) return undefined;
    const state = JSON.parse(reply.body) as { state: string; startup_seqno: number };
    return state.state === "PartOfNetwork" ? state : undefined;
  }).then((state) => assert.equal(state.startup_seqno, snapshotSeqno, "joined from the snapshot"));
  assert.notEqual((await net.read(n2, 4)).status, 200, "node 2 has not caught up");

  net.kill(n0);
  proxy.open();
  const primary = await net.primary(30_000);
  assert.equal(primary.id, n1.id, "node 1 leads, with node 2's vote");
  // Commit in [n0, n1, n2] needs node 2 now: it follows node 1 and catches up.
  const txId = await net.write(n1, 7, "after the failover");
  await net.waitCommitted(n1, txId, 30_000);
  await waitFor("node 2 serving the new record", 30_000, async () =>
    (await net.read(n2, 7).catch(() => null))?.status === 200 ? true : undefined,
  );
  for (let i = 0; i < 5; i++) assert.equal((await net.read(n2, i)).status, 200, `record ${i}`);
  const reply = await net.get(n2, "/node/network/nodes/primary");
  assert.equal((JSON.parse(reply.body) as { node_id: string }).node_id, n1.id);
  assert.doesNotMatch(net.logOf(n2), new RegExp(`refused inbound ${n1.id}`));
});
