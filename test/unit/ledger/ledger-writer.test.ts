// LedgerWriter (src/ledger/io/ledger-writer.ts) against real files in a temp dir: chunking at
// signatures past the size threshold and on FORCE flags, the three file-name forms, commit
// renames, truncation within and across chunks (re-opening a completed chunk), and open()
// recovering from crash leftovers (torn entries, a half-written positions table, a completion
// that missed its rename). Ledgers starting after a snapshot (startSeqno): first file, commit and
// truncate floors, re-opening with and without the option. Every scenario ends by reading the
// ledger back with readLedger, so a writer bug that produces a malformed file fails here. One
// test prints append throughput.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { AssertionError } from "../../../src/base/assert.js";
import {
  FORCE_LEDGER_CHUNK_AFTER,
  FORCE_LEDGER_CHUNK_BEFORE,
} from "../../../src/ledger/entry-header.js";
import { encodeChunkHeader } from "../../../src/ledger/chunk-format.js";
import { listLedgerFiles, readLedger } from "../../../src/ledger/io/ledger-reader.js";
import { LedgerStartError, LedgerWriter } from "../../../src/ledger/io/ledger-writer.js";
import { fakeEntry } from "../../helpers/fake-entries.js";

/** 101-byte entries: ten of them (plus the 8-byte chunk header) pass a 1000-byte threshold. */
const PAYLOAD_BYTES = 40;
const CHUNK_BYTES = 1000;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "ledger-writer-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const isSignature = (seqno: number) => seqno % 4 === 0;

/** Appends seqnos from..to with signatures at multiples of 4; returns the entries by seqno. */
function appendRange(
  writer: LedgerWriter,
  from: number,
  to: number,
  fill = 0,
): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (let seqno = from; seqno <= to; seqno++) {
    const entry = fakeEntry({ seqno, payloadSizeBytes: PAYLOAD_BYTES + fill });
    writer.append(entry, { seqno, isSignature: isSignature(seqno) });
    out.set(seqno, entry);
  }
  return out;
}

function names(dir: string): string[] {
  return listLedgerFiles(dir).map((f) => f.name);
}

/** Reads the whole ledger; fails on any LedgerError. */
function readBack(dir: string): { entries: Map<number, Uint8Array>; torn: number } {
  const entries = new Map<number, Uint8Array>();
  let torn = 0;
  let expected: number | null = null;
  for (const item of readLedger(dir)) {
    if (item.kind === "torn-tail") {
      torn += item.bytesRemaining;
      continue;
    }
    if (expected !== null) assert.equal(item.seqno, expected);
    expected = item.seqno + 1;
    entries.set(item.seqno, item.entry);
  }
  return { entries, torn };
}

type Entries = Map<number, Uint8Array>;

function assertSameEntries(actual: Entries, expected: Entries): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()]);
  for (const [seqno, entry] of expected) {
    assert.deepEqual(actual.get(seqno), entry, `seqno ${seqno}`);
  }
}

test("entries round-trip across chunks closed at the first signature past the threshold", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    const written = appendRange(writer, 1, 50);
    writer.close();
    // 10 entries reach 1018 bytes; the next signature (a multiple of 4) closes the chunk.
    assert.deepEqual(names(dir), [
      "ledger_1-12",
      "ledger_13-24",
      "ledger_25-36",
      "ledger_37-48",
      "ledger_49",
    ]);
    const { entries, torn } = readBack(dir);
    assert.equal(torn, 0);
    assertSameEntries(entries, written);
  });
});

test("FORCE_LEDGER_CHUNK_AFTER closes a chunk after an entry, ..._BEFORE before it", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1_000_000 });
    const flagsOf = new Map([
      [3, FORCE_LEDGER_CHUNK_AFTER],
      [6, FORCE_LEDGER_CHUNK_BEFORE],
      [7, FORCE_LEDGER_CHUNK_BEFORE | FORCE_LEDGER_CHUNK_AFTER],
    ]);
    const written = new Map<number, Uint8Array>();
    for (let seqno = 1; seqno <= 9; seqno++) {
      const entry = fakeEntry({ seqno, flags: flagsOf.get(seqno) ?? 0 });
      writer.append(entry, { seqno, isSignature: true });
      written.set(seqno, entry);
    }
    writer.close();
    assert.deepEqual(names(dir), [
      "ledger_1-3",
      "ledger_4-5",
      "ledger_6-6",
      "ledger_7-7",
      "ledger_8",
    ]);
    assertSameEntries(readBack(dir).entries, written);
  });
});

test("appends are buffered until flush, sync or the automatic flush threshold", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 100_000_000 });
    appendRange(writer, 1, 3);
    assert.deepEqual(names(dir), []);
    writer.flush();
    assert.equal(readBack(dir).entries.size, 3);
    appendRange(writer, 4, 5);
    writer.sync();
    assert.equal(readBack(dir).entries.size, 5);
    // About 1.2 MiB of entries without an explicit flush: the writer flushes by itself.
    for (let seqno = 6; seqno <= 305; seqno++) {
      writer.append(fakeEntry({ seqno, payloadSizeBytes: 4096 }), { seqno, isSignature: false });
    }
    assert.ok(readBack(dir).entries.size > 5);
    writer.close();
    assert.equal(readBack(dir).entries.size, 305);
  });
});

test("append rejects a seqno gap and an entry carrying a different seqno", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    const gap = () => writer.append(fakeEntry({ seqno: 2 }), { seqno: 2, isSignature: false });
    assert.throws(gap, AssertionError);
    const wrong = () => writer.append(fakeEntry({ seqno: 5 }), { seqno: 1, isSignature: false });
    assert.throws(wrong, AssertionError);
    writer.append(fakeEntry({ seqno: 1 }), { seqno: 1, isSignature: false });
    assert.equal(writer.lastSeqno, 1);
    writer.close();
  });
});

test("commit renames only completed chunks wholly at or below the committed seqno", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    appendRange(writer, 1, 50);
    writer.flush();
    writer.commit(30);
    assert.equal(writer.committedSeqno, 30);
    assert.deepEqual(names(dir), [
      "ledger_1-12.committed",
      "ledger_13-24.committed",
      "ledger_25-36",
      "ledger_37-48",
      "ledger_49",
    ]);
    writer.commit(20); // going back is a no-op
    assert.equal(writer.committedSeqno, 30);
    writer.commit(50);
    assert.deepEqual(names(dir), [
      "ledger_1-12.committed",
      "ledger_13-24.committed",
      "ledger_25-36.committed",
      "ledger_37-48.committed",
      "ledger_49",
    ]);
    assert.throws(() => writer.commit(51), AssertionError);
    // A chunk completed by FORCE_LEDGER_CHUNK_BEFORE after commit(50) is committed at once.
    writer.append(fakeEntry({ seqno: 51, flags: FORCE_LEDGER_CHUNK_BEFORE }), {
      seqno: 51,
      isSignature: false,
    });
    assert.equal(names(dir).at(-1), "ledger_49-50.committed");
    writer.close();
    // Re-opened, the committed seqno is what the names prove: the end of the last committed file.
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(reopened.committedSeqno, 50);
    assert.equal(reopened.lastSeqno, 51);
    reopened.close();
  });
});

test("truncate inside the in-progress chunk keeps earlier entries; appends replace them", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    const written = appendRange(writer, 1, 51);
    writer.truncate(49);
    assert.equal(writer.lastSeqno, 49);
    for (const [seqno, entry] of appendRange(writer, 50, 51, 7)) written.set(seqno, entry);
    writer.close();
    assert.deepEqual(names(dir).at(-1), "ledger_49");
    assertSameEntries(readBack(dir).entries, written);
  });
});

test("truncate across chunks re-opens a completed one, and appending again is valid", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    const written = appendRange(writer, 1, 50);
    writer.commit(12);
    writer.truncate(30);
    assert.equal(writer.lastSeqno, 30);
    assert.deepEqual(names(dir), ["ledger_1-12.committed", "ledger_13-24", "ledger_25"]);
    for (const seqno of [...written.keys()]) if (seqno > 30) written.delete(seqno);
    assertSameEntries(readBack(dir).entries, written);
    for (const [seqno, entry] of appendRange(writer, 31, 60, 3)) written.set(seqno, entry);
    writer.close();
    assert.deepEqual(names(dir), [
      "ledger_1-12.committed",
      "ledger_13-24",
      "ledger_25-36",
      "ledger_37-48",
      "ledger_49-60",
    ]);
    const { entries, torn } = readBack(dir);
    assert.equal(torn, 0);
    assertSameEntries(entries, written);
  });
});

test("truncate at a chunk boundary, to zero, or below the committed seqno", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    appendRange(writer, 1, 30);
    writer.truncate(24);
    assert.deepEqual(names(dir), ["ledger_1-12", "ledger_13-24"]);
    appendRange(writer, 25, 26);
    writer.flush();
    assert.deepEqual(names(dir), ["ledger_1-12", "ledger_13-24", "ledger_25"]);
    writer.truncate(0);
    assert.deepEqual(names(dir), []);
    assert.equal(writer.lastSeqno, 0);
    appendRange(writer, 1, 13);
    writer.commit(12);
    assert.throws(() => writer.truncate(11), AssertionError);
    writer.close();
    assert.equal(readBack(dir).entries.size, 13);
  });
});

test("open resumes after the last entry and appends to the re-opened in-progress chunk", () => {
  withDir((dir) => {
    const first = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    const written = appendRange(first, 1, 50);
    first.close();
    const second = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(second.lastSeqno, 50);
    assert.equal(second.recoveredTornTailBytes, 0);
    for (const [seqno, entry] of appendRange(second, 51, 62)) written.set(seqno, entry);
    second.close();
    assert.deepEqual(names(dir).slice(-2), ["ledger_49-60", "ledger_61"]);
    assertSameEntries(readBack(dir).entries, written);
  });
});

test("open truncates a torn entry at the end of the in-progress file and reports its size", () => {
  for (const chopBytes of [7, 101 - 3]) {
    withDir((dir) => {
      const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
      const written = appendRange(writer, 1, 51);
      writer.close();
      const path = join(dir, "ledger_49");
      const sizeBytes = readFileSync(path).byteLength;
      truncateSync(path, sizeBytes - chopBytes);
      assert.equal(readBack(dir).torn, 101 - chopBytes);
      const reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
      assert.equal(reopened.recoveredTornTailBytes, 101 - chopBytes);
      assert.equal(reopened.lastSeqno, 50);
      assert.equal(readFileSync(path).byteLength, sizeBytes - 101);
      written.set(51, appendRange(reopened, 51, 51, 9).get(51)!);
      reopened.close();
      const { entries, torn } = readBack(dir);
      assert.equal(torn, 0);
      assertSameEntries(entries, written);
    });
  }
});

test("open finishes a chunk completion that crashed before its rename or before its header", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    appendRange(writer, 1, 12);
    writer.close();
    // Crash after the header was set, before the rename: the whole file is still ledger_1.
    renameSync(join(dir, "ledger_1-12"), join(dir, "ledger_1"));
    let reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.deepEqual(names(dir), ["ledger_1-12"]);
    assert.equal(reopened.lastSeqno, 12);
    reopened.close();
    // Crash while the table was being appended: header still 0, table cut after 10 bytes.
    const path = join(dir, "ledger_1");
    renameSync(join(dir, "ledger_1-12"), path);
    const bytes = readFileSync(path);
    const tableOffset = bytes.byteLength - 12 * 4;
    writeFileSync(path, Buffer.concat([encodeChunkHeader(0), bytes.subarray(8, tableOffset + 10)]));
    reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(reopened.recoveredTornTailBytes, 10);
    assert.equal(reopened.lastSeqno, 12);
    assert.deepEqual(names(dir), ["ledger_1"]);
    appendRange(reopened, 13, 16);
    reopened.close();
    assert.deepEqual(names(dir), ["ledger_1-16"]);
    assert.equal(readBack(dir).entries.size, 16);
  });
});

test("open deletes an in-progress file left with no whole entry", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    appendRange(writer, 1, 13);
    writer.close();
    truncateSync(join(dir, "ledger_13"), 5);
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(reopened.recoveredTornTailBytes, 5);
    assert.equal(reopened.lastSeqno, 12);
    assert.equal(existsSync(join(dir, "ledger_13")), false);
    appendRange(reopened, 13, 14);
    reopened.close();
    assert.equal(readBack(dir).entries.size, 14);
  });
});

test("a ledger started after a snapshot at N takes N + 1 first, in ledger_<N+1>", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 101 });
    assert.deepEqual([writer.startSeqno, writer.lastSeqno, writer.committedSeqno], [101, 100, 100]);
    const early = () => writer.append(fakeEntry({ seqno: 1 }), { seqno: 1, isSignature: false });
    assert.throws(early, AssertionError);
    const written = appendRange(writer, 101, 150);
    writer.commit(100); // the snapshot's seqno is committed already: a no-op
    assert.equal(writer.committedSeqno, 100);
    writer.commit(112);
    writer.close();
    assert.deepEqual(names(dir), [
      "ledger_101-112.committed",
      "ledger_113-124",
      "ledger_125-136",
      "ledger_137-148",
      "ledger_149",
    ]);
    const { entries, torn } = readBack(dir);
    assert.equal(torn, 0);
    assertSameEntries(entries, written);
  });
});

test("open finds a later start in the file names and rejects a startSeqno that disagrees", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 101 });
    const written = appendRange(writer, 101, 130);
    writer.close();
    const before = names(dir);
    assert.deepEqual(before, ["ledger_101-112", "ledger_113-124", "ledger_125"]);
    for (const startSeqno of [1, 100, 102, 125]) {
      assert.throws(
        () => LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno }),
        (err: unknown) => {
          assert.ok(err instanceof LedgerStartError, String(err));
          assert.equal(err.code, "StartSeqnoMismatch");
          assert.deepEqual([err.type.startSeqno, err.type.ledgerStartSeqno], [startSeqno, 101]);
          assert.match(err.message, /starts at seqno 101 \(ledger_101-112\).*startSeqno/);
          return true;
        },
      );
    }
    assert.deepEqual(names(dir), before);
    const badStart = () => LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 0 });
    assert.throws(badStart, AssertionError);
    for (const startSeqno of [undefined, 101]) {
      const reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno });
      assert.deepEqual(
        [reopened.startSeqno, reopened.lastSeqno, reopened.committedSeqno],
        [101, 130, 100],
      );
      reopened.close();
    }
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    for (const [seqno, entry] of appendRange(reopened, 131, 140)) written.set(seqno, entry);
    reopened.close();
    assert.deepEqual(names(dir).at(-1), "ledger_137");
    assertSameEntries(readBack(dir).entries, written);
  });
});

test("truncate never goes below a snapshot start; truncating to it drops every entry", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 101 });
    appendRange(writer, 101, 130);
    writer.flush();
    assert.throws(() => writer.truncate(99), AssertionError);
    writer.truncate(100);
    assert.deepEqual(names(dir), []);
    assert.deepEqual([writer.lastSeqno, writer.committedSeqno], [100, 100]);
    const written = appendRange(writer, 101, 103, 5);
    writer.close();
    assert.deepEqual(names(dir), ["ledger_101"]);
    assertSameEntries(readBack(dir).entries, written);
    // Once empty again, the directory records no start: the caller's startSeqno is the start.
    const again = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    again.truncate(100);
    again.close();
    assert.deepEqual(names(dir), []);
    const fresh = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(fresh.startSeqno, 1);
    fresh.close();
    const resumed = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 101 });
    assert.equal(resumed.lastSeqno, 100);
    resumed.close();
  });
});

test("open keeps the start of an only in-progress file it deletes for holding no entry", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 101 });
    appendRange(writer, 101, 102);
    writer.close();
    truncateSync(join(dir, "ledger_101"), 5);
    // A disagreeing startSeqno is rejected before the repair: the file is still there.
    const wrong = () => LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES, startSeqno: 1 });
    assert.throws(wrong, LedgerStartError);
    assert.deepEqual(names(dir), ["ledger_101"]);
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(reopened.recoveredTornTailBytes, 5);
    assert.deepEqual(names(dir), []);
    assert.deepEqual([reopened.startSeqno, reopened.lastSeqno], [101, 100]);
    const written = appendRange(reopened, 101, 101);
    reopened.close();
    assertSameEntries(readBack(dir).entries, written);
  });
});

test("appending 100k small entries (throughput printed, not asserted)", (t) => {
  withDir((dir) => {
    const count = 100_000;
    const entries = Array.from({ length: count }, (_, i) => fakeEntry({ seqno: i + 1 }));
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 5_000_000 });
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      writer.append(entries[i]!, { seqno: i + 1, isSignature: (i + 1) % 100 === 0 });
    }
    writer.sync();
    const appendMs = performance.now() - started;
    writer.close();
    const readStarted = performance.now();
    let read = 0;
    for (const item of readLedger(dir)) if (item.kind === "entry") read++;
    const readMs = performance.now() - readStarted;
    assert.equal(read, count);
    const perSecond = (ms: number) => Math.round(count / (ms / 1000));
    t.diagnostic(
      `appended ${count} entries of ${entries[0]!.byteLength} bytes in ${appendMs.toFixed(0)} ms ` +
        `(${perSecond(appendMs)} appends/s, incl. final sync; ${names(dir).length} files)`,
    );
    t.diagnostic(`read back in ${readMs.toFixed(0)} ms (${perSecond(readMs)} entries/s)`);
  });
});

test("appendedBytes counts every entry byte appended since open, rolled-back ones included", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: CHUNK_BYTES });
    assert.equal(writer.appendedBytes, 0);
    const first = appendRange(writer, 1, 8);
    const firstBytes = [...first.values()].reduce((n, e) => n + e.byteLength, 0);
    assert.equal(writer.appendedBytes, firstBytes);
    writer.truncate(6);
    const again = appendRange(writer, 7, 9);
    const againBytes = [...again.values()].reduce((n, e) => n + e.byteLength, 0);
    assert.equal(writer.appendedBytes, firstBytes + againBytes);
    writer.close();
  });
});
