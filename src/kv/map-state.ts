/**
 * The state of the store's maps: one MapState per map, holding one Entry per key (tombstones
 * included). The store (store.ts) changes them; transactions (tx.ts) read them. They live apart
 * from both so that neither module imports the other for them.
 */

/** One key's state in a map. */
export class Entry {
  constructor(
    readonly key: Uint8Array,
    /** The value, or null for a tombstone: the key was removed at `seqno`. */
    public value: Uint8Array | null,
    /** Invariant: > 0, the seqno of the last write (set or removal) of this key. */
    public seqno: number,
  ) {}
}

/** One map's state. */
export class MapState {
  /** Key string (bytesToKey) -> entry, tombstones included. */
  readonly entries = new Map<string, Entry>();
  /** Invariant: the seqno of the last write to any key of the map, 0 if never written. */
  seqno = 0;
  /** Invariant: the number of entries whose value is not null. */
  liveCount = 0;

  constructor(readonly name: string) {}
}
