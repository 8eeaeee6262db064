/**
 * One chaos run (docs/testing.md "npm run chaos"; issue #15 item 4): a network of real node
 * processes whose node-to-node traffic goes through fault-injecting proxies in this process,
 * clients writing and reading a few records of the logging app, and the nemesis (nemesis.ts)
 * applying faults chosen by the seed for the given time. Then everything is healed, the
 * service must converge, and the run is judged:
 *
 * 1. every transaction a client holds is looked up (/app/tx on the primary): writes and reads
 *    are kept or dropped as clients.ts describes;
 * 2. every write whose transaction is Committed is Committed on every live node, and each
 *    record's final value (read on every live node) is the value of its last committed write,
 *    or of a write whose answer was lost and that took effect after it;
 * 3. the history, final reads included, is linearizable (src/check/linearizability.ts).
 *
 * The seed fixes the nemesis's choices and the clients' operations, not the timing of real
 * processes, so two runs with one seed apply the same kinds of faults but see different
 * histories.
 */
import { performance } from "node:perf_hooks";
import { Prng } from "../../src/base/prng.js";
import {
  checkHistory,
  minimizeViolation,
  type CheckResult,
  type HistoryOp,
} from "../../src/check/linearizability.js";
import { formatViolation } from "../../src/check/history-table.js";
import { Network, sleep, waitFor, type NetNode } from "../helpers/network.js";
import { NodeHttp, runClient, toHistory, type ClientWorld, type RecordedOp } from "./clients.js";
import { LinkProxies } from "./link-proxy.js";
import {
  applyFault,
  CLOCK_JUMPS_SKIPPED,
  members,
  isSlowFault,
  pickFault,
  SLOW_FAULT_MS,
  type FaultKind,
  type NemesisWorld,
} from "./nemesis.js";
import { finalChecks } from "./final-checks.js";

export interface ChaosOptions {
  readonly faultsMs: number;
  readonly seed: number;
  readonly nodes: number;
  readonly clients: number;
  readonly keys: number;
  /** Reads from any node, unchecked (clients.ts ClientWorld.unsafeReads): must find anomalies. */
  readonly unsafeReads?: boolean;
  /** Faults applied first, in this order, before the seed picks (so a short run covers each). */
  readonly schedule?: readonly FaultKind[];
  readonly log: (line: string) => void;
}

export interface ChaosReport {
  readonly ops: { total: number; ok: number; failed: number; indeterminate: number };
  readonly faults: readonly string[];
  /** Node-to-node connections the proxies accepted, refused (cut links), could not attribute. */
  readonly links: { accepted: number; refused: number; unidentified: number };
  readonly check: CheckResult;
  /** Lost committed writes, diverging final values, no convergence: each a sentence. */
  readonly lost: readonly string[];
  /** The violating keys' histories as tables. */
  readonly anomalies: readonly string[];
  readonly passed: boolean;
  /** The history the checker judged, and the monotonic time the run started. */
  readonly history: readonly HistoryOp[];
  readonly originMs: number;
  /** Every operation as recorded, with its transaction and status. */
  readonly recorded: readonly RecordedOp[];
}

/** Proxy ports sit at basePort + PROXY_OFFSET + i, above node-to-node (100) and apps (200). */
const PROXY_OFFSET = 300;
/** Node slots: the base nodes plus the replacements and additions of a long run. */
const NODE_SLOTS_MAX = 40;

async function startNetwork(o: ChaosOptions): Promise<{ net: Network; proxies: LinkProxies }> {
  let net: Network | undefined;
  let proxies: LinkProxies | undefined;
  const pidOf = (i: number) => {
    const node = net?.nodes[i];
    return node === undefined || node.killed === true ? undefined : node.pid;
  };
  net = await Network.start(o.nodes, {
    electionTimeoutMs: 1000,
    spareNodes: NODE_SLOTS_MAX - o.nodes,
    nodeToNodeProxy: {
      offset: PROXY_OFFSET,
      proxyReady: async (basePort) => {
        proxies = new LinkProxies({
          basePort,
          proxyOffset: PROXY_OFFSET,
          count: NODE_SLOTS_MAX,
          pidOf,
          nodeCount: () => net?.nodes.length ?? NODE_SLOTS_MAX,
        });
        await proxies.start();
      },
    },
  });
  return { net, proxies: proxies! };
}

/** Answers the node that says it is the primary (GET /node/primary = 200), if any. */
async function probePrimary(net: Network, http: NodeHttp): Promise<NetNode | undefined> {
  const answers = await Promise.all(
    members(net).map(async (n) => {
      const a = await http.call(n.port, "GET", "/node/primary").catch(() => undefined);
      return a?.status === 200 ? n : undefined;
    }),
  );
  return answers.find((n) => n !== undefined);
}

interface Run {
  readonly o: ChaosOptions;
  readonly net: Network;
  readonly proxies: LinkProxies;
  readonly http: NodeHttp;
  readonly ops: RecordedOp[];
  primary: NetNode | undefined;
  stop: boolean;
}

function clientWorld(run: Run, keys: readonly number[]): ClientWorld {
  return {
    http: run.http,
    keys,
    primary: () => run.primary,
    live: () => members(run.net),
    stopped: () => run.stop,
    record: (op) => run.ops.push(op),
    unsafeReads: run.o.unsafeReads === true,
  };
}

/** findPrimary probes this many times, 500 ms apart, before it gives up. */
const PRIMARY_PROBES_MAX = 10;

async function nemesisLoop(run: Run, rng: Prng, faults: string[]): Promise<void> {
  const world: NemesisWorld = {
    net: run.net,
    proxies: run.proxies,
    rng,
    baseNodes: run.o.nodes,
    log: run.o.log,
    findPrimary: async () => {
      // An election may be under way: give it a few election timeouts.
      for (let attempt = 0; attempt < PRIMARY_PROBES_MAX; attempt++) {
        const found = await probePrimary(run.net, run.http);
        if (found !== undefined) return (run.primary = found);
        await sleep(500);
      }
      return undefined;
    },
  };
  const deadline = performance.now() + run.o.faultsMs;
  while (performance.now() < deadline) {
    await sleep(1000 + rng.intBelow(2000));
    if (performance.now() >= deadline) break;
    const fastOnly = deadline - performance.now() < SLOW_FAULT_MS;
    // The scheduled faults first (a slow one only while there is time for it), then by seed.
    const scheduled = run.o.schedule?.[faults.length];
    const kind =
      scheduled !== undefined && !(fastOnly && isSlowFault(scheduled))
        ? scheduled
        : pickFault(rng, fastOnly);
    if (await applyFault(world, kind)) faults.push(kind);
  }
}

/** Heals every fault and waits until a primary commits a write that every live node has. */
async function converge(run: Run): Promise<void> {
  run.proxies.heal();
  for (const node of members(run.net)) process.kill(node.pid, "SIGCONT");
  const txId = await waitFor("a write accepted after healing", 60_000, async () => {
    const p = await run.net.primary(60_000);
    const reply = await run.net.call(p, "POST", "/app/log/private", { id: 0, msg: "healed" });
    return reply.status === 200 ? String(reply.headers["x-ms-ccf-transaction-id"]) : undefined;
  });
  for (const node of members(run.net)) await run.net.waitCommitted(node, txId, 60_000);
  run.primary = await run.net.primary(30_000);
  run.o.log(
    `converged: node ${run.primary.index} is primary; ${txId} is committed on every live node`,
  );
}

/** Writes each key once and waits for it to commit, so that no read legitimately misses one. */
async function seedKeys(run: Run, keys: readonly number[]): Promise<void> {
  const primary = await run.net.primary();
  for (const id of keys) {
    const callMs = performance.now();
    const txId = await run.net.write(primary, id, `initial-${id}`);
    const returnMs = performance.now();
    await run.net.waitCommitted(primary, txId);
    run.ops.push({
      client: -1,
      node: primary.index,
      key: String(id),
      kind: "write",
      value: `initial-${id}`,
      callMs,
      returnMs,
      txId,
      outcome: "ok",
    });
  }
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const rng = new Prng(o.seed);
  const originMs = performance.now();
  const { net, proxies } = await startNetwork(o);
  const http = new NodeHttp({ ...net.tls });
  const run: Run = { o, net, proxies, http, ops: [], primary: undefined, stop: false };
  const faults: string[] = [];
  try {
    const ids = net.nodes.map((n) => `${n.index}=${n.id.slice(0, 6)}`).join(" ");
    o.log(
      `network up: ${o.nodes} nodes (${ids}) at https://127.0.0.1:${net.basePort}; ${CLOCK_JUMPS_SKIPPED}`,
    );
    const keys = Array.from({ length: o.keys }, (_, i) => i + 1);
    await seedKeys(run, keys);
    run.primary = await probePrimary(net, http);
    const poller = (async () => {
      while (!run.stop) {
        run.primary = (await probePrimary(net, http)) ?? run.primary;
        await sleep(200);
      }
    })();
    const world = clientWorld(run, keys);
    const clients = Array.from({ length: o.clients }, (_, c) => runClient(world, c, rng.fork()));
    await nemesisLoop(run, rng, faults);
    run.stop = true;
    await Promise.all([poller, ...clients]);
    o.log("faults over; healing");
    const lost = await converge(run).then(
      () => finalChecks(run, keys),
      (e: unknown) => [`the network did not converge after healing: ${String(e)}`],
    );
    const history = toHistory(run.ops);
    const check = checkHistory(history);
    const anomalies = check.keys.flatMap((v) =>
      v.kind === "violation"
        ? [
            `${formatViolation(minimizeViolation(v), originMs, "minimized")}\n\n` +
              formatViolation(v, originMs, "whole history around it"),
          ]
        : [],
    );
    const count = (what: RecordedOp["outcome"]) =>
      run.ops.filter((op) => op.outcome === what).length;
    const ops = {
      total: run.ops.length,
      ok: count("ok"),
      failed: count("failed"),
      indeterminate: count("indeterminate"),
    };
    const passed = lost.length === 0 && check.kind === "linearizable";
    const { accepted, refused, unidentified } = proxies;
    const links = { accepted, refused, unidentified };
    const recorded = run.ops;
    return { ops, faults, links, check, lost, anomalies, passed, history, originMs, recorded };
  } finally {
    run.stop = true;
    http.close();
    await proxies.close();
    await net.stop();
  }
}

export type { Run };
