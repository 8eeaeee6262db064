/**
 * CCF-flavoured Raft as a synchronous, IO-free state machine (ccf-api.md 7; house style:
 * Ready/Step/Advance after etcd's RawNode).
 *
 * Inputs: `tick(now)`, `step(from, message, now)`, `replicate(entries)` (leader only: entries
 * the host has already written locally). Output: `ready()`, a batch of effects the host carries
 * out in the order written on `Ready` (rollback, append, sync, send, commit), then `advance`.
 *
 * CCF's changes to Raft, all here:
 * - Only signature entries are committable; commit always lands on a signature of the
 *   leader's own view (SignatureInv, NeverCommitEntryPrevTermsProp).
 * - Votes compare the last committable (signed) entry, not the last entry.
 * - A new leader, and any node adopting a higher view, rolls back to its last committable entry.
 * - One-transaction reconfiguration: an entry carrying a configuration takes effect when
 *   appended; until it commits, elections and commits need a majority of every active
 *   configuration.
 * - PreVote (a timed-out node first asks whether it could win; nodes that heard from a leader
 *   recently refuse) and CheckQuorum (a leader that has not heard from a majority of every
 *   active configuration within an election timeout steps down).
 * - Retirement: a node not in the latest committed configuration stops campaigning; a leader
 *   whose removal commits nominates its most up-to-date successor (ProposeRequestVote) and
 *   steps down.
 * - Joiners start in role None and become Followers once their log holds a configuration
 *   with them in it.
 *
 * Randomness (election timeouts) comes from an injected Rng; time is passed in. The same
 * inputs give the same outputs, which the simulator relies on.
 */
import { assert } from "../base/assert.js";
import type { Rng } from "../base/io.js";
import { hasQuorumInEvery, nodesOf } from "./quorum.js";
import { RaftLog, type Configuration, type PayloadReader } from "./raft-log.js";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Envelope,
  HardState,
  MembershipState,
  NodeId,
  RaftEntry,
  RaftMessage,
  RaftTimings,
  Ready,
  RequestVote,
  RequestVoteResponse,
  Role,
  Seqno,
  TxStatus,
  View,
} from "./types.js";

export interface RaftOptions {
  readonly id: NodeId;
  readonly timings: RaftTimings;
  readonly rng: Rng;
  readonly nowMs: number;
  /** Where the log starts: seqno 0 (empty) or a snapshot; its configuration. */
  readonly base: { seqno: Seqno; view: View; configuration: readonly NodeId[] };
  /** Entries after the base the host already holds (restart), in order. */
  readonly entries?: readonly RaftEntry[];
  /** The persisted hard state (restart). */
  readonly hardState?: HardState;
  /** The commit the host already knows (restart); a signature seqno. */
  readonly commitSeqno?: Seqno;
  /** The node that creates the service starts as its leader in `hardState.view`. */
  readonly startAsLeader?: boolean;
  readonly reader?: PayloadReader;
}

/** The leader's view of one peer. Invariant: 0 <= match < next. */
interface Progress {
  match: number;
  /** The next seqno to send (advanced optimistically when sending). */
  next: number;
  /** When the peer last answered an AppendEntries (CheckQuorum). */
  lastAckMs: number;
}

export interface ConsensusDetails {
  readonly id: NodeId;
  readonly role: Role;
  readonly membership: MembershipState;
  readonly view: View;
  readonly leader: NodeId | null;
  readonly commitSeqno: Seqno;
  readonly lastSeqno: Seqno;
  readonly configurations: readonly Configuration[];
  readonly acks: Readonly<Record<string, { match: number; lastAckAgoMs: number }>>;
}

export class RaftNode {
  readonly id: NodeId;
  private readonly timings: RaftTimings;
  private readonly rng: Rng;
  readonly log: RaftLog;
  private viewNo: View;
  private votedFor: NodeId | null;
  private roleNow: Role;
  private leaderId: NodeId | null = null;
  // Invariant: commit is base or a signature seqno <= log.last.
  private commit: Seqno;
  // Invariant: persisted <= hostLast <= log.last (after rollbacks are applied).
  private persisted: Seqno;
  /** The last seqno the host holds (as of the last advance, plus leader appends). */
  private hostLast: Seqno;
  /** The lowest seqno the host must roll back to before the next append, or null. */
  private pendingRollback: Seqno | null = null;
  private msgs: Envelope[] = [];
  private hardStateDirty = false;
  private roleDirty = true;
  private commitDirty = false;
  private electionDeadline = 0;
  private lastHeartbeatMs = 0;
  private lastQuorumCheckMs = 0;
  /** When this node last heard from a legitimate leader (pre-vote lease). */
  private leaderContactMs = Number.NEGATIVE_INFINITY;
  private readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  constructor(o: RaftOptions) {
    this.id = o.id;
    this.timings = o.timings;
    this.rng = o.rng;
    this.log = new RaftLog(o.base, o.reader);
    for (const e of o.entries ?? []) this.log.append(e);
    this.viewNo = o.hardState?.view ?? o.base.view;
    this.votedFor = o.hardState?.votedFor ?? null;
    this.commit = o.commitSeqno ?? o.base.seqno;
    assert(this.commit <= this.log.last, "commit within the log");
    this.persisted = this.log.last;
    this.hostLast = this.log.last;
    this.roleNow = this.isInSomeConfiguration() ? "Follower" : "None";
    this.resetElectionTimer(o.nowMs);
    if (o.startAsLeader === true) {
      assert(this.viewNo >= this.log.lastView, "the start view covers the log");
      this.becomeLeader(o.nowMs);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Queries

  get role(): Role {
    return this.roleNow;
  }
  get view(): View {
    return this.viewNo;
  }
  get leader(): NodeId | null {
    return this.leaderId;
  }
  get commitSeqno(): Seqno {
    return this.commit;
  }
  get lastSeqno(): Seqno {
    return this.log.last;
  }
  get isLeader(): boolean {
    return this.roleNow === "Leader";
  }

  /** Retired once the latest committed configuration no longer holds this node. */
  get membership(): MembershipState {
    const committed = this.log.activeConfigurations(this.commit)[0]!;
    const everIn = this.log.configurations().some((c) => c.nodes.includes(this.id));
    return everIn && !committed.nodes.includes(this.id) ? "Retired" : "Active";
  }

  /** CCF's status of a transaction id as this node knows it (ccf-api.md 3.2). */
  status(view: number, seqno: number): TxStatus {
    const log = this.log;
    if (seqno <= this.commit) {
      if (seqno <= log.baseSeqno) return "Committed";
      return log.viewAt(seqno) === view ? "Committed" : "Invalid";
    }
    // A committed entry of a later view precedes seqno: views only grow along a log.
    if (this.commit > 0 && log.viewAt(this.commit) > view) return "Invalid";
    if (seqno <= log.last && log.viewAt(seqno) === view) return "Pending";
    return "Unknown";
  }

  details(nowMs: number): ConsensusDetails {
    const acks: Record<string, { match: number; lastAckAgoMs: number }> = {};
    for (const [id, p] of this.progress) {
      acks[id] = { match: p.match, lastAckAgoMs: Math.max(0, nowMs - p.lastAckMs) };
    }
    return {
      id: this.id,
      role: this.roleNow,
      membership: this.membership,
      view: this.viewNo,
      leader: this.leaderId,
      commitSeqno: this.commit,
      lastSeqno: this.log.last,
      configurations: this.log.activeConfigurations(this.commit),
      acks,
    };
  }

  hardState(): HardState {
    return { view: this.viewNo, votedFor: this.votedFor };
  }

  // ---------------------------------------------------------------------------------------
  // Inputs

  tick(nowMs: number): void {
    if (this.roleNow === "Leader") {
      this.tickLeader(nowMs);
      return;
    }
    if (nowMs >= this.electionDeadline && this.mayCampaign()) this.becomePreVoteCandidate(nowMs);
  }

  /** Leader only: entries the host has written locally (not yet synced), in seqno order. */
  replicate(entries: readonly RaftEntry[], nowMs: number): void {
    assert(this.roleNow === "Leader", "only a leader replicates");
    for (const e of entries) {
      assert(e.view === this.viewNo, `a leader appends in its own view (${e.view})`);
      this.log.append(e);
    }
    this.hostLast = this.log.last;
    if (entries.some((e) => e.configuration !== undefined)) {
      this.syncProgress(nowMs, this.timings.newNodeGraceMs);
    }
    for (const peer of this.progress.keys()) this.sendAppend(peer, false);
    this.maybeCommit(nowMs);
  }

  step(from: NodeId, message: RaftMessage, nowMs: number): void {
    if (from === this.id) return;
    switch (message.type) {
      case "append_entries":
        this.onAppendEntries(from, message, nowMs);
        return;
      case "append_entries_response":
        this.onAppendEntriesResponse(from, message, nowMs);
        return;
      case "request_vote":
        this.onRequestVote(from, message, nowMs);
        return;
      case "request_vote_response":
        this.onVoteResponse(from, message, nowMs);
        return;
      case "propose_request_vote":
        if (message.view === this.viewNo && this.roleNow === "Follower" && this.mayCampaign()) {
          this.becomeCandidate(nowMs);
        }
        return;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Ready / advance

  hasReady(): boolean {
    return (
      this.msgs.length > 0 ||
      this.hardStateDirty ||
      this.roleDirty ||
      this.commitDirty ||
      this.pendingRollback !== null ||
      this.hostLast < this.log.last ||
      this.hasUndurableSignature()
    );
  }

  /** Takes the pending effects. The host must carry them out, then call advance(ready). */
  ready(): Ready {
    const from = (this.pendingRollback ?? this.hostLast) + 1;
    const entries: RaftEntry[] = [];
    for (let s = from; s <= this.log.last; s++) entries.push(this.log.entry(s));
    const ready: Ready = {
      hardState: this.hardStateDirty ? this.hardState() : null,
      rollbackTo: this.pendingRollback,
      entries,
      mustSync: this.hardStateDirty || this.hasUndurableSignature(),
      messages: this.msgs,
      commitSeqno: this.commitDirty ? this.commit : null,
      roleChange: this.roleDirty
        ? { role: this.roleNow, view: this.viewNo, leader: this.leaderId }
        : null,
      lastSeqno: this.log.last,
    };
    this.msgs = [];
    this.hardStateDirty = false;
    this.roleDirty = false;
    this.commitDirty = false;
    this.pendingRollback = null;
    this.hostLast = this.log.last;
    return ready;
  }

  /**
   * Whether the log holds a signature that is not yet durable. Only then must the host sync:
   * commit (which needs a durable majority) only ever lands on signatures, so entries after the
   * last signature may stay in the OS's buffers until the next one (one fdatasync per
   * signature, not per batch).
   */
  private hasUndurableSignature(): boolean {
    return this.log.lastCommittable > this.persisted;
  }

  /** The host carried out `ready`: what it synced is durable. */
  advance(ready: Ready, nowMs: number): void {
    if (ready.mustSync) this.persisted = Math.min(ready.lastSeqno, this.log.last) as Seqno;
    if (this.roleNow === "Leader") this.maybeCommit(nowMs);
  }

  /** Forgets payloads of entries below `seqno` (the host reads them back when needed). */
  compactPayloads(seqno: Seqno): void {
    this.log.compactPayloads(Math.min(seqno, this.commit + 1));
  }

  // ---------------------------------------------------------------------------------------
  // Role transitions

  private setRole(role: Role, leader: NodeId | null): void {
    if (role !== this.roleNow || leader !== this.leaderId) this.roleDirty = true;
    this.roleNow = role;
    this.leaderId = leader;
  }

  private resetElectionTimer(nowMs: number): void {
    const t = this.timings.electionMs;
    this.electionDeadline = nowMs + t + this.rng.intBelow(t);
  }

  /** Adopts a higher view: forget the vote, drop the unsigned suffix (CCF UpdateTerm). */
  private adoptView(view: View): void {
    assert(view > this.viewNo, "views only grow");
    this.viewNo = view;
    this.votedFor = null;
    this.hardStateDirty = true;
    this.rollback(this.log.lastCommittable);
  }

  private becomeFollower(view: View, leader: NodeId | null, nowMs: number): void {
    if (view > this.viewNo) this.adoptView(view);
    this.progress.clear();
    this.votes.clear();
    const role: Role =
      this.roleNow === "None" && !this.isInSomeConfiguration() ? "None" : "Follower";
    this.setRole(role, leader);
    this.resetElectionTimer(nowMs);
  }

  private becomePreVoteCandidate(nowMs: number): void {
    this.setRole("PreVoteCandidate", null);
    this.progress.clear();
    this.votes = new Map([[this.id, true]]);
    this.resetElectionTimer(nowMs);
    this.broadcastVoteRequest(true, (this.viewNo + 1) as View);
    this.maybeWinElection(true, nowMs);
  }

  private becomeCandidate(nowMs: number): void {
    this.viewNo = (this.viewNo + 1) as View;
    this.votedFor = this.id;
    this.hardStateDirty = true;
    this.setRole("Candidate", null);
    this.votes = new Map([[this.id, true]]);
    this.resetElectionTimer(nowMs);
    this.broadcastVoteRequest(false, this.viewNo);
    this.maybeWinElection(false, nowMs);
  }

  private becomeLeader(nowMs: number): void {
    // A new leader keeps only its committable prefix (ccfraft.tla BecomeLeader).
    this.rollback(this.log.lastCommittable);
    this.setRole("Leader", this.id);
    this.votes.clear();
    this.progress.clear();
    this.syncProgress(nowMs);
    this.lastHeartbeatMs = nowMs;
    this.lastQuorumCheckMs = nowMs;
    for (const peer of this.progress.keys()) this.sendAppend(peer, true);
  }

  /** Truncates the log to `seqno` (never below commit) and tells the host to do the same. */
  private rollback(seqno: Seqno): void {
    assert(seqno >= this.commit, `rollback to ${seqno} below commit ${this.commit}`);
    if (seqno >= this.log.last) return;
    this.log.truncate(seqno);
    if (seqno < this.hostLast) {
      this.pendingRollback = Math.min(this.pendingRollback ?? seqno, seqno) as Seqno;
    }
    if (this.persisted > seqno) this.persisted = seqno;
  }

  // ---------------------------------------------------------------------------------------
  // Configurations

  private activeConfigs(): Configuration[] {
    return this.log.activeConfigurations(this.commit);
  }

  private isInSomeConfiguration(): boolean {
    return this.activeConfigs().some((c) => c.nodes.includes(this.id));
  }

  /** Campaign only as an active member of the current configurations. */
  private mayCampaign(): boolean {
    return (
      this.roleNow !== "None" &&
      this.membership === "Active" &&
      this.activeConfigs().some((c) => c.nodes.includes(this.id))
    );
  }

  /**
   * Leader: track every node of the active configurations, and only them; a node added now
   * counts as heard from until `graceMs` from now (RaftTimings.newNodeGraceMs).
   */
  private syncProgress(nowMs: number, graceMs = 0): void {
    const nodes = nodesOf(this.activeConfigs()).filter((id) => id !== this.id);
    for (const id of nodes) {
      if (!this.progress.has(id)) {
        this.progress.set(id, { match: 0, next: this.log.last + 1, lastAckMs: nowMs + graceMs });
      }
    }
    for (const id of [...this.progress.keys()]) if (!nodes.includes(id)) this.progress.delete(id);
  }

  // ---------------------------------------------------------------------------------------
  // Leader

  private tickLeader(nowMs: number): void {
    if (nowMs - this.lastQuorumCheckMs >= this.timings.electionMs) {
      this.lastQuorumCheckMs = nowMs;
      const since = nowMs - this.timings.electionMs;
      const alive = (id: NodeId): boolean =>
        id === this.id || (this.progress.get(id)?.lastAckMs ?? -Infinity) >= since;
      if (!hasQuorumInEvery(this.activeConfigs(), alive)) {
        this.becomeFollower(this.viewNo, null, nowMs);
        return;
      }
    }
    if (nowMs - this.lastHeartbeatMs >= this.timings.heartbeatMs) {
      this.lastHeartbeatMs = nowMs;
      for (const peer of this.progress.keys()) this.sendAppend(peer, true);
    }
  }

  /**
   * Sends `peer` what it lacks, in batches, up to the inflight bound; with `heartbeat`, sends
   * at least one (possibly empty) AppendEntries.
   */
  private sendAppend(peer: NodeId, heartbeat: boolean, maxMessages = Infinity): void {
    const p = this.progress.get(peer);
    if (p === undefined) return;
    const t = this.timings;
    let sent = false;
    let messages = 0;
    while (
      p.next <= this.log.last &&
      p.next - 1 - p.match < t.maxInflightEntries &&
      messages++ < maxMessages
    ) {
      const entries = this.log.slice(p.next, t.maxBatchEntries, t.maxBatchBytes);
      this.sendAppendEntries(peer, p.next - 1, entries);
      p.next += entries.length;
      sent = true;
    }
    if (heartbeat && !sent) this.sendAppendEntries(peer, Math.min(p.next - 1, this.log.last), []);
  }

  private sendAppendEntries(peer: NodeId, prev: number, entries: readonly RaftEntry[]): void {
    if (prev < this.log.baseSeqno) return; // needs a snapshot (issue #5)
    const message: AppendEntries = {
      type: "append_entries",
      view: this.viewNo,
      prevSeqno: prev as Seqno,
      prevView: this.log.viewAt(prev),
      leaderCommit: this.commit,
      entries,
    };
    this.msgs.push({ from: this.id, to: peer, message });
  }

  private onAppendEntriesResponse(from: NodeId, m: AppendEntriesResponse, nowMs: number): void {
    if (m.view > this.viewNo) {
      this.becomeFollower(m.view, null, nowMs);
      return;
    }
    if (this.roleNow !== "Leader" || m.view < this.viewNo) return;
    const p = this.progress.get(from);
    if (p === undefined) return;
    p.lastAckMs = nowMs;
    if (m.success) {
      if (m.lastSeqno > p.match) p.match = Math.min(m.lastSeqno, this.log.last);
      if (p.next <= p.match) p.next = p.match + 1;
      this.maybeCommit(nowMs);
    } else {
      // A stale NACK (below what the peer already acknowledged) changes nothing (C2).
      if (m.lastSeqno < p.match) return;
      p.next = Math.min(p.next, m.lastSeqno + 1, this.log.last + 1);
      if (p.next <= p.match) p.next = p.match + 1;
      // Fix (found by src/sim): answer a NACK with one batch only, not a full inflight window.
      // With reordering, a window's later batches arrive before the first and each is NACKed;
      // when every NACK resent the whole window the message count grew exponentially.
      this.sendAppend(from, false, 1);
      return;
    }
    if (this.progress.has(from)) this.sendAppend(from, false);
  }

  /** Commits the highest signature of this view held by a majority of every configuration. */
  private maybeCommit(nowMs: number): void {
    if (this.roleNow !== "Leader") return;
    const signatures = this.log.signaturesIn(this.commit, this.log.last);
    for (let i = signatures.length - 1; i >= 0; i--) {
      const s = signatures[i]!;
      if (this.log.viewAt(s) !== this.viewNo) break;
      const holds = (id: NodeId): boolean =>
        id === this.id ? this.persisted >= s : (this.progress.get(id)?.match ?? 0) >= s;
      if (hasQuorumInEvery(this.activeConfigs(), holds)) {
        this.setCommit(s as Seqno);
        this.afterLeaderCommit(nowMs);
        return;
      }
    }
  }

  private setCommit(seqno: Seqno): void {
    if (seqno <= this.commit) return;
    assert(this.log.isSignature(seqno), `commit ${seqno} must be a signature`);
    this.commit = seqno;
    this.commitDirty = true;
  }

  private afterLeaderCommit(nowMs: number): void {
    this.syncProgress(nowMs);
    if (this.membership !== "Retired") return;
    // Our removal committed: hand over to the most up-to-date node of the new configuration.
    const latest = this.activeConfigs().at(-1)!;
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of latest.nodes) {
      const match = this.progress.get(id)?.match ?? -1;
      if (match > bestMatch) [best, bestMatch] = [id, match];
    }
    for (const peer of this.progress.keys()) this.sendAppend(peer, true);
    if (best !== null) {
      this.msgs.push({
        from: this.id,
        to: best,
        message: { type: "propose_request_vote", view: this.viewNo },
      });
    }
    this.becomeFollower(this.viewNo, null, nowMs);
  }

  // ---------------------------------------------------------------------------------------
  // Followers

  private reply(to: NodeId, success: boolean, lastSeqno: number): void {
    const message: AppendEntriesResponse = {
      type: "append_entries_response",
      view: this.viewNo,
      success,
      lastSeqno: lastSeqno as Seqno,
    };
    this.msgs.push({ from: this.id, to, message });
  }

  private onAppendEntries(from: NodeId, m: AppendEntries, nowMs: number): void {
    if (m.view < this.viewNo) {
      this.reply(from, false, this.log.last); // tells a stale leader about the newer view
      return;
    }
    if (m.view > this.viewNo || this.roleNow !== "Follower" || this.leaderId !== from) {
      if (this.roleNow === "Leader" && m.view === this.viewNo) return; // impossible: one leader
      this.becomeFollower(m.view, from, nowMs);
    }
    this.leaderContactMs = nowMs;
    this.resetElectionTimer(nowMs);
    const log = this.log;
    if (m.prevSeqno > log.last) {
      this.reply(from, false, log.last);
      return;
    }
    if (m.prevSeqno >= log.baseSeqno && log.viewAt(m.prevSeqno) !== m.prevView) {
      const hint = log.lastAtOrBelowWithViewAtMost(m.prevSeqno - 1, m.prevView);
      this.reply(from, false, Math.max(hint, this.commit));
      return;
    }
    let matched = m.prevSeqno as number;
    for (const e of m.entries) {
      if (e.seqno !== matched + 1 || e.view > m.view) break; // malformed: keep what matched
      if (e.seqno <= log.baseSeqno) {
        matched = e.seqno; // covered by the snapshot this node started from: committed
        continue;
      }
      if (e.seqno <= log.last) {
        if (log.viewAt(e.seqno) === e.view) {
          matched = e.seqno;
          continue;
        }
        if (e.seqno <= this.commit) break; // never rewrite the committed prefix
        this.rollback((e.seqno - 1) as Seqno);
      }
      log.append(e);
      matched = e.seqno;
    }
    // Acks promise durability. Only signatures are committable, so entries are synced only
    // once a signature is among them: until then the ack claims just what is already durable.
    const willSync = log.lastSignatureAtOrBelow(matched) > this.persisted;
    this.reply(from, true, willSync ? matched : Math.min(matched, this.persisted));
    const commitTo = log.lastSignatureAtOrBelow(Math.min(m.leaderCommit, matched));
    if (commitTo > this.commit) this.setCommit(commitTo);
    if (this.roleNow === "None" && this.isInSomeConfiguration()) this.setRole("Follower", from);
  }

  // ---------------------------------------------------------------------------------------
  // Elections

  private broadcastVoteRequest(preVote: boolean, view: View): void {
    const message: RequestVote = {
      type: "request_vote",
      preVote,
      view,
      lastCommittableSeqno: this.log.lastCommittable,
      lastCommittableView: this.log.viewAt(this.log.lastCommittable),
    };
    for (const id of nodesOf(this.activeConfigs())) {
      if (id !== this.id) this.msgs.push({ from: this.id, to: id, message });
    }
  }

  /** Whether a candidate's last committable entry is at least as up to date as ours. */
  private isUpToDate(m: RequestVote): boolean {
    const ours = this.log.lastCommittable;
    const oursView = this.log.viewAt(ours);
    if (m.lastCommittableView !== oursView) return m.lastCommittableView > oursView;
    return m.lastCommittableSeqno >= ours;
  }

  /**
   * Fix (found by src/sim): whether `candidate` belongs to one of our active configurations
   * (or we know none yet, as a joiner). Without it, a node whose removal committed but who
   * never heard of that commit won votes from nodes that knew it was gone, and led again.
   */
  private mayVoteFor(candidate: NodeId): boolean {
    const nodes = nodesOf(this.activeConfigs());
    return nodes.length === 0 || nodes.includes(candidate);
  }

  private onRequestVote(from: NodeId, m: RequestVote, nowMs: number): void {
    if (m.preVote) {
      const leaseHeld =
        this.roleNow === "Leader" || nowMs - this.leaderContactMs < this.timings.electionMs;
      const granted =
        m.view > this.viewNo && !leaseHeld && this.isUpToDate(m) && this.mayVoteFor(from);
      this.sendVote(from, true, granted ? m.view : this.viewNo, granted);
      return;
    }
    if (m.view < this.viewNo) {
      this.sendVote(from, false, this.viewNo, false);
      return;
    }
    if (m.view > this.viewNo) this.becomeFollower(m.view, null, nowMs);
    const granted =
      (this.votedFor === null || this.votedFor === from) &&
      this.roleNow !== "Leader" &&
      this.isUpToDate(m) &&
      this.mayVoteFor(from);
    if (granted) {
      this.votedFor = from;
      this.hardStateDirty = true;
      this.resetElectionTimer(nowMs);
    }
    this.sendVote(from, false, this.viewNo, granted);
  }

  private sendVote(to: NodeId, preVote: boolean, view: View, granted: boolean): void {
    const message: RequestVoteResponse = { type: "request_vote_response", preVote, view, granted };
    this.msgs.push({ from: this.id, to, message });
  }

  private onVoteResponse(from: NodeId, m: RequestVoteResponse, nowMs: number): void {
    if (!m.granted && m.view > this.viewNo) {
      this.becomeFollower(m.view, null, nowMs);
      return;
    }
    if (m.preVote) {
      if (this.roleNow !== "PreVoteCandidate" || m.view !== this.viewNo + 1) return;
    } else if (this.roleNow !== "Candidate" || m.view !== this.viewNo) {
      return;
    }
    this.votes.set(from, m.granted);
    this.maybeWinElection(m.preVote, nowMs);
  }

  private maybeWinElection(preVote: boolean, nowMs: number): void {
    const won = hasQuorumInEvery(this.activeConfigs(), (id) => this.votes.get(id) === true);
    if (!won) return;
    if (preVote) this.becomeCandidate(nowMs);
    else this.becomeLeader(nowMs);
  }
}
