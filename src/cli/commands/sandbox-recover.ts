/**
 * `consortia sandbox --recover` (`npm start -- --recover`): disaster recovery of a stopped
 * sandbox, doing what its operator and members would do (ccf-compatibility.md §8.3):
 *
 * 1. The previous service's node directories (sandbox_<i>) move to previous_service_<k>/, and
 *    its certificate is kept as sandbox_common/predecessor_service_cert.pem. A marker file
 *    (recovery_in_progress.json) names them until the recovery completes, so a recovery that
 *    was interrupted is started again from the same previous service, its own nodes discarded.
 * 2. Node 0 starts with command Recover on a copy of the longest previous ledger and every
 *    committed snapshot; it replays the public domain (progress from its log).
 * 3. member0 proposes transition_service_to_open with the previous and next identities and a
 *    majority accepts; each recovery member fetches, decrypts and submits its share until the
 *    node starts the end of the recovery; the private domain is replayed and the service opens.
 * 4. Nodes 1..N-1 join the reopened service and a majority of members trusts them (after a new
 *    snapshot when the recovery started from one: joiners cannot catch up from before it).
 *
 * Then it runs until SIGINT/SIGTERM like `consortia sandbox`.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { isNodeError } from "../../base/errors.js";
import { listLedgerFiles } from "../../ledger/io/ledger-reader.js";
import { parseSnapshotFileName } from "../../ledger/snapshot.js";
import { CliError } from "../cli-error.js";
import { failureMessage, SandboxError, SandboxErrorCode } from "./sandbox-error.js";
import { isProcessRunning } from "../process-state.js";
import { GovClient, type MemberSigner } from "../gov-client.js";
import { asn1Now } from "./node-replace.js";
import { submitMemberShare } from "./recovery.js";
import {
  log,
  printBanner,
  proposeAndPass,
  runUntilStopped,
  spawnNode,
  stopNodes,
  stopSignal,
  tails,
  writeNodeConfig,
  type NodeProcess,
  type Settings,
} from "./sandbox-nodes.js";

const MARKER = "recovery_in_progress.json";
const PREDECESSOR_CERT = "predecessor_service_cert.pem";
/** Replaying a large ledger takes time: how long each recovery phase may take. */
const PHASE_TIMEOUT_MS = 15 * 60_000;
const JOIN_TIMEOUT_MS = 120_000;

interface Member extends MemberSigner {
  readonly name: string;
  /** The RSA private key of a recovery member, if it has one. */
  readonly encryptionKeyPem?: string;
}

export async function recoverSandbox(settings: Settings): Promise<void> {
  const stop = stopSignal();
  const nodes: NodeProcess[] = [];
  try {
    const ws = settings.workspace;
    const common = join(ws, "sandbox_common");
    if (!existsSync(join(common, "service_cert.pem")) && !existsSync(join(ws, MARKER))) {
      throw new CliError(
        `--recover needs a stopped sandbox in ${ws} (no sandbox_common/service_cert.pem)`,
      );
    }
    const previous = setAsidePreviousService(ws, common);
    // Ends every polling loop once the race is decided, so a failed recovery exits.
    const abort = new AbortController();
    const failure = await Promise.race([
      recover(nodes, settings, common, previous, abort.signal).then(
        () => undefined,
        (e: unknown) => e,
      ),
      stop.promise.then((signal) => `${signal} received during the recovery`),
    ]);
    abort.abort();
    if (failure !== undefined) {
      const stopped = await stopNodes(nodes);
      const reason = failureMessage(failure);
      // A bug (an assertion, ...) is not a failed recovery to explain: it propagates as it is.
      if (reason === null) throw failure;
      const logs = nodes.map((n) => tails(n.dir)).join("\n");
      throw new CliError(
        `recovery failed: ${reason}\n${stopped.join("\n")}\n${logs}\n` +
          `Run \`consortia sandbox --recover --workspace ${ws}\` again to start it over.`,
      );
    }
    printBanner(common, settings);
    log(`The previous service's nodes are in ${previous}; its certificate is`);
    log(`  ${join(common, PREDECESSOR_CERT)}`);
    await runUntilStopped(nodes, settings, stop.promise);
  } finally {
    stop.dispose();
  }
}

/**
 * Step 1 (see the module comment); returns the directory holding the previous nodes. The marker
 * records the step reached, so an interruption anywhere leaves a state the next run completes:
 * `moved: false` while the previous service's node directories are being set aside; once moved,
 * any sandbox_<i> directory belongs to an interrupted recovery and is discarded.
 */
function setAsidePreviousService(ws: string, common: string): string {
  const marker = join(ws, MARKER);
  const nodeDirs = () => readdirSync(ws).filter((n) => /^sandbox_\d+$/.test(n));
  for (const name of nodeDirs()) {
    const pid = readPid(join(ws, name, "node.pid"));
    if (pid !== null && isProcessRunning(pid)) {
      throw new CliError(
        `node ${name} (PID ${pid}) is still running: stop the sandbox first (kill ${pid})`,
      );
    }
  }
  let state: { previous: string; moved: boolean };
  if (existsSync(marker)) {
    state = JSON.parse(readFileSync(marker, "utf8")) as typeof state;
    log(`An earlier recovery did not complete: starting again from ${state.previous}`);
    if (state.moved) {
      for (const name of nodeDirs()) rmSync(join(ws, name), { recursive: true, force: true });
      return state.previous;
    }
  } else {
    if (nodeDirs().length === 0) throw new CliError(`no sandbox_<i> node directory in ${ws}`);
    let k = 1;
    while (existsSync(join(ws, `previous_service_${k}`))) k++;
    state = { previous: join(ws, `previous_service_${k}`), moved: false };
    writeFileSync(marker, `${JSON.stringify(state)}\n`);
  }
  // Still the previous service's certificate: recover() replaces it only after this.
  copyFileSync(join(common, "service_cert.pem"), join(common, PREDECESSOR_CERT));
  mkdirSync(state.previous, { recursive: true });
  for (const name of nodeDirs()) renameSync(join(ws, name), join(state.previous, name));
  writeFileSync(marker, `${JSON.stringify({ ...state, moved: true })}\n`);
  log(`Moved the previous service's nodes to ${state.previous}`);
  return state.previous;
}

function readPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    return null;
  }
}

/** The ledger directory reaching furthest (last seqno its file names show, then bytes). */
function longestLedger(previous: string): string {
  let best: { dir: string; last: number; bytes: number } | null = null;
  for (const name of readdirSync(previous)) {
    const index = /^sandbox_(\d+)$/.exec(name)?.[1];
    if (index === undefined) continue;
    const dir = join(previous, name, `${index}.ledger`);
    if (!existsSync(dir)) continue;
    const files = listLedgerFiles(dir);
    const last = Math.max(0, ...files.map((f) => f.lastSeqno ?? f.firstSeqno));
    const bytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
    if (best === null || last > best.last || (last === best.last && bytes > best.bytes)) {
      best = { dir, last, bytes };
    }
  }
  if (best === null) {
    throw new SandboxError(
      { code: SandboxErrorCode.MissingState },
      `no ledger found under ${previous}`,
    );
  }
  return best.dir;
}

function copyPreviousState(previous: string, ledgerTo: string, snapshotsTo: string): void {
  const ledger = longestLedger(previous);
  mkdirSync(ledgerTo, { recursive: true });
  for (const file of listLedgerFiles(ledger)) copyFileSync(file.path, join(ledgerTo, file.name));
  log(`Recovering from ${ledger}`);
  mkdirSync(snapshotsTo, { recursive: true });
  for (const name of readdirSync(previous)) {
    const index = /^sandbox_(\d+)$/.exec(name)?.[1];
    const dir = join(previous, name, `${index}.snapshots`);
    if (index === undefined || !existsSync(dir)) continue;
    for (const file of readdirSync(dir)) {
      const parsed = parseSnapshotFileName(file);
      if (parsed?.committed === true && !existsSync(join(snapshotsTo, file))) {
        copyFileSync(join(dir, file), join(snapshotsTo, file));
      }
    }
  }
}

function readMembers(common: string): Member[] {
  const members: Member[] = [];
  for (let i = 0; existsSync(join(common, `member${i}_cert.pem`)); i++) {
    const name = `member${i}`;
    const enc = join(common, `${name}_enc_privk.pem`);
    members.push({
      name,
      certPem: readFileSync(join(common, `${name}_cert.pem`), "utf8"),
      keyPem: readFileSync(join(common, `${name}_privk.pem`), "utf8"),
      ...(existsSync(enc) ? { encryptionKeyPem: readFileSync(enc, "utf8") } : {}),
    });
  }
  if (members.length === 0) {
    throw new SandboxError(
      { code: SandboxErrorCode.MissingState },
      `no member0_cert.pem in ${common}`,
    );
  }
  return members;
}

/** Prints node 0's new recovery progress lines (from its log) while a step runs. */
class ProgressTail {
  private printed = 0;

  constructor(private readonly outFile: string) {}

  async during<T>(until: Promise<T>): Promise<T> {
    const timer = setInterval(() => this.show(), 500);
    try {
      return await until;
    } finally {
      clearInterval(timer);
      this.show();
    }
  }

  private show(): void {
    let lines: string[];
    try {
      lines = readFileSync(this.outFile, "utf8").split("\n");
    } catch (err: unknown) {
      if (!isNodeError(err)) throw err;
      return;
    }
    const complete = lines.slice(0, -1); // the last one may be half written
    for (const line of complete.slice(this.printed)) {
      if (/replay|recover|snapshot/i.test(line)) {
        log(`  node 0: ${line.replace(/^\[[^\]]*\] (\[recovery\] )?/, "")}`);
      }
    }
    this.printed = Math.max(this.printed, complete.length);
  }
}

async function recover(
  nodes: NodeProcess[],
  settings: Settings,
  common: string,
  previous: string,
  signal: AbortSignal,
): Promise<void> {
  const ws = settings.workspace;
  const caPath = join(common, "service_cert.pem");
  const previousPem = readFileSync(join(common, PREDECESSOR_CERT), "utf8");
  const members = readMembers(common);
  const constitution = readdirSync(common)
    .filter((n) => n.endsWith(".js"))
    .map((n) => join(common, n));
  const dir0 = join(ws, "sandbox_0");
  copyPreviousState(previous, join(dir0, "0.ledger"), join(dir0, "0.snapshots"));
  rmSync(caPath, { force: true });
  const config = writeNodeConfig(0, dir0, common, constitution, settings, {
    type: "Recover",
    service_certificate_file: caPath,
    recover: { previous_service_identity_file: join(common, PREDECESSOR_CERT) },
  });
  const node0 = spawnNode(0, dir0, config, settings.wait);
  nodes.push(node0);
  const exited = node0.exited.then((how) => {
    throw new SandboxError({ code: SandboxErrorCode.NodeExited }, `node 0 exited (${how})`);
  });
  const guard = <T>(p: Promise<T>) => Promise.race([p, exited]);
  const started = Date.now();
  const progress = new ProgressTail(join(dir0, "out"));
  await guard(progress.during(waitForFile(caPath, PHASE_TIMEOUT_MS, signal)));
  const caPem = readFileSync(caPath, "utf8");
  const client = new GovClient({ url: `https://127.0.0.1:${settings.port}`, caPem });
  try {
    const ready = client.waitUntilReady({
      timeoutMs: 30_000,
      state: "PartOfPublicNetwork",
      signal,
    });
    await guard(progress.during(ready));
    log(`Node [0] replayed the public ledger (${elapsed(started)}): service Recovering`);
    await guard(openRecovered(client, members, previousPem, caPem));
    log("Service WaitingForRecoveryShares: members submit their shares");
    await guard(submitShares(client, members));
    const privateStart = Date.now();
    await guard(progress.during(waitForOpen(client, signal)));
    log(`Private ledger replayed (${elapsed(privateStart)}): service Open again`);
    await guard(joinOthers(nodes, client, members, settings, common, constitution, signal));
  } finally {
    client.close();
  }
  rmSync(join(settings.workspace, MARKER), { force: true });
  log(`Recovery complete in ${elapsed(started)}`);
}

function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/**
 * Waits `ms` between two polls; throws SandboxError(Aborted) once the recovery was decided
 * elsewhere (the AbortSignal idiom: the loop's result is no longer awaited by anyone).
 */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  if (signal.aborted) throw new SandboxError({ code: SandboxErrorCode.Aborted }, "stopped");
}

function timeout(message: string): SandboxError {
  return new SandboxError({ code: SandboxErrorCode.Timeout }, message);
}

async function waitForFile(path: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > deadline) throw timeout(`the node did not write ${path}`);
    await pause(100, signal);
  }
}

async function openRecovered(
  client: GovClient,
  members: readonly Member[],
  previousPem: string,
  nextPem: string,
): Promise<void> {
  await proposeAndPass(client, members, [
    {
      name: "transition_service_to_open",
      args: { previous_service_identity: previousPem, next_service_identity: nextPem },
    },
  ]);
  const info = await client.serviceInfo();
  if (info.status !== "WaitingForRecoveryShares") {
    throw new SandboxError(
      { code: SandboxErrorCode.UnexpectedStatus, status: info.status },
      `service status is ${info.status}, not WaitingForRecoveryShares`,
    );
  }
}

async function submitShares(client: GovClient, members: readonly Member[]): Promise<void> {
  for (const member of members) {
    if (member.encryptionKeyPem === undefined) continue;
    const message = await submitMemberShare(client, member, member.encryptionKeyPem);
    log(`  ${member.name}: ${message}`);
    if (message.includes("End of recovery procedure initiated")) return;
  }
  throw new SandboxError(
    { code: SandboxErrorCode.RecoveryNotStarted },
    "every recovery member submitted a share, but the recovery did not start",
  );
}

async function waitForOpen(client: GovClient, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  for (;;) {
    const info = await client.serviceInfo();
    if (info.status === "Open") return;
    if (Date.now() > deadline) throw timeout(`service still ${info.status}`);
    await pause(200, signal);
  }
}

/** Step 4 (see the module comment). */
async function joinOthers(
  nodes: NodeProcess[],
  client: GovClient,
  members: readonly Member[],
  settings: Settings,
  common: string,
  constitution: readonly string[],
  signal: AbortSignal,
): Promise<void> {
  if (settings.nodes < 2) return;
  const state = await client.requestJson<{ startup_seqno?: number }>("GET", "/node/state");
  const startup = state?.startup_seqno ?? 0;
  if (startup > 0) {
    log(`Waiting for a snapshot of the new service (the recovery started from seqno ${startup})`);
    const dir = join(settings.workspace, "sandbox_0", "0.snapshots");
    await waitForSnapshotAfter(dir, startup, signal);
  }
  for (let i = 1; i < settings.nodes; i++) {
    const dir = join(settings.workspace, `sandbox_${i}`);
    nodes.push(spawnNode(i, dir, writeNodeConfig(i, dir, common, constitution, settings), false));
  }
  const pending = await waitForPending(client, settings.nodes - 1, signal);
  await proposeAndPass(
    client,
    members,
    pending.map((nodeId) => ({
      name: "transition_node_to_trusted",
      args: { node_id: nodeId, valid_from: asn1Now() },
    })),
  );
  for (let i = 1; i < settings.nodes; i++) {
    const c = client.forNode(`https://127.0.0.1:${settings.port + i}`);
    try {
      await c.waitUntilReady({ timeoutMs: JOIN_TIMEOUT_MS, signal });
    } finally {
      c.close();
    }
    log(`Node [${i}] joined`);
  }
}

async function waitForSnapshotAfter(
  dir: string,
  seqno: number,
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + PHASE_TIMEOUT_MS;
  for (;;) {
    const names = existsSync(dir) ? readdirSync(dir) : [];
    const found = names.some((n) => {
      const parsed = parseSnapshotFileName(n);
      return parsed?.committed === true && parsed.seqno > seqno && statSync(join(dir, n)).size;
    });
    if (found) return;
    if (Date.now() > deadline) throw timeout(`no committed snapshot after ${seqno} in ${dir}`);
    await pause(200, signal);
  }
}

async function waitForPending(
  client: GovClient,
  count: number,
  signal: AbortSignal,
): Promise<string[]> {
  const deadline = Date.now() + JOIN_TIMEOUT_MS;
  for (;;) {
    const answer = await client.requestJson<{ nodes?: { node_id: string; status: string }[] }>(
      "GET",
      "/node/network/nodes?status=Pending",
    );
    const ids = (answer?.nodes ?? []).map((n) => n.node_id);
    if (ids.length >= count) return ids;
    if (Date.now() > deadline) throw timeout(`${ids.length} of ${count} joiners are Pending`);
    await pause(200, signal);
  }
}
