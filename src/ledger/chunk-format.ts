/**
 * The on-disk layout of ledger chunk files, as CCF writes them (ccf-compatibility.md §6.3;
 * CCF src/host/ledger.h and python/src/ccf/ledger.py):
 *
 *   u64 LE positions_offset          // 0 while the chunk is in progress
 *   entry | entry | ...              // back to back, each framed by entry-header.ts
 *   u32 LE position[n]               // only once completed: the file offset of each entry;
 *                                    // runs from positions_offset to EOF
 *
 * File names: `ledger_<first>` while in progress, `ledger_<first>-<last>` once completed (closed
 * at a signature or a FORCE flag), `ledger_<first>-<last>.committed` once every entry in it is
 * committed (immutable from then on). `*.recovery` and `*.ignored` files are not part of the
 * ledger. Seqnos are contiguous across files.
 *
 * This module owns the name grammar, the positions table codec and `scanChunk`, the one place
 * that decides whether the bytes of a chunk file are well framed (used by the reader, the
 * writer's recovery and `consortia ledger verify`). Tamper detection here is at the framing
 * level only: headers, sizes, seqnos, entry counts and the positions table. Entry contents are
 * checked by entry-format.ts.
 *
 * Pure: no IO. Corruption is reported as LedgerError naming the file and byte offset.
 */
import { assertNever } from "../base/assert.js";
import { CcfError } from "../base/errors.js";
import {
  ENTRY_FORMAT_VERSION,
  ENTRY_HEADER_SIZE_BYTES,
  ENTRY_SEQNO_OFFSET,
  entrySeqno,
  entrySeqnoAt,
  readEntryHeader,
  type EntryHeaderRead,
} from "./entry-header.js";

export const CHUNK_HEADER_SIZE_BYTES = 8;
export const POSITION_SIZE_BYTES = 4;
/** Positions are u32: a chunk file (without its table) must stay below 4 GiB. */
export const CHUNK_POSITION_MAX = 0xffff_ffff;

const TWO_POW_32 = 0x1_0000_0000;

export enum LedgerErrorCode {
  /** Seqnos are missing between two files (a file was deleted), or before `fromSeqno`. */
  MissingFile = "MissingFile",
  /** Two files claim the same seqno. */
  OverlappingFiles = "OverlappingFiles",
  /** A `ledger_*` name that does not follow the grammar. */
  BadFileName = "BadFileName",
  /** A file named in progress (`ledger_<first>`) that is not the last file of the ledger. */
  UnexpectedInProgressFile = "UnexpectedInProgressFile",
  /** A `.committed` file after a file that is not committed. */
  CommittedAfterUncommitted = "CommittedAfterUncommitted",
  /** The 8-byte chunk header is missing, out of range or disagrees with the file name. */
  BadChunkHeader = "BadChunkHeader",
  /** An entry header has a bad version, unknown flags or an impossible size. */
  BadHeader = "BadHeader",
  /** An entry runs past the end of its region (EOF or the positions table). */
  TruncatedEntry = "TruncatedEntry",
  /** A completed file is shorter than its positions offset and table require. */
  TruncatedFile = "TruncatedFile",
  /** The positions table does not list exactly the entry offsets. */
  BadPositionsTable = "BadPositionsTable",
  /** An entry's own seqno is not the one its place in the ledger implies. */
  SeqnoMismatch = "SeqnoMismatch",
  /** A completed file holds a different number of entries than its name's range. */
  EntryCountMismatch = "EntryCountMismatch",
  /** Bytes after the positions table. */
  TrailingBytes = "TrailingBytes",
}

/** `file` is the file name (not path); `offset` the byte offset in it where the problem is. */
export type LedgerErrorType = { code: LedgerErrorCode; file: string; offset: number };

export class LedgerError extends CcfError<LedgerErrorType> {
  get file(): string {
    return this.type.file;
  }

  get offset(): number {
    return this.type.offset;
  }
}

/** Builds a LedgerError whose message reads "<file> at offset <offset>: <what>". */
export function ledgerError(
  code: LedgerErrorCode,
  where: { readonly file: string; readonly offset: number },
  what: string,
): LedgerError {
  return new LedgerError(
    { code, file: where.file, offset: where.offset },
    `${where.file} at offset ${where.offset}: ${what}`,
  );
}

// ---------------------------------------------------------------------------------------------
// File names

export interface LedgerFileName {
  readonly firstSeqno: number;
  /** Invariant: null exactly when the chunk is in progress; otherwise >= firstSeqno. */
  readonly lastSeqno: number | null;
  /** Invariant: committed implies lastSeqno !== null. */
  readonly committed: boolean;
}

export type LedgerFileNameParse =
  | ({ kind: "ledger" } & LedgerFileName)
  | { kind: "other" } // not a ledger file, or a .recovery / .ignored file
  | { kind: "invalid"; reason: string };

const LEDGER_PREFIX = "ledger_";
const IGNORED_SUFFIXES = [".recovery", ".ignored"];
// Canonical decimal: no sign, no leading zeros, at most 15 digits (safe integers).
const NAME_RE = /^ledger_([1-9][0-9]{0,14})(?:-([1-9][0-9]{0,14}))?(\.committed)?$/;

export function parseLedgerFileName(name: string): LedgerFileNameParse {
  if (!name.startsWith(LEDGER_PREFIX)) return { kind: "other" };
  if (IGNORED_SUFFIXES.some((suffix) => name.endsWith(suffix))) return { kind: "other" };
  const match = NAME_RE.exec(name);
  if (match === null) {
    return { kind: "invalid", reason: "expected ledger_<first>[-<last>[.committed]]" };
  }
  const firstSeqno = Number(match[1]);
  const lastSeqno = match[2] === undefined ? null : Number(match[2]);
  const committed = match[3] !== undefined;
  if (lastSeqno !== null && lastSeqno < firstSeqno) {
    return { kind: "invalid", reason: `last seqno ${lastSeqno} is below first ${firstSeqno}` };
  }
  if (committed && lastSeqno === null) {
    return { kind: "invalid", reason: "a committed file must name its last seqno" };
  }
  return { kind: "ledger", firstSeqno, lastSeqno, committed };
}

export function formatLedgerFileName(name: LedgerFileName): string {
  if (name.lastSeqno === null) {
    if (name.committed) throw new RangeError("a committed ledger file needs a last seqno");
    return `${LEDGER_PREFIX}${name.firstSeqno}`;
  }
  const base = `${LEDGER_PREFIX}${name.firstSeqno}-${name.lastSeqno}`;
  return name.committed ? `${base}.committed` : base;
}

/**
 * Checks that the files, sorted by first seqno, form one ledger: contiguous seqnos, no overlap,
 * only the last file in progress, and committed files forming a prefix. Names only; contents
 * are checked by scanChunk.
 */
export function checkLedgerFileSequence(
  files: readonly (LedgerFileName & { readonly name: string })[],
): void {
  for (let i = 1; i < files.length; i++) {
    const prev = files[i - 1]!;
    const file = files[i]!;
    const at = { file: file.name, offset: 0 };
    if (prev.lastSeqno === null) {
      throw ledgerError(
        LedgerErrorCode.UnexpectedInProgressFile,
        { file: prev.name, offset: 0 },
        `in-progress file is followed by ${file.name}`,
      );
    }
    if (file.firstSeqno <= prev.lastSeqno) {
      throw ledgerError(LedgerErrorCode.OverlappingFiles, at, `overlaps ${prev.name}`);
    }
    if (file.firstSeqno > prev.lastSeqno + 1) {
      const gap = `${prev.lastSeqno + 1}..${file.firstSeqno - 1}`;
      const what = `seqnos ${gap} missing (after ${prev.name})`;
      throw ledgerError(LedgerErrorCode.MissingFile, at, what);
    }
    if (file.committed && !prev.committed) {
      throw ledgerError(
        LedgerErrorCode.CommittedAfterUncommitted,
        at,
        `committed file follows uncommitted ${prev.name}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Chunk header and positions table

/** The 8-byte chunk header for a given positions offset (0 while in progress). */
export function encodeChunkHeader(positionsOffset: number): Uint8Array {
  const out = new Uint8Array(CHUNK_HEADER_SIZE_BYTES);
  writeU32(out, 0, positionsOffset % TWO_POW_32);
  writeU32(out, 4, Math.floor(positionsOffset / TWO_POW_32));
  return out;
}

/** The positions offset of a chunk header, or null when it is not a safe integer. */
export function decodeChunkHeader(bytes: Uint8Array): number | null {
  if (bytes.byteLength < CHUNK_HEADER_SIZE_BYTES) return null;
  const high = readU32(bytes, 4);
  if (high >= 0x20_0000) return null;
  return high * TWO_POW_32 + readU32(bytes, 0);
}

export function encodePositionsTable(positions: readonly number[]): Uint8Array {
  const out = new Uint8Array(positions.length * POSITION_SIZE_BYTES);
  for (let i = 0; i < positions.length; i++) {
    const position = positions[i]!;
    if (!Number.isInteger(position) || position < 0 || position > CHUNK_POSITION_MAX) {
      throw new RangeError(`positions table: ${position} does not fit in u32`);
    }
    writeU32(out, i * POSITION_SIZE_BYTES, position);
  }
  return out;
}

/** Decodes a positions table; null when its length is not a multiple of 4. */
export function decodePositionsTable(bytes: Uint8Array): number[] | null {
  if (bytes.byteLength % POSITION_SIZE_BYTES !== 0) return null;
  const out: number[] = new Array<number>(bytes.byteLength / POSITION_SIZE_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = readU32(bytes, i * POSITION_SIZE_BYTES);
  return out;
}

function readU32(bytes: Uint8Array, at: number): number {
  const low16 = bytes[at]! | (bytes[at + 1]! << 8);
  return (low16 | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

// ---------------------------------------------------------------------------------------------
// Scanning a chunk file

export interface ChunkScanOptions {
  /** For error messages. */
  readonly fileName: string;
  readonly firstSeqno: number;
  /** From the file name; null while in progress. */
  readonly lastSeqno: number | null;
  /**
   * Whether the file may end in a torn tail: true only for the last file of the ledger when
   * it is named in progress. Every other file must be exactly well framed.
   */
  readonly tornTailAllowed: boolean;
}

export interface ScannedEntry {
  /** File offset of the entry header. */
  readonly offset: number;
  /** Whole entry, header included. */
  readonly lengthBytes: number;
  readonly flags: number;
  readonly seqno: number;
}

export interface ChunkScan {
  /** Invariant: entries[i].seqno === firstSeqno + i; offsets ascending and back to back. */
  readonly entries: ScannedEntry[];
  /** Offset of the verified positions table, or null when the chunk is in progress. */
  readonly positionsOffset: number | null;
  /**
   * Bytes after the last whole entry of an in-progress last file that look like an interrupted
   * write: a prefix of an entry, or a prefix of the positions table being appended.
   */
  readonly tornTail: { readonly offset: number; readonly bytesRemaining: number } | null;
}

/**
 * Validates the framing of one chunk file and returns its entries. Throws LedgerError on any
 * corruption. Cost: one pass over the entry headers, no copies.
 *
 * A torn tail is told apart from tampering by what follows it: a size field altered so that an
 * entry runs past the end is corruption when the next entry follows it (an error), but the
 * last entry's altered size looks exactly like a torn write, so it is reported as a torn tail
 * (with bytesRemaining) and not as an error.
 */
export function scanChunk(bytes: Uint8Array, options: ChunkScanOptions): ChunkScan {
  const fileBytes = bytes.byteLength;
  const at = (offset: number) => ({ file: options.fileName, offset });
  if (fileBytes < CHUNK_HEADER_SIZE_BYTES) {
    if (options.tornTailAllowed) {
      const tornTail = { offset: 0, bytesRemaining: fileBytes };
      return { entries: [], positionsOffset: null, tornTail };
    }
    throw ledgerError(LedgerErrorCode.BadChunkHeader, at(0), `file has only ${fileBytes} bytes`);
  }
  const positionsOffset = checkChunkHeader(bytes, options);
  const complete = positionsOffset !== 0;
  const entriesEnd = complete ? positionsOffset : fileBytes;
  const walk = walkEntries(bytes.subarray(0, entriesEnd), options);
  if (walk.stop !== null) {
    const torn = options.tornTailAllowed && !complete && isTornTail(bytes, walk, options);
    if (torn) {
      const tornTail = { offset: walk.stop.offset, bytesRemaining: fileBytes - walk.stop.offset };
      return { entries: walk.entries, positionsOffset: null, tornTail };
    }
    throw stopError(walk.stop, options.fileName, complete);
  }
  if (!complete) return { entries: walk.entries, positionsOffset: null, tornTail: null };
  checkEntryCount(walk.entries, positionsOffset, options);
  checkPositionsTable(bytes, positionsOffset, walk.entries, options.fileName);
  return { entries: walk.entries, positionsOffset, tornTail: null };
}

/** The positions offset, checked against the file size and name; 0 while in progress. */
function checkChunkHeader(bytes: Uint8Array, options: ChunkScanOptions): number {
  const at = { file: options.fileName, offset: 0 };
  const positionsOffset = decodeChunkHeader(bytes);
  if (positionsOffset === null) {
    throw ledgerError(LedgerErrorCode.BadChunkHeader, at, "positions offset out of range");
  }
  if (positionsOffset === 0) {
    if (options.lastSeqno !== null) {
      const what = "completed file has no positions table";
      throw ledgerError(LedgerErrorCode.BadChunkHeader, at, what);
    }
    return 0;
  }
  if (positionsOffset < CHUNK_HEADER_SIZE_BYTES + ENTRY_HEADER_SIZE_BYTES) {
    const what = `positions offset ${positionsOffset} is too small`;
    throw ledgerError(LedgerErrorCode.BadChunkHeader, at, what);
  }
  if (positionsOffset > bytes.byteLength) {
    throw ledgerError(
      LedgerErrorCode.TruncatedFile,
      { file: options.fileName, offset: bytes.byteLength },
      `positions offset ${positionsOffset} is past the end of the file (${bytes.byteLength} bytes)`,
    );
  }
  return positionsOffset;
}

type WalkStop =
  | { kind: "partial"; offset: number; what: string } // a plausible entry cut short
  | { kind: "bad-header"; offset: number; what: string };

interface Walk {
  readonly entries: ScannedEntry[];
  /** Null when the entries end exactly at the end of the region. */
  readonly stop: WalkStop | null;
}

/** Reads entries back to back from offset 8 to the end of `region`, checking each seqno. */
function walkEntries(region: Uint8Array, options: ChunkScanOptions): Walk {
  const entries: ScannedEntry[] = [];
  let offset = CHUNK_HEADER_SIZE_BYTES;
  while (offset < region.byteLength) {
    const header = readEntryHeader(region, offset);
    if (header.kind !== "header") {
      return { entries, stop: headerStop(header, offset) };
    }
    const lengthBytes = ENTRY_HEADER_SIZE_BYTES + header.sizeBytes;
    if (offset + lengthBytes > region.byteLength) {
      const overBytes = offset + lengthBytes - region.byteLength;
      const what = `entry of ${lengthBytes} bytes runs ${overBytes} bytes past the end`;
      return { entries, stop: { kind: "partial", offset, what } };
    }
    const expected = options.firstSeqno + entries.length;
    const seqno = entrySeqnoAt(region, offset, lengthBytes);
    if (seqno !== expected) {
      throw ledgerError(
        LedgerErrorCode.SeqnoMismatch,
        { file: options.fileName, offset },
        `entry has seqno ${seqno ?? "(invalid)"}, expected ${expected}`,
      );
    }
    entries.push({ offset, lengthBytes, flags: header.flags, seqno });
    offset += lengthBytes;
  }
  return { entries, stop: null };
}

type HeaderFailure = Exclude<EntryHeaderRead, { kind: "header" }>;

function headerStop(header: HeaderFailure, offset: number): WalkStop {
  switch (header.kind) {
    case "truncated": {
      const what = `entry header cut short (${header.bytesAvailable} of 8 bytes)`;
      return { kind: "partial", offset, what };
    }
    case "bad-version": {
      const what = `entry header version ${header.version}, expected 1`;
      return { kind: "bad-header", offset, what };
    }
    case "bad-flags": {
      const what = `entry header has unknown flags 0x${header.flags.toString(16)}`;
      return { kind: "bad-header", offset, what };
    }
    case "bad-size": {
      const what = `entry size ${header.sizeBytes} is too small for an entry`;
      return { kind: "bad-header", offset, what };
    }
    default:
      return assertNever(header, "entry header outcome");
  }
}

/**
 * Whether what follows the last whole entry is an interrupted write: a plausible prefix of an
 * entry, zero bytes (blocks allocated but never written), or a prefix (possibly all) of the
 * positions table the writer appends when completing a
 * chunk before it sets the header (see ledger-writer.ts for that ordering).
 */
/**
 * Whether an entry with seqno `seqno` starts somewhere in `bytes` from `from` on: an entry
 * header (format version, flags, size) whose seqno field reads `seqno`. Checked byte by byte,
 * only when a file looks torn (at startup after a crash).
 */
function entryFollows(bytes: Uint8Array, from: number, seqno: number): boolean {
  for (let p = from; p + ENTRY_SEQNO_OFFSET + 8 <= bytes.byteLength; p++) {
    if (bytes[p] !== ENTRY_FORMAT_VERSION || readEntryHeader(bytes, p).kind !== "header") {
      continue;
    }
    if (entrySeqno(bytes.subarray(p, p + ENTRY_SEQNO_OFFSET + 8)) === seqno) return true;
  }
  return false;
}

function isTornTail(bytes: Uint8Array, walk: Walk, options: ChunkScanOptions): boolean {
  const stop = walk.stop!;
  if (stop.kind === "partial") {
    // An interrupted write leaves nothing after the torn entry. If the next entry follows, the
    // torn-looking entry's size field was altered: that is corruption, not a crash.
    const next = options.firstSeqno + walk.entries.length + 1;
    return !entryFollows(bytes, stop.offset + ENTRY_HEADER_SIZE_BYTES, next);
  }
  const rest = bytes.subarray(stop.offset);
  // A crash can leave a file extended past its last sync with zero-filled blocks.
  if (rest.every((b) => b === 0)) return true;
  const table = encodePositionsTable(walk.entries.map((e) => e.offset));
  if (rest.byteLength > table.byteLength) return false;
  for (let i = 0; i < rest.byteLength; i++) if (rest[i] !== table[i]) return false;
  return true;
}

function stopError(stop: WalkStop, file: string, complete: boolean): LedgerError {
  const where = { file, offset: stop.offset };
  if (stop.kind === "bad-header") return ledgerError(LedgerErrorCode.BadHeader, where, stop.what);
  const region = complete ? "entries region (before the positions table)" : "file";
  return ledgerError(LedgerErrorCode.TruncatedEntry, where, `${stop.what} (the ${region})`);
}

function checkEntryCount(entries: ScannedEntry[], end: number, options: ChunkScanOptions): void {
  const where = { file: options.fileName, offset: end };
  if (entries.length === 0) {
    throw ledgerError(LedgerErrorCode.EntryCountMismatch, where, "completed file has no entries");
  }
  if (options.lastSeqno === null) return;
  const expected = options.lastSeqno - options.firstSeqno + 1;
  if (entries.length !== expected) {
    throw ledgerError(
      LedgerErrorCode.EntryCountMismatch,
      where,
      `file holds ${entries.length} entries, its name says ${expected}`,
    );
  }
}

/** The table at `tableOffset` must list exactly the entry offsets and run to EOF. */
function checkPositionsTable(
  bytes: Uint8Array,
  tableOffset: number,
  entries: readonly ScannedEntry[],
  file: string,
): void {
  const tableBytes = bytes.byteLength - tableOffset;
  const expectedBytes = entries.length * POSITION_SIZE_BYTES;
  if (tableBytes < expectedBytes) {
    throw ledgerError(
      LedgerErrorCode.TruncatedFile,
      { file, offset: bytes.byteLength },
      `positions table has ${tableBytes} bytes, ${entries.length} entries need ${expectedBytes}`,
    );
  }
  for (let i = 0; i < entries.length; i++) {
    const at = tableOffset + i * POSITION_SIZE_BYTES;
    const position = readU32(bytes, at);
    if (position !== entries[i]!.offset) {
      throw ledgerError(
        LedgerErrorCode.BadPositionsTable,
        { file, offset: at },
        `position ${i} is ${position}, but entry ${i} starts at ${entries[i]!.offset}`,
      );
    }
  }
  if (tableBytes > expectedBytes) {
    throw ledgerError(
      LedgerErrorCode.TrailingBytes,
      { file, offset: tableOffset + expectedBytes },
      `${tableBytes - expectedBytes} bytes after the positions table`,
    );
  }
}
