/**
 * How a node's parts are built from its starting state and config, one function per part, in
 * dependency order. The node host calls them in its constructor; nothing here keeps state.
 */
import { join as joinPath } from "node:path";
import type { NodeId, Seqno } from "../base/ids.js";
import type { StorageError } from "../base/storage-error.js";
import type { Clock } from "../base/io.js";
import { RaftNode } from "../consensus/raft.js";
import { DEFAULT_TIMINGS } from "../consensus/types.js";
import { ecPrivateKeyPem } from "../crypto/identity.js";
import { listLedgerFiles } from "../ledger/io/ledger-reader.js";
import { LedgerWriter } from "../ledger/io/ledger-writer.js";
import type { WriteSet } from "../kv/write-set.js";
import type { TxId } from "../base/ids.js";
import type { NodeConfig } from "./config/config.js";
import { formatAddress } from "./config/config-values.js";
import { InlineSealer, WorkerSealer } from "./pipeline/sealer.js";
import {
  DEFAULT_PIPELINE_OPTIONS,
  TxPipeline,
  type ConsensusSink,
} from "./pipeline/tx-pipeline.js";
import { setAsideLedgerAfter } from "./recovery/recovery-replay.js";
import { ConsensusDriver } from "./replication/consensus-driver.js";
import { HardStateFile } from "./replication/hard-state-file.js";
import type { NodesTable } from "./replication/nodes-table.js";
import type { TurnScheduler } from "./replication/driver-io.js";
import type { ReplicationOutbox } from "./replication/outbox.js";
import { readLedgerPayloads } from "./replication/ledger-payloads.js";
import { NodeChannels } from "./replication/n2n/channels.js";
import type { Role, View } from "../consensus/types.js";
import type { NodeStart, StartingState } from "./node-start.js";
import { CryptoRng } from "../platform/system-clock.js";
import type { N2nMessage } from "./replication/n2n/messages.js";
import { roundTraceFromEnv } from "./replication/round-trace.js";

/** The hard state (view, vote) lives next to the ledger chunks. */
export const HARD_STATE_FILE = "consensus_state.json";

/**
 * The ledger writer. A recovery first sets aside files past its recovery point, and its ledger
 * continues wherever the remaining files end (or after the recovery point when there are none).
 */
export function openLedger(
  config: NodeConfig,
  start: NodeStart,
  state: (ledgerHasFiles: boolean) => StartingState,
  log: (line: string) => void,
): { ledger: LedgerWriter; state: StartingState } {
  const directory = config.ledger.directory;
  if (start.kind === "recover") {
    const lastSigned = start.recovered.replay.lastSignedSeqno;
    setAsideLedgerAfter(directory, lastSigned, (line) => log(`[recovery] ${line}`));
  }
  const starting = state(listLedgerFiles(directory).length > 0);
  const ledger = LedgerWriter.open(directory, {
    chunkSizeBytes: config.ledger.chunkSizeBytes,
    startSeqno: starting.ledgerStartSeqno,
  });
  if (start.kind === "recover") ledger.truncate(start.recovered.replay.lastSignedSeqno);
  return { ledger, state: starting };
}

export interface PipelineHooks {
  readonly consensus: ConsensusSink;
  readonly onSignature: (txId: TxId) => void;
  readonly onWriteSet: (seqno: Seqno, writeSet: WriteSet) => void;
  readonly onStorageFault: (fault: StorageError) => void;
  /** The pipeline may have work for pump() (tx-pipeline.ts onWork; the sealer's batch notice). */
  readonly onWork: () => void;
}

export function createPipeline(
  config: NodeConfig,
  state: StartingState,
  ledger: LedgerWriter,
  clock: Clock,
  hooks: PipelineHooks,
): TxPipeline {
  return new TxPipeline({
    store: state.store,
    history: state.history,
    ledger,
    // worker_threads > 0: sealing (AES-GCM, digests) runs beside the node thread (ADR 0001).
    sealer:
      config.workerThreads === 0
        ? new InlineSealer(state.secrets)
        : new WorkerSealer({
            secrets: state.secrets,
            workers: config.workerThreads,
            batchTxMax: 64,
            inFlightBatchesMax: 8,
            onSealed: hooks.onWork,
          }),
    identity: state.identity.signing,
    options: {
      ...DEFAULT_PIPELINE_OPTIONS,
      view: state.startView,
      sigTxInterval: config.ledgerSignatures.txCount,
      sigMsInterval: config.ledgerSignatures.delayMs,
      maxUncommittedTxs: config.consensus.maxUncommittedTxCount,
    },
    nowMs: clock.monotonicMs(),
    realtimeMs: () => clock.realtimeMs(),
    ...hooks,
  });
}

export function createRaft(
  config: NodeConfig,
  state: StartingState,
  clock: Clock,
  flushLedger: () => void,
): RaftNode {
  const start = state.raft;
  return new RaftNode({
    id: state.identity.signing.nodeId,
    timings: {
      ...DEFAULT_TIMINGS,
      heartbeatMs: config.consensus.messageTimeoutMs,
      electionMs: config.consensus.electionTimeoutMs,
    },
    rng: new CryptoRng(),
    nowMs: clock.monotonicMs(),
    base: start.base,
    ...(start.entries !== undefined ? { entries: start.entries } : {}),
    ...(start.commitSeqno !== undefined ? { commitSeqno: start.commitSeqno } : {}),
    hardState: { view: start.view, votedFor: null },
    startAsLeader: start.startAsLeader,
    reader: {
      payloads: (from, count) =>
        readLedgerPayloads(
          {
            directory: config.ledger.directory,
            readOnlyDirectories: config.ledger.readOnlyDirectories,
            flush: flushLedger,
          },
          from,
          count,
        ),
    },
  });
}

/**
 * A node-to-node connection on which a node kept sending without hearing back for this long is
 * recycled (channels.ts, "Liveness"): twice the election timeout, so a follower that misses
 * heartbeats has already started a pre-vote before its connections are questioned, and no less
 * than 2 s, so a slow turn under load does not churn connections.
 */
export function channelSilenceMs(config: NodeConfig): number {
  return Math.max(2000, 2 * config.consensus.electionTimeoutMs);
}

export function createChannels(
  config: NodeConfig,
  state: StartingState,
  authorize: (peerId: string, certDer: Uint8Array) => boolean,
  onMessage: (from: string, payload: Uint8Array) => void,
  log: (line: string) => void,
): NodeChannels {
  const signing = state.identity.signing;
  return new NodeChannels({
    selfId: signing.nodeId,
    certPem: signing.certPem,
    keyPem: ecPrivateKeyPem(signing.privateKey),
    authorize,
    onMessage,
    log: (line) => log(`[n2n] ${line}`),
    silenceMs: channelSilenceMs(config),
  });
}

export interface DriverParts {
  readonly raft: RaftNode;
  readonly pipeline: TxPipeline;
  readonly outbox: ReplicationOutbox;
  readonly nodesTable: NodesTable;
  readonly channels: NodeChannels;
  readonly clock: Clock;
  /** Runs the driver's deferred turns (the host's, which stops the node on a storage fault). */
  readonly scheduler: TurnScheduler;
}

export interface DriverHooks {
  readonly onForward: (from: NodeId, message: N2nMessage) => void;
  readonly onCommit: () => void;
  readonly onRoleChange: (role: Role, view: View, leader: NodeId | null) => void;
  readonly log: (line: string) => void;
}

export function createDriver(
  config: NodeConfig,
  parts: DriverParts,
  hooks: DriverHooks,
): ConsensusDriver {
  return new ConsensusDriver({
    raft: parts.raft,
    replica: parts.pipeline,
    outbox: parts.outbox,
    transport: parts.channels,
    hardState: new HardStateFile(joinPath(config.ledger.directory, HARD_STATE_FILE)),
    peers: parts.nodesTable,
    scheduler: parts.scheduler,
    clock: parts.clock,
    selfAddress: formatAddress(config.network.nodeToNodeInterface.publishedAddress),
    log: (line) => hooks.log(`[consensus] ${line}`),
    onForward: hooks.onForward,
    onCommit: hooks.onCommit,
    onRoleChange: hooks.onRoleChange,
    trace: roundTraceFromEnv(),
  });
}
