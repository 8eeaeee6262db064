/**
 * `consortia ledger show --dir DIR [--seqno N | --from A [--to B]] [--json] [--tables REGEX]`:
 * prints ledger entries for humans and auditors, like CCF's python/read_ledger.py. Read-only.
 *
 * What it shows (ccf-compatibility.md §6.3): per entry its seqno, view, flags, size and place (file
 * and byte offset), the writes and removals of every public map, the size of the private domain
 * (AES-GCM ciphertext: never decrypted, so only its size is shown) and, for signature transactions,
 * the signing node, the signed root and the commit point it records (§6.4).
 *
 * Keys and values print as JSON-quoted text when they are valid UTF-8 with nothing invisible
 * or misleading in them (control, format/bidi, private-use, unassigned or line-separator code
 * points; tab, LF and CR are allowed since JSON escapes them), and as hex otherwise, so an
 * auditor never reads text that displays as something other than its bytes.
 *
 * Invariants: output is stdout only (with --json, every stdout line is one JSON object; the
 * torn-tail warning then goes to stderr). Entries print in seqno order. Only the files needed
 * for the selection are read, and reading stops after the last selected seqno, so later
 * corruption is `ledger verify`'s business, not this command's. Each file's framing is checked
 * before any of its entries print (readLedger), so a corrupt file prints nothing of itself.
 * Failures are one CliError line with exit 1: bad options, a missing directory, a seqno outside
 * the ledger, an entry or file that does not decode (naming file and offset).
 */
import { existsSync, statSync } from "node:fs";
import type { Command } from "commander";
import { toHex, fromUtf8 } from "../../base/bytes.js";
import { CcfError, isTextDecodeError } from "../../base/errors.js";
import { formatTxId, type TxId } from "../../base/ids.js";
import type { MapWrites } from "../../kv/write-set.js";
import { decodeEntry, type LedgerEntry } from "../../ledger/entry-format.js";
import { LedgerError } from "../../ledger/chunk-format.js";
import {
  listLedgerFiles,
  readLedger,
  type LedgerFileInfo,
  type LedgerItem,
} from "../../ledger/io/ledger-reader.js";
import { findSignature, signatureTxId, type SignatureValue } from "../../ledger/signature.js";
import { CliError } from "../cli-error.js";

/** Rendered keys and values longer than this many characters are cut in human output. */
export const HUMAN_VALUE_CHARS_MAX = 200;

export interface ShowOptions {
  readonly dir?: string;
  readonly seqno?: string;
  readonly from?: string;
  readonly to?: string;
  readonly json?: boolean;
  readonly tables?: string;
}

/** Inclusive seqno range to print. Invariant: 1 <= from and (to === null or from <= to). */
export interface Selection {
  readonly from: number;
  /** null: to the end of the ledger. */
  readonly to: number | null;
}

const HELP_AFTER = `
Output (one block per entry):
  seqno 12  view 2  flags 0x00  size 312 B  file ledger_1-20.committed@1234
    public:records
      set  "42"  =  "\\"hello\\""
      del  "7"
    private domain: 148 bytes (encrypted)
    signature by node <id> over root <hex> (commit <view>.<seqno>)   (signatures only)

Keys and values print as JSON strings when they are printable UTF-8, as 0x<hex> otherwise;
longer than ${HUMAN_VALUE_CHARS_MAX} characters, they are cut with "... (N bytes)". Private maps
are encrypted, so only their size is shown. --tables filters public maps, not entries.

With --json, one JSON object per line (JSON Lines), nothing cut:
  {"seqno":12,"view":2,"flags":0,"size":312,"file":"ledger_1-20.committed","offset":1234,
   "public":{"public:records":{"set":[{"key":"42","value":"\\"hello\\""}],"del":["7"]}},
   "privateBytes":148,"signature":{"node":"..","root":"..","txId":"2.12","commit":"2.11",..}}
  (keys and values are strings when printable UTF-8, else {"hex": "..."}).

A torn last entry of an in-progress file ends the output with a warning line (on stderr with
--json). Exit status 0, or 1 with one line naming the problem (a corrupt entry or file is
named with its byte offset; use 'consortia ledger verify' to check a whole ledger).

Examples:
  consortia ledger show --dir ./ledger --seqno 12
  consortia ledger show --dir ./ledger --from 100 --to 120 --tables '^public:ccf\\.gov\\.'
  consortia ledger show --dir ./ledger --json | jq -c 'select(.signature) | .signature'
`;

export function registerLedgerShow(ledgerCommand: Command): void {
  ledgerCommand
    .command("show")
    .description(
      "Print ledger entries (read-only): header, public map writes, private domain size and " +
        "signatures. Default: every entry.",
    )
    .option("--dir <dir>", "ledger directory (ledger_<first>-<last>[.committed] files); required")
    .option("--seqno <n>", "print only the entry with this seqno")
    .option("--from <a>", "print entries from seqno a (inclusive)")
    .option("--to <b>", "print entries up to seqno b (inclusive)")
    .option("--json", "print one JSON object per entry per line (JSON Lines)")
    .option("--tables <regex>", "print only public maps whose name matches this regex")
    .addHelpText("after", HELP_AFTER)
    .action((options: ShowOptions) => {
      showLedger(options);
    });
}

// ---------------------------------------------------------------------------------------------
// Options

/** A seqno option: a decimal integer >= 1 that is exact in a double. */
function parseSeqnoOption(flag: string, text: string): number {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new CliError(`${flag} must be a seqno (an integer >= 1), got "${text}"`);
  }
  return n;
}

/** The seqnos to print; throws CliError for bad numbers or combinations. */
export function parseSelection(options: ShowOptions): Selection {
  if (options.seqno !== undefined) {
    if (options.from !== undefined || options.to !== undefined) {
      throw new CliError("--seqno cannot be combined with --from or --to");
    }
    const n = parseSeqnoOption("--seqno", options.seqno);
    return { from: n, to: n };
  }
  const from = options.from === undefined ? 1 : parseSeqnoOption("--from", options.from);
  const to = options.to === undefined ? null : parseSeqnoOption("--to", options.to);
  if (to !== null && to < from) throw new CliError(`--to ${to} is before --from ${from}`);
  return { from, to };
}

/** The --tables filter (unanchored, like grep), or null for every map. */
export function parseTablesFilter(source: string | undefined): RegExp | null {
  if (source === undefined) return null;
  try {
    return new RegExp(source);
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`--tables is not a valid regular expression: ${err.message}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering bytes

/** Bytes as auditors see them: text when that is unambiguous, hex otherwise. */
export type RenderedBytes = string | { readonly hex: string };

/**
 * Code points that would hide or disguise bytes if printed: controls (except tab, LF, CR,
 * which JSON escapes), format characters (bidi overrides, zero-width), private-use,
 * unassigned, surrogates, and the line/paragraph separators.
 */
const INVISIBLE_RE = /[^\P{C}\t\n\r]|[\p{Zl}\p{Zp}]/u;

/** The bytes as text when they are valid UTF-8 and printable, else null. */
export function printableText(bytes: Uint8Array): string | null {
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return null;
  }
  return INVISIBLE_RE.test(text) ? null : text;
}

export function renderBytes(bytes: Uint8Array): RenderedBytes {
  const text = printableText(bytes);
  return text === null ? { hex: toHex(bytes) } : text;
}

/** Human form: a JSON string or 0x<hex>, cut after `charsMax` characters. */
export function humanBytes(bytes: Uint8Array, charsMax = HUMAN_VALUE_CHARS_MAX): string {
  const text = printableText(bytes);
  const full = text === null ? `0x${toHex(bytes)}` : JSON.stringify(text);
  if (full.length <= charsMax) return full;
  let cut = charsMax;
  // Never split a surrogate pair: half of one would print as U+FFFD.
  const last = full.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return `${full.slice(0, cut)}... (${bytes.byteLength} bytes)`;
}

// ---------------------------------------------------------------------------------------------
// Describing entries

export type SignatureSummary =
  | { readonly kind: "none" }
  | { readonly kind: "signature"; readonly value: SignatureValue }
  /** The signatures table is written but its value is not a valid signature. */
  | { readonly kind: "malformed"; readonly reason: string };

/** What `show` prints about one entry. Byte fields are views into the ledger file bytes. */
export interface EntryView {
  readonly seqno: number;
  readonly view: number;
  readonly flags: number;
  /** The whole framed entry, header included. */
  readonly sizeBytes: number;
  readonly file: string;
  readonly offset: number;
  /** Public maps that pass the --tables filter, in ledger (name) order. */
  readonly publicMaps: readonly MapWrites[];
  readonly privateBytes: number;
  readonly signature: SignatureSummary;
}

type EntryItem = Extract<LedgerItem, { kind: "entry" }>;

/** Decodes one ledger item; throws CliError naming file and offset when it does not decode. */
export function describeEntry(item: EntryItem, tables: RegExp | null): EntryView {
  let entry: LedgerEntry;
  try {
    entry = decodeEntry(item.entry);
  } catch (err: unknown) {
    if (!(err instanceof CcfError)) throw err;
    throw new CliError(
      `ledger invalid: ${item.file} at offset ${item.offset} (seqno ${item.seqno}): ` + err.message,
    );
  }
  return {
    seqno: entry.seqno,
    view: entry.view,
    flags: entry.flags,
    sizeBytes: item.entry.byteLength,
    file: item.file,
    offset: item.offset,
    publicMaps: entry.publicMaps.filter((m) => tables === null || tables.test(m.name)),
    privateBytes: entry.privateCiphertext.byteLength,
    signature: summariseSignature(entry.publicMaps),
  };
}

/**
 * A malformed signature value is shown, not fatal: `show` displays what is there, and the
 * raw value still prints under its map; `ledger verify` is the command that judges it.
 */
function summariseSignature(publicMaps: readonly MapWrites[]): SignatureSummary {
  try {
    const value = findSignature(publicMaps);
    return value === null ? { kind: "none" } : { kind: "signature", value };
  } catch (err: unknown) {
    if (!(err instanceof CcfError)) throw err;
    return { kind: "malformed", reason: err.message };
  }
}

function commitTxId(value: SignatureValue): TxId {
  return signatureTxId({ ...value, view: value.commit_view, seqno: value.commit_seqno });
}

/** The human block of one entry: a header line and indented detail lines, no final newline. */
export function formatHumanEntry(v: EntryView): string {
  const flags = `0x${v.flags.toString(16).padStart(2, "0")}`;
  const lines = [
    `seqno ${v.seqno}  view ${v.view}  flags ${flags}  size ${v.sizeBytes} B  ` +
      `file ${v.file}@${v.offset}`,
  ];
  for (const map of v.publicMaps) {
    lines.push(`  ${map.name}`);
    for (const w of map.writes) {
      const key = humanBytes(w.key);
      lines.push(
        w.value === null ? `    del  ${key}` : `    set  ${key}  =  ${humanBytes(w.value)}`,
      );
    }
  }
  lines.push(`  private domain: ${v.privateBytes} bytes (encrypted)`);
  const sig = v.signature;
  if (sig.kind === "signature") {
    const { node, root } = sig.value;
    const commit = formatTxId(commitTxId(sig.value));
    lines.push(`  signature by node ${node} over root ${root} (commit ${commit})`);
  } else if (sig.kind === "malformed") {
    lines.push(`  signature: malformed (${sig.reason})`);
  }
  return lines.join("\n");
}

interface JsonMap {
  set: { key: RenderedBytes; value: RenderedBytes }[];
  del: RenderedBytes[];
}

/** One JSON Lines record (no newline). Nothing is cut. */
export function formatJsonEntry(v: EntryView): string {
  return JSON.stringify(jsonEntryRecord(v));
}

/** The record formatJsonEntry prints, as an object (the console serves it too). */
export function jsonEntryRecord(v: EntryView): Record<string, unknown> {
  const publicMaps: Record<string, JsonMap> = {};
  for (const map of v.publicMaps) {
    const out: JsonMap = { set: [], del: [] };
    for (const w of map.writes) {
      if (w.value === null) out.del.push(renderBytes(w.key));
      else out.set.push({ key: renderBytes(w.key), value: renderBytes(w.value) });
    }
    publicMaps[map.name] = out;
  }
  const record: Record<string, unknown> = {
    seqno: v.seqno,
    view: v.view,
    flags: v.flags,
    size: v.sizeBytes,
    file: v.file,
    offset: v.offset,
    public: publicMaps,
    privateBytes: v.privateBytes,
  };
  if (v.signature.kind === "signature") record["signature"] = jsonSignature(v.signature.value);
  if (v.signature.kind === "malformed") {
    record["signature"] = { malformed: v.signature.reason };
  }
  return record;
}

function jsonSignature(value: SignatureValue): Record<string, unknown> {
  return {
    node: value.node,
    root: value.root,
    txId: formatTxId(signatureTxId(value)),
    commit: formatTxId(commitTxId(value)),
    sig: value.sig,
    hashedNonce: value.hashed_nonce,
  };
}

// ---------------------------------------------------------------------------------------------
// The command

function checkDir(dir: string | undefined): string {
  if (dir === undefined) throw new CliError("ledger show needs --dir <dir>");
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CliError(`ledger directory not found: ${dir}`);
  }
  return dir;
}

/** Fails when the ledger has no files or the selection starts before its first seqno. */
function checkFiles(dir: string, selection: Selection): void {
  const files: LedgerFileInfo[] = guard(() => listLedgerFiles(dir));
  const first = files[0];
  if (first === undefined) throw new CliError(`no ledger files in ${dir}`);
  if (selection.from < first.firstSeqno) {
    throw new CliError(
      `seqno ${selection.from} is before the start of the ledger (first seqno ` +
        `${first.firstSeqno}, in ${first.name})`,
    );
  }
}

function showLedger(options: ShowOptions): void {
  const selection = parseSelection(options);
  const tables = parseTablesFilter(options.tables);
  const dir = checkDir(options.dir);
  checkFiles(dir, selection);
  const json = options.json === true;
  const write = stdoutWriter();
  let lastSeqno: number | null = null;
  let tornTail: string | null = null;
  const items = guard(() => readLedger(dir, { fromSeqno: selection.from }));
  for (;;) {
    const next = guard(() => items.next());
    if (next.done === true) break;
    const item = next.value;
    if (item.kind === "torn-tail") {
      tornTail =
        `${item.file} at offset ${item.offset}: ${item.bytesRemaining} bytes of a torn ` +
        "last entry (an interrupted write to the in-progress file; not shown)";
      continue;
    }
    lastSeqno = item.seqno;
    const view = describeEntry(item, tables);
    if (!write(json ? formatJsonEntry(view) : formatHumanEntry(view))) return;
    if (selection.to !== null && item.seqno >= selection.to) break;
  }
  checkReachedEnd(selection, options.from !== undefined, lastSeqno ?? lastLedgerSeqno(dir));
  if (tornTail === null) return;
  if (json) process.stderr.write(`warning: ${tornTail}\n`);
  else write(`warning: ${tornTail}`);
}

/** A requested seqno past the ledger's last entry is an error, after what exists has printed. */
function checkReachedEnd(selection: Selection, fromGiven: boolean, lastSeqno: number): void {
  const wanted = selection.to ?? (fromGiven ? selection.from : null);
  if (wanted === null || lastSeqno >= wanted) return;
  const flag = selection.to === null ? "--from" : "--to";
  const what = selection.from === selection.to ? `seqno ${wanted}` : `${flag} ${wanted}`;
  throw new CliError(`${what} is past the end of the ledger (last seqno ${lastSeqno})`);
}

/**
 * The seqno of the ledger's last whole entry, for the error above when the selection started
 * past it: the last file's name says so when it is complete, else only its entries do.
 */
function lastLedgerSeqno(dir: string): number {
  const last = guard(() => listLedgerFiles(dir)).at(-1);
  if (last === undefined) return 0;
  if (last.lastSeqno !== null) return last.lastSeqno;
  let seqno = last.firstSeqno - 1;
  for (const item of guard(() => [...readLedger(dir, { fromSeqno: last.firstSeqno })])) {
    if (item.kind === "entry") seqno = item.seqno;
  }
  return seqno;
}

/**
 * Writes one block plus newline; returns false once stdout is closed by the reader (e.g.
 * `| head`), so the scan stops instead of failing with EPIPE.
 */
function stdoutWriter(): (block: string) => boolean {
  let closed = false;
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    closed = true;
    if (err.code === "EPIPE") return;
    process.stderr.write(`consortia: cannot write the output: ${err.message}\n`);
    process.exitCode = 1;
  });
  return (block) => {
    if (closed || process.stdout.destroyed) return false;
    process.stdout.write(`${block}\n`);
    return true;
  };
}

/** Runs a reader step; LedgerError and file system errors become one-line CliErrors. */
function guard<T>(step: () => T): T {
  try {
    return step();
  } catch (err: unknown) {
    if (err instanceof LedgerError) throw new CliError(`ledger invalid: ${err.message}`);
    if (err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === "string") {
      throw new CliError(`cannot read the ledger: ${err.message}`);
    }
    throw err;
  }
}
