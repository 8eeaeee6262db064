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

export interface StandaloneSnapshotterOptions {
  readonly snapshotDir: string;
  readonly identities: StartIdentities;
  readonly secrets: LedgerSecrets;
  readonly txInterval: number;
  readonly isPrimary?: () => boolean;
  /** The status of a transaction; default: Committed up to the pipeline's commit. */
  readonly status?: (view: number, seqno: number) => SnapshotStatus;
  readonly log?: (line: string) => void;
  readonly offThread?: boolean;
  /** Times snapshots: the clock and where each written snapshot is reported. */
  readonly timing?: {
    monotonicMs: () => number;
    onWritten: (written: { sizeBytes: number; durationMs: number }) => void;
  };
}

type SnapshotStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

/**
 * A real Snapshotter on a standalone pipeline (inline sealer, a ledger in a temporary
 * directory, a signature every 4 transactions, which commits it; view 2 throughout).
 */
export function standaloneSnapshotter(o: StandaloneSnapshotterOptions) {
  const ledgerDir = tempDir("consortia-snap-ledger-");
  const store = new Store();
  const history = new TxHistory(o.secrets);
  const pipeline: TxPipeline = new TxPipeline({
    store,
    history,
    ledger: LedgerWriter.open(ledgerDir.dir, { chunkSizeBytes: 1 << 20 }),
    sealer: new InlineSealer(o.secrets),
    identity: o.identities.node,
    options: {
      view: 2 as View,
      sigTxInterval: 4,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
    },
    nowMs: 0,
    onSignature: (txId) => snapshotter.onSignature(txId),
  });
  const committedStatus = (_view: number, seqno: number): SnapshotStatus =>
    seqno <= pipeline.commitTxId.seqno ? "Committed" : "Pending";
  const snapshotter: Snapshotter = new Snapshotter({
    directory: o.snapshotDir,
    txInterval: o.txInterval,
    pipeline,
    system: new SystemTransactions(pipeline),
    store,
    history,
    // A standalone pipeline stays in view 2, whose first seqno (with view 1's) is 1.
    viewHistory: (at) => new Array<Seqno>(at.view).fill(1 as Seqno),
    isPrimary: o.isPrimary ?? (() => true),
    status: o.status ?? committedStatus,
    log: o.log ?? (() => {}),
    ...(o.offThread === undefined ? {} : { offThread: o.offThread }),
    ...o.timing,
  });
  return { store, history, pipeline, snapshotter, ledgerDir };
}

/** Writes transactions through a pipeline; snapshots at 10 and 20 are committed. */
export async function buildSnapshots(
  snapshotDir: string,
  identities: StartIdentities,
  secrets: LedgerSecrets,
): Promise<void> {
  const { pipeline, snapshotter, ledgerDir } = standaloneSnapshotter({
    snapshotDir,
    identities,
    secrets,
    txInterval: 10,
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
