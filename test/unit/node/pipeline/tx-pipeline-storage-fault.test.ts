// TxPipeline under a disk fault (SECURITY.md, "Disk faults"): a standalone pipeline (it syncs
// and commits at each signature itself) over a LedgerWriter whose fdatasync fails with an
// injected EIO (test/helpers/failing-fs.ts; a real EIO needs device-mapper). Oracles: the
// outcomes and the commit point the pipeline reports, the count of file calls after the fault,
// and the ledger reopened with the real file system and read back by the reader: every
// transaction the pipeline reported committed is there.
import { test } from "node:test";
import assert from "node:assert/strict";
import { utf8 } from "../../../../src/base/bytes.js";
import type { View } from "../../../../src/base/ids.js";
import type { StorageError } from "../../../../src/base/storage-error.js";
import { Store } from "../../../../src/kv/store.js";
import type { Tx } from "../../../../src/kv/tx.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { readLedger } from "../../../../src/ledger/io/ledger-reader.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { InlineSealer } from "../../../../src/node/pipeline/sealer.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { FailingFs } from "../../../helpers/failing-fs.js";
import { tempDir } from "../../../helpers/pki.js";

const MAP = "public:records";

function writeRecord(i: number) {
  return (tx: Tx) => {
    tx.rw(MAP).set(utf8(`k${i}`), utf8(`v${i}`));
  };
}

test("a failed ledger sync stops the pipeline: no commit, later writes refused, fault told once", async () => {
  const ids = await createStartIdentities({ now: new Date() });
  const { dir, cleanup } = tempDir("consortia-pipeline-fault-");
  const fs = new FailingFs();
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(7));
  const faults: StorageError[] = [];
  const pipeline = new TxPipeline({
    store: new Store(),
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20, fs }),
    sealer: new InlineSealer(secrets),
    identity: ids.node,
    options: {
      view: 2 as View,
      sigTxInterval: 2,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
    },
    nowMs: 0,
    onStorageFault: (fault) => faults.push(fault),
  });
  try {
    // Transactions 1 and 2, then the signature at 3: synced, so committed.
    for (const i of [1, 2]) assert.equal(pipeline.execute(writeRecord(i)).kind, "committed");
    assert.equal(pipeline.commitTxId.seqno, 3);
    fs.fail("fdatasyncSync", "EIO");
    assert.equal(pipeline.execute(writeRecord(4)).kind, "committed"); // buffered, not signed
    const failed = pipeline.execute(writeRecord(5)); // its signature's sync fails
    assert.equal(failed.kind, "storage-fault");
    assert.equal(faults.length, 1);
    assert.equal(faults[0]!.type.errno, "EIO");
    assert.equal(failed.kind === "storage-fault" ? failed.fault : null, faults[0]);
    assert.equal(pipeline.storageFault, faults[0]);
    // Nothing past the last successful sync is committed, now or later.
    assert.equal(pipeline.commitTxId.seqno, 3);
    const callsAtFault = fs.totalCalls;
    const refused = pipeline.execute(writeRecord(6));
    assert.deepEqual(refused, { kind: "storage-fault", fault: faults[0] });
    assert.throws(
      () => pipeline.emitSignature(),
      (e) => e === faults[0],
    );
    assert.throws(
      () => pipeline.syncLedger(),
      (e) => e === faults[0],
    );
    assert.equal(pipeline.commitTxId.seqno, 3);
    // Reads are still answered from memory while the node stops.
    const read = pipeline.execute((tx) => tx.ro(MAP).get(utf8("k1")));
    assert.equal(read.kind, "read-only");
    assert.equal(fs.totalCalls, callsAtFault, "no file call after the fault");
    await pipeline.close(); // abandons the ledger: no sync
    assert.equal(fs.calls.get("fdatasyncSync"), fs.calls.get("fdatasyncSync") ?? 0);
    assert.equal(faults.length, 1, "the fault is told once");
    // Reopened on the real file system: every committed transaction is in the ledger.
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 });
    assert.ok(reopened.lastSeqno >= 3, `reopened at ${reopened.lastSeqno}`);
    reopened.close();
    const seqnos = [...readLedger(dir)].flatMap((item) =>
      item.kind === "entry" ? [item.seqno] : [],
    );
    assert.deepEqual(seqnos.slice(0, 3), [1, 2, 3]);
  } finally {
    cleanup();
  }
});
