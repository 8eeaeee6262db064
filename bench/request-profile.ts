/**
 * `node --import tsx bench/request-profile.ts [--runs 3] [--duration 8] [--connections 32]
 *     [--port 8800] [--warmup 1] [--profile] [--top 40] [--save-profile file.cpuprofile]
 *     [--app builtin|js] [--json]`
 *
 * Per-request CPU of a node: starts a 1-node sandbox exactly as `npm run bench` does
 * (bench/sandbox.ts), drives POST /app/log/private as user0 over mTLS keep-alive (autocannon;
 * with --app js, against bench/js-logging-app deployed by set_js_app) and reports, per run,
 * responses per second and the node process's CPU (utime + stime from /proc/<pid>/stat) per
 * response. Runs are independent sandboxes; the summary gives medians,
 * since this machine is noisy.
 *
 * --profile preloads a small profiler into the nodes (NODE_OPTIONS --import of a module written
 * into the workspace; Node refuses --cpu-prof there): SIGUSR2 starts the V8 CPU profiler
 * through node:inspector, a second SIGUSR2 writes the profile. The harness signals the node at
 * the start and end of the load window, then prints the functions with the most self time and
 * the inclusive time of our (src/) frames.
 *
 * Bounded: a watchdog kills every node started and removes the workspaces; nodes are always
 * stopped (by PID, bench/sandbox.ts) and workspaces removed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { processCpuSeconds, runLoad } from "./load.js";
import { nodePids, signalAll, startSandbox, stopSandbox } from "./sandbox.js";

const SAMPLING_INTERVAL_US = 250;
const PROFILE_WRITE_WAIT_MS = 5_000;

/** The preloaded profiler: SIGUSR2 starts sampling, the next SIGUSR2 writes PROFILE_OUT. */
const PRELOAD = `
import { Session } from "node:inspector";
import { writeFileSync } from "node:fs";
const out = process.env.CONSORTIA_PROFILE_OUT;
if (out) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on("SIGUSR2", () => {
    if (!running) {
      running = true;
      session.post("Profiler.enable", () =>
        session.post("Profiler.setSamplingInterval", { interval: ${SAMPLING_INTERVAL_US} }, () =>
          session.post("Profiler.start")));
      return;
    }
    running = false;
    session.post("Profiler.stop", (err, result) => {
      writeFileSync(out + "." + process.pid + ".cpuprofile",
        err ? JSON.stringify({ error: String(err) }) : JSON.stringify(result.profile));
    });
  });
}
`;
const WATCHDOG_MS = 600_000;

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    duration: { type: "string", default: "8" },
    warmup: { type: "string", default: "1" },
    connections: { type: "string", default: "32" },
    port: { type: "string", default: "8800" },
    profile: { type: "boolean", default: false },
    top: { type: "string", default: "40" },
    "save-profile": { type: "string" },
    json: { type: "boolean", default: false },
    app: { type: "string", default: "builtin" },
  },
});
if (args.app !== "builtin" && args.app !== "js") throw new Error("--app: builtin or js");
/** With --app js, the JS twin of the logging app that `npm run bench -- --app js` deploys. */
const jsAppDir = args.app === "js" ? join(import.meta.dirname, "js-logging-app") : undefined;
const runs = Number(args.runs);
const durationS = Number(args.duration);
const warmupS = Number(args.warmup);
const connections = Number(args.connections);
const port = Number(args.port);
const top = Number(args.top);
if (!(Number.isInteger(runs) && runs >= 1 && runs <= 50)) throw new Error("--runs: 1..50");
if (!(durationS >= 1 && durationS <= 120)) throw new Error("--duration: 1..120");
if (!(warmupS >= 0 && warmupS <= 30)) throw new Error("--warmup: 0..30");
if (!(Number.isInteger(port) && port >= 1 && port <= 65000)) throw new Error("--port: 1..65000");

/** The scratch directory of the run in progress; its sandbox workspace is `workspace/`. */
let liveWorkspace: string | undefined;
function emergencyCleanup(): void {
  if (liveWorkspace === undefined) return;
  signalAll(nodePids(join(liveWorkspace, "workspace")), "SIGKILL");
  rmSync(liveWorkspace, { recursive: true, force: true });
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    emergencyCleanup();
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  console.error(`request-profile: still running after ${WATCHDOG_MS / 1000} s; stopping`);
  emergencyCleanup();
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

/** utime + stime of a process (all threads), or of its main thread, in microseconds. */
function cpuMicros(pid: number, mainThreadOnly = false): number {
  const seconds = processCpuSeconds(pid, mainThreadOnly);
  if (seconds === null) throw new Error(`cannot read the CPU time of PID ${pid} from /proc`);
  return seconds * 1_000_000;
}

interface RunFigures {
  readonly perS: number;
  readonly cpuUsPerReq: number;
  /** The main thread's share (the event loop; sealer worker threads excluded). */
  readonly mainUsPerReq: number;
  readonly cpuBusyPct: number;
  readonly p50Ms: number;
  readonly errors: number;
  readonly non2xx: number;
}

let counter = 0;
const body = (): string => JSON.stringify({ id: counter++ % 100_000, msg: "x".repeat(100) });

/**
 * Runs `start` with the profiler preloaded into every node it spawns when `profileOut` is set
 * (NODE_OPTIONS and CONSORTIA_PROFILE_OUT are restored afterwards).
 */
function startWith<T>(profileOut: string | undefined, start: () => T): T {
  if (profileOut === undefined) return start();
  const savedOptions = process.env["NODE_OPTIONS"];
  const preload = `${profileOut}-preload.mjs`;
  writeFileSync(preload, PRELOAD);
  process.env["NODE_OPTIONS"] = `${savedOptions ?? ""} --import ${preload}`.trim();
  process.env["CONSORTIA_PROFILE_OUT"] = profileOut;
  try {
    return start();
  } finally {
    if (savedOptions === undefined) delete process.env["NODE_OPTIONS"];
    else process.env["NODE_OPTIONS"] = savedOptions;
    delete process.env["CONSORTIA_PROFILE_OUT"];
  }
}

async function oneRun(index: number): Promise<RunFigures> {
  const scratch = mkdtempSync(join(tmpdir(), "consortia-request-profile-"));
  // The sandbox wipes its workspace, so the profiler's files live next to it.
  const workspace = join(scratch, "workspace");
  liveWorkspace = scratch;
  try {
    const profileOut = join(scratch, "node");
    const sandbox = startWith(args.profile ? profileOut : undefined, () =>
      startSandbox(workspace, port + 10 * index, 1, undefined, jsAppDir),
    );
    const node = sandbox.nodes[0]!;
    const pid = nodePids(workspace)[0];
    if (pid === undefined) throw new Error("no node PID");
    const load = (seconds: number) =>
      runLoad({
        url: node.url,
        path: "/app/log/private",
        connections,
        durationS: seconds,
        tlsOptions: sandbox.tls,
        body,
      });
    if (warmupS > 0) await load(warmupS);
    if (args.profile) process.kill(pid, "SIGUSR2");
    const cpu0 = cpuMicros(pid);
    const main0 = cpuMicros(pid, true);
    const t0 = process.hrtime.bigint();
    const result = await load(durationS);
    const t1 = process.hrtime.bigint();
    const cpuUs = cpuMicros(pid) - cpu0;
    const mainUs = cpuMicros(pid, true) - main0;
    const windowUs = Number(t1 - t0) / 1000;
    const served = result.ok + result.non2xx;
    if (args.profile) {
      process.kill(pid, "SIGUSR2");
      summariseProfile(await waitForFile(`${profileOut}.${pid}.cpuprofile`));
    }
    return {
      perS: result.perS,
      cpuUsPerReq: cpuUs / Math.max(1, served),
      mainUsPerReq: mainUs / Math.max(1, served),
      cpuBusyPct: (100 * cpuUs) / windowUs,
      p50Ms: result.p50Ms,
      errors: result.errors,
      non2xx: result.non2xx,
    };
  } finally {
    for (const note of await stopSandbox(workspace)) console.error(`request-profile: ${note}`);
    rmSync(scratch, { recursive: true, force: true });
    liveWorkspace = undefined;
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(src|node_modules)\//, "$1/").replace(/^node:/, "");
  return `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}`;
}

async function waitForFile(file: string): Promise<string> {
  const deadline = Date.now() + PROFILE_WRITE_WAIT_MS;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`no profile written to ${file}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200)); // let the write finish
  return file;
}

/** Self and inclusive sample counts per frame name. */
function summariseProfile(file: string): void {
  const text = readFileSync(file, "utf8");
  if (args["save-profile"] !== undefined) writeFileSync(args["save-profile"], text);
  const profile = JSON.parse(text) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    total++;
    const leaf = byId.get(profile.samples[i]!)!;
    const leafName = frameName(leaf);
    self.set(leafName, (self.get(leafName) ?? 0) + 1);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const name = frameName(byId.get(id)!);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
    }
  }
  const pct = (n: number): string => `${((100 * n) / Math.max(1, total)).toFixed(1)}%`.padStart(6);
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  console.log(`  profile: ${total} samples in the load window`);
  console.log(`  top self time:`);
  for (const [name, n] of sorted(self).slice(0, top)) console.log(`    ${pct(n)}  ${name}`);
  console.log(`  inclusive time of src/ frames:`);
  for (const [name, n] of sorted(inclusive)
    .filter(([name]) => name.includes(" src/"))
    .slice(0, top)) {
    console.log(`    ${pct(n)}  ${name}`);
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const figures: RunFigures[] = [];
for (let i = 0; i < runs; i++) {
  const f = await oneRun(i);
  figures.push(f);
  console.log(
    `run ${i + 1}: ${f.perS.toFixed(0)} req/s, node CPU ${f.cpuUsPerReq.toFixed(1)} µs/req ` +
      `(main thread ${f.mainUsPerReq.toFixed(1)}; ${f.cpuBusyPct.toFixed(0)}% of a core), ` +
      `p50 ${f.p50Ms.toFixed(2)} ms, ` +
      `errors ${f.errors}, non-2xx ${f.non2xx}`,
  );
}
const summary = {
  runs,
  duration_s: durationS,
  connections,
  median_req_per_s: Math.round(median(figures.map((f) => f.perS))),
  median_cpu_us_per_req: Math.round(10 * median(figures.map((f) => f.cpuUsPerReq))) / 10,
  median_main_thread_us_per_req: Math.round(10 * median(figures.map((f) => f.mainUsPerReq))) / 10,
};
console.log(
  `median of ${runs}: ${summary.median_req_per_s} req/s, ` +
    `${summary.median_cpu_us_per_req} µs node CPU per request ` +
    `(main thread ${summary.median_main_thread_us_per_req} µs)`,
);
if (args.json) console.log(JSON.stringify(summary));
clearTimeout(watchdog);
