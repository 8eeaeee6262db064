/**
 * The simulated network of the deterministic consensus simulation: it carries the frames the
 * nodes' consensus drivers encode (so the node-to-node codec runs too). Every frame gets a
 * random delay (so messages reorder), may be dropped or duplicated, and is lost at delivery time
 * if a partition cuts its direction then.
 *
 * Owns: the in-flight messages (a binary heap ordered by delivery time, then send order) and
 * the set of cut directed links.
 * Invariants:
 * - Delivery order is a pure function of the seed: ties on time break on the send counter.
 * - A cut applies at delivery, so messages in flight when a partition starts are lost too.
 */
import type { Prng } from "../base/prng.js";
import type { NodeId } from "../consensus/types.js";

export interface NetworkConfig {
  /** Delay drawn uniformly in [minDelayMs, maxDelayMs]. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Probability a message is much later than usual (up to 10x maxDelayMs): stale messages. */
  lateProbability: number;
  dropProbability: number;
  duplicateProbability: number;
}

/** One encoded node-to-node message (the bytes a driver gave its transport). */
export interface Frame {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly payload: Uint8Array;
}

export interface InFlight {
  readonly at: number;
  readonly order: number;
  readonly frame: Frame;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

function before(a: InFlight, b: InFlight): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

export class SimNetwork {
  // Invariant: a binary min-heap under `before`.
  private readonly heap: InFlight[] = [];
  private order = 0;
  // Invariant: holds "from>to" for every cut direction.
  private readonly cuts = new Set<string>();
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };

  constructor(
    private readonly rng: Prng,
    readonly config: NetworkConfig,
  ) {}

  get inFlight(): number {
    return this.heap.length;
  }

  send(frame: Frame, nowMs: number): void {
    this.stats.sent++;
    if (this.config.dropProbability > 0 && this.rng.chance(this.config.dropProbability)) {
      this.stats.dropped++;
      return;
    }
    this.push(frame, nowMs);
    if (this.config.duplicateProbability > 0 && this.rng.chance(this.config.duplicateProbability)) {
      this.stats.duplicated++;
      this.push(frame, nowMs);
    }
  }

  /** When the next message arrives, or undefined when none is in flight. */
  nextAt(): number | undefined {
    return this.heap[0]?.at;
  }

  /** The next message to arrive; undefined when none, or when its direction is cut (lost). */
  pop(): InFlight | undefined {
    const top = this.heap[0];
    if (top === undefined) return undefined;
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    if (this.isCut(top.frame.from, top.frame.to)) {
      this.stats.dropped++;
      return undefined;
    }
    return top;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.size > 0 && this.cuts.has(`${from}>${to}`);
  }

  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}>${to}`);
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  split(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cut(x, y);
        this.cut(y, x);
      }
    }
  }

  get partitioned(): boolean {
    return this.cuts.size > 0;
  }

  heal(): void {
    this.cuts.clear();
  }

  private push(frame: Frame, nowMs: number): void {
    const c = this.config;
    let delay = c.minDelayMs + this.rng.intBelow(c.maxDelayMs - c.minDelayMs + 1);
    if (c.lateProbability > 0 && this.rng.chance(c.lateProbability)) {
      delay += this.rng.intBelow(10 * c.maxDelayMs);
    }
    this.heap.push({ at: nowMs + delay, order: this.order++, frame });
    this.siftUp(this.heap.length - 1);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) return;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  }
}
