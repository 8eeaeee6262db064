/**
 * What a snapshot holds of one map, as CCF's snapshots hold it (ccf-compatibility.md §6.6):
 * every live key with its value and the seqno of its last write, and the seqno of the last write
 * to the map, so that a store started from a snapshot knows the same seqnos as the store the
 * snapshot was taken from. Removed keys are not in a snapshot.
 *
 * Types only: the store (store.ts) produces and consumes them; the snapshot format
 * (ledger/snapshot-format.ts) lays them out.
 */
import type { Seqno } from "../base/ids.js";

/** One live key of a map in a snapshot. */
export interface SnapshotKey {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /** Invariant: 1 <= seqno <= the map's seqno: the seqno of the key's last write. */
  readonly seqno: Seqno;
}

/** One map in a snapshot: a map is in it once written, even when no key is left. */
export interface SnapshotMap {
  readonly name: string;
  /** Invariant: 1 <= seqno <= the snapshot's seqno: the seqno of the last write to the map. */
  readonly seqno: Seqno;
  /** Invariant: in strictly increasing key-byte order. */
  readonly keys: readonly SnapshotKey[];
}
