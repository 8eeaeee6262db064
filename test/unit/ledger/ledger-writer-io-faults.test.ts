// Disk faults at the file-call boundary of the LedgerWriter (SECURITY.md, "Disk faults"): EIO
// and ENOSPC cannot be produced for real here (no device-mapper), so they are injected by
// test/helpers/failing-fs.ts, a SyncFileSystem over the real node:fs. Oracles: the error's
// fields, the count of file calls after the fault (none may reach the disk), and the ledger
// reopened with the real file system (LedgerWriter.open's torn-tail repair, then readLedger):
// every entry synced before the fault is there, byte for byte, and appending resumes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { basename } from "node:path";
import { StorageError } from "../../../src/base/storage-error.js";
import { LedgerWriter } from "../../../src/ledger/io/ledger-writer.js";
import { readLedger } from "../../../src/ledger/io/ledger-reader.js";
import { fakeEntries } from "../../helpers/fake-entries.js";
import { FailingFs } from "../../helpers/failing-fs.js";
import { tempDir } from "../../helpers/pki.js";

const PAYLOAD_BYTES = 100;
/** One fake entry: 8-byte header, 53 bytes of fixed body, the payload. */
const ENTRY_BYTES = 8 + 53 + PAYLOAD_BYTES;

function appendAll(writer: LedgerWriter, entries: readonly Uint8Array[], first: number): void {
  entries.forEach((entry, i) => writer.append(entry, { seqno: first + i, isSignature: false }));
}

function storageErrorOf(call: () => void): StorageError {
  try {
    call();
  } catch (e) {
    assert.ok(e instanceof StorageError, `expected a StorageError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a StorageError, got none");
}

/** The entries of the ledger in `dir`, read back by the reader (the independent side). */
function entriesOn(dir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const item of readLedger(dir)) {
    assert.equal(item.kind, "entry", `no torn tail is left after open (${item.file})`);
    if (item.kind === "entry") out.push(item.entry);
  }
  return out;
}

test("an EIO from fdatasync names the file, stops the writer, and the synced prefix survives", () => {
  const { dir, cleanup } = tempDir("consortia-io-fault-");
  try {
    const fs = new FailingFs();
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20, fs });
    const entries = fakeEntries(1, 8, PAYLOAD_BYTES);
    appendAll(writer, entries.slice(0, 5), 1);
    writer.sync();
    appendAll(writer, entries.slice(5), 6);
    fs.fail("fdatasyncSync", "EIO");
    const fault = storageErrorOf(() => writer.sync());
    assert.equal(fault.type.errno, "EIO");
    assert.equal(fault.type.operation, "fdatasync");
    assert.equal(basename(fault.type.path), "ledger_1");
    assert.match(fault.message, /fdatasync .*ledger_1 failed: EIO \(input\/output error\)/);
    assert.equal(writer.fault, fault);
    // Every later duty throws the same fault without touching the disk.
    const callsAtFault = fs.totalCalls;
    const more = fakeEntries(9, 1, PAYLOAD_BYTES)[0]!;
    assert.equal(
      storageErrorOf(() => writer.append(more, { seqno: 9, isSignature: false })),
      fault,
    );
    assert.equal(
      storageErrorOf(() => writer.sync()),
      fault,
    );
    assert.equal(
      storageErrorOf(() => writer.commit(5)),
      fault,
    );
    assert.equal(fs.totalCalls, callsAtFault);
    writer.abandon();
    // Reopened on the real file system: at least the synced prefix, byte for byte.
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 });
    assert.ok(reopened.lastSeqno >= 5, `reopened at ${reopened.lastSeqno}`);
    const back = entriesOn(dir);
    for (let i = 0; i < 5; i++) assert.deepEqual(back[i], entries[i]);
    reopened.close();
  } finally {
    cleanup();
  }
});

test("ENOSPC halfway through a write leaves a torn tail that open cuts; appends resume", () => {
  const { dir, cleanup } = tempDir("consortia-io-fault-");
  try {
    const fs = new FailingFs();
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20, fs });
    const entries = fakeEntries(1, 6, PAYLOAD_BYTES);
    appendAll(writer, entries.slice(0, 3), 1);
    writer.sync();
    appendAll(writer, entries.slice(3), 4);
    // The disk takes 150 bytes of entry 4 (161 bytes), then is full.
    fs.failWritesAfter(150, "ENOSPC");
    const fault = storageErrorOf(() => writer.sync());
    assert.equal(fault.type.errno, "ENOSPC");
    assert.equal(fault.type.operation, "write");
    assert.match(fault.message, /ledger_1 failed: ENOSPC \(no space left on device\)/);
    writer.abandon();
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 });
    assert.equal(reopened.recoveredTornTailBytes, 150);
    assert.equal(reopened.lastSeqno, 3);
    appendAll(reopened, entries.slice(3), 4);
    reopened.close();
    assert.deepEqual(entriesOn(dir), entries);
  } finally {
    cleanup();
  }
});

test("ENOSPC while a chunk's positions table is written: open cuts the table, keeps entries", () => {
  const { dir, cleanup } = tempDir("consortia-io-fault-");
  try {
    const fs = new FailingFs();
    // A chunk completes at the first signature past 400 bytes: entry 4 here.
    const writer = LedgerWriter.open(dir, { chunkSizeBytes: 400, fs });
    const entries = fakeEntries(1, 4, PAYLOAD_BYTES);
    appendAll(writer, entries.slice(0, 3), 1);
    writer.sync();
    // The flush of entry 4 fits (it was 8 + 3 entries before); the table does not.
    fs.failWritesAfter(ENTRY_BYTES, "ENOSPC");
    const fault = storageErrorOf(() => writer.append(entries[3]!, { seqno: 4, isSignature: true }));
    assert.equal(fault.type.errno, "ENOSPC");
    writer.abandon();
    const reopened = LedgerWriter.open(dir, { chunkSizeBytes: 400 });
    assert.equal(reopened.lastSeqno, 4);
    reopened.close();
    assert.deepEqual(entriesOn(dir), entries);
  } finally {
    cleanup();
  }
});
