/**
 * A simulated node host: a RaftNode, its in-memory host log with a Merkle tree over it, and a
 * "disk" holding what the last sync made durable. It carries out every Ready exactly as the
 * contract on `Ready` says: rollback, append, sync, send, commit, advance.
 *
 * Owns: the host log, its Merkle tree and leaf hashes, the disk, and the leader-side writes
 * (client transactions, signatures, configurations).
 * Invariants:
 * - log[i] has seqno i + 1; leaves[i] = sha256(log[i].payload); tree has log.length leaves.
 * - After every Ready is applied, log.length === node.lastSeqno and commit === node.commitSeqno.
 * - The disk holds a prefix-consistent copy of the log as of the last sync: disk entries equal
 *   log entries below `dirtyFrom`, and disk.commit <= disk.entries.length.
 * - The payload of every signature entry is the Merkle root over all earlier entries.
 */
import { concatBytes, equalBytes, putU32LE } from "../base/bytes.js";
import type { Prng } from "../base/prng.js";
import { RaftNode } from "../consensus/raft.js";
import type {
  HardState,
  NodeId,
  RaftEntry,
  RaftTimings,
  Ready,
  Seqno,
  View,
} from "../consensus/types.js";
import { sha256 } from "../crypto/hash.js";
import { MerkleTree } from "../ledger/merkle/merkle-tree.js";
import type { InvariantChecker } from "./invariants.js";
import type { SimNetwork } from "./network.js";

export const TAG_WRITE = 1;
export const TAG_SIGNATURE = 2;
export const TAG_CONFIG = 3;

export interface Disk {
  entries: RaftEntry[];
  hardState: HardState;
  commit: number;
}

/** What a host needs from the simulation around it. */
export interface HostEnv {
  readonly network: SimNetwork;
  readonly checker: InvariantChecker;
  readonly timings: RaftTimings;
  /** Probability that a sync is torn: the node crashes before it, losing the Ready. */
  readonly tornSyncProbability: number;
  readonly rng: Prng;
  log(line: string): void;
}

export class SimHost {
  node: RaftNode | null = null;
  log: RaftEntry[] = [];
  leaves: Uint8Array[] = [];
  private tree = new MerkleTree();
  commit = 0;
  // Invariant: disk.entries equals log below dirtyFrom (a seqno).
  private dirtyFrom = 1;
  /** Unsigned entries the leader host wrote since its last signature. */
  unsigned = 0;
  lastSignatureMs = 0;
  /** Set when the node crashed inside a Ready (torn sync); the simulation counts it. */
  tornCrash = false;

  constructor(
    readonly id: NodeId,
    readonly disk: Disk,
    private readonly env: HostEnv,
  ) {}

  get alive(): boolean {
    return this.node !== null;
  }

  /** Starts (or restarts) the node from the disk. */
  start(nowMs: number, startAsLeader: boolean): void {
    this.log = [];
    this.leaves = [];
    this.tree = new MerkleTree();
    this.commit = 0;
    for (const e of this.disk.entries) this.appendEntry(e);
    this.dirtyFrom = this.log.length + 1;
    // A restart re-checks the durable committed prefix against what was committed globally.
    this.env.checker.onCommit(this, this.disk.commit, null);
    this.commit = this.disk.commit;
    this.unsigned = 0;
    this.lastSignatureMs = nowMs;
    this.node = new RaftNode({
      id: this.id,
      timings: this.env.timings,
      rng: this.env.rng.fork(),
      nowMs,
      base: { seqno: 0 as Seqno, view: 0 as View, configuration: [] },
      entries: this.disk.entries,
      hardState: this.disk.hardState,
      commitSeqno: this.disk.commit as Seqno,
      startAsLeader,
    });
    this.processReady(nowMs);
  }

  /** Loses everything not on the disk. */
  crash(): void {
    this.node = null;
    this.log = [];
    this.leaves = [];
    this.tree = new MerkleTree();
  }

  /** Applies every pending Ready of the node, in contract order. */
  processReady(nowMs: number): void {
    let node = this.node;
    while (node !== null && node.hasReady()) {
      this.apply(node, node.ready(), nowMs);
      node = this.node;
    }
    if (node === null) return;
    if (node.lastSeqno !== this.log.length || node.commitSeqno !== this.commit) {
      this.env.checker.fail(
        "HostCoreAgreement",
        `${this.id}: core last ${node.lastSeqno} commit ${node.commitSeqno}, ` +
          `host last ${this.log.length} commit ${this.commit}`,
      );
    }
  }

  private apply(node: RaftNode, ready: Ready, nowMs: number): void {
    if (ready.rollbackTo !== null) this.rollback(ready.rollbackTo);
    for (const e of ready.entries) this.appendEntry(e);
    if (ready.mustSync) {
      if (this.env.tornSyncProbability > 0 && this.env.rng.chance(this.env.tornSyncProbability)) {
        this.env.log(`${this.id} crashes inside a sync (torn)`);
        this.tornCrash = true;
        this.crash();
        return;
      }
      this.sync(ready.hardState);
    }
    for (const m of ready.messages) this.env.network.send(m, nowMs);
    if (ready.commitSeqno !== null) {
      this.env.checker.onCommit(this, ready.commitSeqno, node.isLeader ? node.view : null);
      this.commit = ready.commitSeqno;
      if (this.commit > this.disk.entries.length) {
        this.env.checker.fail("DurableCommit", `${this.id}: commit ${this.commit} not synced`);
      }
      this.disk.commit = this.commit;
    }
    node.advance(ready, nowMs);
    const change = ready.roleChange;
    if (change !== null) {
      this.env.log(`${this.id} is ${change.role} in view ${change.view}`);
      this.env.checker.onRoleChange(this, change.role, change.view, node.membership === "Retired");
      if (change.role === "Leader" && node.isLeader) this.writeSignature(nowMs);
    }
  }

  private rollback(seqno: number): void {
    this.env.checker.onRollback(this, seqno);
    if (seqno >= this.log.length) return;
    this.log.length = seqno;
    this.leaves.length = seqno;
    this.tree.retract(seqno);
    this.dirtyFrom = Math.min(this.dirtyFrom, seqno + 1);
  }

  private appendEntry(e: RaftEntry): void {
    this.env.checker.onAppend(this, e);
    if (e.isSignature) this.checkSignature(e);
    const leaf = sha256(e.payload);
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

  private sync(hardState: HardState | null): void {
    const disk = this.disk;
    disk.entries.length = Math.min(disk.entries.length, this.dirtyFrom - 1);
    for (let s = disk.entries.length + 1; s <= this.log.length; s++) {
      disk.entries.push(this.log[s - 1]!);
    }
    this.dirtyFrom = this.log.length + 1;
    if (hardState !== null) disk.hardState = hardState;
  }

  // ---------------------------------------------------------------------------------------
  // Leader-side writes

  private leaderWrite(nowMs: number, entry: Omit<RaftEntry, "seqno" | "view">): RaftEntry {
    const node = this.node!;
    const e: RaftEntry = { ...entry, seqno: (this.log.length + 1) as Seqno, view: node.view };
    this.appendEntry(e);
    node.replicate([e], nowMs);
    this.unsigned = entry.isSignature ? 0 : this.unsigned + 1;
    if (entry.isSignature) this.lastSignatureMs = nowMs;
    this.processReady(nowMs);
    return e;
  }

  writeSignature(nowMs: number): RaftEntry {
    const payload = concatBytes([Uint8Array.of(TAG_SIGNATURE), this.tree.root()]);
    return this.leaderWrite(nowMs, { isSignature: true, payload });
  }

  /** A client write tagged with `requestId`; returns its (view, seqno). */
  writeClient(nowMs: number, requestId: number): RaftEntry {
    const payload = new Uint8Array(5 + 4 + this.env.rng.intBelow(24));
    payload[0] = TAG_WRITE;
    putU32LE(payload, 1, requestId);
    payload.set(this.env.rng.bytes(payload.length - 5), 5);
    return this.leaderWrite(nowMs, { isSignature: false, payload });
  }

  writeConfiguration(nowMs: number, nodes: readonly NodeId[]): RaftEntry {
    const configuration = [...nodes].sort();
    this.env.checker.onPropose(configuration);
    const text = new TextEncoder().encode(configuration.join(","));
    const payload = concatBytes([Uint8Array.of(TAG_CONFIG), text]);
    return this.leaderWrite(nowMs, { isSignature: false, payload, configuration });
  }
}
