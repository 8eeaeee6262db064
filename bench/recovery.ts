/**
 * `npm run bench:recovery [-- --txs 1000000] [--json] [--keep DIR] [--cpu-prof-dir DIR]`
 *
 * Disaster recovery and join from a snapshot at scale (issue #5 item 8). Goals: public and
 * private replay at least 100,000 tx/s each; join from a snapshot under 10 s.
 *
 * 1. Ledger. `consortia sandbox --nodes 1` writes a real workspace (3 members with RSA
 *    encryption keys, user0, the constitution) and is stopped at once; only its files are used.
 *    The node's and the service's private keys never reach the disk, so a stopped node's ledger
 *    cannot be extended by anyone else. Instead this process runs the same node code (startNode,
 *    command Start, the sandbox's config) in-process: genesis, members ack, set_user and
 *    transition_service_to_open voted over HTTPS exactly as the sandbox does, recovery shares
 *    issued. Then --txs logging-app writes go straight into that node's TxPipeline (what POST
 *    /app/log/private does after parsing: `records`[id] = JSON message through the app's own
 *    codecs, ids 0..txs-1, each a new key), with the node's own signatures, consensus commit
 *    and ledger files. Driving them over HTTPS instead would time the HTTP stack, not
 *    recovery, and take many minutes on a 2-core machine. The node is stopped and its ledger
 *    kept; its snapshots are not.
 * 2. Recovery. The ledger is copied into a fresh directory and `consortia node` runs with
 *    command Recover (a separate process: the dist/ bundle, or src/ through tsx). Public
 *    replay: spawn to /node/state PartOfPublicNetwork, and the node's own "public replay" line.
 *    Then transition_service_to_open (previous + next identity, majority ballots), member0's
 *    share (threshold 1), until /gov/service/info says Open; the node's "private replay" line.
 * 3. Join from a snapshot. trigger_snapshot on the recovered service, wait for the committed
 *    snapshot file, spawn a Join node (fetch_recent_snapshot, the default), trust it through
 *    transition_node_to_trusted once it is Pending; spawn to the joiner's PartOfNetwork.
 *
 * Prints a table with the goals and MET / NOT MET; --json adds one JSON line at the end.
 * Every process it spawns is stopped by PID; --keep leaves the directories for inspection.
 */
import { spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { typedMap } from "../src/kv/encoding.js";
import { messageCodec, recordIdCodec } from "../src/apps/logging.js";
import { loadNodeConfig } from "../src/node/config/config.js";
import { freePort } from "../src/node/startup/startup-checks.js";
import { startNode } from "../src/node/start-node.js";
import { GovClient, type Action, type MemberSigner } from "../src/cli/gov-client.js";
import { submitMemberShare } from "../src/cli/commands/recovery.js";
import { memberIdFromCert } from "../src/crypto/identity.js";
import { getJson, startSandbox, stopPids, stopSandbox, type Tls } from "./sandbox.js";
import { machineContext, round } from "./load.js";

const { values: args } = parseArgs({
  options: {
    txs: { type: "string", default: "1000000" },
    json: { type: "boolean", default: false },
    keep: { type: "string" },
    "cpu-prof-dir": { type: "string" },
  },
});
const txs = Number(args.txs);
if (!Number.isSafeInteger(txs) || txs < 1 || txs > 20_000_000) {
  throw new Error(`--txs must be 1..2e7: ${args.txs}`);
}

const REPLAY_GOAL_TX_PER_S = 100_000;
const JOIN_GOAL_S = 10;
/** Transactions executed between two yields to the event loop (ticks, commits, ledger IO). */
const BATCH = 2_000;
const PHASE_TIMEOUT_MS = 30 * 60_000;
const MEMBERS = 3;

const HOST = "127.0.0.1";
const root = args.keep ?? mkdtempSync(join(tmpdir(), "consortia-bench-recovery-"));
mkdirSync(root, { recursive: true });
const started: ChildProcess[] = [];

function note(line: string): void {
  process.stderr.write(`[bench:recovery ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until<T>(
  what: string,
  poll: () => Promise<T | undefined>,
  timeoutMs = PHASE_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await poll();
    } catch {
      // Not up yet (refused connection, TLS identity not issued yet): poll again.
    }
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

/** Sum of the ledger chunk sizes in `dir`. */
function ledgerBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.startsWith("ledger_"))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
}

interface Ports {
  readonly rpc: number;
  readonly n2n: number;
}

async function ports(): Promise<Ports> {
  return { rpc: await freePort(HOST), n2n: await freePort(HOST) };
}

/** The sandbox's node config with this node's directories, ports and command. */
function writeConfig(
  template: Record<string, unknown>,
  dir: string,
  p: Ports,
  command: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): string {
  mkdirSync(dir, { recursive: true });
  const config = {
    ...template,
    network: {
      node_to_node_interface: { bind_address: `${HOST}:${p.n2n}` },
      rpc_interfaces: { primary_rpc_interface: { bind_address: `${HOST}:${p.rpc}` } },
    },
    command,
    ledger: { directory: join(dir, "ledger") },
    snapshots: { directory: join(dir, "snapshots") },
    output_files: {
      node_certificate_file: join(dir, "node_cert.pem"),
      pid_file: join(dir, "node.pid"),
    },
    ...extra,
  };
  const file = join(dir, "config.json");
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

const BUNDLE = join(import.meta.dirname, "..", "dist", "cli.mjs");

/**
 * `consortia node --config FILE`, output to DIR/out: the bundle users run (dist/cli.mjs, built by
 * `npm ci` or `npm run build`), or src/ through tsx when there is no bundle.
 */
function spawnNode(dir: string, configFile: string): ChildProcess {
  const bundled = existsSync(BUNDLE);
  const entry = bundled ? BUNDLE : join(import.meta.dirname, "..", "src", "cli", "entry.ts");
  const nodeArgs = bundled ? [] : ["--import", import.meta.resolve("tsx")];
  if (args["cpu-prof-dir"] !== undefined) {
    nodeArgs.push("--cpu-prof", "--cpu-prof-dir", args["cpu-prof-dir"]);
  }
  const out = openSync(join(dir, "out"), "w");
  try {
    const child = spawn(process.execPath, [...nodeArgs, entry, "node", "--config", configFile], {
      stdio: ["ignore", out, out],
    });
    started.push(child);
    return child;
  } finally {
    closeSync(out);
  }
}

/** GET /node/state without checking the certificate: a Pending joiner's is self-signed. */
function nodeState(p: Ports): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: HOST, port: p.rpc, path: "/node/state", rejectUnauthorized: false, timeout: 2000 },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => {
          try {
            resolve((JSON.parse(text) as { state?: string }).state);
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

function waitState(p: Ports, state: string): Promise<true> {
  return until(`/node/state ${state} on port ${p.rpc}`, async () =>
    (await nodeState(p)) === state ? true : undefined,
  );
}

/** The first match of `pattern` in a node's out file, once it appears. */
function logMatch(dir: string, pattern: RegExp): Promise<RegExpExecArray> {
  return until(`${pattern} in ${dir}/out`, () =>
    Promise.resolve(pattern.exec(readFileSync(join(dir, "out"), "utf8")) ?? undefined),
  );
}

interface Member extends MemberSigner {
  readonly encKeyPem: string;
}

function readMembers(common: string): Member[] {
  return Array.from({ length: MEMBERS }, (_, i) => ({
    certPem: readFileSync(join(common, `member${i}_cert.pem`), "utf8"),
    keyPem: readFileSync(join(common, `member${i}_privk.pem`), "utf8"),
    encKeyPem: readFileSync(join(common, `member${i}_enc_privk.pem`), "utf8"),
  }));
}

/** member0 proposes, a strict majority accepts; throws unless the proposal is Accepted. */
async function pass(client: GovClient, members: readonly Member[], actions: Action[]) {
  let proposal = await client.propose(actions, members[0]);
  for (const m of members.slice(0, Math.floor(members.length / 2) + 1)) {
    if (proposal.proposalState !== "Open") break;
    proposal = await client.vote(proposal.proposalId, true, m);
  }
  if (proposal.proposalState !== "Accepted") {
    const names = actions.map((a) => a.name).join(", ");
    throw new Error(`${names}: proposal ended ${proposal.proposalState}`);
  }
}

/** CCF's ASN.1 UTCTime for valid_from, now. */
function asn1Now(): string {
  return `${new Date().toISOString().slice(2, 19).replace(/[-T:]/g, "")}Z`;
}

/** Step 1 (see the module comment). Returns the build directory, ledger and service cert. */
async function buildLedger(
  template: Record<string, unknown>,
  common: string,
  members: readonly Member[],
): Promise<{ ledgerDir: string; serviceCertPath: string; seconds: number }> {
  const dir = join(root, "build");
  const p = await ports();
  const serviceCertPath = join(dir, "service_cert.pem");
  const startCommand = template["command"] as Record<string, unknown>;
  const file = writeConfig(
    template,
    dir,
    p,
    { ...startCommand, service_certificate_file: serviceCertPath },
    // No snapshots while building: recovery replays the whole ledger.
    { snapshots: { directory: join(dir, "snapshots"), tx_count: 1_000_000_000 } },
  );
  const out = createWriteStream(join(dir, "out"));
  const node = await startNode(loadNodeConfig(file), { log: (line) => out.write(`${line}\n`) });
  const caPem = readFileSync(serviceCertPath, "utf8");
  const client = new GovClient({ url: `https://${HOST}:${p.rpc}`, caPem });
  try {
    await client.waitUntilReady();
    for (const m of members) {
      await until("a first signature", () => client.ackStateDigest(m));
    }
    const userCert = readFileSync(join(common, "user0_cert.pem"), "utf8");
    await pass(client, members, [
      { name: "set_user", args: { cert: userCert } },
      { name: "transition_service_to_open", args: { next_service_identity: caPem } },
    ]);
    await until("recovery shares", () =>
      client.encryptedRecoveryShare(memberIdFromCert(members[0]!.certPem)),
    );
    note(`service open at seqno ${node.store.seqno}; writing ${txs} logging-app transactions`);
    const t0 = performance.now();
    const pipeline = node.pipeline;
    let id = 0;
    while (id < txs) {
      const end = Math.min(txs, id + BATCH);
      while (id < end) {
        const key = id;
        const outcome = pipeline.execute((tx) => {
          typedMap(tx.rw("records"), recordIdCodec, messageCodec).set(
            key,
            `Private message ${key}`,
          );
        });
        if (outcome.kind === "committed") id++;
        else if (outcome.kind === "too-many-pending") await delay(2);
        else throw new Error(`write ${key}: ${outcome.kind}`);
      }
      if (id % 100_000 === 0) note(`  ${id} written`);
      await new Promise((r) => setImmediate(r));
    }
    const last = pipeline.lastTxId.seqno;
    await until("the last write to commit", () =>
      Promise.resolve(node.raft.commitSeqno >= last ? true : undefined),
    );
    const seconds = (performance.now() - t0) / 1000;
    note(`ledger built: ${txs} writes in ${seconds.toFixed(1)} s, committed at ${last}`);
    return { ledgerDir: join(dir, "ledger"), serviceCertPath, seconds };
  } finally {
    client.close();
    await node.stop();
    await new Promise((r) => out.end(r));
  }
}

/** The sandbox workspace's files this benchmark uses (see step 1 of the module comment). */
interface Workspace {
  readonly common: string;
  readonly template: Record<string, unknown>;
  readonly members: readonly Member[];
  readonly userTls: Omit<Tls, "ca">;
}

async function prepareWorkspace(): Promise<Workspace> {
  const workspace = join(root, "sandbox");
  startSandbox(workspace, await freePort(HOST), 1);
  await stopSandbox(workspace);
  const common = join(workspace, "sandbox_common");
  const template = JSON.parse(
    readFileSync(join(workspace, "sandbox_0", "config.json"), "utf8"),
  ) as Record<string, unknown>;
  const userTls: Omit<Tls, "ca"> = {
    cert: readFileSync(join(common, "user0_cert.pem")),
    key: readFileSync(join(common, "user0_privk.pem")),
  };
  return { common, template, members: readMembers(common), userTls };
}

/** The recovered service, open again, and the recovery's figures. */
interface Recovered {
  readonly ports: Ports;
  readonly url: string;
  readonly gov: GovClient;
  readonly certPath: string;
  /** The user's TLS options against the recovered service. */
  readonly userTls: Tls;
  /** The node's "public replay" and "private replay" log lines. */
  readonly pub: RegExpExecArray;
  readonly priv: RegExpExecArray;
  readonly publicS: number;
  readonly openS: number;
}

/** Step 2 (see the module comment): recovers a copy of the built ledger and opens it. */
async function recover(
  ws: Workspace,
  built: { ledgerDir: string; serviceCertPath: string },
): Promise<Recovered> {
  const recDir = join(root, "recovered");
  mkdirSync(recDir, { recursive: true });
  cpSync(built.ledgerDir, join(recDir, "ledger"), { recursive: true });
  const prevPath = join(recDir, "previous_service_cert.pem");
  const prevPem = readFileSync(built.serviceCertPath, "utf8");
  writeFileSync(prevPath, prevPem);
  const recPorts = await ports();
  const newCertPath = join(recDir, "service_cert.pem");
  const recConfig = writeConfig(ws.template, recDir, recPorts, {
    type: "Recover",
    service_certificate_file: newCertPath,
    recover: { previous_service_identity_file: prevPath },
  });
  note("recovering: public replay");
  const tRec = performance.now();
  spawnNode(recDir, recConfig);
  await waitState(recPorts, "PartOfPublicNetwork");
  const publicS = (performance.now() - tRec) / 1000;
  const pub = await logMatch(
    recDir,
    /public replay: (\d+) transactions to seqno (\d+) \(view \d+\) in ([\d.]+) s \((\d+) tx\/s\)/,
  );
  const nextPem = readFileSync(newCertPath, "utf8");
  const recUrl = `https://${HOST}:${recPorts.rpc}`;
  const gov = new GovClient({ url: recUrl, caPem: nextPem });
  note("opening: transition_service_to_open, member0's share, private replay");
  const tOpen = performance.now();
  await pass(gov, ws.members, [
    {
      name: "transition_service_to_open",
      args: { previous_service_identity: prevPem, next_service_identity: nextPem },
    },
  ]);
  const member0 = ws.members[0]!;
  await submitMemberShare(gov, member0, member0.encKeyPem);
  await until("service Open", async () =>
    (await gov.serviceInfo()).status === "Open" ? true : undefined,
  );
  const openS = (performance.now() - tOpen) / 1000;
  const priv = await logMatch(
    recDir,
    /private replay: (\d+) transactions in ([\d.]+) s \((\d+) tx\/s\)/,
  );
  const userOnRec = { ...ws.userTls, ca: Buffer.from(nextPem) };
  const check = await getJson(recUrl, `/app/log/private?id=${txs - 1}`, userOnRec);
  if (check.status !== 200) throw new Error(`record ${txs - 1} after recovery: ${check.status}`);
  return {
    ports: recPorts,
    url: recUrl,
    gov,
    certPath: newCertPath,
    userTls: userOnRec,
    pub,
    priv,
    publicS,
    openS,
  };
}

/** The join's figures. */
interface Joined {
  readonly snapName: string;
  readonly snapBytes: number;
  readonly snapS: number;
  readonly pendingS: number;
  readonly joinS: number;
  readonly joinedFromSnapshot: boolean;
}

/** Step 3 (see the module comment): a snapshot of the recovered service, and a join from it. */
async function joinFromSnapshot(ws: Workspace, rec: Recovered): Promise<Joined> {
  const { gov } = rec;
  const { members } = ws;
  note("snapshot: trigger_snapshot");
  const snapDir = join(root, "recovered", "snapshots");
  // The node takes no snapshot while it recovers; it may have taken one since it reopened (its
  // first signature is a snapshot's due date). The trigger's is the one timed and joined from.
  const before = new Set(readdirSync(snapDir));
  for (const name of before) note(`  already taken since the service reopened: ${name}`);
  const tSnap = performance.now();
  await pass(gov, members, [{ name: "trigger_snapshot", args: {} }]);
  const snapName = await until("a committed snapshot", () =>
    Promise.resolve(readdirSync(snapDir).find((f) => f.endsWith(".committed") && !before.has(f))),
  );
  const snapS = (performance.now() - tSnap) / 1000;
  const snapBytes = statSync(join(snapDir, snapName)).size;
  const joinDir = join(root, "joiner");
  const joinPorts = await ports();
  const joinConfig = writeConfig(ws.template, joinDir, joinPorts, {
    type: "Join",
    service_certificate_file: rec.certPath,
    join: { target_rpc_address: `${HOST}:${rec.ports.rpc}`, retry_timeout: "100ms" },
  });
  note(`joining from ${snapName} (${snapBytes} bytes)`);
  const tJoin = performance.now();
  spawnNode(joinDir, joinConfig);
  const pendingId = await until("a Pending node", async () => {
    const reply = await getJson(rec.url, "/node/network/nodes?status=Pending", rec.userTls);
    return (reply.body as { nodes?: { node_id: string }[] } | null)?.nodes?.[0]?.node_id;
  });
  const pendingS = (performance.now() - tJoin) / 1000;
  await pass(gov, members, [
    { name: "transition_node_to_trusted", args: { node_id: pendingId, valid_from: asn1Now() } },
  ]);
  await waitState(joinPorts, "PartOfNetwork");
  const joinS = (performance.now() - tJoin) / 1000;
  const joinLog = readFileSync(join(joinDir, "out"), "utf8");
  const joinedFromSnapshot = joinLog.includes(
    `joining from snapshot ${join(joinDir, "snapshots")}`,
  );
  gov.close();
  await checkJoinerRecords(`https://${HOST}:${joinPorts.rpc}`, rec.userTls);
  return { snapName, snapBytes, snapS, pendingS, joinS, joinedFromSnapshot };
}

/** The joiner must serve the private records (the snapshot's, and the ledger's before it). */
async function checkJoinerRecords(joinUrl: string, userTls: Tls): Promise<void> {
  for (const id of [0, txs - 1]) {
    await until(
      `record ${id} on the joiner`,
      async () =>
        (await getJson(joinUrl, `/app/log/private?id=${id}`, userTls)).status === 200
          ? true
          : undefined,
      30_000,
    );
  }
}

async function main() {
  note(`workspace ${root}`);
  const ws = await prepareWorkspace();
  const built = await buildLedger(ws.template, ws.common, ws.members);
  const bytes = ledgerBytes(built.ledgerDir);
  const rec = await recover(ws, built);
  const joined = await joinFromSnapshot(ws, rec);
  report(resultOf(bytes, built.seconds, rec, joined));
}

type Result = ReturnType<typeof resultOf>;

function resultOf(bytes: number, buildSeconds: number, rec: Recovered, joined: Joined) {
  const { pub, priv } = rec;
  const publicTxPerS = Number(pub[4]);
  const privateTxPerS = Number(priv[3]);
  return {
    bench: "recovery",
    txs,
    ledger_bytes: bytes,
    build_s: round(buildSeconds, 2),
    public_replay_txs: Number(pub[1]),
    public_replay_s: Number(pub[3]),
    public_replay_tx_per_s: publicTxPerS,
    spawn_to_public_s: round(rec.publicS, 2),
    private_replay_txs: Number(priv[1]),
    private_replay_s: Number(priv[2]),
    private_replay_tx_per_s: privateTxPerS,
    open_to_open_s: round(rec.openS, 2),
    snapshot_bytes: joined.snapBytes,
    snapshot_s: round(joined.snapS, 2),
    join_pending_s: round(joined.pendingS, 2),
    join_s: round(joined.joinS, 2),
    joined_from_snapshot: joined.joinedFromSnapshot,
    goals: {
      replay_tx_per_s: REPLAY_GOAL_TX_PER_S,
      public_met: publicTxPerS >= REPLAY_GOAL_TX_PER_S,
      private_met: privateTxPerS >= REPLAY_GOAL_TX_PER_S,
      join_s: JOIN_GOAL_S,
      join_met: joined.joinS < JOIN_GOAL_S && joined.joinedFromSnapshot,
    },
    machine: machineContext(),
    workspace: args.keep ?? null,
  };
}

/** Prints the table with the goals; --json adds the result as one JSON line. */
function report(result: Result): void {
  const met = (ok: boolean) => (ok ? "MET" : "NOT MET");
  const n = (x: number) => x.toLocaleString("en-US");
  const rows: [string, string, string][] = [
    ["transactions", n(txs), ""],
    ["ledger", `${n(result.ledger_bytes)} bytes`, ""],
    ["ledger build (in-process)", `${result.build_s} s`, ""],
    [
      "public replay",
      `${n(result.public_replay_tx_per_s)} tx/s, ${result.public_replay_s} s`,
      `>= ${n(REPLAY_GOAL_TX_PER_S)} tx/s: ${met(result.goals.public_met)}`,
    ],
    ["  spawn to PartOfPublicNetwork", `${result.spawn_to_public_s} s`, ""],
    [
      "private replay",
      `${n(result.private_replay_tx_per_s)} tx/s, ${result.private_replay_s} s`,
      `>= ${n(REPLAY_GOAL_TX_PER_S)} tx/s: ${met(result.goals.private_met)}`,
    ],
    ["open proposal to Open", `${result.open_to_open_s} s`, ""],
    ["snapshot", `${n(result.snapshot_bytes)} bytes, committed in ${result.snapshot_s} s`, ""],
    ["  join: spawn to Pending", `${result.join_pending_s} s`, ""],
    [
      "join from snapshot",
      `${result.join_s} s${result.joined_from_snapshot ? "" : " (NOT from a snapshot)"}`,
      `< ${JOIN_GOAL_S} s: ${met(result.goals.join_met)}`,
    ],
  ];
  console.log(`recovery: ${n(txs)} logging-app transactions (records[id], one key each)`);
  for (const [name, value, goal] of rows) {
    console.log(`  ${name.padEnd(30)} ${value.padEnd(34)} ${goal}`.trimEnd());
  }
  if (args.keep !== undefined) console.log(`  files kept in ${root}`);
  if (args.json) console.log(JSON.stringify(result));
}

try {
  await main();
} finally {
  const pids = started.map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
  for (const line of await stopPids(pids)) note(line);
  if (args.keep === undefined && existsSync(root)) rmSync(root, { recursive: true, force: true });
}
