/**
 * What GET /node/metrics reports of a node: event-loop utilisation since the previous read (a
 * scraper sees its own interval), consensus, channel and forwarding counters, system
 * transactions, the last and committed seqnos, and a disaster recovery's progress.
 */
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import type { TxPipeline } from "./pipeline/tx-pipeline.js";
import type { SystemTransactions } from "./pipeline/system-tx.js";
import type { DisasterRecovery } from "./recovery/disaster-recovery.js";
import type { ConsensusDriver } from "./replication/consensus-driver.js";
import type { Forwarder } from "./replication/forwarding.js";
import type { NodeChannels } from "./replication/n2n/channels.js";
import type { Store } from "../kv/store.js";

export interface MetricSources {
  readonly driver: ConsensusDriver;
  readonly channels: NodeChannels;
  readonly forwarder: Forwarder;
  readonly system: SystemTransactions;
  readonly store: Store;
  readonly pipeline: TxPipeline;
  readonly disasterRecovery: DisasterRecovery | null;
}

export class NodeMetrics {
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor(private readonly sources: MetricSources) {}

  read(): Record<string, unknown> {
    const now = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(now, this.lastElu);
    this.lastElu = now;
    const s = this.sources;
    return {
      event_loop_utilization: Math.round(elu.utilization * 1000) / 1000,
      consensus: { ...s.driver.stats },
      node_to_node: { ...s.channels.stats },
      forwarding: { ...s.forwarder.stats },
      system_transactions: structuredClone(s.system.stats),
      last_seqno: s.store.seqno,
      commit_seqno: s.pipeline.commitTxId.seqno,
      ...(s.disasterRecovery !== null ? { recovery: s.disasterRecovery.progress } : {}),
    };
  }
}
