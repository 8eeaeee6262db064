/**
 * The follower's side of Raft (raft.ts): AppendEntries from the leader of the view. A follower
 * keeps what matches, rolls back a conflicting uncommitted suffix (never the committed prefix),
 * acknowledges only what will be durable, and follows the leader's commit up to the last
 * signature it holds. A joiner (role None) becomes a follower once its log holds a
 * configuration with it in it.
 *
 * Functions over RaftState; pure and synchronous.
 */
import type { RaftState } from "./raft-state.js";
import type { AppendEntries, AppendEntriesResponse, NodeId, Seqno } from "./types.js";

function reply(s: RaftState, to: NodeId, success: boolean, lastSeqno: number): void {
  const message: AppendEntriesResponse = {
    type: "append_entries_response",
    view: s.view,
    success,
    lastSeqno: lastSeqno as Seqno,
  };
  s.send(to, message);
}

export function onAppendEntries(s: RaftState, from: NodeId, m: AppendEntries, nowMs: number) {
  if (m.view < s.view) {
    reply(s, from, false, s.log.last); // tells a stale leader about the newer view
    return;
  }
  if (m.view > s.view || s.role !== "Follower" || s.leader !== from) {
    if (s.role === "Leader" && m.view === s.view) return; // impossible: one leader
    s.becomeFollower(m.view, from, nowMs);
  }
  s.leaderContactMs = nowMs;
  s.resetElectionTimer(nowMs);
  const log = s.log;
  if (m.prevSeqno > log.last) {
    reply(s, from, false, log.last);
    return;
  }
  if (m.prevSeqno >= log.baseSeqno && log.viewAt(m.prevSeqno) !== m.prevView) {
    const hint = log.lastAtOrBelowWithViewAtMost(m.prevSeqno - 1, m.prevView);
    reply(s, from, false, Math.max(hint, s.commit));
    return;
  }
  const matched = appendMatching(s, m);
  // Acks promise durability. Only signatures are committable, so entries are synced only
  // once a signature is among them: until then the ack claims just what is already durable.
  const willSync = log.lastSignatureAtOrBelow(matched) > s.persisted;
  reply(s, from, true, willSync ? matched : Math.min(matched, s.persisted));
  const commitTo = log.lastSignatureAtOrBelow(Math.min(m.leaderCommit, matched));
  if (commitTo > s.commit) s.setCommit(commitTo);
  if (s.role === "None" && s.isInSomeConfiguration()) s.setRole("Follower", from);
}

/**
 * Appends the entries of `m` after its (matching) prev entry, replacing a conflicting
 * uncommitted suffix; returns the last seqno that now matches the leader's log.
 */
function appendMatching(s: RaftState, m: AppendEntries): number {
  const log = s.log;
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
      if (e.seqno <= s.commit) break; // never rewrite the committed prefix
      s.rollback((e.seqno - 1) as Seqno);
    }
    log.append(e);
    matched = e.seqno;
  }
  return matched;
}
