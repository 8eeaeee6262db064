/**
 * The transactional key-value store: named maps of byte keys to byte values, versioned by seqno.
 * It owns the state and every change to it: commit (the leader path), apply (the follower and
 * replay path), rollback of an uncommitted suffix, and compaction of what consensus committed.
 *
 * Model (CCF src/kv/store.h, committable_tx.h): every committed or applied tx takes the next
 * seqno; a write records that seqno on its key (a removal leaves a tombstone carrying it) and on
 * its map. Commit is optimistic: it conflicts iff something the tx read has changed since, or
 * the store was rolled back below what the tx saw. Write-write without a read is not a conflict:
 * the last writer wins, as in CCF.
 *
 * Invariants:
 * - compactedSeqno <= seqno, and the undo log holds exactly one record per seqno in
 *   (compactedSeqno, seqno], so rollback and compaction cost O(writes undone or dropped).
 * - No tombstone has seqno <= compactedSeqno: nothing can roll back past it, so it is dropped.
 * - Every MapState in `maps` has a valid name; a map is listed by mapNames() once written.
 *
 * No IO, no clock, synchronous: the node loop owns the store (style.md §2.1, §2.4).
 */
import { assert } from "../base/assert.js";
import { bytesToKey } from "../base/bytes.js";
import type { Seqno } from "../base/ids.js";
import { Entry, MapState } from "./map-state.js";
import type { SnapshotKey, SnapshotMap } from "./snapshot-state.js";
import { checkMapName, type ConflictOutcome, Tx } from "./tx.js";
import { compareNames, type MapWrites, type WriteSet } from "./write-set.js";

export type CommitOutcome =
  /** The tx took `seqno`; its canonical writeSet goes to the ledger and to followers. */
  | { readonly kind: "committed"; readonly seqno: Seqno; readonly writeSet: WriteSet }
  /** The tx changed nothing, so nothing was committed; `seqno` is the tx's readSeqno. */
  | { readonly kind: "read-only"; readonly seqno: Seqno }
  /** Something the tx read changed: the caller retries with a fresh tx. */
  | ConflictOutcome;

/**
 * The undo record of one tx: for each write, in order, UNDO_STRIDE slots
 * (map, keyStr, previous value, previous key seqno (0: no entry), previous map seqno).
 * One flat array per tx keeps the commit path to a single allocation for undo.
 */
type UndoRecord = Array<MapState | string | Uint8Array | null | number>;
const UNDO_STRIDE = 5;

/** Compaction trims the consumed head of the undo log once it holds this many slots. */
const UNDO_TRIM_MIN = 1024;

/**
 * Rollbacks since a tx began, summarised for the commit check as (epoch, seqno) marks, both
 * strictly increasing: a later rollback to a lower seqno supersedes the marks above it. Beyond
 * the cap the two oldest merge conservatively (a tx may conflict when it need not).
 */
interface RollbackMark {
  readonly epoch: number;
  readonly seqno: number;
}
const ROLLBACK_MARKS_MAX = 16;

export class Store {
  private readonly maps = new Map<string, MapState>();
  private currentSeqno = 0;
  private compactedTo = 0;
  /** Undo records of seqnos (compactedTo, currentSeqno]; undoLog[undoHead] is compactedTo + 1. */
  private undoLog: Array<UndoRecord | undefined> = [];
  private undoHead = 0;
  /** Number of rollbacks that undid at least one tx. */
  private rollbackEpoch = 0;
  private rollbackMarks: RollbackMark[] = [];

  /** Seqno of the last committed or applied tx (0: none). */
  get seqno(): Seqno {
    return this.currentSeqno as Seqno;
  }

  /** Everything at or below this seqno is final: it can no longer be rolled back. */
  get compactedSeqno(): Seqno {
    return this.compactedTo as Seqno;
  }

  /** How many rollbacks this store has done: a change of it may undo any map's writes. */
  get rollbackCount(): number {
    return this.rollbackEpoch;
  }

  begin(): Tx {
    return new Tx(this, this.maps, this.currentSeqno as Seqno, this.rollbackEpoch);
  }

  /**
   * Commits `tx`: conflict check, then canonical write set, then apply at the next seqno.
   * Throws KvError(TxClosed) when the tx was already committed.
   */
  commit(tx: Tx): CommitOutcome {
    assert(tx.owner === this, "commit: tx belongs to another store");
    tx.close();
    if (tx.rollbackEpoch !== this.rollbackEpoch && this.rolledBackBelow(tx)) {
      return { kind: "conflict", map: "", key: null, cause: "rollback" };
    }
    const conflict = tx.findReadConflict(this.compactedTo);
    if (conflict !== null) return conflict;
    const prepared = tx.prepareWrites();
    if (prepared === null) return { kind: "read-only", seqno: tx.readSeqno };
    const seqno = this.currentSeqno + 1;
    // Point of no return: from here the tx owns `seqno` and the store has changed.
    this.applyMaps(seqno, prepared.writeSet.maps, prepared.keyStrs);
    return { kind: "committed", seqno: seqno as Seqno, writeSet: prepared.writeSet };
  }

  /**
   * Applies a write set committed elsewhere (follower, ledger replay) as the tx at `seqno`,
   * without a conflict check. Keys and values are copied: decoded write sets view entry bytes.
   */
  apply(seqno: Seqno, writeSet: WriteSet): void {
    assert(seqno === this.currentSeqno + 1, `apply: seqno ${seqno} after ${this.currentSeqno}`);
    const maps: MapWrites[] = [];
    for (const map of writeSet.maps) {
      assert(typeof map.name === "string" && map.name.length > 0, "apply: invalid map name");
      const writes = map.writes.map((w) => ({
        key: w.key.slice(),
        value: w.value === null ? null : w.value.slice(),
      }));
      maps.push({ name: map.name, writes });
    }
    this.applyMaps(seqno, maps, null);
  }

  /**
   * Replay path for a store nothing will roll back (a recovery's private replay): applies the
   * write set as the tx at `seqno`, final at once (compacted: no undo record, a removal leaves
   * no tombstone), adopting its keys and values (the caller hands over buffers nothing else
   * writes to).
   */
  applyFinal(seqno: Seqno, writeSet: WriteSet): void {
    assert(seqno === this.currentSeqno + 1, `apply: seqno ${seqno} after ${this.currentSeqno}`);
    assert(this.compactedTo === this.currentSeqno, "applyFinal: the store is compacted");
    for (const map of writeSet.maps) {
      if (map.writes.length === 0) continue;
      checkMapName(map.name);
      const state = this.mapState(map.name);
      for (const w of map.writes) {
        const keyStr = bytesToKey(w.key);
        const existing = state.entries.get(keyStr);
        if (existing !== undefined && existing.value !== null) state.liveCount--;
        if (w.value === null) {
          state.entries.delete(keyStr);
          continue;
        }
        if (existing !== undefined) {
          existing.value = w.value;
          existing.seqno = seqno;
        } else {
          state.entries.set(keyStr, new Entry(w.key, w.value, seqno));
        }
        state.liveCount++;
      }
      state.seqno = seqno;
    }
    // Compacted before and after: the undo log holds no record either way.
    this.currentSeqno = seqno;
    this.compactedTo = seqno;
  }

  /** Writes `maps` as the tx at `seqno` and records its undo record. */
  private applyMaps(
    seqno: number,
    maps: readonly MapWrites[],
    keyStrs: readonly (readonly string[])[] | null,
  ): void {
    assert(seqno === this.currentSeqno + 1, "seqnos are consecutive");
    const undo: UndoRecord = [];
    for (let m = 0; m < maps.length; m++) {
      const map = maps[m]!;
      if (map.writes.length === 0) continue;
      const state = this.mapState(map.name);
      const keys = keyStrs === null ? null : keyStrs[m]!;
      for (let i = 0; i < map.writes.length; i++) {
        const write = map.writes[i]!;
        const keyStr = keys === null ? bytesToKey(write.key) : keys[i]!;
        this.writeKey(undo, state, keyStr, write.key, write.value, seqno);
      }
      state.seqno = seqno;
    }
    this.undoLog.push(undo);
    this.currentSeqno = seqno;
  }

  private mapState(name: string): MapState {
    let state = this.maps.get(name);
    if (state === undefined) {
      state = new MapState(name);
      this.maps.set(name, state);
    }
    return state;
  }

  private writeKey(
    undo: UndoRecord,
    state: MapState,
    keyStr: string,
    key: Uint8Array,
    value: Uint8Array | null,
    seqno: number,
  ): void {
    const entry = state.entries.get(keyStr);
    if (entry === undefined) {
      undo.push(state, keyStr, null, 0, state.seqno);
      state.entries.set(keyStr, new Entry(key, value, seqno));
    } else {
      undo.push(state, keyStr, entry.value, entry.seqno, state.seqno);
      if (entry.value !== null) state.liveCount--;
      entry.value = value;
      entry.seqno = seqno;
    }
    if (value !== null) state.liveCount++;
  }

  /**
   * Undoes every tx above `seqno` (the uncommitted suffix), restoring values, key seqnos,
   * tombstones and map seqnos exactly. Any open tx that could have seen an undone tx will
   * conflict. Asserts compactedSeqno <= seqno <= this.seqno.
   */
  rollback(seqno: Seqno): void {
    assert(seqno >= this.compactedTo, `rollback: ${seqno} below compacted ${this.compactedTo}`);
    assert(seqno <= this.currentSeqno, `rollback: ${seqno} above ${this.currentSeqno}`);
    if (seqno === this.currentSeqno) return;
    while (this.currentSeqno > seqno) {
      const undo = this.undoLog.pop();
      assert(undo !== undefined, "undo log covers every uncompacted seqno");
      this.undo(undo);
      this.currentSeqno--;
    }
    assert(this.undoLog.length - this.undoHead === seqno - this.compactedTo, "undo log length");
    this.rollbackEpoch++;
    this.addRollbackMark(seqno);
  }

  private undo(undo: UndoRecord): void {
    for (let i = undo.length - UNDO_STRIDE; i >= 0; i -= UNDO_STRIDE) {
      const state = undo[i] as MapState;
      const keyStr = undo[i + 1] as string;
      const previousValue = undo[i + 2] as Uint8Array | null;
      const previousSeqno = undo[i + 3] as number;
      const entry = state.entries.get(keyStr);
      assert(entry !== undefined, "an undone write has an entry");
      if (entry.value !== null) state.liveCount--;
      // A tombstone at or below compactedSeqno would break the tombstone invariant: drop it.
      if (previousSeqno === 0 || (previousValue === null && previousSeqno <= this.compactedTo)) {
        state.entries.delete(keyStr);
      } else {
        entry.value = previousValue;
        entry.seqno = previousSeqno;
        if (previousValue !== null) state.liveCount++;
      }
      state.seqno = undo[i + 4] as number;
    }
  }

  private addRollbackMark(seqno: number): void {
    const marks = this.rollbackMarks;
    while (marks.length > 0 && marks[marks.length - 1]!.seqno >= seqno) marks.pop();
    marks.push({ epoch: this.rollbackEpoch, seqno });
    if (marks.length > ROLLBACK_MARKS_MAX) {
      // Keep the later epoch with the lower seqno: txs between the two epochs now compare with
      // a lower seqno than they need to, which can only add conflicts.
      marks[1] = { epoch: marks[1]!.epoch, seqno: marks[0]!.seqno };
      marks.shift();
    }
  }

  /** Whether a rollback since `tx` began went below its readSeqno. */
  private rolledBackBelow(tx: Tx): boolean {
    // Marks have increasing seqnos: the first mark after the tx's epoch has the lowest seqno.
    for (const mark of this.rollbackMarks) {
      if (mark.epoch > tx.rollbackEpoch) return mark.seqno < tx.readSeqno;
    }
    return false;
  }

  /**
   * Declares everything at or below `seqno` final: drops its undo records and the tombstones
   * nothing can roll back past. Asserts compactedSeqno <= seqno <= this.seqno.
   */
  compact(seqno: Seqno): void {
    assert(seqno >= this.compactedTo, `compact: ${seqno} below compacted ${this.compactedTo}`);
    assert(seqno <= this.currentSeqno, `compact: ${seqno} above ${this.currentSeqno}`);
    while (this.compactedTo < seqno) {
      const undo = this.undoLog[this.undoHead];
      assert(undo !== undefined, "undo log covers every uncompacted seqno");
      this.undoLog[this.undoHead] = undefined;
      this.undoHead++;
      this.compactedTo++;
      for (let i = 0; i < undo.length; i += UNDO_STRIDE) {
        const state = undo[i] as MapState;
        const keyStr = undo[i + 1] as string;
        const entry = state.entries.get(keyStr);
        if (entry !== undefined && entry.value === null && entry.seqno <= seqno) {
          state.entries.delete(keyStr);
        }
      }
    }
    if (this.undoHead >= UNDO_TRIM_MIN && this.undoHead * 2 >= this.undoLog.length) {
      this.undoLog = this.undoLog.slice(this.undoHead);
      this.undoHead = 0;
    }
  }

  /**
   * The whole live state as a snapshot holds it (snapshot-state.ts): every map written so far, by
   * name, each with its live keys in key-byte order and their seqnos. Values are shared, not
   * copied.
   */
  snapshotMaps(): SnapshotMap[] {
    return this.mapNames().map((name) => {
      const state = this.maps.get(name)!;
      const keys: SnapshotKey[] = [];
      for (const keyStr of liveKeyStrs(state)) {
        const { key, value, seqno } = state.entries.get(keyStr)!;
        keys.push({ key, value: value!, seqno: seqno as Seqno });
      }
      return { name, seqno: state.seqno as Seqno, keys };
    });
  }

  /**
   * A store holding a snapshot's state at `seqno`: every key at the seqno of its last write and
   * every map at that of its last write, nothing to roll back below `seqno`. Keys and values are
   * copied unless `adopt` says the caller hands over buffers nothing else writes to (a decoded
   * snapshot's): a million-key snapshot is then not copied a second time. The maps come from a
   * decoder that checked their order and seqnos (asserted here).
   */
  static fromSnapshot(seqno: Seqno, maps: readonly SnapshotMap[], adopt = false): Store {
    assert(seqno >= 1, "a snapshot is taken at a seqno >= 1");
    const store = new Store();
    for (const map of maps) {
      checkMapName(map.name);
      assert(map.seqno >= 1 && map.seqno <= seqno, `map ${map.name} written at or before seqno`);
      assert(!store.maps.has(map.name), `map ${map.name} appears once`);
      const state = new MapState(map.name);
      for (const k of map.keys) {
        assert(k.seqno >= 1 && k.seqno <= map.seqno, "a key is written at or before its map");
        const key = adopt ? k.key : k.key.slice();
        state.entries.set(
          bytesToKey(k.key),
          new Entry(key, adopt ? k.value : k.value.slice(), k.seqno),
        );
        state.liveCount++;
      }
      assert(state.entries.size === map.keys.length, `map ${map.name} has no duplicate keys`);
      state.seqno = map.seqno;
      store.maps.set(map.name, state);
    }
    store.currentSeqno = seqno;
    store.compactedTo = seqno;
    return store;
  }

  /**
   * Disaster recovery: installs the maps of `recovered` (the private domain replayed from the
   * previous service's ledger, up to `upTo`) into this store, without a transaction: the ledger
   * holds them already. This store must not have written any of those maps after `upTo` (a
   * recovering service takes no application writes until it is open), and nothing here can roll
   * back to `upTo` or below (asserted): so installed entries need no undo records and nothing
   * of the new service's is overwritten.
   */
  installRecovered(recovered: Store, upTo: Seqno): void {
    assert(upTo <= this.compactedTo, "recovered state is installed below the compacted seqno");
    assert(recovered.currentSeqno <= upTo, "recovered state ends at upTo");
    for (const name of recovered.maps.keys()) {
      const written = this.maps.get(name)?.seqno ?? 0;
      assert(written <= upTo, `map ${name} was written at ${written}, after the recovery point`);
    }
    for (const [name, source] of recovered.maps) {
      const target = this.mapState(name);
      for (const [keyStr, entry] of source.entries) {
        if (entry.value === null) continue; // a tombstone: nothing to install
        const existing = target.entries.get(keyStr);
        if (existing !== undefined && existing.value !== null) target.liveCount--;
        target.entries.set(keyStr, new Entry(entry.key, entry.value, entry.seqno));
        target.liveCount++;
      }
      target.seqno = Math.max(target.seqno, source.seqno);
    }
  }

  /** The committed value of a key, outside any tx (ops and tests). */
  get(map: string, key: Uint8Array): Uint8Array | undefined {
    const state = this.existingMap(map);
    return state?.entries.get(bytesToKey(key))?.value ?? undefined;
  }

  /**
   * Seqno of the last write to `key` in `map` (tombstones included; 0 if none or compacted
   * away), or of the last write to the map when `key` is omitted. For ops and tests.
   */
  lastWriteSeqno(map: string, key?: Uint8Array): Seqno {
    const state = this.existingMap(map);
    if (state === undefined) return 0 as Seqno;
    if (key === undefined) return state.seqno as Seqno;
    return (state.entries.get(bytesToKey(key))?.seqno ?? 0) as Seqno;
  }

  /** Names of the maps written so far (and not rolled back), in canonical order. */
  mapNames(): string[] {
    const names: string[] = [];
    for (const state of this.maps.values()) if (state.seqno > 0) names.push(state.name);
    return names.sort(compareNames);
  }

  /**
   * The live keys of a map, with their values and seqnos, in no particular order (cheaper than
   * entries(): a snapshot captured on the node thread is sorted elsewhere). The items are the
   * store's own entries, not copies: they are valid only until the store next changes.
   */
  *liveUnsorted(map: string): IterableIterator<SnapshotKey> {
    const state = this.existingMap(map);
    if (state === undefined) return;
    // An Entry with a value is a SnapshotKey (its seqno is that of its last write).
    for (const entry of state.entries.values())
      if (entry.value !== null) yield entry as SnapshotKey;
  }

  /**
   * The live [key, value] pairs of a map in key-byte order, so snapshots are identical on
   * every node. The store must not change while the iterator is in use.
   */
  entries(map: string): IterableIterator<[Uint8Array, Uint8Array]> {
    const state = this.existingMap(map);
    return liveEntries(state, state === undefined ? [] : liveKeyStrs(state));
  }

  private existingMap(name: string): MapState | undefined {
    const state = this.maps.get(name);
    if (state === undefined) checkMapName(name);
    return state;
  }
}

/** The key strings of a map's live keys, sorted: key-byte order (bytesToKey keeps it). */
function liveKeyStrs(state: MapState): string[] {
  const keyStrs: string[] = [];
  for (const [keyStr, entry] of state.entries) if (entry.value !== null) keyStrs.push(keyStr);
  return keyStrs.sort();
}

function* liveEntries(
  state: MapState | undefined,
  keyStrs: readonly string[],
): IterableIterator<[Uint8Array, Uint8Array]> {
  for (const keyStr of keyStrs) {
    const entry = state!.entries.get(keyStr);
    assert(entry !== undefined && entry.value !== null, "store changed during entries()");
    yield [entry.key, entry.value];
  }
}
