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
import { Worker, type MessagePort, type ResourceLimits } from "node:worker_threads";

export function startWorker(
  entry: URL,
  workerData: unknown,
  transferList: MessagePort[] = [],
  /** V8 limits of the thread (heap, stack); Node's defaults when absent. */
  resourceLimits?: ResourceLimits,
): Worker {
  if (!entry.pathname.endsWith(".ts")) {
    throw new TypeError(`worker entry ${entry.href} must name a .ts module`);
  }
  if (!import.meta.url.endsWith(".ts")) {
    const bundled = new URL(entry.href.replace(/\.ts$/, ".mjs"));
    return new Worker(bundled, { workerData, transferList, ...limitsOption(resourceLimits) });
  }
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap =
    `import(${JSON.stringify(tsx)}).then((m) => { m.register(); ` +
    `return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, {
    eval: true,
    workerData,
    transferList,
    ...limitsOption(resourceLimits),
  });
}

function limitsOption(resourceLimits: ResourceLimits | undefined): {
  resourceLimits?: ResourceLimits;
} {
  return resourceLimits === undefined ? {} : { resourceLimits };
}
