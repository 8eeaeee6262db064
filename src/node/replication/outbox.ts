/**
 * Where a node's own writes meet consensus. The transaction pipeline (in the simulator, the
 * simulated replica) hands every batch of local entries to `replicate`; the ConsensusDriver
 * takes them from here into Raft. The driver also keeps the write flag that `canWrite` reports
 * equal to "Raft considers this node the leader", re-reading it after every input it gives
 * Raft, so a write is never accepted by a node that Raft has deposed.
 *
 * The host creates the outbox first and gives it to both sides, so neither side needs the
 * other: the pipeline does not know the driver, and the driver sees the pipeline only as its
 * LocalReplica.
 *
 * Owns: entries handed over and not yet taken, and the write flag.
 * Invariants:
 * - Entries are taken in the order they were handed over (seqno order).
 * - `replicate` is called only while `canWrite()` (asserted).
 * - Once the driver listens, it takes each batch before `replicate` returns, exactly when the
 *   pipeline wrote it (Raft sees local entries and peer messages in the order they happened).
 */
import { assert } from "../../base/assert.js";
import type { NodeId } from "../../base/ids.js";
import type { RaftEntry } from "../../consensus/types.js";
import type { WriteSet } from "../../kv/write-set.js";

/** How a committed write set changes the consensus configuration (the nodes table's rule). */
export interface ConfigurationSource {
  /** The configuration (trusted node ids) `writeSet` creates, if any. */
  configurationOf(writeSet: WriteSet): readonly NodeId[] | undefined;
}

/** For replicas whose writes never reconfigure through write sets (the simulator's). */
const NO_CONFIGURATIONS: ConfigurationSource = { configurationOf: () => undefined };

export class ReplicationOutbox {
  private pending: RaftEntry[] = [];
  private writable = false;
  private onEntries: () => void = () => undefined;

  constructor(private readonly configurations: ConfigurationSource = NO_CONFIGURATIONS) {}

  // The writer's side (the pipeline's ConsensusSink) -----------------------------------------

  /** Leader: entries now in the local ledger (not yet synced), in seqno order. */
  replicate(entries: readonly RaftEntry[]): void {
    assert(this.writable, "only a node that Raft considers leader replicates entries");
    for (const e of entries) this.pending.push(e);
    this.onEntries();
  }

  /** Whether this node may execute writes: Raft considers it the leader. */
  canWrite(): boolean {
    return this.writable;
  }

  configurationOf(writeSet: WriteSet): readonly NodeId[] | undefined {
    return this.configurations.configurationOf(writeSet);
  }

  // The driver's side -----------------------------------------------------------------------

  /** Calls `onEntries` whenever entries are handed over (the driver takes them at once). */
  listen(onEntries: () => void): void {
    this.onEntries = onEntries;
  }

  setWritable(writable: boolean): void {
    this.writable = writable;
  }

  /** Takes every entry handed over so far, in order. */
  take(): RaftEntry[] {
    const taken = this.pending;
    this.pending = [];
    return taken;
  }
}
