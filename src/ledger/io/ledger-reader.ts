/**
 * Reads a ledger directory: lists the chunk files (chunk-format.ts names) and yields their
 * entries in seqno order, checking the framing of every file it reads (chunk-format.ts
 * `scanChunk`) and the continuity of seqnos across files. Follows CCF's layout
 * (shared/reference/ccf-api.md 6.3).
 *
 * Start: a ledger starts at seqno 1, or at N + 1 when it was written after a snapshot at N (its
 * first file is `ledger_<N+1>...`). Either is read as is, from its first file: where a ledger
 * starts is not checked here (a deleted first file looks like a later start; callers that know
 * the start pass it as `fromSeqno`). Seqnos missing between two files are an error.
 *
 * Errors: any corruption throws LedgerError naming the file and byte offset. The one expected
 * irregularity, an interrupted write at the end of the last file while it is still in progress
 * (no positions table, not committed), is yielded as a `torn-tail` item instead: the writer
 * truncates it when it next opens the ledger. The same bytes anywhere else are an error.
 *
 * IO: one readFileSync per file (a chunk is ~5 MB). Entries are views into that file's bytes,
 * valid as long as the caller keeps them; nothing is copied.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  checkLedgerFileSequence,
  LedgerErrorCode,
  ledgerError,
  parseLedgerFileName,
  scanChunk,
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
    const parsed = parseLedgerFileName(name);
    if (parsed.kind === "other") continue;
    if (parsed.kind === "invalid") {
      throw ledgerError(LedgerErrorCode.BadFileName, { file: name, offset: 0 }, parsed.reason);
    }
    const path = join(dir, name);
    const { firstSeqno, lastSeqno, committed } = parsed;
    files.push({ name, path, firstSeqno, lastSeqno, committed, sizeBytes: statSync(path).size });
  }
  files.sort((a, b) => a.firstSeqno - b.firstSeqno);
  return files;
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
  /** Called before each file is read; `index` counts from 0 over the files to be read. */
  readonly onFile?: (file: LedgerFileInfo, index: number, total: number) => void;
  /** Called after each file is read, with byte counts over the files to be read. */
  readonly onProgress?: (bytesRead: number, bytesTotal: number) => void;
}

/**
 * Yields every entry from `fromSeqno` on, in seqno order, then a torn-tail item if the ledger
 * ends in one. Each file is fully checked before any of its entries are yielded, so a consumer
 * never sees an entry of a file whose framing is broken.
 */
export function* readLedger(dir: string, options: ReadLedgerOptions = {}): Generator<LedgerItem> {
  const all = listLedgerFiles(dir);
  checkLedgerFileSequence(all);
  const files = selectFiles(all, options.fromSeqno);
  const fromSeqno = options.fromSeqno ?? 0;
  let bytesTotal = 0;
  for (const file of files) bytesTotal += file.sizeBytes;
  let bytesRead = 0;
  for (let index = 0; index < files.length; index++) {
    const file = files[index]!;
    options.onFile?.(file, index, files.length);
    const raw = readFileSync(file.path);
    // A plain Uint8Array view, so consumers never see Buffer semantics.
    const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    const scan = scanChunk(bytes, {
      fileName: file.name,
      firstSeqno: file.firstSeqno,
      lastSeqno: file.lastSeqno,
      tornTailAllowed: index === files.length - 1 && file.lastSeqno === null,
    });
    for (const e of scan.entries) {
      if (e.seqno < fromSeqno) continue;
      const entry = bytes.subarray(e.offset, e.offset + e.lengthBytes);
      const { seqno, offset, flags } = e;
      yield { kind: "entry", seqno, entry, file: file.name, offset, flags };
    }
    if (scan.tornTail !== null) yield { kind: "torn-tail", file: file.name, ...scan.tornTail };
    bytesRead += raw.byteLength;
    options.onProgress?.(bytesRead, bytesTotal);
  }
}

/** The files holding seqnos >= fromSeqno; the ledger must not start after fromSeqno. */
function selectFiles(files: LedgerFileInfo[], fromSeqno: number | undefined): LedgerFileInfo[] {
  if (fromSeqno === undefined) return files;
  const first = files[0];
  if (first !== undefined && first.firstSeqno > fromSeqno) {
    throw ledgerError(
      LedgerErrorCode.MissingFile,
      { file: first.name, offset: 0 },
      `ledger starts at seqno ${first.firstSeqno}, after the requested seqno ${fromSeqno}`,
    );
  }
  return files.filter((f) => f.lastSeqno === null || f.lastSeqno >= fromSeqno);
}
