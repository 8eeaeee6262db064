/**
 * A disaster recovery in progress on the recovering node (ccf-compatibility.md §8.3; issue #5),
 * from the public replay (recovery-replay.ts, done before this exists) to the service reopening:
 *
 * 1. `writeStart` (the first transaction of the new service): service.info takes the new
 *    certificate, status Recovering and recovery_count + 1; the previous identity and its last
 *    signed root are recorded; every node of the previous service is Retired and this node is
 *    the one Trusted node.
 * 2. Members pass transition_service_to_open with the previous and next identities
 *    (`isRecoveredFrom`); the status becomes WaitingForRecoveryShares.
 * 3. Each recovery member submits its decrypted share (`recordShare`, from
 *    POST /gov/recovery/members/{id}:recover). Shares are kept sealed with the new service's
 *    ledger secret in public:ccf.internal.encrypted_submitted_shares, so the ledger never holds
 *    them in the clear.
 * 4. At the threshold (or with an Owner's whole key), `complete` rebuilds the wrapping key,
 *    unwraps the previous service's ledger secrets, replays the private domain, installs it,
 *    restores the secrets (so historical reads and receipts work), endorses the previous
 *    identities with the new service key, and opens the service. Shares that do not rebuild the
 *    key are cleared, so members can submit again.
 *
 * Runs on the one node of the recovering service (joiners wait until it is Open:
 * join/join-endpoint.ts).
 */
import { randomBytes, type KeyObject } from "node:crypto";
import { AssertionError } from "../../base/assert.js";
import { fromBase64, toBase64, utf8 } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import { formatTxId, type Seqno, type View } from "../../base/ids.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES, gcmDecrypt, gcmEncrypt } from "../../crypto/aead.js";
import { publicKeyOfCert, sameCertificate } from "../../crypto/certs.js";
import { endorseServiceCertificate } from "../../crypto/cert-issuance.js";
import type { Tx } from "../../kv/tx.js";
import type { Store } from "../../kv/store.js";
import type { TxHistory } from "../../ledger/history.js";
import { decodeLedgerSecretList, LedgerSecrets } from "../../ledger/ledger-secrets.js";
import {
  deleteById,
  entriesById,
  getSingleton,
  GOV_MAPS,
  setById,
  setSingleton,
  type NodeInfo,
} from "../../gov/tables.js";
import { isWholeKey, recoverLedgerSecret, RecoveryError } from "./recovery-shares.js";
import { replayPrivate, type RecoverySnapshot } from "./recovery-replay.js";
import type { TxPipeline } from "../pipeline/tx-pipeline.js";
import type { SystemTransactions } from "../pipeline/system-tx.js";

export enum DisasterRecoveryErrorCode {
  /** The recovered ledger has no public:ccf.gov.service.info: it is not a service's ledger. */
  NoServiceInfo = "NoServiceInfo",
  /** A share recorded by this service does not unseal with the ledger secret it was sealed by. */
  ShareDoesNotUnseal = "ShareDoesNotUnseal",
  /** The previous service's ledger holds no encrypted ledger secrets to unwrap. */
  NoEncryptedLedgerSecrets = "NoEncryptedLedgerSecrets",
  /** The transaction that opens the recovered service did not commit, attempt after attempt. */
  OpenFailed = "OpenFailed",
}
export type DisasterRecoveryErrorType =
  | { code: DisasterRecoveryErrorCode.NoServiceInfo }
  | { code: DisasterRecoveryErrorCode.ShareDoesNotUnseal; memberId: string }
  | { code: DisasterRecoveryErrorCode.NoEncryptedLedgerSecrets }
  | { code: DisasterRecoveryErrorCode.OpenFailed; attempts: number; outcome: string };
export class DisasterRecoveryError extends CcfError<DisasterRecoveryErrorType> {}

/** Retries of the transaction that opens the recovered service before the recovery gives up. */
const OPEN_RETRIES_MAX = 10;

/** The node states (CCF's, /node/state) a recovery moves its node through. */
export type RecoveryNodeState = "PartOfPublicNetwork" | "ReadingPrivateLedger" | "PartOfNetwork";

export interface DisasterRecoveryDeps {
  readonly pipeline: TxPipeline;
  /** Writes the reopening and share-clearing transactions. */
  readonly system: SystemTransactions;
  readonly store: Store;
  readonly history: TxHistory;
  readonly ledgerDir: string;
  readonly readOnlyDirectories: readonly string[];
  readonly serviceIdentity: () => { certPem: string; privateKey: KeyObject };
  readonly setState: (state: RecoveryNodeState) => void;
  /** After the service reopened: reissue recovery shares, snapshot if needed. */
  readonly afterOpen: () => void;
  readonly now: () => Date;
  readonly log: (line: string) => void;
}

export interface RecoveryPoint {
  /** The last seqno of the previous service kept (its last verifiable signature). */
  readonly upTo: Seqno;
  readonly upToView: View;
  readonly lastSignedRoot: string;
  readonly snapshot?: RecoverySnapshot | undefined;
  readonly previousServiceCertPem: string;
}

export interface ShareSubmission {
  readonly submitted: number;
  readonly threshold: number;
  /** Enough shares: the end of the recovery starts after this transaction. */
  readonly complete: boolean;
}

/** Threads decrypting the private domain beside the node's during the private replay. */
const REPLAY_WORKERS = 2;

/** Endorsements are valid as long as the new service certificate may be (CCF: 365 days max). */
const ENDORSEMENT_VALIDITY_DAYS = 365;

/** Where a recovery stands, for /node/metrics and `consortia recovery share`. */
export interface RecoveryProgress {
  readonly phase: "WaitingForShares" | "ReadingPrivateLedger" | "Complete";
  /** The recovery point: the last transaction of the previous service kept. */
  readonly up_to: number;
  /** The private replay's position (0 until it starts). */
  readonly replayed_seqno: number;
  /** Percent of the ledger bytes the private replay has read. */
  readonly percent: number;
}

export class DisasterRecovery {
  private completing = false;
  private finished = false;
  private replayed = { seqno: 0, percent: 0 };

  constructor(
    private readonly deps: DisasterRecoveryDeps,
    readonly point: RecoveryPoint,
  ) {}

  get progress(): RecoveryProgress {
    const phase = this.finished
      ? "Complete"
      : this.replayed.seqno > 0 || this.completing
        ? "ReadingPrivateLedger"
        : "WaitingForShares";
    return {
      phase,
      up_to: this.point.upTo,
      replayed_seqno: this.finished ? this.point.upTo : this.replayed.seqno,
      percent: this.finished ? 100 : this.replayed.percent,
    };
  }

  /** Whether the service has reopened (the private domain is back). */
  get done(): boolean {
    return this.finished;
  }

  /** The new service's first transaction (see the module comment). */
  writeStart(tx: Tx, node: { id: string; info: NodeInfo; certPem: string }, createTxId: string) {
    const info = getSingleton(tx, GOV_MAPS.serviceInfo);
    if (info === undefined) {
      throw new DisasterRecoveryError(
        { code: DisasterRecoveryErrorCode.NoServiceInfo },
        "the recovered ledger holds no service info",
      );
    }
    setSingleton(tx, GOV_MAPS.serviceInfo, {
      ...info,
      cert: this.deps.serviceIdentity().certPem,
      status: "Recovering",
      recovery_count: info.recovery_count + 1,
      current_service_create_txid: createTxId,
      previous_service_identity_version: this.point.upTo,
    });
    setSingleton(tx, GOV_MAPS.previousServiceIdentity, this.point.previousServiceCertPem);
    setSingleton(tx, GOV_MAPS.previousServiceLastSignedRoot, {
      root: this.point.lastSignedRoot,
      txid: formatTxId({ view: this.point.upToView, seqno: this.point.upTo }),
    });
    for (const [id, old] of entriesById(tx, GOV_MAPS.nodeInfo)) {
      if (old.status === "Retired" && old.retired_committed === true) continue;
      setById(tx, GOV_MAPS.nodeInfo, id, { ...old, status: "Retired", retired_committed: true });
    }
    setById(tx, GOV_MAPS.nodeInfo, node.id, { ...node.info, status: "Trusted" });
    setById(tx, GOV_MAPS.nodeEndorsedCerts, node.id, node.certPem);
    for (const [id] of entriesById(tx, GOV_MAPS.encryptedSubmittedShares)) {
      deleteById(tx, GOV_MAPS.encryptedSubmittedShares, id);
    }
  }

  /**
   * transition_service_to_open while Recovering: whether `previousIdentityPem` is the previous
   * identity this recovery recorded (the caller refuses the transition otherwise).
   */
  isRecoveredFrom(tx: Tx, previousIdentityPem: string): boolean {
    const recorded = getSingleton(tx, GOV_MAPS.previousServiceIdentity);
    return recorded !== undefined && sameCertificate(recorded, previousIdentityPem);
  }

  /** Seals and records one member's decrypted share (inside the share request's tx). */
  recordShare(tx: Tx, memberId: string, share: Uint8Array): ShareSubmission {
    const secret = this.deps.history.secrets.latest;
    const iv = new Uint8Array(randomBytes(GCM_IV_BYTES));
    const sealed = gcmEncrypt(secret.gcmKey, iv, share, utf8(memberId));
    const bytes = new Uint8Array(GCM_IV_BYTES + sealed.ciphertext.byteLength + GCM_TAG_BYTES);
    bytes.set(iv);
    bytes.set(sealed.ciphertext, GCM_IV_BYTES);
    bytes.set(sealed.tag, GCM_IV_BYTES + sealed.ciphertext.byteLength);
    setById(tx, GOV_MAPS.encryptedSubmittedShares, memberId, {
      encrypted_share: toBase64(bytes),
      version: secret.fromSeqno,
    });
    const submitted = entriesById(tx, GOV_MAPS.encryptedSubmittedShares).length;
    const threshold = getSingleton(tx, GOV_MAPS.serviceConfig)?.recovery_threshold ?? 1;
    return { submitted, threshold, complete: submitted >= threshold || isWholeKey(share) };
  }

  private submittedShares(): Uint8Array[] {
    const tx = this.deps.store.begin();
    try {
      return entriesById(tx, GOV_MAPS.encryptedSubmittedShares).map(([id, record]) => {
        const bytes = fromBase64(record.encrypted_share) ?? new Uint8Array(0);
        const key = this.deps.history.secrets.secretFor(record.version as Seqno).gcmKey;
        const cut = bytes.byteLength - GCM_TAG_BYTES;
        const plain = gcmDecrypt(
          key,
          bytes.subarray(0, GCM_IV_BYTES),
          bytes.subarray(GCM_IV_BYTES, cut),
          bytes.subarray(cut),
          utf8(id),
        );
        if (plain === null) {
          throw new DisasterRecoveryError(
            { code: DisasterRecoveryErrorCode.ShareDoesNotUnseal, memberId: id },
            `the share submitted by ${id} does not unseal`,
          );
        }
        return plain;
      });
    } finally {
      tx.close();
    }
  }

  /**
   * The end of the recovery (see the module comment), started after the transaction that
   * recorded the last share needed. Runs once at a time; failures are logged and leave the
   * service waiting for shares.
   */
  async complete(): Promise<void> {
    if (this.completing || this.finished) return;
    this.completing = true;
    try {
      await this.completeOnce();
    } catch (e) {
      // The recovery's top-level handler (it runs after the share's transaction): a failure
      // leaves the service waiting for shares, but an assertion is a bug and crashes the node.
      if (e instanceof AssertionError) throw e;
      this.deps.log(`recovery did not complete: ${e instanceof Error ? e.message : String(e)}`);
      this.replayed = { seqno: 0, percent: 0 };
      this.deps.setState("PartOfPublicNetwork");
    } finally {
      this.completing = false;
    }
  }

  private async completeOnce(): Promise<void> {
    const tx = this.deps.store.begin();
    const status = getSingleton(tx, GOV_MAPS.serviceInfo)?.status;
    const wrapped = getSingleton(tx, GOV_MAPS.encryptedLedgerSecrets);
    tx.close();
    if (status !== "WaitingForRecoveryShares") return;
    if (wrapped === undefined) {
      throw new DisasterRecoveryError(
        { code: DisasterRecoveryErrorCode.NoEncryptedLedgerSecrets },
        "the previous service recorded no encrypted ledger secrets",
      );
    }
    let list;
    try {
      const shares = this.submittedShares();
      const payload = await recoverLedgerSecret(
        shares,
        fromBase64(wrapped.encrypted_ledger_secret) ?? new Uint8Array(0),
      );
      list = decodeLedgerSecretList(payload);
    } catch (e) {
      if (!(e instanceof RecoveryError)) throw e;
      this.deps.log(`the submitted shares do not recover the ledger secrets: ${e.message}`);
      this.clearShares();
      return;
    }
    this.deps.log(`ledger secrets recovered (${list.length}); replaying the private domain`);
    this.deps.setState("ReadingPrivateLedger");
    this.deps.pipeline.flushLedger();
    const started = performance.now();
    const privateStore = await replayPrivate({
      ledgerDir: this.deps.ledgerDir,
      readOnlyDirectories: this.deps.readOnlyDirectories,
      secrets: LedgerSecrets.fromList(list),
      snapshot: this.point.snapshot,
      upTo: this.point.upTo,
      workers: REPLAY_WORKERS,
      onProgress: (seqno, read, total) => {
        this.replayed = { seqno, percent: Math.round((100 * read) / total) };
        this.deps.log(`private replay: seqno ${seqno}, ${this.replayed.percent}%`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    this.deps.log(
      `private replay: ${this.point.upTo} transactions in ${seconds.toFixed(2)} s ` +
        `(${Math.round(this.point.upTo / Math.max(seconds, 1e-6))} tx/s)`,
    );
    this.deps.history.secrets.restoreHistorical(list, (this.point.upTo + 1) as Seqno);
    this.deps.store.installRecovered(privateStore, this.point.upTo);
    this.openRecovered(await this.endorsePreviousIdentities());
    this.finished = true;
    this.deps.setState("PartOfNetwork");
    this.deps.afterOpen();
  }

  /** The transaction that reopens the service, retried up to OPEN_RETRIES_MAX times. */
  private openRecovered(endorsements: string[]): void {
    for (let attempt = 0; ; attempt++) {
      const outcome = this.deps.system.write("recovery open", (t) => {
        const info = getSingleton(t, GOV_MAPS.serviceInfo)!;
        setSingleton(t, GOV_MAPS.serviceInfo, { ...info, status: "Open" });
        setSingleton(t, GOV_MAPS.previousServiceIdentityEndorsement, endorsements);
        for (const [id] of entriesById(t, GOV_MAPS.encryptedSubmittedShares)) {
          deleteById(t, GOV_MAPS.encryptedSubmittedShares, id);
        }
      });
      if (outcome.kind === "written") {
        const txid = formatTxId(outcome.txId);
        this.deps.log(`recovery complete: the service is Open again at ${txid}`);
        return;
      }
      if (attempt >= OPEN_RETRIES_MAX) {
        throw new DisasterRecoveryError(
          {
            code: DisasterRecoveryErrorCode.OpenFailed,
            attempts: attempt + 1,
            outcome: outcome.reason,
          },
          `the service could not be opened (${outcome.reason})`,
        );
      }
    }
  }

  /**
   * Every previous identity re-issued by the new service key: the one recovered from, and each
   * one its own endorsements named (earlier recoveries), so one endorsement links any old
   * receipt to the current service.
   */
  private async endorsePreviousIdentities(): Promise<string[]> {
    const tx = this.deps.store.begin();
    const earlier = getSingleton(tx, GOV_MAPS.previousServiceIdentityEndorsement) ?? [];
    tx.close();
    const identity = this.deps.serviceIdentity();
    const previous = [...earlier, this.point.previousServiceCertPem];
    const out: string[] = [];
    for (const pem of previous) {
      out.push(
        await endorseServiceCertificate({
          servicePrivateKey: identity.privateKey,
          serviceCertPem: identity.certPem,
          endorsedPublicKey: publicKeyOfCert(pem),
          validityDays: ENDORSEMENT_VALIDITY_DAYS,
          now: this.deps.now(),
        }),
      );
    }
    return out;
  }

  private clearShares(): void {
    const outcome = this.deps.system.write("recovery shares cleared", (tx) => {
      for (const [id] of entriesById(tx, GOV_MAPS.encryptedSubmittedShares)) {
        deleteById(tx, GOV_MAPS.encryptedSubmittedShares, id);
      }
    });
    const result = outcome.kind === "written" ? "written" : outcome.reason;
    this.deps.log(`submitted shares cleared (${result}); members may submit again`);
  }
}
