/**
 * What consensus reads of the nodes table (SERVICE_TABLES.nodeInfo) in the store: the peer address
 * book of the ConsensusDriver, and the configuration (trusted node ids) a write set creates.
 */
import { fromUtf8, utf8 } from "../../base/bytes.js";
import type { NodeId } from "../../base/ids.js";
import { GOV_MAPS, reachableAddress } from "../../gov/tables.js";
import { SERVICE_TABLES } from "../../kv/service-tables.js";
import type { Store } from "../../kv/store.js";
import type { WriteSet } from "../../kv/write-set.js";
import type { PeerDirectory } from "./driver-io.js";
import type { ConfigurationSource } from "./outbox.js";

/** Trusted node ids in the store: the consensus configuration (ccf-compatibility.md §7.1). */
export function trustedNodeIds(store: Store): NodeId[] {
  const ids: NodeId[] = [];
  const codec = GOV_MAPS.nodeInfo.codec;
  for (const [key, value] of store.entries(SERVICE_TABLES.nodeInfo)) {
    if (codec.decode(value).status === "Trusted") ids.push(fromUtf8(key) as NodeId);
  }
  return ids.sort();
}

/**
 * A node's published node-to-node address in the store's nodes table (its bind address when
 * none is published); undefined for a node the table does not hold.
 */
export function nodeToNodeAddressOf(store: Store, id: string): string | undefined {
  const bytes = store.get(SERVICE_TABLES.nodeInfo, utf8(id));
  if (bytes === undefined) return undefined;
  return reachableAddress(GOV_MAPS.nodeInfo.codec.decode(bytes).node_to_node_interface);
}

export class NodesTable implements PeerDirectory, ConfigurationSource {
  constructor(private readonly store: Store) {}

  /** A node's published node-to-node address (its bind address when none is published). */
  addressOf(peer: NodeId): string | undefined {
    return nodeToNodeAddressOf(this.store, peer);
  }

  /**
   * A committed write set that touches the nodes table creates a configuration: the trusted
   * nodes as the store now holds them (the write set is the store's latest transaction).
   */
  configurationOf(writeSet: WriteSet): readonly NodeId[] | undefined {
    if (!writeSet.maps.some((m) => m.name === SERVICE_TABLES.nodeInfo)) return undefined;
    return trustedNodeIds(this.store);
  }
}
