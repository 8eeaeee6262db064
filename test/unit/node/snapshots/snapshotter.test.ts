// Snapshotter (src/node/snapshotter.ts) on a real standalone pipeline: snapshots happen at the
// first signature tx_count transactions after the last one (and on request), hold exactly the
// store at that signature, become `.committed` only once a signature covers their evidence, and
// a backup never snapshots; the snapshot header holds the signature's leaf and the view history,
// and every key keeps the seqno of its last write (ccf-compatibility.md §6.6).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { toHex, utf8 } from "../../../../src/base/bytes.js";
import { sha256 } from "../../../../src/crypto/hash.js";
import { decodeEntry } from "../../../../src/ledger/entry-format.js";
import { readLedger } from "../../../../src/ledger/io/ledger-reader.js";
import { txLeaf } from "../../../../src/ledger/tx-leaf.js";
import { Store } from "../../../../src/kv/store.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { decodeSnapshot, parseSnapshotFileName } from "../../../../src/ledger/snapshot.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { tempDir } from "../../../helpers/pki.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";
import { standaloneSnapshotter } from "../../../helpers/snapshot-fixture.js";

const identities = await createStartIdentities({ now: new Date() });

type Status = "Unknown" | "Pending" | "Committed" | "Invalid";

/** The Merkle leaf of the entry at `seqno` in the ledger files (recomputed from its bytes). */
function leafInLedger(dir: string, seqno: number): Uint8Array {
  for (const item of readLedger(dir)) {
    if (item.kind !== "entry" || item.seqno !== seqno) continue;
    const e = decodeEntry(item.entry);
    return txLeaf(sha256(item.entry), e.commitEvidenceDigest, e.claimsDigest);
  }
  return assert.fail(`no entry ${seqno} in ${dir}`);
}

async function rig(primary: boolean, txInterval: number, status?: () => Status, offThread = false) {
  const snapDir = tempDir("consortia-snap-");
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(3));
  const { pipeline, store, snapshotter, ledgerDir } = standaloneSnapshotter({
    snapshotDir: snapDir.dir,
    identities,
    secrets,
    txInterval,
    isPrimary: () => primary,
    ...(status === undefined ? {} : { status }),
    offThread,
  });
  const write = (i: number) => {
    const outcome = pipeline.execute((tx) => {
      tx.rw("records").set(utf8(`k${i}`), utf8(`private ${i}`));
      tx.rw("public:records").set(utf8(`k${i}`), utf8(`public ${i}`));
    });
    assert.equal(outcome.kind, "committed");
  };
  const turn = () => new Promise((r) => setImmediate(r));
  const cleanup = async () => {
    await snapshotter.close();
    await pipeline.close();
    ledgerDir.cleanup();
    snapDir.cleanup();
  };
  return {
    pipeline,
    store,
    secrets,
    snapshotter,
    snapDir: snapDir.dir,
    ledgerDir: ledgerDir.dir,
    write,
    turn,
    cleanup,
  };
}

test("a snapshot at the first signature past tx_count holds that signature's store", async () => {
  const r = await rig(true, 10);
  try {
    // Signatures every 4 transactions: 5, 10, 15 (the first >= 10 after 0 is at 10).
    for (let i = 0; i < 8; i++) r.write(i);
    await r.turn(); // the evidence transaction runs after the signature
    const files = readdirSync(r.snapDir);
    assert.equal(files.length, 1, files.join());
    const name = parseSnapshotFileName(files[0]!)!;
    assert.equal(name.seqno, 10);
    assert.equal(name.committed, false, "not committed before a signature covers the evidence");
    // More writes: a signature after the evidence commits it (standalone pipelines commit at
    // their own signatures); the node calls onCommit after each commit.
    for (let i = 8; i < 12; i++) r.write(i);
    r.snapshotter.onCommit(r.pipeline.commitTxId.seqno);
    const committed = readdirSync(r.snapDir);
    assert.deepEqual(committed, [`snapshot_10_${name.evidenceSeqno}.committed`]);
    const decoded = decodeSnapshot(
      new Uint8Array(readFileSync(join(r.snapDir, committed[0]!))),
      r.secrets,
    );
    assert.equal(decoded.seqno, 10);
    assert.notEqual(decoded.receipt, null);
    // Transactions 1-4 and 6-9 wrote k0..k7; the store at 10 holds exactly those.
    const restored = Store.fromSnapshot(decoded.seqno, decoded.maps);
    const keys = [...restored.entries("records")].map(([k]) => Buffer.from(k).toString());
    assert.deepEqual(keys, ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"]);
    assert.ok(decoded.maps.some((m) => m.name === SERVICE_TABLES.tree));
    // CCF's header: the leaf of the signature at 10, and views 1 and 2 starting at seqno 1.
    assert.deepEqual(decoded.viewHistory, [1, 1]);
    assert.equal(decoded.view, 2);
    assert.equal(toHex(decoded.hashAtSnapshot), toHex(leafInLedger(r.ledgerDir, 10)));
    // Each key keeps the seqno of its last write: k0 was written by the first transaction.
    assert.equal(restored.lastWriteSeqno("records", utf8("k0")), 1);
    assert.equal(restored.lastWriteSeqno("records", utf8("k7")), 9);
    assert.equal(restored.lastWriteSeqno("records"), 9);
    // The next one comes tx_count transactions later: the signature at 20 (11 is the evidence,
    // 15 a signature not yet due).
    for (let i = 12; i < 16; i++) r.write(i);
    await r.turn();
    const seqnos = readdirSync(r.snapDir).map((f) => parseSnapshotFileName(f)!.seqno);
    assert.deepEqual(
      seqnos.sort((a, b) => a - b),
      [10, 20],
    );
  } finally {
    await r.cleanup();
  }
});

test("each snapshot written is reported with its size and the time since its signature", async () => {
  const snapDir = tempDir("consortia-snap-");
  let nowMs = 1000;
  const written: { sizeBytes: number; durationMs: number }[] = [];
  const { pipeline, snapshotter, ledgerDir } = standaloneSnapshotter({
    snapshotDir: snapDir.dir,
    identities,
    secrets: new LedgerSecrets(new Uint8Array(32).fill(3)),
    txInterval: 4,
    timing: {
      // Each read of the clock is 250 ms after the previous one: capture, then file written.
      monotonicMs: () => (nowMs += 250),
      onWritten: (w) => written.push(w),
    },
  });
  try {
    for (let i = 0; i < 4; i++)
      pipeline.execute((tx) => tx.rw("public:r").set(utf8(`${i}`), utf8("v")));
    await new Promise((r) => setImmediate(r));
    assert.equal(written.length, 1);
    const [file] = readdirSync(snapDir.dir);
    assert.equal(written[0]!.sizeBytes, readFileSync(join(snapDir.dir, file!)).byteLength);
    assert.equal(written[0]!.durationMs, 250);
  } finally {
    await snapshotter.close();
    await pipeline.close();
    ledgerDir.cleanup();
    snapDir.cleanup();
  }
});

test("trigger_snapshot snapshots at the next signature; a backup never snapshots", async () => {
  const r = await rig(true, 1_000_000);
  const backup = await rig(false, 1);
  try {
    for (let i = 0; i < 4; i++) r.write(i); // signature at 5, not due
    await r.turn();
    assert.equal(readdirSync(r.snapDir).length, 0);
    r.snapshotter.request();
    for (let i = 4; i < 8; i++) r.write(i); // signature at 10
    await r.turn();
    assert.equal(parseSnapshotFileName(readdirSync(r.snapDir)[0]!)?.seqno, 10);
    for (let i = 0; i < 8; i++) backup.write(i);
    await backup.turn();
    assert.equal(existsSync(backup.snapDir) && readdirSync(backup.snapDir).length, 0);
  } finally {
    await r.cleanup();
    await backup.cleanup();
  }
});

test("a snapshot whose evidence was rolled back is discarded, and snapshots resume", async () => {
  let status: Status = "Invalid";
  const r = await rig(true, 10, () => status);
  try {
    for (let i = 0; i < 8; i++) r.write(i); // snapshot at the signature at 10
    await r.turn();
    assert.equal(readdirSync(r.snapDir).length, 1);
    for (let i = 8; i < 12; i++) r.write(i);
    r.snapshotter.onCommit(r.pipeline.commitTxId.seqno); // the evidence reads as Invalid
    assert.deepEqual(readdirSync(r.snapDir), [], "the uncommitted file is removed");
    status = "Committed";
    for (let i = 12; i < 16; i++) r.write(i); // the next signature due (20) snapshots again
    await r.turn();
    assert.equal(parseSnapshotFileName(readdirSync(r.snapDir)[0]!)?.seqno, 20);
  } finally {
    await r.cleanup();
  }
});

test("off-thread encoding: the state packed at the signature, encoded like on-thread", async () => {
  const r = await rig(true, 10, undefined, true);
  try {
    for (let i = 0; i < 8; i++) r.write(i);
    // The snapshot at 10 was packed synchronously: writes after it must not leak into it.
    for (let i = 8; i < 10; i++) r.write(i);
    let files: string[] = [];
    for (let i = 0; i < 500 && files.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      files = readdirSync(r.snapDir);
    }
    assert.equal(files.length, 1, "the worker's snapshot was written");
    const name = parseSnapshotFileName(files[0]!)!;
    assert.equal(name.seqno, 10);
    for (let i = 10; i < 14; i++) r.write(i);
    r.snapshotter.onCommit(r.pipeline.commitTxId.seqno);
    const committed = readdirSync(r.snapDir);
    assert.deepEqual(committed, [`snapshot_10_${name.evidenceSeqno}.committed`]);
    const decoded = decodeSnapshot(
      new Uint8Array(readFileSync(join(r.snapDir, committed[0]!))),
      r.secrets,
    );
    const restored = Store.fromSnapshot(decoded.seqno, decoded.maps);
    const keys = [...restored.entries("records")].map(([k]) => Buffer.from(k).toString());
    assert.deepEqual(keys, ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"]);
    const publicKeys = [...restored.entries("public:records")].map(([k]) => k.byteLength);
    assert.equal(publicKeys.length, 8);
  } finally {
    await r.cleanup();
  }
});
