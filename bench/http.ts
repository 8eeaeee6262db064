/**
 * `npm run bench [-- --duration 10] [--warmup 2] [--connections 32] [--port 8700] [--nodes N]
 *                  [--no-etcd] [--sig-ms 20] [--poll-ms 5] [--observe primary|backup]
 *                  [--app builtin|js] [--app-service] [--series] [--json]`
 *
 * End-to-end write benchmark of a Consortia network, side by side with an etcd cluster measured
 * in the same run, one after the other (never both at once: they would share the cores).
 *
 * 1. Consortia: `consortia sandbox --no-wait` in a temporary workspace (its default node count,
 *    or --nodes; signatures every --sig-ms ms, since commit waits for the next signature),
 *    then POST /app/log/private to the primary over mTLS as user0 with keep-alive
 *    (autocannon) for --duration seconds, after --warmup seconds of the same load that are not
 *    measured (JIT compilation, TLS handshakes and first allocations of every process; etcd gets
 *    the same warm-up). Reported: response throughput and latency (the primary
 *    answers after local execution with a txId), committed throughput (responses whose txId a
 *    GET /node/commit poll of the primary, the node the client talks to, showed committed within
 *    the run window; `--observe backup` polls a backup instead, which learns of each commit one
 *    AppendEntries later) and commit latency (response receipt to that poll's answer, timed
 *    on a thread of its own so that the busy load thread does not delay it: commit-poller.ts;
 *    poll-gap resolution). Every node is then stopped.
 *    With `--app js`, the same run then does it again on a fresh sandbox that deployed
 *    bench/js-logging-app by governance (`consortia sandbox --js-app-bundle`: set_js_app, voted
 *    by the members), whose POST /app/log/private (a JS endpoint wins over the built-in one)
 *    writes the same record to the same map; both committed throughputs and their ratio are
 *    printed.
 *    With `--app js --app-service`, a third run on a fresh sandbox serves the same JS app from
 *    an app server (`consortia sandbox --app-service`: `consortia app serve` as a child process,
 *    registered by set_app_service): every request runs in the server and is validated and
 *    committed by the node (docs/adr/0005-app-services.md). Its committed throughput, CPU per
 *    commit (the app server included) and its ratio to the in-node JS app are printed.
 * 2. etcd, when on PATH: a 3-member cluster on loopback, puts through the JSON gateway to the
 *    leader with the same connections, duration and mTLS keep-alive client; members talk over
 *    mutually authenticated TLS too; a put is answered only once committed.
 *
 * Bounded: a watchdog ends the run after WATCHDOG_MS; SIGINT/SIGTERM and every failure stop
 * all processes started (by PID) and remove the temporary directories.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { observeCommits } from "./commit-poller.js";
import { commitHistogram, commitLatencySince } from "./prom-histogram.js";
import { CommitTracker, parseTxId, type CommitReport, type TxRef } from "./commit-tracker.js";
import { checkPut, etcdVersion, findLeader, putBodies, startEtcdCluster } from "./etcd.js";
import type { EtcdCluster } from "./etcd.js";
import {
  machineContext,
  measureProcessCpu,
  measureSteal,
  round,
  runLoad,
  type LoadResult,
  type ProcessCpu,
  type StealWindow,
} from "./load.js";
import {
  appServerProcess,
  findPrimary,
  getJson,
  nodePids,
  nodeProcesses,
  signalAll,
  startSandbox,
  stopSandbox,
  type Sandbox,
  type SandboxNode,
  type Tls,
} from "./sandbox.js";

const DRAIN_MS = 3_000;
/** The JS twin of the built-in logging app that `--app js` deploys. */
const JS_APP_DIR = join(import.meta.dirname, "js-logging-app");
/** Its POST /app/log/private's OpenAPI summary: /app/api showing it proves the JS app answers. */
const JS_APP_SUMMARY = "Record a private message (JSON {id, msg})";
const ETCD_MEMBERS = 3;
/** Commit polls outstanding at once (each on its own keep-alive connection). */
const POLL_IN_FLIGHT = 4;

const { values: args } = parseArgs({
  allowNegative: true,
  options: {
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    port: { type: "string", default: "8700" },
    nodes: { type: "string" },
    "sig-ms": { type: "string", default: "20" },
    etcd: { type: "boolean", default: true },
    "poll-ms": { type: "string", default: "5" },
    observe: { type: "string", default: "primary" },
    series: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
    app: { type: "string", default: "builtin" },
    "app-service": { type: "boolean", default: false },
  },
});
if (args.app !== "builtin" && args.app !== "js") throw new Error("--app: builtin or js");
if (args.observe !== "primary" && args.observe !== "backup") {
  throw new Error("--observe: primary or backup");
}
const withJsApp = args.app === "js";
const withAppService = args["app-service"];
if (withAppService && !withJsApp) throw new Error("--app-service needs --app js");
const WATCHDOG_MS = withAppService ? 420_000 : withJsApp ? 300_000 : 170_000;

/** Which app a Consortia run drives: built in, the JS app in the nodes, or from an app server. */
type AppKind = "builtin" | "js" | "service";
const durationS = Number(args.duration);
const warmupS = Number(args.warmup);
const connections = Number(args.connections);
const port = Number(args.port);
const pollMs = Number(args["poll-ms"]);
const nodes = args.nodes === undefined ? undefined : Number(args.nodes);
const sigMs = Number(args["sig-ms"]);
if (!(Number.isInteger(sigMs) && sigMs >= 1 && sigMs <= 10_000)) {
  throw new Error("--sig-ms: 1..10000");
}
if (!(durationS >= 1 && durationS <= 600)) throw new Error("--duration: 1..600 seconds");
if (!(Number.isInteger(warmupS) && warmupS >= 0 && warmupS <= 60)) {
  throw new Error("--warmup: 0..60 seconds");
}
if (!(connections >= 1 && connections <= 1024)) throw new Error("--connections: 1..1024");
if (!(Number.isInteger(port) && port >= 1 && port <= 65000)) throw new Error("--port: 1..65000");
if (!(pollMs >= 1 && pollMs <= 1000)) throw new Error("--poll-ms: 1..1000");
if (nodes !== undefined && !(Number.isInteger(nodes) && nodes >= 1 && nodes <= 9)) {
  throw new Error("--nodes: 1..9");
}

/** Everything started so far, for the watchdog and signal handlers (synchronous, last resort). */
const started: { workspace?: string | undefined; etcd?: EtcdCluster | undefined } = {};

function emergencyCleanup(): void {
  if (started.workspace !== undefined) {
    signalAll(nodePids(started.workspace), "SIGKILL");
    rmSync(started.workspace, { recursive: true, force: true });
  }
  if (started.etcd !== undefined) {
    signalAll(started.etcd.pids, "SIGKILL");
    rmSync(started.etcd.dir, { recursive: true, force: true });
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    emergencyCleanup();
    process.exit(130);
  });
}
const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 1000} s; stopping everything`);
  emergencyCleanup();
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

interface ConsortiaFigures {
  readonly nodes: number;
  readonly primary: string;
  readonly primaryNote: string | undefined;
  readonly load: LoadResult;
  readonly commit: CommitReport;
  /** Request-to-commit latency by second of the run. */
  readonly series: ReturnType<CommitTracker["series"]>;
  readonly steal: StealWindow;
  /** CPU seconds of each node and of the bench process during the load. */
  readonly cpu: ProcessCpu[];
  /** Execution to commit on the primary, from its own histogram over the run, ms. */
  readonly nodeCommit: { readonly p50Ms: number; readonly p99Ms: number; readonly count: number };
}

function headerValue(headers: Record<string, unknown>, name: string): unknown {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value[0] : value;
  }
  return undefined;
}

/** Which node the commit polls went to, for the report. */
let observedOn = "the primary";

/** Tracks commits by polling `url`'s /node/commit, and /node/tx for each recorded txId. */
/**
 * Starts measuring the CPU of each node of `workspace`, of its app server if any, and of this
 * process (the load).
 */
function measureNodesCpu(workspace: string, primaryIndex: number): () => ProcessCpu[] {
  const nodes = nodeProcesses(workspace).map((p) => ({
    label: p.index === primaryIndex ? `node ${p.index} (primary)` : `node ${p.index}`,
    pid: p.pid,
  }));
  const server = appServerProcess(workspace);
  if (server !== undefined) nodes.push({ label: "app server", pid: server.pid });
  return measureProcessCpu(nodes, "bench (load + polls)");
}

/** Fails unless the node's /app/api lists the JS app's POST /app/log/private. */
async function checkJsAppDeployed(url: string, tls: Tls): Promise<void> {
  const api = await getJson(url, "/app/api", tls);
  const paths = (api.body as { paths?: Record<string, { post?: { summary?: unknown } }> })?.paths;
  if (paths?.["/app/log/private"]?.post?.summary !== JS_APP_SUMMARY) {
    throw new Error(`the JS logging app is not deployed: GET /app/api answered ${api.status}`);
  }
}

/**
 * Where commit is observed: where a client would ask, on the primary it writes to (the polls
 * cost the primary about 1 % of its CPU); on a backup with --observe backup, which learns of a
 * commit one AppendEntries after the primary, so the latencies measured are upper bounds.
 */
function observerOf(nodes: readonly SandboxNode[], primary: SandboxNode): SandboxNode {
  const backup = nodes.find((n) => n.url !== primary.url);
  const observer = args.observe === "backup" ? (backup ?? primary) : primary;
  observedOn = observer === primary ? "the primary" : "a backup";
  return observer;
}

/**
 * --warmup seconds of the measured load, not measured, so that both systems are compared warm:
 * a long-running service has compiled its hot paths and made its connections long before.
 */
async function warmUp(
  url: string,
  path: string,
  tlsOptions: Tls,
  body: () => string,
): Promise<void> {
  if (warmupS === 0) return;
  const load = await runLoad({ url, path, connections, durationS: warmupS, tlsOptions, body });
  if (load.ok === 0) throw new Error(`warm-up of ${url}${path}: no successful response`);
}

/** A fresh sandbox in `workspace` serving `app`, and its primary. */
async function sandboxFor(
  app: AppKind,
  workspace: string,
): Promise<{ sandbox: Sandbox; primary: Awaited<ReturnType<typeof findPrimary>> }> {
  const [inNode, served] = [app === "js", app === "service"].map((b) =>
    b ? JS_APP_DIR : undefined,
  );
  const sandbox = startSandbox(workspace, port, nodes, sigMs, inNode, served);
  const primary = await findPrimary(sandbox.nodes, sandbox.tls);
  if (app !== "builtin") await checkJsAppDeployed(primary.node.url, sandbox.tls);
  return { sandbox, primary };
}

/** The write benchmark on a fresh sandbox, against the built-in or the JS logging app. */
async function benchConsortia(app: AppKind): Promise<ConsortiaFigures> {
  const workspace = mkdtempSync(join(tmpdir(), "consortia-bench-http-"));
  started.workspace = workspace;
  try {
    const { sandbox, primary } = await sandboxFor(app, workspace);
    const { tls } = sandbox;
    const { url } = observerOf(sandbox.nodes, primary.node);
    const observing = { url, tls, intervalMs: pollMs, maxInFlight: POLL_IN_FLIGHT };
    const { tracker, begin, stop } = observeCommits(observing);
    // autocannon calls onResponse, then reports the same response's latency, synchronously.
    let last: { id: TxRef; at: number } | undefined;
    let loading = true;
    let counter = 0;
    const body = (): string => JSON.stringify({ id: counter++ % 100_000, msg: "x".repeat(100) });
    await warmUp(primary.node.url, "/app/log/private", tls, body)
      .then(begin)
      .catch(async (err: unknown) => {
        await stop();
        throw err;
      });
    const histogramBefore = await commitHistogram(primary.node.url, tls);
    const steal = measureSteal();
    const cpu = measureNodesCpu(workspace, primary.node.index);
    let load: LoadResult;
    let cpuUsed: ProcessCpu[];
    try {
      load = await runLoad({
        url: primary.node.url,
        path: "/app/log/private",
        connections,
        durationS,
        tlsOptions: tls,
        body,
        onResponse: (status, headers) => {
          const id = parseTxId(headerValue(headers, "x-ms-ccf-transaction-id"));
          const ok = loading && status >= 200 && status < 300 && id !== null;
          last = ok ? { id, at: performance.now() } : undefined;
        },
        onLatency: (_status, latencyMs) => {
          if (last !== undefined) tracker.record(last.id, last.at, latencyMs);
          last = undefined;
        },
      });
      cpuUsed = cpu();
      loading = false;
      await tracker.drain(DRAIN_MS);
    } finally {
      await stop();
    }
    const commit = tracker.report(load.endedAt);
    const series = tracker.series(load.startedAt);
    const nodeCommit = await commitLatencySince(histogramBefore, primary.node.url, tls);
    return {
      nodes: sandbox.nodes.length,
      primary: `node ${primary.node.index} at ${primary.node.url}`,
      primaryNote: primary.note,
      load,
      commit,
      series,
      steal: steal(),
      cpu: cpuUsed,
      nodeCommit,
    };
  } finally {
    for (const note of await stopSandbox(workspace)) console.error(`bench: ${note}`);
    rmSync(workspace, { recursive: true, force: true });
    started.workspace = undefined;
  }
}

interface EtcdFigures {
  readonly version: string;
  readonly members: number;
  readonly leader: string;
  readonly load: LoadResult;
  readonly steal: StealWindow;
}

async function benchEtcd(version: string): Promise<EtcdFigures> {
  const cluster = await startEtcdCluster(ETCD_MEMBERS);
  started.etcd = cluster;
  try {
    const leader = await findLeader(cluster);
    const bodies = putBodies();
    await checkPut(leader, cluster.tls, bodies());
    await warmUp(leader.clientUrl, "/v3/kv/put", cluster.tls, bodies);
    const steal = measureSteal();
    const load = await runLoad({
      url: leader.clientUrl,
      path: "/v3/kv/put",
      connections,
      durationS,
      tlsOptions: cluster.tls,
      body: bodies,
    });
    return {
      version,
      members: cluster.members.length,
      leader: `${leader.name} at ${leader.clientUrl}`,
      load,
      steal: steal(),
    };
  } finally {
    for (const note of await cluster.stop()) console.error(`bench: ${note}`);
    started.etcd = undefined;
  }
}

const fmt = (x: number, digits = 0): string =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "n/a";
const ms = (x: number): string => `${fmt(x, Math.abs(x) < 10 ? 2 : 1)} ms`;
const stealText = (s: StealWindow): string =>
  s.stealS === null ? "not readable" : `${fmt(s.stealS, 2)} s (${fmt(s.stealPct ?? NaN, 1)} %)`;

const committedPerS = (c: ConsortiaFigures): number => c.commit.committedInWindow / c.load.windowS;

function printConsortia(c: ConsortiaFigures, app: string): void {
  const { load, commit } = c;
  console.log(
    `Consortia, ${c.nodes} node${c.nodes === 1 ? "" : "s"}, ${app}: POST /app/log/private to ` +
      `the primary (${c.primary}), ${connections} connections, ${durationS} s after ${warmupS} s ` +
      "of warm-up, mTLS keep-alive",
  );
  if (c.primaryNote !== undefined) console.log(`  warning      ${c.primaryNote}`);
  console.log(
    `  responses    ${fmt(load.perS)} req/s, latency p50 ${ms(load.p50Ms)}, ` +
      `p99 ${ms(load.p99Ms)} (errors ${load.errors}, non-2xx ${load.non2xx})`,
  );
  console.log(
    `  committed    ${fmt(committedPerS(c))} tx/s (${fmt(commit.committedInWindow)} of ` +
      `${fmt(commit.recorded)} responses committed within the run window)`,
  );
  console.log(
    `  commit lat.  p50 ${ms(commit.commitP50Ms)}, p99 ${ms(commit.commitP99Ms)} after the ` +
      `response; request to commit p50 ${ms(commit.endToEndP50Ms)}, ` +
      `p99 ${ms(commit.endToEndP99Ms)}`,
  );
  console.log(
    `               (resolution: one GET /node/commit poll of ${observedOn} from its own ` +
      `thread, started every ` +
      `${pollMs} ms, at most ${POLL_IN_FLIGHT} in flight; gap between observations p50 ` +
      `${ms(commit.pollGapP50Ms)}, p99 ${ms(commit.pollGapP99Ms)}` +
      `${commit.pollErrors > 0 ? `, ${commit.pollErrors} failed polls` : ""})`,
  );
  console.log(
    `               (on the primary, execution to commit by its own histogram: p50 ` +
      `${ms(c.nodeCommit.p50Ms)}, p99 ${ms(c.nodeCommit.p99Ms)}, ${fmt(c.nodeCommit.count)} ` +
      "transactions, interpolated in buckets)",
  );
  if (args.series) {
    for (const s of c.series) {
      console.log(
        `  second ${String(s.second).padStart(3)}  ${fmt(s.count)} committed, request to commit ` +
          `p50 ${ms(s.p50Ms)}, p99 ${ms(s.p99Ms)}`,
      );
    }
  }
  if (commit.views.length > 1) {
    console.log(
      `  warning      view change during the run (views ${commit.views.join(", ")}): ` +
        `${commit.invalid} transactions reported Invalid`,
    );
  }
  if (commit.uncommitted + commit.invalid > 0) {
    console.log(
      `  warning      ${commit.uncommitted + commit.invalid} transactions not committed ` +
        `${DRAIN_MS / 1000} s after the run` +
        (commit.lastPollError === undefined ? "" : ` (last poll error: ${commit.lastPollError})`),
    );
  }
  console.log(`  CPU / commit ${cpuText(c)}`);
  console.log(`  VM steal     ${stealText(c.steal)} of all cores during the load`);
}

/** Microseconds of CPU per transaction committed in the window, for one process's seconds. */
const usPerCommit = (c: ConsortiaFigures, cpuS: number): number =>
  (cpuS * 1e6) / Math.max(1, c.commit.committedInWindow);

function cpuText(c: ConsortiaFigures): string {
  const parts = c.cpu.map(
    (p) => `${p.label} ${p.cpuS === null ? "n/a" : `${fmt(usPerCommit(c, p.cpuS))} µs`}`,
  );
  const total = c.cpu.reduce((sum, p) => sum + (p.cpuS ?? 0), 0);
  return `${parts.join(", ")}; all ${fmt(usPerCommit(c, total))} µs (from /proc)`;
}

function printEtcd(e: EtcdFigures): void {
  console.log(
    `etcd ${e.version}, ${e.members} members: POST /v3/kv/put (16 B key, 100 B value) to the ` +
      `leader (${e.leader}), ${connections} connections, ${durationS} s after ${warmupS} s of ` +
      "warm-up, mTLS keep-alive " +
      "(members over mTLS)",
  );
  console.log(
    `  puts         ${fmt(e.load.perS)} puts/s, acknowledged after commit, latency p50 ` +
      `${ms(e.load.p50Ms)}, p99 ${ms(e.load.p99Ms)} ` +
      `(errors ${e.load.errors}, non-2xx ${e.load.non2xx})`,
  );
  console.log(`  VM steal     ${stealText(e.steal)} of all cores during the load`);
}

function consortiaJson(c: ConsortiaFigures) {
  const r = (x: number) => (Number.isFinite(x) ? round(x, 2) : null);
  return {
    nodes: c.nodes,
    primary: c.primary,
    responses_per_s: Math.round(c.load.perS),
    latency_p50_ms: r(c.load.p50Ms),
    latency_p99_ms: r(c.load.p99Ms),
    committed_per_s: Math.round(c.commit.committedInWindow / c.load.windowS),
    committed_in_window: c.commit.committedInWindow,
    responses_recorded: c.commit.recorded,
    committed_after_drain: c.commit.committed,
    not_committed: c.commit.uncommitted + c.commit.invalid,
    commit_latency_p50_ms: r(c.commit.commitP50Ms),
    commit_latency_p99_ms: r(c.commit.commitP99Ms),
    request_to_commit_p50_ms: r(c.commit.endToEndP50Ms),
    request_to_commit_p99_ms: r(c.commit.endToEndP99Ms),
    node_commit_p50_ms: r(c.nodeCommit.p50Ms),
    node_commit_p99_ms: r(c.nodeCommit.p99Ms),
    poll_ms: pollMs,
    poll_gap_p50_ms: r(c.commit.pollGapP50Ms),
    poll_gap_p99_ms: r(c.commit.pollGapP99Ms),
    poll_gap_max_ms: r(c.commit.pollGapMaxMs),
    views: c.commit.views,
    window_s: r(c.load.windowS),
    errors: c.load.errors,
    non_2xx: c.load.non2xx,
    cpu_steal_s: c.steal.stealS,
    cpu_s: Object.fromEntries(c.cpu.map((p) => [p.label, p.cpuS])),
    cpu_us_per_commit: Math.round(
      usPerCommit(
        c,
        c.cpu.reduce((sum, p) => sum + (p.cpuS ?? 0), 0),
      ),
    ),
  };
}

const before = machineContext();
console.log(
  `machine: ${before.cores} cores, load average ${before.loadavg.join(" ")} before the run, ` +
    `Node ${before.node}`,
);
const consortia = await benchConsortia("builtin");
printConsortia(consortia, "built-in logging app");
let consortiaJs: ConsortiaFigures | undefined;
let consortiaService: ConsortiaFigures | undefined;
if (withJsApp) {
  consortiaJs = await benchConsortia("js");
  printConsortia(consortiaJs, "JS logging app (bench/js-logging-app, set_js_app)");
  console.log(
    `JS app committed/s ÷ built-in app committed/s = ` +
      `${fmt(committedPerS(consortiaJs) / committedPerS(consortia), 2)} ` +
      `(${fmt(committedPerS(consortiaJs))} / ${fmt(committedPerS(consortia))})`,
  );
}
if (withAppService && consortiaJs !== undefined) {
  consortiaService = await benchConsortia("service");
  printConsortia(consortiaService, "JS logging app from an app server (set_app_service)");
  console.log(
    `app service committed/s ÷ in-node JS app committed/s = ` +
      `${fmt(committedPerS(consortiaService) / committedPerS(consortiaJs), 2)} ` +
      `(${fmt(committedPerS(consortiaService))} / ${fmt(committedPerS(consortiaJs))})`,
  );
}

const version = args.etcd ? etcdVersion() : null;
let etcd: EtcdFigures | undefined;
if (!args.etcd) {
  console.log("etcd: skipped (--no-etcd)");
} else if (version === null) {
  console.log(
    "etcd: not on PATH, no baseline this run (Debian/Ubuntu: apt-get install -y etcd-server)",
  );
} else {
  etcd = await benchEtcd(version);
  printEtcd(etcd);
  const ratio = consortia.commit.committedInWindow / consortia.load.windowS / etcd.load.perS;
  console.log(
    `Consortia committed/s ÷ etcd puts/s = ${fmt(ratio, 2)}; p99: Consortia response ` +
      `${ms(consortia.load.p99Ms)}, request to commit ${ms(consortia.commit.endToEndP99Ms)}; ` +
      `etcd put (committed) ${ms(etcd.load.p99Ms)}`,
  );
}
const after = machineContext();
console.log(`machine: load average ${after.loadavg.join(" ")} after the run`);

if (args.json) {
  console.log(
    JSON.stringify({
      bench: "http",
      endpoint: "POST /app/log/private",
      duration_s: durationS,
      warmup_s: warmupS,
      connections,
      node: before.node,
      cores: before.cores,
      loadavg_before: before.loadavg,
      loadavg_after: after.loadavg,
      consortia: consortiaJson(consortia),
      consortia_js_app: consortiaJs === undefined ? null : consortiaJson(consortiaJs),
      consortia_app_service:
        consortiaService === undefined ? null : consortiaJson(consortiaService),
      app_service_committed_ratio_vs_js_app:
        consortiaService === undefined || consortiaJs === undefined
          ? null
          : round(committedPerS(consortiaService) / committedPerS(consortiaJs), 3),
      js_app_committed_ratio:
        consortiaJs === undefined
          ? null
          : round(committedPerS(consortiaJs) / committedPerS(consortia), 3),
      etcd:
        etcd === undefined
          ? null
          : {
              version: etcd.version,
              members: etcd.members,
              puts_per_s: Math.round(etcd.load.perS),
              latency_p50_ms: round(etcd.load.p50Ms, 2),
              latency_p99_ms: round(etcd.load.p99Ms, 2),
              errors: etcd.load.errors,
              non_2xx: etcd.load.non2xx,
              cpu_steal_s: etcd.steal.stealS,
            },
      committed_ratio_vs_etcd:
        etcd === undefined
          ? null
          : round(consortia.commit.committedInWindow / consortia.load.windowS / etcd.load.perS, 3),
      etcd_missing: args.etcd && version === null,
    }),
  );
}
clearTimeout(watchdog);
