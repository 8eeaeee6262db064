/**
 * The console's ledger explorer API, served from ledger files on the console's machine: no node
 * endpoint serves ledger entries, so `consortia console` reads the workspace's ledger (node 0's
 * ledger directory in a sandbox workspace) or `--ledger-dir`, with the readers of src/ledger/io
 * and the entry rendering of `consortia ledger show --json` (ccf-compatibility.md §6.3, §6.4).
 * Read-only; the files may be written by a running node while they are read.
 *
 *   GET /api/ledger                 {dir, files: [{name, firstSeqno, lastSeqno, committed,
 *                                    sizeBytes}], lastSeqno}
 *   GET /api/ledger/entries?from=N&count=K[&signatures=true][&table=NAME]
 *                                   {entries: [ledger show --json records], next}: every
 *                                   entry, only signature transactions, or only entries that
 *                                   write public map NAME
 *
 * Invariants: at most ENTRIES_MAX entries per answer and at most SCAN_ENTRIES_MAX entries read
 * per request (a search for signatures stops there and says where to go on from in `next`).
 * A file renamed by the node between listing and reading (in progress -> complete -> committed)
 * is read again from a fresh listing, at most RENAME_RETRIES times.
 */
import { isNodeError } from "../../base/errors.js";
import { CliError } from "../cli-error.js";
import { describeEntry, jsonEntryRecord } from "../commands/ledger-show.js";
import {
  LedgerError,
  listLedgerFiles,
  readLedger,
  type LedgerFileInfo,
} from "../../ledger/io/ledger-reader.js";
import { ConsoleError, ConsoleErrorCode } from "./console-error.js";

export const ENTRIES_MAX = 100;
export const ENTRIES_DEFAULT = 20;
export const SCAN_ENTRIES_MAX = 5_000;
const RENAME_RETRIES = 3;

export interface LedgerPage {
  readonly entries: readonly Record<string, unknown>[];
  /** The seqno to ask for next, or null past the end of what is written. */
  readonly next: number | null;
}

export interface LedgerQuery {
  readonly from: number;
  readonly count: number;
  readonly signaturesOnly: boolean;
  /** Only entries writing this public map, or null. */
  readonly table: string | null;
}

/** The query of /api/ledger/entries; InvalidInput for bad numbers. */
export function parseLedgerQuery(params: URLSearchParams): LedgerQuery {
  const int = (name: string, fallback: number, max: number): number => {
    const text = params.get(name);
    if (text === null) return fallback;
    const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > max) {
      throw new ConsoleError(
        ConsoleErrorCode.InvalidInput,
        `${name} must be an integer in 1..${max}, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  };
  const signatures = params.get("signatures");
  if (signatures !== null && signatures !== "true" && signatures !== "false") {
    throw new ConsoleError(ConsoleErrorCode.InvalidInput, "signatures must be true or false");
  }
  return {
    from: int("from", 1, Number.MAX_SAFE_INTEGER),
    count: int("count", ENTRIES_DEFAULT, ENTRIES_MAX),
    signaturesOnly: signatures === "true",
    table: tableOf(params.get("table")),
  };
}

function tableOf(name: string | null): string | null {
  if (name !== null && !/^public:[A-Za-z0-9_.:-]{1,200}$/.test(name)) {
    throw new ConsoleError(ConsoleErrorCode.InvalidInput, "table must name a public map");
  }
  return name;
}

export class LedgerApi {
  constructor(readonly dir: string | null) {}

  /** The files and the last seqno written. */
  summary(): Record<string, unknown> {
    const dir = this.requireDir();
    return this.retrying(() => {
      const files = listLedgerFiles(dir);
      return {
        dir,
        files: files.map((f: LedgerFileInfo) => ({
          name: f.name,
          firstSeqno: f.firstSeqno,
          lastSeqno: f.lastSeqno,
          committed: f.committed,
          sizeBytes: f.sizeBytes,
        })),
        lastSeqno: lastSeqnoOf(dir, files),
      };
    });
  }

  entries(query: LedgerQuery): LedgerPage {
    const dir = this.requireDir();
    return this.retrying(() => readPage(dir, query));
  }

  private requireDir(): string {
    if (this.dir === null) {
      throw new ConsoleError(
        ConsoleErrorCode.LedgerUnavailable,
        "this console reads no ledger: start it with --workspace or --ledger-dir",
      );
    }
    return this.dir;
  }

  /** Runs `read`, again on ENOENT (a file renamed meanwhile); reader errors as ConsoleErrors. */
  private retrying<T>(read: () => T): T {
    for (let attempt = 1; ; attempt++) {
      try {
        return read();
      } catch (err: unknown) {
        const renamed = isNodeError(err) && err.code === "ENOENT";
        if (renamed && attempt < RENAME_RETRIES) continue;
        throw asLedgerError(err);
      }
    }
  }
}

function readPage(dir: string, query: LedgerQuery): LedgerPage {
  const entries: Record<string, unknown>[] = [];
  let scanned = 0;
  const first = listLedgerFiles(dir)[0];
  const from = first === undefined ? query.from : Math.max(query.from, first.firstSeqno);
  for (const item of readLedger(dir, { fromSeqno: from })) {
    if (item.kind !== "entry") continue;
    scanned++;
    const record = jsonEntryRecord(describeEntry(item, null));
    if (selected(record, query)) entries.push(record);
    if (entries.length >= query.count || scanned >= SCAN_ENTRIES_MAX) {
      return { entries, next: item.seqno + 1 };
    }
  }
  return { entries, next: null };
}

function selected(record: Record<string, unknown>, query: LedgerQuery): boolean {
  if (query.signaturesOnly && record["signature"] === undefined) return false;
  return query.table === null || Object.hasOwn(record["public"] as object, query.table);
}

/** The last whole entry's seqno: from the last file's name, or by reading it when in progress. */
function lastSeqnoOf(dir: string, files: readonly LedgerFileInfo[]): number {
  const last = files.at(-1);
  if (last === undefined) return 0;
  if (last.lastSeqno !== null) return last.lastSeqno;
  let seqno = last.firstSeqno - 1;
  for (const item of readLedger(dir, { fromSeqno: last.firstSeqno })) {
    if (item.kind === "entry") seqno = item.seqno;
  }
  return seqno;
}

function asLedgerError(err: unknown): unknown {
  if (err instanceof ConsoleError) return err;
  if (err instanceof LedgerError || err instanceof CliError || isNodeError(err)) {
    return new ConsoleError(ConsoleErrorCode.LedgerInvalid, `ledger: ${err.message}`);
  }
  return err;
}
