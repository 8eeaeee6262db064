/**
 * The log the simulation's first members start with (simulation.ts): a configuration and a
 * signature over it, both committed, as a new service's genesis is. No IO.
 */
import { concatBytes } from "../base/bytes.js";
import type { NodeId, RaftEntry, Seqno, View } from "../consensus/types.js";
import { sha256 } from "../crypto/hash.js";
import { newHistoryTree } from "../ledger/history.js";
import { makeEntry, TAG_CONFIG, TAG_SIGNATURE } from "./host.js";

/** Seqno 1: the initial configuration; seqno 2: a signature over it (in `view`). */
export function genesisEntries(members: readonly NodeId[], view: View): RaftEntry[] {
  const text = new TextEncoder().encode(members.join(","));
  const config = concatBytes([Uint8Array.of(TAG_CONFIG), text]);
  // The signature at 2 signs CCF's tree over leaf 0 (32 zero bytes) and the leaf of seqno 1.
  const tree = newHistoryTree();
  tree.append(sha256(config));
  const root = tree.root();
  return [
    makeEntry({
      seqno: 1 as Seqno,
      view,
      isSignature: false,
      configuration: [...members],
      payload: config,
    }),
    makeEntry({
      seqno: 2 as Seqno,
      view,
      isSignature: true,
      payload: concatBytes([Uint8Array.of(TAG_SIGNATURE), root]),
    }),
  ];
}
