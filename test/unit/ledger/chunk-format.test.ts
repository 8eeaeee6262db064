// The pure framing layer of ledger files (src/ledger/entry-header.ts, src/ledger/chunk-format.ts):
// entry header codec, seqno field, file-name grammar, positions table, name-sequence checks and
// scanChunk's verdicts on well-formed, torn and tampered chunk bytes. The properties at the end
// check that no truncation of a completed chunk is ever accepted, and that every truncation of
// an in-progress chunk is either a clean entry boundary or a torn tail over a prefix of entries.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  ENTRY_SIZE_MIN_BYTES,
  FORCE_LEDGER_CHUNK_AFTER,
  FORCE_LEDGER_CHUNK_BEFORE,
  entrySeqno,
  readEntryHeader,
  writeEntryHeader,
} from "../../../src/ledger/entry-header.js";
import {
  LedgerError,
  LedgerErrorCode,
  checkLedgerFileSequence,
  decodeChunkHeader,
  decodePositionsTable,
  encodeChunkHeader,
  encodePositionsTable,
  formatLedgerFileName,
  parseLedgerFileName,
  scanChunk,
  type ChunkScanOptions,
  type LedgerFileName,
} from "../../../src/ledger/chunk-format.js";
import {
  expectLedgerError,
  fakeChunk,
  fakeEntries,
  fakeEntry,
} from "../../helpers/fake-entries.js";

function expectCode(fn: () => unknown, code: LedgerErrorCode, file: string, offset: number): void {
  expectLedgerError(fn, { code, file, offset });
}

const inProgress = (first: number, torn = true): ChunkScanOptions => ({
  fileName: `ledger_${first}`,
  firstSeqno: first,
  lastSeqno: null,
  tornTailAllowed: torn,
});
const completed = (first: number, last: number): ChunkScanOptions => ({
  fileName: `ledger_${first}-${last}`,
  firstSeqno: first,
  lastSeqno: last,
  tornTailAllowed: false,
});

test("entry headers round-trip version, flags and 48-bit sizes", () => {
  const bytes = new Uint8Array(10);
  for (const sizeBytes of [ENTRY_SIZE_MIN_BYTES, 70_000, 2 ** 40 + 5, 2 ** 48 - 1]) {
    writeEntryHeader(bytes, 2, { flags: FORCE_LEDGER_CHUNK_BEFORE, sizeBytes });
    assert.deepEqual(readEntryHeader(bytes, 2), {
      kind: "header",
      version: 1,
      flags: FORCE_LEDGER_CHUNK_BEFORE,
      sizeBytes,
    });
  }
  assert.throws(() => writeEntryHeader(bytes, 0, { flags: 0x04, sizeBytes: 100 }), RangeError);
  assert.throws(() => writeEntryHeader(bytes, 0, { flags: 0, sizeBytes: 2 ** 48 }), RangeError);
  assert.throws(() => writeEntryHeader(bytes, 0, { flags: 0, sizeBytes: 3 }), RangeError);
});

test("readEntryHeader tells torn prefixes from implausible bytes", () => {
  const entry = fakeEntry({ seqno: 7, flags: FORCE_LEDGER_CHUNK_AFTER });
  for (const bytesAvailable of [1, 5]) {
    const read = readEntryHeader(entry.subarray(0, bytesAvailable), 0);
    assert.deepEqual(read, { kind: "truncated", bytesAvailable });
  }
  assert.deepEqual(readEntryHeader(Uint8Array.of(2, 0, 0), 0), { kind: "bad-version", version: 2 });
  assert.deepEqual(readEntryHeader(Uint8Array.of(1, 0x80), 0), { kind: "bad-flags", flags: 0x80 });
  const tiny = Uint8Array.of(1, 0, 10, 0, 0, 0, 0, 0);
  assert.deepEqual(readEntryHeader(tiny, 0), { kind: "bad-size", sizeBytes: 10 });
});

test("entrySeqno reads the i64 at byte 45 and rejects negative or short entries", () => {
  assert.equal(entrySeqno(fakeEntry({ seqno: 123_456_789_012 })), 123_456_789_012);
  const entry = fakeEntry({ seqno: 1 });
  new DataView(entry.buffer).setBigInt64(45, -1n, true);
  assert.equal(entrySeqno(entry), null);
  assert.equal(entrySeqno(entry.subarray(0, 50)), null);
});

test("file names parse and format in the three CCF forms", () => {
  const names: [string, LedgerFileName][] = [
    ["ledger_1", { firstSeqno: 1, lastSeqno: null, committed: false }],
    ["ledger_21-40", { firstSeqno: 21, lastSeqno: 40, committed: false }],
    ["ledger_5-5.committed", { firstSeqno: 5, lastSeqno: 5, committed: true }],
  ];
  for (const [name, parsed] of names) {
    assert.deepEqual(parseLedgerFileName(name), { kind: "ledger", ...parsed });
    assert.equal(formatLedgerFileName(parsed), name);
  }
  for (const other of ["snapshot_10", "ledger_1-5.recovery", "ledger_7.recovery", "x.committed"]) {
    assert.deepEqual(parseLedgerFileName(other), { kind: "other" });
  }
  for (const bad of [
    "ledger_",
    "ledger_0",
    "ledger_01-5",
    "ledger_5-4",
    "ledger_3.committed",
    "ledger_1-2.committed.bak",
    "ledger_1-",
    "ledger_-1",
    "ledger_a",
  ]) {
    assert.equal(parseLedgerFileName(bad).kind, "invalid", bad);
  }
});

test("positions tables and chunk headers round-trip as little-endian integers", () => {
  const positions = [8, 300, 70_000, 0xffff_ffff];
  const table = encodePositionsTable(positions);
  assert.deepEqual([...table.subarray(0, 8)], [8, 0, 0, 0, 0x2c, 1, 0, 0]);
  assert.deepEqual(decodePositionsTable(table), positions);
  assert.equal(decodePositionsTable(table.subarray(0, 7)), null);
  assert.throws(() => encodePositionsTable([2 ** 32]), RangeError);
  assert.equal(decodeChunkHeader(encodeChunkHeader(2 ** 40 + 3)), 2 ** 40 + 3);
  assert.equal(decodeChunkHeader(new Uint8Array(8).fill(0xff)), null);
});

test("the name sequence must be contiguous, ordered and end in the only in-progress file", () => {
  const f = (name: string) => {
    const p = parseLedgerFileName(name);
    assert.equal(p.kind, "ledger");
    return { name, ...(p as LedgerFileName) };
  };
  checkLedgerFileSequence([f("ledger_1-10.committed"), f("ledger_11-20"), f("ledger_21")]);
  expectCode(
    () => checkLedgerFileSequence([f("ledger_1-10.committed"), f("ledger_12-20")]),
    LedgerErrorCode.MissingFile,
    "ledger_12-20",
    0,
  );
  expectCode(
    () => checkLedgerFileSequence([f("ledger_1-10"), f("ledger_10-20")]),
    LedgerErrorCode.OverlappingFiles,
    "ledger_10-20",
    0,
  );
  expectCode(
    () => checkLedgerFileSequence([f("ledger_1"), f("ledger_11-20")]),
    LedgerErrorCode.UnexpectedInProgressFile,
    "ledger_1",
    0,
  );
  expectCode(
    () => checkLedgerFileSequence([f("ledger_1-10"), f("ledger_11-20.committed")]),
    LedgerErrorCode.CommittedAfterUncommitted,
    "ledger_11-20.committed",
    0,
  );
});

test("scanChunk returns the entries of completed and in-progress chunks", () => {
  const entries = fakeEntries(11, 3, 20);
  const done = scanChunk(fakeChunk(entries, { complete: true }), completed(11, 13));
  assert.deepEqual(
    done.entries.map((e) => [e.seqno, e.offset, e.lengthBytes]),
    [
      [11, 8, entries[0]!.byteLength],
      [12, 8 + entries[0]!.byteLength, entries[1]!.byteLength],
      [13, 8 + 2 * entries[0]!.byteLength, entries[2]!.byteLength],
    ],
  );
  assert.equal(done.positionsOffset, 8 + 3 * entries[0]!.byteLength);
  const open = scanChunk(fakeChunk(entries, { complete: false }), inProgress(11));
  assert.equal(open.entries.length, 3);
  assert.equal(open.positionsOffset, null);
  assert.equal(open.tornTail, null);
});

test("a partial table left by an interrupted completion is a torn tail, other bytes not", () => {
  const entries = fakeEntries(1, 2);
  const whole = fakeChunk(entries, { complete: true });
  const tableOffset = decodeChunkHeader(whole)!;
  const unfinished = whole.slice(0, tableOffset + 5);
  unfinished.set(encodeChunkHeader(0), 0); // header not yet written when the crash hit
  const scan = scanChunk(unfinished, inProgress(1));
  assert.deepEqual(scan.tornTail, { offset: tableOffset, bytesRemaining: 5 });
  assert.equal(scan.entries.length, 2);
  unfinished[tableOffset + 4] = 0x77; // no longer a prefix of the table
  const scanAgain = () => scanChunk(unfinished, inProgress(1));
  expectCode(scanAgain, LedgerErrorCode.BadHeader, "ledger_1", tableOffset);
});

test("a completed name on an in-progress header, or a tail where none is allowed, fails", () => {
  const entries = fakeEntries(1, 2);
  const open = fakeChunk(entries, { complete: false });
  const asCompleted = () => scanChunk(open, completed(1, 2));
  expectCode(asCompleted, LedgerErrorCode.BadChunkHeader, "ledger_1-2", 0);
  const torn = open.subarray(0, open.byteLength - 3);
  const second = 8 + entries[0]!.byteLength;
  const tornNotAllowed = () => scanChunk(torn, inProgress(1, false));
  expectCode(tornNotAllowed, LedgerErrorCode.TruncatedEntry, "ledger_1", second);
  expectCode(
    () => scanChunk(open.subarray(0, 5), inProgress(1, false)),
    LedgerErrorCode.BadChunkHeader,
    "ledger_1",
    0,
  );
});

test("property: no truncation of a completed chunk is accepted", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (payloads, cut) => {
        const entries = payloads.map((p, i) => fakeEntry({ seqno: 5 + i, payloadSizeBytes: p }));
        const whole = fakeChunk(entries, { complete: true });
        const keep = cut % whole.byteLength;
        const options = completed(5, 4 + entries.length);
        assert.equal(scanChunk(whole, options).entries.length, entries.length);
        assert.throws(() => scanChunk(whole.subarray(0, keep), options), LedgerError);
      },
    ),
    { numRuns: 300 },
  );
});

test("property: every truncation of an in-progress chunk yields a prefix of its entries", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 6 }),
      fc.nat(),
      (payloads, cut) => {
        const entries = payloads.map((p, i) => fakeEntry({ seqno: 1 + i, payloadSizeBytes: p }));
        const whole = fakeChunk(entries, { complete: false });
        const keep = cut % (whole.byteLength + 1);
        const scan = scanChunk(whole.subarray(0, keep), inProgress(1));
        const ends = [8];
        for (const e of entries) ends.push(ends.at(-1)! + e.byteLength);
        const wholeEntries = ends.filter((end) => end <= keep).length - 1;
        assert.equal(scan.entries.length, Math.max(0, wholeEntries));
        const clean = ends.includes(keep);
        assert.equal(scan.tornTail === null, clean);
        if (scan.tornTail !== null) {
          assert.equal(scan.tornTail.offset + scan.tornTail.bytesRemaining, keep);
        }
      },
    ),
    { numRuns: 300 },
  );
});
