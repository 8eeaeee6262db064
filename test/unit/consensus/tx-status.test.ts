/**
 * Transaction status on a node that started from a snapshot (ccf-compatibility.md §3.2): below
 * the snapshot's seqno the node has no log, and the snapshot's view history says which view each
 * seqno has. Found by the chaos run (docs/testing.md, seed 99): a write answered 200 by a
 * primary that was then killed was rolled back, yet every node that had joined from a later
 * snapshot reported its txId Committed. Oracle: the view history written by hand (CCF's own
 * example of view_history.cpp: views 1, 2, 3, 4 start at 1, 2, 5, 5; view 3 is empty).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../../src/base/prng.js";
import { RaftNode } from "../../../src/consensus/raft.js";
import type { NodeId, RaftTimings, Seqno, View } from "../../../src/consensus/types.js";

const TIMINGS: RaftTimings = {
  heartbeatMs: 30,
  electionMs: 300,
  maxBatchEntries: 16,
  maxBatchBytes: 1 << 20,
  maxInflightEntries: 64,
  newNodeGraceMs: 0,
  holdUntilSignature: false,
};

function fromSnapshot(viewHistory?: readonly Seqno[]): RaftNode {
  return new RaftNode({
    id: "n1" as NodeId,
    timings: TIMINGS,
    rng: new Prng(1),
    nowMs: 0,
    base: {
      seqno: 8 as Seqno,
      view: 4 as View,
      configuration: ["n0" as NodeId, "n1" as NodeId],
      ...(viewHistory !== undefined && { viewHistory }),
    },
    hardState: { view: 4 as View, votedFor: null },
    commitSeqno: 8 as Seqno,
  });
}

test("below its snapshot a node reports a txId of another view Invalid, not Committed", () => {
  const node = fromSnapshot([1, 2, 5, 5] as Seqno[]);
  assert.equal(node.status(1, 1), "Committed");
  assert.equal(node.status(2, 3), "Committed");
  assert.equal(node.status(4, 6), "Committed");
  assert.equal(node.status(4, 8), "Committed");
  // 2.6 and 3.6 were rolled back: seqno 6 is in view 4.
  assert.equal(node.status(2, 6), "Invalid");
  assert.equal(node.status(3, 6), "Invalid");
  // 4.3 never existed: view 4 starts at 5.
  assert.equal(node.status(4, 3), "Invalid");
});

test("without the view history before its base a node cannot tell, and says Committed", () => {
  assert.equal(fromSnapshot().status(3, 6), "Committed");
});
