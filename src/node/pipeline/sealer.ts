/**
 * Entry sealers: where committed write sets become ledger entries, digests and Merkle leaves
 * (seal-batch.ts). Sealing costs ~20 us of crypto per transaction (commit nonce HMAC,
 * AES-GCM, three SHA-256), more than executing it, so the node can run it on worker threads
 * and keep its own thread for execution, the Merkle tree and IO.
 *
 * Both sealers batch: submit() queues, results come back in seqno order from poll()
 * (non-blocking) or drain() (blocks until everything submitted is sealed: the node drains
 * before a signature, whose root must cover every earlier entry). The worker sealer hands
 * results back over a MessagePort read with receiveMessageOnPort, so the API stays
 * synchronous; drain() sleeps on a shared counter (Atomics.wait) the worker bumps per batch.
 * Each finished batch is also announced on the worker's own channel (onSealed), so the node
 * can pick results up as soon as they exist instead of on a timer.
 */
import {
  receiveMessageOnPort,
  MessageChannel,
  type MessagePort,
  type Worker,
} from "node:worker_threads";
import { assert, AssertionError } from "../../base/assert.js";
import { startWorker } from "../../platform/workers.js";
import type { Seqno } from "../../base/ids.js";
import type { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import {
  decodeSealResults,
  encodeSealBatch,
  sealBatch,
  type SealJob,
  type SealedTx,
} from "../../ledger/seal-batch.js";

export interface EntrySealer {
  /** Queues a committed transaction (in seqno order); may dispatch a full batch. */
  submit(job: SealJob): void;
  /**
   * Sealed transactions available now, in seqno order. Dispatches a queued partial batch,
   * unless (worker sealer) every worker is busy: then the batch keeps filling.
   */
  poll(): SealedTx[];
  /** Blocks until everything submitted is sealed; returns the remaining results in order. */
  drain(): SealedTx[];
  /** A new ledger secret in force from `fromSeqno` (submit nothing at or past it before this). */
  addSecret(fromSeqno: Seqno, key: Uint8Array): void;
  /** Forgets secrets in force only after `seqno` (their rekey was rolled back). Drained first. */
  retractSecrets(seqno: Seqno): void;
  /** Transactions submitted and not yet returned. */
  readonly pendingCount: number;
  close(): Promise<void>;
}

/** Seals `jobs` as one batch on the calling thread (the same bytes a worker produces). */
function sealHere(jobs: readonly SealJob[], secrets: LedgerSecrets): SealedTx[] {
  return decodeSealResults(sealBatch(encodeSealBatch(jobs), secrets));
}

/** Seals on the calling thread, one batch per poll(). */
export class InlineSealer implements EntrySealer {
  private queue: SealJob[] = [];

  constructor(private readonly secrets: LedgerSecrets) {}

  get pendingCount(): number {
    return this.queue.length;
  }

  submit(job: SealJob): void {
    this.queue.push(job);
  }

  poll(): SealedTx[] {
    if (this.queue.length === 0) return [];
    const queued = this.queue;
    this.queue = [];
    return sealHere(queued, this.secrets);
  }

  drain(): SealedTx[] {
    return this.poll();
  }

  addSecret(fromSeqno: Seqno, key: Uint8Array): void {
    this.secrets.add(fromSeqno, key);
  }

  retractSecrets(seqno: Seqno): void {
    this.secrets.retractAfter(seqno);
  }

  async close(): Promise<void> {}
}

export interface WorkerSealerOptions {
  readonly secrets: LedgerSecrets;
  /** Worker threads (1 on a 2-core machine leaves a core for the node). */
  readonly workers: number;
  /** Transactions per batch; a full batch is dispatched at once. */
  readonly batchTxMax: number;
  /** Batches in flight before submit() waits for results (bounds memory). */
  readonly inFlightBatchesMax: number;
  /**
   * Called (asynchronously, from the event loop) each time a worker finished a batch, so that
   * the owner can poll() without a timer.
   */
  readonly onSealed?: (() => void) | undefined;
}

interface SealWorker {
  readonly worker: Worker;
  readonly port: MessagePort;
  /** Bumped by the worker after each result it posts. */
  readonly counter: Int32Array;
  error: Error | null;
}

/** How long drain() sleeps between checks, and how many silent sleeps mean a dead worker. */
const WAIT_SLICE_MS = 50;
const SILENT_WAITS_MAX = 200;

const SEALER_WORKER = new URL("./sealer-worker.ts", import.meta.url);

export class WorkerSealer implements EntrySealer {
  private readonly workers: SealWorker[] = [];
  private queue: SealJob[] = [];
  // Invariant: inFlight lists dispatched batches in seqno order with the worker sealing each.
  private readonly inFlight: { worker: number; count: number }[] = [];
  private ready: SealedTx[] = [];
  private next = 0;
  private pending = 0;
  /** Batches sent to the workers so far. */
  batchesDispatched = 0;

  constructor(private readonly options: WorkerSealerOptions) {
    assert(options.workers >= 1, "at least one worker");
    assert(options.batchTxMax >= 1, "batches hold at least one transaction");
    for (let i = 0; i < options.workers; i++) this.workers.push(this.spawn());
  }

  private spawn(): SealWorker {
    const channel = new MessageChannel();
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const workerData = { secrets: this.options.secrets.list(), port: channel.port2, counter };
    const worker = startWorker(SEALER_WORKER, workerData, [channel.port2]);
    worker.unref();
    const entry: SealWorker = { worker, port: channel.port1, counter, error: null };
    worker.on("error", (err) => {
      entry.error = err;
    });
    const onSealed = this.options.onSealed;
    if (onSealed !== undefined) worker.on("message", () => onSealed());
    return entry;
  }

  get pendingCount(): number {
    return this.pending;
  }

  submit(job: SealJob): void {
    this.queue.push(job);
    this.pending++;
    if (this.queue.length >= this.options.batchTxMax) this.dispatch();
  }

  private dispatch(): void {
    if (this.queue.length === 0) return;
    while (this.inFlight.length >= this.options.inFlightBatchesMax) this.receiveNext(true);
    const batch = encodeSealBatch(this.queue);
    const index = this.next;
    this.next = (this.next + 1) % this.workers.length;
    const bytes = batch.buffer as ArrayBuffer;
    this.workers[index]!.worker.postMessage({ kind: "batch", bytes }, [bytes]);
    this.inFlight.push({ worker: index, count: this.queue.length });
    this.batchesDispatched++;
    this.queue = [];
  }

  /** Moves the oldest in-flight batch's results to `ready`; returns false if none arrived. */
  private receiveNext(block: boolean): boolean {
    const batch = this.inFlight[0];
    if (batch === undefined) return false;
    const w = this.workers[batch.worker]!;
    let silentWaits = 0;
    for (;;) {
      const seen = Atomics.load(w.counter, 0);
      const message = receiveMessageOnPort(w.port);
      if (message !== undefined) {
        const payload = message.message as ArrayBuffer | { error: string };
        if (!(payload instanceof ArrayBuffer)) {
          // Sealing committed write sets with our own secrets cannot fail on valid input: the
          // inline sealer would have thrown the same failure here. A bug, so an assertion.
          throw new AssertionError(`sealer worker failed: ${payload.error}`);
        }
        const results = decodeSealResults(new Uint8Array(payload));
        assert(results.length === batch.count, "a batch comes back whole");
        this.inFlight.shift();
        this.ready.push(...results);
        return true;
      }
      if (!block) return false;
      if (w.error !== null) throw w.error;
      if (Atomics.wait(w.counter, 0, seen, WAIT_SLICE_MS) === "timed-out") silentWaits++;
      assert(silentWaits < SILENT_WAITS_MAX, "sealer worker stopped answering");
    }
  }

  poll(): SealedTx[] {
    // A partial batch goes out only to a worker that may be idle: while every worker is busy,
    // transactions keep filling the queue up to batchTxMax (fewer, larger batches under load).
    if (this.inFlight.length < this.workers.length) this.dispatch();
    while (this.receiveNext(false));
    return this.take();
  }

  /**
   * What is still queued (not yet sent to a worker) is sealed here, on the calling thread, while
   * the workers finish their batches: the caller (a signature) waits for those only, not for a
   * round trip of the last partial batch through a worker that may be waiting for a core.
   */
  drain(): SealedTx[] {
    const queued = this.queue;
    this.queue = [];
    const inline = queued.length === 0 ? [] : sealHere(queued, this.options.secrets);
    while (this.inFlight.length > 0) this.receiveNext(true);
    for (const sealed of inline) this.ready.push(sealed);
    return this.take();
  }

  private take(): SealedTx[] {
    const out = this.ready;
    this.ready = [];
    this.pending -= out.length;
    return out;
  }

  addSecret(fromSeqno: Seqno, key: Uint8Array): void {
    this.dispatch();
    this.options.secrets.add(fromSeqno, key);
    for (const w of this.workers) w.worker.postMessage({ kind: "secret", fromSeqno, key });
  }

  retractSecrets(seqno: Seqno): void {
    this.options.secrets.retractAfter(seqno);
    for (const w of this.workers) {
      w.worker.postMessage({ kind: "retract-secrets", afterSeqno: seqno });
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}
