/**
 * The node side of the constitution's `ccf.node` / `ccf.network` calls (GovHost), acting on the
 * governance transaction being executed, and a ConstitutionRunner wrapper that points the host
 * at that transaction for the duration of each call.
 */
import type { Tx } from "../../kv/tx.js";
import type { ConstitutionRunner, ResolveVote } from "../../gov/constitution-runner.js";
import { getSingleton, GOV_MAPS, setSingleton } from "../../gov/tables.js";
import type { GovHost } from "../../js/gov-globals.js";
import { formatTxId, type Seqno } from "../../base/ids.js";
import { sameCertificate } from "../../crypto/certs.js";
import type { NodeContext } from "./node-context.js";

export class NodeGovHost implements GovHost {
  /** The transaction the running constitution call writes through. */
  tx: Tx | null = null;

  constructor(
    private readonly node: NodeContext,
    private readonly log: (line: string) => void,
  ) {}

  private currentTx(): Tx {
    if (this.tx === null) throw new Error("no governance transaction in progress");
    return this.tx;
  }

  transitionServiceToOpen(previousIdentityPem: string | undefined, nextIdentityPem: string): void {
    const tx = this.currentTx();
    const info = getSingleton(tx, GOV_MAPS.serviceInfo);
    if (info === undefined) throw new Error("service info is missing");
    if (!sameCertificate(nextIdentityPem, this.node.serviceCertPem)) {
      throw new Error("next_service_identity is not this service's certificate");
    }
    if (info.status === "Recovering") {
      const recovery = this.node.disasterRecovery;
      if (previousIdentityPem === undefined || recovery === null) {
        throw new Error("a recovered service opens with its previous_service_identity");
      }
      recovery.checkOpen(tx, previousIdentityPem);
      setSingleton(tx, GOV_MAPS.serviceInfo, { ...info, status: "WaitingForRecoveryShares" });
      this.log("service is WaitingForRecoveryShares: members submit their recovery shares");
      return;
    }
    if (previousIdentityPem !== undefined) {
      throw new Error("previous_service_identity is only for a recovered service");
    }
    if (info.status !== "Opening") throw new Error(`service is ${info.status}, not Opening`);
    setSingleton(tx, GOV_MAPS.serviceInfo, {
      ...info,
      status: "Open",
      current_service_create_txid:
        info.current_service_create_txid ??
        formatTxId({
          view: this.node.view,
          seqno: 1 as never,
        }),
    });
    this.log("service is now Open");
    this.node.scheduleRecoverySharesRefresh(); // the first shares are issued at opening
  }

  triggerLedgerChunk(): void {
    this.node.pipeline.requestLedgerChunk();
    this.log("trigger_ledger_chunk: the next signature completes the current ledger chunk");
  }

  triggerLedgerRekey(): void {
    this.node.writeRekey(this.currentTx());
    this.log("trigger_ledger_rekey: a new ledger secret from the next transaction");
  }

  triggerSnapshot(): void {
    this.node.requestSnapshot();
    this.log("trigger_snapshot: the primary snapshots at its next signature");
  }

  triggerRecoverySharesRefresh(): void {
    this.node.scheduleRecoverySharesRefresh();
  }

  getLatestLedgerSecretSeqno(): number {
    return this.node.history.secrets.latest.fromSeqno;
  }

  generateEndorsedCertificate(): string {
    throw new Error(
      "generateEndorsedCertificate is not supported: the join endpoint endorses a trusted " +
        "node's certificate when the node next asks to join",
    );
  }
}

/** Runs each constitution call with the host pointed at the call's transaction. */
export function withGovHost(runner: ConstitutionRunner, host: NodeGovHost): ConstitutionRunner {
  const around = <T>(tx: Tx, f: () => T): T => {
    const previous = host.tx;
    host.tx = tx;
    try {
      return f();
    } finally {
      host.tx = previous;
    }
  };
  return {
    validate: (tx, proposal) => around(tx, () => runner.validate(tx, proposal)),
    resolve: (tx, proposal, proposerId, votes: readonly ResolveVote[], proposalId) =>
      around(tx, () => runner.resolve(tx, proposal, proposerId, votes, proposalId)),
    apply: (tx, proposal, proposalId) => around(tx, () => runner.apply(tx, proposal, proposalId)),
    vote: (tx, ballot, proposal, proposerId) =>
      around(tx, () => runner.vote(tx, ballot, proposal, proposerId)),
  };
}
