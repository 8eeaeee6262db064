/**
 * A transaction over the Store: map handles that buffer writes and record what they read, the
 * optimistic conflict check, and the canonical write set a commit produces. This module decides;
 * store.ts owns the state and mutates it (commit, apply, rollback, compact).
 *
 * Semantics follow CCF's MapHandle / KvMap (src/kv/untyped_map_handle.h, ccf.kv in the JS API,
 * ccf-compatibility.md §5.1): reads see the tx's own writes, a write does not create a read
 * dependency, and a removal is a write. Reads see the store's current state rather than a frozen
 * snapshot; a read that observes a write newer than `readSeqno` dooms the tx, so a tx that commits
 * has seen exactly the state at `readSeqno` (the node runs handlers to completion, so this only
 * matters if txs interleave).
 *
 * Bytes: keys and values handed to a handle belong to the kv from then on, and `get` returns the
 * stored arrays themselves. Callers must not mutate either: copying on every get and set would
 * double the cost of the hot path.
 *
 * No IO, no clock, synchronous.
 */
import { bytesToKey, keyToBytes } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";
import type { Seqno } from "../base/ids.js";
import type { Entry, MapState } from "./map-state.js";
import { compareNames, type KeyWrite, type MapWrites, type WriteSet } from "./write-set.js";

export enum KvErrorCode {
  /** A map name is not a non-empty, well-formed string. */
  InvalidMapName = "InvalidMapName",
  /** The tx was already committed: it cannot be used or committed again. */
  TxClosed = "TxClosed",
  /** A forEach callback tried to write to the map it iterates. */
  WriteDuringIteration = "WriteDuringIteration",
  /** A typed codec (encoding.ts) cannot encode the value it was given. */
  EncodeFailed = "EncodeFailed",
  /** A typed codec (encoding.ts) cannot decode the stored bytes. */
  DecodeFailed = "DecodeFailed",
}

export type KvErrorType =
  | { code: KvErrorCode.InvalidMapName; name: string }
  | { code: KvErrorCode.TxClosed }
  | { code: KvErrorCode.WriteDuringIteration; map: string }
  | { code: KvErrorCode.EncodeFailed | KvErrorCode.DecodeFailed; codec: string };

export class KvError extends CcfError<KvErrorType> {}

/** Unpaired UTF-16 surrogates cannot be encoded as UTF-8, so the ledger could not hold the name. */
const LONE_SURROGATE_RE = /\p{Cs}/u;

/** Errors quote at most this much of a bad name: it may be arbitrary input. */
const NAME_SHOWN_MAX = 200;

/** Throws KvError(InvalidMapName) unless `name` can name a map. */
export function checkMapName(name: unknown): asserts name is string {
  if (typeof name === "string" && name.length > 0 && !LONE_SURROGATE_RE.test(name)) return;
  const shown = String(name).slice(0, NAME_SHOWN_MAX);
  throw new KvError(
    { code: KvErrorCode.InvalidMapName, name: shown },
    `invalid map name: ${JSON.stringify(shown)}`,
  );
}

/** Read access to one map inside a tx (CCF ccf.kv KvMap without the writes). */
export interface ReadonlyMapHandle {
  readonly name: string;
  get(key: Uint8Array): Uint8Array | undefined;
  has(key: Uint8Array): boolean;
  /** Visits every live key, in no particular order. The callback must not write to this map. */
  forEach(callback: (value: Uint8Array, key: Uint8Array) => void): void;
  readonly size: number;
  /** The seqno of the committed write that produced the key's current value, ignoring this tx's
   *  own writes; undefined when the key has no value in the store. */
  getVersionOfPreviousWrite(key: Uint8Array): Seqno | undefined;
}

/** Read-write access to one map inside a tx. */
export interface MapHandle extends ReadonlyMapHandle {
  set(key: Uint8Array, value: Uint8Array): void;
  /** Removes the key; returns whether it had a value as this tx saw it. */
  delete(key: Uint8Array): boolean;
  /** Removes every key of the map, including this tx's earlier writes to it. */
  clear(): void;
}

export type ConflictCause = "read" | "map-read" | "rollback";

/** A commit that must be retried with a fresh tx. `key` is null for whole-map reads; `map` is ""
 *  when the store was rolled back below what the tx saw. */
export interface ConflictOutcome {
  readonly kind: "conflict";
  readonly map: string;
  readonly key: Uint8Array | null;
  readonly cause: ConflictCause;
}

/** Handles are found by a linear scan up to this many maps per tx, then through an index. */
const HANDLE_SCAN_MAX = 8;

function throwClosed(): never {
  throw new KvError({ code: KvErrorCode.TxClosed }, "tx already committed");
}

export class Tx {
  /** Invariant: read-only after commit; Store.commit consumes the tx exactly once. */
  private closed = false;
  /** First read that observed a write newer than readSeqno (keyStr null: whole map). */
  private doomedMap: string | null = null;
  private doomedKey: string | null = null;
  /** Handles in first-use order. Invariant: one handle per map name. */
  private readonly handles: TxMapHandle[] = [];
  private handleIndex: Map<string, TxMapHandle> | null = null;

  /** @internal Created by Store.begin only. */
  constructor(
    /** The store this tx belongs to; Store.commit checks it. */
    readonly owner: object,
    /** The store's live maps, read (never written) by handles and the conflict check. */
    readonly maps: ReadonlyMap<string, MapState>,
    /** The store seqno when the tx began: it must observe no write newer than this. */
    readonly readSeqno: Seqno,
    /** The store's rollback epoch when the tx began (Store.rollback counts rollbacks). */
    readonly rollbackEpoch: number,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether any handle wrote or cleared (the writes may still turn out to change nothing). */
  get hasWrites(): boolean {
    return this.handles.some((h) => h.writes !== null || h.cleared);
  }

  rw(name: string): MapHandle {
    return this.handle(name);
  }

  ro(name: string): ReadonlyMapHandle {
    return this.handle(name);
  }

  private handle(name: string): TxMapHandle {
    if (this.closed) throwClosed();
    const handles = this.handles;
    if (this.handleIndex !== null) {
      const found = this.handleIndex.get(name);
      if (found !== undefined) return found;
    } else {
      for (let i = 0; i < handles.length; i++) if (handles[i]!.name === name) return handles[i]!;
    }
    const state = this.maps.get(name);
    // The store only holds maps with valid names, so only an unknown name needs checking.
    if (state === undefined) checkMapName(name);
    const handle = new TxMapHandle(this, name, state);
    handles.push(handle);
    if (this.handleIndex !== null) this.handleIndex.set(name, handle);
    else if (handles.length > HANDLE_SCAN_MAX) {
      this.handleIndex = new Map(handles.map((h) => [h.name, h]));
    }
    return handle;
  }

  /** @internal Records the first stale read; the tx can then only conflict. */
  doom(map: string, keyStr: string | null): void {
    if (this.doomedMap !== null) return;
    this.doomedMap = map;
    this.doomedKey = keyStr;
  }

  /** @internal Marks the tx committed; throws KvError(TxClosed) on a second commit. */
  close(): void {
    if (this.closed) throwClosed();
    this.closed = true;
  }

  /**
   * @internal The first conflict among this tx's reads, or null. A read conflicts when the
   * key's (or map's) last-write seqno differs from what the tx observed, or when the observed
   * one was already newer than readSeqno (a doomed read).
   */
  findReadConflict(compactedSeqno: number): ConflictOutcome | null {
    if (this.doomedMap !== null) {
      const key = this.doomedKey === null ? null : keyToBytes(this.doomedKey);
      return conflict(this.doomedMap, key, key === null ? "map-read" : "read");
    }
    for (const handle of this.handles) {
      const state = this.maps.get(handle.name);
      const mapSeqno = state === undefined ? 0 : state.seqno;
      if (handle.mapReadSeqno !== -1 && handle.mapReadSeqno !== mapSeqno) {
        return conflict(handle.name, null, "map-read");
      }
      if (handle.reads === null) continue;
      for (const [keyStr, observed] of handle.reads) {
        const entry = state?.entries.get(keyStr);
        if (entry !== undefined ? entry.seqno === observed : observed === 0) continue;
        // The tombstone this tx saw was compacted away. Nothing newer can have been compacted
        // with it unless compaction passed readSeqno: every later write is newer than readSeqno.
        if (entry === undefined && compactedSeqno <= this.readSeqno) continue;
        return conflict(handle.name, keyToBytes(keyStr), "read");
      }
    }
    return null;
  }

  /**
   * @internal The canonical write set of this tx against the store's current state, with the
   * key strings of every write (parallel to writeSet), or null when nothing would change.
   */
  prepareWrites(): { writeSet: WriteSet; keyStrs: string[][] } | null {
    let written: TxMapHandle[] = [];
    for (const handle of this.handles) {
      if (handle.writes !== null || handle.cleared) written.push(handle);
    }
    if (written.length === 0) return null;
    if (written.length > 1) written = written.sort((a, b) => compareNames(a.name, b.name));
    const maps: MapWrites[] = [];
    const keyStrs: string[][] = [];
    for (const handle of written) {
      const keys: string[] = [];
      const writes = handle.canonicalWrites(this.maps.get(handle.name), keys);
      if (writes.length === 0) continue;
      maps.push({ name: handle.name, writes });
      keyStrs.push(keys);
    }
    return maps.length === 0 ? null : { writeSet: { maps }, keyStrs };
  }
}

function conflict(map: string, key: Uint8Array | null, cause: ConflictCause): ConflictOutcome {
  return { kind: "conflict", map, key, cause };
}

function isLive(entry: Entry | undefined): boolean {
  return entry !== undefined && entry.value !== null;
}

/** One map as seen by one tx. Fields are read by Tx's commit helpers. */
class TxMapHandle implements MapHandle {
  /** Buffered writes by key string; a null value is a removal. Null until the first write. */
  writes: Map<string, KeyWrite> | null = null;
  /** Whether clear() ran: store keys are hidden from the tx and removed at commit. */
  cleared = false;
  /** Key string -> last-write seqno of the key when the tx first read it (0: no entry). */
  reads: Map<string, number> | null = null;
  /** Map seqno seen by the first whole-map read; -1 when the tx made none. */
  mapReadSeqno = -1;
  /** Invariant: > 0 only while forEach runs; writes are refused then. */
  private iterationDepth = 0;

  constructor(
    private readonly tx: Tx,
    readonly name: string,
    /** The store's map, looked up again while undefined: another tx may create it. */
    private state: MapState | undefined,
  ) {}

  private checkOpen(): void {
    if (this.tx.isClosed) throwClosed();
  }

  private checkWritable(): void {
    if (this.tx.isClosed) throwClosed();
    if (this.iterationDepth === 0) return;
    throw new KvError(
      { code: KvErrorCode.WriteDuringIteration, map: this.name },
      `map ${this.name} written during forEach`,
    );
  }

  private resolve(): MapState | undefined {
    return this.state ?? (this.state = this.tx.maps.get(this.name));
  }

  /** The store's entry for a key, recording the read (the first observation is kept). */
  private readEntry(keyStr: string): Entry | undefined {
    const entry = this.resolve()?.entries.get(keyStr);
    const seqno = entry === undefined ? 0 : entry.seqno;
    const reads = this.reads ?? (this.reads = new Map());
    if (!reads.has(keyStr)) reads.set(keyStr, seqno);
    if (seqno > this.tx.readSeqno) this.tx.doom(this.name, keyStr);
    return entry;
  }

  /** The store's map, recording a whole-map read. */
  private readMap(): MapState | undefined {
    const state = this.resolve();
    const seqno = state === undefined ? 0 : state.seqno;
    if (this.mapReadSeqno === -1) this.mapReadSeqno = seqno;
    if (seqno > this.tx.readSeqno) this.tx.doom(this.name, null);
    return state;
  }

  /** The key's value as this tx sees it: own writes, then clear(), then the store. */
  private lookup(keyStr: string): Uint8Array | null {
    if (this.writes !== null) {
      const own = this.writes.get(keyStr);
      if (own !== undefined) return own.value;
    }
    if (this.cleared) return null;
    const entry = this.readEntry(keyStr);
    return entry === undefined ? null : entry.value;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    return this.lookup(bytesToKey(key)) ?? undefined;
  }

  has(key: Uint8Array): boolean {
    this.checkOpen();
    return this.lookup(bytesToKey(key)) !== null;
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.checkWritable();
    (this.writes ?? (this.writes = new Map())).set(bytesToKey(key), { key, value });
  }

  delete(key: Uint8Array): boolean {
    this.checkWritable();
    const keyStr = bytesToKey(key);
    if (this.lookup(keyStr) === null) return false;
    (this.writes ?? (this.writes = new Map())).set(keyStr, { key, value: null });
    return true;
  }

  clear(): void {
    this.checkWritable();
    this.readMap();
    this.cleared = true;
    this.writes = null;
  }

  forEach(callback: (value: Uint8Array, key: Uint8Array) => void): void {
    this.checkOpen();
    const state = this.readMap();
    const writes = this.writes;
    this.iterationDepth++;
    try {
      if (!this.cleared && state !== undefined) {
        for (const [keyStr, entry] of state.entries) {
          if (entry.value === null || (writes !== null && writes.has(keyStr))) continue;
          callback(entry.value, entry.key);
        }
      }
      if (writes !== null) {
        for (const write of writes.values()) {
          if (write.value !== null) callback(write.value, write.key);
        }
      }
    } finally {
      this.iterationDepth--;
    }
  }

  get size(): number {
    this.checkOpen();
    const state = this.readMap();
    const visible = this.cleared ? undefined : state;
    let size = visible === undefined ? 0 : visible.liveCount;
    if (this.writes === null) return size;
    for (const [keyStr, write] of this.writes) {
      const live = visible !== undefined && isLive(visible.entries.get(keyStr));
      if (write.value !== null && !live) size++;
      else if (write.value === null && live) size--;
    }
    return size;
  }

  getVersionOfPreviousWrite(key: Uint8Array): Seqno | undefined {
    this.checkOpen();
    const entry = this.readEntry(bytesToKey(key));
    return entry === undefined || entry.value === null ? undefined : (entry.seqno as Seqno);
  }

  /**
   * This map's writes in canonical form (key order, no duplicates) against `state`; fills
   * `keyStrs` in parallel. Removals of keys without a value in the store are dropped; clear()
   * becomes a removal of every live key the tx did not write afterwards.
   */
  canonicalWrites(state: MapState | undefined, keyStrs: string[]): KeyWrite[] {
    const writes = this.writes;
    if (writes !== null) for (const keyStr of writes.keys()) keyStrs.push(keyStr);
    if (this.cleared && state !== undefined) {
      for (const [keyStr, entry] of state.entries) {
        if (entry.value !== null && (writes === null || !writes.has(keyStr))) keyStrs.push(keyStr);
      }
    }
    // Latin-1 key strings compare by UTF-16 code unit = byte value: this is byte order.
    if (keyStrs.length > 1) keyStrs.sort();
    const out: KeyWrite[] = [];
    let kept = 0;
    for (const keyStr of keyStrs) {
      let write = writes?.get(keyStr);
      // Only a removal needs the store's entry (one lookup in a map that may be large).
      if (write === undefined || write.value === null) {
        const entry = state?.entries.get(keyStr);
        if (!isLive(entry)) continue;
        write ??= { key: entry!.key, value: null };
      }
      keyStrs[kept++] = keyStr;
      out.push(write);
    }
    if (kept < keyStrs.length) keyStrs.length = kept;
    return out;
  }
}
