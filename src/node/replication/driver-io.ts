/**
 * The IO of a ConsensusDriver, as narrow interfaces (style.md §2.3). A node implements them
 * with its pipeline, its node-to-node channels, its nodes table, a file and the event loop; the
 * simulator (src/sim) implements them in memory, so that it runs the driver production runs.
 *
 * Nothing here does IO: this module only names what the driver may ask for.
 */
import type { Clock } from "../../base/io.js";
import type { NodeId, Seqno, TxId, View } from "../../base/ids.js";
import type { HardState, RaftEntry } from "../../consensus/types.js";

/**
 * The local replica the driver keeps in step with Raft: the store, history and ledger behind
 * the transaction pipeline (TxPipeline implements it). Each method is one duty of a Ready.
 */
export interface LocalReplica {
  /** The last seqno the replica holds, written locally (maybe still being sealed) or received. */
  readonly lastSeqno: Seqno;
  /** Drops every entry after `seqno`, including transactions still being sealed. */
  rollbackTo(seqno: Seqno): void;
  /** Appends entries received from the primary, in seqno order after `lastSeqno`. */
  appendReplicated(entries: readonly RaftEntry[]): void;
  /** Makes every entry appended so far durable. */
  syncLedger(): void;
  /** Consensus committed up to `txId`, a signature the replica holds durably. */
  commitTo(txId: TxId): void;
  /** New local transactions are created in `view` from now on. */
  setView(view: View): void;
  /** Writes a signature transaction now (a new primary signs at once in its view). */
  emitSignature(): void;
  /** Timer: records what finished sealing and emits a signature when one is due. */
  tick(nowMs: number): void;
  /**
   * Once per driver turn, after its Readies: records what finished sealing and signs if a
   * signature is due (TxPipeline.pump). Optional: a replica without one signs on tick only.
   */
  pump?(nowMs: number): unknown;
}

/** The node-to-node transport: one opaque frame at a time, to a peer by id. */
export interface PeerTransport {
  /** Where `peerId` can be reached ("host:port"); the transport connects when needed. */
  setPeer(peerId: string, address: string): void;
  /** Queues `payload` for `peerId`; false when it is dropped (unknown peer, full queue). */
  send(peerId: string, payload: Uint8Array): boolean;
}

/** Where the hard state (view, vote) is kept; `save` returns once it is durable. */
export interface HardStateStore {
  save(state: HardState): void;
}

/** The published node-to-node addresses of the service's nodes (its nodes table). */
export interface PeerDirectory {
  /** The address of `peer`, or undefined when the directory does not know it. */
  addressOf(peer: NodeId): string | undefined;
}

/** Runs work later in this event-loop turn, after the current call stack has unwound. */
export interface TurnScheduler {
  defer(task: () => void): void;
}

/** The driver reads only monotonic time (intervals, timeouts), never the wall clock. */
export type MonotonicClock = Pick<Clock, "monotonicMs">;
