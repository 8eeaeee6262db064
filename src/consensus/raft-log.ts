/**
 * The consensus log of one node: the view and kind of every entry after `base`, the payloads
 * of recent entries, the signature seqnos and the configurations the log defines.
 *
 * Owns: entry metadata (views, signature flags, configurations) and a payload window.
 * Invariants:
 * - Seqnos are contiguous: the log holds base+1 .. last. `base` is the seqno the node started
 *   from (0, or a snapshot's seqno), whose view is `baseView`.
 * - Views never decrease along the log (MonoLogInv).
 * - `signatures` lists the signature seqnos > base, strictly increasing.
 * - `configs[0]` is the configuration in force at `base`; later items come from entries with a
 *   `configuration`, in seqno order.
 * - The view history up to `base` (from the snapshot the node started from), when known, has
 *   `baseView` items.
 * - Payloads are held for seqnos >= payloadFrom; older ones come from the `PayloadReader`.
 */
import { assert, AssertionError } from "../base/assert.js";
import type { EntryMeta, NodeId, RaftEntry, Seqno, View } from "./types.js";

/**
 * Payloads of this many committed entries stay in memory for catching up followers; older ones
 * are read back from the ledger files (RaftLog's PayloadReader).
 */
export const PAYLOAD_WINDOW = 20_000;

export interface Configuration {
  /** The seqno of the entry that introduced it (base for the initial one). */
  readonly seqno: Seqno;
  readonly nodes: readonly NodeId[];
}

/** Reads payloads the log no longer holds in memory (the host's ledger files). */
export interface PayloadReader {
  /** The payloads of `count` consecutive seqnos from `from` (all of them, in order). */
  payloads(from: Seqno, count: number): Uint8Array[];
}

/** For a log whose host keeps every payload in memory: asking it for one is a bug. */
const NO_READER: PayloadReader = {
  payloads(from) {
    throw new AssertionError(`payload of ${from} was compacted and no reader is configured`);
  },
};

/** Where a log starts: the seqno a node started from, its view, configuration and view history. */
export interface LogBase {
  readonly seqno: Seqno;
  readonly view: View;
  readonly configuration: readonly NodeId[];
  /**
   * CCF's view history up to `seqno` (viewHistory below); needed only to give a later snapshot
   * its view history, and implied (empty) when `seqno` is 0.
   */
  readonly viewHistory?: readonly Seqno[];
}

export class RaftLog {
  private readonly base: Seqno;
  private readonly baseView: View;
  /** Invariant: null (unknown) or `baseView` items, each the first seqno of its view. */
  private readonly baseViewHistory: readonly Seqno[] | null;
  // Invariant: views[i] is the view of seqno base+1+i.
  private readonly views: number[] = [];
  private readonly signatures: number[] = [];
  /** Invariant: the members of `signatures` (O(1) membership). */
  private readonly signatureSet = new Set<number>();
  private readonly configs: Configuration[];
  // Invariant: payloads[i] is the payload of seqno payloadFrom+i; payloadFrom > base.
  private payloads: Uint8Array[] = [];
  private payloadFrom: number;

  constructor(
    base: LogBase,
    private readonly reader: PayloadReader = NO_READER,
  ) {
    this.base = base.seqno;
    this.baseView = base.view;
    this.baseViewHistory = base.viewHistory ?? (base.seqno === 0 ? [] : null);
    assert(
      base.viewHistory === undefined || base.viewHistory.length === base.view,
      "a base view history has one item per view up to the base's",
    );
    this.configs = [{ seqno: base.seqno, nodes: [...base.configuration].sort() }];
    this.payloadFrom = base.seqno + 1;
  }

  get baseSeqno(): Seqno {
    return this.base;
  }

  get last(): Seqno {
    return (this.base + this.views.length) as Seqno;
  }

  get lastView(): View {
    return this.viewAt(this.last);
  }

  /** The view of `seqno` (base..last). */
  viewAt(seqno: number): View {
    // Hot path (as in append and entry): the message is built only on failure.
    if (seqno < this.base || seqno > this.last) assert(false, `seqno ${seqno} outside the log`);
    if (seqno === this.base) return this.baseView;
    return this.views[seqno - this.base - 1] as View;
  }

  /**
   * The view of a seqno at or below the base (1..base), from the base's view history (item i is
   * the first seqno whose view is at least i + 1, so the view is the number of items at or below
   * it); null when that history is not known.
   */
  viewBelowBase(seqno: number): View | null {
    assert(seqno >= 1 && seqno <= this.base, `seqno ${seqno} is not in 1..${this.base}`);
    if (this.baseViewHistory === null) return null;
    return this.baseViewHistory.filter((first) => first <= seqno).length as View;
  }

  has(seqno: number): boolean {
    return seqno >= this.base && seqno <= this.last;
  }

  isSignature(seqno: number): boolean {
    return this.signatureSet.has(seqno) || (seqno === this.base && seqno > 0);
  }

  /** The last signature seqno at or below `seqno`, or the base. */
  lastSignatureAtOrBelow(seqno: number): Seqno {
    const list = this.signatures;
    for (let i = list.length - 1; i >= 0; i--) if (list[i]! <= seqno) return list[i] as Seqno;
    return this.base;
  }

  /** The last committable seqno: the last signature (or the base). */
  get lastCommittable(): Seqno {
    return (this.signatures.at(-1) ?? this.base) as Seqno;
  }

  /** Signature seqnos in (from, to], increasing. */
  signaturesIn(from: number, to: number): number[] {
    const list = this.signatures;
    let i = list.length;
    while (i > 0 && list[i - 1]! > from) i--;
    return list.slice(i).filter((s) => s <= to);
  }

  append(entry: RaftEntry): void {
    if (entry.seqno !== this.last + 1) assert(false, `append ${entry.seqno} after ${this.last}`);
    if (entry.view < this.lastView) assert(false, `view ${entry.view} after ${this.lastView}`);
    this.views.push(entry.view);
    if (entry.isSignature) {
      this.signatures.push(entry.seqno);
      this.signatureSet.add(entry.seqno);
    }
    if (entry.configuration !== undefined) {
      this.configs.push({ seqno: entry.seqno, nodes: [...entry.configuration].sort() });
    }
    this.payloads.push(entry.payload);
  }

  /** Drops every entry after `seqno`. */
  truncate(seqno: Seqno): void {
    assert(seqno >= this.base && seqno <= this.last, `truncate to ${seqno} outside the log`);
    this.views.length = seqno - this.base;
    while ((this.signatures.at(-1) ?? 0) > seqno) this.signatureSet.delete(this.signatures.pop()!);
    while (this.configs.length > 1 && this.configs.at(-1)!.seqno > seqno) this.configs.pop();
    if (seqno < this.payloadFrom) {
      this.payloads = [];
      this.payloadFrom = seqno + 1;
    } else {
      this.payloads.length = seqno + 1 - this.payloadFrom;
    }
  }

  meta(seqno: number): EntryMeta {
    const configuration = this.configurationAt(seqno);
    return {
      view: this.viewAt(seqno),
      isSignature: this.signatureSet.has(seqno),
      ...(configuration !== undefined ? { configuration } : {}),
    };
  }

  entry(seqno: number): RaftEntry {
    if (seqno <= this.base || seqno > this.last) assert(false, `entry ${seqno} outside the log`);
    const payload =
      seqno >= this.payloadFrom
        ? this.payloads[seqno - this.payloadFrom]!
        : this.readPayloads(seqno, 1)[0]!;
    return this.entryWith(seqno, payload);
  }

  /**
   * The entry at `seqno` with `payload`: `meta` plus seqno and payload, built as one literal
   * (no spreads) since a leader builds one per entry it sends.
   */
  private entryWith(seqno: number, payload: Uint8Array): RaftEntry {
    const view = this.viewAt(seqno);
    const isSignature = this.signatureSet.has(seqno);
    const configuration = this.configurationAt(seqno);
    if (configuration === undefined) return { view, isSignature, seqno: seqno as Seqno, payload };
    return { view, isSignature, configuration, seqno: seqno as Seqno, payload };
  }

  /** The configuration the entry at `seqno` (above the base) introduces, if any. */
  private configurationAt(seqno: number): readonly NodeId[] | undefined {
    if (this.configs.length <= 1 || seqno <= this.base) return undefined;
    return this.configs.find((c) => c.seqno === seqno)?.nodes;
  }

  private readPayloads(from: number, count: number): Uint8Array[] {
    const payloads = this.reader.payloads(from as Seqno, count);
    assert(payloads.length === count, `reader returned ${payloads.length} of ${count} payloads`);
    return payloads;
  }

  /** Entries from `from`, at most `maxEntries` and about `maxBytes` (at least one). */
  slice(from: number, maxEntries: number, maxBytes: number): RaftEntry[] {
    const out: RaftEntry[] = [];
    let bytes = 0;
    // Compacted entries come from the reader in one range read, not one read each.
    const compacted = Math.max(
      0,
      Math.min(this.payloadFrom, this.last + 1, from + maxEntries) - from,
    );
    const old = compacted > 0 ? this.readPayloads(from, compacted) : [];
    for (let s = from; s <= this.last && out.length < maxEntries; s++) {
      const e = s < this.payloadFrom ? this.entryWith(s, old[s - from]!) : this.entry(s);
      if (out.length > 0 && bytes + e.payload.byteLength > maxBytes) break;
      bytes += e.payload.byteLength;
      out.push(e);
    }
    return out;
  }

  /** Forgets payloads below `seqno` (the reader serves them from now on). */
  compactPayloads(seqno: number): void {
    if (seqno <= this.payloadFrom) return;
    const drop = Math.min(seqno, this.last + 1) - this.payloadFrom;
    this.payloads = this.payloads.slice(drop);
    this.payloadFrom += drop;
  }

  /**
   * The largest seqno <= `seqno` whose view is <= `view`: where a follower's log may still
   * match a leader whose entry at `seqno` has `view` (used for NACK hints).
   */
  lastAtOrBelowWithViewAtMost(seqno: number, view: number): Seqno {
    let s = Math.min(seqno, this.last);
    while (s > this.base && this.viewAt(s) > view) s--;
    return s as Seqno;
  }

  /** The first seqno of `view` in this log, or null. */
  firstOfView(view: number): Seqno | null {
    for (let s = this.base + 1; s <= this.last; s++) {
      const v = this.viewAt(s);
      if (v === view) return s as Seqno;
      if (v > view) return null;
    }
    return null;
  }

  /**
   * CCF's view history at `at`, which a snapshot at `at` records (ccf-compatibility.md §6.6):
   * item i is the first seqno whose view is at least i + 1, for every view up to `at.view`, so a
   * view without entries shares the next view's first seqno. `at` may lie past the log's last
   * entry: a primary's newest entries reach its log after its pipeline wrote them, and are all
   * in its view `at.view`. Asserts that the history before the base is known.
   */
  viewHistory(at: { seqno: number; view: number }): Seqno[] {
    assert(at.seqno >= this.base, `view history at ${at.seqno} below the base ${this.base}`);
    assert(this.baseViewHistory !== null, "the view history before the log's base is known");
    const out = this.baseViewHistory.slice();
    const inLog = Math.min(at.seqno, this.last);
    for (let s = this.base + 1; s <= inLog; s++) {
      const view = this.views[s - this.base - 1]!;
      while (out.length < view) out.push(s as Seqno);
    }
    assert(out.length <= at.view, `the log's view at ${inLog} is after ${at.view}`);
    assert(at.seqno > this.last || out.length === at.view, `${at.seqno} is in view ${at.view}`);
    while (out.length < at.view) out.push((inLog + 1) as Seqno);
    return out;
  }

  /** Every configuration, oldest first (configs[0] is the base configuration). */
  configurations(): readonly Configuration[] {
    return this.configs;
  }

  /** The configurations active at commit `commitSeqno`: the last committed one and later ones. */
  activeConfigurations(commitSeqno: number): Configuration[] {
    let i = this.configs.length - 1;
    while (i > 0 && this.configs[i]!.seqno > commitSeqno) i--;
    return this.configs.slice(i);
  }
}
