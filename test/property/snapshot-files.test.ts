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
import { equalBytes } from "../../src/base/bytes.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import {
  decodeSnapshot,
  parseSnapshotFileName,
  splitSnapshotFile,
} from "../../src/ledger/snapshot.js";
import { createStartIdentities } from "../../src/node/startup/start-identities.js";
import { usableCommittedSnapshots } from "../../src/node/snapshots/usable-snapshots.js";
import { tempDir } from "../helpers/pki.js";
import { mutate, mutationArb } from "../helpers/byte-mutations.js";
import { buildSnapshots } from "../helpers/snapshot-fixture.js";

const CASE_BOUND_MS = 5000;
const identities = await createStartIdentities({ now: new Date() });
const secrets = new LedgerSecrets(new Uint8Array(32).fill(7));

const snapshots = tempDir("consortia-snapfuzz-");
await buildSnapshots(snapshots.dir, identities, secrets);
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

const anyMutation = mutationArb({ maxRun: 16, maxOverwrite: 8, ffRuns: true });

test("property: a mutated newest snapshot is used only with its entry intact, else the older", () => {
  const original = new Uint8Array(readFileSync(newest!));
  const originalEntry = splitSnapshotFile(original)!.entry;
  assert.equal(choose(), newest, "the unmutated newest snapshot is chosen");
  try {
    fc.assert(
      fc.property(fc.array(anyMutation, { minLength: 1, maxLength: 3 }), (mutations) => {
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
