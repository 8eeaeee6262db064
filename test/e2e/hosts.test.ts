// Nodes on their own addresses (issue #18 item 1), with real processes and real TLS on this
// machine: three nodes whose configs come from `consortia config init`, each binding every
// address (0.0.0.0, or :: for IPv6) and publishing another one: node0 the name `localhost`,
// node1 127.0.0.2, node2 ::1 (or 127.0.0.3 bound alone where this machine has no IPv6 loopback,
// with a message). node1 joins through node0's published name; node2 joins through node1, a
// backup, which redirects it to the primary's published address. The oracles: the nodes table
// as every node serves it lists published addresses (and the bind addresses beside them); each
// node's certificate, read by `openssl x509 -text`, names its published host (and node0's its
// extra --san); clients reach each node by its published address with hostname verification
// against the service certificate, and are refused under a name the certificate does not hold;
// governance writes sent through the backups commit (the service opens) and every node sees it.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GovClient, type MemberSigner } from "../../src/cli/gov-client.js";
import { generateEncryptionKey, generateIdentity } from "../../src/crypto/identity.js";
import { httpsRequest } from "../helpers/https.js";
import { waitFor } from "../helpers/network.js";
import {
  canListenOn,
  freePortOn,
  getFrom,
  hostNodeLog,
  startHostNode,
  stopHostNode,
  waitForState,
  type HostNode,
} from "../helpers/host-nodes.js";

const root = mkdtempSync(join(tmpdir(), "consortia-hosts-"));
const serviceCertFile = join(root, "service_cert.pem");
const nodes: HostNode[] = [];
let member: MemberSigner;
let ca = "";
let ipv6 = false;

interface Plan {
  readonly host: string;
  readonly bind: string;
  /** The bind address the nodes table shows for it. */
  readonly bindShown: string;
  rpcPort: number;
  nodePort: number;
}

const plans: Plan[] = [];

async function plan(host: string, bind: string): Promise<Plan> {
  const rpcPort = await freePortOn(bind);
  const nodePort = await freePortOn(bind);
  const bindHost = bind.includes(":") ? `[${bind}]` : bind;
  return { host, bind, bindShown: bindHost, rpcPort, nodePort };
}

function published(p: Plan, port: number): string {
  return p.host.includes(":") ? `[${p.host}]:${port}` : `${p.host}:${port}`;
}

async function waitForFile(file: string, node: HostNode): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline || node.child.exitCode !== null) {
      assert.fail(`${file} was not written; node log:\n${hostNodeLog(node)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  ipv6 = await canListenOn("::1");
  if (!ipv6) console.log("# no IPv6 loopback here: node2 publishes 127.0.0.3 instead of ::1");
  const id = await generateIdentity({ name: "member0", now: new Date(Date.now() - 60_000) });
  const enc = generateEncryptionKey();
  writeFileSync(join(root, "member0_cert.pem"), id.certPem);
  writeFileSync(join(root, "member0_enc_pubk.pem"), enc.publicKeyPem);
  member = { certPem: id.certPem, keyPem: id.privateKeyPem };
  plans.push(await plan("localhost", "0.0.0.0"));
  plans.push(await plan("127.0.0.2", "0.0.0.0"));
  plans.push(ipv6 ? await plan("::1", "::") : await plan("127.0.0.3", "127.0.0.3"));
  plans.push(await plan("127.0.0.4", "127.0.0.4"));
});

after(async () => {
  await Promise.all(nodes.map(stopHostNode));
  if (process.env["KEEP"] === undefined) rmSync(root, { recursive: true, force: true });
});

/**
 * The node's config inputs. Its ports are picked here, just before it starts: picked ahead (in
 * `before`), another process on the machine could take them meanwhile (EADDRINUSE under CI).
 */
async function spec(index: number, args: readonly string[]) {
  const p = plans[index]!;
  p.rpcPort = await freePortOn(p.bind);
  p.nodePort = await freePortOn(p.bind);
  return {
    name: `node${index}`,
    dir: join(root, `node${index}`),
    host: p.host,
    rpcPort: p.rpcPort,
    nodePort: p.nodePort,
    args: [...args, "--bind", p.bind, "--service-cert", serviceCertFile],
  };
}

test("nodes bound to every address join and serve by their published addresses", async () => {
  const members = `${join(root, "member0_cert.pem")},${join(root, "member0_enc_pubk.pem")}`;
  const start = ["--start", "--member", members, "--san", "dNSName:node0.consortia.test"];
  nodes.push(await startHostNode(await spec(0, start)));
  await waitForFile(serviceCertFile, nodes[0]!);
  ca = readFileSync(serviceCertFile, "utf8");
  await waitForState(nodes[0]!, ca, "PartOfNetwork");

  const viaName = `https://localhost:${plans[0]!.rpcPort}`;
  const join1 = ["--join", "--peer", viaName, "--san", "dNSName:node1.consortia.test"];
  nodes.push(await startHostNode(await spec(1, join1)));
  await waitForState(nodes[1]!, ca, "PartOfNetwork");
  // Through a backup: node1 redirects the join to the primary's published address.
  nodes.push(await startHostNode(await spec(2, ["--join", "--peer", nodes[1]!.url])));
  await waitForState(nodes[2]!, ca, "PartOfNetwork");
  assert.match(hostNodeLog(nodes[2]!), new RegExp(`redirected to localhost:${plans[0]!.rpcPort}`));

  // Every node's nodes table lists every node at its published address, bind address beside it
  // (once it has caught up: a node just joined reads its own, still replicating, state).
  for (const node of nodes) {
    const listed = await waitFor(`${node.url} lists 3 nodes`, 20_000, async () => {
      const reply = await getFrom(node, ca, "/node/network/nodes");
      assert.equal(reply.status, 200, reply.body);
      const all = JSON.parse(reply.body).nodes.map(
        (n: any) => n.rpc_interfaces.primary_rpc_interface,
      );
      return all.length === 3 ? all : undefined;
    });
    const expected = plans.slice(0, 3).map((p) => ({
      bind_address: `${p.bindShown}:${p.rpcPort}`,
      published_address: published(p, p.rpcPort),
      protocol: "tcp",
      app_protocol: "HTTP1",
    }));
    const key = (i: any) => i.published_address;
    assert.deepEqual(
      listed.sort((a: any, b: any) => key(a).localeCompare(key(b))),
      expected.sort((a, b) => key(a).localeCompare(key(b))),
    );
  }

  // A backup sends clients to the primary by its published address (HEAD /node/primary).
  const primary = await httpsRequest(`${nodes[1]!.url}/node/primary`, { ca }, "HEAD");
  assert.equal(primary.status, 308, primary.body);
  assert.equal(primary.headers.location, `${viaName}/node/primary`);
});

test("each node's certificate names its published host, as openssl reads it", () => {
  const sans = nodes.map((node) => {
    const text = execFileSync(
      "openssl",
      ["x509", "-noout", "-text", "-in", join(node.dir, "nodecert.pem")],
      { encoding: "utf8" },
    );
    return /X509v3 Subject Alternative Name:.*\n\s*(.*)/.exec(text)?.[1]?.trim();
  });
  assert.deepEqual(sans, [
    "DNS:localhost, DNS:node0.consortia.test",
    "IP Address:127.0.0.2, DNS:node1.consortia.test",
    ipv6 ? "IP Address:0:0:0:0:0:0:0:1" : "IP Address:127.0.0.3",
  ]);
});

test("clients verify each node's name, and a name not in its certificate is refused", async () => {
  await assert.rejects(
    httpsRequest(`https://localhost:${plans[1]!.rpcPort}/node/state`, { ca }, "GET"),
    (err: NodeJS.ErrnoException) => err.code === "ERR_TLS_CERT_ALTNAME_INVALID",
  );
  // Governance writes through a backup (forwarded to the primary before they run) commit
  // everywhere: `ack` updates the digest, then acknowledges it against the primary's state.
  const viaBackup = new GovClient({ url: nodes[2]!.url, caPem: ca, ...member });
  try {
    await viaBackup.ackStateDigest(member);
    let proposal = await viaBackup.propose([
      { name: "transition_service_to_open", args: { next_service_identity: ca } },
    ]);
    if (proposal.proposalState === "Open") {
      proposal = await viaBackup.vote(proposal.proposalId, true);
    }
    assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
  } finally {
    viaBackup.close();
  }
  for (const node of nodes) {
    const deadline = Date.now() + 30_000;
    let status = "";
    while (status !== "Open" && Date.now() < deadline) {
      const reply = await getFrom(node, ca, "/node/network");
      status = JSON.parse(reply.body).service_status;
      if (status !== "Open") await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(status, "Open", `${node.name} sees the service ${status}`);
  }
});

/** An ASN.1 UTCTime (YYMMDDhhmmssZ) for `date`, as transition_node_to_trusted's valid_from. */
function asn1Time(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, "").slice(2, 14) + "Z";
}

test("a node trusted by governance after opening gets the SANs it asked for", async () => {
  // Joins through node2 (a backup), bound to 127.0.0.4 alone, with an extra name.
  const args = ["--join", "--peer", nodes[2]!.url, "--san", "dNSName:node3.consortia.test"];
  nodes.push(await startHostNode(await spec(3, args)));
  const published = `127.0.0.4:${plans[3]!.rpcPort}`;
  let pendingId: string | undefined;
  const deadline = Date.now() + 60_000;
  while (pendingId === undefined && Date.now() < deadline) {
    const reply = await getFrom(nodes[0]!, ca, "/node/network/nodes?status=Pending");
    pendingId = JSON.parse(reply.body).nodes.find(
      (n: any) => n.rpc_interfaces.primary_rpc_interface.published_address === published,
    )?.node_id;
    if (pendingId === undefined) await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(pendingId !== undefined, `node3 never Pending; its log:\n${hostNodeLog(nodes[3]!)}`);
  const gov = new GovClient({ url: nodes[1]!.url, caPem: ca, ...member });
  try {
    const validFrom = asn1Time(new Date(Date.now() - 60_000));
    let proposal = await gov.propose([
      { name: "transition_node_to_trusted", args: { node_id: pendingId, valid_from: validFrom } },
    ]);
    if (proposal.proposalState === "Open") proposal = await gov.vote(proposal.proposalId, true);
    assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
  } finally {
    gov.close();
  }
  await waitForState(nodes[3]!, ca, "PartOfNetwork");
  const text = execFileSync(
    "openssl",
    ["x509", "-noout", "-text", "-in", join(nodes[3]!.dir, "nodecert.pem")],
    { encoding: "utf8" },
  );
  assert.match(text, /Subject: CN\s?=\s?node3/);
  assert.match(text, /IP Address:127\.0\.0\.4, DNS:node3\.consortia\.test/);
});
