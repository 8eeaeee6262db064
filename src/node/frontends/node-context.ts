/**
 * What the frontends (endpoint modules) see of the node: its identity, its state and the few
 * node services endpoints call. The node host implements it; frontends never import the host.
 */
import type { NodeId, View } from "../../base/ids.js";
import type { Clock } from "../../base/io.js";
import type { RaftNode } from "../../consensus/raft.js";
import type { Store } from "../../kv/store.js";
import type { Tx } from "../../kv/tx.js";
import type { TxHistory } from "../../ledger/history.js";
import type { NodeConfig } from "../config/config.js";
import type { TxPipeline } from "../pipeline/tx-pipeline.js";
import type { DisasterRecovery } from "../recovery/disaster-recovery.js";
import type { VirtualQuote } from "../startup/node-identity.js";

/** CCF's node states (ccf-compatibility.md §2.1), those a Consortia node goes through. */
export type NodeStartupState =
  | "Initialized"
  | "Pending"
  | "ReadingPublicLedger"
  | "PartOfPublicNetwork"
  | "ReadingPrivateLedger"
  | "PartOfNetwork"
  | "Stopped";

export interface NodeContext {
  /** Monotonic time, the clock consensus runs on. */
  readonly clock: Clock;
  readonly nodeId: NodeId;
  readonly config: NodeConfig;
  readonly store: Store;
  readonly history: TxHistory;
  readonly pipeline: TxPipeline;
  readonly raft: RaftNode;
  readonly serviceCertPem: string;
  readonly nodeCertPem: string;
  /** The consensus view. */
  readonly view: View;
  readonly hostData: string;
  readonly quote: VirtualQuote;
  readonly startupState: () => NodeStartupState;
  /** The published rpc address ("host:port") of a node from the nodes table, or null. */
  rpcAddressOf(nodeId: NodeId): string | null;
  /** Counters for /node/metrics: consensus, channels, forwarding, event loop. */
  metrics(): Record<string, unknown>;
  /** Every metric in the Prometheus text format, version 0.0.4 (README, "Metrics"). */
  prometheusMetrics(): string;
  /** Recovery shares are reissued soon (on the primary): membership or threshold changed. */
  scheduleRecoverySharesRefresh(): void;
  /** trigger_snapshot: the primary snapshots at its next signature. */
  requestSnapshot(): void;
  /** The seqno of the snapshot this node started from (0: from the start of the ledger). */
  readonly startupSeqno: number;
  /** trigger_ledger_rekey: writes a fresh secret for every Trusted node into `tx`. */
  writeRekey(tx: Tx): void;
  /** On a node started with command Recover: the disaster recovery. */
  readonly disasterRecovery: DisasterRecovery | null;
}
