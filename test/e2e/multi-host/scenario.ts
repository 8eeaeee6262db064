/**
 * The multi-host scenario, run by test/e2e/multi-host.test.ts on the "client" host (inside its
 * network namespace, where every host's name resolves through /etc/hosts). Everything goes
 * through what an operator uses: `consortia config init` writes each node's config, `consortia
 * node` runs it on its own host (namespace), `consortia gov` does the governance, and users call
 * the app over mTLS by host name. Every host listens on the same ports, as real hosts do.
 *
 * Steps (each prints a line; any failure exits 1 with the reason):
 *  1. n0 starts the service, published by name; n1 joins through n0's name (service Opening).
 *  2. member0 acks, opens the service and adds user0 (`consortia gov`).
 *  3. n2, published by its IPv6 address, joins the open service, waits Pending, and is trusted
 *     by a transition_node_to_trusted proposal.
 *  4. user0 writes through each node (backups forward); each write commits and reads back on
 *     every node.
 *  5. a backup's link is cut: the others keep committing; the cut node is unreachable.
 *  6. the link returns: the cut node catches up with every write made while it was cut.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { asn1Now } from "../../../src/cli/commands/node-replace.js";
import { runCliAsync } from "../../helpers/cli.js";
import {
  getFrom,
  startHostNode,
  stopHostNode,
  waitForState,
  type HostNode,
} from "../../helpers/host-nodes.js";
import { httpsRequest, type Tls } from "../../helpers/https.js";
import { waitFor } from "../../helpers/network.js";
import { Hosts, type HostsDescription } from "../../helpers/netns.js";

const RPC_PORT = 8000;
/** How long the link stays cut, and the bound on catching up once it returns. */
const CUT_MS = 27_000;
const CATCH_UP_MS = 12_000;
const NODE_PORT = 8001;
const net = Hosts.attach(JSON.parse(process.env["CONSORTIA_HOSTS"]!) as HostsDescription);
const root = mkdtempSync(join(process.env["CONSORTIA_SCENARIO_DIR"]!, "run-"));
const serviceCertFile = join(root, "service_cert.pem");
const nodes: HostNode[] = [];

const step = (text: string) => console.log(`step: ${text} (${new Date().toISOString()})`);

/** `consortia keygen` into the run's directory, as an operator makes identities. */
async function identity(name: string, withEncryption: boolean): Promise<Tls> {
  const args = ["keygen", "--name", name, "--out", root];
  const run = await runCliAsync(withEncryption ? [...args, "--gen-enc-key"] : args);
  assert.equal(run.status, 0, `consortia keygen ${name}: ${run.stderr}`);
  const read = (file: string) => readFileSync(join(root, file), "utf8");
  return { ca: "", cert: read(`${name}_cert.pem`), key: read(`${name}_privk.pem`) };
}

/** Starts `name`'s node on its own host, publishing `published` (its name or an address). */
function start(name: string, published: string, args: readonly string[]): Promise<HostNode> {
  const host = net.host(name);
  return startHostNode({
    name,
    dir: join(root, name),
    host: published,
    rpcPort: RPC_PORT,
    nodePort: NODE_PORT,
    args: [...args, "--service-cert", serviceCertFile],
    prefix: ["ip", "netns", "exec", host.ns],
  });
}

/** `consortia gov ...` as member0 against `node`; the parsed JSON it prints. */
async function gov(node: HostNode, args: readonly string[]): Promise<any> {
  const run = await runCliAsync([
    "gov",
    ...args,
    ...["--node", node.url, "--cacert", serviceCertFile],
    ...["--cert", join(root, "member0_cert.pem"), "--key", join(root, "member0_privk.pem")],
  ]);
  assert.equal(run.status, 0, `consortia gov ${args.join(" ")}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** Proposes one action and votes for it when it is still open; returns the final state. */
async function pass(node: HostNode, action: string, args: object): Promise<string> {
  const proposal = await gov(node, ["propose", "--action", action, "--args", JSON.stringify(args)]);
  const id = proposal.proposalId ?? proposal.proposal_id;
  let state = proposal.proposalState ?? proposal.proposal_state;
  if (state === "Open") {
    const voted = await gov(node, ["vote", "--proposal-id", id, "--accept"]);
    state = voted.proposalState ?? voted.proposal_state;
  }
  return state;
}

let user: Tls;

/** Whether a TCP connection to `node`'s RPC address opens within `timeoutMs`. */
function reachable(node: HostNode, timeoutMs: number): Promise<boolean> {
  const url = new URL(node.url);
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port) });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** user0 writes `msg` under `id` through `node`; returns the write's seqno once committed. */
async function write(node: HostNode, id: number, msg: string): Promise<number> {
  // A node that just joined opens its app frontend once it has caught up with the open service.
  const reply = await waitFor(`${node.name} takes writes`, 20_000, async () => {
    const r = await httpsRequest(
      `${node.url}/app/log/private`,
      user,
      "POST",
      JSON.stringify({ id, msg }),
    );
    return r.status === 404 && r.body.includes("FrontendNotOpen") ? undefined : r;
  });
  assert.equal(reply.status, 200, `write through ${node.name}: ${reply.status} ${reply.body}`);
  const txId = String(reply.headers["x-ms-ccf-transaction-id"]);
  await waitFor(`${txId} committed`, 20_000, async () => {
    const status = await httpsRequest(`${node.url}/app/tx?transaction_id=${txId}`, user, "GET");
    return JSON.parse(status.body).status === "Committed" ? true : undefined;
  });
  return Number(txId.split(".")[1]);
}

/** Waits until `node` serves `msg` for `id` (a local read: it has applied the write). */
function readBack(node: HostNode, id: number, msg: string, timeoutMs = 20_000) {
  return waitFor(`${node.name} serves id ${id}`, timeoutMs, async () => {
    const reply = await httpsRequest(`${node.url}/app/log/private?id=${id}`, user, "GET");
    return reply.status === 200 && JSON.parse(reply.body).msg === msg ? true : undefined;
  });
}

async function scenario(): Promise<void> {
  await identity("member0", true);
  user = await identity("user0", false);
  const member = `${join(root, "member0_cert.pem")},${join(root, "member0_enc_pubk.pem")}`;

  step("n0 starts the service, published as its host name; n1 joins through that name");
  const [n0, n1, n2] = ["n0", "n1", "n2"].map((n) => net.host(n));
  nodes.push(await start("n0", n0!.fqdn, ["--start", "--member", member]));
  await waitFor("service certificate", 60_000, async () =>
    readFileSync(serviceCertFile, "utf8").includes("BEGIN CERTIFICATE") ? true : undefined,
  );
  const ca = readFileSync(serviceCertFile, "utf8");
  user = { ...user, ca };
  await waitForState(nodes[0]!, ca, "PartOfNetwork");
  nodes.push(await start("n1", n1!.fqdn, ["--join", "--peer", nodes[0]!.url]));
  await waitForState(nodes[1]!, ca, "PartOfNetwork");

  step("member0 acks, opens the service and adds user0 (consortia gov)");
  await gov(nodes[0]!, ["ack"]);
  const open = { next_service_identity: ca };
  assert.equal(await pass(nodes[0]!, "transition_service_to_open", open), "Accepted");
  assert.equal(await pass(nodes[0]!, "set_user", { cert: user.cert }), "Accepted");

  step(`n2 joins the open service published as its IPv6 address [${n2!.ipv6}] and is trusted`);
  nodes.push(await start("n2", n2!.ipv6, ["--join", "--peer", `https://${n0!.fqdn}:${RPC_PORT}`]));
  // A joiner serves its self-signed certificate until it is trusted: ask the primary instead.
  const published = `[${n2!.ipv6}]:${RPC_PORT}`;
  const pending = await waitFor("n2 Pending in the nodes table", 60_000, async () => {
    const reply = await getFrom(nodes[0]!, ca, "/node/network/nodes?status=Pending");
    return (JSON.parse(reply.body).nodes as any[]).find(
      (n) => n.rpc_interfaces?.primary_rpc_interface?.published_address === published,
    );
  });
  const trust = { node_id: pending.node_id, valid_from: asn1Now() };
  assert.equal(await pass(nodes[0]!, "transition_node_to_trusted", trust), "Accepted");
  await waitForState(nodes[2]!, ca, "PartOfNetwork");

  step("user0 writes through each node; every write commits and reads back everywhere");
  for (const [i, node] of nodes.entries()) await write(node, i, `via ${node.name}`);
  for (const node of nodes) {
    for (const [i, via] of nodes.entries()) await readBack(node, i, `via ${via.name}`);
  }

  const primaryId = JSON.parse((await getFrom(nodes[0]!, ca, "/node/network/nodes/primary")).body)
    .node_id as string;
  const ids = await Promise.all(
    nodes.map(async (n) => JSON.parse((await getFrom(n, ca, "/node/network/nodes/self")).body)),
  );
  const primary = nodes[ids.findIndex((s) => s.node_id === primaryId)]!;
  const cut =
    nodes.find((n) => n !== primary && n.name === "n2") ?? nodes.find((n) => n !== primary)!;
  step(`${cut.name}'s link is cut: the other two keep committing (primary ${primary.name})`);
  net.cut(cut.name);
  const cutAt = Date.now();
  assert.equal(await reachable(cut, 2000), false, `${cut.name} is still reachable`);
  for (let i = 10; i < 15; i++) await write(primary, i, `while ${cut.name} was cut`);
  // A long cut: connections that outlive it sit in TCP's retransmission backoff (about 25 s
  // between tries by then), so a node that relied on them would catch up far later than below.
  await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (Date.now() - cutAt))));

  step(`${cut.name}'s link returns: it catches up with every write made meanwhile`);
  net.heal(cut.name);
  const healedAt = Date.now();
  for (let i = 10; i < 15; i++) await readBack(cut, i, `while ${cut.name} was cut`, CATCH_UP_MS);
  console.log(`  ${cut.name} caught up ${Date.now() - healedAt} ms after the link returned`);
  step("done");
}

try {
  await scenario();
} catch (err: unknown) {
  console.error(
    `scenario failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  for (const node of nodes) {
    console.error(`--- ${node.name} log (last 30 lines)`);
    console.error(readFileSync(join(node.dir, "out"), "utf8").split("\n").slice(-30).join("\n"));
  }
  process.exitCode = 1;
} finally {
  for (const host of net.hosts) net.heal(host.name);
  await Promise.all(nodes.map(stopHostNode));
}
