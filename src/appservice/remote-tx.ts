/**
 * The app server's side of a transaction (ADR 0005): a versioned cache of what a node told the
 * server about its KV, and RemoteTx, the KvTx (src/js/kv-tx.ts) a handler runs over. RemoteTx
 * serves reads from the cache and records each with the version it saw, buffers writes (reads
 * see the run's own writes, as in src/kv Tx), and records a miss for anything the cache lacks.
 *
 * A miss ends the run: it is thrown into the guest as an Error, and recorded here so that guest
 * code that catches it cannot hide it; the run's outcome is then discarded and the node asked for
 * the values (a `need`). A run that completes without a miss yields its read set, write set and
 * cleared maps, which the node validates against its own state and applies, or retries.
 *
 * Versions are only compared by the node: the cache may mix values seen at different times; a
 * run that read an outdated one fails validation and runs again with fresh values. Invariant:
 * everything in the cache belongs to one epoch (the node's rollback count). No IO.
 */
import { bytesToKey } from "../base/bytes.js";
import { KvError, KvErrorCode, type MapHandle, type ReadonlyMapHandle } from "../kv/tx.js";
import type { Seqno } from "../base/ids.js";
import type { JsAppServices } from "../js/app-globals.js";
import { JsHostError } from "../js/host-function.js";
import type { KvTx } from "../js/kv-tx.js";
import type { KeyRead, KeyRef, KeyWrite, MapRead, NeedMessage, Values } from "./messages.js";

/** How many keys a connection's cache holds before it is emptied (and refilled on demand). */
export const CACHE_KEYS_MAX = 200_000;

/** Thrown into the guest when a run reads what the cache does not hold. */
export class RemoteMiss extends JsHostError<{ code: "AppServiceMiss"; map: string }> {}

interface Cached {
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
  readonly version: number;
}

interface CachedMap {
  readonly version: number;
  readonly entries: ReadonlyMap<string, Cached>;
}

/** What one node connection's runs have learned about that node's KV. */
export class VersionedCache {
  private epoch = -1;
  private readonly keys = new Map<string, Map<string, Cached>>();
  private readonly maps = new Map<string, CachedMap>();
  private keyCount = 0;

  get currentEpoch(): number {
    return this.epoch;
  }

  /** Takes in `values`; values of another epoch replace everything cached. */
  apply(values: Values): void {
    if (values.epoch !== this.epoch) {
      this.clear();
      this.epoch = values.epoch;
    }
    for (const [map, key, value, version] of values.keys) this.setKey(map, key, value, version);
    for (const [map, version, rows] of values.maps) {
      const entries = new Map<string, Cached>();
      for (const [key, value, v] of rows) {
        const cached = { key, value, version: v };
        entries.set(bytesToKey(key), cached);
      }
      this.maps.set(map, { version, entries });
    }
  }

  key(map: string, keyStr: string): Cached | undefined {
    const own = this.keys.get(map)?.get(keyStr);
    if (own !== undefined) return own;
    const whole = this.maps.get(map);
    if (whole === undefined) return undefined;
    return whole.entries.get(keyStr) ?? { key: new Uint8Array(0), value: null, version: 0 };
  }

  map(map: string): CachedMap | undefined {
    return this.maps.get(map);
  }

  private setKey(map: string, key: Uint8Array, value: Uint8Array | null, version: number): void {
    if (this.keyCount >= CACHE_KEYS_MAX) this.clear();
    let byKey = this.keys.get(map);
    if (byKey === undefined) this.keys.set(map, (byKey = new Map()));
    const keyStr = bytesToKey(key);
    if (!byKey.has(keyStr)) this.keyCount++;
    byKey.set(keyStr, { key, value, version });
  }

  private clear(): void {
    this.keys.clear();
    this.maps.clear();
    this.keyCount = 0;
  }
}

/** What a run of one call may learn about consensus, filled by the node's answers. */
export class CallServices {
  readonly status = new Map<string, string>();
  readonly views = new Map<number, number | null>();

  constructor(private readonly lastCommitted: readonly [number, number]) {}

  apply(values: Values): void {
    for (const [view, seqno, status] of values.tx_status)
      this.status.set(`${view}.${seqno}`, status);
    for (const [seqno, view] of values.views) this.views.set(seqno, view);
  }

  /** JsAppServices for one run, recording misses in `misses`. */
  forRun(misses: Misses): JsAppServices {
    return {
      lastCommittedTxId: () => ({ view: this.lastCommitted[0], seqno: this.lastCommitted[1] }),
      statusForTxId: (view, seqno) => {
        const status = this.status.get(`${view}.${seqno}`);
        if (status !== undefined) return status;
        misses.txStatus.push([view, seqno]);
        throw miss("ccf.consensus");
      },
      viewForSeqno: (seqno) => {
        const view = this.views.get(seqno);
        if (view !== undefined) return view;
        misses.views.push(seqno);
        throw miss("ccf.consensus");
      },
    };
  }
}

/** What a run asked for and did not get. */
export class Misses {
  readonly keys: KeyRef[] = [];
  readonly maps: string[] = [];
  readonly txStatus: [number, number][] = [];
  readonly views: number[] = [];

  get any(): boolean {
    return this.keys.length + this.maps.length + this.txStatus.length + this.views.length > 0;
  }

  need(id: number): NeedMessage {
    return {
      t: "need",
      id,
      keys: this.keys,
      maps: this.maps,
      tx_status: this.txStatus,
      views: this.views,
    };
  }
}

function miss(map: string): RemoteMiss {
  return new RemoteMiss(
    { code: "AppServiceMiss", map },
    "the app server is fetching state from the node; this run is retried",
  );
}

/** A KvTx over a VersionedCache for one run of a handler. */
export class RemoteTx implements KvTx {
  private readonly handles = new Map<string, RemoteMapHandle>();
  private readonly missedKeys = new Set<string>();

  constructor(
    readonly cache: VersionedCache,
    readonly misses: Misses,
  ) {}

  ro(name: string): ReadonlyMapHandle {
    return this.handle(name);
  }

  rw(name: string): MapHandle {
    return this.handle(name);
  }

  private handle(name: string): RemoteMapHandle {
    let handle = this.handles.get(name);
    if (handle === undefined) this.handles.set(name, (handle = new RemoteMapHandle(this, name)));
    return handle;
  }

  /** @internal Records a missing key once and returns the error that ends the run. */
  missKey(map: string, key: Uint8Array, keyStr: string): RemoteMiss {
    const id = `${map}\u0000${keyStr}`;
    if (!this.missedKeys.has(id)) {
      this.missedKeys.add(id);
      this.misses.keys.push([map, key]);
    }
    return miss(map);
  }

  /** @internal */
  missMap(map: string): RemoteMiss {
    if (!this.misses.maps.includes(map)) this.misses.maps.push(map);
    return miss(map);
  }

  /** The run's read set, write set and cleared maps, for the result. */
  effects(): { reads: KeyRead[]; mapReads: MapRead[]; writes: KeyWrite[]; cleared: string[] } {
    const reads: KeyRead[] = [];
    const mapReads: MapRead[] = [];
    const writes: KeyWrite[] = [];
    const cleared: string[] = [];
    for (const h of this.handles.values()) {
      for (const [key, version] of h.reads.values()) reads.push([h.name, key, version]);
      if (h.mapVersion !== -1) mapReads.push([h.name, h.mapVersion]);
      if (h.cleared) cleared.push(h.name);
      for (const { key, value } of h.writes.values()) writes.push([h.name, key, value]);
    }
    return { reads, mapReads, writes, cleared };
  }
}

class RemoteMapHandle implements MapHandle {
  /** Key string -> [key, version first seen]. */
  readonly reads = new Map<string, [Uint8Array, number]>();
  readonly writes = new Map<string, { key: Uint8Array; value: Uint8Array | null }>();
  cleared = false;
  /** The map version of the first whole-map read; -1 when none. */
  mapVersion = -1;
  private iterating = 0;

  constructor(
    private readonly tx: RemoteTx,
    readonly name: string,
  ) {}

  private read(key: Uint8Array, keyStr: string): Cached {
    const cached = this.tx.cache.key(this.name, keyStr);
    if (cached === undefined) throw this.tx.missKey(this.name, key, keyStr);
    if (!this.reads.has(keyStr)) this.reads.set(keyStr, [key, cached.version]);
    return cached;
  }

  private lookup(key: Uint8Array): Uint8Array | null {
    const keyStr = bytesToKey(key);
    const own = this.writes.get(keyStr);
    if (own !== undefined) return own.value;
    if (this.cleared) return null;
    return this.read(key, keyStr).value;
  }

  private wholeMap(): CachedMap {
    const whole = this.tx.cache.map(this.name);
    if (whole === undefined) throw this.tx.missMap(this.name);
    if (this.mapVersion === -1) this.mapVersion = whole.version;
    return whole;
  }

  private checkWritable(): void {
    if (this.iterating === 0) return;
    throw new KvError(
      { code: KvErrorCode.WriteDuringIteration, map: this.name },
      `map ${this.name} written during forEach`,
    );
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.lookup(key) ?? undefined;
  }

  has(key: Uint8Array): boolean {
    return this.lookup(key) !== null;
  }

  getVersionOfPreviousWrite(key: Uint8Array): Seqno | undefined {
    const cached = this.read(key, bytesToKey(key));
    return cached.value === null ? undefined : (cached.version as Seqno);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.checkWritable();
    this.writes.set(bytesToKey(key), { key, value });
  }

  delete(key: Uint8Array): boolean {
    this.checkWritable();
    if (this.lookup(key) === null) return false;
    this.writes.set(bytesToKey(key), { key, value: null });
    return true;
  }

  clear(): void {
    this.checkWritable();
    this.cleared = true;
    this.writes.clear();
  }

  forEach(callback: (value: Uint8Array, key: Uint8Array) => void): void {
    const whole = this.cleared ? undefined : this.wholeMap();
    this.iterating++;
    try {
      if (whole !== undefined) {
        for (const [keyStr, entry] of whole.entries) {
          if (entry.value === null || this.writes.has(keyStr)) continue;
          callback(entry.value, entry.key);
        }
      }
      for (const write of this.writes.values()) {
        if (write.value !== null) callback(write.value, write.key);
      }
    } finally {
      this.iterating--;
    }
  }

  get size(): number {
    const whole = this.cleared ? undefined : this.wholeMap();
    let size = 0;
    if (whole !== undefined) for (const e of whole.entries.values()) if (e.value !== null) size++;
    for (const [keyStr, write] of this.writes) {
      const live = whole?.entries.get(keyStr)?.value != null;
      if (write.value !== null && !live) size++;
      else if (write.value === null && live) size--;
    }
    return size;
  }
}
