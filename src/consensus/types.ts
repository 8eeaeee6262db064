/**
 * The vocabulary of the consensus core (ccf-compatibility.md §7.1): entries as Raft sees them, the
 * messages nodes exchange, the hard state a node must persist, and the Ready batch of effects the
 * core hands to its driver (style.md §2.5, ADR 0003: Ready/Step/Advance).
 *
 * Terms: a Raft term is a "view"; a log index is a "seqno"; leader/follower are "primary" and
 * "backup" in the HTTP API. Only signature entries are committable (SignatureInv).
 */
import type { NodeId, Seqno, View } from "../base/ids.js";

export type { NodeId, Seqno, View };

/** What the core knows of one log entry besides its bytes. */
export interface EntryMeta {
  readonly view: View;
  /** A signature transaction: the only kind of entry a commit may land on. */
  readonly isSignature: boolean;
  /**
   * Set on an entry that changes the set of trusted nodes (one-transaction reconfiguration):
   * the full configuration from this seqno on. Sorted, no duplicates.
   */
  readonly configuration?: readonly NodeId[] | undefined;
}

/** An entry with its seqno and opaque payload (the ledger entry bytes). */
export interface RaftEntry extends EntryMeta {
  readonly seqno: Seqno;
  readonly payload: Uint8Array;
}

export type Role = "None" | "Follower" | "PreVoteCandidate" | "Candidate" | "Leader";

/** Membership of this node, derived from the configurations in its log. */
export type MembershipState = "Active" | "Retired";

export interface AppendEntries {
  readonly type: "append_entries";
  readonly view: View;
  readonly prevSeqno: Seqno;
  readonly prevView: View;
  /** Invariant: a signature seqno (or 0). */
  readonly leaderCommit: Seqno;
  readonly entries: readonly RaftEntry[];
}

export interface AppendEntriesResponse {
  readonly type: "append_entries_response";
  readonly view: View;
  readonly success: boolean;
  /**
   * On success: the last seqno known to match the leader's log. On failure: a hint, the last
   * seqno that may still match (the leader resumes after it).
   */
  readonly lastSeqno: Seqno;
}

export interface RequestVote {
  readonly type: "request_vote";
  readonly preVote: boolean;
  /** The candidate's view, or for a pre-vote the view it would campaign in. */
  readonly view: View;
  readonly lastCommittableSeqno: Seqno;
  readonly lastCommittableView: View;
}

export interface RequestVoteResponse {
  readonly type: "request_vote_response";
  readonly preVote: boolean;
  readonly view: View;
  readonly granted: boolean;
}

/** A retiring leader asks its most up-to-date successor to start an election at once. */
export interface ProposeRequestVote {
  readonly type: "propose_request_vote";
  readonly view: View;
}

export type RaftMessage =
  AppendEntries | AppendEntriesResponse | RequestVote | RequestVoteResponse | ProposeRequestVote;

export interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly message: RaftMessage;
}

/** What must survive a crash besides the log: the view and the vote cast in it. */
export interface HardState {
  readonly view: View;
  readonly votedFor: NodeId | null;
}

/**
 * The effects a host must carry out, in this order (the contract, see raft.ts):
 * 1. `rollbackTo`: drop every local entry (store, history, ledger) after this seqno.
 * 2. `entries`: append these entries received from the leader (apply to store and history).
 * 3. if `mustSync`: make the ledger and `hardState` durable.
 * 4. send `messages` (never before step 3, except a leader's when `hardState` is null and
 *    there is no rollback: its messages promise nothing of its own disk, and its own entries
 *    count toward commit only once advance() records the sync).
 * 5. `commitSeqno`: entries up to it are committed (it is always a signature).
 * 6. call `advance(ready)`.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly rollbackTo: Seqno | null;
  readonly entries: readonly RaftEntry[];
  readonly mustSync: boolean;
  readonly messages: readonly Envelope[];
  readonly commitSeqno: Seqno | null;
  /** Set when the role, view or known leader changed since the last Ready. */
  readonly roleChange: {
    readonly role: Role;
    readonly view: View;
    readonly leader: NodeId | null;
  } | null;
  /** The last seqno the host will hold once it has applied this Ready. */
  readonly lastSeqno: Seqno;
}

/** CCF's transaction statuses (ccf-compatibility.md §3.2). */
export type TxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

export interface RaftTimings {
  /** Heartbeats (empty AppendEntries) every this many ms (CCF message_timeout). */
  readonly heartbeatMs: number;
  /** Election timeout: each round waits a random time in [electionMs, 2 * electionMs). */
  readonly electionMs: number;
  /** Entries per AppendEntries message. */
  readonly maxBatchEntries: number;
  /** Bytes per AppendEntries message (payloads). */
  readonly maxBatchBytes: number;
  /** Entries sent to a peer and not yet acknowledged before the leader waits. */
  readonly maxInflightEntries: number;
  /**
   * CheckQuorum counts a node the leader's own configuration change just added as heard from
   * for this long: a joiner may still be loading a large snapshot before it can answer, and a
   * one-node service that trusts it must not step down meanwhile. Safety does not depend on it.
   */
  readonly newNodeGraceMs: number;
  /**
   * Entries are sent when a signature or a configuration change is among them, when a full
   * batch of maxBatchEntries waits for a peer, or with a heartbeat; not on every replicate().
   * Commit lands only on signatures, so nothing commits later; a peer gets one AppendEntries a
   * signature instead of one per handover.
   */
  readonly holdUntilSignature: boolean;
}

export const DEFAULT_TIMINGS: RaftTimings = {
  heartbeatMs: 100,
  electionMs: 1000,
  maxBatchEntries: 2000,
  maxBatchBytes: 4 * 1024 * 1024,
  maxInflightEntries: 20_000,
  newNodeGraceMs: 10_000,
  holdUntilSignature: true,
};
