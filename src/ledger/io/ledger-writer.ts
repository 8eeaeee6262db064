/**
 * Appends framed entries to a ledger directory in CCF's chunk layout (chunk-format.ts;
 * ccf-compatibility.md §6.3), completes chunks at signatures, renames them once
 * committed, and rolls back uncommitted suffixes.
 *
 * Chunking (as CCF): the current chunk is completed right after an entry when that entry is a
 * signature and the chunk has reached `chunkSizeBytes`, or when the entry has
 * FORCE_LEDGER_CHUNK_AFTER. An entry with FORCE_LEDGER_CHUNK_BEFORE completes the current chunk
 * (if it has entries) before it is appended.
 *
 * Durability contract (what survives a crash):
 * - `append` only buffers in memory; `flush` (explicit, or automatic past FLUSH_THRESHOLD_BYTES)
 *   hands bytes to the OS without fsync. Neither is a durability point.
 * - `sync` is THE durability point: once it returns, every appended entry survives a crash,
 *   including the creation of the file holding it.
 * - After a crash, the last in-progress file (`ledger_<first>`) may end in a torn tail: part of
 *   an entry, or part of a positions table being appended. `open` truncates it and reports the
 *   bytes dropped in `recoveredTornTailBytes`. Bytes before the last sync are never affected.
 * - Completed chunks are synced when they complete, before they are renamed; a completed file
 *   on disk is therefore always whole. (This is the one place `append` waits on the disk: two
 *   fdatasyncs and a directory fsync once per chunk.) Committed files (`.committed`) are never
 *   written again.
 * - `truncate` and `commit` are durable when they return.
 * - The committed seqno itself is not persisted: after `open` it is the last seqno of the last
 *   `.committed` file (or the seqno before the ledger's start), a lower bound of what was
 *   committed.
 * Every multi-step file operation is ordered so that each crash point leaves a state `open` and
 * the reader accept (see completeChunk and reopenChunk).
 *
 * Start: a ledger holds seqnos `start..last`. It starts at 1, or after a snapshot at seqno N (a
 * node that started or joined from that snapshot) at N + 1, its first file being `ledger_<N+1>`
 * as in CCF. Everything up to N is covered by the snapshot, so N counts as committed: commit and
 * truncate never go below it (truncate(N) drops every entry written). A non-empty directory
 * records its start in its first file name, which `open` reads; an empty directory records
 * nothing, so whoever opens a ledger that may be empty passes `startSeqno` (default 1), and
 * `open` checks it against the files when there are any.
 *
 * IO errors: every failed file call throws a StorageError naming the file and the errno
 * (base/storage-error.ts). After one, the writer's in-memory state may no longer match the
 * disk, and a failed fdatasync may have lost data the kernel held: the writer refuses every
 * later call (the same StorageError again) and is only abandoned; `open` the ledger again once
 * the fault is repaired, which truncates whatever torn tail the failure left. Not safe for two
 * writers on one directory.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { assert } from "../../base/assert.js";
import { concatBytes } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import type { SyncFileSystem } from "../../base/io.js";
import { faultReportingFs, StorageError, withStorageErrors } from "../../base/storage-error.js";
import {
  CHUNK_HEADER_SIZE_BYTES,
  CHUNK_POSITION_MAX,
  checkLedgerFileSequence,
  encodeChunkHeader,
  encodePositionsTable,
  formatLedgerFileName,
  scanChunk,
  type LedgerFileName,
} from "../chunk-format.js";
import {
  ENTRY_HEADER_SIZE_BYTES,
  FORCE_LEDGER_CHUNK_AFTER,
  FORCE_LEDGER_CHUNK_BEFORE,
  entrySeqno,
  readEntryHeader,
} from "../entry-header.js";
import { listLedgerFiles } from "./ledger-reader.js";
import { NODE_SYNC_FS } from "./node-sync-fs.js";

export interface LedgerWriterOptions {
  /** A chunk is completed at the first signature once it has reached this size (CCF: 5 MB). */
  readonly chunkSizeBytes: number;
  /**
   * Seqno of the ledger's first entry: 1, or N + 1 for a ledger written after a snapshot at N.
   * An empty directory starts here (default 1). For a non-empty one the start comes from its
   * first file, and when this is given too it must agree (LedgerStartError otherwise).
   */
  readonly startSeqno?: number | undefined;
  /** The file calls (default: node:fs); tests inject failures here. */
  readonly fs?: SyncFileSystem | undefined;
}

/** `open` was given a startSeqno that the ledger files in the directory contradict. */
export type LedgerStartErrorType = {
  code: "StartSeqnoMismatch";
  dir: string;
  startSeqno: number;
  /** Where the files say the ledger starts. */
  ledgerStartSeqno: number;
};

export class LedgerStartError extends CcfError<LedgerStartErrorType> {}

/** Buffered bytes past which `append` flushes to the OS by itself. */
export const FLUSH_THRESHOLD_BYTES = 1024 * 1024;

interface CompletedChunk {
  readonly firstSeqno: number;
  readonly lastSeqno: number;
  committed: boolean;
}

interface OpenChunk {
  readonly firstSeqno: number;
  /** Invariant: null until the first flush creates `ledger_<firstSeqno>`. */
  fd: number | null;
  /** Invariant: positions[i] is the file offset of entry firstSeqno + i (flushed or not). */
  readonly positions: number[];
  /** Invariant: the file size once everything buffered is flushed. */
  sizeBytes: number;
  /** Invariant: flushedBytes <= sizeBytes; bytes in [flushedBytes, sizeBytes) are buffered. */
  flushedBytes: number;
}

export class LedgerWriter {
  /** Bytes cut off the end of the in-progress file by `open` (0 when it ended cleanly). */
  readonly recoveredTornTailBytes: number;
  private readonly dir: string;
  private readonly chunkSizeBytes: number;
  /** Every call reports its failure as a StorageError naming the file. */
  private readonly fs: SyncFileSystem;
  /** Invariant: once set, every later call throws it (see the IO errors contract above). */
  private failure: StorageError | null = null;
  /** Invariant: sorted, contiguous, committed ones first; all before `current`. */
  private readonly completed: CompletedChunk[];
  /** Invariant: null, or the ledger's last chunk holding at least one entry. */
  private current: OpenChunk | null;
  /** Invariant: bytes of `current` not yet written; their total is bufferedBytes. */
  private buffer: Uint8Array[] = [];
  private bufferedBytes = 0;
  /** Invariant: the ledger holds seqnos base + 1..last; base <= committed <= last. */
  private readonly base: number;
  private last: number;
  /** Invariant: committed <= last; every completed chunk with lastSeqno <= committed is renamed. */
  private committed: number;
  /** A file was created since the directory was last fsynced. */
  private dirDirty = false;
  private closed = false;
  private appended = 0;

  private constructor(
    dir: string,
    chunkSizeBytes: number,
    fs: SyncFileSystem,
    state: RecoveredState,
  ) {
    this.dir = dir;
    this.fs = fs;
    this.chunkSizeBytes = chunkSizeBytes;
    this.completed = state.completed;
    this.current = state.current;
    this.base = state.base;
    this.last = state.lastSeqno;
    this.recoveredTornTailBytes = state.recoveredTornTailBytes;
    let committed = state.base;
    for (const chunk of state.completed) if (chunk.committed) committed = chunk.lastSeqno;
    this.committed = committed;
  }

  /**
   * Opens (creating if needed) the ledger in `dir` and resumes after its last entry: finishes
   * a completion interrupted before its rename, truncates a torn tail of the in-progress file
   * and re-opens that file for append. Only file names and the last file are read, so open is
   * cheap for long ledgers; it trusts completed files to be whole (the reader checks them).
   * Throws LedgerStartError, before any repair, when `startSeqno` disagrees with the files.
   */
  static open(dir: string, options: LedgerWriterOptions): LedgerWriter {
    assert(Number.isSafeInteger(options.chunkSizeBytes), "chunkSizeBytes must be an integer");
    assert(options.chunkSizeBytes > 0, "chunkSizeBytes must be positive");
    const { startSeqno } = options;
    if (startSeqno !== undefined) {
      assert(Number.isSafeInteger(startSeqno) && startSeqno >= 1, "startSeqno must be >= 1");
    }
    const fs = faultReportingFs(options.fs ?? NODE_SYNC_FS);
    const created = withStorageErrors({ path: dir, operation: "mkdir" }, () =>
      mkdirSync(dir, { recursive: true }),
    );
    // A new directory must itself survive a crash before any file in it can.
    if (created !== undefined) syncDirectory(fs, dirname(created));
    const state = recoverLedger(fs, dir, startSeqno);
    return new LedgerWriter(dir, options.chunkSizeBytes, fs, state);
  }

  /** Seqno of the ledger's first entry (lastSeqno + 1 while it holds none). */
  /** Entry bytes appended since open (rolled-back ones included): the ledger's write volume. */
  get appendedBytes(): number {
    return this.appended;
  }

  get startSeqno(): number {
    return this.base + 1;
  }

  get lastSeqno(): number {
    return this.last;
  }

  get committedSeqno(): number {
    return this.committed;
  }

  /**
   * Buffers `entry` (a framed entry whose own seqno is info.seqno) and completes chunks as the
   * flags and size dictate. The caller must not modify `entry` until it has been flushed.
   */
  append(entry: Uint8Array, info: { readonly seqno: number; readonly isSignature: boolean }): void {
    assert(!this.closed, "ledger writer is closed");
    if (this.failure !== null) throw this.failure;
    // Checked on every append (hot path): messages are only built on failure.
    if (info.seqno !== this.last + 1)
      assert(false, `append seqno ${info.seqno} after ${this.last}`);
    if (!isFramedEntry(entry, info.seqno)) {
      assert(false, `entry ${info.seqno} is not framed (version 1, size field, own seqno)`);
    }
    const flags = entry[1]!;
    // Invariant of `current`: it always holds at least one entry, so there is one to complete.
    if ((flags & FORCE_LEDGER_CHUNK_BEFORE) !== 0 && this.current !== null) {
      this.guarded(() => this.completeChunk());
    }
    const chunk = this.current ?? this.startChunk(info.seqno);
    assert(chunk.sizeBytes <= CHUNK_POSITION_MAX, "chunk too large for u32 positions");
    chunk.positions.push(chunk.sizeBytes);
    chunk.sizeBytes += entry.byteLength;
    this.buffer.push(entry);
    this.bufferedBytes += entry.byteLength;
    this.appended += entry.byteLength;
    this.last = info.seqno;
    const full = info.isSignature && chunk.sizeBytes >= this.chunkSizeBytes;
    if (full || (flags & FORCE_LEDGER_CHUNK_AFTER) !== 0) {
      this.guarded(() => this.completeChunk());
    } else if (this.bufferedBytes >= FLUSH_THRESHOLD_BYTES) {
      this.guarded(() => this.flushNow());
    }
  }

  /** Writes buffered bytes to the OS (one write call; no fsync). */
  flush(): void {
    this.guarded(() => this.flushNow());
  }

  private flushNow(): void {
    const chunk = this.current;
    if (chunk === null || this.bufferedBytes === 0) return;
    if (chunk.fd === null) {
      // "wx": the name must be free; a leftover file here would be a bug in recovery.
      chunk.fd = this.fs.openSync(this.pathOf(chunk.firstSeqno, null, false), "wx");
      this.dirDirty = true;
    }
    const bytes = this.buffer.length === 1 ? this.buffer[0]! : concatBytes(this.buffer);
    writeAll(this.fs, chunk.fd, bytes, chunk.flushedBytes);
    chunk.flushedBytes += bytes.byteLength;
    assert(chunk.flushedBytes === chunk.sizeBytes, "flushed bytes disagree with chunk size");
    this.buffer = [];
    this.bufferedBytes = 0;
  }

  /** The durability point: flush, then fdatasync the current file (and the directory if new). */
  sync(): void {
    assert(!this.closed, "ledger writer is closed");
    this.guarded(() => {
      this.flushNow();
      const fd = this.current?.fd ?? null;
      if (fd !== null) this.fs.fdatasyncSync(fd);
      if (this.dirDirty) this.syncDir();
    });
  }

  /**
   * Records that every entry <= seqno is committed and renames each completed chunk wholly
   * within it to `.committed`. The in-progress chunk is never renamed, so the committed files
   * always end at a chunk boundary. A seqno at or below committedSeqno is a no-op.
   */
  commit(seqno: number): void {
    assert(!this.closed, "ledger writer is closed");
    assert(seqno <= this.last, `commit ${seqno} beyond last seqno ${this.last}`);
    if (seqno <= this.committed) return;
    this.guarded(() => {
      this.committed = seqno;
      this.renameCommittedChunks();
    });
  }

  /**
   * Rolls back every entry > seqno, durably: deletes later files (newest first), re-opens the
   * completed chunk holding seqno if needed, and truncates the in-progress file. seqno is at
   * least committedSeqno, so at least startSeqno - 1 (which drops every entry).
   */
  truncate(seqno: number): void {
    assert(!this.closed, "ledger writer is closed");
    assert(seqno >= this.committed, `truncate ${seqno} below committed seqno ${this.committed}`);
    if (seqno >= this.last) return;
    this.guarded(() => this.truncateNow(seqno));
  }

  private truncateNow(seqno: number): void {
    this.flushNow();
    const chunk = this.current;
    if (chunk !== null && seqno >= chunk.firstSeqno) {
      this.truncateOpenChunk(chunk, seqno - chunk.firstSeqno + 1);
    } else {
      if (chunk !== null) this.deleteOpenChunk(chunk);
      let tail = this.completed.at(-1);
      while (tail !== undefined && tail.firstSeqno > seqno) {
        assert(!tail.committed, "truncate would delete a committed file");
        this.fs.unlinkSync(this.pathOf(tail.firstSeqno, tail.lastSeqno, false));
        this.syncDir();
        this.completed.pop();
        tail = this.completed.at(-1);
      }
      if (tail !== undefined && tail.lastSeqno > seqno) {
        this.completed.pop();
        this.reopenChunk(tail, seqno);
      }
    }
    this.last = seqno;
  }

  /** Flushes, syncs and closes. The writer cannot be used afterwards. */
  close(): void {
    if (this.closed) return;
    this.sync();
    const fd = this.current?.fd ?? null;
    if (fd !== null) this.guarded(() => this.fs.closeSync(fd));
    this.closed = true;
  }

  /** The StorageError that stopped this writer, or null while it works. */
  get fault(): StorageError | null {
    return this.failure;
  }

  /**
   * After a fault: closes the open file without syncing (a sync could only fail again, or
   * succeed without proving anything) and marks the writer closed. Whatever reached the disk
   * stays as it is; `open` repairs the tail later.
   */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    const fd = this.current?.fd ?? null;
    this.current = null;
    if (fd === null) return;
    try {
      this.fs.closeSync(fd);
    } catch (e) {
      // The writer already failed: a failing close adds nothing the fault did not say.
      if (!(e instanceof StorageError)) throw e;
    }
  }

  /** Runs one IO step; its StorageError stops the writer for good (see the IO contract). */
  private guarded<T>(step: () => T): T {
    if (this.failure !== null) throw this.failure;
    try {
      return step();
    } catch (e) {
      if (e instanceof StorageError) this.failure = e;
      throw e;
    }
  }

  private renameCommittedChunks(): void {
    for (const chunk of this.completed) {
      if (chunk.committed || chunk.lastSeqno > this.committed) continue;
      // Completed chunks were synced when completed (completeChunk), so the rename exposes only
      // durable bytes. One dir fsync per rename keeps committed files a prefix after a crash.
      this.fs.renameSync(
        this.pathOf(chunk.firstSeqno, chunk.lastSeqno, false),
        this.pathOf(chunk.firstSeqno, chunk.lastSeqno, true),
      );
      chunk.committed = true;
      this.syncDir();
    }
  }

  private startChunk(firstSeqno: number): OpenChunk {
    const header = encodeChunkHeader(0);
    const chunk: OpenChunk = {
      firstSeqno,
      fd: null,
      positions: [],
      sizeBytes: header.byteLength,
      flushedBytes: 0,
    };
    this.buffer.push(header);
    this.bufferedBytes += header.byteLength;
    this.current = chunk;
    return chunk;
  }

  /**
   * Completes the current chunk. Order, chosen so every crash point is recoverable:
   *   1. append the positions table, fdatasync   (crash: table is a torn tail of ledger_<first>)
   *   2. set the header offset, fdatasync         (crash: ledger_<first> is whole; open renames it)
   *   3. rename to ledger_<first>-<last>, fsync the directory.
   * So a header offset on disk always points at a whole table, and a completed name always
   * names a whole file.
   */
  private completeChunk(): void {
    const chunk = this.current;
    assert(chunk !== null, "no chunk to complete");
    assert(chunk.positions.length > 0, "cannot complete an empty chunk");
    this.flushNow();
    const fd = chunk.fd!;
    const tableOffset = chunk.sizeBytes;
    writeAll(this.fs, fd, encodePositionsTable(chunk.positions), tableOffset);
    this.fs.fdatasyncSync(fd);
    writeAll(this.fs, fd, encodeChunkHeader(tableOffset), 0);
    this.fs.fdatasyncSync(fd);
    this.fs.closeSync(fd);
    const lastSeqno = chunk.firstSeqno + chunk.positions.length - 1;
    this.fs.renameSync(
      this.pathOf(chunk.firstSeqno, null, false),
      this.pathOf(chunk.firstSeqno, lastSeqno, false),
    );
    this.syncDir();
    this.completed.push({ firstSeqno: chunk.firstSeqno, lastSeqno, committed: false });
    this.current = null;
    // FORCE_LEDGER_CHUNK_BEFORE can complete a chunk that is already wholly committed.
    if (lastSeqno <= this.committed) this.renameCommittedChunks();
  }

  /** Keeps the first `keep` entries of the in-progress chunk (keep >= 1). */
  private truncateOpenChunk(chunk: OpenChunk, keep: number): void {
    const end = chunk.positions[keep];
    assert(end !== undefined, "truncate point outside the open chunk");
    assert(chunk.fd !== null, "open chunk has no file after flush");
    this.fs.ftruncateSync(chunk.fd, end);
    this.fs.fdatasyncSync(chunk.fd);
    chunk.positions.length = keep;
    chunk.sizeBytes = end;
    chunk.flushedBytes = end;
  }

  private deleteOpenChunk(chunk: OpenChunk): void {
    this.buffer = [];
    this.bufferedBytes = 0;
    if (chunk.fd !== null) {
      this.fs.closeSync(chunk.fd);
      this.fs.unlinkSync(this.pathOf(chunk.firstSeqno, null, false));
      this.syncDir();
    }
    this.current = null;
  }

  /**
   * Turns the completed (uncommitted) chunk holding `seqno` back into the in-progress chunk,
   * keeping entries <= seqno. Order, chosen so every crash point is recoverable:
   *   1. rename to ledger_<first>, fsync the directory  (crash: whole file, open re-completes it)
   *   2. zero the header offset, fdatasync              (crash: the table is a torn tail)
   *   3. cut the table and later entries, fdatasync.
   */
  private reopenChunk(chunk: CompletedChunk, seqno: number): void {
    const completedPath = this.pathOf(chunk.firstSeqno, chunk.lastSeqno, false);
    const openPath = this.pathOf(chunk.firstSeqno, null, false);
    const raw = this.fs.readFileSync(completedPath);
    const scan = scanChunk(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), {
      fileName: formatLedgerFileName({ ...chunk, committed: false }),
      firstSeqno: chunk.firstSeqno,
      lastSeqno: chunk.lastSeqno,
      tornTailAllowed: false,
    });
    const keep = seqno - chunk.firstSeqno + 1;
    const end = scan.entries[keep]!.offset;
    this.fs.renameSync(completedPath, openPath);
    this.syncDir();
    const fd = this.fs.openSync(openPath, "r+");
    writeAll(this.fs, fd, encodeChunkHeader(0), 0);
    this.fs.fdatasyncSync(fd);
    this.fs.ftruncateSync(fd, end);
    this.fs.fdatasyncSync(fd);
    const positions = scan.entries.slice(0, keep).map((e) => e.offset);
    const firstSeqno = chunk.firstSeqno;
    this.current = { firstSeqno, fd, positions, sizeBytes: end, flushedBytes: end };
  }

  private pathOf(firstSeqno: number, lastSeqno: number | null, committed: boolean): string {
    return join(this.dir, formatLedgerFileName({ firstSeqno, lastSeqno, committed }));
  }

  private syncDir(): void {
    syncDirectory(this.fs, this.dir);
    this.dirDirty = false;
  }
}

interface RecoveredState {
  /** The seqno before the ledger's first entry. */
  readonly base: number;
  readonly completed: CompletedChunk[];
  readonly current: OpenChunk | null;
  readonly lastSeqno: number;
  readonly recoveredTornTailBytes: number;
}

/**
 * Reads the ledger's file names and its last file, and repairs what a crash can leave behind:
 * a completed-but-not-renamed last chunk is renamed; a torn tail is truncated; an in-progress
 * file left with no entries is deleted. Throws LedgerError for anything else. The start comes
 * from the first file (even one deleted here), or from `startSeqno` (default 1) when there is
 * none; a `startSeqno` that disagrees with the files is a LedgerStartError, before any repair.
 */
function recoverLedger(
  fs: SyncFileSystem,
  dir: string,
  startSeqno: number | undefined,
): RecoveredState {
  const files = listLedgerFiles(dir);
  checkLedgerFileSequence(files);
  const ledgerStartSeqno = files[0]?.firstSeqno ?? startSeqno ?? 1;
  if (startSeqno !== undefined && startSeqno !== ledgerStartSeqno) {
    throw new LedgerStartError(
      { code: "StartSeqnoMismatch", dir, startSeqno, ledgerStartSeqno },
      `ledger in ${dir} starts at seqno ${ledgerStartSeqno} (${files[0]!.name}), ` +
        `not at the expected startSeqno ${startSeqno}`,
    );
  }
  const base = ledgerStartSeqno - 1;
  const completed: CompletedChunk[] = [];
  for (const f of files) {
    if (f.lastSeqno === null) continue;
    completed.push({ firstSeqno: f.firstSeqno, lastSeqno: f.lastSeqno, committed: f.committed });
  }
  const previousLast = completed.at(-1)?.lastSeqno ?? base;
  const lastFile = files.at(-1);
  if (lastFile === undefined || lastFile.lastSeqno !== null) {
    return { base, completed, current: null, lastSeqno: previousLast, recoveredTornTailBytes: 0 };
  }
  const raw = fs.readFileSync(lastFile.path);
  const scan = scanChunk(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), {
    fileName: lastFile.name,
    firstSeqno: lastFile.firstSeqno,
    lastSeqno: null,
    tornTailAllowed: true,
  });
  const count = scan.entries.length;
  const lastSeqno = lastFile.firstSeqno + count - 1;
  if (scan.positionsOffset !== null) {
    // Crashed after completing the chunk but before renaming it (completeChunk step 3). Sync
    // first: a process crash may have left the header write in the page cache only.
    const fd = fs.openSync(lastFile.path, "r+");
    fs.fdatasyncSync(fd);
    fs.closeSync(fd);
    const name: LedgerFileName = { firstSeqno: lastFile.firstSeqno, lastSeqno, committed: false };
    fs.renameSync(lastFile.path, join(dir, formatLedgerFileName(name)));
    syncDirectory(fs, dir);
    completed.push({ firstSeqno: lastFile.firstSeqno, lastSeqno, committed: false });
    return { base, completed, current: null, lastSeqno, recoveredTornTailBytes: 0 };
  }
  const tornBytes = scan.tornTail?.bytesRemaining ?? 0;
  if (count === 0) {
    fs.unlinkSync(lastFile.path);
    syncDirectory(fs, dir);
    const lastSeqno = previousLast;
    return { base, completed, current: null, lastSeqno, recoveredTornTailBytes: tornBytes };
  }
  const fd = fs.openSync(lastFile.path, "r+");
  const sizeBytes = scan.tornTail?.offset ?? raw.byteLength;
  if (scan.tornTail !== null) {
    fs.ftruncateSync(fd, sizeBytes);
    fs.fdatasyncSync(fd);
  }
  const positions = scan.entries.map((e) => e.offset);
  const firstSeqno = lastFile.firstSeqno;
  const current = { firstSeqno, fd, positions, sizeBytes, flushedBytes: sizeBytes };
  return { base, completed, current, lastSeqno, recoveredTornTailBytes: tornBytes };
}

/** The entry's header is well formed, its size field matches its length, it carries `seqno`. */
function isFramedEntry(entry: Uint8Array, seqno: number): boolean {
  const header = readEntryHeader(entry, 0);
  if (header.kind !== "header") return false;
  if (header.sizeBytes + ENTRY_HEADER_SIZE_BYTES !== entry.byteLength) return false;
  return entrySeqno(entry) === seqno;
}

function writeAll(fs: SyncFileSystem, fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    done += fs.writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
  }
}

/** fsync of a directory makes creations, renames and deletions in it durable (POSIX, Linux). */
function syncDirectory(fs: SyncFileSystem, dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
