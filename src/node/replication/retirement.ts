/**
 * CCF's set_retired_committed: on the primary, once a configuration that leaves nodes out has
 * committed, their nodes.info rows get retired_committed, after which they may be deleted
 * (DELETE /node/network/nodes/{id}). Runs after the Ready that committed the configuration, in
 * a system transaction of its own.
 */
import type { NodeId } from "../../base/ids.js";
import type { RaftNode } from "../../consensus/raft.js";
import { entriesById, GOV_MAPS, setById } from "../../gov/tables.js";
import type { SystemTransactions } from "../pipeline/system-tx.js";

export interface RetirementsDeps {
  readonly raft: RaftNode;
  readonly system: SystemTransactions;
  /** Runs `task` once the current Ready is handled (today: setImmediate). */
  readonly defer: (task: () => void) => void;
  readonly log: (line: string) => void;
}

export class Retirements {
  /** The committed configuration whose retirements were last recorded (-1: none yet). */
  private checkedAt = -1;

  constructor(private readonly deps: RetirementsDeps) {}

  /** Consensus committed further. */
  onCommit(): void {
    const { raft } = this.deps;
    if (!raft.isLeader) return;
    const committed = raft.log.activeConfigurations(raft.commitSeqno)[0];
    if (committed === undefined || committed.seqno === this.checkedAt) return;
    this.checkedAt = committed.seqno;
    this.deps.defer(() => this.record(committed.nodes));
  }

  private record(configuration: readonly NodeId[]): void {
    if (!this.deps.raft.isLeader) return;
    const outcome = this.deps.system.write("retirement", (tx) => {
      for (const [id, info] of entriesById(tx, GOV_MAPS.nodeInfo)) {
        if (info.status !== "Retired" || info.retired_committed === true) continue;
        if (configuration.includes(id as NodeId)) continue;
        setById(tx, GOV_MAPS.nodeInfo, id, { ...info, retired_committed: true });
        this.deps.log(`node ${id} is retired and its retirement committed`);
      }
    });
    // A conflict is tried again at the next commit; anything else needs no retry.
    if (outcome.kind === "not-written" && outcome.reason === "conflict") this.checkedAt = -1;
  }
}
