/**
 * Transactions a node writes on its own behalf, not a client's: genesis, a recovery's start and
 * its reopening, snapshot evidence, retirements, recovery shares. They all go through
 * `SystemTransactions.write`, which runs them in the pipeline like any transaction and turns the
 * pipeline's outcome into one of two answers: written (with its txId), or not written and why.
 * Each caller decides what "not written" means for it (retry later, drop, or stop the node).
 *
 * A rekey's secrets are not a transaction of their own: they are written inside the
 * trigger_ledger_rekey proposal's transaction (recovery/rekey.ts), as CCF does.
 */
import type { TxId } from "../../base/ids.js";
import type { Tx } from "../../kv/tx.js";
import type { TxPipeline } from "./tx-pipeline.js";

export type SystemTxKind =
  | "genesis"
  | "recovery start"
  | "recovery open"
  | "recovery shares cleared"
  | "recovery shares"
  | "snapshot evidence"
  | "retirement";

/** Why a system transaction was not written. */
export type SystemTxRefusal =
  /** It kept conflicting with concurrent transactions. */
  | "conflict"
  /** This node is not (or no longer) the primary. */
  | "not-primary"
  /** Too many transactions await commit. */
  | "too-many-pending"
  /** The write function wrote nothing. */
  | "nothing-to-write"
  /** The node's ledger failed (SECURITY.md, "Disk faults"): the node is stopping. */
  | "storage-fault";

export type SystemTxOutcome =
  | { readonly kind: "written"; readonly txId: TxId }
  | { readonly kind: "not-written"; readonly reason: SystemTxRefusal };

/** Per kind: how many were written and how many were not (/node/metrics). */
export type SystemTxStats = Partial<Record<SystemTxKind, { written: number; notWritten: number }>>;

export class SystemTransactions {
  readonly stats: SystemTxStats = {};

  constructor(private readonly pipeline: TxPipeline) {}

  /**
   * Runs `write` in a transaction of its own. `claimsDigest` binds the transaction's receipt to
   * something outside the ledger (a snapshot's digest).
   */
  write(kind: SystemTxKind, write: (tx: Tx) => void, claimsDigest?: Uint8Array): SystemTxOutcome {
    const result = this.run(write, claimsDigest);
    const counts = (this.stats[kind] ??= { written: 0, notWritten: 0 });
    if (result.kind === "written") counts.written++;
    else counts.notWritten++;
    return result;
  }

  private run(write: (tx: Tx) => void, claimsDigest: Uint8Array | undefined): SystemTxOutcome {
    const outcome = this.pipeline.execute(write, claimsDigest);
    switch (outcome.kind) {
      case "committed":
        return { kind: "written", txId: outcome.txId };
      case "read-only":
      case "discarded": // (write passes no `keep`: never discarded)
        return { kind: "not-written", reason: "nothing-to-write" };
      case "conflict":
        return { kind: "not-written", reason: "conflict" };
      case "not-primary":
        return { kind: "not-written", reason: "not-primary" };
      case "too-many-pending":
        return { kind: "not-written", reason: "too-many-pending" };
      case "storage-fault":
        return { kind: "not-written", reason: "storage-fault" };
    }
  }
}

/** "<kind> not written (<reason>)", for logs. */
export function describeRefusal(kind: SystemTxKind, reason: SystemTxRefusal): string {
  return `${kind} not written (${reason})`;
}
