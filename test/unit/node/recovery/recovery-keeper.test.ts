// RecoveryKeeper: the shares it issues rebuild every ledger secret, and a rekey's re-wrap
// (rewrap) makes the new secret recoverable in the rekey's own transaction, before any reshare.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fromBase64, toBase64 } from "../../../../src/base/bytes.js";
import type { Seqno, View } from "../../../../src/base/ids.js";
import { generateEncryptionKey } from "../../../../src/crypto/identity.js";
import {
  getById,
  getSingleton,
  GOV_MAPS,
  setById,
  setSingleton,
} from "../../../../src/gov/tables.js";
import { Store } from "../../../../src/kv/store.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { decodeLedgerSecretList, LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { RecoveryKeeper } from "../../../../src/node/recovery/recovery-keeper.js";
import {
  decryptShare,
  recoverLedgerSecret,
  RecoveryError,
  RecoveryErrorCode,
} from "../../../../src/node/recovery/recovery-shares.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import { SystemTransactions } from "../../../../src/node/pipeline/system-tx.js";
import { tempDir } from "../../../helpers/pki.js";

const MEMBERS = ["m0", "m1", "m2"].map((id) => ({ id, key: generateEncryptionKey() }));
const THRESHOLD = 2;

async function makeRig(t: { after(f: () => unknown): void }) {
  const ids = await createStartIdentities({ now: new Date() });
  const { dir, cleanup } = tempDir("consortia-recovery-keeper-");
  const secrets = new LedgerSecrets(new Uint8Array(randomBytes(32)));
  const store = new Store();
  const history = new TxHistory(secrets);
  const pipeline = new TxPipeline({
    store,
    history,
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    identity: ids.node,
    options: {
      view: 2 as View,
      sigTxInterval: 100,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 1,
    },
    nowMs: 0,
  });
  t.after(async () => {
    await pipeline.close();
    cleanup();
  });
  const outcome = pipeline.execute((tx) => {
    setSingleton(tx, GOV_MAPS.serviceInfo, {
      cert: ids.serviceCertPem,
      status: "Open",
      recovery_count: 0,
      service_data: null,
    });
    setSingleton(tx, GOV_MAPS.serviceConfig, {
      recovery_threshold: THRESHOLD,
      consensus: "CFT",
      maximum_node_certificate_validity_days: 365,
      maximum_service_certificate_validity_days: 365,
      reconfiguration_type: "OneTransaction",
      recent_cose_proposals_window_size: 100,
    });
    for (const m of MEMBERS) {
      setById(tx, GOV_MAPS.memberInfo, m.id, { status: "Active", recovery_role: "Participant" });
      setById(tx, GOV_MAPS.memberEncryptionKeys, m.id, m.key.publicKeyPem);
    }
  });
  assert.equal(outcome.kind, "committed");
  const keeper = () =>
    new RecoveryKeeper({
      system: new SystemTransactions(pipeline),
      store,
      secrets: () => history.secrets,
      isPrimary: () => true,
      log: () => {},
    });
  return { store, history, pipeline, keeper };
}

async function issued(keeper: RecoveryKeeper, count: number): Promise<void> {
  for (let i = 0; i < 500 && keeper.issued < count; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(keeper.issued, count, "shares issued");
}

/** What `threshold` members' shares rebuild from the store's records. */
async function recovered(store: Store, members = MEMBERS.slice(0, THRESHOLD)) {
  const tx = store.begin();
  try {
    const shares = members.map((m) =>
      decryptShare(
        fromBase64(getById(tx, GOV_MAPS.recoveryShares, m.id)!.encrypted_share)!,
        m.key.privateKeyPem,
      ),
    );
    const record = getSingleton(tx, GOV_MAPS.encryptedLedgerSecrets)!;
    const payload = await recoverLedgerSecret(shares, fromBase64(record.encrypted_ledger_secret)!);
    return { record, list: decodeLedgerSecretList(payload) };
  } finally {
    tx.close();
  }
}

test("issued shares rebuild every ledger secret, with the seqno each is in force from", async (t) => {
  const rig = await makeRig(t);
  rig.history.secrets.add(5 as Seqno, new Uint8Array(32).fill(7));
  const keeper = rig.keeper();
  keeper.scheduleRefresh();
  await issued(keeper, 1);
  const { list, record } = await recovered(rig.store);
  assert.deepEqual(list, rig.history.secrets.list());
  assert.equal(record.version, 5);
  assert.equal(record.recovery_threshold, THRESHOLD);
  // One share is not enough.
  await assert.rejects(recovered(rig.store, MEMBERS.slice(0, 1)));
});

test("a rekey's re-wrap makes the new secret recoverable before any reshare", async (t) => {
  const rig = await makeRig(t);
  const keeper = rig.keeper();
  keeper.scheduleRefresh();
  await issued(keeper, 1);
  const key = new Uint8Array(randomBytes(32));
  const fromSeqno = rig.store.seqno + 2;
  const outcome = rig.pipeline.execute((tx) =>
    keeper.rewrap(tx, [...rig.history.secrets.list(), { fromSeqno, key }], fromSeqno),
  );
  assert.equal(outcome.kind, "committed");
  const { list, record } = await recovered(rig.store);
  assert.equal(keeper.issued, 1, "no reshare happened");
  assert.equal(list.length, 2);
  assert.deepEqual(list[1], { fromSeqno, key });
  assert.equal(record.version, fromSeqno);
  // A second rekey re-wraps again under the same key.
  const later = rig.store.seqno + 2;
  const key2 = new Uint8Array(randomBytes(32));
  rig.pipeline.execute((tx) =>
    keeper.rewrap(tx, [...list, { fromSeqno: later, key: key2 }], later),
  );
  assert.deepEqual((await recovered(rig.store)).list.at(-1), { fromSeqno: later, key: key2 });
});

test("rewrap refuses without the current recovery key, and schedules a reshare", async (t) => {
  const rig = await makeRig(t);
  const issuer = rig.keeper();
  issuer.scheduleRefresh();
  await issued(issuer, 1);
  // Another node's keeper (a new primary) never issued the shares the store holds.
  const other = rig.keeper();
  const key = new Uint8Array(randomBytes(32));
  const before = rig.store.seqno;
  assert.throws(
    () =>
      rig.pipeline.execute((tx) =>
        other.rewrap(tx, [...rig.history.secrets.list(), { fromSeqno: before + 2, key }], 2),
      ),
    (e: unknown) =>
      e instanceof RecoveryError &&
      e.code === RecoveryErrorCode.KeyNotHeld &&
      /does not hold the current recovery key/.test(e.message),
  );
  assert.equal(rig.store.seqno, before, "nothing written");
  await issued(other, 1);
  // Now the issuer's key is stale: the store holds the other keeper's record.
  assert.throws(
    () =>
      rig.pipeline.execute((tx) =>
        issuer.rewrap(tx, [...rig.history.secrets.list(), { fromSeqno: 99, key }], 99),
      ),
    /does not hold the current recovery key/,
  );
  // A record it did not write (tampered or replaced) is refused too.
  rig.pipeline.execute((tx) => {
    const current = getSingleton(tx, GOV_MAPS.encryptedLedgerSecrets)!;
    const forged = toBase64(new Uint8Array(64));
    setSingleton(tx, GOV_MAPS.encryptedLedgerSecrets, {
      ...current,
      encrypted_ledger_secret: forged,
    });
  });
  assert.throws(
    () =>
      rig.pipeline.execute((tx) =>
        other.rewrap(tx, [...rig.history.secrets.list(), { fromSeqno: 99, key }], 99),
      ),
    /does not hold the current recovery key/,
  );
});
