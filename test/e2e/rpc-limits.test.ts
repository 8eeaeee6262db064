// Session, header and time limits on a running node (issue #15; ccf-compatibility.md §1.3), with
// real processes and real TLS: a one-node sandbox is joined by a node whose RPC interface sets
// small limits (max_open_sessions_soft 3, max_open_sessions_hard 5, max_header_size 1KB,
// max_headers_count 10). Against that node, over raw TLS sockets: a session past the soft limit
// completes its handshake and its first request is answered 503 SessionCapExhausted, then closed;
// one past the hard limit is closed before the handshake; a 2 KB header and 20 headers are 431
// RequestHeaderTooLarge; a body trickled one byte every 500 ms is answered 408 RequestTimeout
// and cut off at the request time limit (30 s); once the offenders are gone, normal requests
// succeed. Also: a write forwarded by that backup and refused by the primary's handler (the JS
// app's /refuse, forwarded always) carries no x-ms-ccf-transaction-id, while an earlier
// forwarded write carried its own.
// Oracles: the status lines and CCF error codes on the wire, and whether the socket closed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { runCli } from "../helpers/cli.js";
import { Network, waitFor, type NetNode } from "../helpers/network.js";
import { asn1Now } from "../../src/cli/commands/node-replace.js";

const SOFT = 3;
const HARD = 5;
/** ccf-compatibility.md §1.3: a whole request, body included, must arrive within 30 s. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Node checks request deadlines once a second; a loaded machine adds more. */
const TIMEOUT_SLACK_MS = 8_000;
const APP_DIR = join(import.meta.dirname, "..", "fixtures", "js-apps", "logging");

/** A TLS session to `node` as user0; null when the node closed it before the handshake. */
function openSession(net: Network, node: NetNode): Promise<TLSSocket | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: node.port, ...net.tls });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", () => resolve(null));
    socket.once("close", () => resolve(null));
  });
}

interface Exchange {
  /** Everything the node sent until the response was whole or the socket closed. */
  readonly text: string;
  readonly closed: boolean;
}

/** Sends `request` and reads one response (Content-Length framed) or up to the close. */
function exchange(socket: TLSSocket, request: string): Promise<Exchange> {
  return new Promise((resolve) => {
    let text = "";
    const done = (closed: boolean) => {
      socket.removeAllListeners("data");
      resolve({ text, closed });
    };
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(text);
      if (end >= 0 && length !== null && text.length >= end + 4 + Number(length[1])) {
        // Whole: wait a moment for a close that follows the answer.
        setTimeout(() => done(socket.destroyed || socket.readableEnded), 300);
      }
    });
    socket.once("close", () => done(true));
    socket.once("error", () => undefined);
    socket.write(request);
  });
}

function get(path: string, headers: readonly string[] = []): string {
  return [`GET ${path} HTTP/1.1`, "Host: 127.0.0.1", ...headers, "", ""].join("\r\n");
}

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

/** Starts the limited node, joins it and has it trusted; answers it once it serves /app. */
async function joinLimited(net: Network, primary: NetNode): Promise<NetNode> {
  const joiner = net.spawnJoiner(primary, {
    rpcInterface: {
      max_open_sessions_soft: SOFT,
      max_open_sessions_hard: HARD,
      http_configuration: { max_header_size: "1KB", max_headers_count: 10 },
    },
  });
  joiner.id = await waitFor("a Pending node", 30_000, async () => {
    const reply = await net.get(primary, "/node/network/nodes?status=Pending");
    return (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes[0]?.node_id;
  });
  await net.pass(primary, [
    { name: "transition_node_to_trusted", args: { node_id: joiner.id, valid_from: asn1Now() } },
  ]);
  await waitFor("the joiner serving /app", 30_000, async () =>
    (await net.get(joiner, "/app/commit").catch(() => null))?.status === 200 ? true : undefined,
  );
  return joiner;
}

/** Deploys the fixture JS app through `node` (member0 proposes, member0 and member1 vote). */
function deployApp(net: Network, node: NetNode): void {
  const url = `https://127.0.0.1:${node.port}`;
  const where = ["--workspace", net.workspace, "--node", url];
  const deploy = runCli(["app", "deploy", "--bundle", APP_DIR, ...where]);
  assert.equal(deploy.status, 0, deploy.stderr);
  const proposal = JSON.parse(deploy.stdout) as { proposalId: string; proposalState: string };
  const common = join(net.workspace, "sandbox_common");
  for (const member of ["member0", "member1"]) {
    if (proposal.proposalState !== "Open") break;
    const vote = runCli([
      ...["gov", "vote", "--proposal-id", proposal.proposalId, "--accept", ...where],
      ...[
        "--cert",
        join(common, `${member}_cert.pem`),
        "--key",
        join(common, `${member}_privk.pem`),
      ],
    ]);
    assert.equal(vote.status, 0, vote.stderr);
  }
}

/** A POST whose body arrives a byte every 500 ms; when the node closed it, and what it sent. */
async function trickle(net: Network, node: NetNode): Promise<{ heldMs: number; text: string }> {
  const socket = await openSession(net, node);
  assert.ok(socket !== null);
  const start = Date.now();
  let text = "";
  socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
  socket.on("error", () => undefined);
  socket.write(
    "POST /app/log/private HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
      "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
  );
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(" ");
  }, 500);
  await new Promise((resolve) => socket.once("close", resolve));
  clearInterval(timer);
  return { heldMs: Date.now() - start, text };
}

async function checkSessions(net: Network, node: NetNode): Promise<void> {
  const within: TLSSocket[] = [];
  for (let i = 0; i < SOFT; i++) {
    const socket = await openSession(net, node);
    assert.ok(socket !== null, `session ${i + 1} of ${SOFT} completes its handshake`);
    within.push(socket);
  }
  const over: TLSSocket[] = [];
  for (let i = SOFT; i < HARD; i++) {
    const socket = await openSession(net, node);
    assert.ok(socket !== null, `session ${i + 1} (past the soft limit) completes its handshake`);
    over.push(socket);
  }
  assert.equal(
    await openSession(net, node),
    null,
    "past the hard limit: closed before the handshake",
  );
  const busy = await exchange(over[0]!, get("/node/state"));
  assert.equal(statusOf(busy.text), 503, busy.text);
  assert.match(busy.text, /"code":"SessionCapExhausted"/);
  assert.ok(busy.closed, "the session past the soft limit is closed after its answer");
  const fine = await exchange(within[0]!, get("/node/state"));
  assert.equal(statusOf(fine.text), 200, fine.text);
  for (const socket of [...within, ...over]) socket.destroy();
}

async function checkHeaders(net: Network, node: NetNode): Promise<void> {
  const big = await openSession(net, node);
  assert.ok(big !== null);
  const tooLarge = await exchange(big, get("/node/state", [`X-Big: ${"b".repeat(2048)}`]));
  assert.equal(statusOf(tooLarge.text), 431, tooLarge.text);
  assert.match(tooLarge.text, /"code":"RequestHeaderTooLarge"/);
  assert.match(tooLarge.text, /Header value for 'X-Big' is too long \(max size allowed: 1024\)/);
  assert.ok(tooLarge.closed);
  const many = await openSession(net, node);
  assert.ok(many !== null);
  const headers = Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}`);
  const tooMany = await exchange(many, get("/node/state", headers));
  assert.equal(statusOf(tooMany.text), 431, tooMany.text);
  assert.match(tooMany.text, /Too many headers \(max number allowed: 10\)/);
  assert.ok(tooMany.closed);
}

async function checkForwardedFailure(net: Network, backup: NetNode): Promise<void> {
  const written = await waitFor("the JS app on the backup", 30_000, async () => {
    const reply = await net.call(backup, "POST", "/app/log/private", { id: 1, msg: "kept" });
    return reply.status === 404 ? undefined : reply;
  });
  assert.equal(written.status, 200, written.body);
  assert.match(String(written.headers["x-ms-ccf-transaction-id"]), /^\d+\.\d+$/);
  const refused = await net.call(backup, "POST", "/app/refuse", {});
  assert.equal(refused.status, 409, refused.body);
  assert.match(refused.body, /always refused/);
  assert.equal(refused.headers["x-ms-ccf-transaction-id"], undefined, "no transaction's id");
}

test("a running node enforces its configured session, header and time limits", async (t) => {
  const net = await Network.start(1, { spareNodes: 2 });
  t.after(() => net.stop());
  const primary = net.nodes[0]!;
  const limited = await joinLimited(net, primary);
  deployApp(net, primary);
  await checkForwardedFailure(net, limited);

  // The slow client first: it holds one session until the node cuts it off.
  const trickled = trickle(net, limited);
  await checkHeaders(net, limited);
  const { heldMs, text } = await trickled;
  t.diagnostic(`trickled body cut off after ${heldMs} ms; answer: ${JSON.stringify(text)}`);
  assert.ok(heldMs >= REQUEST_TIMEOUT_MS - 1_000, `held ${heldMs} ms`);
  assert.ok(heldMs <= REQUEST_TIMEOUT_MS + TIMEOUT_SLACK_MS, `held ${heldMs} ms`);
  assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(text, /"code":"RequestTimeout"/);

  await checkSessions(net, limited);
  // The offenders are gone: ordinary requests are served again.
  await waitFor("a normal request served", 10_000, async () => {
    const reply = await net.get(limited, "/node/state").catch(() => null);
    return reply?.status === 200 ? true : undefined;
  });
  const read = await net.read(limited, 1);
  assert.equal(read.status, 200, read.body);
});
