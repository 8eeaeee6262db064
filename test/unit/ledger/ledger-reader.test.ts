// readLedger / listLedgerFiles (src/ledger/io/ledger-reader.ts) on ledgers written by LedgerWriter
// and then damaged on disk: deleted, swapped, renamed, truncated and byte-corrupted files. Each
// tamper case checks the error code and that the file name and byte offset are reported, since
// that is what an operator running `consortia ledger verify` acts on. Also covers the torn tail
// of the last in-progress file (an item, not an error), fromSeqno and the progress callbacks, and
// a ledger starting after a snapshot (read from its first file; gaps after it still fail).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { LedgerErrorCode, decodeChunkHeader } from "../../../src/ledger/chunk-format.js";
import { LedgerWriter } from "../../../src/ledger/io/ledger-writer.js";
import {
  listLedgerFiles,
  readLedger,
  type LedgerFileInfo,
  type LedgerItem,
} from "../../../src/ledger/io/ledger-reader.js";
import {
  expectLedgerError,
  fakeChunk,
  fakeEntries,
  fakeEntry,
} from "../../helpers/fake-entries.js";

/** 101 bytes each: see ledger-writer.test.ts for the resulting chunk boundaries. */
const ENTRY_BYTES = 101;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "ledger-reader-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * ledger_1-12.committed, ledger_13-24.committed, ledger_25-36, ledger_37-48, ledger_49 (49, 50):
 * signatures at multiples of 4, 1000-byte chunks, committed up to 24.
 */
function writeLedger(dir: string, lastSeqno = 50): void {
  const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1000 });
  for (let seqno = 1; seqno <= lastSeqno; seqno++) {
    const entry = fakeEntry({ seqno, payloadSizeBytes: 40 });
    writer.append(entry, { seqno, isSignature: seqno % 4 === 0 });
  }
  writer.commit(Math.min(24, lastSeqno));
  writer.close();
}

const readAll = (dir: string): LedgerItem[] => [...readLedger(dir)];

function expectReadError(dir: string, code: LedgerErrorCode, file: string, offset: number): void {
  expectLedgerError(() => readAll(dir), { code, file, offset });
}

/** Offset of the positions table of a completed file. */
function tableOffset(path: string): number {
  return decodeChunkHeader(readFileSync(path))!;
}

function patch(path: string, offset: number, bytes: number[]): void {
  const data = readFileSync(path);
  data.set(bytes, offset);
  writeFileSync(path, data);
}

test("an intact ledger reads back every entry in order with file and offset", () => {
  withDir((dir) => {
    writeLedger(dir);
    const items = readAll(dir);
    assert.equal(items.length, 50);
    const entries = items.filter((i) => i.kind === "entry");
    assert.deepEqual(
      entries.map((e) => e.seqno),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.deepEqual(entries[12], {
      kind: "entry",
      seqno: 13,
      entry: fakeEntry({ seqno: 13, payloadSizeBytes: 40 }),
      file: "ledger_13-24.committed",
      offset: 8,
      flags: 0,
    });
    assert.equal(entries[13]!.offset, 8 + ENTRY_BYTES);
  });
});

test("listLedgerFiles sorts by first seqno and skips unrelated and recovery files", () => {
  withDir((dir) => {
    writeLedger(dir, 13);
    writeFileSync(join(dir, "ledger_14-20.recovery"), "x");
    writeFileSync(join(dir, "snapshot_12_13.committed"), "x");
    writeFileSync(join(dir, "notes.txt"), "x");
    const files = listLedgerFiles(dir);
    const summary = (f: LedgerFileInfo) => [f.name, f.firstSeqno, f.lastSeqno, f.committed];
    assert.deepEqual(files.map(summary), [
      ["ledger_1-12.committed", 1, 12, true],
      ["ledger_13", 13, null, false],
    ]);
    assert.equal(files[1]!.sizeBytes, 8 + ENTRY_BYTES);
    assert.equal(files[1]!.path, join(dir, "ledger_13"));
    writeFileSync(join(dir, "ledger_14x"), "x");
    const bad = { code: LedgerErrorCode.BadFileName, file: "ledger_14x", offset: 0 };
    expectLedgerError(() => listLedgerFiles(dir), bad);
  });
});

test("a deleted middle file is reported as missing seqnos before the next file", () => {
  withDir((dir) => {
    writeLedger(dir);
    unlinkSync(join(dir, "ledger_25-36"));
    expectReadError(dir, LedgerErrorCode.MissingFile, "ledger_37-48", 0);
  });
});

test("two swapped files are caught by the seqnos their entries carry", () => {
  withDir((dir) => {
    writeLedger(dir);
    renameSync(join(dir, "ledger_25-36"), join(dir, "tmp"));
    renameSync(join(dir, "ledger_37-48"), join(dir, "ledger_25-36"));
    renameSync(join(dir, "tmp"), join(dir, "ledger_37-48"));
    expectReadError(dir, LedgerErrorCode.SeqnoMismatch, "ledger_25-36", 8);
  });
});

test("renamed files whose ranges still chain are caught by their entry counts", () => {
  withDir((dir) => {
    writeLedger(dir);
    renameSync(join(dir, "ledger_25-36"), join(dir, "ledger_25-37"));
    renameSync(join(dir, "ledger_37-48"), join(dir, "ledger_38-48"));
    const offset = 8 + 12 * ENTRY_BYTES;
    expectReadError(dir, LedgerErrorCode.EntryCountMismatch, "ledger_25-37", offset);
  });
});

test("a committed file cut short by a few bytes is a truncated file, not a torn tail", () => {
  withDir((dir) => {
    writeLedger(dir);
    const path = join(dir, "ledger_13-24.committed");
    const sizeBytes = readFileSync(path).byteLength;
    truncateSync(path, sizeBytes - 3);
    expectLedgerError(() => readAll(dir), {
      code: LedgerErrorCode.TruncatedFile,
      file: "ledger_13-24.committed",
      offset: sizeBytes - 3,
    });
    // Cut into the entries: the header now points past the end of the file.
    truncateSync(path, sizeBytes - 200);
    expectLedgerError(() => readAll(dir), {
      code: LedgerErrorCode.TruncatedFile,
      file: "ledger_13-24.committed",
      offset: sizeBytes - 200,
    });
  });
});

test("a truncated completed last file is an error even though it is not committed", () => {
  withDir((dir) => {
    writeLedger(dir, 48);
    const path = join(dir, "ledger_37-48");
    const sizeBytes = readFileSync(path).byteLength;
    truncateSync(path, sizeBytes - 1);
    expectReadError(dir, LedgerErrorCode.TruncatedFile, "ledger_37-48", sizeBytes - 1);
  });
});

test("a corrupted positions table names the bad position", () => {
  withDir((dir) => {
    writeLedger(dir);
    const path = join(dir, "ledger_1-12.committed");
    const table = tableOffset(path);
    patch(path, table + 5 * 4, [0x99]);
    expectLedgerError(() => readAll(dir), {
      code: LedgerErrorCode.BadPositionsTable,
      file: "ledger_1-12.committed",
      offset: table + 20,
    });
  });
});

test("a corrupted entry size is caught at that entry or where the next one should start", () => {
  withDir((dir) => {
    writeLedger(dir);
    const path = join(dir, "ledger_25-36");
    const third = 8 + 2 * ENTRY_BYTES;
    const original = readFileSync(path);
    patch(path, third + 5, [0x01]); // size grows by 16 MiB: runs into the positions table
    expectReadError(dir, LedgerErrorCode.TruncatedEntry, "ledger_25-36", third);
    writeFileSync(path, original);
    // One byte shorter: the next "header" starts on the last payload byte.
    patch(path, third + 2, [original[third + 2]! - 1]);
    const next = third + ENTRY_BYTES - 1;
    expectReadError(dir, LedgerErrorCode.BadHeader, "ledger_25-36", next);
  });
});

test("corrupted versions, flags and seqnos inside entries are reported at the entry", () => {
  withDir((dir) => {
    writeLedger(dir);
    const path = join(dir, "ledger_37-48");
    const original = readFileSync(path);
    const fourth = 8 + 3 * ENTRY_BYTES;
    patch(path, fourth, [2]);
    expectReadError(dir, LedgerErrorCode.BadHeader, "ledger_37-48", fourth);
    writeFileSync(path, original);
    patch(path, fourth + 1, [0x40]);
    expectReadError(dir, LedgerErrorCode.BadHeader, "ledger_37-48", fourth);
    writeFileSync(path, original);
    patch(path, fourth + 45, [99]);
    expectReadError(dir, LedgerErrorCode.SeqnoMismatch, "ledger_37-48", fourth);
  });
});

test("garbage after the positions table is reported as trailing bytes", () => {
  withDir((dir) => {
    writeLedger(dir);
    const path = join(dir, "ledger_37-48");
    const sizeBytes = readFileSync(path).byteLength;
    appendFileSync(path, Uint8Array.of(1, 2, 3));
    expectReadError(dir, LedgerErrorCode.TrailingBytes, "ledger_37-48", sizeBytes);
  });
});

test("a completed name on a file whose header says in progress is a bad chunk header", () => {
  withDir((dir) => {
    writeLedger(dir);
    patch(join(dir, "ledger_13-24.committed"), 0, [0, 0, 0, 0, 0, 0, 0, 0]);
    expectLedgerError(() => readAll(dir), {
      code: LedgerErrorCode.BadChunkHeader,
      file: "ledger_13-24.committed",
      offset: 0,
    });
  });
});

test("a torn tail of the last in-progress file is yielded after the whole entries", () => {
  withDir((dir) => {
    writeLedger(dir);
    const path = join(dir, "ledger_49");
    const sizeBytes = readFileSync(path).byteLength;
    truncateSync(path, sizeBytes - 30);
    const items = readAll(dir);
    assert.equal(items.length, 50);
    const last = items.at(-2);
    assert.equal(last?.kind === "entry" ? last.seqno : null, 49);
    assert.deepEqual(items.at(-1), {
      kind: "torn-tail",
      file: "ledger_49",
      offset: 8 + ENTRY_BYTES,
      bytesRemaining: ENTRY_BYTES - 30,
    });
  });
});

test("an in-progress file that is not the last one is an error, torn or not", () => {
  withDir((dir) => {
    writeFileSync(join(dir, "ledger_1"), fakeChunk(fakeEntries(1, 2), { complete: false }));
    writeFileSync(join(dir, "ledger_3"), fakeChunk(fakeEntries(3, 2), { complete: false }));
    expectReadError(dir, LedgerErrorCode.UnexpectedInProgressFile, "ledger_1", 0);
  });
});

test("a last file completed but not yet renamed reads as whole", () => {
  withDir((dir) => {
    writeFileSync(join(dir, "ledger_1"), fakeChunk(fakeEntries(1, 3), { complete: true }));
    assert.deepEqual(
      readAll(dir).map((i) => i.kind),
      ["entry", "entry", "entry"],
    );
  });
});

test("fromSeqno skips earlier files and entries; progress covers only the files read", () => {
  withDir((dir) => {
    writeLedger(dir);
    const seen: string[] = [];
    const progress: [number, number][] = [];
    const items = [
      ...readLedger(dir, {
        fromSeqno: 30,
        onFile: (f, index, total) => seen.push(`${f.name} ${index}/${total}`),
        onProgress: (done, total) => progress.push([done, total]),
      }),
    ];
    assert.deepEqual(
      items.map((i) => (i.kind === "entry" ? i.seqno : -1)),
      Array.from({ length: 21 }, (_, i) => i + 30),
    );
    assert.deepEqual(seen, ["ledger_25-36 0/3", "ledger_37-48 1/3", "ledger_49 2/3"]);
    const total = listLedgerFiles(dir)
      .slice(2)
      .reduce((sum, f) => sum + f.sizeBytes, 0);
    assert.deepEqual(progress.at(-1), [total, total]);
    assert.equal(progress.length, 3);
  });
});

test("fromSeqno before the first file of a ledger that starts later is a missing file", () => {
  withDir((dir) => {
    const chunk = fakeChunk(fakeEntries(5, 2), { complete: true });
    writeFileSync(join(dir, "ledger_5-6.committed"), chunk);
    assert.equal(readAll(dir).length, 2);
    expectLedgerError(() => [...readLedger(dir, { fromSeqno: 3 })], {
      code: LedgerErrorCode.MissingFile,
      file: "ledger_5-6.committed",
      offset: 0,
    });
  });
});

test("a ledger starting after a snapshot reads from its first seqno; gaps are still errors", () => {
  withDir((dir) => {
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1000, startSeqno: 101 });
    for (let seqno = 101; seqno <= 150; seqno++) {
      const entry = fakeEntry({ seqno, payloadSizeBytes: 40 });
      writer.append(entry, { seqno, isSignature: seqno % 4 === 0 });
    }
    writer.close();
    const seqnos = readAll(dir).map((item) => (item.kind === "entry" ? item.seqno : -1));
    assert.deepEqual(
      seqnos,
      Array.from({ length: 50 }, (_, i) => 101 + i),
    );
    const from = [...readLedger(dir, { fromSeqno: 120 })];
    assert.deepEqual([from.length, from[0]?.kind === "entry" && from[0].seqno], [31, 120]);
    expectLedgerError(() => [...readLedger(dir, { fromSeqno: 100 })], {
      code: LedgerErrorCode.MissingFile,
      file: "ledger_101-112",
      offset: 0,
    });
    unlinkSync(join(dir, "ledger_113-124"));
    expectReadError(dir, LedgerErrorCode.MissingFile, "ledger_125-136", 0);
  });
});
