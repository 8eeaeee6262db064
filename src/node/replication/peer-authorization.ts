/**
 * Who may talk to this node over the node-to-node channel. The peer proved its key over TLS;
 * its certificate must be endorsed by the service (CCF's channels check that endorsement and
 * nothing else). Beyond that, the nodes table is consulted only to keep out a peer it knows to
 * be gone: a Retired row with retired_committed, which the primary writes only after a
 * configuration without the node committed, so no configuration needs it any more.
 *
 * A peer the table does not list is let in: this node's table may be stale (a joiner that
 * started from a snapshot taken before the peer joined), and only the primary, possibly that
 * very peer, can bring it up to date; refusing it deadlocks the node. The same rule lets in a
 * node whose row was deleted (DELETE /node/network/nodes/{id}), which can no longer be told
 * apart from a newer one. Consensus guards against it (src/consensus/elections.ts): a node
 * votes and pre-votes only for candidates of its active configurations or ones it never saw in
 * any configuration (a removed node counts only the votes of its own stale configuration, whose
 * members refuse it once the configuration that removed it commits), a leader's followers
 * refuse pre-votes while they hear from it, a node that saw its removal commit stops
 * campaigning, and messages of an older view are refused.
 */
import { utf8 } from "../../base/bytes.js";
import { isIssuedBy } from "../../crypto/certs.js";
import { GOV_MAPS } from "../../gov/tables.js";
import { SERVICE_TABLES } from "../../kv/service-tables.js";
import type { Store } from "../../kv/store.js";

export function isAuthorizedPeer(
  peer: { readonly id: string; readonly certDer: Uint8Array },
  service: { readonly certPem: string; readonly store: Store },
): boolean {
  if (!isIssuedBy(peer.certDer, service.certPem)) return false;
  const row = service.store.get(SERVICE_TABLES.nodeInfo, utf8(peer.id));
  if (row === undefined) return true;
  const info = GOV_MAPS.nodeInfo.codec.decode(row);
  return !(info.status === "Retired" && info.retired_committed === true);
}
