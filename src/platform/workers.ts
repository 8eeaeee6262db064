/**
 * Starting worker threads by the URL of their entry module. Owners name their worker with
 * `new URL("./<name>-worker.ts", import.meta.url)`, a module in their own folder; the build
 * (scripts/build.mjs) finds those URLs in the sources and bundles each entry as
 * dist/<name>-worker.mjs beside dist/cli.mjs, where the same URL, resolved from the bundle,
 * then points (with .mjs for .ts).
 *
 * Running from source under tsx, Node 20 does not apply the parent's --import loader hooks to
 * workers: the worker first registers tsx, then imports the TypeScript entry.
 */
import { assert } from "../base/assert.js";
import { Worker, type MessagePort, type ResourceLimits } from "node:worker_threads";

export interface WorkerOptions {
  /** V8 limits of the thread (heap, stack); Node's defaults when absent. */
  readonly resourceLimits?: ResourceLimits;
  /**
   * Run the thread at this nice value (lowerPrioritySource) from its first instruction, so
   * that even loading its modules (compiling TypeScript, from source) yields to the node.
   */
  readonly nice?: number;
}

export function startWorker(
  entry: URL,
  workerData: unknown,
  transferList: MessagePort[] = [],
  options: WorkerOptions = {},
): Worker {
  if (!entry.pathname.endsWith(".ts")) {
    throw new TypeError(`worker entry ${entry.href} must name a .ts module`);
  }
  const limits =
    options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits };
  const lower = options.nice === undefined ? "" : lowerPrioritySource(options.nice);
  if (!import.meta.url.endsWith(".ts")) {
    const bundled = new URL(entry.href.replace(/\.ts$/, ".mjs"));
    if (lower === "") return new Worker(bundled, { workerData, transferList, ...limits });
    const bootstrap = `${lower} import(${JSON.stringify(bundled.href)});`;
    return new Worker(bootstrap, { eval: true, workerData, transferList, ...limits });
  }
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap =
    `${lower} import(${JSON.stringify(tsx)}).then((m) => { m.register(); ` +
    `return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData, transferList, ...limits });
}

/**
 * Source lowering the running thread's priority to `nice` (0-19, higher is lower), for an eval'd
 * bootstrap (a CommonJS script). Linux schedules threads individually and setpriority accepts
 * a thread id, read from /proc/thread-self; elsewhere the thread keeps its priority.
 */
function lowerPrioritySource(nice: number): string {
  assert(Number.isInteger(nice) && nice >= 0 && nice <= 19, `nice ${nice} is not in 0..19`);
  return (
    `try { const tid = Number(require("node:fs").readlinkSync("/proc/thread-self")` +
    `.split("/").pop()); require("node:os").setPriority(tid, ${nice}); } catch (e) { void e; }`
  );
}
