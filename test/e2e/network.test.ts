/**
 * End-to-end with real node processes (issue #4 item 6): a 4-node sandbox, then, in order,
 * each step checked on the live network:
 *   1. writes to the primary and, forwarded, through a backup commit on every node;
 *   2. a backup is SIGKILLed: writes go on;                                   (checklist B2-ish)
 *   3. governance removes the dead node (remove_node -> Retired, out of the configuration); the
 *      primary records retired_committed, the node is listed removable and then deleted;
 *   4. a fifth node joins the open service through a backup (308 to the primary), is Pending,
 *      becomes Trusted by proposal, catches up and serves every committed record;        (E1)
 *      Then governance withdraws the service's host data and a new joiner is refused (H1);
 *   5. governance retires the primary: it hands over, a new primary takes writes;        (E2)
 *   6. the primary is isolated (SIGSTOP): a new one is elected, takes writes; the old one,
 *      resumed, follows the new view and catches up;                                     (D2)
 *   7. the primary is SIGKILLed: a new one is elected within a few election timeouts, the view
 *      only grows, and every transaction reported Committed before is readable on every
 *      surviving node.                                                              (B1, F1)
 *   8. the survivors' committed ledger chunks are byte-identical and `consortia ledger verify`
 *      accepts each ledger (every signature, Merkle root and chunk boundary).            (A2)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Agent } from "node:https";
import { asn1Now } from "../../src/cli/commands/node-replace.js";
import { runCli } from "../helpers/cli.js";
import { Network, waitFor, type NetNode } from "../helpers/network.js";

const ELECTION_MS = 1000;

interface Committed {
  readonly id: number;
  readonly msg: string;
}

async function view(net: Network, node: NetNode): Promise<number> {
  const reply = await net.get(node, "/node/consensus");
  return (JSON.parse(reply.body) as { details: { current_view: number } }).details.current_view;
}

async function configNodes(net: Network, node: NetNode): Promise<string[]> {
  const reply = await net.get(node, "/node/consensus");
  const details = JSON.parse(reply.body) as { details: { configs: { nodes: object }[] } };
  return Object.keys(details.details.configs.at(-1)!.nodes).sort();
}

test("a replicated network survives crashes, reconfigures and elects", async (t) => {
  const net = await Network.start(4, { electionTimeoutMs: ELECTION_MS });
  t.after(() => net.stop());
  const serviceCert = join(net.workspace, "sandbox_common", "service_cert.pem");
  const committed: Committed[] = [];
  let nextId = 1;
  const writeAndCommit = async (via: NetNode, check: NetNode, count: number) => {
    for (let i = 0; i < count; i++) {
      const record = { id: nextId++, msg: `record ${nextId} via node ${via.index}` };
      const txId = await net.write(via, record.id, record.msg);
      await net.waitCommitted(check, txId);
      committed.push(record);
    }
  };
  const expectAllReadable = async (nodes: NetNode[]) => {
    for (const node of nodes) {
      // A backup serves reads locally: wait until it has caught up with the last record.
      await waitFor(`node ${node.index} caught up`, 20_000, async () => {
        const last = committed.at(-1)!;
        const reply = await net.read(node, last.id);
        return reply.status === 200 ? true : undefined;
      });
      for (const record of committed) {
        const reply = await net.read(node, record.id);
        assert.equal(reply.status, 200, `record ${record.id} on node ${node.index}`);
        assert.deepEqual(JSON.parse(reply.body), { msg: record.msg });
      }
    }
  };

  let primary = await net.primary();
  const backups = () => net.alive().filter((n) => n.id !== primary.id);

  await t.test("writes through the primary and through a backup commit everywhere", async () => {
    await writeAndCommit(primary, primary, 5);
    await writeAndCommit(backups()[0]!, primary, 5);
    await expectAllReadable(net.alive());
  });

  await t.test("a governance write through a backup is forwarded before it runs", async () => {
    // A proposal the constitution refuses writes nothing: a backup that ran it first would
    // answer by itself. Like CCF, it forwards every governance write, so the primary's state
    // decides (an ack right after a digest update must not meet the backup's older digest).
    const backup = backups()[0]!;
    const stats = async (node: NetNode): Promise<{ forwarded: number; served: number }> =>
      (JSON.parse((await net.get(node, "/node/metrics")).body) as { forwarding: never }).forwarding;
    const [before, servedBefore] = [await stats(backup), await stats(primary)];
    const gov = net.gov(backup);
    try {
      await assert.rejects(gov.propose([{ name: "no_such_action", args: {} }], net.members[0]));
    } finally {
      gov.close();
    }
    const [after, servedAfter] = [await stats(backup), await stats(primary)];
    assert.equal(after.forwarded, before.forwarded + 1, "the backup forwarded the proposal");
    assert.equal(servedAfter.served, servedBefore.served + 1, "the primary ran it");
  });

  await t.test("a connection that wrote through a backup reads on the primary", async () => {
    // CCF's sessions: once a connection had a request forwarded, its requests to endpoints
    // marked ForwardingRequired::Sometimes (app endpoints) are forwarded too, so the client
    // reads its own write at once; /node endpoints (Never) and other connections stay local.
    const backup = backups()[0]!;
    const forwarded = async () =>
      (JSON.parse((await net.get(backup, "/node/metrics")).body) as { forwarding: never })
        .forwarding["forwarded"] as number;
    const session = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const read = () => net.call(backup, "GET", "/app/log/private?id=7001", undefined, session);
      const start = await forwarded();
      await read();
      assert.equal(await forwarded(), start, "a fresh connection's read runs on the backup");
      const body = { id: 7001, msg: "mine" };
      const written = await net.call(backup, "POST", "/app/log/private", body, session);
      assert.equal(written.status, 200, written.body);
      assert.equal(await forwarded(), start + 1, "the write is forwarded");
      const reply = await read();
      assert.equal(reply.status, 200, reply.body);
      assert.deepEqual(JSON.parse(reply.body), { msg: "mine" });
      assert.equal(await forwarded(), start + 2, "the same connection's read is forwarded");
      await net.call(backup, "GET", "/node/commit", undefined, session);
      await net.read(backup, 7001);
      assert.equal(await forwarded(), start + 2, "/node and other connections stay local");
    } finally {
      session.destroy();
    }
  });

  await t.test(
    "after trigger_ledger_rekey every node reads records sealed with the new secret",
    async () => {
      await net.pass(primary, [{ name: "trigger_ledger_rekey", args: {} }]);
      await writeAndCommit(primary, primary, 3);
      await writeAndCommit(backups()[0]!, primary, 2);
      await expectAllReadable(net.alive());
      const out = readFileSync(
        join(net.workspace, `sandbox_${backups()[0]!.index}`, "out"),
        "utf8",
      );
      assert.match(out, /ledger rekeyed at \d+/);
    },
  );

  const dead = backups()[0]!;
  await t.test("a killed backup does not stop writes", async () => {
    net.kill(dead);
    await writeAndCommit(primary, primary, 3);
  });

  await t.test("governance removes the dead node from the configuration", async () => {
    await net.pass(primary, [{ name: "remove_node", args: { node_id: dead.id } }]);
    await waitFor("the configuration without the dead node", 10_000, async () =>
      (await configNodes(net, primary)).includes(dead.id) ? undefined : true,
    );
    const info = JSON.parse((await net.get(primary, `/node/network/nodes/${dead.id}`)).body) as {
      status: string;
    };
    assert.equal(info.status, "Retired");
    await writeAndCommit(primary, primary, 2);
    // The primary records retired_committed; the node may then be deleted (through a backup,
    // which forwards the write). A Trusted node may not.
    const backup = backups()[0]!;
    await waitFor("the dead node listed as removable", 10_000, async () => {
      const reply = await net.get(backup, "/node/network/removable_nodes");
      const nodes = (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes;
      return nodes.some((n) => n.node_id === dead.id) ? true : undefined;
    });
    const refused = await net.call(backup, "DELETE", `/node/network/nodes/${primary.id}`);
    assert.equal(refused.status, 400, refused.body);
    assert.match(refused.body, /NodeNotRetiredCommitted/);
    const deleted = await net.call(backup, "DELETE", `/node/network/nodes/${dead.id}`);
    assert.equal(deleted.status, 200, deleted.body);
    await waitFor("the deleted node gone", 10_000, async () =>
      (await net.get(primary, `/node/network/nodes/${dead.id}`)).status === 404 ? true : undefined,
    );
    const head = await net.call(backup, "HEAD", "/node/primary");
    assert.equal(head.status, 308);
    assert.equal(head.headers["location"], `https://127.0.0.1:${primary.port}/node/primary`);
  });

  await t.test("a new node joins the open service by proposal and catches up", async () => {
    const joiner = net.spawnJoiner(backups()[0]!); // a backup answers 308 to the primary
    const pendingId = await waitFor("a Pending node", 30_000, async () => {
      const reply = await net.get(primary, "/node/network/nodes?status=Pending");
      const nodes = (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes;
      return nodes[0]?.node_id;
    });
    joiner.id = pendingId;
    // While Pending, the joiner answers /node/state itself (with its self-signed certificate).
    assert.equal(await waitFor("the joiner's state", 10_000, () => net.stateOf(joiner)), "Pending");
    await net.pass(primary, [
      { name: "transition_node_to_trusted", args: { node_id: pendingId, valid_from: asn1Now() } },
    ]);
    await waitFor("the joiner in the configuration", 20_000, async () =>
      (await configNodes(net, primary)).includes(pendingId) ? true : undefined,
    );
    await writeAndCommit(primary, primary, 2);
    await expectAllReadable([joiner]);
    const self = JSON.parse((await net.get(joiner, "/node/network/nodes/self")).body) as {
      node_id: string;
      status: string;
    };
    assert.deepEqual(self, { ...self, node_id: pendingId, status: "Trusted" });
  });

  await t.test("a node whose host data governance withdrew is refused (H1)", async () => {
    const quote = JSON.parse((await net.get(primary, "/node/quotes/self")).body) as { raw: string };
    const hostData = (
      JSON.parse(Buffer.from(quote.raw, "base64").toString()) as {
        host_data: string;
      }
    ).host_data;
    await net.pass(primary, [{ name: "remove_virtual_host_data", args: { host_data: hostData } }]);
    const refused = net.spawnJoiner(primary);
    const child = net.extra.at(-1)!;
    const code = await new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once("exit", (c) => resolve(c));
    });
    refused.killed = true;
    assert.equal(code, 1, "the refused joiner exits with an error");
    const err = readFileSync(join(net.workspace, `sandbox_${refused.index}`, "err"), "utf8");
    assert.match(err, /401 InvalidQuote: .*host data/);
    await net.pass(primary, [{ name: "add_virtual_host_data", args: { host_data: hostData } }]);
  });

  await t.test("retiring the primary hands over to a new primary", async () => {
    const old = primary;
    const viewBefore = await view(net, old);
    await net.pass(old, [{ name: "remove_node", args: { node_id: old.id } }]);
    primary = await waitFor("a new primary", 10 * ELECTION_MS, async () => {
      const p = await net.primary();
      return p.id === old.id ? undefined : p;
    });
    assert.ok((await view(net, primary)) > viewBefore);
    assert.ok(!(await configNodes(net, primary)).includes(old.id));
    const phase = await waitFor("the old primary's retirement recorded", 10_000, async () => {
      const d = JSON.parse((await net.get(old, "/node/consensus")).body) as {
        details: { membership_state: string; retirement_phase?: string };
      };
      const { membership_state: state, retirement_phase: p } = d.details;
      // It learns its removal committed; the primary records retired_committed later, in a
      // transaction it no longer replicates to the retired node.
      const done = p === "Completed" || p === "RetiredCommitted";
      return state === "Retired" && done ? p : undefined;
    });
    assert.ok(phase !== undefined);
    net.kill(old); // retired: it is no longer part of the service
    await writeAndCommit(primary, primary, 2);
    await writeAndCommit(backups()[0]!, primary, 1);
  });

  await t.test("an isolated primary is replaced and catches up when it returns", async () => {
    const isolated = primary;
    const viewBefore = await view(net, isolated);
    process.kill(isolated.pid, "SIGSTOP");
    try {
      const others = net.alive().filter((n) => n.id !== isolated.id);
      primary = await waitFor("a primary among the others", 15 * ELECTION_MS, async () => {
        for (const node of others) {
          if ((await net.get(node, "/node/primary").catch(() => null))?.status === 200) {
            return node;
          }
        }
        return undefined;
      });
      await writeAndCommit(primary, primary, 3);
    } finally {
      process.kill(isolated.pid, "SIGCONT");
    }
    await waitFor("the old primary following the new view", 15 * ELECTION_MS, async () => {
      const v = await view(net, isolated);
      const isBackup = (await net.get(isolated, "/node/backup")).status === 200;
      return v > viewBefore && isBackup ? true : undefined;
    });
    await expectAllReadable(net.alive());
  });

  await t.test("a killed primary is replaced within a few election timeouts", async () => {
    const victim = primary;
    const viewBefore = await view(net, victim);
    net.kill(victim);
    const killedAt = Date.now();
    const survivors = net.alive();
    assert.equal(survivors.length, 2);
    let txId = "";
    await waitFor("a write accepted after the kill", 10 * ELECTION_MS, async () => {
      for (const node of survivors) {
        const reply = await net.call(node, "POST", "/app/log/private", {
          id: nextId,
          msg: "after the kill",
        });
        if (reply.status === 200) {
          txId = String(reply.headers["x-ms-ccf-transaction-id"]);
          return true;
        }
      }
      return undefined;
    });
    const elapsed = Date.now() - killedAt;
    t.diagnostic(`first write accepted ${elapsed} ms after killing the primary`);
    committed.push({ id: nextId++, msg: "after the kill" });
    primary = await net.primary();
    await net.waitCommitted(primary, txId);
    assert.ok((await view(net, primary)) > viewBefore, "the view only grows");
    await expectAllReadable(survivors);
  });

  await t.test("committed ledger chunks are identical on every node and verify (A2)", async () => {
    // Close the current chunk at the next signature, then commit past it.
    await net.pass(primary, [{ name: "trigger_ledger_chunk", args: {} }]);
    await writeAndCommit(primary, primary, 2);
    await expectAllReadable(net.alive());
    const chunks = (node: NetNode) => {
      const dir = join(net.workspace, `sandbox_${node.index}`, `${node.index}.ledger`);
      const files = readdirSync(dir).filter((f) => f.endsWith(".committed"));
      return { dir, files: new Set(files) };
    };
    const [a, b] = net.alive().map(chunks);
    assert.ok(a !== undefined && b !== undefined);
    const common = [...a.files].filter((f) => b.files.has(f));
    assert.ok(common.length > 0, "the survivors share committed chunks");
    for (const f of common) {
      const same = readFileSync(join(a.dir, f)).equals(readFileSync(join(b.dir, f)));
      assert.ok(same, `${f} differs between nodes`);
    }
    for (const { dir } of [a, b]) {
      const run = runCli(["ledger", "verify", "--dir", dir, "--service-cert", serviceCert]);
      assert.equal(run.status, 0, `ledger verify ${dir}:\n${run.stdout}\n${run.stderr}`);
    }
  });
});
