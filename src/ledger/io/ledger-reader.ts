/**
 * Reads a ledger directory: lists the chunk files (chunk-format.ts names) and yields their
 * entries in seqno order, checking the framing of every file it reads (chunk-format.ts
 * `scanChunk`) and the continuity of seqnos across files. Follows CCF's layout
 * (ccf-compatibility.md §6.3).
 *
 * Start: a ledger starts at seqno 1, or at N + 1 when it was written after a snapshot at N (its
 * first file is `ledger_<N+1>...`). Either is read as is, from its first file: where a ledger
 * starts is not checked here (a deleted first file looks like a later start; callers that know
 * the start pass it as `fromSeqno`). Seqnos missing between two files are an error.
 *
 * Read-only directories (CCF's `ledger.read_only_directories`): older committed chunks may be
 * kept elsewhere. Their `.committed` files are merged in by seqno range, the main directory
 * winning any overlap. Being copies made outside the ledger writer, they may be zero-filled or
 * partially copied: such a file is treated as missing (reported, skipped), never trusted, so
 * either another copy supplies its seqnos or the gap is the usual MissingFile error. Its framing
 * is checked when it is read for its entries, so it too is read only once.
 *
 * Errors: any corruption throws LedgerError naming the file and byte offset. The one expected
 * irregularity, an interrupted write at the end of the last file while it is still in progress
 * (no positions table, not committed), is yielded as a `torn-tail` item instead: the writer
 * truncates it when it next opens the ledger. The same bytes anywhere else are an error.
 *
 * IO: one readFileSync per file (a chunk is ~5 MB). Entries are views into that file's bytes,
 * valid as long as the caller keeps them; nothing is copied.
 */
import {
  closeSync,
  fstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import {
  checkLedgerFileSequence,
  LedgerError,
  LedgerErrorCode,
  ledgerError,
  parseLedgerFileName,
  scanChunk,
  type ChunkScan,
} from "../chunk-format.js";

// Re-exported so users of the reader (e.g. `consortia ledger verify`) catch its errors from here.
export { LedgerError, LedgerErrorCode, type LedgerErrorType } from "../chunk-format.js";

export interface LedgerFileInfo {
  readonly name: string;
  readonly path: string;
  readonly firstSeqno: number;
  /** Invariant: null exactly when the file is in progress (`ledger_<first>`). */
  readonly lastSeqno: number | null;
  readonly committed: boolean;
  readonly sizeBytes: number;
}

/**
 * The ledger files of `dir`, sorted by first seqno. Unrelated files and `*.recovery` /
 * `*.ignored` files are skipped. Throws LedgerError(BadFileName) for a `ledger_*` name that
 * does not parse. Does not check continuity (see checkLedgerFileSequence).
 */
export function listLedgerFiles(dir: string): LedgerFileInfo[] {
  const files: LedgerFileInfo[] = [];
  for (const name of readdirSync(dir)) {
    const file = ledgerFileNamed(dir, name);
    if (file !== null) files.push({ ...file, sizeBytes: statSync(file.path).size });
  }
  return sortLedgerFiles(files);
}

/**
 * The ledger file `name` of `dir` as listLedgerFiles describes it, but its size; null for a
 * file that is not part of a ledger. Throws LedgerError(BadFileName).
 */
export function ledgerFileNamed(
  dir: string,
  name: string,
): Omit<LedgerFileInfo, "sizeBytes"> | null {
  const parsed = parseLedgerFileName(name);
  if (parsed.kind === "other") return null;
  if (parsed.kind === "invalid") {
    throw ledgerError(LedgerErrorCode.BadFileName, { file: name, offset: 0 }, parsed.reason);
  }
  const { firstSeqno, lastSeqno, committed } = parsed;
  return { name, path: join(dir, name), firstSeqno, lastSeqno, committed };
}

/** `files` sorted by first seqno, as listLedgerFiles answers them. */
export function sortLedgerFiles(files: LedgerFileInfo[]): LedgerFileInfo[] {
  return files.sort((a, b) => a.firstSeqno - b.firstSeqno);
}

export type LedgerItem =
  | {
      readonly kind: "entry";
      readonly seqno: number;
      /** The whole framed entry, header included. */
      readonly entry: Uint8Array;
      readonly file: string;
      readonly offset: number;
      readonly flags: number;
    }
  | {
      readonly kind: "torn-tail";
      readonly file: string;
      readonly offset: number;
      readonly bytesRemaining: number;
    };

export interface ReadLedgerOptions {
  /** First seqno to yield; files wholly before it are not read. Default: the ledger's start. */
  readonly fromSeqno?: number;
  /**
   * Directories holding older committed chunks (CCF's `ledger.read_only_directories`), searched
   * in this order. Only `.committed` files are taken from them, and a main-directory file always
   * wins over any read-only file overlapping its seqnos. A read-only file whose framing does not
   * check (zero-filled, partially copied, wrong seqnos) is treated as missing: the next copy of
   * the same range is tried, and when none is left, the gap is the usual MissingFile error.
   * Copies are grouped by exact range (committed chunks are identical on every node), so two
   * read-only files whose ranges overlap without being equal are an OverlappingFiles error.
   */
  readonly readOnlyDirectories?: readonly string[];
  /** Called for each read-only ledger file not read (`path`, and why), damaged ones included. */
  readonly onIgnoredFile?: (path: string, reason: string) => void;
  /** Called before each file is read; `index` counts from 0 over the files to be read. */
  readonly onFile?: (file: LedgerFileInfo, index: number, total: number) => void;
  /** Called after each file is read, with byte counts over the files to be read. */
  readonly onProgress?: (bytesRead: number, bytesTotal: number) => void;
}

/**
 * Yields every entry from `fromSeqno` on, in seqno order, then a torn-tail item if the ledger
 * ends in one. Each file is fully checked before any of its entries are yielded, so a consumer
 * never sees an entry of a file whose framing is broken. File names are checked as one ledger
 * before any file is read; a gap left by a damaged read-only file is found when the next file
 * is read, before its entries are yielded.
 */
export function* readLedger(dir: string, options: ReadLedgerOptions = {}): Generator<LedgerItem> {
  const slots = selectSlots(planSlots(dir, options), options.fromSeqno);
  const fromSeqno = options.fromSeqno ?? 0;
  let bytesTotal = 0;
  for (const slot of slots) bytesTotal += slot.copies[0]!.sizeBytes;
  let bytesRead = 0;
  // Invariant: the file whose entries were yielded last, or null before the first.
  let previous: LedgerFileInfo | null = null;
  // Whether a range was dropped since `previous`: the next file read must then pass the
  // continuity check that the names passed before the range turned out to be damaged.
  let dropped = false;
  for (let index = 0; index < slots.length; index++) {
    const slot = slots[index]!;
    const read = readSlot(slot, { index, total: slots.length }, options);
    if (read === null) {
      dropped = true;
      bytesRead += slot.copies[0]!.sizeBytes;
      options.onProgress?.(bytesRead, bytesTotal);
      continue;
    }
    if (dropped) checkAfterDropped(previous, read.file, options.fromSeqno);
    const { file, bytes, scan } = read;
    for (const e of scan.entries) {
      if (e.seqno < fromSeqno) continue;
      const entry = bytes.subarray(e.offset, e.offset + e.lengthBytes);
      const { seqno, offset, flags } = e;
      yield { kind: "entry", seqno, entry, file: file.name, offset, flags };
    }
    if (scan.tornTail !== null) yield { kind: "torn-tail", file: file.name, ...scan.tornTail };
    previous = file;
    dropped = false;
    bytesRead += slot.readOnly ? slot.copies[0]!.sizeBytes : bytes.byteLength;
    options.onProgress?.(bytesRead, bytesTotal);
  }
}

/**
 * One seqno range of the merged ledger: a main-directory file, or the copies of a committed
 * range found in the read-only directories.
 * Invariant: a main slot holds exactly one copy; a read-only slot holds at least one copy, all
 * committed with the same range, in directory order.
 */
export interface Slot {
  readonly copies: readonly LedgerFileInfo[];
  readonly readOnly: boolean;
}

/**
 * The main directory's files merged with the read-only directories' committed files, sorted by
 * first seqno, names checked as one ledger (checkLedgerFileSequence over each slot's first copy).
 * Read-only files are only listed here; their contents are checked when read (readSlot).
 */
function planSlots(dir: string, options: ReadLedgerOptions): Slot[] {
  const readOnly = (options.readOnlyDirectories ?? []).map((d) => listLedgerFiles(d));
  return planSlotsOf(listLedgerFiles(dir), readOnly, options.onIgnoredFile);
}

/**
 * planSlots over listings made by the caller (listLedgerFiles, or listLedgerFilesAsync):
 * `readOnly` holds one listing per read-only directory, in search order. Throws LedgerError.
 */
export function planSlotsOf(
  main: readonly LedgerFileInfo[],
  readOnly: readonly (readonly LedgerFileInfo[])[],
  onIgnoredFile?: (path: string, reason: string) => void,
): Slot[] {
  const slots: Slot[] = main.map((file) => ({ copies: [file], readOnly: false }));
  const ranges = new Map<string, LedgerFileInfo[]>();
  for (const listing of readOnly) {
    for (const file of listing) {
      const reason = readOnlyExclusion(file, main);
      if (reason !== null) {
        onIgnoredFile?.(file.path, reason);
        continue;
      }
      const key = `${file.firstSeqno}-${file.lastSeqno}`;
      const copies = ranges.get(key);
      if (copies === undefined) ranges.set(key, [file]);
      else copies.push(file);
    }
  }
  for (const copies of ranges.values()) slots.push({ copies, readOnly: true });
  slots.sort((a, b) => a.copies[0]!.firstSeqno - b.copies[0]!.firstSeqno);
  checkLedgerFileSequence(slots.map((slot) => slot.copies[0]!));
  return slots;
}

/** Why a read-only file is not a candidate at all, or null when it is one. */
function readOnlyExclusion(file: LedgerFileInfo, main: readonly LedgerFileInfo[]): string | null {
  if (!file.committed) return "not committed: only committed files are read from read-only dirs";
  // Committed implies a last seqno (LedgerFileName invariant).
  const last = file.lastSeqno!;
  const shadow = main.find(
    (m) => m.firstSeqno <= last && (m.lastSeqno ?? Infinity) >= file.firstSeqno,
  );
  if (shadow === undefined) return null;
  return `seqnos ${file.firstSeqno}..${last} overlap ${shadow.name} in the main directory`;
}

/** The slots holding seqnos >= fromSeqno; the ledger must not start after fromSeqno. */
function selectSlots(slots: Slot[], fromSeqno: number | undefined): Slot[] {
  if (fromSeqno === undefined) return slots;
  const first = slots[0]?.copies[0];
  if (first !== undefined) checkStart(first, fromSeqno);
  return slots.filter((slot) => {
    const lastSeqno = slot.copies[0]!.lastSeqno;
    return lastSeqno === null || lastSeqno >= fromSeqno;
  });
}

function checkStart(first: LedgerFileInfo, fromSeqno: number): void {
  if (first.firstSeqno <= fromSeqno) return;
  throw ledgerError(
    LedgerErrorCode.MissingFile,
    { file: first.name, offset: 0 },
    `ledger starts at seqno ${first.firstSeqno}, after the requested seqno ${fromSeqno}`,
  );
}

/**
 * The main-directory files holding seqnos >= fromSeqno (all when undefined), names checked as
 * one ledger: what readLedger reads without read-only directories, for callers that read the
 * files themselves (readLedgerFile), possibly on other threads. Throws LedgerError.
 */
export function planLedgerFiles(dir: string, fromSeqno: number | undefined): LedgerFileInfo[] {
  return selectSlots(planSlots(dir, {}), fromSeqno).map((slot) => slot.copies[0]!);
}

/**
 * A buffer files are read into, reused from one file to the next: reading each file into fresh
 * memory costs a page fault per 4 KiB, more than the copy itself.
 */
export class ReadBuffer {
  private buffer = new Uint8Array(0);

  /** The whole file, in this buffer: valid until the next read. */
  read(path: string): Uint8Array {
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      if (size > this.buffer.byteLength)
        this.buffer = new Uint8Array(Math.max(size, 2 * this.buffer.byteLength));
      let done = 0;
      while (done < size) {
        const n = readSync(fd, this.buffer, done, size - done, done);
        if (n === 0) break; // the file shrank while being read: what was read is the file
        done += n;
      }
      return this.buffer.subarray(0, done);
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * One file read and its framing checked (scanChunk); `last` when it is the ledger's last file
 * (only that one may end in a torn tail). With `into`, the bytes are in that buffer and valid
 * until its next read. Throws LedgerError, or a file system error.
 */
export function readLedgerFile(
  file: LedgerFileInfo,
  last: boolean,
  into?: ReadBuffer,
): { readonly bytes: Uint8Array; readonly scan: ChunkScan } {
  let bytes: Uint8Array;
  if (into !== undefined) bytes = into.read(file.path);
  else {
    const raw = readFileSync(file.path);
    // A plain Uint8Array view, so consumers never see Buffer semantics.
    bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  return { bytes, scan: scanLedgerFile(file, last, bytes) };
}

/** The framing of `bytes`, the contents of `file` (see readLedgerFile). Throws LedgerError. */
export function scanLedgerFile(file: LedgerFileInfo, last: boolean, bytes: Uint8Array): ChunkScan {
  return scanChunk(bytes, {
    fileName: file.name,
    firstSeqno: file.firstSeqno,
    lastSeqno: file.lastSeqno,
    tornTailAllowed: last && file.lastSeqno === null,
  });
}

interface SlotRead {
  readonly file: LedgerFileInfo;
  readonly bytes: Uint8Array;
  readonly scan: ChunkScan;
}

/**
 * Reads and scans the slot's first copy that is well framed (one read per copy tried). A main
 * file's framing error is thrown; a read-only copy's is reported and the next copy tried. Null
 * when every copy of a read-only range is damaged.
 */
function readSlot(
  slot: Slot,
  position: { readonly index: number; readonly total: number },
  options: ReadLedgerOptions,
): SlotRead | null {
  const last = position.index === position.total - 1;
  for (const file of slot.copies) {
    options.onFile?.(file, position.index, position.total);
    if (!slot.readOnly) return { file, ...readLedgerFile(file, last) };
    try {
      return { file, ...readLedgerFile(file, last) };
    } catch (err: unknown) {
      if (!(err instanceof LedgerError)) throw err;
      options.onIgnoredFile?.(file.path, err.message);
    }
  }
  return null;
}

/**
 * After ranges were dropped, before `next` is yielded: the gap between the previous file and
 * `next` (the usual MissingFile error), or a late start when nothing was read yet and
 * `fromSeqno` was asked for. Ranges dropped at the very end are not checked: the ledger just
 * ends earlier, as with a deleted last file.
 */
function checkAfterDropped(
  previous: LedgerFileInfo | null,
  next: LedgerFileInfo,
  fromSeqno: number | undefined,
): void {
  if (previous !== null) checkLedgerFileSequence([previous, next]);
  else if (fromSeqno !== undefined) checkStart(next, fromSeqno);
}
