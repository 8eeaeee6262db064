/**
 * Members' ballots run here, off the node's event loop: in a worker thread (ballot-worker.ts)
 * with a QuickJS module of its own. A ballot is code a single member supplies; a governance
 * request must not let it stall the node (heartbeats, /node/state) or grow the node's memory.
 *
 * - One warm worker: started ahead (`warm`), reused for every ballot while it stays healthy, so
 *   its start-up (loading QuickJS) is not paid per ballot; and, from the first job on, one
 *   spare, started ahead too, so that replacing a worker after a hostile ballot costs the next
 *   ballot no start-up either (a start takes ~50 ms from the bundle, seconds from source on a
 *   busy machine).
 * - Jobs run one at a time, in order; each ballot of a job is evaluated exactly once.
 * - A watchdog on this thread gives every ballot its deadline plus `graceMs`; past that the
 *   worker is terminated, whatever the guest is doing (even inside one long C call, where
 *   QuickJS's interrupt handler is not polled), and the ballot is a timeout.
 * - A worker the watchdog stopped, that died (e.g. V8's heap limit of the thread) or whose
 *   module may be unsound is replaced at once: the spare takes over the job's remaining
 *   ballots. One that hit a limit cleanly (QuickJS's own deadline, memory or stack) or grew
 *   past `recycleBytes` is sound but large: it keeps serving until the spare is ready, then is
 *   terminated between jobs. Terminating a worker frees its WASM memory, which otherwise never
 *   shrinks.
 *
 * Outcomes are CCF's vote failures: "Operation took too long to complete." for time, "Out of
 * memory." for memory, "Exception thrown: InternalError: stack overflow" for the stack.
 */
import type { Worker } from "node:worker_threads";
import type { JsCallOutcome } from "../gov/constitution-runner.js";
import type { WriteSet } from "../kv/write-set.js";
import { CcfError } from "../base/errors.js";
import { startWorker } from "../platform/workers.js";
import type { BallotJobMessage, BallotWorkerData, BallotWorkerMessage } from "./ballot-protocol.js";
import { OUT_OF_MEMORY_REASON, TIMEOUT_REASON } from "./constitution.js";
import { DEFAULT_JS_LIMITS, type JsLimits, resolveLimits } from "./sandbox.js";

const BALLOT_WORKER = new URL("./ballot-worker.ts", import.meta.url);

export interface BallotJob {
  /** What the ballots may read (ballot-view.ts). */
  readonly view: WriteSet;
  readonly proposal: string;
  readonly proposerId: string;
  /** Ballot sources, evaluated in this order. */
  readonly ballots: readonly string[];
}

export interface BallotPoolOptions {
  /** Overrides of DEFAULT_JS_LIMITS for each ballot. */
  readonly limits?: Partial<JsLimits>;
  /** How long past a ballot's deadline the watchdog waits before terminating the worker. */
  readonly graceMs?: number;
  /** A worker whose WASM memory is larger than this after a ballot is replaced. */
  readonly recycleBytes?: number;
  readonly log?: (line: string) => void;
}

export enum BallotPoolErrorCode {
  /** evaluate() after close(). */
  Closed = "Closed",
  /** The worker exited before it was ready (it could not load its module). */
  WorkerStartFailed = "WorkerStartFailed",
}
export type BallotPoolErrorType =
  | { code: BallotPoolErrorCode.Closed }
  | { code: BallotPoolErrorCode.WorkerStartFailed; exitCode: number };
export class BallotPoolError extends CcfError<BallotPoolErrorType> {}

export const DEFAULT_GRACE_MS = 250;
const DEFAULT_RECYCLE_BYTES = 64 * 1024 * 1024;
/**
 * The workers run below the node's thread, whatever the ballot does (and while they start).
 * Not far below: on a saturated machine a thread at nice 15 gets ~1/28 of a nice-0 thread's
 * share, and an honest ballot would miss its (wall-clock) deadline; at 5 it gets ~1/3.
 */
export const BALLOT_THREAD_NICE = 5;
/** V8 limits of the worker thread itself (its own JS, the job's view); WASM is apart. */
const WORKER_RESOURCE_LIMITS = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 };

interface WorkerSlot {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  /** The last 'error' the thread emitted (before it exits). */
  error: Error | null;
  /** Whether `ready` resolved. */
  isReady: boolean;
  /** Sound but to be replaced once the spare is ready (module comment). */
  retiring: boolean;
}

export class BallotPool {
  private readonly limits: JsLimits;
  private readonly graceMs: number;
  private readonly recycleBytes: number;
  private slot: WorkerSlot | null = null;
  /** Started ahead, to replace `slot` at once. */
  private spare: WorkerSlot | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextJobId = 1;
  private closed = false;
  /** Whether a job is running (a retiring worker is swapped only between jobs). */
  private busy = false;
  /** How many workers were started, the first included (replacements = started - 1). */
  started = 0;

  constructor(private readonly options: BallotPoolOptions = {}) {
    this.limits = resolveLimits(DEFAULT_JS_LIMITS, options.limits);
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    this.recycleBytes = options.recycleBytes ?? DEFAULT_RECYCLE_BYTES;
  }

  /**
   * Starts the worker now, so that the first ballot does not wait for it (unless closed). Its
   * spare starts with the first job: a node that never evaluates a ballot runs one worker.
   */
  warm(): void {
    if (!this.closed) this.acquire(false);
  }

  /** The outcome of each ballot of `job`, in order. Jobs run one after the other. */
  evaluate(job: BallotJob): Promise<JsCallOutcome<boolean>[]> {
    const run = this.queue.then(() => this.runJob(job));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves once the current worker and its spare (those started so far) are ready. */
  async whenStarted(): Promise<void> {
    await Promise.all([this.slot?.ready, this.spare?.ready]);
  }

  /** Terminates the workers; later evaluations fail. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = [this.slot, this.spare];
    this.slot = null;
    this.spare = null;
    await Promise.all(slots.map((slot) => slot?.worker.terminate()));
  }

  private async runJob(job: BallotJob): Promise<JsCallOutcome<boolean>[]> {
    const outcomes: JsCallOutcome<boolean>[] = [];
    let start = 0;
    this.swapIfRetiring();
    this.busy = true;
    try {
      while (start < job.ballots.length) {
        const slot = this.acquire();
        // Referenced while a job needs it (a caller awaiting only this must keep the process up).
        slot.worker.ref();
        try {
          await slot.ready;
          start = await this.runOn(slot, job, start, outcomes);
        } finally {
          slot.worker.unref();
        }
      }
    } finally {
      this.busy = false;
    }
    this.swapIfRetiring();
    return outcomes;
  }

  /** Between jobs: a retiring worker gives way to a ready spare, and is terminated. */
  private swapIfRetiring(): void {
    const slot = this.slot;
    if (this.busy || slot === null || !slot.retiring || this.spare?.isReady !== true) return;
    this.replace(slot);
  }

  /** The current worker (the spare, or a new one, if there is none), and a spare if asked. */
  private acquire(withSpare = true): WorkerSlot {
    if (this.closed) {
      throw new BallotPoolError({ code: BallotPoolErrorCode.Closed }, "the ballot pool is closed");
    }
    if (this.slot === null) {
      this.slot = this.spare ?? this.spawn();
      this.spare = null;
    }
    if (withSpare) this.spare ??= this.spawn();
    return this.slot;
  }

  private spawn(): WorkerSlot {
    const data: BallotWorkerData = { limits: this.limits, recycleBytes: this.recycleBytes };
    const worker = startWorker(BALLOT_WORKER, data, [], {
      resourceLimits: WORKER_RESOURCE_LIMITS,
      nice: BALLOT_THREAD_NICE,
    });
    worker.unref();
    this.started++;
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: BallotWorkerMessage) => {
        if (message.kind !== "ready") return;
        worker.off("message", onMessage);
        resolve();
      };
      worker.on("message", onMessage);
      worker.once("exit", (exitCode) =>
        reject(
          new BallotPoolError(
            { code: BallotPoolErrorCode.WorkerStartFailed, exitCode },
            `the ballot worker exited (${exitCode}) before it was ready`,
          ),
        ),
      );
    });
    const slot: WorkerSlot = { worker, ready, error: null, isReady: false, retiring: false };
    ready.then(
      () => {
        slot.isReady = true;
        this.swapIfRetiring();
      },
      () => undefined,
    );
    // Without a listener, a thread's error would be thrown on this thread.
    worker.on("error", (error) => {
      slot.error = error;
      this.options.log?.(`ballot worker failed: ${error.message}`);
    });
    worker.once("exit", () => {
      if (this.slot === slot) this.slot = null;
      if (this.spare === slot) this.spare = null;
    });
    return slot;
  }

  /** Terminates `slot`'s worker and starts its replacement (unless closed). */
  private replace(slot: WorkerSlot): void {
    if (this.slot === slot) this.slot = null;
    void slot.worker.terminate();
    if (!this.closed) this.acquire();
  }

  /**
   * Runs `job` from `start` on `slot`, filling `outcomes`; resolves with the index of the first
   * ballot still to run (the job's length when done). An unsound module, the watchdog or the
   * worker's death ends the run early, after recording the ballot it was on, and replaces the
   * worker.
   */
  private runOn(
    slot: WorkerSlot,
    job: BallotJob,
    start: number,
    outcomes: JsCallOutcome<boolean>[],
  ): Promise<number> {
    const id = this.nextJobId++;
    const { worker } = slot;
    return new Promise<number>((resolve) => {
      let index = start;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(onWatchdog, this.limits.deadlineMs + this.graceMs);
      };
      const finish = (next: number, replace: boolean) => {
        clearTimeout(timer);
        worker.off("message", onMessage);
        worker.off("exit", onExit);
        if (replace) this.replace(slot);
        resolve(next);
      };
      const onMessage = (message: BallotWorkerMessage) => {
        if (message.kind !== "vote" || message.id !== id) return;
        outcomes[message.index] = message.outcome;
        index = message.index + 1;
        if (message.spent === "retire") slot.retiring = true;
        const unsound = message.spent === "unsound";
        if (unsound || index === job.ballots.length) finish(index, unsound);
        else arm();
      };
      const onWatchdog = () => {
        this.options.log?.(`ballot ${index} passed its deadline: terminating its worker`);
        outcomes[index] = { kind: "error", reason: TIMEOUT_REASON };
        finish(index + 1, true);
      };
      const onExit = () => {
        outcomes[index] = deathOutcome(slot.error);
        finish(index + 1, true);
      };
      worker.on("message", onMessage);
      worker.once("exit", onExit);
      const message: BallotJobMessage = { kind: "job", id, ...job, start };
      worker.postMessage(message);
      arm();
    });
  }
}

/** The vote failure of a ballot whose worker died under it. */
function deathOutcome(error: Error | null): JsCallOutcome<boolean> {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "ERR_WORKER_OUT_OF_MEMORY") return { kind: "error", reason: OUT_OF_MEMORY_REASON };
  const why = error === null ? "it exited" : error.message;
  return { kind: "error", reason: `Exception thrown: the ballot's worker failed: ${why}` };
}
