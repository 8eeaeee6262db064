/**
 * Ledger rekeys (trigger_ledger_rekey). Inside the proposal's transaction R the primary writes
 * a fresh 32-byte secret, RSA-OAEP encrypted to every Trusted node's encryption key, into the
 * ledger-secrets-for-nodes table, and re-wraps every secret (the new one included) under the key
 * of the recovery shares the members hold (RecoveryKeeper.rewrap), so every entry sealed with the
 * new secret is recoverable. Every node, as it commits (primary) or applies (backup) R, decrypts
 * its copy and adds the secret in force from R + 1, before any later entry is sealed or
 * decrypted. Joiners receive all secrets in the join answer instead.
 */
import { randomBytes } from "node:crypto";
import { assert } from "../../base/assert.js";
import { fromBase64, fromUtf8, toBase64, utf8 } from "../../base/bytes.js";
import type { NodeId, Seqno } from "../../base/ids.js";
import { rsaOaepDecrypt, rsaOaepEncrypt } from "../../crypto/identity.js";
import { entriesById, GOV_MAPS } from "../../gov/tables.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../kv/service-tables.js";
import type { Tx } from "../../kv/tx.js";
import type { WriteSet } from "../../kv/write-set.js";
import type { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import type { RecoveryKeeper } from "./recovery-keeper.js";

export interface RekeysDeps {
  readonly nodeId: NodeId;
  /** The node's RSA key: its copy of a new secret is encrypted to the public half. */
  readonly encryptionPrivateKeyPem: string;
  /** The seqno of the last transaction in the store (the rekey takes the next one). */
  readonly lastSeqno: () => number;
  readonly secrets: () => LedgerSecrets;
  readonly keeper: RecoveryKeeper;
  /** Hands a new secret, in force from `fromSeqno`, to whatever seals and decrypts entries. */
  readonly addSecret: (fromSeqno: Seqno, key: Uint8Array) => void;
  readonly log: (line: string) => void;
}

export class Rekeys {
  constructor(private readonly deps: RekeysDeps) {}

  /** trigger_ledger_rekey, called by the constitution inside the proposal's transaction. */
  write(tx: Tx): void {
    const key = new Uint8Array(randomBytes(32));
    // This transaction takes the next seqno (execution is synchronous); the secret applies after.
    const fromSeqno = this.deps.lastSeqno() + 2;
    this.deps.keeper.rewrap(tx, [...this.deps.secrets().list(), { fromSeqno, key }], fromSeqno);
    const forNodes: Record<string, string> = {};
    for (const [id, info] of entriesById(tx, GOV_MAPS.nodeInfo)) {
      if (info.status !== "Trusted") continue;
      forNodes[id] = toBase64(rsaOaepEncrypt(info.encryption_pub_key, key));
    }
    tx.rw(SERVICE_TABLES.ledgerSecretsForNodes).set(
      SINGLETON_KEY_BYTES,
      utf8(JSON.stringify(forNodes)),
    );
  }

  /** Every write set the node commits or applies: a rekey's secret, in force from seqno + 1. */
  onWriteSet(seqno: Seqno, writeSet: WriteSet): void {
    const map = writeSet.maps.find((m) => m.name === SERVICE_TABLES.ledgerSecretsForNodes);
    const value = map?.writes[0]?.value;
    if (value == null) return;
    if (this.deps.secrets().latest.fromSeqno > seqno) return; // known already (join answer)
    const forNodes = JSON.parse(fromUtf8(value)) as Record<string, string>;
    const mine = forNodes[this.deps.nodeId];
    if (mine === undefined) return; // not Trusted then: the join answer carries the secrets
    const encrypted = fromBase64(mine);
    assert(encrypted !== null, `the rekey at ${seqno} holds base64 secrets (Rekeys.write)`);
    const key = rsaOaepDecrypt(this.deps.encryptionPrivateKeyPem, encrypted);
    this.deps.addSecret((seqno + 1) as Seqno, key);
    this.deps.log(`ledger rekeyed at ${seqno}: a new secret from ${seqno + 1}`);
    this.deps.keeper.scheduleRefresh();
  }
}
