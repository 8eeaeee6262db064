/**
 * Who may talk to this node over the node-to-node channel. The peer proved its key over TLS;
 * its certificate must be endorsed by the service, and once this node knows the nodes table (a
 * joiner catching up does not yet), the peer must be in it: a node deleted from the table cannot
 * come back.
 */
import { utf8 } from "../../base/bytes.js";
import { isIssuedBy } from "../../crypto/certs.js";
import { SERVICE_TABLES } from "../../kv/service-tables.js";
import type { Store } from "../../kv/store.js";

export function isAuthorizedPeer(
  peer: { readonly id: string; readonly certDer: Uint8Array },
  service: { readonly certPem: string; readonly store: Store },
): boolean {
  if (!isIssuedBy(peer.certDer, service.certPem)) return false;
  if (service.store.seqno === 0) return true;
  return service.store.get(SERVICE_TABLES.nodeInfo, utf8(peer.id)) !== undefined;
}
