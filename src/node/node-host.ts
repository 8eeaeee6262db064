/**
 * One Consortia node. `NodeHost.start` creates the service (command.type Start): service and
 * node identities, the genesis transaction (members, constitution, service info Opening, this
 * node Trusted, its virtual measurement and host data) and a signature, as primary of view 2.
 * `NodeHost.join` joins an existing service (ccf-api.md 2.3): it presents a virtual quote to
 * the target's `POST /node/join`, waits while Pending, and once Trusted receives the ledger
 * secrets, the service identity and its endorsed certificate, then catches up from the primary.
 *
 * Either way the node then runs the same loop: one HTTPS server per rpc interface, the
 * node-to-node channel, and a timer that ticks the pipeline and consensus (ConsensusDriver).
 * Writes reaching a backup are forwarded to the primary (Forwarder).
 *
 * The node owns its store, history, ledger, pipeline and Raft node (house style: one owner, no
 * locks); handlers run synchronously inside pipeline.execute.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { performance } from "node:perf_hooks";
import { join as joinPath } from "node:path";
import { derToPem, fromBase64, fromUtf8, toBase64, toHex, utf8 } from "../base/bytes.js";
import type { NodeId, Seqno, TxId, View } from "../base/ids.js";
import { formatTxId } from "../base/ids.js";
import { makeVirtualQuote, VIRTUAL_MEASUREMENT, type QuoteInfo } from "../attestation/index.js";
import { RaftNode } from "../consensus/raft.js";
import { DEFAULT_TIMINGS } from "../consensus/types.js";
import { sha256 } from "../crypto/hash.js";
import { isIssuedBy } from "../crypto/certs.js";
import {
  ecPrivateKeyPem,
  generateEcKeyPair,
  generateEncryptionKey,
  nodeIdFromPublicKey,
  rsaOaepDecrypt,
  rsaOaepEncrypt,
} from "../crypto/identity.js";
import { createSelfSignedCertificate } from "../crypto/certs.js";
import { Store } from "../kv/store.js";
import { TxHistory } from "../ledger/history.js";
import { LedgerSecrets } from "../ledger/ledger-secrets.js";
import { LedgerWriter } from "../ledger/io/ledger-writer.js";
import { listLedgerFiles, readLedger } from "../ledger/io/ledger-reader.js";
import { Router } from "../http/router.js";
import { dispatchRequest } from "../http/server.js";
import { createRpcServer, type RpcServer } from "../http/server.js";
import { errorBody, HttpErrorCode } from "../http/errors.js";
import type { RpcRequest, RpcResponse } from "../http/router.js";
import { writeGenesis } from "../gov/genesis.js";
import { entriesById, getById, GOV_MAPS, setById, type NodeInfo } from "../gov/tables.js";
import type { NodeConfig } from "./config/config.js";
import {
  CONSORTIA_VERSION,
  type NodeContext,
  type NodeStartupState,
  type VirtualQuote,
} from "./frontends/node-context.js";
import { formatAddress } from "./config/config-values.js";
import { createStartIdentities } from "./identities.js";
import { InlineSealer, WorkerSealer } from "./pipeline/sealer.js";
import {
  TxPipeline,
  DEFAULT_PIPELINE_OPTIONS,
  type NodeSigningIdentity,
} from "./pipeline/tx-pipeline.js";
import { FORWARD_HEADER, TXID_HEADER } from "./frontends/rpc-context.js";
import { ConsensusDriver } from "./replication/consensus-driver.js";
import { EVENT_LOOP_SCHEDULER } from "./replication/event-loop-scheduler.js";
import { HardStateFile } from "./replication/hard-state-file.js";
import { NodesTable, trustedNodeIds } from "./replication/nodes-table.js";
import { ReplicationOutbox } from "./replication/outbox.js";
import { SystemClock } from "../platform/system-clock.js";
import { DisasterRecovery } from "./recovery/disaster-recovery.js";
import {
  replayPublic,
  setAsideLedgerAfter,
  type PublicReplay,
  type RecoverySnapshot,
} from "./recovery/recovery-replay.js";
import {
  decodeSnapshot,
  snapshotDigest,
  splitSnapshotFile,
  recordsSnapshotEvidence,
  SNAPSHOT_TREE_MAP,
  type DecodedSnapshot,
} from "../ledger/snapshot.js";
import type { WriteSet } from "../kv/write-set.js";
import type { Tx } from "../kv/tx.js";
import { SINGLETON_KEY_BYTES } from "../kv/service-tables.js";
import { RecoveryKeeper } from "./recovery/recovery-keeper.js";
import { Snapshotter } from "./snapshots/snapshotter.js";
import {
  checkEmptyLedger,
  usableCommittedSnapshots,
  nodeInfoNetwork,
  probeInterfaces,
  resolvePorts,
  secretsOf,
  servePending,
} from "./node-startup.js";

import { Forwarder } from "./replication/forwarding.js";
import { NodeChannels } from "./replication/n2n/channels.js";
import { joinNetwork } from "./join/join-client.js";
import type { JoinRequest } from "./join/join-endpoint.js";
import { registerJoinEndpoint } from "./join/join-endpoint.js";
import { registerSnapshotEndpoints } from "./snapshots/snapshot-endpoints.js";
import { fetchRecentSnapshotForJoin } from "./snapshots/snapshot-fetch.js";

export { VIRTUAL_MEASUREMENT };
/** The first service view is 2 (ccf-api.md 7). */
const START_VIEW = 2 as View;
/** Threads hashing entries beside the node's during a recovery's public replay. */
const REPLAY_WORKERS = 2;
/** How often the pipeline and consensus are ticked (signatures, heartbeats, elections). */
const TICK_INTERVAL_MS = 10;
/** The hard state (view, vote) lives next to the ledger chunks. */
const HARD_STATE_FILE = "consensus_state.json";

export interface NodeHostDeps {
  readonly log: (line: string) => void;
  readonly now?: () => Date;
}

/** host_data of a virtual node: SHA-256 of what it runs (the package name and version). */
export function virtualHostData(): string {
  return toHex(sha256(utf8(`consortia ${CONSORTIA_VERSION}`)));
}

/** Everything a node holds about who it is and which service it belongs to. */
interface NodeIdentity {
  readonly signing: NodeSigningIdentity;
  readonly serviceCertPem: string;
  readonly servicePrivateKey: KeyObject;
  readonly publicKeyDer: Uint8Array;
  readonly encryptionPublicKeyPem: string;
  /** The node's RSA key: rekeyed ledger secrets reach it encrypted to the public half. */
  readonly encryptionPrivateKeyPem: string;
  readonly quote: QuoteInfo;
}

/** A ledger secret's key name for the table carrying rekeyed secrets to the nodes. */
const LEDGER_SECRET_FOR_NODES_MAP = "public:ccf.internal.ledger_secrets_for_nodes";

function encryptionKeys(k: { publicKeyPem: string; privateKeyPem: string }) {
  return { encryptionPublicKeyPem: k.publicKeyPem, encryptionPrivateKeyPem: k.privateKeyPem };
}

function decodeVirtualQuote(quote: QuoteInfo): VirtualQuote {
  return JSON.parse(new TextDecoder().decode(fromBase64(quote.quote)!)) as VirtualQuote;
}

function spkiDer(key: KeyObject): Uint8Array {
  return new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }));
}

/** snapshots.directory, then snapshots.read_only_directory when set. */
function snapshotDirsOf(config: NodeConfig): string[] {
  const readOnly = config.snapshots.readOnlyDirectory;
  return [config.snapshots.directory, ...(readOnly !== undefined ? [readOnly] : [])];
}

function curveOf(config: NodeConfig): "secp256r1" | "secp384r1" {
  return config.nodeCertificate.curveId === "Secp256R1" ? "secp256r1" : "secp384r1";
}

/** A Recover node's start: the previous service's ledger, replayed publicly. */
interface RecoveredStart {
  readonly replay: PublicReplay;
  readonly snapshot?: RecoverySnapshot | undefined;
  readonly previousServiceCertPem: string;
}

/** A new service identity and this node's, endorsed by it (command Start or Recover). */
async function newServiceIdentity(
  config: NodeConfig,
  now: Date,
  service: { validityDays: number; subject?: string | undefined },
): Promise<NodeIdentity> {
  const ids = await createStartIdentities({
    now,
    curve: curveOf(config),
    serviceValidityDays: service.validityDays,
    nodeValidityDays: config.nodeCertificate.initialValidityDays,
    ...(service.subject !== undefined ? { serviceSubject: service.subject } : {}),
    nodeSubject: config.nodeCertificate.subjectName,
    subjectAltNames: config.nodeCertificate.subjectAltNames,
  });
  const publicKeyDer = spkiDer(ids.node.privateKey);
  return {
    signing: ids.node,
    serviceCertPem: ids.serviceCertPem,
    servicePrivateKey: ids.serviceKeys.privateKey,
    publicKeyDer,
    ...encryptionKeys(generateEncryptionKey()),
    quote: makeVirtualQuote(publicKeyDer, virtualHostData()),
  };
}

interface NodeParts {
  readonly identity: NodeIdentity;
  /** command Recover: where the node starts from (instead of a snapshot or nothing). */
  readonly recovered?: RecoveredStart | undefined;
  /** A joiner's committed snapshot, decrypted: the node starts at its seqno. */
  readonly snapshot?: DecodedSnapshot | undefined;
  /** The seqno of that snapshot's evidence (from its file name), checked during replay. */
  readonly snapshotEvidenceSeqno?: Seqno | undefined;
  readonly secrets: LedgerSecrets;
  readonly startAsLeader: boolean;
}

export class NodeHost implements NodeContext {
  private state: NodeStartupState = "Initialized";
  private readonly servers: RpcServer[] = [];
  private tickTimer: NodeJS.Timeout | null = null;
  readonly router = new Router();
  readonly store: Store;
  readonly history: TxHistory;
  readonly pipeline: TxPipeline;
  readonly raft: RaftNode;
  readonly driver: ConsensusDriver;
  readonly channels: NodeChannels;
  readonly forwarder: Forwarder;
  readonly quote: VirtualQuote;
  private readonly identity: NodeIdentity;
  private lastLeader: NodeId | null = null;
  /** The committed configuration whose retirements afterCommit last recorded. */
  private retirementsCheckedAt = -1;
  private lastElu = performance.eventLoopUtilization();
  readonly recovery: RecoveryKeeper;
  readonly snapshotter: Snapshotter;
  readonly startupSeqno: number;
  /** On a Recover node: the recovery, until and after it completes. */
  readonly disasterRecovery: DisasterRecovery | null = null;
  /** Set when this node started from a snapshot, until its evidence is replayed. */
  private expectedEvidence: { seqno: Seqno; evidenceSeqno: Seqno; hash: string } | null = null;

  private constructor(
    readonly config: NodeConfig,
    parts: NodeParts,
    private readonly deps: NodeHostDeps,
  ) {
    this.identity = parts.identity;
    this.quote = decodeVirtualQuote(parts.identity.quote);
    // A node joining from a snapshot starts its store, history and ledger at its seqno.
    const snapshot = parts.snapshot;
    const tree = snapshot?.writeSet.maps.find((m) => m.name === SNAPSHOT_TREE_MAP)?.writes[0];
    if (snapshot !== undefined && tree?.value == null) {
      throw new Error(`snapshot ${snapshot.seqno} holds no Merkle tree state`);
    }
    const recovered = parts.recovered;
    const replay = recovered?.replay;
    this.store =
      replay?.store ??
      (snapshot === undefined
        ? new Store()
        : Store.fromSnapshot(snapshot.seqno, snapshot.writeSet, true));
    if (snapshot !== undefined && parts.snapshotEvidenceSeqno !== undefined) {
      this.expectedEvidence = {
        seqno: snapshot.seqno,
        evidenceSeqno: parts.snapshotEvidenceSeqno,
        hash: toHex(snapshotDigest(snapshot.entryBytes)),
      };
    }
    this.history =
      replay?.history ??
      (snapshot === undefined
        ? new TxHistory(parts.secrets)
        : TxHistory.fromSnapshot(parts.secrets, { seqno: snapshot.seqno, frontier: tree!.value! }));
    // A recovered service's views come after every view of the previous one.
    const startView =
      replay !== undefined
        ? (Math.max(START_VIEW, replay.lastView + 1) as View)
        : (snapshot?.view ?? START_VIEW);
    this.startupSeqno = replay?.base.seqno ?? snapshot?.seqno ?? 0;

    this.snapshotter = new Snapshotter({
      directory: config.snapshots.directory,
      txInterval: config.snapshots.txCount,
      pipeline: () => this.pipeline,
      store: this.store,
      history: this.history,
      // A recovering service holds only the public domain until the recovery completes: no
      // snapshot of it then.
      isPrimary: () => this.raft.isLeader && (this.disasterRecovery?.done ?? true),
      status: (view, seqno) => this.raft.status(view, seqno),
      log: (line) => deps.log(`[snapshot] ${line}`),
      offThread: true,
    });
    if (replay !== undefined) {
      const log = (line: string) => deps.log(`[recovery] ${line}`);
      setAsideLedgerAfter(config.ledger.directory, replay.lastSignedSeqno, log);
    }
    const ledger = LedgerWriter.open(config.ledger.directory, {
      chunkSizeBytes: config.ledger.chunkSizeBytes,
      // A recovered ledger starts wherever its files say (after the recovery point when they
      // are all in read-only directories).
      startSeqno:
        replay === undefined
          ? (snapshot?.seqno ?? 0) + 1
          : listLedgerFiles(config.ledger.directory).length > 0
            ? undefined
            : replay.lastSignedSeqno + 1,
    });
    if (replay !== undefined) ledger.truncate(replay.lastSignedSeqno);
    // The pipeline and the driver share the replication outbox, created first: the pipeline
    // hands its entries to it, the driver takes them into Raft and keeps its write flag.
    const clock = new SystemClock();
    const nodesTable = new NodesTable(this.store);
    const outbox = new ReplicationOutbox(nodesTable);
    this.pipeline = new TxPipeline({
      store: this.store,
      history: this.history,
      ledger,
      // worker_threads > 0: sealing (AES-GCM, digests) runs beside the node thread (ADR 0001).
      sealer:
        config.workerThreads === 0
          ? new InlineSealer(parts.secrets)
          : new WorkerSealer({
              secrets: parts.secrets,
              workers: config.workerThreads,
              batchTxMax: 64,
              inFlightBatchesMax: 8,
            }),
      identity: parts.identity.signing,
      options: {
        ...DEFAULT_PIPELINE_OPTIONS,
        view: startView,
        sigTxInterval: config.ledgerSignatures.txCount,
        sigMsInterval: config.ledgerSignatures.delayMs,
        maxUncommittedTxs: config.consensus.maxUncommittedTxCount,
      },
      nowMs: clock.monotonicMs(),
      consensus: outbox,
      onSignature: (txId) => this.snapshotter.onSignature(txId),
      onWriteSet: (seqno, writeSet) => {
        this.checkSnapshotEvidence(seqno, writeSet);
        this.applyRekey(seqno, writeSet);
      },
    });
    this.raft = new RaftNode({
      id: this.nodeId,
      timings: {
        ...DEFAULT_TIMINGS,
        heartbeatMs: config.consensus.messageTimeoutMs,
        electionMs: config.consensus.electionTimeoutMs,
      },
      rng: { bytes: (n) => new Uint8Array(randomBytes(n)), intBelow: randomIntBelow },
      nowMs: clock.monotonicMs(),
      // A recovered log keeps the previous service's entries, committed, but not their
      // configurations: the recovering node alone is the new service's first configuration.
      base:
        replay !== undefined
          ? { ...replay.base, configuration: [this.identity.signing.nodeId] }
          : snapshot === undefined
            ? { seqno: 0 as Seqno, view: 0 as View, configuration: [] }
            : {
                seqno: snapshot.seqno,
                view: snapshot.view,
                configuration: trustedNodeIds(this.store),
              },
      ...(replay !== undefined
        ? { entries: replay.entries, commitSeqno: replay.lastSignedSeqno }
        : {}),
      hardState: {
        view: parts.startAsLeader ? startView : (snapshot?.view ?? (0 as View)),
        votedFor: null,
      },
      startAsLeader: parts.startAsLeader,
      reader: { payloads: (from, count) => this.readPayloads(from, count) },
    });
    this.channels = new NodeChannels({
      selfId: this.nodeId,
      certPem: parts.identity.signing.certPem,
      keyPem: ecPrivateKeyPem(parts.identity.signing.privateKey),
      authorize: (peerId, der) => this.authorizePeer(peerId, der),
      onMessage: (from, payload) => this.driver.receive(from, payload),
      log: (line) => deps.log(`[n2n] ${line}`),
    });
    const n2n = config.network.nodeToNodeInterface;
    this.driver = new ConsensusDriver({
      raft: this.raft,
      replica: this.pipeline,
      outbox,
      transport: this.channels,
      hardState: new HardStateFile(joinPath(config.ledger.directory, HARD_STATE_FILE)),
      peers: nodesTable,
      scheduler: EVENT_LOOP_SCHEDULER,
      clock,
      selfAddress: formatAddress(n2n.publishedAddress),
      log: (line) => deps.log(`[consensus] ${line}`),
      onForward: (from, message) => this.forwarder.onMessage(from, message),
      onCommit: () => this.afterCommit(),
      onRoleChange: (role, view, leader) => {
        deps.log(`consensus: ${role} in view ${view}, primary ${leader ?? "unknown"}`);
        if (this.lastLeader !== null && leader !== this.lastLeader) {
          this.forwarder.abandon(this.lastLeader);
        }
        // A new primary issues its own shares, so that it holds the key rekeys re-wrap under.
        if (role === "Leader" && leader === this.nodeId) this.recovery?.scheduleRefresh();
        this.lastLeader = leader;
      },
    });
    this.forwarder = new Forwarder({
      send: (peer, message) => this.driver.sendTo(peer, message),
      selfAddress: () => this.driver.selfAddress,
      dispatch: (request) => this.dispatchLocally(request),
      timeoutMs: Math.max(3000, 3 * config.consensus.electionTimeoutMs),
      log: (line) => deps.log(`[forwarding] ${line}`),
    });
    this.recovery = new RecoveryKeeper({
      pipeline: this.pipeline,
      store: this.store,
      secrets: () => this.history.secrets,
      isPrimary: () => this.raft.isLeader,
      log: (line) => deps.log(`[recovery] ${line}`),
    });
    if (recovered !== undefined) {
      this.disasterRecovery = new DisasterRecovery(
        {
          pipeline: this.pipeline,
          store: this.store,
          history: this.history,
          ledgerDir: config.ledger.directory,
          readOnlyDirectories: config.ledger.readOnlyDirectories,
          serviceIdentity: () => ({
            certPem: this.serviceCertPem,
            privateKey: this.identity.servicePrivateKey,
          }),
          setState: (state) => {
            this.state = state;
          },
          afterOpen: () => {
            this.recovery.scheduleRefresh();
            // Joiners cannot catch up from before the snapshot this node started from: give
            // them a snapshot of the new service.
            if (this.startupSeqno > 0) this.snapshotter.request();
          },
          now: () => deps.now?.() ?? new Date(),
          log: (line) => deps.log(`[recovery] ${line}`),
        },
        {
          upTo: recovered.replay.lastSignedSeqno,
          upToView: recovered.replay.lastView,
          lastSignedRoot: recovered.replay.lastSignedRoot,
          snapshot: recovered.snapshot,
          previousServiceCertPem: recovered.previousServiceCertPem,
        },
      );
      // The previous service's payloads stay in its ledger files; only recent ones in memory.
      this.raft.compactPayloads(recovered.replay.payloadsFrom);
    }
    registerJoinEndpoint(this.router, {
      pipeline: this.pipeline,
      role: () => ({
        isPrimary: this.raft.isLeader,
        primaryRpcAddress: this.raft.leader === null ? null : this.rpcAddressOf(this.raft.leader),
      }),
      startupSeqno: this.startupSeqno,
      serviceIdentity: () => ({
        certPem: this.serviceCertPem,
        privateKey: this.identity.servicePrivateKey,
      }),
      ledgerSecrets: () => this.history.secrets.list(),
      now: () => deps.now?.() ?? new Date(),
      log: (line) => deps.log(`[join] ${line}`),
    });
    registerSnapshotEndpoints(this.router, {
      snapshotDirs: () => snapshotDirsOf(config),
      log: (line) => deps.log(`[snapshots] ${line}`),
    });
  }

  get nodeId(): NodeId {
    return this.identity.signing.nodeId;
  }

  /**
   * A peer on the node-to-node channel (it proved its key over TLS): its certificate must be
   * endorsed by the service, and once this node knows the nodes table (a joiner catching up
   * does not yet), the peer must be in it. A node deleted from the table cannot come back.
   */
  private authorizePeer(peerId: string, certDer: Uint8Array): boolean {
    if (!isIssuedBy(certDer, this.serviceCertPem)) return false;
    if (this.store.seqno === 0) return true;
    return this.store.get(GOV_MAPS.nodeInfo.name, utf8(peerId)) !== undefined;
  }

  /**
   * On the primary, once a configuration that leaves nodes out has committed, records
   * retired_committed on their nodes.info rows (CCF's set_retired_committed): they may then be
   * deleted (DELETE /node/network/nodes/{id}). Runs after the Ready being handled.
   */
  private afterCommit(): void {
    this.snapshotter.onCommit(this.raft.commitSeqno);
    if (!this.raft.isLeader) return;
    const committed = this.raft.log.activeConfigurations(this.raft.commitSeqno)[0]!;
    if (committed.seqno === this.retirementsCheckedAt) return;
    this.retirementsCheckedAt = committed.seqno;
    setImmediate(() => {
      if (!this.raft.isLeader) return;
      const outcome = this.pipeline.execute((tx) => {
        for (const [id, info] of entriesById(tx, GOV_MAPS.nodeInfo)) {
          if (info.status !== "Retired" || info.retired_committed === true) continue;
          if (committed.nodes.includes(id as NodeId)) continue;
          setById(tx, GOV_MAPS.nodeInfo, id, { ...info, retired_committed: true });
          this.deps.log(`node ${id} is retired and its retirement committed`);
        }
      });
      if (outcome.kind === "conflict") this.retirementsCheckedAt = -1; // try at the next commit
    });
  }

  /**
   * A node started from a snapshot trusts its store until the snapshot's evidence transaction
   * (replayed after it) confirms the snapshot's digest; a mismatch stops the node.
   */
  private checkSnapshotEvidence(seqno: Seqno, writeSet: WriteSet): void {
    const expected = this.expectedEvidence;
    if (expected === null || seqno !== expected.evidenceSeqno) return;
    if (!recordsSnapshotEvidence(writeSet.maps, expected.hash, expected.seqno)) {
      throw new Error(
        `snapshot ${expected.seqno}: the service's evidence at ${seqno} does not match its ` +
          `digest ${expected.hash}; this node's state cannot be trusted`,
      );
    }
    this.expectedEvidence = null;
    this.deps.log(`snapshot ${expected.seqno} confirmed by its evidence at ${seqno}`);
  }

  /**
   * trigger_ledger_rekey (called by the constitution inside the proposal's transaction): a fresh
   * ledger secret, encrypted to every Trusted node's encryption key, in force from the next
   * transaction on. Each node adds it as it commits or applies this write set (applyRekey).
   */
  writeRekey(tx: Tx): void {
    const key = new Uint8Array(randomBytes(32));
    // This transaction takes the next seqno (execution is synchronous); the secret applies after.
    const fromSeqno = this.store.seqno + 2;
    this.recovery.rewrap(tx, [...this.history.secrets.list(), { fromSeqno, key }], fromSeqno);
    const forNodes: Record<string, string> = {};
    for (const [id, info] of entriesById(tx, GOV_MAPS.nodeInfo)) {
      if (info.status !== "Trusted") continue;
      forNodes[id] = toBase64(rsaOaepEncrypt(info.encryption_pub_key, key));
    }
    tx.rw(LEDGER_SECRET_FOR_NODES_MAP).set(SINGLETON_KEY_BYTES, utf8(JSON.stringify(forNodes)));
  }

  /** A committed or applied rekey: this node's copy of the new secret, from seqno + 1 on. */
  private applyRekey(seqno: Seqno, writeSet: WriteSet): void {
    const map = writeSet.maps.find((m) => m.name === LEDGER_SECRET_FOR_NODES_MAP);
    const value = map?.writes[0]?.value;
    if (value == null) return;
    if (this.history.secrets.latest.fromSeqno > seqno) return; // known already (join answer)
    const forNodes = JSON.parse(fromUtf8(value)) as Record<string, string>;
    const mine = forNodes[this.nodeId];
    if (mine === undefined) return; // not Trusted then: the join answer carries the secrets
    const key = rsaOaepDecrypt(this.identity.encryptionPrivateKeyPem, fromBase64(mine)!);
    this.pipeline.addLedgerSecret((seqno + 1) as Seqno, key);
    this.deps.log(`ledger rekeyed at ${seqno}: a new secret from ${seqno + 1}`);
    this.recovery.scheduleRefresh();
  }

  requestSnapshot(): void {
    this.snapshotter.request();
  }

  scheduleRecoverySharesRefresh(): void {
    this.recovery.scheduleRefresh();
  }

  metrics(): Record<string, unknown> {
    // Utilisation since the previous call (a scraper sees its own interval).
    const now = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(now, this.lastElu);
    this.lastElu = now;
    return {
      event_loop_utilization: Math.round(elu.utilization * 1000) / 1000,
      consensus: { ...this.driver.stats },
      node_to_node: { ...this.channels.stats },
      forwarding: { ...this.forwarder.stats },
      last_seqno: this.store.seqno,
      commit_seqno: this.pipeline.commitTxId.seqno,
      ...(this.disasterRecovery !== null ? { recovery: this.disasterRecovery.progress } : {}),
    };
  }

  /** Committed entries the consensus log no longer holds in memory, from the ledger files. */
  private readPayloads(from: Seqno, count: number): Uint8Array[] {
    this.pipeline.flushLedger();
    const out: Uint8Array[] = [];
    const readOnlyDirectories = this.config.ledger.readOnlyDirectories;
    for (const item of readLedger(this.config.ledger.directory, {
      fromSeqno: from,
      readOnlyDirectories,
    })) {
      if (item.kind !== "entry") continue;
      if (item.seqno !== from + out.length) break;
      out.push(item.entry);
      if (out.length === count) break;
    }
    return out;
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

  get hostData(): string {
    return this.quote.host_data;
  }

  readonly startupState = (): NodeStartupState => this.state;

  rpcAddressOf(nodeId: NodeId): string | null {
    const tx = this.store.begin();
    const info = getById(tx, GOV_MAPS.nodeInfo, nodeId);
    tx.close();
    const first = info === undefined ? undefined : Object.values(info.rpc_interfaces)[0];
    return first === undefined ? null : (first.published_address ?? first.bind_address);
  }

  /** Creates the service (command.type Start): identities, genesis, signature. */
  static async start(configured: NodeConfig, deps: NodeHostDeps): Promise<NodeHost> {
    const config = await resolvePorts(configured);
    if (config.command.type !== "Start") throw new Error("NodeHost.start needs command Start");
    const now = deps.now?.() ?? new Date();
    await probeInterfaces(config);
    checkEmptyLedger(config.ledger.directory);
    mkdirSync(config.snapshots.directory, { recursive: true });
    const start = config.command.start;
    const identity = await newServiceIdentity(config, now, {
      validityDays: start.initialServiceCertificateValidityDays,
      subject: start.serviceSubjectName,
    });
    const secrets = new LedgerSecrets(randomBytes(32));
    const host = new NodeHost(config, { identity, secrets, startAsLeader: true }, deps);
    host.driver.process(); // the Ready that makes this node the primary of view 2
    host.writeGenesis();
    writeFileSync(config.command.serviceCertificateFile, identity.serviceCertPem);
    writeFileSync(config.outputFiles.nodeCertificateFile, identity.signing.certPem);
    return host;
  }

  /**
   * Joins the service at command.join.target_rpc_address (command.type Join): retries every
   * retry_timeout while the target is unreachable or this node is Pending.
   */
  static async join(
    configured: NodeConfig,
    deps: NodeHostDeps & { signal?: AbortSignal },
  ): Promise<NodeHost> {
    const config = await resolvePorts(configured);
    if (config.command.type !== "Join") throw new Error("NodeHost.join needs command Join");
    const now = deps.now?.() ?? new Date();
    await probeInterfaces(config);
    checkEmptyLedger(config.ledger.directory);
    mkdirSync(config.snapshots.directory, { recursive: true });
    const serviceCertPem = readFileSync(config.command.serviceCertificateFile, "utf8");
    const keys = generateEcKeyPair(curveOf(config));
    const selfSignedPem = await createSelfSignedCertificate({
      keys,
      subject: config.nodeCertificate.subjectName ?? "CN=CCF Node",
      validityDays: config.nodeCertificate.initialValidityDays,
      now,
    });
    const publicKeyDer = spkiDer(keys.privateKey);
    const quote = makeVirtualQuote(publicKeyDer, virtualHostData());
    const encryptionKey = generateEncryptionKey();
    // Join from the newest usable committed snapshot, if any (ccf-api.md 2.3).
    const snapshotDirs = snapshotDirsOf(config);
    if (config.command.join.fetchRecentSnapshot) {
      await fetchRecentSnapshotForJoin({
        targetAddress: formatAddress(config.command.join.targetRpcAddress),
        serviceCertPem,
        nodeCertPem: selfSignedPem,
        nodeKeyPem: ecPrivateKeyPem(keys.privateKey),
        dirs: snapshotDirs,
        destinationDir: config.snapshots.directory,
        maxAttempts: config.command.join.fetchSnapshotMaxAttempts,
        retryIntervalMs: config.command.join.fetchSnapshotRetryIntervalMs,
        log: (line) => deps.log(`[snapshots] ${line}`),
      });
    }
    const candidates = usableCommittedSnapshots(snapshotDirs, serviceCertPem, deps.log);
    const newest = candidates[0];
    if (newest !== undefined) {
      deps.log(`joining from snapshot ${newest.path} (seqno ${newest.seqno})`);
    }
    const request: JoinRequest = {
      node_info_network: nodeInfoNetwork(config) as JoinRequest["node_info_network"],
      quote_info: quote as JoinRequest["quote_info"],
      public_encryption_key: encryptionKey.publicKeyPem,
      startup_seqno: newest?.seqno ?? 0,
      ...(config.nodeData !== undefined ? { node_data: config.nodeData } : {}),
    };
    const target = config.command.join.targetRpcAddress;
    deps.log(`joining the service at ${formatAddress(target)}`);
    const nodeId = nodeIdFromPublicKey(keys.publicKey);
    // Until it is Trusted the joiner answers /node/state (and 503 elsewhere) with its
    // self-signed certificate, so operators can see it waiting.
    let joinState: NodeStartupState = "Initialized";
    const waiting = await servePending(config, selfSignedPem, keys.privateKey, () => ({
      node_id: nodeId,
      state: joinState,
    }));
    let joined;
    try {
      joined = await joinNetwork({
        targetAddress: formatAddress(target),
        serviceCertPem,
        nodeCertPem: selfSignedPem,
        nodeKeyPem: ecPrivateKeyPem(keys.privateKey),
        request,
        retryTimeoutMs: config.command.join.retryTimeoutMs,
        log: (line) => deps.log(`[join] ${line}`),
        ...(deps.signal !== undefined ? { signal: deps.signal } : {}),
        onPending: (id) => {
          if (joinState !== "Pending") {
            deps.log(`node ${id} is Pending: waiting for transition_node_to_trusted`);
          }
          joinState = "Pending";
        },
      });
    } finally {
      await Promise.all(waiting.map((server) => server.close()));
    }
    if (joined.nodeId !== nodeId) throw new Error(`the service named this node ${joined.nodeId}`);
    const info = joined.networkInfo;
    const certPem = info.endorsed_certificate;
    if (certPem === undefined) throw new Error("the join answer holds no endorsed certificate");
    const identity: NodeIdentity = {
      signing: { nodeId, privateKey: keys.privateKey, certPem },
      serviceCertPem: info.identity.cert,
      servicePrivateKey: createPrivateKey(info.identity.priv_key),
      publicKeyDer,
      ...encryptionKeys(encryptionKey),
      quote,
    };
    const secrets = secretsOf(info);
    // The newest snapshot that decrypts with the service's ledger secrets (older ones are
    // fine: they only mean a longer replay).
    let snapshot: DecodedSnapshot | undefined;
    let found: (typeof candidates)[number] | undefined;
    for (const candidate of candidates) {
      try {
        snapshot = decodeSnapshot(candidate.bytes, secrets);
        found = candidate;
        break;
      } catch (e) {
        deps.log(`snapshots: ignoring ${candidate.path}: ${String(e)}`);
      }
    }
    if (candidates.length > 0 && found === undefined) {
      deps.log("no snapshot is usable: catching up from seqno 1");
    }
    const host = new NodeHost(
      config,
      {
        identity,
        secrets,
        startAsLeader: false,
        snapshot,
        snapshotEvidenceSeqno: found?.evidenceSeqno,
      },
      deps,
    );
    writeFileSync(config.outputFiles.nodeCertificateFile, certPem);
    deps.log(`node ${nodeId} is Trusted; catching up from the primary`);
    return host;
  }

  /**
   * Recovers a service whose nodes are all gone (command.type Recover, ccf-api.md 8): replays
   * the public domain of the previous service's ledger (in ledger.directory, after the newest
   * committed snapshot whose receipt verifies against the previous identity), creates a new
   * service identity, and starts the new service as Recovering (DisasterRecovery). Members then
   * open it and submit their shares.
   */
  static async recover(configured: NodeConfig, deps: NodeHostDeps): Promise<NodeHost> {
    const config = await resolvePorts(configured);
    if (config.command.type !== "Recover") throw new Error("NodeHost.recover needs Recover");
    const now = deps.now?.() ?? new Date();
    await probeInterfaces(config);
    mkdirSync(config.snapshots.directory, { recursive: true });
    const recover = config.command.recover;
    const previousServiceCertPem = readFileSync(recover.previousServiceIdentityFile, "utf8");
    const snapshotDirs = snapshotDirsOf(config);
    const found = usableCommittedSnapshots(snapshotDirs, previousServiceCertPem, deps.log)[0];
    let snapshot: RecoverySnapshot | undefined;
    if (found !== undefined) {
      snapshot = {
        seqno: found.seqno,
        evidenceSeqno: found.evidenceSeqno,
        entryBytes: splitSnapshotFile(found.bytes)!.entry,
      };
      deps.log(`recovering from snapshot ${found.path} (seqno ${found.seqno}) and the ledger`);
    }
    const identity = await newServiceIdentity(config, now, {
      validityDays: recover.initialServiceCertificateValidityDays,
    });
    const secrets = new LedgerSecrets(randomBytes(32));
    deps.log(`reading the public ledger in ${config.ledger.directory}`);
    const started = performance.now();
    const replay = await replayPublic({
      workers: REPLAY_WORKERS,
      ledgerDir: config.ledger.directory,
      readOnlyDirectories: config.ledger.readOnlyDirectories,
      previousServiceCertPem,
      secrets,
      snapshot,
      log: (line) => deps.log(`[recovery] ${line}`),
      onProgress: (seqno, read, total) =>
        deps.log(`public replay: seqno ${seqno}, ${Math.round((100 * read) / total)}%`),
    });
    const seconds = (performance.now() - started) / 1000;
    const count = replay.lastSignedSeqno - replay.base.seqno;
    deps.log(
      `public replay: ${count} transactions to seqno ${replay.lastSignedSeqno} ` +
        `(view ${replay.lastView}) in ${seconds.toFixed(2)} s ` +
        `(${Math.round(count / Math.max(seconds, 1e-6))} tx/s)`,
    );
    const host = new NodeHost(
      config,
      {
        identity,
        secrets,
        startAsLeader: true,
        recovered: { replay, snapshot, previousServiceCertPem },
      },
      deps,
    );
    // The start transaction goes first: the signature the new primary emits once it handles
    // its leadership (driver.process) then covers it, and no signature of the new service
    // precedes the transaction recording its identity (replays check signers against it).
    host.writeRecoveryStart();
    host.driver.process();
    writeFileSync(config.command.serviceCertificateFile, identity.serviceCertPem);
    writeFileSync(config.outputFiles.nodeCertificateFile, identity.signing.certPem);
    return host;
  }

  /** The recovered service's first transaction (DisasterRecovery.writeStart). */
  private writeRecoveryStart(): void {
    const recovery = this.disasterRecovery!;
    const seqno = (this.store.seqno + 1) as Seqno;
    const createTxId = formatTxId({ view: this.view, seqno });
    const outcome = this.pipeline.execute((tx) =>
      recovery.writeStart(
        tx,
        { id: this.nodeId, info: this.nodeInfo(), certPem: this.nodeCertPem },
        createTxId,
      ),
    );
    if (outcome.kind !== "committed" || outcome.txId.seqno !== seqno) {
      throw new Error(`the recovery's first transaction did not commit as ${createTxId}`);
    }
    this.deps.log(`service recovering as ${createTxId}: waiting for the members`);
  }

  /** The genesis transaction (2.1) and a signature over it. */
  private writeGenesis(): void {
    if (this.config.command.type !== "Start") throw new Error("only Start writes genesis");
    const start = this.config.command.start;
    const constitution = start.constitutionFiles.map((f) => readFileSync(f, "utf8")).join("\n");
    const members = start.members.map((m) => ({
      certPem: readFileSync(m.certificateFile, "utf8"),
      ...(m.encryptionPublicKeyFile !== undefined
        ? { encryptionPublicKeyPem: readFileSync(m.encryptionPublicKeyFile, "utf8") }
        : {}),
      ...(m.data !== undefined ? { memberData: m.data } : {}),
      recoveryRole: m.recoveryRole,
    }));
    const sc = start.serviceConfiguration;
    const outcome = this.pipeline.execute((tx) =>
      writeGenesis(tx, {
        members,
        constitution,
        serviceCertPem: this.serviceCertPem,
        serviceData: this.config.serviceData ?? null,
        configuration: {
          recovery_threshold: sc.recoveryThreshold,
          maximum_node_certificate_validity_days: sc.maximumNodeCertificateValidityDays,
          maximum_service_certificate_validity_days: sc.maximumServiceCertificateValidityDays,
          reconfiguration_type: sc.reconfigurationType,
          recent_cose_proposals_window_size: sc.recentCoseProposalsWindowSize,
        },
        node: {
          nodeId: this.nodeId,
          info: this.nodeInfo(),
          endorsedCertificatePem: this.nodeCertPem,
        },
        createTxId: formatTxId({ view: START_VIEW, seqno: 1 as Seqno }),
        virtualMeasurement: this.quote.measurement,
        virtualHostData: this.quote.host_data,
      }),
    );
    if (outcome.kind !== "committed" || outcome.txId.seqno !== 1) {
      throw new Error(`genesis did not commit as 2.1 (${outcome.kind})`);
    }
    this.pipeline.emitSignature();
    this.driver.process();
  }

  private nodeInfo(): NodeInfo {
    const network = nodeInfoNetwork(this.config);
    return {
      node_to_node_interface: network.node_to_node_interface,
      rpc_interfaces: network.rpc_interfaces,
      quote_info: this.identity.quote as NodeInfo["quote_info"],
      encryption_pub_key: this.identity.encryptionPublicKeyPem,
      status: "Trusted",
      public_key: derToPem(this.identity.publicKeyDer, "PUBLIC KEY"),
      node_data: this.config.nodeData ?? null,
    };
  }

  /** Runs a request through the router on this node, answering writes on a backup by
   * forwarding them to the primary unless the request was itself forwarded. */
  private async handleRequest(
    request: RpcRequest,
    next: (request: RpcRequest) => Promise<RpcResponse>,
    forwarded: boolean,
  ): Promise<RpcResponse> {
    let response = await next(request);
    if (response.headers?.[FORWARD_HEADER] !== undefined) {
      const primary = this.raft.leader;
      if (forwarded || primary === null || primary === this.nodeId) {
        return {
          status: 503,
          headers: { [TXID_HEADER]: formatTxId(this.pipeline.lastTxId) },
          body: errorBody(HttpErrorCode.PrimaryNotFound, "No primary is known to this node."),
        };
      }
      response = await this.forwarder.forward(primary, request);
    }
    if (response.headers?.[TXID_HEADER] !== undefined) return response;
    const txId: TxId = this.pipeline.lastTxId;
    return { ...response, headers: { ...response.headers, [TXID_HEADER]: formatTxId(txId) } };
  }

  private dispatchLocally(request: RpcRequest): Promise<RpcResponse> {
    const log = (message: string, error?: unknown) =>
      this.deps.log(`[forwarded] ${message} ${String(error ?? "")}`);
    return this.handleRequest(request, (r) => dispatchRequest(r, this.router, log), true);
  }

  /** Starts serving: the node-to-node channel, every rpc interface, and the tick. */
  async serve(): Promise<void> {
    const n2n = this.config.network.nodeToNodeInterface.bindAddress;
    const bound = await this.channels.listen(n2n.host, n2n.port);
    this.deps.log(`node-to-node interface listening on ${bound.host}:${bound.port}`);
    const keyPem = ecPrivateKeyPem(this.identity.signing.privateKey);
    for (const [name, rpc] of Object.entries(this.config.network.rpcInterfaces)) {
      const server = await createRpcServer({
        host: rpc.bindAddress.host,
        port: rpc.bindAddress.port,
        certPem: this.nodeCertPem,
        keyPem,
        caPem: this.serviceCertPem,
        maxBodyBytes: rpc.http.maxBodySizeBytes,
        router: this.router,
        onRequest: (request, next) => this.handleRequest(request, next, false),
        log: (message, error) => this.deps.log(`[${name}] ${message} ${String(error ?? "")}`),
      });
      this.servers.push(server);
      this.deps.log(`rpc interface ${name} listening on ${server.host}:${server.port}`);
    }
    this.tickTimer = setInterval(() => this.driver.tick(), TICK_INTERVAL_MS);
    const recovering = this.disasterRecovery !== null && !this.disasterRecovery.done;
    this.state = recovering ? "PartOfPublicNetwork" : "PartOfNetwork";
  }

  /** The addresses actually bound (port 0 in the config picks a free port). */
  get boundInterfaces(): { name: string; host: string; port: number }[] {
    const names = Object.keys(this.config.network.rpcInterfaces);
    return this.servers.map((s, i) => ({ name: names[i]!, host: s.host, port: s.port }));
  }

  async stop(): Promise<void> {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    this.forwarder.close();
    await Promise.all(this.servers.map((s) => s.close()));
    this.servers.length = 0;
    await this.channels.close();
    await this.snapshotter.close();
    await this.pipeline.close();
    this.state = "Stopped";
  }
}

function randomIntBelow(bound: number): number {
  return Math.floor(Math.random() * bound);
}
