// ChunkCache (src/ledger/io/chunk-cache.ts), the asynchronous reader behind historical queries,
// on ledgers written by LedgerWriter in temporary directories. Oracle: the entry bytes given to
// the writer (fakeEntry is deterministic per seqno) and the files on disk. Covers: entries are
// served once their chunk is loaded and only up to the commit seqno the load was told; the
// least recently used chunks go beyond the byte budget; reads beyond the concurrency and queue
// bounds answer "busy"; read-only directories are searched; a seqno no file holds and a damaged
// file are LedgerErrors naming the file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { LedgerErrorCode } from "../../../src/ledger/chunk-format.js";
import { LedgerWriter } from "../../../src/ledger/io/ledger-writer.js";
import { ChunkCache, type ChunkCacheOptions } from "../../../src/ledger/io/chunk-cache.js";
import { LedgerError } from "../../../src/ledger/io/ledger-reader.js";
import { fakeEntry } from "../../helpers/fake-entries.js";

/**
 * ledger_1-12.committed, ledger_13-24.committed, ledger_25-36, ledger_37-48, ledger_49 (49, 50):
 * signatures at multiples of 4, 1000-byte chunks, committed up to 24 (as ledger-reader.test.ts).
 */
function writeLedger(dir: string): void {
  const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1000 });
  for (let seqno = 1; seqno <= 50; seqno++) {
    writer.append(entryOf(seqno), { seqno, isSignature: seqno % 4 === 0 });
  }
  writer.commit(24);
  writer.close();
}

function entryOf(seqno: number): Uint8Array {
  return fakeEntry({ seqno, payloadSizeBytes: 40 });
}

async function withLedger(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "chunk-cache-"));
  try {
    writeLedger(join(dir, "ledger"));
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function cacheOf(dir: string, options: Partial<ChunkCacheOptions> = {}): ChunkCache {
  return new ChunkCache({
    directory: join(dir, "ledger"),
    readOnlyDirectories: [],
    concurrentReadsMax: 2,
    queuedReadsMax: 8,
    cacheBytesMax: 1 << 20,
    ...options,
  });
}

test("an entry is served from memory once its chunk is loaded, with the bytes written", async () => {
  await withLedger(async (dir) => {
    const cache = cacheOf(dir);
    assert.equal(cache.entryAt(5), null);
    assert.deepEqual(await cache.load(5, 50), { kind: "loaded" });
    for (let seqno = 1; seqno <= 12; seqno++) {
      assert.deepEqual(cache.entryAt(seqno), entryOf(seqno), `seqno ${seqno}`);
    }
    assert.equal(cache.entryAt(13), null, "the next chunk is not loaded");
    await cache.load(49, 50);
    assert.deepEqual(cache.entryAt(50), entryOf(50), "the in-progress file too");
  });
});

test("entries after the commit seqno the load was told are not kept", async () => {
  await withLedger(async (dir) => {
    const cache = cacheOf(dir);
    await cache.load(30, 30);
    assert.deepEqual(cache.entryAt(30), entryOf(30));
    assert.equal(cache.entryAt(31), null);
    await cache.load(33, 36);
    assert.deepEqual(cache.entryAt(33), entryOf(33), "a later load keeps the newly committed");
  });
});

test("past the byte budget the least recently used chunk is dropped", async () => {
  await withLedger(async (dir) => {
    const size = readFileSync(join(dir, "ledger", "ledger_1-12.committed")).byteLength;
    const cache = cacheOf(dir, { cacheBytesMax: 2 * size + 10 });
    await cache.load(1, 50);
    await cache.load(13, 50);
    assert.notEqual(cache.entryAt(2), null, "uses chunk 1, so chunk 13 is the older");
    await cache.load(25, 50);
    assert.notEqual(cache.entryAt(3), null);
    assert.notEqual(cache.entryAt(26), null);
    assert.equal(cache.entryAt(14), null, "dropped");
  });
});

test("reads beyond the concurrency and queue bounds answer busy; the others load", async () => {
  await withLedger(async (dir) => {
    const cache = cacheOf(dir, { concurrentReadsMax: 1, queuedReadsMax: 1 });
    const outcomes = await Promise.all([1, 13, 25, 37].map((seqno) => cache.load(seqno, 50)));
    const busy = outcomes.filter((o) => o.kind === "busy").length;
    assert.equal(busy, 2, JSON.stringify(outcomes));
    const loaded = [1, 13, 25, 37].filter((seqno) => cache.entryAt(seqno) !== null);
    assert.equal(loaded.length, 2);
    // Loads of one file share its read: none of them waits in the queue.
    const same = await Promise.all([2, 3, 4, 5, 6].map((seqno) => cacheOf(dir).load(seqno, 50)));
    assert.ok(same.every((o) => o.kind === "loaded"));
  });
});

test("committed chunks are found in read-only directories", async () => {
  await withLedger(async (dir) => {
    const archive = join(dir, "archive");
    mkdirSync(archive);
    const name = "ledger_1-12.committed";
    renameSync(join(dir, "ledger", name), join(archive, name));
    const cache = cacheOf(dir, { readOnlyDirectories: [archive] });
    await cache.load(7, 50);
    assert.deepEqual(cache.entryAt(7), entryOf(7));
  });
});

test("a seqno no file holds and a damaged file are LedgerErrors naming the file", async () => {
  await withLedger(async (dir) => {
    const cache = cacheOf(dir);
    await assert.rejects(cache.load(60, 60), (err: unknown) => {
      assert.ok(err instanceof LedgerError);
      assert.equal(err.type.code, LedgerErrorCode.MissingFile);
      return true;
    });
    const file = join(dir, "ledger", "ledger_13-24.committed");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.byteLength - 3));
    await assert.rejects(cache.load(14, 50), (err: unknown) => {
      assert.ok(err instanceof LedgerError, String(err));
      assert.equal(err.type.file, "ledger_13-24.committed");
      return true;
    });
    assert.equal(cache.entryAt(14), null);
  });
});

test("files written after a load (completed, renamed, new) are found by later loads", async () => {
  await withLedger(async (dir) => {
    const cache = cacheOf(dir);
    await cache.load(49, 50);
    assert.deepEqual(cache.entryAt(50), entryOf(50));
    const writer = LedgerWriter.open(join(dir, "ledger"), { chunkSizeBytes: 1000 });
    for (let seqno = 51; seqno <= 80; seqno++) {
      writer.append(entryOf(seqno), { seqno, isSignature: seqno % 4 === 0 });
    }
    writer.commit(80);
    writer.close();
    // Concurrent loads share one listing; every one finds its file.
    const seqnos = [51, 60, 70, 79, 30];
    const outcomes = await Promise.all(seqnos.map((seqno) => cache.load(seqno, 80)));
    assert.ok(outcomes.every((o) => o.kind === "loaded"));
    for (const seqno of seqnos) assert.deepEqual(cache.entryAt(seqno), entryOf(seqno));
  });
});
