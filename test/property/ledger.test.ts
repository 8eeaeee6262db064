// Mutated ledger directories and snapshot files. A real ledger (several chunk files, signatures
// every few transactions) is built once by the pipeline (test/helpers/ledger-fixture.ts); each
// case copies it, changes one file (bit flips, cuts, inserted or deleted bytes, runs of 0xff that
// make lengths absurd) and reads it back with the ledger reader (src/ledger/io/ledger-reader.ts)
// and the offline verifier (src/ledger/ledger-verifier.ts), and through the chunk cache that
// historical queries read (src/ledger/io/chunk-cache.ts). Snapshots are mutated in memory and
// read with decodeSnapshot (src/ledger/snapshot.ts). Properties: reading either yields entries or
// throws a typed error (LedgerError; SnapshotError); whatever it yields that differs from the
// original is never covered by a verified signature, nor authenticates with the ledger secret
// (nor is served to a historical query); every read is prompt; and a snapshot that decodes has
// the original entry bytes (else its digest cannot match its evidence) or is refused.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { equalBytes, utf8 } from "../../src/base/bytes.js";
import { CcfError } from "../../src/base/errors.js";
import type { Seqno } from "../../src/base/ids.js";
import { sha256 } from "../../src/crypto/hash.js";
import { SERVICE_TABLES } from "../../src/kv/service-tables.js";
import { Store } from "../../src/kv/store.js";
import type { MapWrites } from "../../src/kv/write-set.js";
import { LedgerError, readLedger } from "../../src/ledger/io/ledger-reader.js";
import { ChunkCache } from "../../src/ledger/io/chunk-cache.js";
import { decodeEntry, decodeWriteSet } from "../../src/ledger/entry-format.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import { LedgerVerifier } from "../../src/ledger/ledger-verifier.js";
import { decodeSnapshot, encodeSnapshot, snapshotDigest } from "../../src/ledger/snapshot.js";
import { SnapshotError } from "../../src/ledger/snapshot-format.js";
import { buildLedgerFixture, type LedgerFixture } from "../helpers/ledger-fixture.js";
import { withExtraWrites } from "../helpers/resign.js";
import { mutate, mutationArb } from "../helpers/byte-mutations.js";

/** Longest one read and verification of the small fixture may take (a few ms alone; generous for a loaded machine). */
const CASE_BOUND_MS = 5000;

let fixture: LedgerFixture;
let files: { name: string; bytes: Uint8Array }[];
let originals: Uint8Array[];
let work: string;

before(async () => {
  fixture = await buildLedgerFixture({
    txCount: 40,
    sigTxInterval: 4,
    chunkSizeBytes: 2048,
    // Never signed: the last file stays in progress, where a torn tail is allowed.
    unsignedTailCount: 3,
  });
  files = readdirSync(fixture.dir)
    .sort()
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(fixture.dir, name))) }));
  assert.ok(files.length >= 3, `fixture has ${files.length} files`);
  originals = [];
  for (const item of readLedger(fixture.dir)) {
    if (item.kind === "entry") originals[item.seqno] = item.entry.slice();
  }
  work = mkdtempSync(join(tmpdir(), "consortia-ledger-fuzz-"));
});

after(() => {
  fixture.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const anyMutation = mutationArb({ maxRun: 16, maxOverwrite: 8, ffRuns: true });

/** A fresh copy of the fixture's ledger with file `index` replaced by `bytes`. */
function ledgerWith(run: number, index: number, bytes: Uint8Array): string {
  const dir = join(work, `run-${run}`);
  cpSync(fixture.dir, dir, { recursive: true });
  writeFileSync(join(dir, files[index]!.name), bytes);
  return dir;
}

interface ReadResult {
  readonly entries: { seqno: number; entry: Uint8Array }[];
  readonly error: CcfError | null;
}

/** Reads the whole ledger; only a LedgerError may end the read early. */
function readAll(dir: string): ReadResult {
  const entries: { seqno: number; entry: Uint8Array }[] = [];
  try {
    for (const item of readLedger(dir)) {
      if (item.kind === "entry") entries.push({ seqno: item.seqno, entry: item.entry.slice() });
    }
    return { entries, error: null };
  } catch (error) {
    if (error instanceof LedgerError) return { entries, error };
    throw error;
  }
}

/** Pushes entries until the first invalid one; returns the last verified seqno. */
function verify(entries: readonly { seqno: number; entry: Uint8Array }[]): number {
  const verifier = new LedgerVerifier({ serviceCertPem: fixture.identities.serviceCertPem });
  for (const { seqno, entry } of entries) {
    if (seqno !== verifier.lastSeqno + 1) break;
    let step;
    try {
      step = verifier.push(entry);
    } catch (error) {
      if (error instanceof CcfError) break;
      throw error;
    }
    if (step.kind === "invalid") break;
  }
  return verifier.lastVerifiedSeqno;
}

/** Whether the entry decodes and its GCM tag (over both domains) checks with the secret. */
function authenticates(entry: Uint8Array): boolean {
  try {
    return decodeWriteSet(decodeEntry(entry), fixture.secrets) !== null;
  } catch (error) {
    if (error instanceof CcfError) return false;
    throw error;
  }
}

let run = 0;

test("property: a mutated ledger file reads as entries or a LedgerError; no changed entry verifies", () => {
  fc.assert(
    fc.property(
      fc.nat(),
      fc.array(anyMutation, { minLength: 1, maxLength: 3 }),
      (fileIndex, mutations) => {
        const index = fileIndex % files.length;
        let bytes = files[index]!.bytes;
        for (const m of mutations) bytes = mutate(bytes, m);
        const dir = ledgerWith(run++, index, bytes);
        const started = performance.now();
        const read = readAll(dir);
        const verified = verify(read.entries);
        const took = performance.now() - started;
        rmSync(dir, { recursive: true, force: true });
        assert.ok(took < CASE_BOUND_MS, `read and verify took ${took.toFixed(0)} ms`);
        for (const { seqno, entry } of read.entries) {
          const original = originals[seqno];
          if (original !== undefined && equalBytes(entry, original)) continue;
          // A signature covers the entries before it; its own entry, the next signature. Without
          // the ledger secret a changed last signature's unsigned bytes are not seen offline,
          // but with it nothing changed authenticates (the public domain is the GCM AAD).
          assert.ok(seqno >= verified, `a changed entry at ${seqno} verified (up to ${verified})`);
          assert.equal(authenticates(entry), false, `a changed entry at ${seqno} authenticates`);
        }
      },
    ),
    { numRuns: 100 },
  );
});

/** Loads every committed seqno through a ChunkCache, as historical queries read the ledger. */
async function loadAll(dir: string): Promise<{ seqno: number; entry: Uint8Array }[]> {
  const cache = new ChunkCache({
    directory: dir,
    readOnlyDirectories: [],
    concurrentReadsMax: 2,
    queuedReadsMax: 64,
    cacheBytesMax: 1 << 20,
  });
  const served: { seqno: number; entry: Uint8Array }[] = [];
  for (let seqno = 1; seqno <= fixture.lastSignedSeqno; seqno++) {
    try {
      const outcome = await cache.load(seqno, fixture.lastSignedSeqno);
      assert.equal(outcome.kind, "loaded");
    } catch (error) {
      if (error instanceof LedgerError) continue;
      throw error;
    }
    const entry = cache.entryAt(seqno);
    assert.ok(entry !== null, `seqno ${seqno} loaded but not served`);
    served.push({ seqno, entry: entry.slice() });
  }
  return served;
}

test("property: historical reads of a mutated ledger serve no changed entry that authenticates", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.nat(),
      fc.array(anyMutation, { minLength: 1, maxLength: 3 }),
      async (fileIndex, mutations) => {
        const index = fileIndex % files.length;
        let bytes = files[index]!.bytes;
        for (const m of mutations) bytes = mutate(bytes, m);
        const dir = ledgerWith(run++, index, bytes);
        const started = performance.now();
        try {
          for (const { seqno, entry } of await loadAll(dir)) {
            const original = originals[seqno];
            if (original !== undefined && equalBytes(entry, original)) continue;
            assert.equal(authenticates(entry), false, `a changed entry at ${seqno} was served`);
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        const took = performance.now() - started;
        assert.ok(took < CASE_BOUND_MS, `loading took ${took.toFixed(0)} ms`);
      },
    ),
    { numRuns: 40, includeErrorInReport: true },
  );
});

test("property: an unchanged ledger still reads and verifies in full (the check can pass)", async () => {
  const read = readAll(fixture.dir);
  assert.equal(read.error, null);
  assert.equal(verify(read.entries), fixture.lastSignedSeqno);
  const served = await loadAll(fixture.dir);
  assert.equal(served.length, fixture.lastSignedSeqno);
  assert.ok(served.every(({ entry }) => authenticates(entry)));
});

/** The fixture's signed entries with `extra` added to the last signature transaction. */
function forgedLastSignature(extra: MapWrites): {
  entries: { seqno: number; entry: Uint8Array }[];
  seqno: number;
} {
  const entries = readAll(fixture.dir).entries.filter((e) => e.seqno <= fixture.lastSignedSeqno);
  const last = entries.pop()!;
  const forged = withExtraWrites(fixture.secrets, last.entry, [extra]);
  return { entries: [...entries, { seqno: last.seqno, entry: forged }], seqno: last.seqno };
}

// Found by this fuzzer: a signature transaction's own write set is covered only by the next
// signature's root, so an extra write in the last one was reported verified. The verifier now
// refuses a signature transaction that writes anything but its own maps (signature.ts).
test("the last signature transaction with an extra write is not counted verified offline", () => {
  const cases: { extra: MapWrites; map: RegExp }[] = [
    {
      extra: { name: SERVICE_TABLES.userCerts, writes: [{ key: utf8("evil"), value: utf8("c") }] },
      map: /writes map public:ccf\.gov\.users\.certs/,
    },
    {
      // A private map: its name is encrypted, but the private domain is not empty.
      extra: { name: "records", writes: [{ key: utf8("evil"), value: utf8("v") }] },
      map: /has a private domain of \d+ bytes/,
    },
  ];
  for (const { extra, map } of cases) {
    const { entries, seqno } = forgedLastSignature(extra);
    assert.equal(verify(entries), fixture.signatureSeqnos.at(-2));
    const verifier = new LedgerVerifier({ serviceCertPem: fixture.identities.serviceCertPem });
    for (const e of entries.slice(0, -1)) assert.notEqual(verifier.push(e.entry).kind, "invalid");
    const step = verifier.push(entries[entries.length - 1]!.entry);
    assert.ok(step.kind === "invalid", `the forged signature transaction ${seqno} verified`);
    assert.equal(step.seqno, seqno);
    assert.match(step.reason, new RegExp(`signature transaction ${seqno} `));
    assert.match(step.reason, map);
  }
});

function snapshotOf(secrets: LedgerSecrets): Uint8Array {
  const store = new Store();
  const tx = store.begin();
  for (let i = 0; i < 20; i++) {
    tx.rw("records").set(utf8(`k${i}`), utf8(`secret ${i}`));
    tx.rw("public:records").set(utf8(`p${i}`), utf8(`public ${i}`));
  }
  assert.equal(store.commit(tx).kind, "committed");
  const entry = encodeSnapshot(
    {
      seqno: store.seqno,
      hashAtSnapshot: sha256(utf8("root")),
      viewHistory: [1 as Seqno, 1 as Seqno],
      maps: store.snapshotMaps(),
    },
    secrets,
  );
  const receipt = utf8(JSON.stringify({ signature: "x", leaf_components: {} }));
  return new Uint8Array([...entry, ...receipt]);
}

test("property: a mutated snapshot is refused with a SnapshotError or keeps its entry bytes", () => {
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(3));
  const snapshot = snapshotOf(secrets);
  const good = decodeSnapshot(snapshot, secrets);
  const digest = snapshotDigest(good.entryBytes);
  fc.assert(
    fc.property(fc.array(anyMutation, { minLength: 1, maxLength: 3 }), (mutations) => {
      let bytes = snapshot;
      for (const m of mutations) bytes = mutate(bytes, m);
      const started = performance.now();
      let decoded;
      try {
        decoded = decodeSnapshot(bytes, secrets);
      } catch (error) {
        if (error instanceof SnapshotError) return;
        throw error;
      } finally {
        const took = performance.now() - started;
        assert.ok(took < CASE_BOUND_MS, `decode took ${took.toFixed(0)} ms`);
      }
      // Accepted: either the entry is untouched (only the receipt changed), or its digest is not
      // the one the service recorded as evidence, so the node refuses it (evidence-check.ts).
      if (equalBytes(snapshotDigest(decoded.entryBytes), digest)) {
        assert.deepEqual(decoded.maps, good.maps);
      }
    }),
    { numRuns: 700 },
  );
});
