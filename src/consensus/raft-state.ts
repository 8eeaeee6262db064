/**
 * The state of one Raft node (raft.ts) and the transitions every role shares: adopting a view,
 * becoming a follower, rolling back the unsigned suffix, committing, and tracking the peers of
 * the active configurations. The role-specific steps live in leader.ts, follower.ts and
 * elections.ts as functions over this state; RaftNode is the only way in from outside.
 *
 * The fields are public so that those modules can read and change them; nothing outside
 * src/consensus sees a RaftState. Pure and synchronous, like the rest of the consensus layer.
 */
import { assert } from "../base/assert.js";
import type { Rng } from "../base/io.js";
import { nodesOf } from "./quorum.js";
import type { Configuration, RaftLog } from "./raft-log.js";
import type {
  Envelope,
  MembershipState,
  NodeId,
  RaftMessage,
  RaftTimings,
  Role,
  Seqno,
  View,
} from "./types.js";

/** The leader's view of one peer. Invariant: 0 <= match < next. */
export interface Progress {
  match: number;
  /** The next seqno to send (advanced optimistically when sending). */
  next: number;
  /** When the peer last answered an AppendEntries (CheckQuorum). */
  lastAckMs: number;
}

export interface RaftStateOptions {
  readonly id: NodeId;
  readonly timings: RaftTimings;
  readonly rng: Rng;
  readonly log: RaftLog;
  readonly view: View;
  readonly votedFor: NodeId | null;
  readonly commit: Seqno;
  readonly nowMs: number;
}

export class RaftState {
  readonly id: NodeId;
  readonly timings: RaftTimings;
  readonly rng: Rng;
  readonly log: RaftLog;
  view: View;
  votedFor: NodeId | null;
  role: Role;
  leader: NodeId | null = null;
  // Invariant: commit is base or a signature seqno <= log.last.
  commit: Seqno;
  // Invariant: persisted <= hostLast <= log.last (after rollbacks are applied).
  persisted: Seqno;
  /** The last seqno the host holds (as of the last advance, plus leader appends). */
  hostLast: Seqno;
  /** The lowest seqno the host must roll back to before the next append, or null. */
  pendingRollback: Seqno | null = null;
  msgs: Envelope[] = [];
  hardStateDirty = false;
  roleDirty = true;
  commitDirty = false;
  electionDeadline = 0;
  lastHeartbeatMs = 0;
  lastQuorumCheckMs = 0;
  /** When this node last heard from a legitimate leader (pre-vote lease). */
  leaderContactMs = Number.NEGATIVE_INFINITY;
  readonly progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(o: RaftStateOptions) {
    this.id = o.id;
    this.timings = o.timings;
    this.rng = o.rng;
    this.log = o.log;
    this.view = o.view;
    this.votedFor = o.votedFor;
    this.commit = o.commit;
    assert(this.commit <= this.log.last, "commit within the log");
    this.persisted = this.log.last;
    this.hostLast = this.log.last;
    this.role = this.isInSomeConfiguration() ? "Follower" : "None";
    this.resetElectionTimer(o.nowMs);
  }

  /** Retired once the latest committed configuration no longer holds this node. */
  get membership(): MembershipState {
    const committed = this.log.activeConfigurations(this.commit)[0]!;
    const everIn = this.log.configurations().some((c) => c.nodes.includes(this.id));
    return everIn && !committed.nodes.includes(this.id) ? "Retired" : "Active";
  }

  /**
   * Whether the log holds a signature that is not yet durable. Only then must the host sync:
   * commit (which needs a durable majority) only ever lands on signatures, so entries after the
   * last signature may stay in the OS's buffers until the next one (one fdatasync per
   * signature, not per batch).
   */
  hasUndurableSignature(): boolean {
    return this.log.lastCommittable > this.persisted;
  }

  send(to: NodeId, message: RaftMessage): void {
    this.msgs.push({ from: this.id, to, message });
  }

  // ---------------------------------------------------------------------------------------
  // Configurations

  activeConfigs(): Configuration[] {
    return this.log.activeConfigurations(this.commit);
  }

  isInSomeConfiguration(): boolean {
    return this.activeConfigs().some((c) => c.nodes.includes(this.id));
  }

  /** Campaign only as an active member of the current configurations. */
  mayCampaign(): boolean {
    return (
      this.role !== "None" &&
      this.membership === "Active" &&
      this.activeConfigs().some((c) => c.nodes.includes(this.id))
    );
  }

  /**
   * Leader: track every node of the active configurations, and only them; a node added now
   * counts as heard from until `graceMs` from now (RaftTimings.newNodeGraceMs).
   */
  syncProgress(nowMs: number, graceMs = 0): void {
    const nodes = nodesOf(this.activeConfigs()).filter((id) => id !== this.id);
    for (const id of nodes) {
      if (!this.progress.has(id)) {
        this.progress.set(id, { match: 0, next: this.log.last + 1, lastAckMs: nowMs + graceMs });
      }
    }
    for (const id of [...this.progress.keys()]) if (!nodes.includes(id)) this.progress.delete(id);
  }

  // ---------------------------------------------------------------------------------------
  // Transitions shared by every role

  setRole(role: Role, leader: NodeId | null): void {
    if (role !== this.role || leader !== this.leader) this.roleDirty = true;
    this.role = role;
    this.leader = leader;
  }

  resetElectionTimer(nowMs: number): void {
    const t = this.timings.electionMs;
    this.electionDeadline = nowMs + t + this.rng.intBelow(t);
  }

  /** Adopts a higher view: forget the vote, drop the unsigned suffix (CCF UpdateTerm). */
  adoptView(view: View): void {
    assert(view > this.view, "views only grow");
    this.view = view;
    this.votedFor = null;
    this.hardStateDirty = true;
    this.rollback(this.log.lastCommittable);
  }

  becomeFollower(view: View, leader: NodeId | null, nowMs: number): void {
    if (view > this.view) this.adoptView(view);
    this.progress.clear();
    this.votes.clear();
    const role: Role = this.role === "None" && !this.isInSomeConfiguration() ? "None" : "Follower";
    this.setRole(role, leader);
    this.resetElectionTimer(nowMs);
  }

  /** Truncates the log to `seqno` (never below commit) and tells the host to do the same. */
  rollback(seqno: Seqno): void {
    assert(seqno >= this.commit, `rollback to ${seqno} below commit ${this.commit}`);
    if (seqno >= this.log.last) return;
    this.log.truncate(seqno);
    if (seqno < this.hostLast) {
      this.pendingRollback = Math.min(this.pendingRollback ?? seqno, seqno) as Seqno;
    }
    if (this.persisted > seqno) this.persisted = seqno;
  }

  setCommit(seqno: Seqno): void {
    if (seqno <= this.commit) return;
    assert(this.log.isSignature(seqno), `commit ${seqno} must be a signature`);
    this.commit = seqno;
    this.commitDirty = true;
  }
}
