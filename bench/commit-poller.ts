/**
 * Commit observations from a thread of their own: `npm run bench` generates its load
 * (autocannon) on its main thread, whose event loop is busy enough to delay a poll's answer by
 * milliseconds, and by a hundred at the end of a run while autocannon tears down. The poller
 * thread (commit-poller-worker.ts) polls GET /node/commit and timestamps each answer when it
 * arrives; the main thread hands the observations to the CommitTracker in its own
 * performance.now() time line.
 */
import { Agent } from "node:https";
import { performance } from "node:perf_hooks";
import { startWorker } from "../src/platform/workers.js";
import { CommitTracker, parseTxId, type TxRef } from "./commit-tracker.js";
import { getJson, type Tls } from "./sandbox.js";

export interface PollerOptions {
  readonly url: string;
  readonly tls: Tls;
  readonly intervalMs: number;
  readonly maxInFlight: number;
}

export type PollerMessage =
  | { readonly kind: "commit"; readonly txId: string; readonly at: number }
  | { readonly kind: "error"; readonly message: string }
  | { readonly kind: "stopped" };

export interface CommitPoller {
  /** Settles at the first answer (or failure) of a poll: the thread is running. */
  readonly ready: Promise<void>;
  /** Stops polling once the polls in flight have answered. */
  stop(): Promise<void>;
}

/**
 * Starts the poller thread. `onCommit` gets each answer's commit txId and its arrival time on
 * this thread's performance.now() clock; `onError` each failed poll.
 */
export function startCommitPoller(
  options: PollerOptions,
  onCommit: (commit: TxRef, at: number) => void,
  onError: (message: string) => void,
): CommitPoller {
  // The node's own way to start a TypeScript worker (tsx registered in the thread first).
  const worker = startWorker(new URL("./commit-poller-worker.ts", import.meta.url), options);
  let stopped: () => void = () => undefined;
  let started: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (started = resolve));
  const done = new Promise<void>((resolve) => (stopped = resolve));
  worker.on("message", (m: PollerMessage) => {
    started();
    if (m.kind === "stopped") stopped();
    else if (m.kind === "error") onError(m.message);
    else {
      const commit = parseTxId(m.txId);
      if (commit === null) onError(`GET /node/commit: a bad transaction_id ${m.txId}`);
      else onCommit(commit, m.at - performance.timeOrigin);
    }
  });
  worker.on("error", (err) => {
    onError(`commit poller thread: ${err.message}`);
    started();
    stopped();
  });
  worker.on("exit", () => {
    started();
    stopped();
  });
  return {
    ready,
    async stop() {
      worker.postMessage("stop");
      const timeout = setTimeout(() => void worker.terminate(), 5_000);
      await done;
      clearTimeout(timeout);
      await worker.terminate();
    },
  };
}

/**
 * A commit tracker fed by a poller thread of `options.url`. The thread starts (and compiles) at
 * once, during a warm-up; observations count from `begin()`, which waits for the thread's first
 * answer. Status checks after a view change (GET /node/tx) run on this thread. `stop()` ends
 * the thread and the tracker.
 */
export function observeCommits(options: PollerOptions): {
  tracker: CommitTracker;
  begin: () => Promise<void>;
  stop: () => Promise<void>;
} {
  const { url, tls } = options;
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxInFlight });
  const status = async (id: TxRef): Promise<string> => {
    const path = `/node/tx?transaction_id=${id.view}.${id.seqno}`;
    const answer = await getJson(url, path, tls, agent);
    return String((answer.body as { status?: unknown } | null)?.status);
  };
  const tracker = new CommitTracker({ status }, options.intervalMs);
  let tracking = false;
  const poller = startCommitPoller(
    options,
    (commit, at) => tracking && tracker.observe(commit, at),
    (message) => tracking && tracker.pollFailed(message),
  );
  return {
    tracker,
    begin: async () => {
      await poller.ready;
      tracker.start();
      tracking = true;
    },
    stop: async () => {
      await poller.stop();
      await tracker.stop();
      agent.destroy();
    },
  };
}
