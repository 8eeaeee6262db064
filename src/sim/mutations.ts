/**
 * Deliberately broken consensus, for proving that the simulator's checks catch real bugs (a
 * mutation test: test/unit/consensus/simulation.test.ts runs each mutation and expects a
 * violation). A mutated run's hosts rewrite the Raft messages their nodes send, as a node with
 * the bug would have sent them; the node code itself is untouched, so nothing here can leak
 * into a real node.
 *
 * Mutations:
 * - "ack-unheld-entries": a follower acknowledges more than it holds (a positive
 *   AppendEntriesResponse claims ACK_EXCESS_ENTRIES more), so a leader counts copies that do not
 *   exist and commits entries a majority does not hold; a later leader lacks them.
 * - "grant-every-vote": a node grants every vote and pre-vote it is asked for, whatever its
 *   log and its vote in that view, so two candidates can win the same view.
 *
 * Owns no state. Invariant: a run without a mutation sends exactly the bytes its drivers encode.
 */
import { assertNever } from "../base/assert.js";
import type { RaftMessage, Seqno } from "../consensus/types.js";
import { decodeN2n, encodeN2n } from "../node/replication/n2n/messages.js";

export type SimMutation = "ack-unheld-entries" | "grant-every-vote";

export const SIM_MUTATIONS: readonly SimMutation[] = ["ack-unheld-entries", "grant-every-vote"];

/** How many entries beyond what it holds a follower with "ack-unheld-entries" acknowledges. */
const ACK_EXCESS_ENTRIES = 8;

/** The frame a node with `mutation` sends instead of `payload` (its node's encoded message). */
export function mutateFrame(mutation: SimMutation, payload: Uint8Array): Uint8Array {
  const m = decodeN2n(payload);
  if (m.kind !== "raft") return payload;
  const changed = mutateMessage(mutation, m.message);
  return changed === m.message ? payload : encodeN2n({ ...m, message: changed });
}

function mutateMessage(mutation: SimMutation, m: RaftMessage): RaftMessage {
  switch (mutation) {
    case "ack-unheld-entries":
      if (m.type !== "append_entries_response" || !m.success) return m;
      return { ...m, lastSeqno: (m.lastSeqno + ACK_EXCESS_ENTRIES) as Seqno };
    case "grant-every-vote":
      if (m.type !== "request_vote_response" || m.granted) return m;
      return { ...m, granted: true };
    default:
      return assertNever(mutation, "mutation");
  }
}
