/**
 * The node loop's consensus duties: it feeds the Raft core (src/consensus/raft.ts) with ticks,
 * peer messages and the primary's new entries, and carries out each Ready in the order the
 * contract requires:
 *
 *   1. roll back  local state (store, history, ledger) past the point Raft kept;
 *   2. append     entries from the primary (history, store, ledger);
 *   3. sync       the ledger (fdatasync) and the hard state file, when Ready.mustSync;
 *   4. send       messages, only now (a follower's ack promises durability);
 *   5. commit     the pipeline up to Ready.commitSeqno (ledger chunks .committed, receipts);
 *   6. advance.
 *
 * Owns: the hard state file, the peer address book of the channels, and the queue of
 * received messages. Messages are processed in batches, once per event-loop turn, so many acks
 * cost one Ready and one fdatasync.
 *
 * A replicated node's pipeline never commits by itself: it hands entries to `replicate`
 * (ConsensusSink), and commits when this driver says so.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { fromUtf8, utf8 } from "../../base/bytes.js";
import type { NodeId, Seqno, View } from "../../base/ids.js";
import type { RaftNode } from "../../consensus/raft.js";
import { PAYLOAD_WINDOW } from "../../consensus/raft-log.js";
import type { RaftEntry, RaftMessage, Ready, Role } from "../../consensus/types.js";
import { GOV_MAPS, GOV_TABLES } from "../../gov/tables.js";
import type { WriteSet } from "../../kv/write-set.js";
import type { Store } from "../../kv/store.js";
import { decodeN2n, encodeN2n, type N2nMessage } from "./n2n/messages.js";
import type { ConsensusSink, TxPipeline } from "../pipeline/tx-pipeline.js";

/** What the driver needs of the node-to-node channels. */
export interface PeerChannels {
  setPeer(peerId: string, address: string): void;
  send(peerId: string, payload: Uint8Array): boolean;
}

export interface ConsensusDriverDeps {
  readonly raft: RaftNode;
  readonly pipeline: TxPipeline;
  readonly store: Store;
  readonly channels: PeerChannels;
  /** This node's published node-to-node address ("host:port"), sent with every message. */
  readonly selfAddress: string;
  /** Where the hard state (view, vote) is kept; written atomically and synced. */
  readonly hardStateFile: string;
  readonly now: () => number;
  readonly log: (line: string) => void;
  /** Forwarded requests and their answers travel on the same channels. */
  readonly onForward: (from: NodeId, message: N2nMessage) => void;
  readonly onRoleChange?: (role: Role, view: View, leader: NodeId | null) => void;
  readonly onCommit?: (seqno: Seqno) => void;
}

export interface ConsensusDriverStats {
  received: number;
  malformed: number;
  sent: number;
  readies: number;
  syncs: number;
}

/** Trusted node ids in the store: the consensus configuration (ccf-api.md 7). */
export function trustedNodeIds(store: Store): NodeId[] {
  const ids: NodeId[] = [];
  const codec = GOV_MAPS.nodeInfo.codec;
  for (const [key, value] of store.entries(GOV_TABLES.nodeInfo)) {
    if (codec.decode(value).status === "Trusted") ids.push(fromUtf8(key) as NodeId);
  }
  return ids.sort();
}

export class ConsensusDriver implements ConsensusSink {
  private readonly d: ConsensusDriverDeps;
  private inbox: { from: NodeId; message: RaftMessage }[] = [];
  private scheduled = false;
  private processing = false;
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
  }

  get raft(): RaftNode {
    return this.d.raft;
  }

  // ConsensusSink --------------------------------------------------------------------------

  replicate(entries: readonly RaftEntry[]): void {
    this.d.raft.replicate(entries, this.d.now());
    this.schedule();
  }

  canWrite(): boolean {
    return this.d.raft.isLeader;
  }

  configurationOf(writeSet: WriteSet): readonly NodeId[] | undefined {
    if (!writeSet.maps.some((m) => m.name === GOV_TABLES.nodeInfo)) return undefined;
    return trustedNodeIds(this.d.store);
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
    this.learnAddress(from, message.fromAddress);
    if (message.kind !== "raft") {
      this.d.onForward(from as NodeId, message);
      return;
    }
    this.inbox.push({ from: from as NodeId, message: message.message });
    this.schedule();
  }

  /** Timer: signatures due, elections and heartbeats. */
  tick(): void {
    const now = this.d.now();
    this.d.pipeline.tick(now);
    this.d.raft.tick(now);
    this.process();
  }

  /** Sends a non-consensus message (forwarding) to `peer`. */
  sendTo(peer: NodeId, message: N2nMessage): boolean {
    this.ensureAddress(peer);
    return this.d.channels.send(peer, encodeN2n(message));
  }

  get selfAddress(): string {
    return this.d.selfAddress;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.process();
    });
  }

  /** Steps every queued message, then carries out Readies until there are none. */
  process(): void {
    if (this.processing) return; // re-entered from a Ready duty: the outer loop continues
    this.processing = true;
    try {
      const now = this.d.now();
      const inbox = this.inbox;
      this.inbox = [];
      for (const { from, message } of inbox) this.d.raft.step(from, message, now);
      while (this.d.raft.hasReady()) this.handle(this.d.raft.ready());
    } finally {
      this.processing = false;
    }
  }

  // Ready ----------------------------------------------------------------------------------

  private handle(ready: Ready): void {
    const { raft, pipeline } = this.d;
    this.stats.readies++;
    // 1. Roll back. A node that is not (or no longer) the primary holds exactly what Raft
    // thinks it holds; a deposed primary also drops transactions still with its sealer.
    let target: number | null = ready.rollbackTo;
    if (!raft.isLeader) {
      const hostBase = ready.rollbackTo ?? ready.lastSeqno - ready.entries.length;
      target = Math.min(target ?? hostBase, hostBase);
    }
    if (target !== null && this.d.store.seqno > target) pipeline.rollbackTo(target as Seqno);
    // 2. Append.
    if (ready.entries.length > 0) pipeline.appendReplicated(ready.entries);
    // 3. Sync.
    if (ready.mustSync) {
      pipeline.syncLedger();
      this.stats.syncs++;
    }
    if (ready.hardState !== null) this.writeHardState(ready.hardState);
    // 4. Send. Followers in step usually get the same AppendEntries: encode it once.
    const encoded = new Map<string, Uint8Array>();
    for (const envelope of ready.messages) {
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
      if (this.d.channels.send(envelope.to, bytes)) this.stats.sent++;
    }
    // 5. Commit.
    if (ready.commitSeqno !== null && ready.commitSeqno > 0) {
      const seqno = ready.commitSeqno;
      pipeline.commitTo({ view: raft.log.viewAt(seqno), seqno });
      this.d.onCommit?.(seqno);
      // Compact in steps of a window, not at every commit (each compaction copies the window).
      if (seqno - this.compactedTo >= 2 * PAYLOAD_WINDOW) {
        this.compactedTo = seqno - PAYLOAD_WINDOW;
        raft.compactPayloads(this.compactedTo as Seqno);
      }
    }
    // 6. Advance, then react to a new role (a new primary signs at once in its view).
    raft.advance(ready, this.d.now());
    if (ready.roleChange !== null) {
      const { role, view, leader } = ready.roleChange;
      pipeline.setView(view);
      this.d.onRoleChange?.(role, view, leader);
      // (Not before genesis: the service's first transaction is 2.1, then its signature.)
      if (role === "Leader" && raft.isLeader && this.d.store.seqno > 0) pipeline.emitSignature();
    }
  }

  private writeHardState(state: { view: View; votedFor: NodeId | null }): void {
    const tmp = `${this.d.hardStateFile}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, utf8(JSON.stringify(state)));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.d.hardStateFile);
  }

  // Peers ----------------------------------------------------------------------------------

  private learnAddress(peer: string, address: string): void {
    if (address === "" || this.peerAddresses.get(peer) === address) return;
    this.peerAddresses.set(peer, address);
    this.d.channels.setPeer(peer, address);
  }

  /** Addresses of peers we never heard from come from the nodes table. */
  private ensureAddress(peer: NodeId): void {
    if (this.peerAddresses.has(peer)) return;
    const bytes = this.d.store.get(GOV_TABLES.nodeInfo, utf8(peer));
    if (bytes === undefined) return;
    const info = GOV_MAPS.nodeInfo.codec.decode(bytes);
    const n2n = info.node_to_node_interface;
    this.learnAddress(peer, n2n.published_address ?? n2n.bind_address);
  }
}
