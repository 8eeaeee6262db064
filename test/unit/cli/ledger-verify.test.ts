// `consortia ledger verify` end to end (src/cli/commands/ledger.ts), run from source. One real
// multi-chunk ledger is built through TxPipeline (test/helpers/ledger-fixture.ts: 5 committed
// chunks and an in-progress last file holding 3 unsigned entries) and copied for each case, so
// each tamper case alters exactly one thing. Exit 0 with the last verified seqno for a clean
// ledger and for a torn tail of the in-progress file (reported as truncatable); exit 1 naming
// the file and offset for corruption of committed files, missing or reordered files and
// trailing garbage, for a committed file holding entries no signature covers, and for a last
// signature transaction that writes a map besides its own (its only check); exit 1 with
// one clear line and no stack trace for a missing, empty or unreadable directory and for a
// service certificate that did not issue the signing node's cert. A copy without its first file
// stands for a ledger written after a snapshot (issue #11 item 7): it is refused unless
// --from-snapshot names a committed snapshot (built here at seqno 14, its receipt signed by the
// node, so the check of the receipt against the service certificate is real) or --partial asks
// for a partial check, which says what it took on trust and still fails on bad framing, altered
// signatures and altered entries. A ledger of Consortia 0.1 (test/helpers/reseal.ts) is refused
// naming its format.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  CHUNK_HEADER_SIZE_BYTES,
  encodeChunkHeader,
  encodePositionsTable,
} from "../../../src/ledger/chunk-format.js";
import { utf8 } from "../../../src/base/bytes.js";
import type { Seqno, View } from "../../../src/base/ids.js";
import { signDigest } from "../../../src/crypto/ecdsa.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../../src/kv/service-tables.js";
import { compareNames } from "../../../src/kv/write-set.js";
import { decodeEntry } from "../../../src/ledger/entry-format.js";
import { newHistoryTree } from "../../../src/ledger/history.js";
import { readLedger } from "../../../src/ledger/io/ledger-reader.js";
import { encodeSerialisedTree } from "../../../src/ledger/merkle/serialised-tree.js";
import { buildReceipt } from "../../../src/ledger/receipt.js";
import { encodeSnapshot, snapshotDigest } from "../../../src/ledger/snapshot.js";
import { txLeaf } from "../../../src/ledger/tx-leaf.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";
import { runCli, type CliRun } from "../../helpers/cli.js";
import {
  buildLedgerFixture,
  readEntries,
  type LedgerFixture,
} from "../../helpers/ledger-fixture.js";
import { resealEntries, writeLedgerDir } from "../../helpers/reseal.js";
import { withExtraWrites } from "../../helpers/resign.js";
import { tempDir } from "../../helpers/pki.js";

const work = tempDir("consortia-ledger-verify-");
const fixturePromise: Promise<LedgerFixture> = buildLedgerFixture({
  txCount: 60,
  sigTxInterval: 6,
  unsignedTailCount: 3,
});
let copies = 0;

test.after(async () => {
  (await fixturePromise).cleanup();
  work.cleanup();
});

/** The expected shape of the shared ledger; every case below relies on it. */
const FILES = [
  "ledger_1-14.committed",
  "ledger_15-28.committed",
  "ledger_29-42.committed",
  "ledger_43-56.committed",
  "ledger_57-70.committed",
  "ledger_71",
];

/** A private copy of the shared ledger directory. */
async function copyLedger(): Promise<string> {
  const f = await fixturePromise;
  const dir = join(work.dir, `copy-${++copies}`);
  cpSync(f.dir, dir, { recursive: true });
  return dir;
}

function verify(dir: string, ...extra: string[]): CliRun {
  return runCli(["ledger", "verify", "--dir", dir, "--no-progress", ...extra]);
}

function assertNoStack(run: CliRun): void {
  assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
}

/** Exit 1, with the file name and "at offset <n>" in stderr. */
function assertCorrupt(run: CliRun, file: string, offset?: number): void {
  assert.equal(run.status, 1, `stdout: ${run.stdout}\nstderr: ${run.stderr}`);
  assertNoStack(run);
  assert.match(run.stderr, /^consortia: ledger invalid: /);
  const at = offset === undefined ? "\\d+" : String(offset);
  assert.match(run.stderr, new RegExp(`${file.replace(/\./g, "\\.")} at offset ${at}\\b`));
  assert.doesNotMatch(run.stdout, /ledger OK/);
}

/** File and offset of the entry with `seqno`, from the reader. */
function locate(dir: string, seqno: number): { file: string; offset: number; length: number } {
  for (const item of readLedger(dir)) {
    if (item.kind === "entry" && item.seqno === seqno) {
      return { file: item.file, offset: item.offset, length: item.entry.byteLength };
    }
  }
  throw new Error(`seqno ${seqno} not found`);
}

test("the shared fixture ledger spans several committed chunks and an in-progress file", async () => {
  const f = await fixturePromise;
  const names = [...readLedger(f.dir)].map((item) => item.file);
  assert.deepEqual([...new Set(names)], FILES);
  assert.equal(f.lastSignedSeqno, 70);
  assert.equal(f.lastSeqno, 73);
});

test("a clean multi-chunk ledger verifies: exit 0, last verified seqno and ledger OK", async () => {
  const f = await fixturePromise;
  const certFile = join(work.dir, "service_cert.pem");
  writeFileSync(certFile, f.identities.serviceCertPem);
  const run = verify(f.dir, "--service-cert", certFile);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, "");
  assert.match(
    run.stdout,
    /^files: 6, entries: 73, signatures: 10 \(COSE signatures checked: 10, serialised trees checked: 10\)$/m,
  );
  assert.match(
    run.stdout,
    /^3 entries after the last signature are well-formed but not yet signed$/m,
  );
  assert.match(run.stdout, /^last verified seqno: 70$/m);
  assert.match(run.stdout, /ledger OK\n$/);
  assert.doesNotMatch(run.stdout, /warning/);
});

test("a flipped bit inside an entry of a committed file is reported at the signature covering it", async () => {
  const dir = await copyLedger();
  const target = locate(dir, 18);
  assert.equal(target.file, "ledger_15-28.committed");
  const path = join(dir, target.file);
  const bytes = readFileSync(path);
  bytes[target.offset + target.length - 20]! ^= 0x04; // inside the private ciphertext
  writeFileSync(path, bytes);
  const sig = locate(dir, 21);
  const run = verify(dir);
  assertCorrupt(run, target.file, sig.offset);
  assert.match(run.stderr, /\(seqno 21\)/);
  assert.match(run.stderr, /last verified seqno: 14/);
});

test("a committed file truncated by a few bytes is reported with its name and offset", async () => {
  const dir = await copyLedger();
  const path = join(dir, "ledger_29-42.committed");
  truncateSync(path, statSync(path).size - 3);
  assertCorrupt(verify(dir), "ledger_29-42.committed");
});

test("a missing file in the middle is reported naming the file after the gap", async () => {
  const dir = await copyLedger();
  unlinkSync(join(dir, "ledger_29-42.committed"));
  const run = verify(dir);
  assertCorrupt(run, "ledger_43-56.committed", 0);
  assert.match(run.stderr, /29\.\.42 missing/);
});

test("two committed files swapped under each other's names are reported", async () => {
  const dir = await copyLedger();
  const a = join(dir, "ledger_15-28.committed");
  const b = join(dir, "ledger_43-56.committed");
  renameSync(a, join(dir, "swap"));
  renameSync(b, a);
  renameSync(join(dir, "swap"), b);
  const run = verify(dir);
  assertCorrupt(run, "ledger_15-28.committed");
  assert.match(run.stderr, /seqno 43, expected 15/);
});

test("garbage appended to a committed file is reported", async () => {
  const dir = await copyLedger();
  const path = join(dir, "ledger_57-70.committed");
  const size = statSync(path).size;
  appendFileSync(path, Buffer.alloc(16, 0x5c));
  const run = verify(dir);
  assertCorrupt(run, "ledger_57-70.committed", size);
});

test("a committed file whose last signature was cut out is reported at its first unsigned entry", async () => {
  const dir = await copyLedger();
  // Rewrite ledger_57-70.committed as a well-framed ledger_57-69.committed without signature
  // 70, alter entry 66 (now covered by no signature) and drop the later in-progress file.
  const firstUnsigned = locate(dir, 64);
  const kept = [...readLedger(dir)].flatMap((item) =>
    item.kind === "entry" && item.seqno >= 57 && item.seqno <= 69 ? [item.entry.slice()] : [],
  );
  kept[66 - 57]![kept[66 - 57]!.byteLength - 10]! ^= 0x01;
  const positions: number[] = [];
  let offset = CHUNK_HEADER_SIZE_BYTES;
  for (const entry of kept) {
    positions.push(offset);
    offset += entry.byteLength;
  }
  const file = Buffer.concat([encodeChunkHeader(offset), ...kept, encodePositionsTable(positions)]);
  unlinkSync(join(dir, "ledger_57-70.committed"));
  unlinkSync(join(dir, "ledger_71"));
  writeFileSync(join(dir, "ledger_57-69.committed"), file);
  const run = verify(dir);
  assertCorrupt(run, "ledger_57-69.committed", firstUnsigned.offset);
  assert.match(run.stderr, /\(seqno 64\): a committed file holds entries that no signature covers/);
  assert.match(run.stderr, /last verified seqno: 63/);
});

test("a last signature transaction that also writes another map is reported, on any thread", async () => {
  const f = await fixturePromise;
  const entries = readEntries(f.dir).slice(0, 70);
  const extra = {
    name: SERVICE_TABLES.userCerts,
    writes: [{ key: utf8("evil"), value: utf8("x") }],
  };
  entries[69] = withExtraWrites(f.secrets, entries[69]!, [extra]);
  const dir = join(work.dir, `extra-write-${++copies}`);
  mkdirSync(dir);
  writeLedgerDir(dir, entries);
  const sig = locate(dir, 70);
  for (const jobs of ["0", "2"]) {
    const run = verify(dir, "--jobs", jobs);
    assertCorrupt(run, sig.file, sig.offset);
    assert.match(
      run.stderr,
      /\(seqno 70\): signature transaction 70 writes map public:ccf\.gov\.users\.certs;/,
    );
    assert.match(run.stderr, /last verified seqno: 63/);
  }
});

test("a ledger file that cannot be read is one clear error line, not a stack trace", async () => {
  const dir = join(work.dir, "unreadable");
  mkdirSync(join(dir, "ledger_1"), { recursive: true });
  const run = verify(dir);
  assert.equal(run.status, 1);
  assertNoStack(run);
  assert.match(run.stderr, /^consortia: cannot read the ledger: EISDIR.*\n$/);
});

test("a torn last entry of the in-progress file is a truncatable warning, not corruption", async () => {
  const dir = await copyLedger();
  const last = locate(dir, 73);
  assert.equal(last.file, "ledger_71");
  truncateSync(join(dir, last.file), last.offset + last.length - 25);
  const run = verify(dir);
  assert.equal(run.status, 0, run.stderr);
  assertNoStack(run);
  assert.match(
    run.stdout,
    new RegExp(`warning: ledger_71 at offset ${last.offset}: .*truncatable`),
  );
  assert.match(run.stdout, /^files: 6, entries: 72, signatures: 10 \(/m);
  assert.match(run.stdout, /^last verified seqno: 70$/m);
  assert.match(run.stdout, /ledger OK/);
});

test("a missing or empty directory is one clear error line with exit 1", async () => {
  const missing = verify(join(work.dir, "does-not-exist"));
  assert.equal(missing.status, 1);
  assertNoStack(missing);
  assert.match(missing.stderr, /^consortia: ledger directory not found: .*does-not-exist\n$/);

  const empty = join(work.dir, "empty");
  mkdirSync(empty);
  writeFileSync(join(empty, "notes.txt"), "not a ledger file");
  const none = verify(empty);
  assert.equal(none.status, 1);
  assertNoStack(none);
  assert.match(none.stderr, /^consortia: no ledger files in .*empty\n$/);
  rmSync(empty, { recursive: true });
});

test("a service certificate that did not issue the signing node's cert fails verification", async () => {
  const f = await fixturePromise;
  const other = await createStartIdentities({ now: new Date() });
  const certFile = join(work.dir, "other_service.pem");
  writeFileSync(certFile, other.serviceCertPem);
  const run = verify(f.dir, "--service-cert", certFile);
  const first = locate(f.dir, 7);
  assertCorrupt(run, first.file, first.offset);
  assert.match(run.stderr, /not issued by the service certificate/);
  assert.match(run.stderr, /last verified seqno: 0/);
});

/** A copy of the shared ledger without its first file: it starts at seqno 15, as after a snapshot. */
async function copyFromSnapshot(): Promise<string> {
  const dir = await copyLedger();
  unlinkSync(join(dir, "ledger_1-14.committed"));
  return dir;
}

test("a ledger without its first chunk exits 1 naming both ways to start, even when altered", async () => {
  for (const alter of [false, true]) {
    const dir = await copyFromSnapshot();
    if (alter) alterPublicValue(dir, 16);
    const run = verify(dir);
    assert.equal(run.status, 1, run.stdout);
    assertNoStack(run);
    assert.match(
      run.stderr,
      /^consortia: ledger starts at seqno 15: its first chunk is missing, so no root can be recomputed; name the snapshot it starts from \(--from-snapshot FILE --service-cert FILE\) or ask for a partial check \(--partial\)$/m,
    );
    assert.doesNotMatch(run.stdout, /ledger OK/);
  }
});

test("--partial checks from the first signature's tree and says what it took on trust", async () => {
  const dir = await copyFromSnapshot();
  const run = verify(dir, "--partial");
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stderr, "");
  assert.match(run.stdout, /^partial check: the ledger starts at seqno 15, without the chunks/m);
  assert.match(run.stdout, /^files: 5, entries: 59 \(seqnos 15\.\.73\), signatures: 8 /m);
  assert.match(
    run.stdout,
    /^not checked: seqnos 1\.\.14 are not in the directory: the tree before them is signature 21's serialised tree, vouched for by its signature alone$/m,
  );
  // Without --service-cert the COSE signatures before any service.info cannot be checked.
  assert.match(run.stdout, /^not checked: 8 COSE signatures: no service certificate was known/m);
  assert.match(run.stdout, /^last verified seqno: 70$/m);
  assert.match(run.stdout, /ledger OK as far as checked \(partial check\)\n$/);
});

test("--partial still fails on bad framing, altered signatures and altered entries", async () => {
  const truncated = await copyFromSnapshot();
  const path = join(truncated, "ledger_29-42.committed");
  truncateSync(path, statSync(path).size - 3);
  assertCorrupt(verify(truncated, "--partial"), "ledger_29-42.committed");

  const altered = await copyFromSnapshot();
  const sig = locate(altered, 28);
  const file = join(altered, sig.file);
  const bytes = readFileSync(file);
  const entry = bytes.subarray(sig.offset, sig.offset + sig.length);
  const at = entry.indexOf('"sig":"') + 7 + 30;
  assert.ok(at > 37, "signature entry has a sig field");
  entry[at] = entry[at] === 0x61 ? 0x62 : 0x61; // stays base64: only the value changes
  writeFileSync(file, bytes);
  const run = verify(altered, "--partial");
  assertCorrupt(run, sig.file, sig.offset);
  assert.match(run.stderr, /\(seqno 28\): signature by node [0-9a-f]+ does not verify/);
  assert.match(run.stderr, /last verified seqno: 21/);

  // An altered entry before the first signature is caught against that signature's tree; one
  // after it, by the next root.
  for (const [seqno, caughtAt] of [
    [16, 21],
    [23, 28],
  ] as const) {
    const dir = await copyFromSnapshot();
    alterPublicValue(dir, seqno);
    const bad = verify(dir, "--partial");
    assertCorrupt(bad, locate(dir, caughtAt).file, locate(dir, caughtAt).offset);
    assert.match(bad.stderr, new RegExp(`\\(seqno ${caughtAt}\\)`));
  }
});

test("--from-snapshot checks the snapshot's receipt and every root after it", async () => {
  const f = await fixturePromise;
  const certFile = join(work.dir, "service_cert.pem");
  writeFileSync(certFile, f.identities.serviceCertPem);
  const dir = await copyFromSnapshot();
  const snapshot = await snapshotAt14(dir);
  const run = verify(dir, "--from-snapshot", snapshot, "--service-cert", certFile);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /^starting from snapshot .* at seqno 14 \(its receipt verifies/m);
  assert.match(
    run.stdout,
    /^files: 5, entries: 59 \(seqnos 15\.\.73\), signatures: 8 \(COSE signatures checked: 8, serialised trees checked: 8\)$/m,
  );
  assert.doesNotMatch(run.stdout, /not checked/);
  assert.match(run.stdout, /ledger OK\n$/);

  // An altered entry after the snapshot is caught by the next root.
  const altered = await copyFromSnapshot();
  alterPublicValue(altered, 16);
  assertCorrupt(
    verify(altered, "--from-snapshot", snapshot, "--service-cert", certFile),
    locate(altered, 21).file,
  );

  // A snapshot whose tree is not the ledger's fails at the first signature after it.
  const wrongTree = await snapshotAt14(dir, { wrongTree: true });
  const wrong = verify(dir, "--from-snapshot", wrongTree, "--service-cert", certFile);
  assertCorrupt(wrong, locate(dir, 21).file, locate(dir, 21).offset);
  assert.match(wrong.stderr, /signed root .* != recomputed root/);
});

test("--from-snapshot refuses a snapshot it cannot vouch for, and odd combinations", async () => {
  const f = await fixturePromise;
  const other = await createStartIdentities({ now: new Date() });
  const certFile = join(work.dir, "service_cert.pem");
  writeFileSync(certFile, f.identities.serviceCertPem);
  const otherCert = join(work.dir, "other_service_cert.pem");
  writeFileSync(otherCert, other.serviceCertPem);
  const dir = await copyFromSnapshot();
  const snapshot = await snapshotAt14(dir);
  const refused = (args: string[], reason: RegExp): void => {
    const run = verify(dir, ...args);
    assert.equal(run.status, 1, run.stdout);
    assertNoStack(run);
    assert.match(run.stderr, reason);
    assert.doesNotMatch(run.stdout, /ledger OK/);
  };
  refused(["--from-snapshot", snapshot], /--from-snapshot needs --service-cert/);
  refused(["--from-snapshot", snapshot, "--partial"], /cannot be combined/);
  refused(
    ["--from-snapshot", snapshot, "--service-cert", otherCert],
    /its receipt does not verify/,
  );
  const uncovered = await snapshotAt14(dir, { receiptFor: "another snapshot" });
  refused(
    ["--from-snapshot", uncovered, "--service-cert", certFile],
    /its receipt does not cover this snapshot/,
  );
  const uncommitted = await snapshotAt14(dir, { receiptFor: null });
  refused(["--from-snapshot", uncommitted, "--service-cert", certFile], /not committed/);
  refused(["--from-snapshot", join(dir, "nope"), "--service-cert", certFile], /cannot read/);
  // A snapshot older than the ledger's start leaves a gap.
  const later = await copyLedger();
  unlinkSync(join(later, "ledger_1-14.committed"));
  unlinkSync(join(later, "ledger_15-28.committed"));
  const gap = verify(later, "--from-snapshot", snapshot, "--service-cert", certFile);
  assert.equal(gap.status, 1);
  assert.match(
    gap.stderr,
    /ledger starts at seqno 29, after snapshot 14: seqnos 15\.\.28 are missing/,
  );
});

test("a ledger of Consortia 0.1 is refused, naming its format", async () => {
  const f = await fixturePromise;
  const legacy = resealEntries(readEntries(f.dir).slice(0, 70), f, { legacyNumbering: true });
  const dir = join(work.dir, `legacy-${++copies}`);
  mkdirSync(dir);
  writeLedgerDir(dir, legacy);
  const run = verify(dir);
  assert.equal(run.status, 1, run.stdout);
  assertNoStack(run);
  assert.match(
    run.stderr,
    /^consortia: ledger refused: signature 7: this ledger numbers Merkle leaves from seqno 1 \(Consortia 0\.1 format\); this version reads CCF's format, where leaf 0 is 32 zero bytes$/m,
  );
});

/** Flips a bit in the public value of the transaction at `seqno`, in place. */
function alterPublicValue(dir: string, seqno: number): void {
  const at = locate(dir, seqno);
  const file = join(dir, at.file);
  const bytes = readFileSync(file);
  const entry = bytes.subarray(at.offset, at.offset + at.length);
  const marker = entry.indexOf("<public value of tx ");
  assert.ok(marker > 0, `seqno ${seqno} has a public value`);
  entry[marker + 3]! ^= 0x20;
  writeFileSync(file, bytes);
}

/**
 * A committed snapshot at seqno 14 of the shared ledger, as a file in `dir`'s parent: the
 * service certificate and the Merkle tree over leaf 0 and seqnos 1..14, with a receipt whose
 * claims digest is the snapshot's (a one-leaf tree signed by the node, endorsed by the service).
 */
async function snapshotAt14(
  dir: string,
  options: { wrongTree?: boolean; receiptFor?: "another snapshot" | null } = {},
): Promise<string> {
  const f = await fixturePromise;
  const tree = newHistoryTree();
  for (const [index, bytes] of readEntries(f.dir).slice(0, 14).entries()) {
    const entry = decodeEntry(bytes);
    const digest = options.wrongTree === true && index === 3 ? sha256(utf8("x")) : sha256(bytes);
    tree.append(txLeaf(digest, entry.commitEvidenceDigest, entry.claimsDigest));
  }
  const info = utf8(JSON.stringify({ cert: f.identities.serviceCertPem, status: "Open" }));
  const treeValue = encodeSerialisedTree(tree, { fromIndex: 14, toIndex: 14 });
  const maps = [
    {
      name: SERVICE_TABLES.serviceInfo,
      seqno: 1 as Seqno,
      keys: [{ key: SINGLETON_KEY_BYTES, value: info, seqno: 1 as Seqno }],
    },
    {
      name: SERVICE_TABLES.tree,
      seqno: 14 as Seqno,
      keys: [{ key: SINGLETON_KEY_BYTES, value: treeValue, seqno: 14 as Seqno }],
    },
  ].sort((x, y) => compareNames(x.name, y.name));
  const entryBytes = encodeSnapshot(
    {
      seqno: 14 as Seqno,
      hashAtSnapshot: tree.leaf(14),
      viewHistory: [1 as Seqno, 1 as Seqno],
      maps,
    },
    f.secrets,
  );
  const path = join(dir, "..", `snapshot_14_15.committed.${++copies}`);
  if (options.receiptFor === null) {
    writeFileSync(path, entryBytes);
    return path;
  }
  const claims =
    options.receiptFor === "another snapshot" ? sha256(utf8("other")) : snapshotDigest(entryBytes);
  const commitEvidence = f.secrets.commitEvidence({ view: 2 as View, seqno: 15 as Seqno });
  const leaf = txLeaf(sha256(utf8("evidence")), sha256(utf8(commitEvidence)), claims);
  const receipt = buildReceipt({
    certPem: f.identities.node.certPem,
    nodeId: f.identities.node.nodeId,
    signature: signDigest(f.identities.node.privateKey, leaf),
    proof: [],
    leafComponents: {
      writeSetDigest: sha256(utf8("evidence")),
      commitEvidence,
      claimsDigest: claims,
    },
  });
  writeFileSync(path, new Uint8Array([...entryBytes, ...utf8(JSON.stringify(receipt))]));
  return path;
}

test("files digested on worker threads (--jobs 2) give exactly the main thread's results", async () => {
  const f = await fixturePromise;
  const certFile = join(work.dir, "service_cert_jobs.pem");
  writeFileSync(certFile, f.identities.serviceCertPem);
  const flipped = await copyLedger();
  const target = locate(flipped, 18);
  const flippedPath = join(flipped, target.file);
  const bytes = readFileSync(flippedPath);
  bytes[target.offset + target.length - 20]! ^= 0x04;
  writeFileSync(flippedPath, bytes);
  const truncated = await copyLedger();
  const truncatedPath = join(truncated, "ledger_43-56.committed");
  truncateSync(truncatedPath, statSync(truncatedPath).size - 3);
  const torn = await copyLedger();
  const last = locate(torn, 73);
  truncateSync(join(torn, last.file), last.offset + last.length - 25);
  const cases: readonly (readonly string[])[] = [
    [f.dir, "--service-cert", certFile],
    [flipped],
    [truncated],
    [torn],
  ];
  for (const [dir, ...extra] of cases) {
    const inline = verify(dir!, "--jobs", "0", ...extra);
    const workers = verify(dir!, "--jobs", "2", ...extra);
    assert.deepEqual(workers, inline, `same outcome for ${dir} ${extra.join(" ")}`);
  }
  assert.equal(verify(f.dir, "--jobs", "2").status, 0);
  assert.equal(verify(flipped, "--jobs", "2").status, 1);
});

test("--jobs must be a small whole number", async () => {
  const f = await fixturePromise;
  for (const bad of ["-1", "two", "1.5", "1000"]) {
    const run = verify(f.dir, "--jobs", bad);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^consortia: --jobs must be a whole number from 0 to 64, got /);
  }
});
