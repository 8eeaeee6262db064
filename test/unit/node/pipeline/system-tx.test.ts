// SystemTransactions (src/node/pipeline/system-tx.ts), the one path of a node's own
// transactions, over a real replicated TxPipeline: a write is "written" with its txId, and each
// reason the pipeline refuses (not the primary, too many pending, nothing written) comes back as
// "not-written" with that reason, counted per kind for /node/metrics; nothing refused is stored.
import { test } from "node:test";
import assert from "node:assert/strict";
import { utf8 } from "../../../../src/base/bytes.js";
import type { View } from "../../../../src/base/ids.js";
import { Store } from "../../../../src/kv/store.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { InlineSealer } from "../../../../src/node/pipeline/sealer.js";
import { SystemTransactions } from "../../../../src/node/pipeline/system-tx.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { tempDir } from "../../../helpers/pki.js";

const identities = await createStartIdentities({ now: new Date() });

test("system transactions are written, or refused with the pipeline's reason", async () => {
  const { dir, cleanup } = tempDir("consortia-system-tx-");
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(5));
  const store = new Store();
  let writable = true;
  const pipeline = new TxPipeline({
    store,
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    sealer: new InlineSealer(secrets),
    identity: identities.node,
    options: {
      view: 2 as View,
      sigTxInterval: 1000,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
      maxUncommittedTxs: 2,
    },
    nowMs: 0,
    consensus: { replicate: () => {}, canWrite: () => writable, configurationOf: () => undefined },
  });
  const system = new SystemTransactions(pipeline);
  const write = (n: number) => (tx: Parameters<Parameters<typeof system.write>[1]>[0]) =>
    tx.rw("public:ccf.gov.nodes.info").set(utf8(`n${n}`), utf8("{}"));
  try {
    assert.deepEqual(system.write("retirement", write(1)), {
      kind: "written",
      txId: { view: 2, seqno: 1 },
    });
    assert.deepEqual(
      system.write("retirement", () => {}),
      {
        kind: "not-written",
        reason: "nothing-to-write",
      },
    );
    assert.equal(system.write("snapshot evidence", write(2)).kind, "written");
    // Two transactions await commit: the limit refuses the third.
    assert.deepEqual(system.write("recovery shares", write(3)), {
      kind: "not-written",
      reason: "too-many-pending",
    });
    writable = false;
    assert.deepEqual(system.write("recovery shares", write(4)), {
      kind: "not-written",
      reason: "not-primary",
    });
    assert.equal(store.seqno, 2, "nothing refused reached the store");
    assert.deepEqual(system.stats, {
      retirement: { written: 1, notWritten: 1 },
      "snapshot evidence": { written: 1, notWritten: 0 },
      "recovery shares": { written: 0, notWritten: 2 },
    });
  } finally {
    await pipeline.close();
    cleanup();
  }
});
