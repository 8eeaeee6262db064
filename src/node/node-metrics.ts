/**
 * What GET /node/metrics reports of a node (README, "Metrics"), as JSON (the default) or in the
 * Prometheus text format (`prometheus()`, node/metrics/exposition.ts).
 *
 * JSON: event-loop utilisation since the previous read (a scraper sees its own interval),
 * consensus, channel and forwarding counters, system transactions, the last and committed
 * seqnos, and a disaster recovery's progress.
 *
 * Prometheus: the same counters, plus requests by endpoint and status with their latency
 * (RequestMetrics, fed by the RPC servers), commit latency on the primary (CommitLatency, fed by
 * the pipeline's write sets and consensus commits), the consensus role and view, ledger bytes,
 * snapshot durations, the sealer's queue and the process (ProcessMetrics). What the node feeds
 * in on its hot paths is a few number updates; text is built only when scraped.
 */
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import type { Clock } from "../base/io.js";
import type { RaftNode } from "../consensus/raft.js";
import type { Role } from "../consensus/types.js";
import type { LedgerWriter } from "../ledger/io/ledger-writer.js";
import { CONSORTIA_VERSION } from "./config/version.js";
import { CommitLatency } from "./metrics/commit-latency.js";
import { Exposition, labelText } from "./metrics/exposition.js";
import { Histogram, SNAPSHOT_SECONDS_BUCKETS } from "./metrics/histogram.js";
import { ProcessMetrics } from "./metrics/process-metrics.js";
import { RequestMetrics } from "./metrics/request-metrics.js";
import type { TxPipeline } from "./pipeline/tx-pipeline.js";
import type { SystemTransactions } from "./pipeline/system-tx.js";
import type { DisasterRecovery } from "./recovery/disaster-recovery.js";
import type { ConsensusDriver } from "./replication/consensus-driver.js";
import type { Forwarder } from "./replication/forwarding.js";
import type { NodeChannels } from "./replication/n2n/channels.js";
import type { Store } from "../kv/store.js";

/** Read at each scrape, never on the hot paths. */
export interface MetricSources {
  readonly nodeId: string;
  readonly clock: Clock;
  readonly raft: RaftNode;
  readonly driver: ConsensusDriver;
  readonly channels: NodeChannels;
  readonly forwarder: Forwarder;
  readonly system: SystemTransactions;
  readonly store: Store;
  readonly pipeline: TxPipeline;
  readonly disasterRecovery: DisasterRecovery | null;
}

/** Every consensus role, each reported as a 0/1 gauge. */
const ROLES = Object.keys({
  None: 0,
  Follower: 0,
  PreVoteCandidate: 0,
  Candidate: 0,
  Leader: 0,
} satisfies Record<Role, 0>) as Role[];
const ROLE_LABELS = ROLES.map((role) => [role, labelText({ role })] as const);

/**
 * Each counter of a stats object: its metric name and help. Keyed by every field of the stats,
 * so a counter added to a component cannot be left out of the exposition.
 */
type CounterSpecs<T> = { readonly [K in keyof T & string]: readonly [string, string] };

const DRIVER_COUNTERS: CounterSpecs<ConsensusDriver["stats"]> = {
  received: ["consortia_consensus_messages_received_total", "Node-to-node messages decoded."],
  malformed: ["consortia_consensus_messages_malformed_total", "Messages dropped as malformed."],
  sent: ["consortia_consensus_messages_sent_total", "Consensus messages sent to peers."],
  readies: ["consortia_consensus_readies_total", "Consensus Ready batches carried out."],
  syncs: ["consortia_ledger_syncs_total", "fdatasyncs of the ledger by consensus."],
};

const CHANNEL_COUNTERS: CounterSpecs<NodeChannels["stats"]> = {
  framesIn: ["consortia_n2n_frames_received_total", "Node-to-node frames received."],
  framesOut: ["consortia_n2n_frames_sent_total", "Node-to-node frames sent."],
  dropped: ["consortia_n2n_frames_dropped_total", "Node-to-node frames dropped."],
  oversized: ["consortia_n2n_frames_oversized_total", "Frames refused as too large."],
  rejectedPeers: ["consortia_n2n_peers_rejected_total", "Peer connections refused."],
  connects: ["consortia_n2n_connects_total", "Node-to-node connections established."],
  disconnects: ["consortia_n2n_disconnects_total", "Node-to-node connections lost."],
  recycled: [
    "consortia_n2n_connections_recycled_total",
    "Node-to-node connections closed and dialled again: the peer fell silent or dialled us again.",
  ],
};

const FORWARDER_COUNTERS: CounterSpecs<Forwarder["stats"]> = {
  forwarded: ["consortia_forwarded_requests_total", "Requests forwarded to the primary."],
  served: ["consortia_forwarded_requests_served_total", "Forwarded requests run here."],
  timedOut: ["consortia_forwarded_requests_timed_out_total", "Forwards with no answer."],
};

function writeCounters<T extends object>(
  out: Exposition,
  stats: Readonly<T>,
  specs: CounterSpecs<T>,
): void {
  for (const key of Object.keys(specs) as (keyof T & string)[]) {
    const [name, help] = specs[key];
    out.single(name, "counter", help, Number(stats[key]));
  }
}

export class NodeMetrics {
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  /** Fed by the RPC servers (RpcServerOptions.observer). */
  readonly requests = new RequestMetrics();
  private readonly commits: CommitLatency;
  private readonly snapshots = new Histogram(SNAPSHOT_SECONDS_BUCKETS);
  private lastSnapshotBytes = 0;
  private readonly process = new ProcessMetrics();

  constructor(
    private readonly sources: MetricSources,
    private readonly ledger: LedgerWriter,
  ) {
    this.commits = new CommitLatency(sources.pipeline.commitTxId.seqno);
  }

  /** A transaction's write set is in the store: on the primary, it was just executed. */
  onWriteSet(seqno: number): void {
    if (this.sources.raft.isLeader) {
      this.commits.onExecuted(seqno, this.sources.clock.monotonicMs());
    }
  }

  onCommit(commitSeqno: number): void {
    this.commits.onCommitted(commitSeqno, this.sources.clock.monotonicMs());
  }

  onRoleChange(): void {
    this.commits.forget();
  }

  onSnapshotWritten(written: { sizeBytes: number; durationMs: number }): void {
    this.snapshots.observe(written.durationMs / 1000);
    this.lastSnapshotBytes = written.sizeBytes;
  }

  /** Ends the process metrics' timer (the node stops). */
  stop(): void {
    this.process.stop();
  }

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

  /** The Prometheus text exposition of every metric. */
  prometheus(): string {
    const out = new Exposition();
    const s = this.sources;
    out
      .family("consortia_node_info", "gauge", "This node: its id and Consortia version (1).")
      .sample(labelText({ node_id: s.nodeId, version: CONSORTIA_VERSION }), 1);
    this.writeConsensus(out);
    this.writeTransactions(out);
    this.requests.write(out);
    writeCounters(out, s.driver.stats, DRIVER_COUNTERS);
    writeCounters(out, s.channels.stats, CHANNEL_COUNTERS);
    writeCounters(out, s.forwarder.stats, FORWARDER_COUNTERS);
    this.writeSystemTransactions(out);
    this.process.write(out);
    return out.text();
  }

  private writeConsensus(out: Exposition): void {
    const raft = this.sources.raft;
    out.family("consortia_consensus_role", "gauge", "1 for this node's consensus role, else 0.");
    for (const [role, labels] of ROLE_LABELS) out.sample(labels, raft.role === role ? 1 : 0);
    out.single("consortia_consensus_view", "gauge", "The consensus view.", raft.view);
    const pipeline = this.sources.pipeline;
    out.single(
      "consortia_commit_seqno",
      "gauge",
      "The last committed seqno.",
      pipeline.commitTxId.seqno,
    );
    out.single("consortia_last_seqno", "gauge", "The last seqno in the store.", pipeline.lastSeqno);
  }

  private writeTransactions(out: Exposition): void {
    out.single(
      "consortia_committed_transactions_total",
      "counter",
      "Seqnos this node saw committed since it started (signatures included).",
      this.commits.committedCount,
    );
    out
      .family(
        "consortia_commit_latency_seconds",
        "histogram",
        "On the primary: from a transaction's execution to its commit.",
      )
      .histogram("", this.commits.latency);
    out.single(
      "consortia_ledger_written_bytes_total",
      "counter",
      "Bytes of ledger entries appended to the ledger files since the node started.",
      this.ledger.appendedBytes,
    );
    out.single(
      "consortia_sealer_queue_depth",
      "gauge",
      "Transactions waiting to be sealed into ledger entries.",
      this.sources.pipeline.sealerPendingCount,
    );
    out
      .family(
        "consortia_snapshot_duration_seconds",
        "histogram",
        "Snapshots written by this node (primary): from their signature to the file synced.",
      )
      .histogram("", this.snapshots);
    out.single(
      "consortia_snapshot_size_bytes",
      "gauge",
      "Size of the last snapshot this node wrote (0: none yet).",
      this.lastSnapshotBytes,
    );
  }

  private writeSystemTransactions(out: Exposition): void {
    out.family(
      "consortia_system_transactions_total",
      "counter",
      "Transactions the node wrote itself, by kind and outcome.",
    );
    for (const [kind, counts] of Object.entries(this.sources.system.stats)) {
      out.sample(labelText({ kind, outcome: "written" }), counts.written);
      out.sample(labelText({ kind, outcome: "not_written" }), counts.notWritten);
    }
  }
}
