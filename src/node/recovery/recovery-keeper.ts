/**
 * Keeps the service's recovery shares current (ccf-compatibility.md §8.1; issue #5): on the
 * primary, after anything that changes who holds shares or how many are needed (the service
 * opening, a member becoming Active, set_member / remove_member of a recovery member, a threshold
 * change, trigger_recovery_shares_refresh), it issues fresh shares of a fresh wrapping key
 * (recovery-shares.ts) and writes them, with every ledger secret wrapped, in one transaction:
 * `public:ccf.internal.recovery_shares` (member id -> encrypted share) and
 * `public:ccf.internal.encrypted_ledger_secrets`.
 *
 * Issuing is asynchronous (Shamir splitting), so a trigger only schedules a refresh; the refresh
 * reads the state afresh in its own transaction, so a trigger from a transaction that was
 * later discarded costs one harmless reissue. Invariant: at most one refresh runs at a time;
 * triggers during a run cause exactly one more run.
 */
import { AssertionError } from "../../base/assert.js";
import { toBase64 } from "../../base/bytes.js";
import {
  entriesById,
  getById,
  getSingleton,
  GOV_MAPS,
  deleteById,
  setById,
  setSingleton,
} from "../../gov/tables.js";
import type { SystemTransactions } from "../pipeline/system-tx.js";
import type { Store } from "../../kv/store.js";
import { encodeLedgerSecretList, type LedgerSecrets } from "../../ledger/ledger-secrets.js";
import {
  issueRecoveryShares,
  RecoveryError,
  RecoveryErrorCode,
  wrapLedgerSecrets,
  type RecoveryMember,
} from "./recovery-shares.js";
import type { Tx } from "../../kv/tx.js";

export interface RecoveryKeeperDeps {
  /** Writes the shares' transaction. */
  readonly system: SystemTransactions;
  readonly store: Store;
  readonly secrets: () => LedgerSecrets;
  readonly isPrimary: () => boolean;
  readonly log: (line: string) => void;
}

export class RecoveryKeeper {
  private running = false;
  private again = false;
  /**
   * The wrapping key of the shares this node issued last, and the wrapped records it produced
   * under it (`encrypted_ledger_secret` values): while the store holds one of them, the members'
   * shares rebuild this key, so a rekey can re-wrap under it (rewrap).
   */
  private held: { wrappingKey: Uint8Array; records: Set<string> } | null = null;
  /** Refreshes completed (for tests and metrics). */
  issued = 0;

  constructor(private readonly deps: RecoveryKeeperDeps) {}

  /** Asks for fresh shares; runs on the primary once the current event-loop turn is over. */
  scheduleRefresh(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => {
      void this.run();
    });
  }

  private async run(): Promise<void> {
    try {
      do {
        this.again = false;
        if (this.deps.isPrimary()) await this.refresh();
      } while (this.again);
    } catch (e) {
      // The refresh's top-level handler: a failed refresh is logged and the next trigger
      // tries again, but an assertion is a bug and crashes the node (style.md §3.4).
      if (e instanceof AssertionError) throw e;
      this.deps.log(`recovery shares were not issued: ${e instanceof Error ? e.message : e}`);
    } finally {
      this.running = false;
    }
  }

  /** Active members with an encryption key and a recovery role; the threshold. */
  private recoveryPolicy(): { members: RecoveryMember[]; threshold: number } | null {
    const tx = this.deps.store.begin();
    try {
      const info = getSingleton(tx, GOV_MAPS.serviceInfo);
      if (info === undefined || info.status !== "Open") return null; // issued once open
      const threshold = getSingleton(tx, GOV_MAPS.serviceConfig)?.recovery_threshold ?? 1;
      const members: RecoveryMember[] = [];
      for (const [id, m] of entriesById(tx, GOV_MAPS.memberInfo)) {
        if (m.status !== "Active" || m.recovery_role === "NonParticipant") continue;
        const key = getById(tx, GOV_MAPS.memberEncryptionKeys, id);
        if (key === undefined) continue;
        members.push({ id, encryptionPublicKeyPem: key, role: m.recovery_role });
      }
      return { members, threshold };
    } finally {
      tx.close();
    }
  }

  private async refresh(): Promise<void> {
    const policy = this.recoveryPolicy();
    if (policy === null) return;
    const latest = this.deps.secrets().latest;
    let issued;
    try {
      const secrets = encodeLedgerSecretList(this.deps.secrets().list());
      issued = await issueRecoveryShares(secrets, policy.members, policy.threshold);
      // Secrets added meanwhile (a rekey) are wrapped by the next refresh it scheduled.
    } catch (e) {
      if (e instanceof RecoveryError) {
        this.deps.log(`recovery shares not issued: ${e.message}`);
        return;
      }
      throw e;
    }
    if (!this.deps.isPrimary()) return;
    const outcome = this.deps.system.write("recovery shares", (tx) => {
      for (const [id] of entriesById(tx, GOV_MAPS.recoveryShares)) {
        if (!issued.encryptedShares.has(id)) deleteById(tx, GOV_MAPS.recoveryShares, id);
      }
      for (const [id, share] of issued.encryptedShares) {
        setById(tx, GOV_MAPS.recoveryShares, id, { encrypted_share: toBase64(share) });
      }
      setSingleton(tx, GOV_MAPS.encryptedLedgerSecrets, {
        version: latest.fromSeqno,
        encrypted_ledger_secret: toBase64(issued.wrappedLedgerSecret),
        recovery_threshold: policy.threshold,
      });
    });
    if (outcome.kind !== "written") {
      this.deps.log(`recovery shares not recorded (${outcome.reason}); retrying`);
      this.again = true;
      return;
    }
    this.issued++;
    const record = toBase64(issued.wrappedLedgerSecret);
    this.held = { wrappingKey: issued.wrappingKey, records: new Set([record]) };
    this.deps.log(
      `recovery shares issued to ${issued.encryptedShares.size} members ` +
        `(threshold ${policy.threshold}) at ${outcome.txId.view}.${outcome.txId.seqno}`,
    );
  }

  /**
   * trigger_ledger_rekey, inside the rekey's transaction: wraps `secrets` (with the new one,
   * in force from `latestFrom`) under the key of the shares the members hold now, so every
   * transaction sealed with the new secret is recoverable from the first. Throws
   * RecoveryError(KeyNotHeld) when this node does not hold that key (it did not issue the
   * current shares, e.g. just after an election): a reshare is scheduled and the rekey can be
   * retried once it has committed.
   */
  rewrap(tx: Tx, secrets: readonly { fromSeqno: number; key: Uint8Array }[], latestFrom: number) {
    const current = getSingleton(tx, GOV_MAPS.encryptedLedgerSecrets);
    const held = this.held;
    if (
      current === undefined ||
      held === null ||
      !held.records.has(current.encrypted_ledger_secret)
    ) {
      this.scheduleRefresh();
      throw new RecoveryError(
        { code: RecoveryErrorCode.KeyNotHeld },
        "this primary does not hold the current recovery key yet (recovery shares are being " +
          "reissued): retry the rekey in a moment",
      );
    }
    const wrapped = wrapLedgerSecrets(held.wrappingKey, encodeLedgerSecretList(secrets));
    const record = toBase64(wrapped);
    held.records.add(record);
    setSingleton(tx, GOV_MAPS.encryptedLedgerSecrets, {
      ...current,
      version: latestFrom,
      encrypted_ledger_secret: record,
    });
  }
}
