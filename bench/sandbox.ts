/**
 * The Consortia side of `npm run bench`: start a sandbox exactly as a user would
 * (`consortia sandbox --no-wait`, from src/ through tsx), discover its nodes from the workspace it
 * wrote, find the primary, talk to nodes over mTLS as user0, and stop every node it started.
 *
 * Invariants:
 * - nodes are found from <workspace>/sandbox_<i>/config.json (their RPC bind address), falling
 *   back to the "Node [i] = https://..." lines the sandbox prints; node i's PID is in
 *   <workspace>/sandbox_<i>/node.pid;
 * - the app server of `--app-service` (if any) has its PID in
 *   <workspace>/sandbox_app_service/server.pid;
 * - stop() signals only PIDs read from those files: SIGTERM, then SIGKILL after STOP_GRACE_MS.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";
import { isProcessRunning } from "../src/cli/process-state.js";

const STOP_GRACE_MS = 5_000;
const START_TIMEOUT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 5_000;

export interface SandboxNode {
  readonly index: number;
  /** https://127.0.0.1:port */
  readonly url: string;
}

export interface Tls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface Sandbox {
  readonly workspace: string;
  readonly nodes: readonly SandboxNode[];
  /** user0's identity and the service certificate. */
  readonly tls: Tls;
}

/**
 * Node flags for the sandbox, which the nodes it spawns inherit with its execArgv:
 * CONSORTIA_BENCH_CPU_PROF=DIR writes V8 CPU profiles into DIR when they exit, and
 * CONSORTIA_BENCH_NODE_FLAGS="--flag ..." adds Node and V8 flags (A/B runs of runtime settings).
 */
export function nodeFlags(env: Record<string, string | undefined>): string[] {
  const profDir = env["CONSORTIA_BENCH_CPU_PROF"];
  const prof = profDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profDir}`];
  return [...prof, ...(env["CONSORTIA_BENCH_NODE_FLAGS"] ?? "").split(/\s+/).filter(Boolean)];
}

/**
 * Runs `consortia sandbox --no-wait` into `workspace`; throws with its output on failure. With
 * `jsAppBundle` (an app.json directory or bundle.json), the sandbox deploys that JS app by
 * governance (set_js_app, voted by its members) before it returns; with `appService`, an app
 * server serves that bundle and set_app_service registers it (`--app-service`).
 */
export function startSandbox(
  workspace: string,
  port: number,
  nodes?: number,
  sigMsInterval?: number,
  jsAppBundle?: string,
  appService?: string,
): Sandbox {
  const entry = join(import.meta.dirname, "..", "src", "cli", "entry.ts");
  const args = [...nodeFlags(process.env), "--import", import.meta.resolve("tsx"), entry];
  args.push("sandbox", "--no-wait");
  args.push("--workspace", workspace, "--port", String(port));
  if (nodes !== undefined) args.push("--nodes", String(nodes));
  if (sigMsInterval !== undefined) args.push("--sig-ms-interval", String(sigMsInterval));
  if (jsAppBundle !== undefined) args.push("--js-app-bundle", jsAppBundle);
  if (appService !== undefined) args.push("--app-service", appService);
  const started = spawnSync(process.execPath, args, {
    encoding: "utf8",
    timeout: START_TIMEOUT_MS,
  });
  if (started.status !== 0) {
    const why = started.error?.message ?? `exit ${started.status ?? started.signal}`;
    throw new Error(`sandbox failed to start (${why}):\n${started.stdout}\n${started.stderr}`);
  }
  const found = nodesFromWorkspace(workspace);
  const list = found.length > 0 ? found : nodesFromBanner(started.stdout);
  if (list.length === 0) throw new Error(`no node address found:\n${started.stdout}`);
  const common = join(workspace, "sandbox_common");
  const tls = {
    ca: readFileSync(join(common, "service_cert.pem")),
    cert: readFileSync(join(common, "user0_cert.pem")),
    key: readFileSync(join(common, "user0_privk.pem")),
  };
  return { workspace, nodes: list, tls };
}

function nodeDirs(workspace: string): { index: number; dir: string }[] {
  if (!existsSync(workspace)) return [];
  return readdirSync(workspace)
    .map((name) => ({ name, match: /^sandbox_(\d+)$/.exec(name) }))
    .filter((e) => e.match !== null)
    .map((e) => ({ index: Number(e.match![1]), dir: join(workspace, e.name) }))
    .sort((a, b) => a.index - b.index);
}

interface NodeConfigShape {
  network?: { rpc_interfaces?: Record<string, { bind_address?: string }> };
}

function nodesFromWorkspace(workspace: string): SandboxNode[] {
  const nodes: SandboxNode[] = [];
  for (const { index, dir } of nodeDirs(workspace)) {
    const file = join(dir, "config.json");
    if (!existsSync(file)) continue;
    const config = JSON.parse(readFileSync(file, "utf8")) as NodeConfigShape;
    const rpc = Object.values(config.network?.rpc_interfaces ?? {})[0]?.bind_address;
    if (rpc !== undefined) nodes.push({ index, url: `https://${rpc}` });
  }
  return nodes;
}

function nodesFromBanner(stdout: string): SandboxNode[] {
  return [...stdout.matchAll(/Node \[(\d+)\] = (https:\/\/[^\s]+)/g)].map((m) => ({
    index: Number(m[1]),
    url: m[2]!,
  }));
}

/** The running nodes of a sandbox workspace: index, PID and directory of each. */
export function nodeProcesses(workspace: string): { index: number; pid: number; dir: string }[] {
  const found: { index: number; pid: number; dir: string }[] = [];
  for (const { index, dir } of nodeDirs(workspace)) {
    const file = join(dir, "node.pid");
    if (!existsSync(file)) continue;
    const pid = Number(readFileSync(file, "utf8").trim());
    if (Number.isSafeInteger(pid) && pid > 0) found.push({ index, pid, dir });
  }
  return found;
}

/** The app server a sandbox started with --app-service left running, if any. */
export function appServerProcess(workspace: string): { pid: number; dir: string } | undefined {
  const dir = join(workspace, "sandbox_app_service");
  const file = join(dir, "server.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, dir } : undefined;
}

/** Every process the sandbox left running: its nodes, then its app server. */
function sandboxProcesses(workspace: string): { pid: number; dir: string }[] {
  const server = appServerProcess(workspace);
  return [...nodeProcesses(workspace), ...(server === undefined ? [] : [server])];
}

/** PIDs of the processes the sandbox left running (node.pid files, and server.pid). */
export function nodePids(workspace: string): number[] {
  return sandboxProcesses(workspace).map((p) => p.pid);
}

/**
 * Stops every node and the app server of the sandbox (stopPids); for one that had to be
 * killed, the note ends with the last lines of its out file, to show where its shutdown stalled.
 */
export async function stopSandbox(workspace: string): Promise<string[]> {
  const processes = sandboxProcesses(workspace);
  const notes = await stopPids(processes.map((p) => p.pid));
  return notes.map((note) => {
    const dir = processes.find((p) => note.startsWith(`PID ${p.pid} `))?.dir;
    if (dir === undefined) return note;
    let out: string;
    try {
      out = readFileSync(join(dir, "out"), "utf8").trimEnd().split("\n").slice(-3).join("\n  ");
    } catch (err: unknown) {
      out = `(no out file: ${String(err)})`;
    }
    return `${note}; last lines of ${join(dir, "out")}:\n  ${out}`;
  });
}

/** Sends `signal` to each PID still alive; returns those that were. */
export function signalAll(pids: readonly number[], signal: NodeJS.Signals): number[] {
  return pids.filter((pid) => {
    if (!isProcessRunning(pid)) return false;
    process.kill(pid, signal);
    return true;
  });
}

/** SIGTERM every PID, SIGKILL those still alive after the grace period; resolves when gone. */
export async function stopPids(pids: readonly number[]): Promise<string[]> {
  const notes: string[] = [];
  let alive = signalAll(pids, "SIGTERM");
  const deadline = Date.now() + STOP_GRACE_MS;
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    alive = alive.filter(isProcessRunning);
  }
  for (const pid of signalAll(alive, "SIGKILL")) {
    notes.push(`PID ${pid} ignored SIGTERM for ${STOP_GRACE_MS} ms and was killed`);
  }
  return notes;
}

/** One small JSON request to a node over mTLS; rejects on timeout or a non-JSON answer. */
export function getJson(
  base: string,
  path: string,
  tls: Tls,
  agent?: Agent,
): Promise<{ status: number; body: unknown }> {
  return requestJson(base, path, tls, { agent });
}

/**
 * One small JSON request over mTLS (a node, or the etcd baseline's members): POST with `body`,
 * GET without; rejects on timeout or a non-JSON answer.
 */
export async function requestJson(
  base: string,
  path: string,
  tls: Tls,
  options: { body?: string; agent?: Agent | undefined } = {},
): Promise<{ status: number; body: unknown }> {
  const { status, text } = await requestText(base, path, tls, options);
  try {
    return { status, body: text === "" ? null : JSON.parse(text) };
  } catch (err: unknown) {
    const method = options.body === undefined ? "GET" : "POST";
    throw new Error(`${method} ${path}: not JSON (${String(err)}): ${text.slice(0, 200)}`);
  }
}

/** One small request over mTLS, its answer as text; rejects on timeout. */
export function requestText(
  base: string,
  path: string,
  tls: Tls,
  options: { body?: string; agent?: Agent | undefined } = {},
): Promise<{ status: number; text: string }> {
  const { body, agent } = options;
  const method = body === undefined ? "GET" : "POST";
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, base),
      { ...tls, method, timeout: REQUEST_TIMEOUT_MS, ...(agent ? { agent } : {}) },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${base}${path} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

function nodeIdOf(body: unknown): string | undefined {
  const id = (body as { node_id?: unknown } | null)?.node_id;
  return typeof id === "string" ? id : undefined;
}

/**
 * The primary among `nodes`: the primary's node_id as any node reports it
 * (GET /node/network/nodes/primary), matched against each node's own id
 * (GET /node/network/nodes/self). Falls back to node 0, saying so in `note`.
 */
export async function findPrimary(
  nodes: readonly SandboxNode[],
  tls: Tls,
): Promise<{ node: SandboxNode; note: string | undefined }> {
  const first = nodes[0];
  if (first === undefined) throw new Error("no nodes");
  const ask = async (node: SandboxNode, path: string): Promise<string | undefined> => {
    try {
      const answer = await getJson(node.url, path, tls);
      return answer.status === 200 ? nodeIdOf(answer.body) : undefined;
    } catch {
      // An unreachable or not-yet-ready node just cannot answer; the others may.
      return undefined;
    }
  };
  let primaryId: string | undefined;
  for (const node of nodes) {
    primaryId ??= await ask(node, "/node/network/nodes/primary");
  }
  if (primaryId === undefined) {
    return { node: first, note: "no node named a primary; using node 0" };
  }
  for (const node of nodes) {
    if ((await ask(node, "/node/network/nodes/self")) === primaryId) {
      return { node, note: undefined };
    }
  }
  return { node: first, note: `primary ${primaryId} matched no node's self id; using node 0` };
}
