/**
 * Replay worker threads (replay-worker.ts) for the recovery's public and private replays
 * (recovery-replay.ts): a pool used round robin, and the batches of entries on their way
 * through it, handed back in seqno order. A batch failure is reported through the caller's
 * `failed`, which throws its own error type.
 */
import type { Worker } from "node:worker_threads";
import { startWorker } from "../../platform/workers.js";
import type { ReplayBatch, ReplayBatchResult, ReplayJob } from "./replay-worker.js";

const REPLAY_WORKER = new URL("./replay-worker.ts", import.meta.url);
/** Entries per batch handed to a replay worker. */
const BATCH_ENTRIES = 2048;

/** Where an entry is: its seqno, and its file and offset (for error messages). */
export interface Located {
  readonly seqno: number;
  readonly file: string;
  readonly offset: number;
}

/**
 * Entries on their way through replay workers: batched, dispatched ahead (at most two batches
 * per worker in flight), and handed back in seqno order with each entry's result (a plaintext,
 * or a write set digest and leaf). A failed entry is reported after those before it.
 */
export class ReplayBatches<T extends Located> {
  private readonly inFlight: { result: Promise<ReplayBatchResult>; located: T[] }[] = [];
  private entries: Uint8Array[] = [];
  private located: T[] = [];
  private bytes = 0;

  constructor(
    private readonly pool: ReplayPool | null,
    private readonly kind: ReplayJob,
    /** Reports the first entry a worker failed on (its result's error); never returns. */
    private readonly failed: (at: T, error: string, undecryptable: boolean) => never,
  ) {}

  get parallel(): boolean {
    return this.pool !== null;
  }

  async add(entry: Uint8Array, at: T, take: (result: Uint8Array, at: T) => void): Promise<void> {
    this.entries.push(entry);
    this.located.push(at);
    this.bytes += entry.byteLength;
    if (this.entries.length < BATCH_ENTRIES) return;
    this.dispatch();
    if (this.inFlight.length > 2 * this.pool!.size) await this.takeOldest(take);
  }

  async drain(take: (result: Uint8Array, at: T) => void): Promise<void> {
    if (this.pool === null) return;
    this.dispatch();
    while (this.inFlight.length > 0) await this.takeOldest(take);
  }

  private dispatch(): void {
    if (this.entries.length === 0) return;
    const bytes = new Uint8Array(this.bytes);
    const lengths = new Uint32Array(this.entries.length);
    let at = 0;
    this.entries.forEach((entry, i) => {
      bytes.set(entry, at);
      lengths[i] = entry.byteLength;
      at += entry.byteLength;
    });
    const result = this.pool!.run(this.kind, bytes.buffer, lengths);
    this.inFlight.push({ result, located: this.located });
    this.entries = [];
    this.located = [];
    this.bytes = 0;
  }

  private async takeOldest(take: (result: Uint8Array, at: T) => void): Promise<void> {
    const { result: pending, located } = this.inFlight.shift()!;
    const result = await pending;
    const out = new Uint8Array(result.out);
    const view = new DataView(result.out);
    let offset = 0;
    for (let i = 0; i < result.count; i++) {
      const length = view.getUint32(offset, true);
      take(out.subarray(offset + 4, offset + 4 + length), located[i]!);
      offset += 4 + length;
    }
    if (result.failedAt >= 0) {
      this.failed(located[result.failedAt]!, result.error, result.undecryptable);
    }
  }

  async close(): Promise<void> {
    // Results still in flight after a failure are not waited for.
    for (const f of this.inFlight) f.result.catch(() => undefined);
    await this.pool?.close();
  }
}

/** Replay worker threads, used round robin; answers come back by batch id. */
export class ReplayPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, PromiseWithResolversLike<ReplayBatchResult>>();
  private nextId = 0;
  private failure: Error | null = null;

  constructor(count: number, secrets: { fromSeqno: number; key: Uint8Array }[]) {
    for (let i = 0; i < count; i++) {
      const worker = startWorker(REPLAY_WORKER, { secrets });
      worker.on("message", (result: ReplayBatchResult) => {
        const waiter = this.waiting.get(result.id);
        this.waiting.delete(result.id);
        waiter?.resolve(result);
      });
      worker.on("error", (e) => this.fail(e));
      worker.on("exit", (code) => {
        if (this.waiting.size > 0) this.fail(new Error(`a replay worker exited (${code})`));
      });
      this.workers.push(worker);
    }
  }

  get size(): number {
    return this.workers.length;
  }

  run(kind: ReplayJob, bytes: ArrayBuffer, lengths: Uint32Array): Promise<ReplayBatchResult> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    const promise = new Promise<ReplayBatchResult>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
    });
    const batch: ReplayBatch = { id, kind, bytes, lengths };
    this.workers[id % this.workers.length]!.postMessage(batch, [bytes]);
    return promise;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const waiter of this.waiting.values()) waiter.reject(e);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

interface PromiseWithResolversLike<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}
