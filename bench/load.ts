/**
 * The load side shared by `npm run bench`'s targets: one autocannon run of a single POST
 * endpoint with keep-alive, its latencies kept per response (sub-millisecond, unlike
 * autocannon's integer histogram), plus the machine context printed next to the figures
 * (cores, load average, VM steal read from /proc/stat).
 *
 * Invariants:
 * - a run is bounded by its duration: autocannon stops every client when it elapses;
 * - only 2xx responses count as served; others land in `non2xx` or `errors`;
 * - `onResponse` sees each response once, synchronously, before its latency is recorded, so a
 *   caller can pair the two (autocannon emits the request hook, then the response event).
 */
import { readFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";

export interface LoadOptions {
  /** Origin, e.g. https://127.0.0.1:8000 (loopback only). */
  readonly url: string;
  readonly path: string;
  readonly connections: number;
  readonly durationS: number;
  readonly body: () => string;
  readonly tlsOptions?: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
  /** Called for every response with its status and headers (names as the server sent them). */
  readonly onResponse?: (status: number, headers: Record<string, unknown>) => void;
  /** Called right after onResponse with the same response's latency (ms, request to response). */
  readonly onLatency?: (status: number, latencyMs: number) => void;
}

export interface LoadResult {
  /** 2xx responses. */
  readonly ok: number;
  /** 2xx responses per second of the run window. */
  readonly perS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly non2xx: number;
  /** Wall time of the run window, seconds (start of load to the last client stopped). */
  readonly windowS: number;
  /** performance.now() at the start and end of the run window. */
  readonly startedAt: number;
  readonly endedAt: number;
}

/** The p-th percentile (0..100) of an ascending array; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length));
  return sorted[index]!;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  if (!LOOPBACK.has(target.hostname)) throw new Error(`refusing a non-loopback target ${target}`);
  const latencies: number[] = [];
  const startedAt = performance.now();
  let onResponse: autocannon.Request["onResponse"];
  if (options.onResponse !== undefined) {
    const hook = options.onResponse;
    onResponse = (status: number, _body: string, _context: object, headers?: object) =>
      hook(status, (headers ?? {}) as Record<string, unknown>);
  }
  let settle: (error: Error | null, result: autocannon.Result) => void = () => {};
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    settle = (error, result) => (error === null ? resolve(result) : reject(error));
  });
  const instance = autocannon(
    {
      url: target.origin,
      connections: options.connections,
      duration: options.durationS,
      ...(options.tlsOptions === undefined ? {} : { tlsOptions: options.tlsOptions }),
      requests: [
        {
          method: "POST",
          path: options.path,
          headers: { "content-type": "application/json" },
          setupRequest: (request) => ({ ...request, body: options.body() }),
          ...(onResponse === undefined ? {} : { onResponse }),
        },
      ],
    },
    (error, result) => settle(error ?? null, result),
  );
  instance.on("response", (_client, status, _bytes, latencyMs) => {
    if (status >= 200 && status < 300) latencies.push(latencyMs);
    options.onLatency?.(status, latencyMs);
  });
  const result = await finished;
  const endedAt = performance.now();
  const sorted = Float64Array.from(latencies).sort();
  const windowS = (endedAt - startedAt) / 1000;
  return {
    ok: latencies.length,
    perS: latencies.length / windowS,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    windowS,
    startedAt,
    endedAt,
  };
}

/** Cumulative steal time of all CPUs, seconds (USER_HZ = 100), or null off Linux. */
export function stealSeconds(): number | null {
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
    const steal = Number(cpu[8]);
    return Number.isFinite(steal) ? steal / 100 : null;
  } catch {
    // No /proc/stat (not Linux): steal is simply not reported.
    return null;
  }
}

export interface StealWindow {
  /** Steal seconds summed over all cores during the window, or null if unreadable. */
  readonly stealS: number | null;
  /** stealS as a share of cores x window, percent. */
  readonly stealPct: number | null;
}

/** Starts a steal measurement; the returned function ends it. */
export function measureSteal(): () => StealWindow {
  const start = stealSeconds();
  const t0 = performance.now();
  return () => {
    const end = stealSeconds();
    if (start === null || end === null) return { stealS: null, stealPct: null };
    const coreSeconds = (availableParallelism() * (performance.now() - t0)) / 1000;
    const stealS = end - start;
    return { stealS: round(stealS, 2), stealPct: round((100 * stealS) / coreSeconds, 1) };
  };
}

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ; 100 on every Linux port). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) process `pid` has used so far (all its threads, or with
 * `mainThreadOnly` its main thread: the event loop), from /proc, or null.
 */
export function processCpuSeconds(pid: number, mainThreadOnly = false): number | null {
  try {
    const path = mainThreadOnly ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`;
    const stat = readFileSync(path, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces: the first
    // is field 3 (state), so utime (field 14) and stime (field 15) are at 11 and 12.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(rest[11]) + Number(rest[12]);
    return Number.isFinite(ticks) ? ticks / USER_HZ : null;
  } catch {
    // Exited, or not Linux: not reported.
    return null;
  }
}

/** CPU seconds one process spent during a measurement window; null when unreadable. */
export interface ProcessCpu {
  readonly label: string;
  readonly cpuS: number | null;
}

/**
 * Starts measuring the CPU time of each labelled process, and of this one (labelled `self`,
 * from process.cpuUsage(), which includes its worker threads); the returned function ends it.
 */
export function measureProcessCpu(
  processes: readonly { label: string; pid: number }[],
  self: string,
): () => ProcessCpu[] {
  const start = processes.map((p) => processCpuSeconds(p.pid));
  const selfStart = process.cpuUsage();
  return () => {
    const measured = processes.map((p, i) => {
      const end = processCpuSeconds(p.pid);
      const begin = start[i];
      const cpuS = end === null || begin === null || begin === undefined ? null : end - begin;
      return { label: p.label, cpuS: cpuS === null ? null : round(cpuS, 2) };
    });
    const used = process.cpuUsage(selfStart);
    measured.push({ label: self, cpuS: round((used.user + used.system) / 1e6, 2) });
    return measured;
  };
}

export interface MachineContext {
  readonly cores: number;
  readonly loadavg: readonly number[];
  readonly node: string;
}

export function machineContext(): MachineContext {
  return {
    cores: availableParallelism(),
    loadavg: loadavg().map((x) => round(x, 2)),
    node: process.version,
  };
}

export function round(x: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(x * scale) / scale;
}
