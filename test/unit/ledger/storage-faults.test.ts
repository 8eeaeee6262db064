// Storage faults on a REAL ledger (test/helpers/ledger-fixture.ts: TxPipeline, encrypted entries,
// signatures every 6 transactions, 8 KiB chunks, an unsigned tail), items of
// reliability-checklist.md:
// - F2: a torn last entry (cut in its header, in its body, one byte short) or a half-written
//   positions table at the end of the in-progress file is cut by LedgerWriter.open exactly, every
//   earlier entry survives, appending resumes and the result verifies; the same damage anywhere
//   else is a LedgerError naming the file and offset, never silently dropped.
// - F4: committed chunks kept in read-only directories (CCF's ledger.read_only_directories) are
//   merged in; a zero-filled, half-copied or misnamed copy there is treated as missing: skipped
//   and reported, then either another copy supplies its seqnos or the gap is a MissingFile error.
// - F6: single bit flips sampled over every region of the committed files (entry headers, GCM
//   header, public domain, private ciphertext, signature root and sig, positions tables) are all
//   reported by the reader or the LedgerVerifier with the seqno, and `consortia ledger verify`
//   names the file and offset. The only bytes no check covers are the last signature's own
//   unsigned fields: no later signature exists yet to cover them (as in CCF).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { Seqno, TxId } from "../../../src/base/ids.js";
import { sha256 } from "../../../src/crypto/hash.js";
import {
  encodePositionsTable,
  LedgerError,
  LedgerErrorCode,
} from "../../../src/ledger/chunk-format.js";
import { ENTRY_HEADER_SIZE_BYTES } from "../../../src/ledger/entry-header.js";
import { decodeEntry, decodeWriteSet, encodeEntry } from "../../../src/ledger/entry-format.js";
import { LedgerWriter } from "../../../src/ledger/io/ledger-writer.js";
import {
  readLedger,
  type LedgerItem,
  type ReadLedgerOptions,
} from "../../../src/ledger/io/ledger-reader.js";
import { LedgerVerifier } from "../../../src/ledger/ledger-verifier.js";
import { runCli } from "../../helpers/cli.js";
import { expectLedgerError } from "../../helpers/fake-entries.js";
import {
  buildLedgerFixture,
  FIXTURE_VIEW,
  readEntries,
  txWriteSet,
  type LedgerFixture,
} from "../../helpers/ledger-fixture.js";
import { tempDir } from "../../helpers/pki.js";

const CHUNK_SIZE_BYTES = 8192;
const work = tempDir("consortia-storage-faults-");
const fixturePromise: Promise<LedgerFixture> = buildLedgerFixture({
  txCount: 30,
  sigTxInterval: 6,
  unsignedTailCount: 3,
  chunkSizeBytes: CHUNK_SIZE_BYTES,
});
let copies = 0;

test.after(async () => {
  (await fixturePromise).cleanup();
  work.cleanup();
});

/** The shape of the shared ledger; every case below relies on it. */
const COMMITTED_1 = "ledger_1-14.committed";
const COMMITTED_2 = "ledger_15-28.committed";
const IN_PROGRESS = "ledger_29";
const LAST_SEQNO = 38;
const LAST_SIGNED_SEQNO = 35;

/** A private, empty or copied, directory under the work dir. */
async function freshDir(copyFixture: boolean): Promise<string> {
  const dir = join(work.dir, `dir-${++copies}`);
  if (copyFixture) cpSync((await fixturePromise).dir, dir, { recursive: true });
  else mkdirSync(dir);
  return dir;
}

interface Located {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

function locate(dir: string, seqno: number): Located {
  for (const item of readLedger(dir)) {
    if (item.kind === "entry" && item.seqno === seqno) {
      return { file: item.file, offset: item.offset, length: item.entry.byteLength };
    }
  }
  throw new Error(`seqno ${seqno} not found`);
}

/** Every entry read with `options`, checked by a LedgerVerifier from seqno 1. */
function readAndVerify(dir: string, options: ReadLedgerOptions = {}): LedgerItem[] {
  const items = [...readLedger(dir, options)];
  const verifier = new LedgerVerifier();
  for (const item of items) {
    if (item.kind !== "entry") continue;
    const step = verifier.push(item.entry);
    assert.notEqual(step.kind, "invalid", JSON.stringify(step));
  }
  assert.equal(verifier.lastVerifiedSeqno, LAST_SIGNED_SEQNO);
  return items;
}

function entryBytes(items: readonly LedgerItem[]): Uint8Array[] {
  return items.flatMap((item) => (item.kind === "entry" ? [item.entry] : []));
}

test("the shared fixture ledger has two committed chunks and an in-progress file", async () => {
  const f = await fixturePromise;
  const names = [...new Set([...readLedger(f.dir)].map((item) => item.file))];
  assert.deepEqual(names, [COMMITTED_1, COMMITTED_2, IN_PROGRESS]);
  assert.equal(f.lastSeqno, LAST_SEQNO);
  assert.equal(f.lastSignedSeqno, LAST_SIGNED_SEQNO);
  assert.deepEqual(f.signatureSeqnos, [7, 14, 21, 28, 35]);
});

// ---------------------------------------------------------------------------------------------
// F2: torn last entry

/** A real entry at `seqno` (the transaction numbered txNumber), as the pipeline would seal it. */
function realEntry(f: LedgerFixture, seqno: number, txNumber: number): Uint8Array {
  const txId: TxId = { view: FIXTURE_VIEW, seqno: seqno as Seqno };
  const commitEvidenceDigest = sha256(f.secrets.commitEvidence(txId));
  return encodeEntry({ txId, writeSet: txWriteSet(txNumber), commitEvidenceDigest }, f.secrets);
}

test("a torn last entry is cut exactly by open, earlier entries kept, appends resume", async () => {
  const f = await fixturePromise;
  const original = readEntries(f.dir);
  const last = locate(f.dir, LAST_SEQNO);
  assert.equal(last.file, IN_PROGRESS);
  const bodyBytes = last.length - ENTRY_HEADER_SIZE_BYTES;
  const cuts = [
    { what: "part of the header", keepBytes: 3 },
    { what: "the header only", keepBytes: ENTRY_HEADER_SIZE_BYTES },
    { what: "half the body", keepBytes: ENTRY_HEADER_SIZE_BYTES + Math.floor(bodyBytes / 2) },
    { what: "one byte short", keepBytes: last.length - 1 },
  ];
  for (const cut of cuts) {
    const dir = await freshDir(true);
    const path = join(dir, IN_PROGRESS);
    truncateSync(path, last.offset + cut.keepBytes);
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_SIZE_BYTES });
    assert.equal(writer.recoveredTornTailBytes, cut.keepBytes, cut.what);
    assert.equal(writer.lastSeqno, LAST_SEQNO - 1, cut.what);
    assert.equal(statSync(path).size, last.offset, `${cut.what}: exactly the torn bytes cut`);
    writer.append(realEntry(f, LAST_SEQNO, 1000), { seqno: LAST_SEQNO, isSignature: false });
    writer.close();
    const items = readAndVerify(dir);
    assert.ok(
      items.every((item) => item.kind === "entry"),
      `${cut.what}: no torn tail left`,
    );
    const entries = entryBytes(items);
    assert.equal(entries.length, LAST_SEQNO, cut.what);
    assert.deepEqual(entries.slice(0, -1), original.slice(0, -1), `${cut.what}: entries kept`);
    const appended = decodeWriteSet(decodeEntry(entries.at(-1)!), f.secrets);
    assert.deepEqual(appended, txWriteSet(1000), `${cut.what}: the new entry reads back`);
  }
});

test("a partly written positions table ending the in-progress file is cut by open", async () => {
  const f = await fixturePromise;
  const original = readEntries(f.dir);
  const positions = [...readLedger(f.dir)].flatMap((item) =>
    item.kind === "entry" && item.file === IN_PROGRESS ? [item.offset] : [],
  );
  const table = encodePositionsTable(positions);
  // A crash inside completeChunk step 1: any prefix of the table, the whole one included
  // (the header still says in progress).
  for (const tableBytes of [1, 4, 13, table.byteLength]) {
    const dir = await freshDir(true);
    const path = join(dir, IN_PROGRESS);
    const sizeBytes = statSync(path).size;
    appendFileSync(path, table.subarray(0, tableBytes));
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_SIZE_BYTES });
    assert.equal(writer.recoveredTornTailBytes, tableBytes);
    assert.equal(writer.lastSeqno, LAST_SEQNO);
    assert.equal(statSync(path).size, sizeBytes);
    writer.append(realEntry(f, LAST_SEQNO + 1, 1001), {
      seqno: LAST_SEQNO + 1,
      isSignature: false,
    });
    writer.close();
    const entries = entryBytes(readAndVerify(dir));
    assert.deepEqual(entries.slice(0, -1), original, `${tableBytes} table bytes: entries kept`);
    assert.equal(entries.length, LAST_SEQNO + 1);
  }
});

test("the same torn entry before later entries of the in-progress file is an error", async () => {
  const dir = await freshDir(true);
  const victim = locate(dir, 36);
  const next = locate(dir, 37);
  assert.equal(victim.file, IN_PROGRESS);
  // Entry 36 loses the second half of its body; the whole entries 37 and 38 follow it.
  const path = join(dir, IN_PROGRESS);
  const bytes = readFileSync(path);
  const cutFrom = victim.offset + Math.floor(victim.length / 2);
  writeFileSync(path, Buffer.concat([bytes.subarray(0, cutFrom), bytes.subarray(next.offset)]));
  // Entry 36 now swallows the start of 37, and the next header lands inside 37's body.
  const where = { code: LedgerErrorCode.BadHeader, file: IN_PROGRESS, offset: next.offset };
  expectLedgerError(() => LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_SIZE_BYTES }), where);
  expectLedgerError(() => [...readLedger(dir)], where);
  assert.deepEqual(readFileSync(path).byteLength, bytes.byteLength - (next.offset - cutFrom));
});

test("a middle entry's size grown past the end of the in-progress file is an error", async () => {
  // Not a torn write: entries 37 and 38 follow entry 36, whose size field now runs past the end.
  for (const size of [0x7fff_ffff, 1 << 20]) {
    const dir = await freshDir(true);
    const victim = locate(dir, 36);
    assert.equal(victim.file, IN_PROGRESS);
    const path = join(dir, IN_PROGRESS);
    const bytes = readFileSync(path);
    assert.ok(victim.offset + size > bytes.byteLength, "the size runs past the end");
    bytes.writeUInt32LE(size, victim.offset + 2);
    writeFileSync(path, bytes);
    const where = {
      code: LedgerErrorCode.TruncatedEntry,
      file: IN_PROGRESS,
      offset: victim.offset,
    };
    expectLedgerError(() => LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_SIZE_BYTES }), where);
    expectLedgerError(() => [...readLedger(dir)], where);
    assert.equal(readFileSync(path).byteLength, bytes.byteLength, "nothing truncated");
  }
});

test("the same damage in a committed file is a LedgerError naming file and offset", async () => {
  const f = await fixturePromise;
  const victim = locate(f.dir, 28);
  assert.equal(victim.file, COMMITTED_2);
  for (const keepBytes of [3, ENTRY_HEADER_SIZE_BYTES, Math.floor(victim.length / 2)]) {
    const dir = await freshDir(true);
    const cutAt = victim.offset + keepBytes;
    truncateSync(join(dir, COMMITTED_2), cutAt);
    // The header still points at a positions table past the new end of the file.
    const where = { code: LedgerErrorCode.TruncatedFile, file: COMMITTED_2, offset: cutAt };
    expectLedgerError(() => [...readLedger(dir)], where);
  }
  // A half-copied positions table of a committed file.
  const dir = await freshDir(true);
  const path = join(dir, COMMITTED_1);
  const sizeBytes = statSync(path).size;
  truncateSync(path, sizeBytes - 6);
  const where = { code: LedgerErrorCode.TruncatedFile, file: COMMITTED_1, offset: sizeBytes - 6 };
  expectLedgerError(() => [...readLedger(dir)], where);
});

// ---------------------------------------------------------------------------------------------
// F4: read-only directories

interface Ignored {
  readonly path: string;
  readonly reason: string;
}

function readWithReadOnly(
  dir: string,
  readOnlyDirectories: readonly string[],
  extra: ReadLedgerOptions = {},
): { items: LedgerItem[]; ignored: Ignored[] } {
  const ignored: Ignored[] = [];
  const onIgnoredFile = (path: string, reason: string) => ignored.push({ path, reason });
  const options = { ...extra, readOnlyDirectories, onIgnoredFile };
  return { items: readAndVerify(dir, options), ignored };
}

/** Reads with `options` until the error; returns it and the files reported as ignored. */
function readUntilError(
  dir: string,
  options: ReadLedgerOptions,
): { error: LedgerError; ignored: string[] } {
  const ignored: string[] = [];
  try {
    for (const item of readLedger(dir, { ...options, onIgnoredFile: (p) => ignored.push(p) })) {
      assert.notEqual(item.kind, "torn-tail");
    }
  } catch (err: unknown) {
    assert.ok(err instanceof LedgerError, String(err));
    return { error: err, ignored };
  }
  assert.fail("expected a LedgerError");
}

/** Copies of the committed chunks as a failed copy leaves them, in a new directory. */
async function damagedCopies(source: string): Promise<string> {
  const dir = await freshDir(false);
  const zeroFilled = statSync(join(source, COMMITTED_1)).size;
  writeFileSync(join(dir, COMMITTED_1), new Uint8Array(zeroFilled));
  const whole = readFileSync(join(source, COMMITTED_2));
  writeFileSync(join(dir, COMMITTED_2), whole.subarray(0, Math.floor(whole.byteLength / 2)));
  return dir;
}

test("committed chunks moved to read-only directories are read back as one ledger", async () => {
  const f = await fixturePromise;
  const main = await freshDir(true);
  const older = await freshDir(false);
  const oldest = await freshDir(false);
  renameSync(join(main, COMMITTED_1), join(oldest, COMMITTED_1));
  renameSync(join(main, COMMITTED_2), join(older, COMMITTED_2));
  // An uncommitted file is never taken from a read-only directory.
  writeFileSync(join(oldest, "ledger_29-35"), "not committed");
  const { items, ignored } = readWithReadOnly(main, [older, oldest]);
  assert.deepEqual(entryBytes(items), readEntries(f.dir));
  assert.deepEqual(
    items.filter((i) => i.kind === "entry" && i.seqno === 15).map((i) => i.file),
    [COMMITTED_2],
  );
  assert.equal(ignored.length, 1);
  assert.equal(ignored[0]!.path, join(oldest, "ledger_29-35"));
  assert.match(ignored[0]!.reason, /not committed/);
  // Without the read-only directories the ledger looks like one started after a snapshot.
  const first = [...readLedger(main)][0];
  assert.equal(first?.kind === "entry" ? first.seqno : null, 29);
});

test("zero-filled and half-copied read-only files are ignored: main holds the chunks", async () => {
  const f = await fixturePromise;
  const main = await freshDir(true);
  const readOnly = await damagedCopies(main);
  const { items, ignored } = readWithReadOnly(main, [readOnly]);
  assert.deepEqual(entryBytes(items), readEntries(f.dir));
  assert.deepEqual(
    ignored.map((i) => i.path),
    [join(readOnly, COMMITTED_1), join(readOnly, COMMITTED_2)],
  );
  assert.match(ignored[0]!.reason, /overlap ledger_1-14\.committed in the main directory/);
});

test("a damaged read-only copy is treated as missing: a good copy supplies it", async () => {
  const f = await fixturePromise;
  const main = await freshDir(true);
  const damaged = await damagedCopies(main);
  const good = await freshDir(false);
  renameSync(join(main, COMMITTED_1), join(good, COMMITTED_1));
  renameSync(join(main, COMMITTED_2), join(good, COMMITTED_2));
  // A third directory holds a copy of 1-14 under the name of 15-28: wrong seqnos.
  const misnamed = await freshDir(false);
  cpSync(join(good, COMMITTED_1), join(misnamed, COMMITTED_2));
  const { items, ignored } = readWithReadOnly(main, [damaged, misnamed, good]);
  assert.deepEqual(entryBytes(items), readEntries(f.dir));
  assert.deepEqual(
    ignored.map((i) => i.path),
    [join(damaged, COMMITTED_1), join(damaged, COMMITTED_2), join(misnamed, COMMITTED_2)],
  );
  const [zeroFilled, halfCopied, wrongSeqnos] = ignored.map((i) => i.reason);
  assert.match(zeroFilled!, /^ledger_1-14\.committed at offset 0: .*no positions table/);
  assert.match(halfCopied!, /^ledger_15-28\.committed at offset \d+: positions offset .* past/);
  assert.match(wrongSeqnos!, /^ledger_15-28\.committed at offset 8: entry has seqno 1, exp/);
});

test("damaged read-only files with no good copy leave a gap naming the seqnos", async () => {
  const main = await freshDir(true);
  // Main keeps 1-14 and 29-: every copy of 15-28 is damaged, one zero-filled, one half-copied.
  const whole = readFileSync(join(main, COMMITTED_2));
  unlinkSync(join(main, COMMITTED_2));
  const zeroFilled = await freshDir(false);
  writeFileSync(join(zeroFilled, COMMITTED_2), new Uint8Array(whole.byteLength));
  const halfCopied = await freshDir(false);
  writeFileSync(join(halfCopied, COMMITTED_2), whole.subarray(0, whole.byteLength >> 1));
  const gap = readUntilError(main, { readOnlyDirectories: [zeroFilled, halfCopied] });
  assert.equal(gap.error.code, LedgerErrorCode.MissingFile);
  assert.equal(gap.error.file, IN_PROGRESS);
  assert.equal(gap.error.offset, 0);
  assert.match(gap.error.message, /seqnos 15\.\.28 missing \(after ledger_1-14\.committed\)/);
  assert.deepEqual(gap.ignored, [join(zeroFilled, COMMITTED_2), join(halfCopied, COMMITTED_2)]);

  // Main holds neither committed chunk and the read-only copies of both are damaged. Asked to
  // read from seqno 1, the ledger starts too late; read as is, it starts at 29, like a ledger
  // written after a snapshot (where a ledger starts is the caller's to check, as without them).
  const onlyTail = await freshDir(true);
  unlinkSync(join(onlyTail, COMMITTED_1));
  unlinkSync(join(onlyTail, COMMITTED_2));
  const damaged = await damagedCopies((await fixturePromise).dir);
  const late = readUntilError(onlyTail, { readOnlyDirectories: [damaged], fromSeqno: 1 });
  assert.equal(late.error.code, LedgerErrorCode.MissingFile);
  assert.equal(late.error.file, IN_PROGRESS);
  assert.match(late.error.message, /ledger starts at seqno 29, after the requested seqno 1/);
  const ignored: string[] = [];
  const onIgnoredFile = (path: string) => ignored.push(path);
  const items = [...readLedger(onlyTail, { readOnlyDirectories: [damaged], onIgnoredFile })];
  assert.equal(items[0]?.kind === "entry" ? items[0].seqno : null, 29);
  assert.deepEqual(ignored, [join(damaged, COMMITTED_1), join(damaged, COMMITTED_2)]);
});

test("main-directory files are still checked strictly alongside read-only dirs", async () => {
  const main = await freshDir(true);
  const good = await freshDir(false);
  cpSync(join(main, COMMITTED_1), join(good, COMMITTED_1));
  // A damaged main file is an error, not replaced by a read-only copy of the same range.
  truncateSync(join(main, COMMITTED_1), 100);
  expectLedgerError(() => [...readLedger(main, { readOnlyDirectories: [good] })], {
    code: LedgerErrorCode.TruncatedFile,
    file: COMMITTED_1,
    offset: 100,
  });
});

// ---------------------------------------------------------------------------------------------
// F6: bit flips in committed files

/** One sampled bit of a committed file. */
interface Flip {
  readonly file: string;
  /** Byte offset in the file. */
  readonly at: number;
  readonly bit: number;
  readonly region: string;
  /** The entry holding the byte; null for chunk headers and positions tables. */
  readonly seqno: number | null;
}

const PUBLIC_DOMAIN_SIZE_OFFSET = 36;
const PUBLIC_DOMAIN_OFFSET = 44;

/** Offset of `marker` (ASCII) in `entry` after `from`, or -1. */
function indexOfText(entry: Uint8Array, marker: string, from = 0): number {
  return Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength).indexOf(marker, from);
}

/**
 * Deterministic sample: in every entry of the committed files, one bit in each header byte and
 * in the GCM tag, IV, public domain size, entry type, seqno, claims and commit evidence
 * digests, a public value and the private ciphertext; in every signature, bits of the root and
 * of the ECDSA signature; in every file, the chunk header and each positions table entry.
 */
function sampleFlips(dir: string): Flip[] {
  const flips: Flip[] = [];
  const tableStart = new Map<string, number>();
  for (const item of readLedger(dir)) {
    if (item.kind !== "entry" || !item.file.endsWith(".committed")) continue;
    const { file, offset, seqno, entry } = item;
    const add = (region: string, within: number) => {
      assert.ok(within >= 0 && within < entry.byteLength, `${region} of ${seqno}`);
      flips.push({ file, at: offset + within, bit: (seqno + within) % 8, region, seqno });
    };
    for (let i = 0; i < ENTRY_HEADER_SIZE_BYTES; i++) add(`entry header byte ${i}`, i);
    add("GCM tag", 8 + (seqno % 16));
    add("GCM IV", 24 + (seqno % 12));
    add("public domain size", PUBLIC_DOMAIN_SIZE_OFFSET + (seqno % 2));
    add("entry type", PUBLIC_DOMAIN_OFFSET);
    add("seqno", PUBLIC_DOMAIN_OFFSET + 1);
    add("claims digest", PUBLIC_DOMAIN_OFFSET + 9 + (seqno % 32));
    add("commit evidence digest", PUBLIC_DOMAIN_OFFSET + 41 + (seqno % 32));
    const view = new DataView(entry.buffer, entry.byteOffset, entry.byteLength);
    const publicEnd = PUBLIC_DOMAIN_OFFSET + Number(view.getBigUint64(36, true));
    const root = indexOfText(entry, '"root":"');
    if (root >= 0) {
      add("signature root", root + 8 + (seqno % 64));
      add("signature root", root + 8 + 63 - (seqno % 64));
      const sig = indexOfText(entry, '"sig":"');
      add("signature sig", sig + 7 + (seqno % 80));
      add("signature sig", sig + 7 + 1);
    } else {
      const value = indexOfText(entry, "<public value of tx ");
      add("public value", value + 20);
      add("private ciphertext", publicEnd + ((seqno * 7) % (entry.byteLength - publicEnd)));
    }
    tableStart.set(file, offset + entry.byteLength);
  }
  for (const [file, start] of tableStart) {
    const sizeBytes = statSync(join(dir, file)).size;
    for (let i = 0; i < 8; i++)
      flips.push({ file, at: i, bit: i, region: "chunk header", seqno: null });
    for (let at = start; at < sizeBytes; at += 4) {
      flips.push({
        file,
        at: at + ((at >> 2) % 2),
        bit: at % 8,
        region: "positions table",
        seqno: null,
      });
    }
  }
  return flips;
}

type Detection =
  | { readonly by: "reader"; readonly file: string; readonly offset: number }
  | {
      readonly by: "verifier";
      readonly seqno: number;
      readonly file: string;
      readonly offset: number;
    }
  | { readonly by: "nothing" };

/** What `consortia ledger verify` does in process: the reader feeding the verifier. */
function detect(dir: string): Detection {
  const verifier = new LedgerVerifier();
  try {
    for (const item of readLedger(dir)) {
      if (item.kind !== "entry") continue;
      const step = verifier.push(item.entry);
      if (step.kind === "invalid") {
        return { by: "verifier", seqno: step.seqno, file: item.file, offset: item.offset };
      }
    }
  } catch (err: unknown) {
    if (!(err instanceof LedgerError)) throw err;
    return { by: "reader", file: err.file, offset: err.offset };
  }
  return { by: "nothing" };
}

test("every sampled bit flip in the committed files is detected, with its seqno", async () => {
  const f = await fixturePromise;
  const dir = await freshDir(true);
  const signatures = f.signatureSeqnos;
  const flips = sampleFlips(dir);
  assert.ok(flips.length > 400, `${flips.length} flips sampled`);
  const undetected: string[] = [];
  const originals = new Map<string, Buffer>();
  for (const flip of flips) {
    const path = join(dir, flip.file);
    const original = originals.get(path) ?? readFileSync(path);
    originals.set(path, original);
    const flipped = Buffer.from(original);
    flipped[flip.at]! ^= 1 << flip.bit;
    writeFileSync(path, flipped);
    const found = detect(dir);
    writeFileSync(path, original);
    const where = `${flip.file} byte ${flip.at} bit ${flip.bit}`;
    const what = `${where} (${flip.region}, seqno ${flip.seqno})`;
    if (found.by === "nothing") {
      undetected.push(what);
    } else if (found.by === "reader") {
      assert.equal(found.file, flip.file, what);
    } else if (flip.seqno !== null) {
      // Reported at the entry itself, or at the next signature, whose root covers it (a flip
      // that leaves a signature's own fields meaning the same, like a hex digit's case, too).
      const covering = signatures.find((s) => s > flip.seqno!);
      assert.ok(
        found.seqno >= flip.seqno && found.seqno <= covering!,
        `${what}: at ${found.seqno}`,
      );
    } else {
      assert.fail(`${what}: a table or header flip must be a framing error`);
    }
  }
  assert.deepEqual(undetected, [], "undetected flips in covered bytes");
  assert.equal(detect(dir).by, "nothing", "the copy is intact again");
});

test("ledger verify names the file and offset of flipped bits", async () => {
  const dir = await freshDir(true);
  const flip = (file: string, at: number, mask: number) => {
    const path = join(dir, file);
    const bytes = readFileSync(path);
    bytes[at]! ^= mask;
    writeFileSync(path, bytes);
    const run = runCli(["ledger", "verify", "--dir", dir, "--no-progress"]);
    bytes[at]! ^= mask;
    writeFileSync(path, bytes);
    assert.equal(run.status, 1, run.stdout + run.stderr);
    return run.stderr;
  };
  // An entry header's version byte: a framing error at that entry.
  const header = locate(dir, 16);
  assert.match(
    flip(header.file, header.offset, 0x02),
    new RegExp(`${COMMITTED_2} at offset ${header.offset}: `),
  );
  // A signature's root: invalid at the signature itself, with its seqno.
  const signature = locate(dir, 14);
  const rootAt = indexOfText(readFileSync(join(dir, signature.file)), '"root":"', signature.offset);
  const rooted = flip(signature.file, rootAt + 20, 0x01);
  assert.match(rooted, new RegExp(`${COMMITTED_1} at offset ${signature.offset} \\(seqno 14\\)`));
  // A positions table entry.
  const path = join(dir, COMMITTED_1);
  const sizeBytes = statSync(path).size;
  assert.match(
    flip(COMMITTED_1, sizeBytes - 4, 0x10),
    new RegExp(`${COMMITTED_1} at offset ${sizeBytes - 4}: `),
  );
});
