/**
 * CCF-flavoured Raft as a synchronous, IO-free state machine (ccf-compatibility.md §7.1;
 * style.md §2.5 and ADR 0003: Ready/Step/Advance after etcd's RawNode).
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
 *
 * Layout: this module is the node's public face and its Ready/advance bookkeeping; the state
 * and the transitions all roles share are in raft-state.ts, and the roles' steps in leader.ts
 * (replication, heartbeats, CheckQuorum, commit, retirement), follower.ts (AppendEntries) and
 * elections.ts (PreVote, campaigns, votes).
 */
import { assert } from "../base/assert.js";
import type { Rng } from "../base/io.js";
import {
  becomePreVoteCandidate,
  onProposeRequestVote,
  onRequestVote,
  onVoteResponse,
} from "./elections.js";
import { onAppendEntries } from "./follower.js";
import {
  becomeLeader,
  maybeCommit,
  onAppendEntriesResponse,
  replicate,
  tickLeader,
} from "./leader.js";
import { RaftLog, type Configuration, type LogBase, type PayloadReader } from "./raft-log.js";
import { RaftState } from "./raft-state.js";
import type {
  HardState,
  MembershipState,
  NodeId,
  RaftEntry,
  RaftMessage,
  RaftTimings,
  Ready,
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
  readonly base: LogBase;
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
  readonly log: RaftLog;
  private readonly s: RaftState;

  constructor(o: RaftOptions) {
    this.id = o.id;
    this.log = new RaftLog(o.base, o.reader);
    for (const e of o.entries ?? []) this.log.append(e);
    this.s = new RaftState({
      id: o.id,
      timings: o.timings,
      rng: o.rng,
      log: this.log,
      view: o.hardState?.view ?? o.base.view,
      votedFor: o.hardState?.votedFor ?? null,
      commit: o.commitSeqno ?? o.base.seqno,
      nowMs: o.nowMs,
    });
    if (o.startAsLeader === true) {
      assert(this.s.view >= this.log.lastView, "the start view covers the log");
      becomeLeader(this.s, o.nowMs);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Queries

  get role(): Role {
    return this.s.role;
  }
  get view(): View {
    return this.s.view;
  }
  get leader(): NodeId | null {
    return this.s.leader;
  }
  get commitSeqno(): Seqno {
    return this.s.commit;
  }
  get lastSeqno(): Seqno {
    return this.log.last;
  }
  get isLeader(): boolean {
    return this.s.role === "Leader";
  }

  /** Retired once the latest committed configuration no longer holds this node. */
  get membership(): MembershipState {
    return this.s.membership;
  }

  /** CCF's status of a transaction id as this node knows it (ccf-compatibility.md §3.2). */
  status(view: number, seqno: number): TxStatus {
    const log = this.log;
    const commit = this.s.commit;
    if (seqno <= commit) {
      // Below the base (a node that joined from a snapshot) the snapshot's view history says
      // which view each seqno has: a rolled-back txId of an earlier view is Invalid there too.
      // Without that history, as for a recovered ledger, the view cannot be checked.
      const known = seqno >= log.baseSeqno ? log.viewAt(seqno) : log.viewBelowBase(seqno);
      if (known === null) return "Committed";
      return known === view ? "Committed" : "Invalid";
    }
    // A committed entry of a later view precedes seqno: views only grow along a log.
    if (commit > 0 && log.viewAt(commit) > view) return "Invalid";
    if (seqno <= log.last && log.viewAt(seqno) === view) return "Pending";
    return "Unknown";
  }

  details(nowMs: number): ConsensusDetails {
    const acks: Record<string, { match: number; lastAckAgoMs: number }> = {};
    for (const [id, p] of this.s.progress) {
      acks[id] = { match: p.match, lastAckAgoMs: Math.max(0, nowMs - p.lastAckMs) };
    }
    return {
      id: this.id,
      role: this.s.role,
      membership: this.s.membership,
      view: this.s.view,
      leader: this.s.leader,
      commitSeqno: this.s.commit,
      lastSeqno: this.log.last,
      configurations: this.s.activeConfigs(),
      acks,
    };
  }

  hardState(): HardState {
    return { view: this.s.view, votedFor: this.s.votedFor };
  }

  // ---------------------------------------------------------------------------------------
  // Inputs

  tick(nowMs: number): void {
    const s = this.s;
    if (s.role === "Leader") {
      tickLeader(s, nowMs);
      return;
    }
    if (nowMs >= s.electionDeadline && s.mayCampaign()) becomePreVoteCandidate(s, nowMs);
  }

  /** Leader only: entries the host has written locally (not yet synced), in seqno order. */
  replicate(entries: readonly RaftEntry[], nowMs: number): void {
    replicate(this.s, entries, nowMs);
  }

  step(from: NodeId, message: RaftMessage, nowMs: number): void {
    if (from === this.id) return;
    switch (message.type) {
      case "append_entries":
        onAppendEntries(this.s, from, message, nowMs);
        return;
      case "append_entries_response":
        onAppendEntriesResponse(this.s, from, message, nowMs);
        return;
      case "request_vote":
        onRequestVote(this.s, from, message, nowMs);
        return;
      case "request_vote_response":
        onVoteResponse(this.s, from, message, nowMs);
        return;
      case "propose_request_vote":
        onProposeRequestVote(this.s, message, nowMs);
        return;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Ready / advance

  hasReady(): boolean {
    const s = this.s;
    return (
      s.msgs.length > 0 ||
      s.hardStateDirty ||
      s.roleDirty ||
      s.commitDirty ||
      s.pendingRollback !== null ||
      s.hostLast < this.log.last ||
      s.hasUndurableSignature()
    );
  }

  /** Takes the pending effects. The host must carry them out, then call advance(ready). */
  ready(): Ready {
    const s = this.s;
    const from = (s.pendingRollback ?? s.hostLast) + 1;
    const entries: RaftEntry[] = [];
    for (let seqno = from; seqno <= this.log.last; seqno++) entries.push(this.log.entry(seqno));
    const ready: Ready = {
      hardState: s.hardStateDirty ? this.hardState() : null,
      rollbackTo: s.pendingRollback,
      entries,
      mustSync: s.hardStateDirty || s.hasUndurableSignature(),
      messages: s.msgs,
      commitSeqno: s.commitDirty ? s.commit : null,
      roleChange: s.roleDirty ? { role: s.role, view: s.view, leader: s.leader } : null,
      lastSeqno: this.log.last,
    };
    s.msgs = [];
    s.hardStateDirty = false;
    s.roleDirty = false;
    s.commitDirty = false;
    s.pendingRollback = null;
    s.hostLast = this.log.last;
    return ready;
  }

  /** The host carried out `ready`: what it synced is durable. */
  advance(ready: Ready, nowMs: number): void {
    const s = this.s;
    if (ready.mustSync) s.persisted = Math.min(ready.lastSeqno, this.log.last) as Seqno;
    if (s.role === "Leader") maybeCommit(s, nowMs);
  }

  /** Forgets payloads of entries below `seqno` (the host reads them back when needed). */
  compactPayloads(seqno: Seqno): void {
    this.log.compactPayloads(Math.min(seqno, this.s.commit + 1));
  }
}
