/**
 * Committed snapshot files made by a real Snapshotter on a standalone pipeline, for the tests
 * that damage them (test/unit/node/snapshots/snapshot-faults.test.ts, test/property/
 * snapshot-files.test.ts): 20 transactions, a public and a private write each, a signature every
 * 4, and committed snapshots at seqnos 10 and 20.
 */
import assert from "node:assert/strict";
import { utf8 } from "../../src/base/bytes.js";
import type { Seqno, View } from "../../src/base/ids.js";
import { Store } from "../../src/kv/store.js";
import { TxHistory } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import type { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import type { StartIdentities } from "../../src/node/startup/start-identities.js";
import { InlineSealer } from "../../src/node/pipeline/sealer.js";
import { Snapshotter } from "../../src/node/snapshots/snapshotter.js";
import { TxPipeline } from "../../src/node/pipeline/tx-pipeline.js";
import { SystemTransactions } from "../../src/node/pipeline/system-tx.js";
import { tempDir } from "./pki.js";

/** Writes transactions through a pipeline; snapshots at 10 and 20 are committed. */
export async function buildSnapshots(
  snapshotDir: string,
  identities: StartIdentities,
  secrets: LedgerSecrets,
): Promise<void> {
  const ledgerDir = tempDir("consortia-snapfault-ledger-");
  const store = new Store();
  const history = new TxHistory(secrets);
  const pipeline = new TxPipeline({
    store,
    history,
    ledger: LedgerWriter.open(ledgerDir.dir, { chunkSizeBytes: 1 << 20 }),
    sealer: new InlineSealer(secrets),
    identity: identities.node,
    options: {
      view: 2 as View,
      sigTxInterval: 4,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
    },
    nowMs: 0,
    onSignature: (txId) => snapshotter.onSignature(txId),
  });
  const snapshotter = new Snapshotter({
    directory: snapshotDir,
    txInterval: 10,
    pipeline,
    system: new SystemTransactions(pipeline),
    store,
    history,
    // A standalone pipeline stays in view 2, whose first seqno (with view 1's) is 1.
    viewHistory: (at) => new Array<Seqno>(at.view).fill(1 as Seqno),
    isPrimary: () => true,
    status: (_view, seqno) => (seqno <= pipeline.commitTxId.seqno ? "Committed" : "Pending"),
    log: () => {},
  });
  try {
    for (let i = 0; i < 20; i++) {
      const outcome: { kind: string } = pipeline.execute((tx) => {
        tx.rw("records").set(utf8(`k${i}`), utf8(`private ${i}`));
        tx.rw("public:records").set(utf8(`k${i}`), utf8(`public value ${i}`));
      });
      assert.equal(outcome.kind, "committed");
      // The evidence transaction runs after the signature, on a later turn.
      await new Promise((resolve) => setImmediate(resolve));
      snapshotter.onCommit(pipeline.commitTxId.seqno);
    }
  } finally {
    await pipeline.close();
    ledgerDir.cleanup();
  }
}
