// `consortia ledger show` (src/cli/commands/ledger-show.ts). Auditors read the ledger through
// it, so it must show exactly the public bytes, never private plaintext, select the entries
// asked for, and fail with one clear line. One real ledger is built through TxPipeline
// (test/helpers/ledger-fixture.ts: 3 committed chunks with signatures at seqnos 5, 10, 13 and
// an in-progress file holding 2 unsigned entries). The rendering and option parsing are
// checked in process (text vs hex, truncation, selection rules, malformed signatures, entries
// that do not decode); the command itself is run from source 10 times (~1.3 s each) for human
// and JSON output, selection, the --tables filter, a torn tail, corruption and bad options.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno, View } from "../../../src/base/ids.js";
import { CliError } from "../../../src/cli/cli-error.js";
import {
  describeEntry,
  formatHumanEntry,
  formatJsonEntry,
  humanBytes,
  parseSelection,
  parseTablesFilter,
  renderBytes,
} from "../../../src/cli/commands/ledger-show.js";
import { buildProgram } from "../../../src/cli/main.js";
import { decodeEntry, encodeEntry } from "../../../src/ledger/entry-format.js";
import { readLedger, type LedgerItem } from "../../../src/ledger/io/ledger-reader.js";
import { findSignature, type SignatureValue } from "../../../src/ledger/signature.js";
import { runCli, type CliRun } from "../../helpers/cli.js";
import {
  buildLedgerFixture,
  publicValue,
  PUBLIC_MAP,
  type LedgerFixture,
} from "../../helpers/ledger-fixture.js";
import { tempDir } from "../../helpers/pki.js";

const work = tempDir("consortia-ledger-show-");
const fixturePromise: Promise<LedgerFixture> = buildLedgerFixture({
  txCount: 10,
  sigTxInterval: 4,
  unsignedTailCount: 2,
  chunkSizeBytes: 2048,
});
let copies = 0;

test.after(async () => {
  (await fixturePromise).cleanup();
  work.cleanup();
});

const FILES = [
  "ledger_1-5.committed",
  "ledger_6-10.committed",
  "ledger_11-13.committed",
  "ledger_14",
];
const SIGNATURES = [5, 10, 13];
const LAST_SEQNO = 15;
const SIGNATURES_MAP = "public:ccf.internal.signatures";

type EntryItem = Extract<LedgerItem, { kind: "entry" }>;

async function entries(): Promise<EntryItem[]> {
  const f = await fixturePromise;
  return [...readLedger(f.dir)].filter((i): i is EntryItem => i.kind === "entry");
}

async function entryAt(seqno: number): Promise<EntryItem> {
  const item = (await entries()).find((e) => e.seqno === seqno);
  assert.ok(item, `seqno ${seqno} in the fixture`);
  return item;
}

async function signatureAt(seqno: number): Promise<SignatureValue> {
  const value = findSignature(decodeEntry((await entryAt(seqno)).entry).publicMaps);
  assert.ok(value);
  return value;
}

async function copyLedger(): Promise<string> {
  const dir = join(work.dir, `copy-${++copies}`);
  cpSync((await fixturePromise).dir, dir, { recursive: true });
  return dir;
}

function show(dir: string, ...extra: string[]): CliRun {
  return runCli(["ledger", "show", "--dir", dir, ...extra]);
}

/** Exit 1 with exactly one `consortia: ...` line on stderr matching `pattern`. */
function assertOneLineError(run: CliRun, pattern: RegExp): void {
  assert.equal(run.status, 1, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
  assert.match(run.stderr, /^consortia: [^\n]+\n$/);
  assert.match(run.stderr, pattern);
}

/** The tx number i of an ordinary seqno (signatures excluded). */
async function txNumber(seqno: number): Promise<number> {
  const i = (await fixturePromise).txNumberBySeqno.get(seqno);
  assert.ok(i !== undefined, `seqno ${seqno} is an ordinary transaction`);
  return i;
}

function keyHex(i: number): string {
  return i.toString(16).padStart(16, "0");
}

const PRIVATE_MARKER = /private value of tx/;

// ---------------------------------------------------------------------------------------------
// In process

test("the fixture ledger has the shape these tests rely on", async () => {
  const f = await fixturePromise;
  const names = new Set((await entries()).map((e) => e.file));
  assert.deepEqual([...names], FILES);
  assert.deepEqual(f.signatureSeqnos, SIGNATURES);
  assert.equal(f.lastSeqno, LAST_SEQNO);
});

test("keys and values are JSON strings when printable UTF-8 and hex otherwise", () => {
  assert.equal(renderBytes(utf8("alice")), "alice");
  assert.equal(renderBytes(utf8("")), "");
  assert.equal(renderBytes(utf8("line 1\n\tline 2")), "line 1\n\tline 2");
  assert.deepEqual(renderBytes(new Uint8Array([0xff, 0x61])), { hex: "ff61" });
  assert.deepEqual(renderBytes(new Uint8Array([0, 0, 0, 1])), { hex: "00000001" });
  // Text that would display as something other than its bytes is shown as hex.
  for (const hidden of ["a\u001bb", "abc\u202edcba", "zero\u200bwidth", "x\u2028y", "\u007f"]) {
    assert.deepEqual(renderBytes(utf8(hidden)), { hex: toHex(utf8(hidden)) }, hidden);
  }
  assert.equal(humanBytes(utf8('say "hi"\n')), '"say \\"hi\\"\\n"');
  assert.equal(humanBytes(new Uint8Array([0xff, 0xfe, 0x00])), "0xfffe00");
});

test("human output cuts renderings longer than 200 characters and gives the byte length", () => {
  const long = humanBytes(utf8("a".repeat(300)));
  assert.equal(long, `"${"a".repeat(199)}... (300 bytes)`);
  const exact = humanBytes(utf8("b".repeat(198))); // 200 characters with its quotes
  assert.equal(exact, `"${"b".repeat(198)}"`);
  const hex = humanBytes(new Uint8Array(150).fill(0xab));
  assert.equal(hex, `0x${"ab".repeat(99)}... (150 bytes)`);
  // A cut never splits a surrogate pair (it would print as U+FFFD).
  const emoji = humanBytes(utf8(`${"c".repeat(198)}\u{1f600}tail`));
  assert.equal(emoji, `"${"c".repeat(198)}... (${198 + 4 + 4} bytes)`);
});

test("selection defaults to every entry and accepts one seqno or an inclusive range", () => {
  assert.deepEqual(parseSelection({}), { from: 1, to: null });
  assert.deepEqual(parseSelection({ seqno: "7" }), { from: 7, to: 7 });
  assert.deepEqual(parseSelection({ from: "3", to: "9" }), { from: 3, to: 9 });
  assert.deepEqual(parseSelection({ from: "3" }), { from: 3, to: null });
  assert.deepEqual(parseSelection({ to: "4" }), { from: 1, to: 4 });
  assert.deepEqual(parseSelection({ from: "4", to: "4" }), { from: 4, to: 4 });
});

test("bad seqnos, combinations and regexes are CliErrors with clear messages", () => {
  for (const bad of ["0", "-1", "1.5", "abc", "1e3", "", " 7", "99999999999999999"]) {
    assert.throws(() => parseSelection({ seqno: bad }), /--seqno must be a seqno/, bad);
  }
  assert.throws(() => parseSelection({ from: "x" }), /--from must be a seqno/);
  assert.throws(() => parseSelection({ from: "2", to: "y" }), /--to must be a seqno/);
  assert.throws(() => parseSelection({ from: "9", to: "3" }), /--to 3 is before --from 9/);
  assert.throws(() => parseSelection({ seqno: "2", from: "1" }), /cannot be combined/);
  assert.throws(() => parseTablesFilter("("), CliError);
  assert.throws(() => parseTablesFilter("[a-"), /--tables is not a valid regular expression/);
  assert.equal(parseTablesFilter(undefined), null);
  assert.ok(parseTablesFilter("^public:rec")?.test(PUBLIC_MAP));
});

test("an entry shows public writes, removals and private size, not private data", async () => {
  const f = await fixturePromise;
  const txId = { view: 3 as View, seqno: 1 as Seqno };
  const writeSet = {
    maps: [
      {
        name: "public:people",
        writes: [
          { key: utf8("alice"), value: utf8('{"balance":10}') },
          { key: utf8("bob"), value: null },
        ],
      },
      { name: "secrets", writes: [{ key: utf8("k"), value: utf8("TOP-SECRET-PLAINTEXT") }] },
    ],
  };
  const bytes = encodeEntry(
    { txId, writeSet, commitEvidenceDigest: new Uint8Array(32) },
    f.secrets,
  );
  const item: EntryItem = {
    kind: "entry",
    seqno: 1,
    entry: bytes,
    file: "ledger_1",
    offset: 8,
    flags: 0,
  };
  const view = describeEntry(item, null);
  const human = formatHumanEntry(view);
  assert.equal(
    human.split("\n")[0],
    `seqno 1  view 3  flags 0x00  size ${bytes.byteLength} B  file ledger_1@8`,
  );
  assert.match(
    human,
    /^  public:people\n    set  "alice"  =  "\{\\"balance\\":10\}"\n    del  "bob"$/m,
  );
  assert.match(
    human,
    new RegExp(`^  private domain: ${view.privateBytes} bytes \\(encrypted\\)$`, "m"),
  );
  assert.ok(view.privateBytes > 0);
  assert.doesNotMatch(human, /TOP-SECRET|secrets|signature/);
  const json: unknown = JSON.parse(formatJsonEntry(view));
  assert.deepEqual(json, {
    seqno: 1,
    view: 3,
    flags: 0,
    size: bytes.byteLength,
    file: "ledger_1",
    offset: 8,
    public: { "public:people": { set: [{ key: "alice", value: '{"balance":10}' }], del: ["bob"] } },
    privateBytes: view.privateBytes,
  });
  assert.deepEqual(describeEntry(item, /^public:nothing$/).publicMaps, []);
});

test("a malformed signature is shown; an undecodable entry names file and offset", async () => {
  const f = await fixturePromise;
  const txId = { view: 2 as View, seqno: 4 as Seqno };
  const writeSet = {
    maps: [{ name: SIGNATURES_MAP, writes: [{ key: new Uint8Array(8), value: utf8("not json") }] }],
  };
  const bytes = encodeEntry(
    { txId, writeSet, commitEvidenceDigest: new Uint8Array(32) },
    f.secrets,
  );
  const item: EntryItem = {
    kind: "entry",
    seqno: 4,
    entry: bytes,
    file: "ledger_1",
    offset: 99,
    flags: 0,
  };
  const view = describeEntry(item, null);
  assert.match(formatHumanEntry(view), /^  signature: malformed \(signature value: not JSON\)$/m);
  assert.deepEqual(JSON.parse(formatJsonEntry(view)).signature, {
    malformed: "signature value: not JSON",
  });

  const broken = bytes.slice();
  broken[8 + 28 + 8] = 9; // the public domain's entry type
  const bad = { ...item, entry: broken };
  assert.throws(
    () => describeEntry(bad, null),
    (err: unknown) =>
      err instanceof CliError &&
      /^ledger invalid: ledger_1 at offset 99 \(seqno 4\): ledger entry: type 9/.test(err.message),
  );
});

test("ledger show is registered under ledger with its options and an example in --help", async () => {
  const ledger = (await buildProgram()).commands.find((c) => c.name() === "ledger");
  const showCommand = ledger?.commands.find((c) => c.name() === "show");
  assert.ok(showCommand, "ledger show exists");
  let help = "";
  showCommand.configureOutput({ writeOut: (s) => (help += s), writeErr: (s) => (help += s) });
  showCommand.outputHelp();
  for (const option of [
    "--dir <dir>",
    "--seqno <n>",
    "--from <a>",
    "--to <b>",
    "--json",
    "--tables <regex>",
  ]) {
    assert.ok(help.includes(option), option);
  }
  assert.match(help, /Examples:\n  consortia ledger show --dir \S+ --seqno 12/);
});

// ---------------------------------------------------------------------------------------------
// The command, run from source

test("human output shows headers, public records and signatures, not private data", async () => {
  const f = await fixturePromise;
  const run = show(f.dir);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, "");
  const headers = run.stdout.split("\n").filter((l) => l.startsWith("seqno "));
  assert.equal(headers.length, LAST_SEQNO);
  for (const e of await entries()) {
    const header =
      `seqno ${e.seqno}  view 2  flags 0x00  size ${e.entry.byteLength} B  ` +
      `file ${e.file}@${e.offset}`;
    assert.ok(headers.includes(header), header);
  }
  for (const [seqno, i] of f.txNumberBySeqno) {
    const value = JSON.stringify(new TextDecoder().decode(publicValue(i)));
    assert.ok(
      run.stdout.includes(`  ${PUBLIC_MAP}\n    set  0x${keyHex(i)}  =  ${value}\n`),
      `seqno ${seqno}`,
    );
  }
  assert.doesNotMatch(run.stdout, PRIVATE_MARKER);
  assert.match(run.stdout, /^  private domain: \d+ bytes \(encrypted\)$/m);
  for (const seqno of SIGNATURES) {
    const sig = await signatureAt(seqno);
    assert.equal(sig.node, f.identities.node.nodeId);
    const line =
      `  signature by node ${sig.node} over root ${sig.root} ` + `(commit 2.${sig.commit_seqno})`;
    assert.ok(run.stdout.includes(line), line);
  }
  assert.equal(run.stdout.match(/^  signature by node /gm)?.length, SIGNATURES.length);
  // The signature value (with its PEM cert) is longer than 200 characters, so it is cut.
  assert.match(run.stdout, /^    set  0x0{16}  =  "\{\\"sig\\":.*\.\.\. \(\d{4} bytes\)$/m);
  assert.doesNotMatch(run.stdout, /warning/);
});

test("--json prints one parseable object per entry with public maps and signatures", async () => {
  const f = await fixturePromise;
  const run = show(f.dir, "--json");
  assert.equal(run.status, 0, run.stderr);
  assert.doesNotMatch(run.stdout, PRIVATE_MARKER);
  const records = run.stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, any>);
  const all = await entries();
  assert.deepEqual(
    records.map((r) => r["seqno"]),
    all.map((e) => e.seqno),
  );
  for (const [k, r] of records.entries()) {
    const e = all[k]!;
    assert.equal(r["file"], e.file);
    assert.equal(r["offset"], e.offset);
    assert.equal(r["view"], 2);
    assert.equal(r["size"], e.entry.byteLength);
    if (SIGNATURES.includes(e.seqno)) {
      const sig = await signatureAt(e.seqno);
      // CCF 6's signature transaction: the COSE signature, the signature and the tree.
      assert.deepEqual(Object.keys(r["public"]), [
        "public:ccf.internal.cose_signatures",
        SIGNATURES_MAP,
        "public:ccf.internal.tree",
      ]);
      assert.equal(r["public"][SIGNATURES_MAP].set[0].value, JSON.stringify(sig), "not cut");
      assert.equal(r["privateBytes"], 0);
      assert.equal(r["signature"].node, sig.node);
      assert.equal(r["signature"].root, sig.root);
      assert.equal(r["signature"].txId, `2.${e.seqno}`);
      continue;
    }
    const i = await txNumber(e.seqno);
    // The fixture's first transaction also records the service certificate, as a genesis does.
    const { "public:ccf.gov.service.info": info, ...rest } = r["public"];
    assert.equal(info !== undefined, e.seqno === 1, `service.info at ${e.seqno}`);
    assert.deepEqual(rest, {
      [PUBLIC_MAP]: {
        set: [{ key: { hex: keyHex(i) }, value: new TextDecoder().decode(publicValue(i)) }],
        del: [],
      },
    });
    assert.ok(r["privateBytes"] > 0);
    assert.equal(r["signature"], undefined);
  }
});

test("--seqno prints exactly that entry", async () => {
  const f = await fixturePromise;
  const run = show(f.dir, "--seqno", "7");
  assert.equal(run.status, 0, run.stderr);
  const headers = run.stdout.match(/^seqno \d+ /gm);
  assert.deepEqual(headers, ["seqno 7 "]);
  assert.ok(run.stdout.includes(`set  0x${keyHex(await txNumber(7))}  =`));
});

test("--from/--to select an inclusive range and --tables keeps only matching maps", async () => {
  const f = await fixturePromise;
  const run = show(f.dir, "--from", "4", "--to", "11", "--json", "--tables", "internal\\.sig");
  assert.equal(run.status, 0, run.stderr);
  const records = run.stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, any>);
  assert.deepEqual(
    records.map((r) => r["seqno"]),
    [4, 5, 6, 7, 8, 9, 10, 11],
  );
  for (const r of records) {
    const expected = SIGNATURES.includes(r["seqno"]) ? [SIGNATURES_MAP] : [];
    assert.deepEqual(Object.keys(r["public"]), expected, `seqno ${r["seqno"]}`);
    assert.equal(r["signature"] !== undefined, SIGNATURES.includes(r["seqno"]));
  }
});

test("a torn last entry prints the entries before it and a warning line at the end", async () => {
  const dir = await copyLedger();
  const last = await entryAt(LAST_SEQNO);
  assert.equal(last.file, "ledger_14");
  truncateSync(join(dir, last.file), last.offset + last.entry.byteLength - 25);
  const run = show(dir, "--from", "12");
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(run.stdout.match(/^seqno \d+/gm), ["seqno 12", "seqno 13", "seqno 14"]);
  const lines = run.stdout.trimEnd().split("\n");
  assert.match(
    lines.at(-1)!,
    new RegExp(`^warning: ledger_14 at offset ${last.offset}: \\d+ bytes of a torn`),
  );
});

test("a corrupt entry header is one line naming its file and offset", async () => {
  const dir = await copyLedger();
  const target = await entryAt(7);
  const path = join(dir, target.file);
  const bytes = readFileSync(path);
  bytes[target.offset] = 0x7e; // entry format version
  writeFileSync(path, bytes);
  const run = show(dir);
  assertOneLineError(
    run,
    new RegExp(`^consortia: ledger invalid: ${target.file} at offset ${target.offset}\\b`),
  );
  assert.match(run.stdout, /^seqno 5 /m);
  assert.doesNotMatch(run.stdout, /^seqno 6 /m, "nothing of the corrupt file prints");
});

test("a missing directory is one clear error line", () => {
  const run = show(join(work.dir, "does-not-exist"));
  assertOneLineError(run, /^consortia: ledger directory not found: .*does-not-exist$/m);
});

test("a non-numeric --seqno is one clear error line", async () => {
  const run = show((await fixturePromise).dir, "--seqno", "seven");
  assertOneLineError(run, /--seqno must be a seqno \(an integer >= 1\), got "seven"/);
  assert.equal(run.stdout, "");
});

test("an invalid --tables regex is one clear error line", async () => {
  const run = show((await fixturePromise).dir, "--tables", "(records");
  assertOneLineError(run, /--tables is not a valid regular expression/);
  assert.equal(run.stdout, "");
});

test("a seqno past the end of the ledger is one error line naming the last seqno", async () => {
  const run = show((await fixturePromise).dir, "--seqno", String(LAST_SEQNO + 1));
  assertOneLineError(
    run,
    new RegExp(
      `seqno ${LAST_SEQNO + 1} is past the end of the ledger \\(last seqno ${LAST_SEQNO}\\)`,
    ),
  );
  assert.equal(run.stdout, "");
});
