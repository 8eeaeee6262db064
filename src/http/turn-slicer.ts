/**
 * Bounds how long request handling keeps the event loop from polling its sockets.
 *
 * Node reads every socket that is ready in one poll phase and, through node:https, runs each
 * request's handler inside that read. Under load a turn answers every request that arrived
 * together, and a message that lands meanwhile (a backup's acknowledgement, which is what
 * commits the requests already answered) waits for the whole turn before it is even read.
 *
 * A TurnSlicer runs tasks at once while the current slice has time left. Once a slice has
 * used its budget, tasks queue and run in later slices, each of which begins only after the
 * event loop has polled again; so between two polls at most about one budget of handling runs
 * (a task is never cut, and the poll phase itself still reads what is ready). Tasks run in the
 * order they were submitted.
 *
 * Owns: its queue and the slice clock. Never drops a task. Tasks must not throw: one that does
 * is rethrown from the drain, after the rest of the queue is rescheduled.
 */
import { performance } from "node:perf_hooks";

export interface TurnSlicerOptions {
  /** Handling time a slice may use before later tasks wait for the next poll, in ms. */
  readonly budgetMs: number;
  /** Clock, in ms; performance.now by default (tests pass their own). */
  readonly now?: () => number;
  /** Defers to the check phase of this loop turn; setImmediate by default. */
  readonly defer?: (task: () => void) => void;
}

export class TurnSlicer {
  private readonly budgetMs: number;
  private readonly now: () => number;
  private readonly defer: (task: () => void) => void;
  private readonly queue: Array<() => void> = [];
  private head = 0;
  /** When the open slice began; NaN when no slice is open (the next task opens one). */
  private sliceStart = Number.NaN;
  /** True from a slice's exhaustion until the loop has polled and a new slice drains. */
  private waiting = false;

  constructor(options: TurnSlicerOptions) {
    if (!(options.budgetMs > 0)) throw new RangeError("budgetMs must be positive");
    this.budgetMs = options.budgetMs;
    this.now = options.now ?? (() => performance.now());
    this.defer = options.defer ?? setImmediate;
  }

  /** Tasks waiting for a later slice. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Runs `task` now if the slice has time left, else after the next poll. */
  submit(task: () => void): void {
    if (this.waiting) {
      this.queue.push(task);
      return;
    }
    const now = this.now();
    if (Number.isNaN(this.sliceStart)) this.openSlice(now);
    else if (now - this.sliceStart >= this.budgetMs) {
      this.queue.push(task);
      this.yieldToPoll();
      return;
    }
    task();
  }

  private openSlice(now: number): void {
    this.sliceStart = now;
    // The slice closes at the end of this loop turn's check phase, whatever it used.
    this.defer(() => {
      if (!this.waiting) this.sliceStart = Number.NaN;
    });
  }

  /**
   * Waits for the next poll, then drains. A deferred task runs in this turn's check phase
   * when deferred from the poll phase, so the drain defers twice: the second deferral, made
   * from the check phase, runs only after the loop has polled again.
   */
  private yieldToPoll(): void {
    if (this.waiting) return;
    this.waiting = true;
    this.defer(() => this.defer(() => this.drain()));
  }

  private drain(): void {
    this.waiting = false;
    const start = this.now();
    this.sliceStart = start;
    while (this.head < this.queue.length) {
      if (this.now() - start >= this.budgetMs) {
        this.yieldFromCheck();
        return;
      }
      try {
        this.runNext();
      } catch (e) {
        this.yieldFromCheck();
        throw e;
      }
    }
    this.queue.length = 0;
    this.head = 0;
    this.sliceStart = Number.NaN;
  }

  /** From a drain (the check phase): one deferral already runs after the next poll. */
  private yieldFromCheck(): void {
    this.waiting = true;
    this.defer(() => this.drain());
  }

  private runNext(): void {
    const task = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as () => void;
    this.head++;
    task();
  }
}

/**
 * A TurnSlicer's tasks, grouped by connection: urgent tasks run at once unless their
 * connection still has a task in the queue, so each connection's tasks run in their order.
 */
export class ConnectionSlicer<K extends object> {
  /** Tasks of each connection waiting in the slicer's queue (absent: none). */
  private readonly waiting = new WeakMap<K, number>();

  constructor(private readonly slicer: TurnSlicer) {}

  submit(connection: K, urgent: boolean, task: () => void): void {
    const waiting = this.waiting;
    if (urgent && !waiting.has(connection)) {
      task();
      return;
    }
    waiting.set(connection, (waiting.get(connection) ?? 0) + 1);
    this.slicer.submit(() => {
      const left = waiting.get(connection)! - 1;
      if (left === 0) waiting.delete(connection);
      else waiting.set(connection, left);
      task();
    });
  }
}
