/**
 * One running Consortia node: it owns its store, history, ledger, pipeline and Raft node (one
 * owner, no locks), the node-to-node channels, the consensus driver, forwarding, and the
 * node's runtime rules (snapshots, recovery shares, rekeys, retirements, snapshot evidence, a
 * disaster recovery in progress). The host is built from a NodeStart (node-start.ts), which a
 * boot path made (startup/, join/, recovery/); start-node.ts picks the boot path, writes the
 * node's first transaction, registers the frontends and calls serve().
 *
 * Once serving, the node runs one HTTPS server per rpc interface, the node-to-node listener,
 * and a timer that ticks the pipeline and consensus. Handlers run synchronously inside
 * pipeline.execute; a write that reaches a backup is forwarded to the primary (RequestPath).
 *
 * Storage faults (SECURITY.md, "Disk faults"): the first StorageError from the ledger (through
 * the pipeline) or the hard state (through the driver) stops the node at once, in the same
 * call: the tick stops, peer messages are dropped, the pipeline refuses writes, and
 * `deps.onStorageFault` is told, whose owner (the CLI) then calls stop() and exits. Nothing runs
 * consensus again, so no commit advances and no commit index is sent after the fault.
 */
import type { NodeId, View } from "../base/ids.js";
import type { Clock } from "../base/io.js";
import { StorageError } from "../base/storage-error.js";
import type { RaftNode } from "../consensus/raft.js";
import { ecPrivateKeyPem } from "../crypto/identity.js";
import { getById, GOV_MAPS, reachableAddress } from "../gov/tables.js";
import { Router, type RpcRequest } from "../http/router.js";
import { createRpcServer, type RpcServer } from "../http/server.js";
import type { Store } from "../kv/store.js";
import type { Tx } from "../kv/tx.js";
import type { TxHistory } from "../ledger/history.js";
import type { NodeConfig } from "./config/config.js";
import { rpcLimitsOf } from "./config/rpc-limits.js";
import type { NodeContext, NodeStartupState } from "./frontends/node-context.js";
import { RequestPath } from "./frontends/request-path.js";
import { SystemTransactions } from "./pipeline/system-tx.js";
import type { TxPipeline } from "./pipeline/tx-pipeline.js";
import { DisasterRecovery } from "./recovery/disaster-recovery.js";
import { RecoveryKeeper } from "./recovery/recovery-keeper.js";
import { Rekeys } from "./recovery/rekey.js";
import type { ConsensusDriver } from "./replication/consensus-driver.js";
import { Forwarder } from "./replication/forwarding.js";
import { NodesTable } from "./replication/nodes-table.js";
import { ReplicationOutbox } from "./replication/outbox.js";
import { EVENT_LOOP_SCHEDULER } from "./replication/event-loop-scheduler.js";
import type { NodeChannels } from "./replication/n2n/channels.js";
import { isAuthorizedPeer } from "./replication/peer-authorization.js";
import { Retirements } from "./replication/retirement.js";
import { SnapshotEvidenceCheck } from "./snapshots/evidence-check.js";
import { Snapshotter } from "./snapshots/snapshotter.js";
import type { ListeningSockets } from "./startup/listening-sockets.js";
import { decodeVirtualQuote, type VirtualQuote } from "./startup/node-identity.js";
import type { NodeIdentity } from "./startup/node-identity.js";
import { NodeMetrics } from "./node-metrics.js";
import { TurnSlicer } from "../http/turn-slicer.js";
import { StartupError, StartupErrorCode } from "./startup/startup-checks.js";
import { startingState, type NodeStart } from "./node-start.js";
import {
  createChannels,
  createDriver,
  createPipeline,
  createRaft,
  openLedger,
} from "./node-wiring.js";

/** How often the pipeline and consensus are ticked (signatures, heartbeats, elections). */
const TICK_INTERVAL_MS = 10;

/**
 * Request handling between two polls of the event loop, at most (http/turn-slicer.ts): under
 * load, a backup's acknowledgement is read within about this long of arriving, instead of after
 * every request that arrived with it. `CONSORTIA_REQUEST_SLICE_MS` overrides it for A/B runs
 * (docs/performance.md); 0 handles each request in the read that completes it.
 */
const REQUEST_SLICE_MS = 1;

/**
 * GETs of /node/*: commit and transaction status, the node's and the network's state, metrics.
 * They read consensus and node state, not what the app writes, and skip the slicer's queue, so
 * a client waiting for commit (or a health probe) is answered as soon as the node can.
 */
function isStatusRead(request: RpcRequest): boolean {
  return request.method === "GET" && request.path.startsWith("/node/");
}

/** The request slice budget in ms from the environment (0: no slicing); throws StartupError. */
export function requestSliceMs(env: NodeJS.ProcessEnv): number {
  const raw = env["CONSORTIA_REQUEST_SLICE_MS"];
  if (raw === undefined || raw.trim() === "") return REQUEST_SLICE_MS;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) {
    throw new StartupError(
      { code: StartupErrorCode.InvalidEnvironment },
      `CONSORTIA_REQUEST_SLICE_MS must be a number of milliseconds >= 0, not "${raw}"`,
    );
  }
  return ms;
}

function requestSlicer(env: NodeJS.ProcessEnv): TurnSlicer | undefined {
  const ms = requestSliceMs(env);
  return ms > 0 ? new TurnSlicer({ budgetMs: ms }) : undefined;
}

export interface NodeHostDeps {
  readonly log: (line: string) => void;
  /** Wall-clock time for certificates and governance timestamps. */
  readonly now: () => Date;
  /** Monotonic time for intervals and timeouts. */
  readonly clock: Clock;
  /** Told once, at the first storage fault: the node has stopped working and must be stopped. */
  readonly onStorageFault?: ((fault: StorageError) => void) | undefined;
}

export class NodeHost implements NodeContext {
  private state: NodeStartupState = "Initialized";
  private readonly servers: RpcServer[] = [];
  private tickTimer: NodeJS.Timeout | null = null;
  private readonly stopHooks: (() => Promise<void>)[] = [];
  private lastLeader: NodeId | null = null;
  /** Invariant: once set, never cleared; the tick is stopped and peer messages are dropped. */
  private fault: StorageError | null = null;
  readonly router = new Router();
  readonly identity: NodeIdentity;
  readonly quote: VirtualQuote;
  readonly store: Store;
  readonly history: TxHistory;
  readonly startupSeqno: number;
  readonly pipeline: TxPipeline;
  readonly system: SystemTransactions;
  readonly raft: RaftNode;
  readonly channels: NodeChannels;
  readonly driver: ConsensusDriver;
  readonly forwarder: Forwarder;
  readonly requestPath: RequestPath;
  readonly snapshotter: Snapshotter;
  readonly keeper: RecoveryKeeper;
  readonly disasterRecovery: DisasterRecovery | null;
  private readonly evidenceCheck: SnapshotEvidenceCheck;
  private readonly rekeys: Rekeys;
  private readonly retirements: Retirements;
  private readonly nodeMetrics: NodeMetrics;
  /** Shared by every rpc interface: one event loop, one budget. */
  private readonly slicer = requestSlicer(process.env);

  constructor(
    readonly config: NodeConfig,
    start: NodeStart,
    private readonly deps: NodeHostDeps,
  ) {
    const log = deps.log;
    const opened = openLedger(config, start, (files) => startingState(start, files), log);
    const state = opened.state;
    this.identity = state.identity;
    this.quote = decodeVirtualQuote(state.identity.quote);
    this.store = state.store;
    this.history = state.history;
    this.startupSeqno = state.startupSeqno;
    this.evidenceCheck = new SnapshotEvidenceCheck(state.snapshotToConfirm, log);
    // The pipeline hands its entries to consensus through the outbox, which the driver drains.
    const nodesTable = new NodesTable(this.store);
    const outbox = new ReplicationOutbox(nodesTable);
    this.pipeline = createPipeline(config, state, opened.ledger, deps.clock, {
      consensus: outbox,
      onSignature: (txId) => this.snapshotter.onSignature(txId),
      onWriteSet: (seqno, writeSet) => {
        this.nodeMetrics.onWriteSet(seqno);
        this.evidenceCheck.onWriteSet(seqno, writeSet);
        this.rekeys.onWriteSet(seqno, writeSet);
      },
      onStorageFault: (fault) => this.onStorageFault(fault),
      onWork: () => this.schedulePump(),
    });
    this.system = new SystemTransactions(this.pipeline);
    this.raft = createRaft(config, state, deps.clock, () => this.pipeline.flushLedger());
    this.channels = createChannels(
      config,
      state,
      (id, certDer) => isAuthorizedPeer({ id, certDer }, this.serviceIdentity),
      (from, payload) => {
        if (this.fault === null) this.driver.receive(from, payload);
      },
      log,
    );
    this.driver = this.createDriver(outbox, nodesTable);
    this.forwarder = this.createForwarder();
    this.requestPath = this.createRequestPath();
    this.snapshotter = this.createSnapshotter();
    this.keeper = this.createKeeper();
    this.rekeys = this.createRekeys();
    this.retirements = new Retirements({
      raft: this.raft,
      system: this.system,
      defer: (task) => setImmediate(task),
      log,
    });
    this.disasterRecovery = start.kind === "recover" ? this.createDisasterRecovery(start) : null;
    this.nodeMetrics = new NodeMetrics(this, opened.ledger);
  }

  private createDriver(outbox: ReplicationOutbox, nodesTable: NodesTable): ConsensusDriver {
    return createDriver(
      this.config,
      {
        raft: this.raft,
        pipeline: this.pipeline,
        outbox,
        nodesTable,
        channels: this.channels,
        clock: this.deps.clock,
        scheduler: { defer: (task) => EVENT_LOOP_SCHEDULER.defer(() => this.guarded(task)) },
      },
      {
        onForward: (from, message) => this.forwarder.onMessage(from, message),
        onCommit: () => {
          this.nodeMetrics.onCommit(this.raft.commitSeqno);
          this.snapshotter.onCommit(this.raft.commitSeqno);
          this.retirements.onCommit();
        },
        onRoleChange: (role, view, leader) => this.onRoleChange(role, view, leader),
        log: this.deps.log,
      },
    );
  }

  /**
   * Runs a turn of the node loop (tick, consensus). A StorageError ends it and stops the node;
   * anything else propagates (a bug stops the process with its stack).
   */
  private guarded(turn: () => void): void {
    if (this.fault !== null) return;
    try {
      turn();
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      this.onStorageFault(e);
    }
  }

  /**
   * The pipeline has work for its pump (a transaction executed, the sealer finished a batch, a
   * commit left transactions unsigned): the driver runs it at the end of this event-loop turn,
   * after the requests and peer messages that arrived together (consensus-driver.ts process).
   * Not before serving, nor after stop.
   */
  private schedulePump(): void {
    if (this.tickTimer === null) return;
    this.driver.requestTurn();
  }

  /** The first storage fault: stop taking writes and running consensus, at once. */
  private onStorageFault(fault: StorageError): void {
    if (this.fault !== null) return;
    this.fault = fault;
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    this.state = "Stopped";
    this.deps.onStorageFault?.(fault);
  }

  /** The storage fault that stopped this node, or null. */
  get storageFault(): StorageError | null {
    return this.fault;
  }

  private onRoleChange(role: string, view: View, leader: NodeId | null): void {
    this.deps.log(`consensus: ${role} in view ${view}, primary ${leader ?? "unknown"}`);
    this.nodeMetrics.onRoleChange();
    if (this.lastLeader !== null && leader !== this.lastLeader) {
      this.forwarder.abandon(this.lastLeader);
    }
    // A new primary issues its own shares, so that it holds the key rekeys re-wrap under.
    if (role === "Leader" && leader === this.nodeId) this.keeper.scheduleRefresh();
    this.lastLeader = leader;
  }

  private createForwarder(): Forwarder {
    return new Forwarder({
      send: (peer, message) => this.driver.sendTo(peer, message),
      selfAddress: () => this.driver.selfAddress,
      dispatch: (request) => this.requestPath.dispatchForwarded(request),
      timeoutMs: Math.max(3000, 3 * this.config.consensus.electionTimeoutMs),
      log: (line) => this.deps.log(`[forwarding] ${line}`),
    });
  }

  private createRequestPath(): RequestPath {
    return new RequestPath({
      router: this.router,
      selfId: this.nodeId,
      primary: () => this.raft.leader,
      lastTxId: () => this.pipeline.lastTxId,
      forward: (primary, request) => this.forwarder.forward(primary, request),
      log: this.deps.log,
    });
  }

  private createSnapshotter(): Snapshotter {
    return new Snapshotter({
      directory: this.config.snapshots.directory,
      txInterval: this.config.snapshots.txCount,
      pipeline: this.pipeline,
      system: this.system,
      store: this.store,
      history: this.history,
      viewHistory: (at) => this.raft.log.viewHistory(at),
      // A recovering service holds only the public domain until the recovery completes: no
      // snapshot of it then.
      isPrimary: () => this.raft.isLeader && (this.disasterRecovery?.done ?? true),
      status: (view, seqno) => this.raft.status(view, seqno),
      log: (line) => this.deps.log(`[snapshot] ${line}`),
      offThread: true,
      monotonicMs: () => this.deps.clock.monotonicMs(),
      onWritten: (written) => this.nodeMetrics.onSnapshotWritten(written),
    });
  }

  private createKeeper(): RecoveryKeeper {
    return new RecoveryKeeper({
      system: this.system,
      store: this.store,
      secrets: () => this.history.secrets,
      isPrimary: () => this.raft.isLeader,
      log: (line) => this.deps.log(`[recovery] ${line}`),
    });
  }

  private createRekeys(): Rekeys {
    return new Rekeys({
      nodeId: this.nodeId,
      encryptionPrivateKeyPem: this.identity.encryptionPrivateKeyPem,
      lastSeqno: () => this.store.seqno,
      secrets: () => this.history.secrets,
      keeper: this.keeper,
      addSecret: (fromSeqno, key) => this.pipeline.addLedgerSecret(fromSeqno, key),
      log: this.deps.log,
    });
  }

  private createDisasterRecovery(start: NodeStart & { kind: "recover" }): DisasterRecovery {
    const { replay, snapshot, previousServiceCertPem } = start.recovered;
    const recovery = new DisasterRecovery(
      {
        pipeline: this.pipeline,
        system: this.system,
        store: this.store,
        history: this.history,
        ledgerDir: this.config.ledger.directory,
        readOnlyDirectories: this.config.ledger.readOnlyDirectories,
        serviceIdentity: () => this.serviceIdentity.signer,
        setState: (state) => {
          this.state = state;
        },
        afterOpen: () => {
          this.keeper.scheduleRefresh();
          // Joiners cannot catch up from before the snapshot this node started from: give
          // them a snapshot of the new service.
          if (this.startupSeqno > 0) this.snapshotter.request();
        },
        now: this.deps.now,
        log: (line) => this.deps.log(`[recovery] ${line}`),
      },
      {
        upTo: replay.lastSignedSeqno,
        upToView: replay.lastView,
        lastSignedRoot: replay.lastSignedRoot,
        snapshot,
        previousServiceCertPem,
      },
    );
    // The previous service's payloads stay in its ledger files; only recent ones in memory.
    this.raft.compactPayloads(replay.payloadsFrom);
    return recovery;
  }

  /** The service's certificate and key, and the store peers are checked against. */
  private get serviceIdentity() {
    const identity = this.identity;
    return {
      certPem: identity.serviceCertPem,
      store: this.store,
      signer: { certPem: identity.serviceCertPem, privateKey: identity.servicePrivateKey },
    };
  }

  // NodeContext ------------------------------------------------------------------------------

  get nodeId(): NodeId {
    return this.identity.signing.nodeId;
  }

  get serviceCertPem(): string {
    return this.identity.serviceCertPem;
  }

  get nodeCertPem(): string {
    return this.identity.signing.certPem;
  }

  get view(): View {
    return this.raft.view;
  }

  get clock(): Clock {
    return this.deps.clock;
  }

  get hostData(): string {
    return this.quote.host_data;
  }

  readonly startupState = (): NodeStartupState => this.state;

  rpcAddressOf(nodeId: NodeId): string | null {
    const tx = this.store.begin();
    const info = getById(tx, GOV_MAPS.nodeInfo, nodeId);
    tx.close();
    const first = info === undefined ? undefined : Object.values(info.rpc_interfaces)[0];
    return first === undefined ? null : reachableAddress(first);
  }

  writeRekey(tx: Tx): void {
    this.rekeys.write(tx);
  }

  requestSnapshot(): void {
    this.snapshotter.request();
  }

  scheduleRecoverySharesRefresh(): void {
    this.keeper.scheduleRefresh();
  }

  metrics(): Record<string, unknown> {
    return this.nodeMetrics.read();
  }

  prometheusMetrics(): string {
    return this.nodeMetrics.prometheus();
  }

  // Serving ----------------------------------------------------------------------------------

  /**
   * Starts serving: the node-to-node channel, every rpc interface, and the tick. With `sockets`
   * (startNode's, bound before anything was written), each server listens on its own socket.
   */
  async serve(sockets?: ListeningSockets): Promise<void> {
    const n2n = this.config.network.nodeToNodeInterface.bindAddress;
    const bound = await this.channels.listen(n2n.host, n2n.port, sockets?.takeNodeToNode());
    this.deps.log(`node-to-node interface listening on ${bound.host}:${bound.port}`);
    const keyPem = ecPrivateKeyPem(this.identity.signing.privateKey);
    for (const [name, rpc] of Object.entries(this.config.network.rpcInterfaces)) {
      const server = await createRpcServer({
        host: rpc.bindAddress.host,
        port: rpc.bindAddress.port,
        ...(sockets !== undefined && { socket: sockets.takeRpc(name) }),
        certPem: this.nodeCertPem,
        keyPem,
        caPem: this.serviceCertPem,
        maxBodyBytes: rpc.http.maxBodySizeBytes,
        limits: rpcLimitsOf(this.config, rpc),
        router: this.router,
        onRequest: this.requestPath.middleware,
        observer: this.nodeMetrics.requests,
        ...(this.slicer !== undefined && { slicer: this.slicer, urgent: isStatusRead }),
        log: (message, error) => this.deps.log(`[${name}] ${message} ${String(error ?? "")}`),
      });
      this.servers.push(server);
      this.deps.log(`rpc interface ${name} listening on ${server.host}:${server.port}`);
    }
    if (this.fault !== null) return;
    this.tickTimer = setInterval(() => this.guarded(() => this.driver.tick()), TICK_INTERVAL_MS);
    const recovering = this.disasterRecovery !== null && !this.disasterRecovery.done;
    this.state = recovering ? "PartOfPublicNetwork" : "PartOfNetwork";
  }

  /** The addresses actually bound (port 0 in the config picks a free port). */
  get boundInterfaces(): { name: string; host: string; port: number }[] {
    const names = Object.keys(this.config.network.rpcInterfaces);
    return this.servers.map((s, i) => ({ name: names[i]!, host: s.host, port: s.port }));
  }

  /** Runs `hook` when the node stops, once its servers are closed (workers of the frontends). */
  onStop(hook: () => Promise<void>): void {
    this.stopHooks.push(hook);
  }

  /**
   * Stops within ~1 s under any load: the servers refuse new requests at once and give running
   * ones http/server.ts's short grace; consensus then stops stepping (nothing commits through
   * the ledger being closed); the stop hooks (worker threads) end meanwhile with the channels
   * and the snapshotter, then the pipeline makes its final signature and sync.
   */
  async stop(): Promise<void> {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    this.forwarder.close();
    await Promise.all(this.servers.map((s) => s.close()));
    this.servers.length = 0;
    this.driver.stop();
    const hooks = Promise.all(this.stopHooks.splice(0).map((hook) => hook()));
    hooks.catch(() => undefined); // awaited below, after the pipeline
    await this.channels.close();
    await this.snapshotter.close();
    await this.pipeline.close();
    await hooks;
    this.nodeMetrics.stop();
    this.state = "Stopped";
  }
}
