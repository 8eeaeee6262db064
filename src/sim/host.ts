/**
 * A simulated node host. It runs the node's own ConsensusDriver (src/node/replication) over a
 * RaftNode, and is the simulator's implementation of the driver's IO (driver-io.ts):
 * - the local replica: an in-memory host log with a Merkle tree over it, and a "disk" holding
 *   what the last sync made durable;
 * - the transport: the simulated network, which carries the bytes the driver encodes;
 * - the hard state store (the disk), the peer directory and the turn scheduler.
 * The clock is the simulation's (HostEnv.clock).
 *
 * Owns: the host log, its Merkle tree and leaf hashes, the disk, the driver's deferred work,
 * and the leader-side writes (client transactions, signatures, configurations), which go
 * through the driver's ReplicationOutbox exactly as the pipeline's do.
 * Invariants:
 * - log[i] has seqno i + 1; leaves[i] = sha256(log[i].payload); tree has log.length + 1 leaves:
 *   CCF's leaf 0 (32 zero bytes, history.ts newHistoryTree), then seqno s as leaf s.
 * - After every event, log.length === raft.lastSeqno and commit === raft.commitSeqno.
 * - The disk holds a prefix-consistent copy of the log as of the last sync: disk entries equal
 *   log entries below `dirtyFrom`, and disk.commit <= disk.entries.length.
 * - The payload of every signature entry is the Merkle root over leaf 0 and all earlier entries.
 * - Once a sync tears (the node crashes inside it), every later duty of that Ready and the ones
 *   after it is a no-op; when the driver returns, the host tears the node down, losing
 *   everything not on the disk.
 */
import { assert } from "../base/assert.js";
import { concatBytes, equalBytes, putU32LE } from "../base/bytes.js";
import type { TxId } from "../base/ids.js";
import type { Prng } from "../base/prng.js";
import { RaftNode } from "../consensus/raft.js";
import type {
  HardState,
  NodeId,
  RaftEntry,
  RaftTimings,
  Role,
  Seqno,
  View,
} from "../consensus/types.js";
import { sha256Js } from "../crypto/sha256-js.js";
import { newHistoryTree } from "../ledger/history.js";
import { MerkleTree } from "../ledger/merkle/merkle-tree.js";
import {
  ConsensusDriver,
  type ConsensusDriverStats,
} from "../node/replication/consensus-driver.js";
import type {
  HardStateStore,
  LocalReplica,
  MonotonicClock,
  PeerDirectory,
  PeerTransport,
  TurnScheduler,
} from "../node/replication/driver-io.js";
import { ReplicationOutbox } from "../node/replication/outbox.js";
import type { InvariantChecker } from "./invariants.js";
import { mutateFrame, type SimMutation } from "./mutations.js";
import type { SimNetwork } from "./network.js";

export const TAG_WRITE = 1;
export const TAG_SIGNATURE = 2;
export const TAG_CONFIG = 3;

/** A leader signs after this many client writes, or this long after unsigned writes. */
const SIGNATURE_EVERY_WRITES = 4;
const SIGNATURE_INTERVAL_MS = 50;

/**
 * What a node keeps across crashes. Besides the entries it keeps their leaf hashes and the
 * Merkle peaks at its commit (a node's ledger and its checkpointed tree), so a restart costs no
 * hashing: the tree continues from those peaks and only the uncommitted tail's leaves are
 * appended to it and its signatures checked. The committed prefix was checked when it was first
 * appended, is compared leaf by leaf against the global record on restart, and is re-hashed
 * from the payloads by the checker's scans.
 * Invariant: leaves[i] = sha256(entries[i].payload); commitPeaks are the peaks of the tree of
 * leaf 0 and seqnos 1..commit.
 */
export interface Disk {
  entries: RaftEntry[];
  leaves: Uint8Array[];
  hardState: HardState;
  commit: number;
  commitPeaks: Uint8Array[];
}

/** A disk holding `entries`, committed up to `commit`. */
export function newDisk(entries: readonly RaftEntry[], hardState: HardState, commit: number): Disk {
  const leaves = entries.map((e) => sha256Js(e.payload));
  const tree = newHistoryTree();
  for (const leaf of leaves.slice(0, commit)) tree.append(leaf);
  return { entries: [...entries], leaves, hardState, commit, commitPeaks: tree.peaks(commit + 1) };
}

/** What a host needs from the simulation around it. */
export interface HostEnv {
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  readonly timings: RaftTimings;
  readonly clock: MonotonicClock;
  /** Probability that a sync is torn: the node crashes before it, losing the Ready. */
  readonly tornSyncProbability: number;
  readonly rng: Prng;
  /** Deliberately broken consensus (mutations.ts): rewrites what the nodes send. */
  readonly mutation?: SimMutation | undefined;
  log(line: string): void;
}

/**
 * An entry with its fields in the order the node-to-node decoder creates them (messages.ts), so
 * that every entry a host log holds has one object shape and the code reading them stays
 * monomorphic.
 */
export function makeEntry(e: RaftEntry): RaftEntry {
  return {
    seqno: e.seqno,
    view: e.view,
    isSignature: e.isSignature,
    configuration: e.configuration,
    payload: e.payload,
  };
}

/** The address a simulated node publishes (the network routes by id; the codec carries it). */
function simAddress(id: string): string {
  return `sim:${id}`;
}

export class SimHost
  implements LocalReplica, PeerTransport, HardStateStore, PeerDirectory, TurnScheduler
{
  private raft: RaftNode | null = null;
  private driver: ConsensusDriver | null = null;
  private outbox: ReplicationOutbox | null = null;
  log: RaftEntry[] = [];
  leaves: Uint8Array[] = [];
  private tree: MerkleTree = newHistoryTree();
  commit = 0;
  // Invariant: disk.entries equals log below dirtyFrom (a seqno).
  private dirtyFrom = 1;
  /** The view new leader-side writes are made in (set by the driver, as the pipeline's). */
  private view = 0 as View;
  /** Unsigned entries the leader host wrote since its last signature. */
  private unsigned = 0;
  private lastSignatureMs = 0;
  /** Set while the node is crashing inside a Ready (torn sync): its duties do nothing. */
  private crashing = false;
  /** Set when the node crashed inside a Ready (torn sync); the simulation counts and resets it. */
  tornCrash = false;
  private deferred: (() => void)[] = [];

  constructor(
    readonly id: NodeId,
    readonly disk: Disk,
    private readonly env: HostEnv,
  ) {}

  get node(): RaftNode | null {
    return this.raft;
  }

  get alive(): boolean {
    return this.raft !== null;
  }

  /** The counters of the node's consensus driver since its last start (null while down). */
  get driverStats(): Readonly<ConsensusDriverStats> | null {
    return this.driver?.stats ?? null;
  }

  /** Starts (or restarts) the node from the disk. */
  start(nowMs: number, startAsLeader: boolean): void {
    this.restoreLog();
    // A restart re-checks the durable committed prefix against what was committed globally.
    this.env.checker.onCommit(this, this.disk.commit, null);
    this.commit = this.disk.commit;
    this.view = this.disk.hardState.view;
    this.unsigned = 0;
    this.lastSignatureMs = nowMs;
    this.raft = new RaftNode({
      id: this.id,
      timings: this.env.timings,
      rng: this.env.rng.fork(),
      nowMs,
      base: { seqno: 0 as Seqno, view: 0 as View, configuration: [] },
      entries: this.disk.entries,
      hardState: this.disk.hardState,
      commitSeqno: this.disk.commit as Seqno,
      startAsLeader,
      reader: { payloads: (from, count) => this.payloads(from, count) },
    });
    this.outbox = new ReplicationOutbox();
    this.driver = new ConsensusDriver({
      raft: this.raft,
      replica: this,
      outbox: this.outbox,
      transport: this,
      hardState: this,
      peers: this,
      scheduler: this,
      clock: this.env.clock,
      selfAddress: simAddress(this.id),
      log: (line) => this.env.log(`${this.id}: ${line}`),
      onForward: (from) => {
        this.env.checker.fail("SimMessages", `${this.id} got a forwarded request from ${from}`);
      },
      onRoleChange: (role, view) => this.onRoleChange(role, view),
    });
    this.driver.process();
    this.settle();
  }

  /**
   * The host log from the disk: every entry passes the append checks; the tree continues from
   * the peaks at the durable commit, and only the tail after it is re-hashed into the tree and
   * has its signatures checked against it.
   */
  private restoreLog(): void {
    const { entries, leaves, commit } = this.disk;
    this.log = [];
    this.leaves = [];
    this.commit = 0;
    this.tree = MerkleTree.fromPeaks(commit + 1, this.disk.commitPeaks);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      this.env.checker.onAppend(this, e);
      if (i >= commit) {
        if (e.isSignature) this.checkSignature(e);
        this.tree.append(leaves[i]!);
      }
      this.log.push(e);
      this.leaves.push(leaves[i]!);
    }
    this.dirtyFrom = this.log.length + 1;
  }

  /** Stopped for good (after a crash): drops the disk, which nothing will read again. */
  decommission(): void {
    assert(this.raft === null, "decommission a crashed node");
    this.disk.entries = [];
    this.disk.leaves = [];
  }

  /** Loses everything not on the disk. */
  crash(): void {
    this.raft = null;
    this.driver = null;
    this.outbox = null;
    this.deferred = [];
    this.crashing = false;
    this.log = [];
    this.leaves = [];
    this.tree = newHistoryTree();
  }

  // ---------------------------------------------------------------------------------------
  // Events from the simulation

  /** A frame arrives from `from`; the driver decodes it and processes it this turn. */
  deliver(from: NodeId, payload: Uint8Array): void {
    this.driver?.receive(from, payload);
    this.settle();
  }

  /** The node's timer: the driver ticks the replica (timed signatures) and Raft. */
  timer(): void {
    this.driver?.tick();
    this.settle();
  }

  /**
   * The end of the event-loop turn: runs the driver's deferred work; tears the node down if it
   * crashed inside a Ready; otherwise checks that the host and its Raft core agree.
   */
  private settle(): void {
    while (this.deferred.length > 0 && !this.crashing) {
      const tasks = this.deferred;
      this.deferred = [];
      for (const task of tasks) if (!this.crashing) task();
    }
    if (this.crashing) {
      this.tornCrash = true;
      this.crash();
      return;
    }
    const node = this.raft;
    if (node === null) return;
    if (node.lastSeqno !== this.log.length || node.commitSeqno !== this.commit) {
      this.env.checker.fail(
        "HostCoreAgreement",
        `${this.id}: core last ${node.lastSeqno} commit ${node.commitSeqno}, ` +
          `host last ${this.log.length} commit ${this.commit}`,
      );
    }
  }

  private onRoleChange(role: Role, view: View): void {
    const node = this.raft;
    if (this.crashing || node === null) return;
    this.env.log(`${this.id} is ${role} in view ${view}`);
    this.env.checker.onRoleChange(this, role, view, node.membership === "Retired");
  }

  // ---------------------------------------------------------------------------------------
  // LocalReplica: the driver's Ready duties

  get lastSeqno(): Seqno {
    return this.log.length as Seqno;
  }

  rollbackTo(seqno: Seqno): void {
    if (this.crashing) return;
    this.env.checker.onRollback(this, seqno);
    if (seqno >= this.log.length) return;
    this.log.length = seqno;
    this.leaves.length = seqno;
    this.tree.retract(seqno + 1);
    this.dirtyFrom = Math.min(this.dirtyFrom, seqno + 1);
  }

  appendReplicated(entries: readonly RaftEntry[]): void {
    if (this.crashing) return;
    for (const e of entries) {
      this.appendEntry(e);
      this.view = e.view;
    }
  }

  /** Writes the log to the disk; or, with tornSyncProbability, crashes before it. */
  syncLedger(): void {
    if (this.crashing) return;
    if (this.env.tornSyncProbability > 0 && this.env.rng.chance(this.env.tornSyncProbability)) {
      this.env.log(`${this.id} crashes inside a sync (torn)`);
      this.crashing = true;
      return;
    }
    const disk = this.disk;
    disk.entries.length = Math.min(disk.entries.length, this.dirtyFrom - 1);
    disk.leaves.length = disk.entries.length;
    for (let s = disk.entries.length + 1; s <= this.log.length; s++) {
      disk.entries.push(this.log[s - 1]!);
      disk.leaves.push(this.leaves[s - 1]!);
    }
    this.dirtyFrom = this.log.length + 1;
  }

  commitTo(txId: TxId): void {
    const node = this.raft;
    if (this.crashing || node === null) return;
    this.env.checker.onCommit(this, txId.seqno, node.isLeader ? node.view : null);
    this.commit = txId.seqno;
    if (this.commit > this.disk.entries.length) {
      this.env.checker.fail("DurableCommit", `${this.id}: commit ${this.commit} not synced`);
    }
    this.disk.commit = this.commit;
    this.disk.commitPeaks = this.tree.peaks(this.commit + 1);
  }

  setView(view: View): void {
    this.view = view;
  }

  emitSignature(): void {
    if (this.crashing) return;
    this.writeSignature();
  }

  /** A leader signs once SIGNATURE_INTERVAL_MS passed with unsigned writes. */
  tick(nowMs: number): void {
    if (this.crashing || this.outbox?.canWrite() !== true || this.unsigned === 0) return;
    if (nowMs - this.lastSignatureMs < SIGNATURE_INTERVAL_MS) return;
    this.writeSignature();
  }

  // ---------------------------------------------------------------------------------------
  // HardStateStore, PeerTransport, PeerDirectory, TurnScheduler

  /** The hard state reaches the disk with the sync before it (a torn sync loses both). */
  save(state: HardState): void {
    if (this.crashing) return;
    this.disk.hardState = state;
  }

  send(peerId: string, payload: Uint8Array): boolean {
    if (this.crashing) return false;
    const mutation = this.env.mutation;
    const bytes = mutation === undefined ? payload : mutateFrame(mutation, payload);
    const frame = { from: this.id, to: peerId as NodeId, payload: bytes };
    this.env.network.send(frame, this.env.clock.monotonicMs());
    return true;
  }

  /** The simulated network routes by node id: addresses need no connection. */
  setPeer(): void {}

  addressOf(peer: NodeId): string {
    return simAddress(peer);
  }

  defer(task: () => void): void {
    this.deferred.push(task);
  }

  // ---------------------------------------------------------------------------------------
  // The host log

  private appendEntry(e: RaftEntry): void {
    this.env.checker.onAppend(this, e);
    if (e.isSignature) this.checkSignature(e);
    // sha256-js: payloads are small, where it beats node:crypto's per-call cost.
    const leaf = sha256Js(e.payload);
    this.log.push(e);
    this.leaves.push(leaf);
    this.tree.append(leaf);
    this.dirtyFrom = Math.min(this.dirtyFrom, e.seqno);
  }

  /** "Merkle roots agree at every signature": the signed root is our root over earlier ones. */
  private checkSignature(e: RaftEntry): void {
    const root = e.payload.subarray(1);
    if (e.payload[0] !== TAG_SIGNATURE || !equalBytes(root, this.tree.root())) {
      this.env.checker.fail("MerkleRootsAgree", `${this.id}: root at signature ${e.seqno} differs`);
    }
  }

  /** Raft reads compacted payloads back from the host log (as a node reads its ledger). */
  private payloads(from: Seqno, count: number): Uint8Array[] {
    return this.log.slice(from - 1, from - 1 + count).map((e) => e.payload);
  }

  // ---------------------------------------------------------------------------------------
  // Leader-side writes, through the outbox

  /** Whether the driver lets this host write (its Raft node leads). */
  get canWrite(): boolean {
    return this.outbox?.canWrite() === true;
  }

  private leaderWrite(entry: Omit<RaftEntry, "seqno" | "view">): RaftEntry {
    const e = makeEntry({ ...entry, seqno: (this.log.length + 1) as Seqno, view: this.view });
    this.appendEntry(e);
    this.unsigned = entry.isSignature ? 0 : this.unsigned + 1;
    if (entry.isSignature) this.lastSignatureMs = this.env.clock.monotonicMs();
    // The outbox asserts that Raft still considers this node the leader.
    this.outbox?.replicate([e]);
    return e;
  }

  private writeSignature(): RaftEntry {
    const payload = concatBytes([Uint8Array.of(TAG_SIGNATURE), this.tree.root()]);
    return this.leaderWrite({ isSignature: true, payload });
  }

  /**
   * A client write tagged with `requestId` (and a signature after every few); returns its
   * entry. Only while `canWrite`.
   */
  writeClient(requestId: number): RaftEntry {
    const payload = new Uint8Array(5 + 4 + this.env.rng.intBelow(24));
    payload[0] = TAG_WRITE;
    putU32LE(payload, 1, requestId);
    payload.set(this.env.rng.bytes(payload.length - 5), 5);
    const e = this.leaderWrite({ isSignature: false, payload });
    if (this.unsigned >= SIGNATURE_EVERY_WRITES && this.canWrite) this.writeSignature();
    this.settle();
    return e;
  }

  /** Proposes `nodes` as the next configuration. Only while `canWrite`. */
  writeConfiguration(nodes: readonly NodeId[]): RaftEntry {
    const configuration = [...nodes].sort();
    this.env.checker.onPropose(configuration);
    const text = new TextEncoder().encode(configuration.join(","));
    const payload = concatBytes([Uint8Array.of(TAG_CONFIG), text]);
    const e = this.leaderWrite({ isSignature: false, payload, configuration });
    this.settle();
    return e;
  }
}
