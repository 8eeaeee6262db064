// DisasterRecovery (src/node/disaster-recovery.ts) in-process, on a real recovery rig: service A
// writes a ledger through TxPipeline (service.info, nodes, recovery threshold, its ledger secrets
// wrapped under a recovery wrapping key, private and public app writes); the rig replays it
// publicly (replayPublic), sets the rest aside and continues the same ledger with a pipeline of
// service B, as NodeHost does for command Recover. Then writeStart, isRecoveredFrom, recordShare
// and complete() run against that store, and the store is the oracle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { fromBase64, toBase64 } from "../../../../src/base/bytes.js";
import type { Seqno, View } from "../../../../src/base/ids.js";
import { isIssuedBy, sameCertificate } from "../../../../src/crypto/certs.js";
import {
  entriesById,
  getById,
  getSingleton,
  GOV_MAPS,
  type GovMap,
  type NodeInfo,
  setById,
  setSingleton,
} from "../../../../src/gov/tables.js";
import { Store } from "../../../../src/kv/store.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { encodeLedgerSecretList, LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { DisasterRecovery } from "../../../../src/node/recovery/disaster-recovery.js";
import {
  createStartIdentities,
  type StartIdentities,
} from "../../../../src/node/startup/start-identities.js";
import type { NodeStartupState } from "../../../../src/node/frontends/node-context.js";
import {
  replayPublic,
  setAsideLedgerAfter,
} from "../../../../src/node/recovery/recovery-replay.js";
import {
  WRAPPING_KEY_BYTES,
  wrapLedgerSecrets,
} from "../../../../src/node/recovery/recovery-shares.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import { SystemTransactions } from "../../../../src/node/pipeline/system-tx.js";
import { PRIVATE_MAP, privateValue, txKey } from "../../../helpers/ledger-fixture.js";
import { tempDir } from "../../../helpers/pki.js";

const OLD_VIEW = 2 as View;
const NEW_VIEW = 5 as View;
const CHUNK_BYTES = 4096;
const APP_TXS = 8;
const serviceA = createStartIdentities({ now: new Date() });
const serviceB = createStartIdentities({ now: new Date() });

function nodeInfo(status: NodeInfo["status"], extra: Partial<NodeInfo> = {}): NodeInfo {
  return {
    node_to_node_interface: { bind_address: "127.0.0.1:0" },
    rpc_interfaces: {},
    quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
    encryption_pub_key: "",
    status,
    node_data: null,
    ...extra,
  };
}

function pipelineOn(
  store: Store,
  history: TxHistory,
  dir: string,
  ids: StartIdentities,
  view: View,
): TxPipeline {
  return new TxPipeline({
    store,
    history,
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES }),
    identity: ids.node,
    options: {
      view,
      sigTxInterval: 3,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 1,
    },
    nowMs: 0,
  });
}

async function commit(pipeline: TxPipeline, f: Parameters<TxPipeline["execute"]>[0]) {
  const outcome = await pipeline.execute(f);
  assert.equal(outcome.kind, "committed");
  return outcome;
}

function read<V>(store: Store, map: GovMap<V>): V | undefined {
  const tx = store.begin();
  try {
    return getSingleton(tx, map);
  } finally {
    tx.close();
  }
}

interface Rig {
  readonly a: StartIdentities;
  readonly b: StartIdentities;
  readonly oldSecrets: LedgerSecrets;
  readonly wrappingKey: Uint8Array;
  readonly store: Store;
  readonly history: TxHistory;
  readonly pipeline: TxPipeline;
  readonly recovery: DisasterRecovery;
  readonly upTo: Seqno;
  readonly states: NodeStartupState[];
  readonly log: string[];
  afterOpenCalls: number;
  cleanup(): Promise<void>;
}

/** Service A's ledger, replayed, continued by service B (see the file comment). */
async function makeRig(threshold: number): Promise<Rig> {
  const a = await serviceA;
  const b = await serviceB;
  const { dir, cleanup } = tempDir("consortia-disaster-recovery-");
  // Service A.
  const oldSecrets = new LedgerSecrets(new Uint8Array(randomBytes(32)));
  const wrappingKey = new Uint8Array(randomBytes(WRAPPING_KEY_BYTES));
  const old = pipelineOn(new Store(), new TxHistory(oldSecrets), dir, a, OLD_VIEW);
  await commit(old, (tx) => {
    setSingleton(tx, GOV_MAPS.serviceInfo, {
      cert: a.serviceCertPem,
      status: "Open",
      recovery_count: 0,
      service_data: { name: "A" },
    });
    setSingleton(tx, GOV_MAPS.serviceConfig, {
      recovery_threshold: threshold,
      consensus: "CFT",
      maximum_node_certificate_validity_days: 365,
      maximum_service_certificate_validity_days: 365,
      reconfiguration_type: "OneTransaction",
      recent_cose_proposals_window_size: 100,
    });
    setSingleton(tx, GOV_MAPS.encryptedLedgerSecrets, {
      version: 1,
      encrypted_ledger_secret: toBase64(
        wrapLedgerSecrets(wrappingKey, encodeLedgerSecretList(oldSecrets.list())),
      ),
      recovery_threshold: threshold,
    });
    setById(tx, GOV_MAPS.nodeInfo, a.node.nodeId, nodeInfo("Trusted"));
    setById(tx, GOV_MAPS.nodeInfo, "n-old", nodeInfo("Retired", { retired_committed: true }));
    setById(tx, GOV_MAPS.nodeInfo, "n-pending", nodeInfo("Pending"));
    // A share submitted in an earlier, interrupted recovery: the new start clears it.
    setById(tx, GOV_MAPS.encryptedSubmittedShares, "stale", { encrypted_share: "", version: 1 });
  });
  for (let i = 1; i <= APP_TXS; i++) {
    await commit(old, (tx) => tx.rw(PRIVATE_MAP).set(txKey(i), privateValue(i)));
  }
  await old.close();
  // Service B recovers it.
  const replay = await replayPublic({
    ledgerDir: dir,
    previousServiceCertPem: a.serviceCertPem,
    secrets: new LedgerSecrets(new Uint8Array(randomBytes(32))),
    log: () => {},
  });
  setAsideLedgerAfter(dir, replay.lastSignedSeqno, () => {});
  const pipeline = pipelineOn(replay.store, replay.history, dir, b, NEW_VIEW);
  const states: NodeStartupState[] = [];
  const log: string[] = [];
  const rig: Rig = {
    a,
    b,
    oldSecrets,
    wrappingKey,
    store: replay.store,
    history: replay.history,
    pipeline,
    upTo: replay.lastSignedSeqno,
    states,
    log,
    afterOpenCalls: 0,
    recovery: new DisasterRecovery(
      {
        pipeline,
        system: new SystemTransactions(pipeline),
        store: replay.store,
        history: replay.history,
        ledgerDir: dir,
        readOnlyDirectories: [],
        serviceIdentity: () => ({
          certPem: b.serviceCertPem,
          privateKey: b.serviceKeys.privateKey,
        }),
        setState: (state) => states.push(state),
        afterOpen: () => rig.afterOpenCalls++,
        now: () => new Date(),
        log: (line) => log.push(line),
      },
      {
        upTo: replay.lastSignedSeqno,
        upToView: replay.lastView,
        lastSignedRoot: replay.lastSignedRoot,
        previousServiceCertPem: a.serviceCertPem,
      },
    ),
    cleanup: async () => {
      await pipeline.close();
      cleanup();
    },
  };
  return rig;
}

async function writeStart(rig: Rig): Promise<void> {
  const seqno = rig.store.seqno + 1;
  await commit(rig.pipeline, (tx) =>
    rig.recovery.writeStart(
      tx,
      { id: rig.b.node.nodeId, info: nodeInfo("Pending"), certPem: rig.b.node.certPem },
      `${NEW_VIEW}.${seqno}`,
    ),
  );
}

async function setStatus(rig: Rig, status: "WaitingForRecoveryShares"): Promise<void> {
  await commit(rig.pipeline, (tx) => {
    const info = getSingleton(tx, GOV_MAPS.serviceInfo)!;
    setSingleton(tx, GOV_MAPS.serviceInfo, { ...info, status });
  });
}

/** Submits `share` as `memberId` in its own transaction; returns recordShare's answer. */
async function submit(rig: Rig, memberId: string, share: Uint8Array) {
  const outcome = await rig.pipeline.execute((tx) => rig.recovery.recordShare(tx, memberId, share));
  assert.equal(outcome.kind, "committed");
  return outcome.kind === "committed" ? outcome.result : assert.fail("not committed");
}

const wholeKey = (key: Uint8Array): Uint8Array => Uint8Array.from([0x00, ...key]);
/** A Shamir-share-shaped share (tag 1, x, 32 bytes): enough for counting. */
const fakeShare = (x: number): Uint8Array => Uint8Array.from([0x01, x, ...randomBytes(32)]);

test("writeStart: Recovering, recovery_count + 1, previous identity, nodes retired", async () => {
  const rig = await makeRig(2);
  try {
    const startSeqno = rig.store.seqno + 1;
    await writeStart(rig);
    const info = read(rig.store, GOV_MAPS.serviceInfo)!;
    assert.ok(sameCertificate(info.cert, rig.b.serviceCertPem), "the new service certificate");
    assert.equal(info.status, "Recovering");
    assert.equal(info.recovery_count, 1);
    assert.deepEqual(info.service_data, { name: "A" }, "service data carried over");
    assert.equal(info.current_service_create_txid, `${NEW_VIEW}.${startSeqno}`);
    assert.equal(info.previous_service_identity_version, rig.upTo);
    const previous = read(rig.store, GOV_MAPS.previousServiceIdentity)!;
    assert.ok(sameCertificate(previous, rig.a.serviceCertPem));
    const root = read(rig.store, GOV_MAPS.previousServiceLastSignedRoot)!;
    assert.equal(root.txid, `${OLD_VIEW}.${rig.upTo}`);
    assert.equal(root.root, rig.recovery.point.lastSignedRoot);
    assert.match(root.root, /^[0-9a-f]{64}$/);
    const tx = rig.store.begin();
    try {
      const nodes = Object.fromEntries(entriesById(tx, GOV_MAPS.nodeInfo));
      assert.equal(nodes[rig.a.node.nodeId]!.status, "Retired");
      assert.equal(nodes[rig.a.node.nodeId]!.retired_committed, true);
      assert.equal(nodes["n-pending"]!.status, "Retired");
      assert.equal(nodes["n-old"]!.status, "Retired");
      assert.equal(nodes[rig.b.node.nodeId]!.status, "Trusted", "this node, whatever it said");
      const trusted = Object.values(nodes).filter((n) => n.status === "Trusted");
      assert.equal(trusted.length, 1);
      assert.equal(getById(tx, GOV_MAPS.nodeEndorsedCerts, rig.b.node.nodeId), rig.b.node.certPem);
      assert.deepEqual(entriesById(tx, GOV_MAPS.encryptedSubmittedShares), [], "stale shares gone");
    } finally {
      tx.close();
    }
    // The previous node's retirement is the only change to its record.
    const lastWrite = rig.store.lastWriteSeqno(GOV_MAPS.nodeInfo.name);
    assert.equal(lastWrite, startSeqno);
  } finally {
    await rig.cleanup();
  }
});

test("isRecoveredFrom accepts the recorded previous identity and refuses another", async () => {
  const rig = await makeRig(1);
  try {
    await writeStart(rig);
    const tx = rig.store.begin();
    try {
      assert.equal(rig.recovery.isRecoveredFrom(tx, rig.a.serviceCertPem), true);
      assert.equal(rig.recovery.isRecoveredFrom(tx, rig.b.serviceCertPem), false);
      assert.equal(rig.recovery.isRecoveredFrom(tx, "not a certificate"), false);
    } finally {
      tx.close();
    }
  } finally {
    await rig.cleanup();
  }
});

test("isRecoveredFrom refuses before a previous identity is recorded", async () => {
  const rig = await makeRig(1);
  try {
    const tx = rig.store.begin();
    try {
      assert.equal(rig.recovery.isRecoveredFrom(tx, rig.a.serviceCertPem), false);
    } finally {
      tx.close();
    }
  } finally {
    await rig.cleanup();
  }
});

test("recordShare counts distinct members and completes at the threshold", async () => {
  const rig = await makeRig(2);
  try {
    await writeStart(rig);
    await setStatus(rig, "WaitingForRecoveryShares");
    const first = await submit(rig, "m1", fakeShare(1));
    assert.deepEqual(first, { submitted: 1, threshold: 2, complete: false });
    const again = await submit(rig, "m1", fakeShare(1));
    assert.deepEqual(again, { submitted: 1, threshold: 2, complete: false }, "a resubmission");
    const second = await submit(rig, "m2", fakeShare(2));
    assert.deepEqual(second, { submitted: 2, threshold: 2, complete: true });
    // Sealed with the new service's ledger secret, never in the clear.
    const tx = rig.store.begin();
    try {
      const records = entriesById(tx, GOV_MAPS.encryptedSubmittedShares);
      assert.deepEqual(
        records.map(([id]) => id),
        ["m1", "m2"],
      );
      for (const [, record] of records) {
        const bytes = fromBase64(record.encrypted_share)!;
        assert.equal(bytes.byteLength, 12 + 34 + 16, "IV, sealed share, tag");
        assert.equal(record.version, rig.history.secrets.latest.fromSeqno);
      }
    } finally {
      tx.close();
    }
  } finally {
    await rig.cleanup();
  }
});

test("recordShare completes with one whole key whatever the threshold", async () => {
  const rig = await makeRig(3);
  try {
    await writeStart(rig);
    const answer = await submit(rig, "owner", wholeKey(rig.wrappingKey));
    assert.deepEqual(answer, { submitted: 1, threshold: 3, complete: true });
  } finally {
    await rig.cleanup();
  }
});

test("complete() restores the private domain, the secrets and opens the service", async () => {
  const rig = await makeRig(2);
  try {
    await writeStart(rig);
    await setStatus(rig, "WaitingForRecoveryShares");
    assert.equal(rig.store.get(PRIVATE_MAP, txKey(1)), undefined, "no private domain yet");
    assert.equal((await submit(rig, "owner", wholeKey(rig.wrappingKey))).complete, true);
    assert.deepEqual(rig.recovery.progress, {
      phase: "WaitingForShares",
      up_to: rig.upTo,
      replayed_seqno: 0,
      percent: 0,
    });
    await rig.recovery.complete();
    assert.ok(rig.recovery.done, rig.log.join("\n"));
    assert.deepEqual(rig.recovery.progress, {
      phase: "Complete",
      up_to: rig.upTo,
      replayed_seqno: rig.upTo,
      percent: 100,
    });
    for (let i = 1; i <= APP_TXS; i++) {
      assert.deepEqual(rig.store.get(PRIVATE_MAP, txKey(i)), privateValue(i), `tx ${i}`);
    }
    const info = read(rig.store, GOV_MAPS.serviceInfo)!;
    assert.equal(info.status, "Open");
    assert.equal(info.recovery_count, 1);
    // The previous identity, re-issued by the new service key.
    const endorsements = read(rig.store, GOV_MAPS.previousServiceIdentityEndorsement)!;
    assert.equal(endorsements.length, 1);
    assert.ok(isIssuedBy(endorsements[0]!, rig.b.serviceCertPem));
    const tx = rig.store.begin();
    try {
      assert.deepEqual(entriesById(tx, GOV_MAPS.encryptedSubmittedShares), [], "shares cleared");
    } finally {
      tx.close();
    }
    // Old seqnos decrypt with the previous service's secret; new ones keep this node's.
    const secrets = rig.history.secrets;
    assert.deepEqual(secrets.secretFor(1 as Seqno).key, rig.oldSecrets.secretFor(1 as Seqno).key);
    assert.deepEqual(secrets.secretFor(rig.upTo).key, rig.oldSecrets.latest.key);
    assert.notDeepEqual(secrets.secretFor((rig.upTo + 1) as Seqno).key, rig.oldSecrets.latest.key);
    assert.equal(secrets.secretFor((rig.upTo + 1) as Seqno).fromSeqno, rig.upTo + 1);
    assert.deepEqual(rig.states, ["ReadingPrivateLedger", "PartOfNetwork"]);
    assert.equal(rig.afterOpenCalls, 1);
    // Once done, complete() does nothing more.
    const seqno = rig.store.seqno;
    await rig.recovery.complete();
    assert.equal(rig.store.seqno, seqno);
  } finally {
    await rig.cleanup();
  }
});

test("complete() with shares not rebuilding the key clears them and stays waiting", async () => {
  const rig = await makeRig(2);
  try {
    await writeStart(rig);
    await setStatus(rig, "WaitingForRecoveryShares");
    const wrongKey = new Uint8Array(randomBytes(WRAPPING_KEY_BYTES));
    await submit(rig, "owner", wholeKey(wrongKey));
    await rig.recovery.complete();
    assert.equal(rig.recovery.done, false);
    assert.equal(read(rig.store, GOV_MAPS.serviceInfo)!.status, "WaitingForRecoveryShares");
    assert.equal(rig.store.get(PRIVATE_MAP, txKey(1)), undefined);
    const tx = rig.store.begin();
    try {
      assert.deepEqual(entriesById(tx, GOV_MAPS.encryptedSubmittedShares), [], "shares cleared");
    } finally {
      tx.close();
    }
    assert.ok(
      rig.log.some((l) => l.includes("do not recover")),
      rig.log.join("\n"),
    );
    assert.equal(rig.afterOpenCalls, 0);
    // The members submit again, this time the right key: the recovery completes.
    await submit(rig, "owner", wholeKey(rig.wrappingKey));
    await rig.recovery.complete();
    assert.ok(rig.recovery.done, rig.log.join("\n"));
    assert.deepEqual(rig.store.get(PRIVATE_MAP, txKey(APP_TXS)), privateValue(APP_TXS));
  } finally {
    await rig.cleanup();
  }
});
