/**
 * The commit poller's thread (commit-poller.ts): polls GET /node/commit every `intervalMs`, at
 * most `maxInFlight` at once, and posts each answer with the time it arrived, in milliseconds
 * since the epoch at sub-millisecond resolution (performance.timeOrigin + performance.now()),
 * so that the bench's main thread, busy with the load, does not delay the observations.
 * Stops when the parent posts "stop", after its polls in flight have settled.
 */
import { Agent } from "node:https";
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import { getJson } from "./sandbox.js";
import type { PollerMessage, PollerOptions } from "./commit-poller.js";

const options = workerData as PollerOptions;
const port = parentPort;
if (port === null) throw new Error("commit-poller-worker.ts runs as a worker thread");
const agent = new Agent({ keepAlive: true, maxSockets: options.maxInFlight });
let running = true;
let wake: (() => void) | undefined;
port.on("message", (m: unknown) => {
  if (m !== "stop") return;
  running = false;
  wake?.();
});

const post = (m: PollerMessage): void => port.postMessage(m);

async function pollOnce(): Promise<void> {
  try {
    const answer = await getJson(options.url, "/node/commit", options.tls, agent);
    const at = performance.timeOrigin + performance.now();
    const id = (answer.body as { transaction_id?: unknown } | null)?.transaction_id;
    if (answer.status !== 200 || typeof id !== "string") {
      post({ kind: "error", message: `GET /node/commit: ${answer.status}` });
    } else post({ kind: "commit", txId: id, at });
  } catch (err: unknown) {
    post({ kind: "error", message: err instanceof Error ? err.message : String(err) });
  }
}

const inFlight = new Set<Promise<void>>();
while (running) {
  const startedAt = performance.now();
  if (inFlight.size < options.maxInFlight) {
    const poll = pollOnce();
    inFlight.add(poll);
    void poll.then(() => inFlight.delete(poll));
  }
  const wait = options.intervalMs - (performance.now() - startedAt);
  if (wait > 0 && running) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wait);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = undefined;
  }
}
await Promise.all([...inFlight]);
agent.destroy();
post({ kind: "stopped" });
