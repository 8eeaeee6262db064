/**
 * The node loop's consensus duties: it feeds the Raft core (src/consensus/raft.ts) with ticks,
 * peer messages and the primary's new entries, and carries out each Ready in the order the
 * contract requires:
 *
 *   1. roll back  the local replica past the point Raft kept;
 *   2. append     entries from the primary;
 *   3. sync       the replica's ledger, when Ready.mustSync, and save the hard state;
 *   4. send       messages, only now (a follower's ack promises durability). A leader whose
 *                 Ready carries no hard state sends before it syncs: its AppendEntries promise
 *                 nothing of its own disk (Raft §10.2.1), and Raft counts its own entries
 *                 toward a majority only at advance(), after the sync; so the followers write
 *                 while the leader does;
 *   5. commit     the replica up to Ready.commitSeqno (ledger chunks .committed, receipts);
 *   6. advance,   then react to a new role (a new primary signs at once).
 *
 * All IO goes through the narrow interfaces of driver-io.ts, so the same driver runs in a node
 * (TxPipeline, NodeChannels, the nodes table, a hard state file, the event loop, SystemClock)
 * and in the simulator (src/sim), which checks this code rather than a copy of its duties.
 *
 * Owns: the peer addresses it told the transport, the queue of received messages, and the
 * write flag of the ReplicationOutbox. Messages are processed in batches, once per event-loop
 * turn, so many acks cost one Ready and one sync.
 *
 * A replicated node's pipeline never commits by itself: it hands entries to the outbox, and
 * commits when this driver says so.
 */
import type { NodeId, Seqno, View } from "../../base/ids.js";
import type { RaftNode } from "../../consensus/raft.js";
import { PAYLOAD_WINDOW } from "../../consensus/raft-log.js";
import type { Envelope, RaftMessage, Ready, Role } from "../../consensus/types.js";
import type {
  HardStateStore,
  LocalReplica,
  MonotonicClock,
  PeerDirectory,
  PeerTransport,
  TurnScheduler,
} from "./driver-io.js";
import { decodeN2n, encodeN2n, type N2nMessage } from "./n2n/messages.js";
import type { ReplicationOutbox } from "./outbox.js";
import type { RoundTrace } from "./round-trace.js";

export interface ConsensusDriverDeps {
  readonly raft: RaftNode;
  /** The local state Raft's decisions are applied to (the pipeline). */
  readonly replica: LocalReplica;
  /** Where the replica's own entries wait for Raft; the driver keeps its write flag. */
  readonly outbox: ReplicationOutbox;
  readonly transport: PeerTransport;
  readonly hardState: HardStateStore;
  /** Addresses of peers not heard from yet (the nodes table). */
  readonly peers: PeerDirectory;
  readonly scheduler: TurnScheduler;
  readonly clock: MonotonicClock;
  /** This node's published node-to-node address ("host:port"), sent with every message. */
  readonly selfAddress: string;
  readonly log: (line: string) => void;
  /** Forwarded requests and their answers travel on the same channels. */
  readonly onForward: (from: NodeId, message: N2nMessage) => void;
  readonly onRoleChange?: (role: Role, view: View, leader: NodeId | null) => void;
  readonly onCommit?: (seqno: Seqno) => void;
  /** Payloads of the newest this many seqnos stay in Raft's memory (default PAYLOAD_WINDOW). */
  readonly payloadWindow?: number;
  /** Timestamps of each round's events (round-trace.ts), when asked for. */
  readonly trace?: RoundTrace | undefined;
}

export interface ConsensusDriverStats {
  received: number;
  malformed: number;
  sent: number;
  readies: number;
  syncs: number;
}

export class ConsensusDriver {
  private readonly d: ConsensusDriverDeps;
  private readonly payloadWindow: number;
  private inbox: { from: NodeId; message: RaftMessage }[] = [];
  private scheduled = false;
  private processing = false;
  /** Set by stop(): nothing more is stepped or carried out. */
  private stopped = false;
  private readonly peerAddresses = new Map<string, string>();
  private compactedTo = 0;
  readonly stats: ConsensusDriverStats = {
    received: 0,
    malformed: 0,
    sent: 0,
    readies: 0,
    syncs: 0,
  };

  constructor(deps: ConsensusDriverDeps) {
    this.d = deps;
    this.payloadWindow = deps.payloadWindow ?? PAYLOAD_WINDOW;
    // Local entries reach Raft as soon as the replica writes them, as one batch.
    deps.outbox.listen(() => {
      this.handOver();
      this.schedule();
    });
    this.syncWritable();
  }

  get raft(): RaftNode {
    return this.d.raft;
  }

  // Inputs ---------------------------------------------------------------------------------

  /** One frame from a peer's channel. Malformed messages are dropped and counted. */
  receive(from: string, payload: Uint8Array): void {
    let message: N2nMessage;
    try {
      message = decodeN2n(payload);
    } catch (e) {
      this.stats.malformed++;
      this.d.log(`dropped a malformed message from ${from.slice(0, 12)}: ${String(e)}`);
      return;
    }
    this.stats.received++;
    if (this.stopped) return;
    this.learnAddress(from, message.fromAddress);
    if (message.kind !== "raft") {
      this.d.onForward(from as NodeId, message);
      return;
    }
    if (this.d.trace !== undefined) traceMessage(this.d.trace, "recv", from, message.message);
    this.inbox.push({ from: from as NodeId, message: message.message });
    this.schedule();
  }

  /**
   * The node is stopping: from now on nothing is stepped or carried out, so no deferred step
   * commits or syncs through a ledger that the node then closes.
   */
  stop(): void {
    this.stopped = true;
    this.inbox = [];
    this.d.trace?.flush();
  }

  /** Timer: signatures due, elections and heartbeats. */
  tick(): void {
    if (this.stopped) return;
    const now = this.d.clock.monotonicMs();
    this.d.replica.tick(now);
    // Raft sees the tick's signature before the tick (the outbox's listener handed it over).
    this.handOver();
    this.d.raft.tick(now);
    this.syncWritable();
    this.process();
  }

  /** Sends a non-consensus message (forwarding) to `peer`. */
  sendTo(peer: NodeId, message: N2nMessage): boolean {
    this.ensureAddress(peer);
    return this.d.transport.send(peer, encodeN2n(message));
  }

  get selfAddress(): string {
    return this.d.selfAddress;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.d.scheduler.defer(() => {
      this.scheduled = false;
      this.process();
    });
  }

  /**
   * Steps every queued message, carries out Readies until there are none, then runs the
   * replica's pump and the Readies it caused.
   */
  process(): void {
    // Re-entered from a Ready duty: the outer loop continues.
    if (this.processing || this.stopped) return;
    this.processing = true;
    try {
      const { raft, clock } = this.d;
      const now = clock.monotonicMs();
      this.handOver();
      const inbox = this.inbox;
      this.inbox = [];
      for (const { from, message } of inbox) raft.step(from, message, now);
      this.syncWritable();
      this.runReadies();
      // The replica's turn duty (a primary's next signature, once the last one committed): in
      // this turn, so its entries leave now rather than one event-loop turn later.
      if (this.d.replica.pump !== undefined) {
        this.d.replica.pump(clock.monotonicMs());
        this.runReadies();
      }
    } finally {
      this.processing = false;
    }
  }

  /** Carries out Readies until there are none. */
  private runReadies(): void {
    const raft = this.d.raft;
    for (;;) {
      this.handOver();
      if (!raft.hasReady()) break;
      this.handle(raft.ready());
    }
  }

  /**
   * Asks for a turn (process) later in this event-loop turn: the replica has work for its pump
   * (a transaction executed, or the sealer finished a batch).
   */
  requestTurn(): void {
    this.schedule();
  }

  /** Gives Raft the entries the replica wrote since the last call (a leader's own entries). */
  private handOver(): void {
    const entries = this.d.outbox.take();
    if (entries.length === 0) return;
    const trace = this.d.trace;
    if (trace !== undefined) {
      for (const e of entries) if (e.isSignature) trace.record("sig", e.seqno);
    }
    this.d.raft.replicate(entries, this.d.clock.monotonicMs());
    this.syncWritable();
  }

  /**
   * The replica may write exactly while Raft considers this node the leader. Called after
   * every input to Raft that may change its role (step, tick, replicate, advance).
   */
  private syncWritable(): void {
    this.d.outbox.setWritable(this.d.raft.isLeader);
  }

  // Ready ----------------------------------------------------------------------------------

  private handle(ready: Ready): void {
    const { raft, replica } = this.d;
    this.stats.readies++;
    // 1. Roll back.
    this.rollBack(ready);
    // 2. Append.
    if (ready.entries.length > 0) replica.appendReplicated(ready.entries);
    // 3 and 4. Sync, then send; a leader with no new hard state sends first (see below).
    const sendFirst = raft.isLeader && ready.hardState === null && ready.rollbackTo === null;
    if (sendFirst) this.send(ready.messages);
    if (ready.mustSync) {
      replica.syncLedger();
      this.stats.syncs++;
      this.d.trace?.record("synced", replica.lastSeqno);
    }
    if (ready.hardState !== null) this.d.hardState.save(ready.hardState);
    if (!sendFirst) this.send(ready.messages);
    // 5. Commit.
    if (ready.commitSeqno !== null && ready.commitSeqno > 0) this.commit(ready.commitSeqno);
    // 6. Advance, then react to a new role.
    raft.advance(ready, this.d.clock.monotonicMs());
    this.syncWritable();
    if (ready.roleChange !== null) this.onNewRole(ready.roleChange);
  }

  /**
   * A node that is not (or no longer) the primary holds exactly what Raft thinks it holds; a
   * deposed primary also drops transactions still being sealed, which Raft never saw.
   */
  private rollBack(ready: Ready): void {
    let target: number | null = ready.rollbackTo;
    if (!this.d.raft.isLeader) {
      const hostBase = ready.rollbackTo ?? ready.lastSeqno - ready.entries.length;
      target = Math.min(target ?? hostBase, hostBase);
    }
    if (target !== null && this.d.replica.lastSeqno > target) {
      this.d.replica.rollbackTo(target as Seqno);
    }
  }

  /** Followers in step usually get the same AppendEntries: it is encoded once for all. */
  private send(messages: readonly Envelope[]): void {
    const encoded = new Map<string, Uint8Array>();
    for (const envelope of messages) {
      const m = envelope.message;
      const key =
        m.type === "append_entries"
          ? `${m.view}/${m.prevSeqno}/${m.prevView}/${m.leaderCommit}/${m.entries.length}`
          : null;
      let bytes = key === null ? undefined : encoded.get(key);
      if (bytes === undefined) {
        bytes = encodeN2n({ kind: "raft", fromAddress: this.d.selfAddress, message: m });
        if (key !== null) encoded.set(key, bytes);
      }
      this.ensureAddress(envelope.to);
      if (this.d.transport.send(envelope.to, bytes)) this.stats.sent++;
      if (this.d.trace !== undefined) traceMessage(this.d.trace, "sent", envelope.to, m);
    }
  }

  private commit(seqno: Seqno): void {
    const { raft } = this.d;
    this.d.replica.commitTo({ view: raft.log.viewAt(seqno), seqno });
    this.d.trace?.record("commit", seqno);
    this.d.onCommit?.(seqno);
    // Compact in steps of a window, not at every commit (each compaction copies the window).
    if (seqno - this.compactedTo >= 2 * this.payloadWindow) {
      this.compactedTo = seqno - this.payloadWindow;
      raft.compactPayloads(this.compactedTo as Seqno);
    }
  }

  private onNewRole(change: NonNullable<Ready["roleChange"]>): void {
    const { role, view, leader } = change;
    this.d.replica.setView(view);
    this.d.onRoleChange?.(role, view, leader);
    // A new primary signs at once in its view; not before genesis, though: the service's
    // first transaction is 2.1, then its signature.
    if (role === "Leader" && this.d.raft.isLeader && this.d.replica.lastSeqno > 0) {
      this.d.replica.emitSignature();
    }
  }

  // Peers ----------------------------------------------------------------------------------

  private learnAddress(peer: string, address: string): void {
    if (address === "" || this.peerAddresses.get(peer) === address) return;
    this.peerAddresses.set(peer, address);
    this.d.transport.setPeer(peer, address);
  }

  /** Addresses of peers we never heard from come from the directory (the nodes table). */
  private ensureAddress(peer: NodeId): void {
    if (this.peerAddresses.has(peer)) return;
    const address = this.d.peers.addressOf(peer);
    if (address !== undefined) this.learnAddress(peer, address);
  }
}

/** An AppendEntries with entries, or a successful response to one, in the round trace. */
function traceMessage(
  trace: RoundTrace,
  direction: "sent" | "recv",
  peer: string,
  m: RaftMessage,
): void {
  if (m.type === "append_entries" && m.entries.length > 0) {
    trace.record(`ae-${direction}`, m.prevSeqno + m.entries.length, peer);
  } else if (m.type === "append_entries_response" && m.success) {
    trace.record(`ack-${direction}`, m.lastSeqno, peer);
  }
}
