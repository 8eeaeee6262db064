/**
 * The states behind the JS apps' `ccf.historical.getStateRange(handle, from, to)`
 * (ccf-compatibility.md §9), as CCF serves them: the first call for a range starts loading its
 * entries from the ledger files in the background and answers null (the app answers 202 and its
 * client retries); once loaded, calls for that handle and range answer the states, until
 * `dropCachedStates(handle)` or until newer handles push it out.
 *
 * Loads read through the node's chunk cache (historical-reads.ts), one entry after another, so
 * the event loop is never held by a file read; each entry is copied out of its chunk, so a
 * kept range does not keep whole chunks alive.
 *
 * Bounded: at most RANGES_MAX handles are kept (least recently asked for dropped first), a
 * range covers at most MAX_HISTORICAL_RANGE seqnos, and its entries at most RANGE_BYTES_MAX.
 */
import type { Seqno, TxId } from "../../base/ids.js";
import type { HistoricalState } from "../../apps/app.js";
import { decodeEntry } from "../../ledger/entry-format.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import { chunkCacheOf, isLedgerReadFailure } from "./historical-reads.js";
import { historicalStateOf, receiptOf } from "./historical.js";
import type { NodeContext } from "./node-context.js";

/** The most seqnos one historical range may cover (CCF's JS sample asks for 2001 at most). */
export const MAX_HISTORICAL_RANGE = 10_000;
/** Handles whose ranges are kept. */
const RANGES_MAX = 64;
/** The most bytes of ledger entries one range may hold. */
const RANGE_BYTES_MAX = 64 * 1024 * 1024;

type RangeLoad =
  | { readonly kind: "loading" }
  | { readonly kind: "loaded"; readonly entries: readonly Uint8Array[] }
  | { readonly kind: "decoded"; readonly states: readonly HistoricalState[] }
  | { readonly kind: "failed"; readonly error: HttpError };

interface KeptRange {
  readonly from: Seqno;
  readonly to: Seqno;
  load: RangeLoad;
}

const rangesByNode = new WeakMap<NodeContext, HistoricalRanges>();

/** The node's kept ranges, made at its first getStateRange. */
export function historicalRangesOf(node: NodeContext): HistoricalRanges {
  let ranges = rangesByNode.get(node);
  if (ranges === undefined) {
    ranges = new HistoricalRanges(node);
    rangesByNode.set(node, ranges);
  }
  return ranges;
}

export class HistoricalRanges {
  /** By handle, least recently asked for first. Invariant: size <= RANGES_MAX. */
  private readonly ranges = new Map<number, KeptRange>();

  constructor(private readonly node: NodeContext) {}

  /** The states of from..to (inclusive), or null while they load or `to` is not committed. */
  stateRange(handle: number, from: Seqno, to: Seqno): readonly HistoricalState[] | null {
    if (to - from + 1 > MAX_HISTORICAL_RANGE) {
      throw new HttpError(
        HttpErrorCode.InvalidInput,
        `A historical range covers at most ${MAX_HISTORICAL_RANGE} transactions.`,
      );
    }
    if (to > this.node.pipeline.commitTxId.seqno) return null;
    const kept = this.ranges.get(handle);
    this.ranges.delete(handle);
    if (kept === undefined || kept.from !== from || kept.to !== to) {
      this.start(handle, from, to);
      return null;
    }
    this.ranges.set(handle, kept);
    switch (kept.load.kind) {
      case "loading":
        return null;
      case "failed":
        this.ranges.delete(handle);
        throw kept.load.error;
      case "loaded": {
        const states = this.decode(from, kept.load.entries);
        kept.load = { kind: "decoded", states };
        return states;
      }
      case "decoded":
        return kept.load.states;
    }
  }

  /** Whether `handle` had a range kept (CCF's dropCachedStates answer). */
  drop(handle: number): boolean {
    return this.ranges.delete(handle);
  }

  private start(handle: number, from: Seqno, to: Seqno): void {
    const kept: KeptRange = { from, to, load: { kind: "loading" } };
    this.ranges.set(handle, kept);
    if (this.ranges.size > RANGES_MAX) this.ranges.delete(this.ranges.keys().next().value!);
    this.node.pipeline.flushLedger();
    const committedSeqno = this.node.pipeline.commitTxId.seqno;
    this.read(from, to, committedSeqno).then(
      (entries) => {
        // Refused by a busy cache: forgotten, so that the app's next call starts again.
        if (entries !== null) kept.load = { kind: "loaded", entries };
        else if (this.ranges.get(handle) === kept) this.ranges.delete(handle);
      },
      (err: unknown) => {
        kept.load = { kind: "failed", error: rangeError(err, from, to) };
      },
    );
  }

  /** Copies of the entries from..to, or null when the cache refused a load (busy). */
  private async read(from: Seqno, to: Seqno, committedSeqno: number): Promise<Uint8Array[] | null> {
    const cache = chunkCacheOf(this.node);
    const entries: Uint8Array[] = [];
    let bytes = 0;
    for (let seqno = from; seqno <= to; seqno++) {
      let entry = cache.entryAt(seqno);
      if (entry === null) {
        const outcome = await cache.load(seqno, committedSeqno);
        if (outcome.kind === "busy") return null;
        entry = cache.entryAt(seqno);
      }
      if (entry === null) throw unreadable(from, to);
      bytes += entry.byteLength;
      if (bytes > RANGE_BYTES_MAX) throw tooLarge();
      entries.push(entry.slice());
    }
    return entries;
  }

  private decode(from: Seqno, entries: readonly Uint8Array[]): HistoricalState[] {
    return entries.map((entry, i) => {
      const seqno = (from + i) as Seqno;
      const id: TxId = { view: decodeEntry(entry).view, seqno };
      const receipt = receiptOf(this.node, seqno);
      return historicalStateOf(this.node, id, entry, { receipt, signatureEntry: null });
    });
  }
}

function unreadable(from: number, to: number): HttpError {
  return new HttpError(
    HttpErrorCode.InternalError,
    `Ledger entries ${from} to ${to} could not all be read.`,
  );
}

function tooLarge(): HttpError {
  return new HttpError(
    HttpErrorCode.InvalidInput,
    `A historical range holds at most ${RANGE_BYTES_MAX} bytes of ledger entries.`,
  );
}

function rangeError(err: unknown, from: number, to: number): HttpError {
  if (err instanceof HttpError) return err;
  if (!isLedgerReadFailure(err)) throw err;
  return new HttpError(
    HttpErrorCode.InternalError,
    `Ledger entries ${from} to ${to} could not all be read: ${err.message}`,
  );
}
