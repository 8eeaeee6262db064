// Mutated snapshot files on disk, read the way a node picks one to start from
// (src/node/snapshots/snapshot-files.ts and usable-snapshots.ts: name, framing, seqno and the
// appended receipt against the service certificate; then the first that decrypts with the ledger
// secret, src/ledger/snapshot.ts decodeSnapshot). Two committed snapshots are made by a real
// Snapshotter on a standalone pipeline; each case mutates the newest (bit flips, cuts, inserted,
// deleted or overwritten runs, 0xff runs that make lengths absurd, one to three at once).
// Properties: nothing throws; each pass is prompt; and the mutated file is used only if its
// snapshot entry is byte-for-byte the original (a receipt reworded into an equivalent one is
// harmless), else the older good snapshot is chosen.
// The single-bit flips of every region are enumerated in test/unit/node/snapshots/
// snapshot-faults.test.ts; this adds structural changes and combinations.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { equalBytes, utf8 } from "../../src/base/bytes.js";
import type { Seqno, View } from "../../src/base/ids.js";
import { Store } from "../../src/kv/store.js";
import { TxHistory } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import {
  decodeSnapshot,
  parseSnapshotFileName,
  splitSnapshotFile,
} from "../../src/ledger/snapshot.js";
import { createStartIdentities } from "../../src/node/startup/start-identities.js";
import { usableCommittedSnapshots } from "../../src/node/snapshots/usable-snapshots.js";
import { InlineSealer } from "../../src/node/pipeline/sealer.js";
import { Snapshotter } from "../../src/node/snapshots/snapshotter.js";
import { TxPipeline } from "../../src/node/pipeline/tx-pipeline.js";
import { SystemTransactions } from "../../src/node/pipeline/system-tx.js";
import { tempDir } from "../helpers/pki.js";

const CASE_BOUND_MS = 5000;
const identities = await createStartIdentities({ now: new Date() });
const secrets = new LedgerSecrets(new Uint8Array(32).fill(7));

/** Writes transactions through a pipeline; snapshots at 10 and 20 are committed. */
async function buildSnapshots(snapshotDir: string): Promise<void> {
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

const snapshots = tempDir("consortia-snapfuzz-");
await buildSnapshots(snapshots.dir);
test.after(() => snapshots.cleanup());

const names = readdirSync(snapshots.dir)
  .filter((name) => parseSnapshotFileName(name)?.committed === true)
  .sort((a, b) => parseSnapshotFileName(a)!.seqno - parseSnapshotFileName(b)!.seqno);
const [older, newest] = names.slice(-2).map((name) => join(snapshots.dir, name));

/** The snapshot a joining node would start from: its startup checks, then the first that decrypts. */
function choose(): string | null {
  const candidates = usableCommittedSnapshots([snapshots.dir], identities.serviceCertPem, () => {});
  for (const candidate of candidates) {
    try {
      decodeSnapshot(candidate.bytes, secrets);
      return candidate.path;
    } catch {
      continue;
    }
  }
  return null;
}

type Mutation =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "overwrite"; at: number; bytes: Uint8Array };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 16 }),
  }),
  fc.record({
    kind: fc.constant("overwrite" as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 8 }),
      fc.integer({ min: 1, max: 8 }).map((n) => new Uint8Array(n).fill(0xff)),
    ),
  }),
);

function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = bytes.byteLength === 0 ? 0 : m.at % bytes.byteLength;
  switch (m.kind) {
    case "flip": {
      const out = bytes.slice();
      if (out.byteLength > 0) out[at] = out[at]! ^ m.mask;
      return out;
    }
    case "cut":
      return bytes.slice(0, at);
    case "insert":
      return new Uint8Array([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)]);
    case "delete":
      return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + m.count)]);
    case "overwrite": {
      const out = bytes.slice();
      out.set(m.bytes.subarray(0, Math.max(0, out.byteLength - at)), at);
      return out;
    }
  }
}

test("property: a mutated newest snapshot is used only with its entry intact, else the older", () => {
  const original = new Uint8Array(readFileSync(newest!));
  const originalEntry = splitSnapshotFile(original)!.entry;
  assert.equal(choose(), newest, "the unmutated newest snapshot is chosen");
  try {
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 3 }), (mutations) => {
        let bytes: Uint8Array = original;
        for (const m of mutations) bytes = mutate(bytes, m);
        writeFileSync(newest!, bytes);
        const started = performance.now();
        const used = choose();
        const took = performance.now() - started;
        assert.ok(took < CASE_BOUND_MS, `choosing took ${took.toFixed(0)} ms`);
        if (used === newest) {
          const entry = splitSnapshotFile(bytes)?.entry;
          assert.ok(
            entry !== undefined && equalBytes(entry, originalEntry),
            "a changed entry was used",
          );
        } else {
          assert.equal(used, older, "the older good snapshot is used instead");
        }
      }),
      { numRuns: 400, includeErrorInReport: true },
    );
  } finally {
    writeFileSync(newest!, original);
  }
});
