// The ConsensusDriver (src/node/replication/consensus-driver.ts) over a real RaftNode, with
// every IO interface of driver-io.ts a recording fake: one shared list of calls shows the order
// of the Ready duties (roll back, append, sync, hard state, send, commit, advance, new role),
// and the frames the fake transport got are decoded with the real n2n codec.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../../../src/base/assert.js";
import { storageError } from "../../../../src/base/storage-error.js";
import type { TxId } from "../../../../src/base/ids.js";
import { RaftNode, type RaftOptions } from "../../../../src/consensus/raft.js";
import {
  DEFAULT_TIMINGS,
  type HardState,
  type NodeId,
  type RaftEntry,
  type RaftMessage,
  type Ready,
  type Seqno,
  type View,
} from "../../../../src/consensus/types.js";
import { ConsensusDriver } from "../../../../src/node/replication/consensus-driver.js";
import type {
  HardStateStore,
  LocalReplica,
  PeerDirectory,
  PeerTransport,
  TurnScheduler,
} from "../../../../src/node/replication/driver-io.js";
import { decodeN2n, encodeN2n } from "../../../../src/node/replication/n2n/messages.js";
import { ReplicationOutbox } from "../../../../src/node/replication/outbox.js";

const A = "a" as NodeId;
const B = "b" as NodeId;
const C = "c" as NodeId;
const V2 = 2 as View;
const V3 = 3 as View;

function entry(seqno: number, view: View, isSignature: boolean): RaftEntry {
  return { seqno: seqno as Seqno, view, isSignature, payload: Uint8Array.of(seqno, view) };
}

/** Seqno 1 (a plain entry) and 2 (its signature), both in view 2: a committed start. */
const GENESIS = [entry(1, V2, false), entry(2, V2, true)];

/** Records the inputs the driver gives Raft besides step (ticks, local entries, advance). */
class RecordingRaft extends RaftNode {
  constructor(
    private readonly calls: string[],
    options: RaftOptions,
  ) {
    super(options);
  }

  override tick(nowMs: number): void {
    this.calls.push("raft.tick");
    super.tick(nowMs);
  }

  override replicate(entries: readonly RaftEntry[], nowMs: number): void {
    this.calls.push(`raft.replicate ${entries.map((e) => e.seqno).join(",")}`);
    super.replicate(entries, nowMs);
  }

  override step(from: NodeId, message: RaftMessage, nowMs: number): void {
    this.calls.push(`raft.step ${from} ${message.type}`);
    super.step(from, message, nowMs);
  }

  override advance(ready: Ready, nowMs: number): void {
    this.calls.push("advance");
    super.advance(ready, nowMs);
  }

  override compactPayloads(seqno: Seqno): void {
    this.calls.push(`compact ${seqno}`);
    super.compactPayloads(seqno);
  }
}

class FakeReplica implements LocalReplica {
  lastSeqno: Seqno;
  /** What tick() does besides recording the call (e.g. a signature through the outbox). */
  onTick: () => void = () => undefined;
  /** Set by a test to give the replica a pump (TxPipeline.pump), which process() then runs. */
  pump?: (nowMs: number) => void;

  constructor(
    private readonly calls: string[],
    last: number,
  ) {
    this.lastSeqno = last as Seqno;
  }

  rollbackTo(seqno: Seqno): void {
    this.calls.push(`rollback ${seqno}`);
    this.lastSeqno = seqno;
  }

  appendReplicated(entries: readonly RaftEntry[]): void {
    this.calls.push(`append ${entries.map((e) => e.seqno).join(",")}`);
    this.lastSeqno = entries.at(-1)!.seqno;
  }

  syncLedger(): void {
    this.calls.push("sync");
  }

  commitTo(txId: TxId): void {
    this.calls.push(`commit ${txId.view}.${txId.seqno}`);
  }

  setView(view: View): void {
    this.calls.push(`view ${view}`);
  }

  emitSignature(): void {
    this.calls.push("sign");
  }

  tick(nowMs: number): void {
    this.calls.push(`tick ${nowMs}`);
    this.onTick();
  }
}

interface Sent {
  readonly peer: string;
  readonly bytes: Uint8Array;
}

class FakeIo implements PeerTransport, HardStateStore, PeerDirectory, TurnScheduler {
  readonly sent: Sent[] = [];
  readonly saved: HardState[] = [];
  readonly directory = new Map<string, string>();
  private deferred: (() => void)[] = [];

  constructor(private readonly calls: string[]) {}

  setPeer(peerId: string, address: string): void {
    this.calls.push(`peer ${peerId} ${address}`);
  }

  send(peerId: string, payload: Uint8Array): boolean {
    const m = decodeN2n(payload);
    this.calls.push(`send ${peerId} ${m.kind === "raft" ? m.message.type : m.kind}`);
    this.sent.push({ peer: peerId, bytes: payload });
    return true;
  }

  save(state: HardState): void {
    this.calls.push(`hard ${state.view}/${state.votedFor ?? "-"}`);
    this.saved.push(state);
  }

  addressOf(peer: NodeId): string | undefined {
    return this.directory.get(peer);
  }

  defer(task: () => void): void {
    this.deferred.push(task);
  }

  /** Ends the event-loop turn: runs what the driver deferred. */
  runDeferred(): number {
    const tasks = this.deferred;
    this.deferred = [];
    for (const task of tasks) task();
    return tasks.length;
  }
}

interface Rig {
  readonly calls: string[];
  readonly raft: RecordingRaft;
  readonly replica: FakeReplica;
  readonly io: FakeIo;
  readonly outbox: ReplicationOutbox;
  readonly driver: ConsensusDriver;
  readonly logs: string[];
  readonly clock: { now: number };
}

interface RigOptions {
  readonly id: NodeId;
  readonly members: readonly NodeId[];
  readonly entries?: readonly RaftEntry[];
  readonly view?: View;
  readonly startAsLeader?: boolean;
  readonly payloadWindow?: number;
}

/** A driver for `id` with the log `entries` (committed up to the last signature). */
function makeRig(o: RigOptions): Rig {
  const calls: string[] = [];
  const entries = o.entries ?? [];
  const committed = entries.filter((e) => e.isSignature).at(-1)?.seqno ?? 0;
  const raft = new RecordingRaft(calls, {
    id: o.id,
    timings: DEFAULT_TIMINGS,
    rng: { bytes: (n) => new Uint8Array(n), intBelow: () => 0 },
    nowMs: 0,
    base: { seqno: 0 as Seqno, view: 0 as View, configuration: o.members },
    entries,
    hardState: { view: o.view ?? V2, votedFor: null },
    commitSeqno: committed as Seqno,
    startAsLeader: o.startAsLeader ?? false,
  });
  const replica = new FakeReplica(calls, entries.length);
  const io = new FakeIo(calls);
  const outbox = new ReplicationOutbox();
  const clock = { now: 0 };
  const logs: string[] = [];
  const driver = new ConsensusDriver({
    raft,
    replica,
    outbox,
    transport: io,
    hardState: io,
    peers: io,
    scheduler: io,
    clock: { monotonicMs: () => clock.now },
    selfAddress: `${o.id}:1`,
    log: (line) => logs.push(line),
    onForward: (from, m) => calls.push(`forward ${from} ${m.kind}`),
    onRoleChange: (role, view, leader) => calls.push(`role ${role} ${view} ${leader ?? "-"}`),
    onCommit: (seqno) => calls.push(`onCommit ${seqno}`),
    ...(o.payloadWindow === undefined ? {} : { payloadWindow: o.payloadWindow }),
  });
  return { calls, raft, replica, io, outbox, driver, logs, clock };
}

/** Carries out the Readies pending since construction, then forgets the calls so far. */
function settled(rig: Rig): Rig {
  rig.driver.process();
  rig.io.runDeferred();
  rig.calls.length = 0;
  rig.io.sent.length = 0;
  return rig;
}

function raftFrame(fromAddress: string, message: RaftMessage): Uint8Array {
  return encodeN2n({ kind: "raft", fromAddress, message });
}

/** A follower's acknowledgement of everything up to `seqno` in view 2. */
function successAck(seqno: number): RaftMessage {
  return { type: "append_entries_response", view: V2, success: true, lastSeqno: seqno as Seqno };
}

test("a follower's Ready duties run in contract order: rollback, append, sync, send, commit", () => {
  // b holds an unsigned entry 3 of view 2; the leader of view 3 replaces it with 3 and 4.
  const rig = settled(
    makeRig({ id: B, members: [A, B, C], entries: [...GENESIS, entry(3, V2, false)] }),
  );
  const append = raftFrame("a:1", {
    type: "append_entries",
    view: V3,
    prevSeqno: 2 as Seqno,
    prevView: V2,
    leaderCommit: 4 as Seqno,
    entries: [entry(3, V3, false), entry(4, V3, true)],
  });
  rig.driver.receive(A, append);
  assert.deepEqual(rig.calls, ["peer a a:1"], "nothing is stepped before the turn ends");
  assert.equal(rig.io.runDeferred(), 1);
  assert.deepEqual(rig.calls, [
    "peer a a:1",
    "raft.step a append_entries",
    "rollback 2",
    "append 3,4",
    "sync",
    "hard 3/-",
    "send a append_entries_response",
    "commit 3.4",
    "onCommit 4",
    "advance",
    "view 3",
    "role Follower 3 a",
  ]);
  // Two Readies: the start's (b's role), then this one.
  assert.deepEqual(rig.driver.stats, { received: 1, malformed: 0, sent: 1, readies: 2, syncs: 1 });
  const reply = decodeN2n(rig.io.sent[0]!.bytes);
  assert.equal(reply.fromAddress, "b:1");
  assert.deepEqual(reply.kind === "raft" && reply.message, {
    type: "append_entries_response",
    view: V3,
    success: true,
    lastSeqno: 4,
  });
});

test("a leader sends its AppendEntries before its own sync, encodes it once, then commits", () => {
  const rig = makeRig({ id: A, members: [A, B, C], entries: GENESIS, startAsLeader: true });
  rig.io.directory.set(B, "b:dir");
  rig.io.directory.set(C, "c:dir");
  rig.driver.process();
  // The new leader's first Ready: heartbeats, its view, and a signature at once.
  assert.deepEqual(rig.calls, [
    "peer b b:dir",
    "send b append_entries",
    "peer c c:dir",
    "send c append_entries",
    "advance",
    "view 2",
    "role Leader 2 a",
    "sign",
  ]);
  assert.equal(rig.io.sent[0]!.bytes, rig.io.sent[1]!.bytes, "one encoding for peers in step");
  settled(rig);

  // The pipeline wrote 3 and its signature 4: Raft takes them at once; the leader sends them
  // before its own sync (its messages promise nothing of its disk), so followers write meanwhile.
  rig.replica.lastSeqno = 4 as Seqno;
  rig.outbox.replicate([entry(3, V2, false), entry(4, V2, true)]);
  assert.deepEqual(rig.calls, ["raft.replicate 3,4"]);
  rig.io.runDeferred();
  assert.deepEqual(rig.calls, [
    "raft.replicate 3,4",
    "send b append_entries",
    "send c append_entries",
    "sync",
    "advance",
  ]);
  assert.equal(rig.io.sent[0]!.bytes, rig.io.sent[1]!.bytes);
  const m = decodeN2n(rig.io.sent[0]!.bytes);
  assert.deepEqual(
    m.kind === "raft" &&
      m.message.type === "append_entries" &&
      m.message.entries.map((e) => e.seqno),
    [3, 4],
  );

  // b acknowledges 4: a majority holds the signature, which commits.
  rig.calls.length = 0;
  const ack = successAck(4);
  rig.driver.receive(B, raftFrame("b:1", ack));
  rig.io.runDeferred();
  assert.deepEqual(rig.calls, [
    "peer b b:1",
    "raft.step b append_entries_response",
    "commit 2.4",
    "onCommit 4",
    "advance",
  ]);
});

test("a new leader signs at once, but not before genesis", () => {
  const empty = makeRig({ id: A, members: [A], startAsLeader: true });
  empty.driver.process();
  assert.deepEqual(empty.calls, ["advance", "view 2", "role Leader 2 a"]);
  const started = makeRig({ id: A, members: [A], entries: GENESIS, startAsLeader: true });
  started.driver.process();
  assert.deepEqual(started.calls, ["advance", "view 2", "role Leader 2 a", "sign"]);
});

test("malformed frames are dropped and counted; well-formed ones after them are processed", () => {
  const rig = settled(makeRig({ id: B, members: [A, B, C], entries: GENESIS }));
  rig.driver.receive(A, Uint8Array.of(0xff, 0x00, 0x13));
  const vote = { type: "request_vote_response", preVote: true, view: V2, granted: false } as const;
  rig.driver.receive(A, raftFrame("a:1", vote).subarray(0, 6)); // cut short
  assert.equal(rig.io.runDeferred(), 0, "nothing to process");
  assert.deepEqual(rig.calls, []);
  assert.equal(rig.driver.stats.malformed, 2);
  assert.equal(rig.driver.stats.received, 0);
  assert.equal(rig.logs.length, 2);
  assert.match(rig.logs[0]!, /dropped a malformed message from a/);
  rig.driver.receive(A, raftFrame("a:1", vote));
  rig.io.runDeferred();
  assert.equal(rig.driver.stats.received, 1);
  assert.deepEqual(rig.calls.slice(0, 2), ["peer a a:1", "raft.step a request_vote_response"]);
});

test("peer addresses are learnt from messages, and from the directory for peers not heard", () => {
  const rig = settled(makeRig({ id: B, members: [A, B, C], entries: GENESIS }));
  const vote = { type: "request_vote_response", preVote: true, view: V2, granted: false } as const;
  rig.driver.receive(A, raftFrame("a:1", vote));
  rig.driver.receive(A, raftFrame("a:1", vote));
  rig.driver.receive(A, raftFrame("a:2", vote));
  rig.io.runDeferred();
  assert.deepEqual(
    rig.calls.filter((c) => c.startsWith("peer")),
    ["peer a a:1", "peer a a:2"],
    "a known address is not set again; a moved peer is",
  );
  rig.calls.length = 0;
  // c never wrote to b: its address comes from the directory, once, before the first frame.
  rig.io.directory.set(C, "c:dir");
  const forward = { kind: "forward_response", fromAddress: "b:1", id: 1 } as const;
  const response = { status: 200, headers: {}, body: new Uint8Array(0) };
  assert.ok(rig.driver.sendTo(C, { ...forward, response }));
  assert.ok(rig.driver.sendTo(C, { ...forward, response }));
  assert.deepEqual(rig.calls, [
    "peer c c:dir",
    "send c forward_response",
    "send c forward_response",
  ]);
  // A peer in neither: nothing to tell the transport, which decides what to do with the frame.
  rig.calls.length = 0;
  rig.driver.sendTo("d" as NodeId, { ...forward, response });
  assert.deepEqual(rig.calls, ["send d forward_response"]);
  // Forwarded requests and answers go to the forwarder, not to Raft.
  rig.calls.length = 0;
  rig.driver.receive(
    C,
    encodeN2n({ kind: "forward_response", fromAddress: "c:1", id: 1, response }),
  );
  assert.deepEqual(rig.calls, ["peer c c:1", "forward c forward_response"]);
  assert.equal(rig.io.runDeferred(), 0);
});

test("payloads are compacted in steps of the window as commits advance", () => {
  const rig = settled(makeRig({ id: A, members: [A], startAsLeader: true, payloadWindow: 2 }));
  for (let s = 1; s <= 9; s++) {
    rig.replica.lastSeqno = s as Seqno;
    rig.outbox.replicate([entry(s, V2, true)]);
    rig.io.runDeferred();
  }
  assert.deepEqual(
    rig.calls.filter((c) => c.startsWith("commit ")),
    ["commit 2.1", "commit 2.2", "commit 2.3", "commit 2.4", "commit 2.5", "commit 2.6"].concat([
      "commit 2.7",
      "commit 2.8",
      "commit 2.9",
    ]),
  );
  // Twice the window past the last compaction, compact to one window behind the commit.
  assert.deepEqual(
    rig.calls.filter((c) => c.startsWith("compact")),
    ["compact 2", "compact 4", "compact 6"],
  );
  // Raft now holds payloads from 6 on; older ones would come from the (absent) reader.
  assert.deepEqual(rig.raft.log.entry(6).payload, entry(6, V2, true).payload);
  assert.throws(() => rig.raft.log.entry(5), /compacted/);
});

test("ticks: the replica first, its signature reaches Raft before Raft's own tick", () => {
  const rig = settled(makeRig({ id: A, members: [A], entries: GENESIS, startAsLeader: true }));
  rig.clock.now = 5;
  rig.replica.onTick = () => {
    rig.replica.lastSeqno = 3 as Seqno;
    rig.outbox.replicate([entry(3, V2, true)]);
  };
  rig.driver.tick();
  assert.deepEqual(rig.calls.slice(0, 5), [
    "tick 5",
    "raft.replicate 3",
    "raft.tick",
    "sync",
    "advance",
  ]);
  assert.ok(rig.calls.includes("commit 2.3"));
});

test("a write is never accepted once Raft no longer considers the node leader", () => {
  const rig = settled(
    makeRig({ id: A, members: [A, B, C], entries: GENESIS, startAsLeader: true }),
  );
  assert.equal(rig.outbox.canWrite(), true);
  // Entries written before a message arrives reach Raft before it is stepped.
  rig.replica.lastSeqno = 3 as Seqno;
  rig.outbox.replicate([entry(3, V2, false)]);
  const writable: boolean[] = [];
  const save = rig.io.save.bind(rig.io);
  rig.io.save = (state) => {
    writable.push(rig.outbox.canWrite());
    save(state);
  };
  const append = {
    type: "append_entries",
    view: V3,
    prevSeqno: 2 as Seqno,
    prevView: V2,
    leaderCommit: 2 as Seqno,
    entries: [],
  } as const;
  rig.driver.receive(B, raftFrame("b:1", append));
  rig.io.runDeferred();
  assert.deepEqual(rig.calls.slice(0, 5), [
    "raft.replicate 3",
    "peer b b:1",
    "raft.step b append_entries",
    "rollback 2",
    "sync",
  ]);
  assert.deepEqual(writable, [false], "the write flag dropped before the Ready's duties");
  assert.ok(rig.calls.includes("role Follower 3 b"));
  assert.ok(!rig.calls.includes("sign"));
  assert.throws(() => rig.outbox.replicate([entry(3, V3, false)]), AssertionError);
});

test("a failed ledger sync (StorageError) ends the Ready: no ack, no commit, no advance", () => {
  const fault = storageError(Object.assign(new Error("EIO: i/o error"), { code: "EIO" }), {
    path: "/ledger/ledger_3",
    operation: "fdatasync",
  });
  const failSync = (rig: Rig) => {
    rig.replica.syncLedger = () => {
      rig.calls.push("sync");
      throw fault;
    };
  };
  // A follower: the AppendEntries that would commit 4 is appended, but never acknowledged.
  const follower = settled(makeRig({ id: B, members: [A, B, C], entries: GENESIS }));
  failSync(follower);
  follower.driver.receive(
    A,
    raftFrame("a:1", {
      type: "append_entries",
      view: V2,
      prevSeqno: 2 as Seqno,
      prevView: V2,
      leaderCommit: 4 as Seqno,
      entries: [entry(3, V2, false), entry(4, V2, true)],
    }),
  );
  assert.throws(
    () => follower.io.runDeferred(),
    (e) => e === fault,
  );
  assert.deepEqual(follower.calls, [
    "peer a a:1",
    "raft.step a append_entries",
    "append 3,4",
    "sync",
  ]);
  // A leader: its entries left before its own sync (as if it crashed right after sending), but
  // it never advances, so its own copy never counts and it commits nothing.
  const leader = makeRig({ id: A, members: [A, B, C], entries: GENESIS, startAsLeader: true });
  settled(leader);
  failSync(leader);
  leader.replica.lastSeqno = 4 as Seqno;
  leader.outbox.replicate([entry(3, V2, false), entry(4, V2, true)]);
  assert.throws(
    () => leader.io.runDeferred(),
    (e) => e === fault,
  );
  assert.deepEqual(leader.calls, [
    "raft.replicate 3,4",
    "send b append_entries",
    "send c append_entries",
    "sync",
  ]);
  assert.equal(leader.raft.commitSeqno, 2);
});

test("after stop(), a message queued before it is never stepped: no append, sync or commit", () => {
  const rig = settled(makeRig({ id: B, members: [A, B, C], entries: GENESIS }));
  const append = raftFrame("a:1", {
    type: "append_entries",
    view: V3,
    prevSeqno: 2 as Seqno,
    prevView: V2,
    leaderCommit: 3 as Seqno,
    entries: [entry(3, V3, true)],
  });
  rig.driver.receive(A, append);
  rig.driver.stop();
  rig.driver.receive(A, append);
  rig.io.runDeferred();
  rig.driver.tick();
  rig.driver.process();
  assert.deepEqual(rig.calls, ["peer a a:1"]);
  assert.equal(rig.io.sent.length, 0);
});

test("a turn ends with the replica's pump; the signature it writes leaves in the same turn", () => {
  const rig = settled(
    makeRig({ id: A, members: [A, B, C], entries: GENESIS, startAsLeader: true }),
  );
  rig.replica.lastSeqno = 4 as Seqno;
  rig.outbox.replicate([entry(3, V2, false), entry(4, V2, true)]);
  rig.io.runDeferred();
  rig.calls.length = 0;
  // The pump signs only once 4 committed (as TxPipeline.pump does: one signature in flight).
  let unsigned = true;
  rig.replica.pump = () => {
    rig.calls.push("pump");
    if (!unsigned || rig.raft.commitSeqno < 4) return;
    unsigned = false;
    rig.replica.lastSeqno = 6 as Seqno;
    rig.outbox.replicate([entry(5, V2, false), entry(6, V2, true)]);
  };
  const ack = successAck(4);
  rig.driver.receive(B, raftFrame("b:1", ack));
  rig.io.runDeferred();
  assert.deepEqual(rig.calls, [
    "peer b b:1",
    "raft.step b append_entries_response",
    "commit 2.4",
    "onCommit 4",
    "advance",
    "pump",
    "raft.replicate 5,6",
    "send b append_entries",
    "send c append_entries",
    "sync",
    "advance",
  ]);
});
