/**
 * The leader's side of Raft (raft.ts): taking over a view, replicating entries to each peer in
 * bounded batches, heartbeats and CheckQuorum, acknowledgements, and commit, which lands only
 * on a signature of the leader's own view held by a majority of every active configuration. A
 * leader whose removal commits nominates its most up-to-date successor and steps down.
 *
 * Functions over RaftState; pure and synchronous.
 */
import { assert } from "../base/assert.js";
import { hasQuorumInEvery } from "./quorum.js";
import type { RaftState } from "./raft-state.js";
import type { AppendEntries, AppendEntriesResponse, NodeId, RaftEntry, Seqno } from "./types.js";

export function becomeLeader(s: RaftState, nowMs: number): void {
  // A new leader keeps only its committable prefix (ccfraft.tla BecomeLeader).
  s.rollback(s.log.lastCommittable);
  s.setRole("Leader", s.id);
  s.votes.clear();
  s.progress.clear();
  s.syncProgress(nowMs);
  s.lastHeartbeatMs = nowMs;
  s.lastQuorumCheckMs = nowMs;
  for (const peer of s.progress.keys()) sendAppend(s, peer, true);
}

/** Entries the host has written locally (not yet synced), in seqno order. */
export function replicate(s: RaftState, entries: readonly RaftEntry[], nowMs: number): void {
  assert(s.role === "Leader", "only a leader replicates");
  for (const e of entries) {
    assert(e.view === s.view, `a leader appends in its own view (${e.view})`);
    s.log.append(e);
  }
  s.hostLast = s.log.last;
  if (entries.some((e) => e.configuration !== undefined)) {
    s.syncProgress(nowMs, s.timings.newNodeGraceMs);
  }
  for (const peer of s.progress.keys()) sendAppend(s, peer, false);
  maybeCommit(s, nowMs);
}

export function tickLeader(s: RaftState, nowMs: number): void {
  if (nowMs - s.lastQuorumCheckMs >= s.timings.electionMs) {
    s.lastQuorumCheckMs = nowMs;
    const since = nowMs - s.timings.electionMs;
    const alive = (id: NodeId): boolean =>
      id === s.id || (s.progress.get(id)?.lastAckMs ?? -Infinity) >= since;
    if (!hasQuorumInEvery(s.activeConfigs(), alive)) {
      s.becomeFollower(s.view, null, nowMs);
      return;
    }
  }
  if (nowMs - s.lastHeartbeatMs >= s.timings.heartbeatMs) {
    s.lastHeartbeatMs = nowMs;
    for (const peer of s.progress.keys()) sendAppend(s, peer, true);
  }
}

/**
 * Sends `peer` what it lacks, in batches, up to the inflight bound; with `heartbeat`, sends
 * at least one (possibly empty) AppendEntries.
 */
function sendAppend(s: RaftState, peer: NodeId, heartbeat: boolean, maxMessages = Infinity) {
  const p = s.progress.get(peer);
  if (p === undefined) return;
  const t = s.timings;
  if (!heartbeat && t.holdUntilSignature && !worthSending(s, p.next)) return;
  let sent = false;
  let messages = 0;
  while (
    p.next <= s.log.last &&
    p.next - 1 - p.match < t.maxInflightEntries &&
    messages++ < maxMessages
  ) {
    const entries = s.log.slice(p.next, t.maxBatchEntries, t.maxBatchBytes);
    sendAppendEntries(s, peer, p.next - 1, entries);
    p.next += entries.length;
    sent = true;
  }
  if (heartbeat && !sent) sendAppendEntries(s, peer, Math.min(p.next - 1, s.log.last), []);
}

/**
 * With holdUntilSignature: whether entries from `next` on include a signature or a
 * configuration change, or fill a batch. Commit lands only on signatures, so entries after the
 * last one can wait for the next without delaying any commit.
 */
function worthSending(s: RaftState, next: number): boolean {
  const log = s.log;
  if (log.lastCommittable >= next) return true;
  if ((log.configurations().at(-1)?.seqno ?? 0) >= next) return true;
  return log.last - next + 1 >= s.timings.maxBatchEntries;
}

function sendAppendEntries(
  s: RaftState,
  peer: NodeId,
  prev: number,
  entries: readonly RaftEntry[],
): void {
  // Entries before this node's start snapshot are not in its log, so it cannot send them; a
  // peer that far behind must start from a snapshot (joiners fetch one: snapshot-fetch.ts).
  if (prev < s.log.baseSeqno) return;
  const message: AppendEntries = {
    type: "append_entries",
    view: s.view,
    prevSeqno: prev as Seqno,
    prevView: s.log.viewAt(prev),
    leaderCommit: s.commit,
    entries,
  };
  s.send(peer, message);
}

export function onAppendEntriesResponse(
  s: RaftState,
  from: NodeId,
  m: AppendEntriesResponse,
  nowMs: number,
): void {
  if (m.view > s.view) {
    s.becomeFollower(m.view, null, nowMs);
    return;
  }
  if (s.role !== "Leader" || m.view < s.view) return;
  const p = s.progress.get(from);
  if (p === undefined) return;
  p.lastAckMs = nowMs;
  if (m.success) {
    if (m.lastSeqno > p.match) p.match = Math.min(m.lastSeqno, s.log.last);
    if (p.next <= p.match) p.next = p.match + 1;
    maybeCommit(s, nowMs);
  } else {
    // A stale NACK (below what the peer already acknowledged) changes nothing (C2).
    if (m.lastSeqno < p.match) return;
    p.next = Math.min(p.next, m.lastSeqno + 1, s.log.last + 1);
    if (p.next <= p.match) p.next = p.match + 1;
    // Fix (found by src/sim): answer a NACK with one batch only, not a full inflight window.
    // With reordering, a window's later batches arrive before the first and each is NACKed;
    // when every NACK resent the whole window the message count grew exponentially.
    sendAppend(s, from, false, 1);
    return;
  }
  if (s.progress.has(from)) sendAppend(s, from, false);
}

/** Commits the highest signature of this view held by a majority of every configuration. */
export function maybeCommit(s: RaftState, nowMs: number): void {
  if (s.role !== "Leader") return;
  const signatures = s.log.signaturesIn(s.commit, s.log.last);
  for (let i = signatures.length - 1; i >= 0; i--) {
    const seqno = signatures[i]!;
    if (s.log.viewAt(seqno) !== s.view) break;
    const holds = (id: NodeId): boolean =>
      id === s.id ? s.persisted >= seqno : (s.progress.get(id)?.match ?? 0) >= seqno;
    if (hasQuorumInEvery(s.activeConfigs(), holds)) {
      s.setCommit(seqno as Seqno);
      afterLeaderCommit(s, nowMs);
      return;
    }
  }
}

function afterLeaderCommit(s: RaftState, nowMs: number): void {
  s.syncProgress(nowMs);
  if (s.membership !== "Retired") return;
  // Our removal committed: hand over to the most up-to-date node of the new configuration.
  const latest = s.activeConfigs().at(-1)!;
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const id of latest.nodes) {
    const match = s.progress.get(id)?.match ?? -1;
    if (match > bestMatch) [best, bestMatch] = [id, match];
  }
  for (const peer of s.progress.keys()) sendAppend(s, peer, true);
  if (best !== null) s.send(best, { type: "propose_request_vote", view: s.view });
  s.becomeFollower(s.view, null, nowMs);
}
