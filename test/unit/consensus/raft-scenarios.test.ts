// Scripted, deterministic Raft scenarios (items B, C, D and E of reliability-checklist.md):
// RaftNodes driven directly, with specific messages delivered and others dropped, one test per
// checklist item (its id in the test name).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Prng } from "../../../src/base/prng.js";
import { RaftNode } from "../../../src/consensus/raft.js";
import type {
  Envelope,
  NodeId,
  RaftEntry,
  RaftTimings,
  Seqno,
  View,
} from "../../../src/consensus/types.js";

const TIMINGS: RaftTimings = {
  heartbeatMs: 30,
  electionMs: 300,
  maxBatchEntries: 16,
  maxBatchBytes: 1 << 20,
  maxInflightEntries: 64,
  newNodeGraceMs: 0,
  holdUntilSignature: false,
};

const id = (n: number): NodeId => `n${n}` as NodeId;
type Filter = (e: Envelope) => boolean;
const all: Filter = () => true;

function genesis(members: readonly NodeId[]): RaftEntry[] {
  return [
    {
      seqno: 1 as Seqno,
      view: 2 as View,
      isSignature: false,
      payload: new Uint8Array(1),
      configuration: [...members],
    },
    { seqno: 2 as Seqno, view: 2 as View, isSignature: true, payload: new Uint8Array(2) },
  ];
}

/** n0..n{count-1}; the first `members` start with the genesis entries, n0 as leader if asked. */
class Cluster {
  readonly nodes: RaftNode[] = [];
  pool: Envelope[] = [];
  now = 0;
  /** Every (view, leader) seen, to check at most one leader per view. */
  readonly leaders = new Map<number, NodeId>();

  constructor(
    count: number,
    members: number,
    o: { leader?: boolean; extra?: RaftEntry[][]; timings?: RaftTimings } = {},
  ) {
    const ids = Array.from({ length: members }, (_, i) => id(i));
    for (let i = 0; i < count; i++) {
      const member = i < members;
      this.nodes.push(
        new RaftNode({
          id: id(i),
          timings: o.timings ?? TIMINGS,
          rng: new Prng(100 + i),
          nowMs: 0,
          base: { seqno: 0 as Seqno, view: 0 as View, configuration: [] },
          entries: member ? [...genesis(ids), ...(o.extra?.[i] ?? [])] : [],
          hardState: { view: (member ? 2 : 0) as View, votedFor: null },
          commitSeqno: (member ? 2 : 0) as Seqno,
          startAsLeader: o.leader === true && i === 0,
        }),
      );
    }
    for (const n of this.nodes) this.drain(n);
  }

  node(i: number): RaftNode {
    return this.nodes[i]!;
  }

  drain(n: RaftNode): void {
    while (n.hasReady()) {
      const r = n.ready();
      this.pool.push(...r.messages);
      n.advance(r, this.now);
      if (n.isLeader) {
        const known = this.leaders.get(n.view);
        assert.ok(known === undefined || known === n.id, `two leaders in view ${n.view}`);
        this.leaders.set(n.view, n.id);
      }
    }
  }

  /** Delivers pool messages passing `pass` (dropping the rest) until the pool is empty. */
  deliver(pass: Filter = all, rounds = 50): void {
    for (let r = 0; r < rounds && this.pool.length > 0; r++) {
      const batch = this.pool;
      this.pool = [];
      for (const e of batch) {
        if (!pass(e)) continue;
        const to = this.nodes[Number(e.to.slice(1))]!;
        to.step(e.from, e.message, this.now);
        this.drain(to);
      }
    }
  }

  /** Advances time in 10 ms ticks, delivering what `pass` lets through after each tick. */
  run(ms: number, pass: Filter = all, alive: (n: RaftNode) => boolean = () => true): void {
    for (let t = 0; t < ms; t += 10) {
      this.now += 10;
      for (const n of this.nodes) {
        if (!alive(n)) continue;
        n.tick(this.now);
        this.drain(n);
      }
      this.deliver((e) => pass(e) && alive(this.nodes[Number(e.to.slice(1))]!));
    }
  }

  /** A leader write of the next entry. */
  write(i: number, isSignature: boolean, configuration?: NodeId[]): RaftEntry {
    const n = this.node(i);
    const e: RaftEntry = {
      seqno: (n.lastSeqno + 1) as Seqno,
      view: n.view,
      isSignature,
      payload: Uint8Array.of(isSignature ? 2 : 1),
      ...(configuration !== undefined ? { configuration } : {}),
    };
    n.replicate([e], this.now);
    this.drain(n);
    return e;
  }

  leadersNow(): RaftNode[] {
    return this.nodes.filter((n) => n.isLeader);
  }
}

/** Messages between nodes of the same side of a partition. */
const within =
  (side: readonly number[]): Filter =>
  (e) =>
    side.includes(Number(e.from.slice(1))) === side.includes(Number(e.to.slice(1)));

const propose = (view: number) => ({ type: "propose_request_vote" as const, view: view as View });

test("B3: competing candidates split the vote, then a later election resolves it", () => {
  const c = new Cluster(4, 4);
  // n1 and n2 start elections in view 3 at once; n0 votes for n1, n3 for n2: 2 of 4 each.
  c.node(1).step(id(0), propose(2), c.now);
  c.node(2).step(id(0), propose(2), c.now);
  c.drain(c.node(1));
  c.drain(c.node(2));
  c.deliver((e) => {
    if (e.message.type !== "request_vote") return true;
    return (e.from === id(1) && e.to === id(0)) || (e.from === id(2) && e.to === id(3));
  });
  assert.equal(c.node(1).role, "Candidate");
  assert.equal(c.node(2).role, "Candidate");
  assert.equal(c.leadersNow().length, 0, "a split vote elects nobody");
  c.run(3000);
  const leaders = c.leadersNow();
  assert.equal(leaders.length, 1);
  assert.ok(leaders[0]!.view > 3, `resolved in a later view (${leaders[0]!.view})`);
  for (const n of c.nodes) assert.equal(n.leader, leaders[0]!.id);
});

test("B4: pre-vote stops a partitioned node from raising views and disrupting the leader", () => {
  const c = new Cluster(3, 3, { leader: true });
  c.run(200);
  c.run(3000, within([0, 1])); // n2 cut off for ten election timeouts
  assert.equal(c.node(2).view, 2, "pre-votes never raise the view");
  assert.ok(["PreVoteCandidate", "Follower"].includes(c.node(2).role));
  c.run(500); // heal
  assert.equal(c.node(0).role, "Leader");
  assert.equal(c.node(0).view, 2, "the leader was not disrupted");
  assert.equal(c.node(2).leader, id(0));
});

test("B5: CheckQuorum: a leader cut off from a majority steps down", () => {
  const c = new Cluster(3, 3, { leader: true });
  c.run(100);
  c.run(TIMINGS.electionMs * 2 + 50, within([1, 2]), (n) => n.id !== id(0));
  // n0 is isolated (it ticks alone, nothing reaches it): within one more timeout it steps down.
  for (let t = 0; t < TIMINGS.electionMs * 2; t += 10) {
    c.now += 10;
    c.node(0).tick(c.now);
    c.drain(c.node(0));
  }
  assert.notEqual(c.node(0).role, "Leader");
});

test("B6: a candidate with a longer unsigned suffix loses to one with a later signature", () => {
  const unsigned = [3, 4, 5].map((s) => ({
    seqno: s as Seqno,
    view: 2 as View,
    isSignature: false,
    payload: Uint8Array.of(9),
  }));
  const signed = [
    { seqno: 3 as Seqno, view: 2 as View, isSignature: true, payload: Uint8Array.of(8) },
  ];
  const c = new Cluster(3, 3, { extra: [[], unsigned, signed] });
  const n0Down: Filter = (e) => e.to !== id(0) && e.from !== id(0);
  c.node(1).step(id(0), propose(2), c.now);
  c.drain(c.node(1));
  c.deliver(n0Down);
  assert.notEqual(c.node(1).role, "Leader", "n2 refuses n1: its last signature is later");
  c.node(2).step(id(0), propose(c.node(2).view), c.now);
  c.drain(c.node(2));
  c.deliver(n0Down);
  assert.equal(c.node(2).role, "Leader");
  c.run(100, n0Down, (n) => n.id !== id(0));
  assert.equal(c.node(1).lastSeqno, c.node(2).lastSeqno, "n1's unsigned suffix was replaced");
  assert.ok(c.node(1).status(2, 5) !== "Pending");
});

test("C2: a stale NACK delivered late does not roll the leader's progress back", () => {
  const c = new Cluster(3, 3, { leader: true });
  c.run(50);
  const stale: Envelope = {
    from: id(1),
    to: id(0),
    message: {
      type: "append_entries_response",
      view: 2 as View,
      success: false,
      lastSeqno: 2 as Seqno,
    },
  };
  for (let i = 0; i < 5; i++) c.write(0, i % 2 === 1);
  c.deliver();
  const match = c.node(0).details(c.now).acks[id(1)]!.match;
  assert.ok(match >= 6, `n1 acknowledged ${match}`);
  const commit = c.node(0).commitSeqno;
  c.node(0).step(stale.from, stale.message, c.now);
  c.drain(c.node(0));
  assert.equal(c.node(0).details(c.now).acks[id(1)]!.match, match);
  for (const e of c.pool) {
    if (e.message.type === "append_entries") assert.ok(e.message.prevSeqno >= match);
  }
  c.run(100);
  assert.equal(c.node(0).commitSeqno, commit);
  assert.equal(c.node(1).commitSeqno, commit, "n1 kept and committed what it acknowledged");
});

test("D1: primary + f partition: the leader stays and commits, the minority makes no progress", () => {
  const c = new Cluster(5, 5, { leader: true });
  c.run(100);
  const side = within([0, 1, 2]);
  const before = { view: c.node(3).view, commit: c.node(3).commitSeqno };
  for (let i = 0; i < 10; i++) {
    c.write(0, i % 3 === 2);
    c.run(100, side);
  }
  c.run(2000, side);
  assert.equal(c.node(0).role, "Leader");
  assert.ok(c.node(0).commitSeqno > before.commit, "the majority side commits");
  for (const i of [3, 4]) {
    assert.equal(c.node(i).view, before.view, "the minority's view does not move");
    assert.equal(c.node(i).commitSeqno, before.commit, "the minority commits nothing");
    assert.notEqual(c.node(i).role, "Leader");
  }
});

test("E4: an election rolls back an unsigned reconfiguration", () => {
  const c = new Cluster(4, 3, { leader: true });
  c.run(50);
  const config = c.write(0, false, [id(0), id(1), id(2), id(3)]);
  c.deliver((e) => e.to === id(1) || e.from === id(1)); // only n1 gets it
  assert.equal(c.node(1).lastSeqno, config.seqno);
  assert.equal(c.node(1).log.configurations().length, 3);
  // n0 and n3 are gone; n2 (without the configuration) wins: n1 cannot, it needs 3 of 4 in
  // [n0..n3] and only n1 and n2 answer.
  const down = [id(0), id(3)];
  const alive: Filter = (e) => !down.includes(e.to) && !down.includes(e.from);
  c.node(1).step(id(0), propose(2), c.now);
  c.drain(c.node(1));
  c.deliver(alive);
  assert.notEqual(c.node(1).role, "Leader");
  c.run(3000, alive, (n) => !down.includes(n.id));
  const leader = c.leadersNow().find((n) => n.id !== id(0))!;
  assert.ok(leader !== undefined && leader.id === id(2), "n2 leads");
  assert.equal(c.node(1).log.configurations().length, 2, "the unsigned configuration is gone");
  assert.ok(c.node(1).lastSeqno < config.seqno || c.node(1).log.viewAt(config.seqno) > 2);
});

test("E2: retiring the leader hands over via propose_request_vote; the successor rolls back its unsigned suffix", () => {
  const c = new Cluster(4, 4, { leader: true });
  c.run(100);
  c.write(0, false, [id(1), id(2), id(3)]);
  const signature = c.write(0, true);
  const unsigned = c.write(0, false); // after the signature; only n1 will get it
  const pass: Filter = (e) => {
    if (e.message.type !== "append_entries" || e.to === id(1)) return true;
    if (e.to === id(3)) return e.message.entries.length === 0;
    return !e.message.entries.some((x) => x.seqno === unsigned.seqno);
  };
  c.deliver(pass);
  assert.ok(c.node(0).commitSeqno >= signature.seqno, "the removal committed");
  assert.equal(c.node(0).membership, "Retired");
  assert.notEqual(c.node(0).role, "Leader", "the retired leader stepped down");
  const leader = c.leadersNow()[0]!;
  assert.equal(leader.id, id(1), "the most up-to-date successor was nominated and won at once");
  assert.equal(leader.view, 3, "elected in the next view, without waiting for a timeout");
  assert.equal(leader.lastSeqno, signature.seqno, "its unsigned suffix was rolled back");
  c.run(1000, pass);
  assert.equal(c.leadersNow().length, 1);
  assert.equal(c.node(0).role === "Leader", false, "the retired node never campaigns again");
});

test("E2: while a reconfiguration is pending, commit needs a majority of both configurations", () => {
  const c = new Cluster(5, 3, { leader: true });
  c.run(50);
  c.write(0, false, [id(0), id(3), id(4)]); // swap n1, n2 for n3, n4
  const signature = c.write(0, true);
  const oldOnly: Filter = (e) => ![e.from, e.to].some((x) => x === id(3) || x === id(4));
  c.run(300, oldOnly);
  assert.ok(c.node(0).commitSeqno < signature.seqno, "the old majority alone does not commit");
  c.run(500, (e) => oldOnly(e) || e.from === id(3) || e.to === id(3));
  assert.ok(c.node(0).commitSeqno >= signature.seqno, "with n3 the new majority commits it");
});

test("a one-node leader that adds a node not up yet keeps leading for newNodeGraceMs", () => {
  for (const grace of [0, 1000]) {
    const c = new Cluster(2, 1, { leader: true, timings: { ...TIMINGS, newNodeGraceMs: grace } });
    c.write(0, false, [id(0), id(1)]);
    c.write(0, true);
    // n1 (still loading its snapshot) answers nothing for over two election timeouts.
    c.run(700, all, (n) => n.id !== id(1));
    assert.equal(c.node(0).isLeader, grace > 0, `grace ${grace}`);
    if (grace === 0) continue;
    // Once it answers, the configuration's quorum is real; past the grace the leader stays.
    c.run(1500);
    assert.ok(c.node(0).isLeader);
    assert.equal(c.node(1).leader, id(0));
  }
});

test("a removed node that never heard of its removal cannot disturb the network it left", () => {
  // The node-to-node channel admits an endorsed node the nodes table no longer lists (its row
  // deleted), so consensus alone must keep such a node out: votes and pre-votes go only to
  // candidates of the voter's active configurations, and an older view is refused.
  const c = new Cluster(4, 4, { leader: true });
  c.run(100);
  const toN3: Filter = (e) => e.to !== id(3); // from here n3 hears nothing; it still talks
  c.write(0, false, [id(0), id(1), id(2)]); // remove n3
  const signature = c.write(0, true);
  c.deliver(toN3);
  assert.ok(c.node(0).commitSeqno >= signature.seqno, "the removal committed");
  assert.equal(c.node(3).membership, "Active", "n3 never learnt of it");
  const n3Sent: string[] = [];
  c.run(3000, (e) => {
    if (e.from === id(3)) n3Sent.push(e.message.type);
    return toN3(e);
  });
  assert.ok(n3Sent.includes("request_vote"), "n3 kept asking for (pre-)votes");
  assert.equal(c.node(0).role, "Leader");
  assert.equal(c.node(0).view, 2, "the leader was never deposed");
  for (const i of [1, 2]) assert.equal(c.node(i).leader, id(0));
  assert.ok(["PreVoteCandidate", "Follower"].includes(c.node(3).role), c.node(3).role);
  // A stale AppendEntries of n3's (as if it had led an old view) changes nobody's leader.
  c.run(500); // n3 may hear again: the leader no longer sends to it
  const stale = {
    type: "append_entries" as const,
    view: 1 as View,
    prevSeqno: 0 as Seqno,
    prevView: 0 as View,
    leaderCommit: 0 as Seqno,
    entries: [],
  };
  c.node(1).step(id(3), stale, c.now);
  c.drain(c.node(1));
  c.deliver();
  assert.equal(c.node(1).leader, id(0));
  assert.equal(c.node(0).role, "Leader");
  assert.equal(c.node(0).view, 2);
});

test("a removed node with an up-to-date log that campaigns at once cannot win once its removal committed", () => {
  const c = new Cluster(4, 4, { leader: true });
  c.run(100);
  c.write(0, false, [id(0), id(1), id(2)]); // remove n3
  const signature = c.write(0, true);
  c.deliver(); // n3 holds the entries, but not the commit that follows
  const toN3: Filter = (e) => e.to !== id(3);
  c.run(100, toN3);
  assert.ok(c.node(1).commitSeqno >= signature.seqno && c.node(2).commitSeqno >= signature.seqno);
  assert.ok(c.node(3).commitSeqno < signature.seqno, "n3 never learnt its removal committed");
  assert.equal(c.node(3).lastSeqno, signature.seqno, "n3's log is as up to date as any");
  // The leader dies; n3 campaigns before anyone else, skipping pre-vote (worst case).
  const alive = (n: RaftNode): boolean => n.id !== id(0);
  c.node(3).step(id(0), propose(c.node(3).view), c.now);
  c.drain(c.node(3));
  assert.equal(c.node(3).role, "Candidate");
  c.run(3000, (e) => e.from !== id(0), alive);
  assert.notEqual(c.node(3).role, "Leader");
  assert.equal([...c.leaders.values()].includes(id(3)), false, "n3 never led a view");
  const leader = c.leadersNow().filter(alive);
  assert.equal(leader.length, 1);
  assert.ok([id(1), id(2)].includes(leader[0]!.id));
});

test("a snapshot joiner whose snapshot predates a newer node votes for it and follows it", () => {
  // n0 leads [n0]; n1 joins; n2 starts from a snapshot of [n0] (before n1 joined) and is
  // trusted, but hears nothing before n0 dies. [n0, n1, n2] needs n2's vote for n1: a node
  // n2 never saw in a configuration is not known to be gone, so n2 must not refuse it.
  const c = new Cluster(3, 1, { leader: true });
  c.write(0, false, [id(0), id(1)]);
  c.write(0, true);
  c.run(100, (e) => e.to !== id(2));
  c.nodes[2] = new RaftNode({
    id: id(2),
    timings: TIMINGS,
    rng: new Prng(102),
    nowMs: c.now,
    base: { seqno: 2 as Seqno, view: 2 as View, configuration: [id(0)] },
    entries: [],
    hardState: { view: 2 as View, votedFor: null },
    commitSeqno: 2 as Seqno,
  });
  c.drain(c.node(2));
  c.write(0, false, [id(0), id(1), id(2)]);
  const signature = c.write(0, true);
  c.run(100, (e) => e.to !== id(2) && e.from !== id(2));
  assert.ok(c.node(1).commitSeqno >= signature.seqno, "n1 knows n2's configuration committed");
  const alive = (n: RaftNode): boolean => n.id !== id(0);
  c.run(5000, (e) => e.from !== id(0), alive);
  const leader = c.leadersNow().filter(alive);
  assert.equal(leader.length, 1, "a leader among n1 and n2");
  assert.equal(leader[0]!.id, id(1));
  assert.equal(c.node(2).role, "Follower");
  assert.equal(c.node(2).leader, id(1));
  assert.equal(c.node(2).lastSeqno, c.node(1).lastSeqno, "n2 caught up from the new leader");
});

/** AppendEntries in the pool that carry entries, as [to, first seqno, last seqno]. */
function appendsInPool(c: Cluster): [string, number, number][] {
  const out: [string, number, number][] = [];
  for (const e of c.pool) {
    if (e.message.type !== "append_entries" || e.message.entries.length === 0) continue;
    const entries = e.message.entries;
    out.push([e.to, entries[0]!.seqno, entries.at(-1)!.seqno]);
  }
  return out;
}

test("holdUntilSignature: unsigned entries leave with the next signature, in one message", () => {
  const c = new Cluster(3, 3, { leader: true, timings: { ...TIMINGS, holdUntilSignature: true } });
  c.deliver();
  for (let i = 0; i < 3; i++) c.write(0, false);
  assert.deepEqual(appendsInPool(c), [], "nothing is sent before a signature");
  c.write(0, true);
  assert.deepEqual(appendsInPool(c), [
    ["n1", 3, 6],
    ["n2", 3, 6],
  ]);
  c.deliver();
  assert.equal(c.node(0).commitSeqno, 6, "the signature commits");
  // An acknowledgement does not release entries written since.
  c.write(0, false);
  c.deliver();
  assert.equal(c.node(1).lastSeqno, 6);
  // A heartbeat carries them.
  c.run(TIMINGS.heartbeatMs + 10);
  assert.equal(c.node(1).lastSeqno, 7);
});

test("holdUntilSignature: a full batch, a configuration or a NACK's repair is sent at once", () => {
  const c = new Cluster(3, 3, { leader: true, timings: { ...TIMINGS, holdUntilSignature: true } });
  c.deliver();
  for (let i = 0; i < TIMINGS.maxBatchEntries - 1; i++) c.write(0, false);
  assert.deepEqual(appendsInPool(c), []);
  c.write(0, false);
  const full = appendsInPool(c);
  assert.deepEqual(full, [
    ["n1", 3, 2 + TIMINGS.maxBatchEntries],
    ["n2", 3, 2 + TIMINGS.maxBatchEntries],
  ]);
  c.deliver();
  const last = c.node(0).lastSeqno;
  c.write(0, false, [id(0), id(1), id(2)]);
  assert.deepEqual(appendsInPool(c), [
    ["n1", last + 1, last + 1],
    ["n2", last + 1, last + 1],
  ]);
  // n2 misses the next signature round; its NACK of the one after is answered at once.
  c.write(0, true);
  c.deliver((e) => e.to !== id(2) && e.from !== id(2));
  const behind = c.node(2).lastSeqno;
  c.write(0, true);
  c.deliver();
  assert.equal(c.node(2).lastSeqno, c.node(0).lastSeqno, `n2 caught up from ${behind}`);
});
