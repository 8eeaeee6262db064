/**
 * End-to-end (issue #15): a node removed from the configuration, its row then deleted, that
 * keeps running. Node-to-node admission can no longer tell it from a node newer than the
 * table, so it is let in (peer-authorization.ts); consensus must keep it from disturbing the
 * network. It never learnt its removal (the primary stops replicating to it at once), so it
 * keeps asking for pre-votes: the primary keeps its view and its writes keep committing.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Network, sleep, waitFor, type NetNode } from "../helpers/network.js";

const ELECTION_MS = 1000;

interface Consensus {
  configs: { nodes: object }[];
  leadership_state: string;
  current_view: number;
  primary_id: string | null;
}

async function consensus(net: Network, node: NetNode): Promise<Consensus> {
  const reply = await net.get(node, "/node/consensus");
  return (JSON.parse(reply.body) as { details: Consensus }).details;
}

test("a removed, deleted node that keeps running does not disturb the network", async (t) => {
  const net = await Network.start(3, { electionTimeoutMs: ELECTION_MS });
  t.after(() => net.stop());
  const primary = await net.primary();
  const [victim, other] = net.nodes.filter((n) => n.id !== primary.id) as [NetNode, NetNode];
  await net.waitCommitted(primary, await net.write(primary, 1, "before"));

  await net.pass(primary, [{ name: "remove_node", args: { node_id: victim.id } }]);
  await waitFor("the removal listed removable (retirement committed)", 20_000, async () => {
    await net.write(primary, 2, "keep signing");
    const reply = await net.get(primary, "/node/network/removable_nodes");
    const nodes = (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes;
    return nodes.some((n) => n.node_id === victim.id) ? true : undefined;
  });
  const deleted = await net.call(primary, "DELETE", `/node/network/nodes/${victim.id}`);
  assert.equal(deleted.status, 200, deleted.body);
  await waitFor("the row gone on every member", 10_000, async () => {
    for (const n of [primary, other]) {
      if ((await net.get(n, `/node/network/nodes/${victim.id}`)).status !== 404) return undefined;
    }
    return true;
  });

  const before = await consensus(net, primary);
  assert.equal(before.leadership_state, "Leader");
  const victimStates = new Set<string>();
  // Six election timeouts: the removed node times out again and again.
  for (let i = 0; i < 12; i++) {
    await net.waitCommitted(primary, await net.write(primary, 10 + i, `during ${i}`));
    victimStates.add((await consensus(net, victim)).leadership_state);
    await sleep(ELECTION_MS / 2);
  }
  assert.ok(victimStates.has("PreVoteCandidate"), `victim: ${[...victimStates].join(", ")}`);
  assert.ok(!victimStates.has("Leader") && !victimStates.has("Candidate"));
  const after = await consensus(net, primary);
  assert.equal(after.leadership_state, "Leader");
  assert.equal(after.current_view, before.current_view, "no election followed");
  const follower = await consensus(net, other);
  assert.equal(follower.primary_id, primary.id);
  assert.equal(follower.current_view, before.current_view);
  // Its messages were admitted (not refused at the channel) and answered.
  for (const n of [primary, other]) {
    assert.doesNotMatch(net.logOf(n), new RegExp(`refused inbound ${victim.id}`));
  }
});
