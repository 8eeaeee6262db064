/**
 * The node side of the constitution's `ccf.node` / `ccf.network` calls (GovHost), acting on the
 * governance transaction being executed, and a ConstitutionRunner wrapper that points the host
 * at that transaction for the duration of each call.
 *
 * A call the proposal cannot make (opening a service that is not Opening, the wrong previous
 * identity, a rekey before the reshare) throws a GovHostError: the constitution sees a JS Error
 * with its message (js/host-function.ts) and the proposal fails with it. A call outside a
 * governance transaction is a node bug (an assertion).
 */
import type { Tx } from "../../kv/tx.js";
import type { ConstitutionRunner, ResolveVote } from "../../gov/constitution-runner.js";
import { getSingleton, GOV_MAPS, setSingleton } from "../../gov/tables.js";
import type { GovHost } from "../../js/gov-globals.js";
import { JsHostError } from "../../js/host-function.js";
import { assert } from "../../base/assert.js";
import { formatTxId, type Seqno } from "../../base/ids.js";
import type { KeyObject } from "node:crypto";
import { CertError, sameCertificate } from "../../crypto/certs.js";
import { endorseCertificateRequest } from "../../crypto/cert-issuance.js";
import { RecoveryError, RecoveryErrorCode } from "../recovery/recovery-shares.js";
import type { NodeContext } from "./node-context.js";

export enum GovHostErrorCode {
  /** The service has no service info: it was never started (no genesis transaction). */
  NoServiceInfo = "NoServiceInfo",
  /** next_service_identity is not this service's certificate. */
  WrongNextIdentity = "WrongNextIdentity",
  /** A recovered service opens only with the previous identity it recovered from. */
  WrongPreviousIdentity = "WrongPreviousIdentity",
  /** previous_service_identity given to a service that is not recovering. */
  UnexpectedPreviousIdentity = "UnexpectedPreviousIdentity",
  /** transition_service_to_open on a service that is not Opening (or Recovering). */
  NotOpening = "NotOpening",
  /** trigger_ledger_rekey before this primary holds the members' recovery key. */
  RekeyNotReady = "RekeyNotReady",
  /** generate_endorsed_certificate given a CSR or valid_from it cannot use. */
  BadCertificateRequest = "BadCertificateRequest",
}
export type GovHostErrorType =
  | { code: Exclude<GovHostErrorCode, GovHostErrorCode.NotOpening> }
  | { code: GovHostErrorCode.NotOpening; status: string };
export class GovHostError extends JsHostError<GovHostErrorType> {}

export class NodeGovHost implements GovHost {
  /** The transaction the running constitution call writes through. */
  tx: Tx | null = null;

  constructor(
    private readonly node: NodeContext,
    private readonly log: (line: string) => void,
    /** The service's private key now (it changes with the service identity on a recovery). */
    private readonly servicePrivateKey: () => KeyObject,
  ) {}

  private currentTx(): Tx {
    // withGovHost sets the tx around every constitution call, the only way GovHost is reached.
    assert(this.tx !== null, "no governance transaction in progress");
    return this.tx;
  }

  transitionServiceToOpen(previousIdentityPem: string | undefined, nextIdentityPem: string): void {
    const tx = this.currentTx();
    const info = getSingleton(tx, GOV_MAPS.serviceInfo);
    if (info === undefined)
      fail({ code: GovHostErrorCode.NoServiceInfo }, "service info is missing");
    if (!sameCertificate(nextIdentityPem, this.node.serviceCertPem)) {
      fail(
        { code: GovHostErrorCode.WrongNextIdentity },
        "next_service_identity is not this service's certificate",
      );
    }
    if (info.status === "Recovering") {
      const recovery = this.node.disasterRecovery;
      if (previousIdentityPem === undefined || recovery === null) {
        fail(
          { code: GovHostErrorCode.WrongPreviousIdentity },
          "a recovered service opens with its previous_service_identity",
        );
      }
      if (!recovery.isRecoveredFrom(tx, previousIdentityPem)) {
        fail(
          { code: GovHostErrorCode.WrongPreviousIdentity },
          "previous_service_identity is not the identity this service recovered from",
        );
      }
      setSingleton(tx, GOV_MAPS.serviceInfo, { ...info, status: "WaitingForRecoveryShares" });
      this.log("service is WaitingForRecoveryShares: members submit their recovery shares");
      return;
    }
    if (previousIdentityPem !== undefined) {
      fail(
        { code: GovHostErrorCode.UnexpectedPreviousIdentity },
        "previous_service_identity is only for a recovered service",
      );
    }
    if (info.status !== "Opening") {
      fail(
        { code: GovHostErrorCode.NotOpening, status: info.status },
        `service is ${info.status}, not Opening`,
      );
    }
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
    try {
      this.node.writeRekey(this.currentTx());
    } catch (err: unknown) {
      // The one refusal a rekey has: the proposal fails with it, and can be passed again once
      // the reshare this node scheduled has committed.
      if (!(err instanceof RecoveryError && err.code === RecoveryErrorCode.KeyNotHeld)) throw err;
      fail({ code: GovHostErrorCode.RekeyNotReady }, err.message);
    }
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

  /**
   * CCF's generate_endorsed_certificate (transition_node_to_trusted of a node that sent a CSR):
   * the node certificate for the CSR's key, subject and SANs, issued by the service key.
   */
  generateEndorsedCertificate(csrPem: string, validFrom: string, validityDays: number): string {
    this.currentTx();
    const from = parseAsn1Time(validFrom);
    if (from === null) {
      fail(
        { code: GovHostErrorCode.BadCertificateRequest },
        `valid_from ${JSON.stringify(validFrom)} is not an ASN.1 time (YYMMDDhhmmssZ)`,
      );
    }
    try {
      return endorseCertificateRequest({
        csrPem,
        servicePrivateKey: this.servicePrivateKey(),
        serviceCertPem: this.node.serviceCertPem,
        validFrom: from,
        validityDays,
      });
    } catch (err: unknown) {
      if (!(err instanceof CertError)) throw err;
      fail({ code: GovHostErrorCode.BadCertificateRequest }, err.message);
    }
  }
}

/**
 * An ASN.1 UTCTime (`YYMMDDhhmmssZ`, years 1950-2049 as RFC 5280 reads them) or GeneralizedTime
 * (`YYYYMMDDhhmmssZ`) as a Date; null when it is neither or names no real instant.
 */
export function parseAsn1Time(text: string): Date | null {
  const match = /^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (match === null) return null;
  const [, yearText = "", ...rest] = match;
  const shortYear = Number(yearText);
  const year =
    yearText.length === 4 ? shortYear : shortYear < 50 ? 2000 + shortYear : 1900 + shortYear;
  const [month, day, hours, minutes, seconds] = rest.map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hours, minutes, seconds));
  const exact =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hours &&
    date.getUTCMinutes() === minutes &&
    date.getUTCSeconds() === seconds;
  return exact ? date : null;
}

function fail(type: GovHostErrorType, message: string): never {
  throw new GovHostError(type, message);
}

/**
 * Runs each constitution call with the host pointed at the call's transaction. `vote` is
 * refused: the node evaluates ballots off its thread and hands the outcomes to submitBallot.
 */
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
    // Ballots run in the ballot pool's worker (ballot-submit.ts), never on the node's thread.
    vote: () => {
      assert(false, "a ballot was about to run on the node's thread");
    },
  };
}
