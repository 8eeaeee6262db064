/**
 * What a ballot may read, copied out of a transaction so that the ballot can run elsewhere (a
 * worker thread: ballot-pool.ts), and a stamp that says whether that copy is still current.
 *
 * A ballot's `vote()` has read-only `ccf.kv` access to the public governance and internal
 * tables (ccf-compatibility.md §4.2: `public:ccf.gov.*`, `public:ccf.internal.*`), so the view
 * is every such map, by value, as a kv WriteSet; the worker applies it to a Store of its own and
 * reads it through an ordinary Tx. By value rather than through a synchronous read channel to
 * the node's thread (SharedArrayBuffer + Atomics.wait): governance state is small (kilobytes to
 * a few megabytes), a copy cannot be held open across the node's event loop the way a Tx cannot,
 * and the guest then never makes the node's thread do work on its behalf while it runs.
 *
 * The stamp names each of those maps with the seqno of its last write, plus the store's rollback
 * count: if it is unchanged when the ballot's result is recorded, nothing the ballot could have
 * read has changed since (ballot-submit.ts redoes the evaluation otherwise). Two kinds of maps
 * are in the view but not in the stamp: those the node rewrites at every signature (signatures,
 * the Merkle tree, COSE signatures), and the bookkeeping every member request writes (each
 * member's latest signed request, the proposals' replay window). A ballot reading them sees them
 * as of its evaluation, as a ballot in the recording transaction would have seen them a moment
 * later; counting them would make an evaluation stale whenever it overlaps a signature or any
 * other member's request, and a stored ballot that runs to its deadline overlaps many.
 */
import { GOV_TABLES_PREFIX, INTERNAL_TABLES_PREFIX, SERVICE_TABLES } from "../kv/service-tables.js";
import { Store } from "../kv/store.js";
import type { Tx } from "../kv/tx.js";
import type { KeyWrite, MapWrites, WriteSet } from "../kv/write-set.js";
import type { Seqno } from "../base/ids.js";

/** The map-name prefixes a ballot may read. */
export const BALLOT_READABLE_PREFIXES: readonly string[] = [
  GOV_TABLES_PREFIX,
  INTERNAL_TABLES_PREFIX,
];

/** In the view, not in the stamp (module comment). */
const UNSTAMPED_MAPS: ReadonlySet<string> = new Set([
  SERVICE_TABLES.signatures,
  SERVICE_TABLES.tree,
  SERVICE_TABLES.coseSignatures,
  SERVICE_TABLES.coseHistory,
  SERVICE_TABLES.coseRecentProposals,
]);

export interface BallotView {
  /** Every readable map's live keys and values (copies), as one write set. */
  readonly writeSet: WriteSet;
  /** See ballotViewStamp. */
  readonly stamp: string;
}

function readableMapNames(tx: Tx): string[] {
  const names: string[] = [];
  for (const name of tx.maps.keys()) {
    if (BALLOT_READABLE_PREFIXES.some((prefix) => name.startsWith(prefix))) names.push(name);
  }
  return names.sort();
}

/** The readable maps of `tx`, by value, and their stamp. */
export function readBallotView(tx: Tx): BallotView {
  const maps: MapWrites[] = [];
  for (const name of readableMapNames(tx)) {
    const writes: KeyWrite[] = [];
    tx.ro(name).forEach((value, key) => writes.push({ key: key.slice(), value: value.slice() }));
    if (writes.length > 0) maps.push({ name, writes });
  }
  return { writeSet: { maps }, stamp: ballotViewStamp(tx) };
}

/**
 * The version of what a ballot may read in `tx`'s store: the rollback count, then each readable
 * map but the unstamped ones with the seqno of its last write. Equal stamps: same contents.
 */
export function ballotViewStamp(tx: Tx): string {
  const parts = [`rollbacks=${tx.rollbackEpoch}`];
  for (const name of readableMapNames(tx)) {
    if (UNSTAMPED_MAPS.has(name)) continue;
    parts.push(`${name}@${tx.maps.get(name)?.seqno ?? 0}`);
  }
  return parts.join("\n");
}

/** A store holding exactly `view` (in the worker): ballots read it through its txs. */
export function storeOfView(view: WriteSet): Store {
  const store = new Store();
  if (view.maps.length > 0) store.apply(1 as Seqno, view);
  return store;
}
