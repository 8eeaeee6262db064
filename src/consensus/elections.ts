/**
 * Elections in Raft (raft.ts), from both sides: a node whose election timer ran out first asks
 * whether it could win (PreVote), then campaigns as a candidate in the next view; every node
 * answers vote requests. Votes compare the last committable (signed) entry, not the last entry,
 * and a node that heard from a leader within an election timeout refuses pre-votes. A leader
 * retiring by reconfiguration nominates a successor with ProposeRequestVote.
 *
 * Functions over RaftState; pure and synchronous.
 */
import { hasQuorumInEvery, nodesOf } from "./quorum.js";
import { becomeLeader } from "./leader.js";
import type { RaftState } from "./raft-state.js";
import type {
  NodeId,
  ProposeRequestVote,
  RequestVote,
  RequestVoteResponse,
  View,
} from "./types.js";

export function becomePreVoteCandidate(s: RaftState, nowMs: number): void {
  s.setRole("PreVoteCandidate", null);
  s.progress.clear();
  s.votes = new Map([[s.id, true]]);
  s.resetElectionTimer(nowMs);
  broadcastVoteRequest(s, true, (s.view + 1) as View);
  maybeWinElection(s, true, nowMs);
}

function becomeCandidate(s: RaftState, nowMs: number): void {
  s.view = (s.view + 1) as View;
  s.votedFor = s.id;
  s.hardStateDirty = true;
  s.setRole("Candidate", null);
  s.votes = new Map([[s.id, true]]);
  s.resetElectionTimer(nowMs);
  broadcastVoteRequest(s, false, s.view);
  maybeWinElection(s, false, nowMs);
}

/** A retiring leader nominated this node: campaign at once. */
export function onProposeRequestVote(s: RaftState, m: ProposeRequestVote, nowMs: number): void {
  if (m.view === s.view && s.role === "Follower" && s.mayCampaign()) becomeCandidate(s, nowMs);
}

function broadcastVoteRequest(s: RaftState, preVote: boolean, view: View): void {
  const message: RequestVote = {
    type: "request_vote",
    preVote,
    view,
    lastCommittableSeqno: s.log.lastCommittable,
    lastCommittableView: s.log.viewAt(s.log.lastCommittable),
  };
  for (const id of nodesOf(s.activeConfigs())) {
    if (id !== s.id) s.send(id, message);
  }
}

/** Whether a candidate's last committable entry is at least as up to date as ours. */
function isUpToDate(s: RaftState, m: RequestVote): boolean {
  const ours = s.log.lastCommittable;
  const oursView = s.log.viewAt(ours);
  if (m.lastCommittableView !== oursView) return m.lastCommittableView > oursView;
  return m.lastCommittableSeqno >= ours;
}

/**
 * Fix (found by src/sim): refuse a candidate we know to be gone, one that was in a
 * configuration of our log but is in none of our active ones. Without it, a node whose
 * removal committed but who never heard of that commit won votes from nodes that knew it was
 * gone, and led again. A candidate in no configuration we know is not refused (CCF obeys
 * RequestVotes from unknown nodes too): it joined after the snapshot we started from, and we
 * may be the vote it needs to lead and then bring us up to date (chaos seed 99: a snapshot
 * joiner refused the newer node that alone could lead, and the network never converged).
 */
function mayVoteFor(s: RaftState, candidate: NodeId): boolean {
  if (nodesOf(s.activeConfigs()).includes(candidate)) return true;
  return !s.log.configurations().some((c) => c.nodes.includes(candidate));
}

export function onRequestVote(s: RaftState, from: NodeId, m: RequestVote, nowMs: number): void {
  if (m.preVote) {
    const leaseHeld = s.role === "Leader" || nowMs - s.leaderContactMs < s.timings.electionMs;
    const granted = m.view > s.view && !leaseHeld && isUpToDate(s, m) && mayVoteFor(s, from);
    sendVote(s, from, true, granted ? m.view : s.view, granted);
    return;
  }
  if (m.view < s.view) {
    sendVote(s, from, false, s.view, false);
    return;
  }
  if (m.view > s.view) s.becomeFollower(m.view, null, nowMs);
  const granted =
    (s.votedFor === null || s.votedFor === from) &&
    s.role !== "Leader" &&
    isUpToDate(s, m) &&
    mayVoteFor(s, from);
  if (granted) {
    s.votedFor = from;
    s.hardStateDirty = true;
    s.resetElectionTimer(nowMs);
  }
  sendVote(s, from, false, s.view, granted);
}

function sendVote(s: RaftState, to: NodeId, preVote: boolean, view: View, granted: boolean) {
  const message: RequestVoteResponse = { type: "request_vote_response", preVote, view, granted };
  s.send(to, message);
}

export function onVoteResponse(
  s: RaftState,
  from: NodeId,
  m: RequestVoteResponse,
  nowMs: number,
): void {
  if (!m.granted && m.view > s.view) {
    s.becomeFollower(m.view, null, nowMs);
    return;
  }
  if (m.preVote) {
    if (s.role !== "PreVoteCandidate" || m.view !== s.view + 1) return;
  } else if (s.role !== "Candidate" || m.view !== s.view) {
    return;
  }
  s.votes.set(from, m.granted);
  maybeWinElection(s, m.preVote, nowMs);
}

function maybeWinElection(s: RaftState, preVote: boolean, nowMs: number): void {
  const won = hasQuorumInEvery(s.activeConfigs(), (id) => s.votes.get(id) === true);
  if (!won) return;
  if (preVote) becomeCandidate(s, nowMs);
  else becomeLeader(s, nowMs);
}
