/**
 * The multi-host scenario, run by test/e2e/multi-host.test.ts on the "client" host (inside its
 * network namespace, where every host's name resolves through /etc/hosts). Its first half is the
 * operator's guide: the blocks of docs/operating.md's "Deploying a service over three machines"
 * run as written (multi-host/guide.ts), each on its own host and in that host's directory, with
 * the files the guide says to copy copied between those directories. Every host listens on the
 * same ports, as real hosts do.
 *
 * Steps (each prints a line; any failure exits 1 with the reason):
 *  1. member0 and user0 make their identities (client).
 *  2. n0 starts the service, published as n0.example.com; n1 joins through that name.
 *  3. member0 acks, opens the service and adds user0 (consortia gov, from the client).
 *  4. n2, published by its IPv6 address, joins the open service, waits Pending, and is trusted.
 *  5. user0 writes with curl through n1 and waits for its commit.
 *  6. user0 writes through each node (backups forward); each write commits and reads back on
 *     every node.
 *  7. a backup's link is cut: the others keep committing; the cut node is unreachable.
 *  8. the link returns: the cut node catches up with every write made while it was cut.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { isProcessRunning } from "../../../src/cli/process-state.js";
import { httpsRequest, type Reply, type Tls } from "../../helpers/https.js";
import { waitFor } from "../../helpers/network.js";
import { waitForState } from "../../helpers/host-nodes.js";
import { Hosts, type HostsDescription } from "../../helpers/netns.js";
import {
  copyFiles,
  GUIDE_FILE,
  guideBlocks,
  runBlock,
  shimPids,
  writeShim,
  type GuideBlock,
} from "./guide.js";

const RPC_PORT = 8000;
/** How long the link stays cut, and the bound on catching up once it returns. */
const CUT_MS = 27_000;
const CATCH_UP_MS = 12_000;
const net = Hosts.attach(JSON.parse(process.env["CONSORTIA_HOSTS"]!) as HostsDescription);
const root = mkdtempSync(join(process.env["CONSORTIA_SCENARIO_DIR"]!, "run-"));
const bin = writeShim(join(root, "bin"));
/** The guide's hosts: the three nodes' and the client machine (members and users). */
const HOSTS = ["client", "n0", "n1", "n2", "n3"] as const;
/** The hosts of the guide's marked blocks, in order: the scenario knows what each one does. */
const GUIDE_HOSTS = ["client", "n0", "n1", "client", "n2", "client", "client", "n3", "client"];
const hostDir = (host: string) => join(root, host);

/** A node the guide started: its directory (beside its config) and published RPC URL. */
interface GuideNode {
  readonly name: string;
  readonly dir: string;
  readonly url: string;
}

const nodes: GuideNode[] = [];
let ca = "";
let user: Tls;

const step = (text: string) => console.log(`step: ${text} (${new Date().toISOString()})`);

/** Variable and function definitions of a block (not assignments that run commands). */
function definitions(block: GuideBlock): string[] {
  const defines = /^[A-Za-z_][A-Za-z0-9_]*(=|\(\) \{)/;
  return block.code.split("\n").filter((line) => defines.test(line) && !line.includes("$("));
}

/** Runs the guide's block `i` on its host, after its host's earlier blocks' definitions. */
async function runGuide(blocks: readonly GuideBlock[], i: number): Promise<string> {
  const block = blocks[i]!;
  const earlier = blocks.slice(0, i).filter((b) => b.host === block.host);
  const code = [...earlier.flatMap(definitions), block.code].join("\n");
  const run = await runBlock(net, { ...block, code }, hostDir(block.host), bin);
  const shown = run.stdout.endsWith("\n") ? run.stdout : `${run.stdout}\n`;
  process.stdout.write(shown.replace(/^(?=.)/gm, `  ${block.host}$ `));
  return run.stdout;
}

function get(node: GuideNode, path: string, tls: Tls = { ca }): Promise<Reply> {
  return httpsRequest(`${node.url}${path}`, tls, "GET");
}

/** A node the guide started on `host`, published as `published` (host:port form). */
function guideNode(host: string, published: string): GuideNode {
  const node = { name: host, dir: join(hostDir(host), host), url: `https://${published}` };
  nodes.push(node);
  return node;
}

/** Whether a TCP connection to `node`'s RPC address opens within `timeoutMs`. */
function reachable(node: GuideNode, timeoutMs: number): Promise<boolean> {
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
async function write(node: GuideNode, id: number, msg: string): Promise<number> {
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
    const status = await get(node, `/app/tx?transaction_id=${txId}`, user);
    return JSON.parse(status.body).status === "Committed" ? true : undefined;
  });
  return Number(txId.split(".")[1]);
}

/** Waits until `node` serves `msg` for `id` (a local read: it has applied the write). */
function readBack(node: GuideNode, id: number, msg: string, timeoutMs = 20_000) {
  return waitFor(`${node.name} serves id ${id}`, timeoutMs, async () => {
    const reply = await get(node, `/app/log/private?id=${id}`, user);
    return reply.status === 200 && JSON.parse(reply.body).msg === msg ? true : undefined;
  });
}

/** Steps 1-5: the guide's blocks, with the copies and waits between them that it describes. */
async function deployByTheGuide(blocks: readonly GuideBlock[]): Promise<void> {
  for (const host of HOSTS) mkdirSync(hostDir(host), { recursive: true });

  step("the guide, 1: member0 and user0 make their identities");
  await runGuide(blocks, 0);
  const read = (file: string) => readFileSync(join(hostDir("client"), file), "utf8");
  user = { ca: "", cert: read("user0_cert.pem"), key: read("user0_privk.pem") };

  step("the guide, 2-3: n0 starts the service as n0.example.com; n1 joins through that name");
  copyFiles(hostDir("client"), hostDir("n0"), ["member0_cert.pem", "member0_enc_pubk.pem"]);
  await runGuide(blocks, 1);
  const n0 = guideNode("n0", `${net.host("n0").fqdn}:${RPC_PORT}`);
  const serviceCert = join(n0.dir, "service_cert.pem");
  await waitFor("n0's service_cert.pem", 60_000, async () =>
    existsSync(serviceCert) && readFileSync(serviceCert, "utf8").includes("BEGIN CERTIFICATE")
      ? true
      : undefined,
  );
  ca = readFileSync(serviceCert, "utf8");
  user = { ...user, ca };
  await waitForState(n0, ca, "PartOfNetwork");
  for (const host of ["n1", "n2", "n3", "client"])
    copyFiles(n0.dir, hostDir(host), ["service_cert.pem"]);
  await runGuide(blocks, 2);
  await waitForState(guideNode("n1", `${net.host("n1").fqdn}:${RPC_PORT}`), ca, "PartOfNetwork");

  step("the guide, 4: member0 acks, opens the service and adds user0");
  const governed = await runGuide(blocks, 3);
  assert.ok((governed.match(/Accepted/g)?.length ?? 0) >= 2, "both proposals Accepted");

  step(`the guide, 5: n2 joins as its IPv6 address [${net.host("n2").ipv6}], and is trusted`);
  await runGuide(blocks, 4);
  const n2 = guideNode("n2", `[${net.host("n2").ipv6}]:${RPC_PORT}`);
  // The member's block reads the Pending node from the nodes table: wait until it is there.
  await waitFor("n2 Pending in the nodes table", 60_000, async () => {
    const reply = await get(n0, "/node/network/nodes?status=Pending");
    return (JSON.parse(reply.body).nodes as any[]).find(
      (n) => n.rpc_interfaces?.primary_rpc_interface?.published_address === new URL(n2.url).host,
    );
  });
  await runGuide(blocks, 5);
  await waitForState(n2, ca, "PartOfNetwork");

  step("the guide, 6: user0 writes with curl through n1 and waits for its commit");
  assert.match(await runGuide(blocks, 6), /"msg":\s*"hello"/);
}

/** `signal` (SIGTERM) to each node process, SIGKILL to those still running after 5 s. */
async function stopNodes(pids: readonly number[], signal: NodeJS.Signals = "SIGTERM") {
  for (const pid of pids) if (isProcessRunning(pid)) process.kill(pid, signal);
  const deadline = Date.now() + 5_000;
  while (pids.some(isProcessRunning) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids) if (isProcessRunning(pid)) process.kill(pid, "SIGKILL");
}

/** Step 9: n2's machine is lost for good; n3 replaces it by the guide's two blocks. */
async function replaceByTheGuide(blocks: readonly GuideBlock[]): Promise<void> {
  const [n0, n1, n2] = nodes as [GuideNode, GuideNode, GuideNode];
  step("the guide, replacing a machine: n2 is lost for good; n3 joins and replaces it");
  await stopNodes(shimPids([n2.dir]), "SIGKILL");
  nodes.splice(nodes.indexOf(n2), 1);
  await runGuide(blocks, 7);
  await waitFor("n3 Pending in the nodes table", 60_000, async () => {
    const reply = await get(n0, "/node/network/nodes?host=n3.example.com&status=Pending");
    return (JSON.parse(reply.body).nodes as unknown[])[0];
  });
  const replaced = await runGuide(blocks, 8);
  assert.match(replaced, /^trusted: node \w+ is Trusted and PartOfNetwork/m);
  assert.match(replaced, /^deleted: node \w+ \(tx \d+\.\d+, committed\)/m);
  const n3 = guideNode("n3", `${net.host("n3").fqdn}:${RPC_PORT}`);
  await waitForState(n3, ca, "PartOfNetwork");
  await write(n3, 200, "via n3");
  for (const node of [n0, n1, n3]) await readBack(node, 200, "via n3");
}

async function scenario(): Promise<void> {
  const blocks = guideBlocks(readFileSync(GUIDE_FILE, "utf8"));
  assert.deepEqual(
    blocks.map((b) => b.host),
    GUIDE_HOSTS,
    "the guide's blocks and their hosts",
  );
  await deployByTheGuide(blocks);

  step("user0 writes through each node; every write commits and reads back everywhere");
  for (const [i, node] of nodes.entries()) await write(node, 100 + i, `via ${node.name}`);
  for (const node of nodes) {
    for (const [i, via] of nodes.entries()) await readBack(node, 100 + i, `via ${via.name}`);
  }

  const primaryId = JSON.parse((await get(nodes[0]!, "/node/network/nodes/primary")).body)
    .node_id as string;
  const ids = await Promise.all(
    nodes.map(async (n) => JSON.parse((await get(n, "/node/network/nodes/self")).body)),
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
  await replaceByTheGuide(blocks);
  step("done");
}

try {
  await scenario();
} catch (err: unknown) {
  console.error(
    `scenario failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
  );
  for (const node of nodes) {
    const out = join(node.dir, "out");
    const log = existsSync(out) ? readFileSync(out, "utf8") : "(no output)";
    console.error(`--- ${node.name} log (last 30 lines)`);
    console.error(log.split("\n").slice(-30).join("\n"));
  }
  process.exitCode = 1;
} finally {
  for (const host of net.hosts) net.heal(host.name);
  await stopNodes(shimPids(["n0", "n1", "n2", "n3"].map((n) => join(hostDir(n), n))));
}
