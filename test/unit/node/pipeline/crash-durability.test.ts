// The ledger's durability contract (docs/architecture.md) against real process crashes: "a
// transaction reported committed survives a crash; a torn tail is truncated on restart; the
// ledger then verifies". A child process (test/helpers/crash-writer.ts) runs a real TxPipeline
// with small chunks and prints each commit point with a synchronous write; the test SIGKILLs it
// at different moments and then checks, with the real reader, writer and LedgerVerifier, that
// the last commit point it printed is on disk and signed, that every entry decrypts to what the
// child wrote, that `.committed` files end at verified signatures, and that a node can resume
// on the recovered ledger (roll back the unsigned suffix, append, sign) and leave it readable.
// A second test appends the kinds of torn tail a crash can leave (a partial entry, zero-filled
// blocks, a positions table written before its header) and checks that open truncates exactly
// those bytes, while arbitrary garbage is still reported as corruption.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, cpSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { equalBytes } from "../../../../src/base/bytes.js";
import type { Seqno, View } from "../../../../src/base/ids.js";
import { Store } from "../../../../src/kv/store.js";
import type { WriteSet } from "../../../../src/kv/write-set.js";
import { encodePositionsTable, LedgerError } from "../../../../src/ledger/chunk-format.js";
import { decodeWriteSet } from "../../../../src/ledger/entry-format.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { listLedgerFiles, readLedger } from "../../../../src/ledger/io/ledger-reader.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { LedgerVerifier } from "../../../../src/ledger/ledger-verifier.js";
import {
  createStartIdentities,
  type StartIdentities,
} from "../../../../src/node/startup/start-identities.js";
import { InlineSealer } from "../../../../src/node/pipeline/sealer.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import {
  CRASH_CHUNK_SIZE_BYTES,
  CRASH_PRIVATE_MAP,
  CRASH_PUBLIC_MAP,
  CRASH_SIG_TX_INTERVAL,
  CRASH_VIEW,
  crashPrivateValue,
  crashPublicValue,
  crashSecretKey,
  crashTxKey,
  crashTxNumber,
  writeCrashIdentity,
  type CrashSealerKind,
} from "../../../helpers/crash-writer.js";
import { tempDir } from "../../../helpers/pki.js";

const WRITER = join(import.meta.dirname, "..", "..", "..", "helpers", "crash-writer.ts");
const TSX = import.meta.resolve("tsx");
/** Longest wait for the child's first commit line (tsx and worker start-up, 50 txs, a sync). */
const FIRST_COMMIT_TIMEOUT_MS = 10_000;
/** A restarted node appends in a later view (same seqnos, same secret: IVs must differ). */
const RESUMED_VIEW = (CRASH_VIEW + 1) as View;
const RESUMED_AGAIN_VIEW = (CRASH_VIEW + 2) as View;
const WRITER_OPTIONS = { chunkSizeBytes: CRASH_CHUNK_SIZE_BYTES };
const identitiesPromise = createStartIdentities({ now: new Date() });

interface Rig {
  readonly dir: string;
  readonly identityPath: string;
  readonly identities: StartIdentities;
  readonly root: string;
  cleanup(): void;
}

async function makeRig(): Promise<Rig> {
  const identities = await identitiesPromise;
  const { dir: root, cleanup } = tempDir("consortia-crash-");
  const identityPath = join(root, "identity.json");
  writeCrashIdentity(identityPath, identities);
  return { dir: join(root, "ledger"), identityPath, identities, root, cleanup };
}

interface CrashRun {
  readonly sealer: CrashSealerKind;
  readonly seed: number;
  readonly killDelayMs: number;
}

interface KilledRun {
  /** The last `committed <seqno>` the child printed. */
  readonly lastCommitted: number;
  readonly commitLines: number;
  readonly signal: NodeJS.Signals | null;
  readonly exitCode: number | null;
  /** Lines other than strictly increasing commit lines, and a trailing partial line. */
  readonly unexpected: readonly string[];
  readonly stderr: string;
}

/**
 * Starts the crash writer and SIGKILLs it `killDelayMs` after its first commit line (or after
 * FIRST_COMMIT_TIMEOUT_MS without one). Resolves once the child is dead and its pipes drained.
 */
async function runAndKill(rig: Rig, run: CrashRun): Promise<KilledRun> {
  const args = [rig.dir, rig.identityPath, run.sealer, String(run.seed)];
  const child = spawn(process.execPath, ["--import", TSX, WRITER, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const timers: NodeJS.Timeout[] = [setTimeout(kill, FIRST_COMMIT_TIMEOUT_MS)];
  let pending = "";
  let stderr = "";
  let lastCommitted = 0;
  let commitLines = 0;
  const unexpected: string[] = [];
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const lines = (pending + chunk).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const seqno = Number(/^committed (\d+)$/.exec(line)?.[1] ?? Number.NaN);
      if (!(seqno > lastCommitted)) {
        unexpected.push(line);
        continue;
      }
      lastCommitted = seqno;
      if (commitLines++ === 0) {
        clearTimeout(timers[0]);
        timers.push(setTimeout(kill, run.killDelayMs));
      }
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => (stderr += chunk));
  try {
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(
      (resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code, sig) => resolve([code, sig]));
      },
    );
    if (pending !== "") unexpected.push(pending);
    return { lastCommitted, commitLines, signal, exitCode, unexpected, stderr };
  } finally {
    for (const timer of timers) clearTimeout(timer);
    kill();
  }
}

/** Asserts the child died by our SIGKILL after printing at least one commit and nothing odd. */
function assertKilledAfterCommit(run: KilledRun, label: string): void {
  assert.equal(run.signal, "SIGKILL", `${label}: exit ${run.exitCode}, stderr: ${run.stderr}`);
  assert.ok(run.lastCommitted > 0, `${label}: no commit line before the kill`);
  assert.deepEqual(run.unexpected, [], `${label}: unexpected output; stderr: ${run.stderr}`);
}

interface Replay {
  readonly store: Store;
  readonly history: TxHistory;
  readonly verifier: LedgerVerifier;
  readonly lastSeqno: number;
  readonly signatureSeqnos: ReadonlySet<number>;
  /** txNumberAt[seqno]: the number of the last ordinary transaction at or before seqno. */
  readonly txNumberAt: readonly number[];
}

/** Transaction i's write set, as the crash writer (or a resumed pipeline) made it. */
function isTxWriteSet(ws: WriteSet, seed: number, i: number): boolean {
  const [priv, pub] = ws.maps;
  if (ws.maps.length !== 2 || priv?.name !== CRASH_PRIVATE_MAP) return false;
  if (pub?.name !== CRASH_PUBLIC_MAP || priv.writes.length !== 1 || pub.writes.length !== 1) {
    return false;
  }
  const [pw, uw] = [priv.writes[0]!, pub.writes[0]!];
  if (crashTxNumber(pw.key) !== i || crashTxNumber(uw.key) !== i) return false;
  if (pw.value === null || !equalBytes(pw.value, crashPrivateValue(seed, i))) return false;
  return uw.value !== null && equalBytes(uw.value, crashPublicValue(i));
}

/**
 * Reads the whole ledger and checks it the way a restarting node would replay it: contiguous
 * seqnos from 1 with no torn tail, every step valid for the LedgerVerifier (roots, ECDSA, certs
 * issued by the service), every private domain decrypting to the expected transaction, with
 * transaction numbers consecutive. Returns the rebuilt Store and TxHistory.
 */
function replayLedger(dir: string, seed: number, serviceCertPem: string, label: string): Replay {
  const secrets = new LedgerSecrets(crashSecretKey(seed));
  const store = new Store();
  const history = new TxHistory(secrets);
  const verifier = new LedgerVerifier({ serviceCertPem });
  const signatureSeqnos = new Set<number>();
  const txNumberAt = [0];
  let seqno = 0;
  for (const item of readLedger(dir)) {
    assert.equal(item.kind, "entry", `${label}: torn tail left after open (${item.file})`);
    if (item.kind !== "entry") continue;
    seqno++;
    assert.equal(item.seqno, seqno, `${label}: seqnos are contiguous`);
    const step = verifier.push(item.entry);
    if (step.kind === "invalid") assert.fail(`${label}: seqno ${seqno} invalid: ${step.reason}`);
    const ws = decodeWriteSet(history.appendEntry(item.entry), secrets);
    assert.ok(ws !== null, `${label}: seqno ${seqno} does not decrypt`);
    let txNumber = txNumberAt[seqno - 1]!;
    if (step.kind === "signature") {
      signatureSeqnos.add(seqno);
    } else {
      txNumber++;
      assert.ok(isTxWriteSet(ws, seed, txNumber), `${label}: seqno ${seqno} is not tx ${txNumber}`);
    }
    txNumberAt.push(txNumber);
    store.apply(seqno as Seqno, ws);
  }
  return { store, history, verifier, lastSeqno: seqno, signatureSeqnos, txNumberAt };
}

/** Every completed file ends at a signature; `.committed` ones at verified ones, in the ledger. */
function checkLedgerFiles(dir: string, replay: Replay, label: string): void {
  const files = listLedgerFiles(dir);
  files.forEach((file, index) => {
    if (file.lastSeqno === null) {
      assert.equal(index, files.length - 1, `${label}: only the last file is in progress`);
      return;
    }
    assert.ok(file.lastSeqno <= replay.lastSeqno, `${label}: ${file.name} beyond the ledger`);
    assert.ok(replay.signatureSeqnos.has(file.lastSeqno), `${label}: ${file.name} ends unsigned`);
    if (file.committed) {
      const verified = replay.verifier.lastVerifiedSeqno;
      assert.ok(file.lastSeqno <= verified, `${label}: ${file.name} after signature ${verified}`);
    }
  });
}

interface ResumeOptions {
  /** The crash writer's seed: the resumed node continues its value stream. */
  readonly seed: number;
  /** A view after every view already in the ledger (IVs are seqno | view under one secret). */
  readonly view: View;
  readonly txCount: number;
  /** Close with a signature (as a clean shutdown), or leave the new entries unsigned. */
  readonly sign: boolean;
}

/**
 * Resumes a node on a recovered ledger: rolls the Store, TxHistory and files back to the last
 * verified signature, runs `txCount` more transactions through a new pipeline in a later view,
 * and closes the ledger. Returns the last seqno written.
 */
async function resume(
  writer: LedgerWriter,
  replay: Replay,
  identities: StartIdentities,
  options: ResumeOptions,
): Promise<number> {
  const signed = replay.verifier.lastVerifiedSeqno;
  replay.store.rollback(signed);
  replay.history.retract(signed);
  writer.truncate(signed);
  const secrets = replay.history.secrets;
  const sealer = new InlineSealer(secrets);
  const pipeline = new TxPipeline({
    store: replay.store,
    history: replay.history,
    ledger: writer,
    sealer,
    identity: identities.node,
    options: {
      view: options.view,
      sigTxInterval: options.sign ? CRASH_SIG_TX_INTERVAL : Number.MAX_SAFE_INTEGER,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 1,
    },
    nowMs: 0,
  });
  const seed = options.seed;
  const first = replay.txNumberAt[signed]! + 1;
  for (let i = first; i < first + options.txCount; i++) {
    const outcome = await pipeline.execute((tx) => {
      tx.rw(CRASH_PUBLIC_MAP).set(crashTxKey(i), crashPublicValue(i));
      tx.rw(CRASH_PRIVATE_MAP).set(crashTxKey(i), crashPrivateValue(seed, i));
    });
    assert.equal(outcome.kind, "committed", `resumed tx ${i}`);
  }
  if (options.sign) {
    await pipeline.close();
    assert.equal(pipeline.commitTxId.seqno, pipeline.lastTxId.seqno, "close signed everything");
  } else {
    await pipeline.tick(0); // records what the sealer holds; no signature is due
    writer.close();
    await sealer.close();
  }
  return pipeline.lastTxId.seqno;
}

const ROUNDS: readonly CrashRun[] = [
  { sealer: "inline", seed: 1, killDelayMs: 300 },
  { sealer: "worker", seed: 2, killDelayMs: 700 },
  { sealer: "inline", seed: 3, killDelayMs: 1200 },
];

for (const run of ROUNDS) {
  const label = `seed ${run.seed}, ${run.sealer} sealer, killed ${run.killDelayMs} ms in`;
  const name =
    `a SIGKILL ${run.killDelayMs} ms after the first commit (${run.sealer} sealer) loses no ` +
    "committed transaction, and the recovered ledger verifies and takes new entries";
  test(name, async (t: TestContext) => {
    const rig = await makeRig();
    try {
      const startMs = performance.now();
      const killed = await runAndKill(rig, run);
      const killedMs = performance.now();
      assertKilledAfterCommit(killed, label);
      const committed = killed.lastCommitted;
      const writer = LedgerWriter.open(rig.dir, WRITER_OPTIONS);
      t.diagnostic(
        `${label}: ${killed.commitLines} commits, last ${committed}; on disk ${writer.lastSeqno}` +
          `, torn tail ${writer.recoveredTornTailBytes} bytes` +
          `, ${listLedgerFiles(rig.dir).length} files`,
      );
      assert.ok(writer.lastSeqno >= committed, `${label}: ledger ends at ${writer.lastSeqno}`);
      const replay = replayLedger(rig.dir, run.seed, rig.identities.serviceCertPem, label);
      assert.equal(replay.lastSeqno, writer.lastSeqno, `${label}: reader and writer agree`);
      assert.ok(replay.signatureSeqnos.has(committed), `${label}: ${committed} is a signature`);
      const signed = replay.verifier.lastVerifiedSeqno;
      assert.ok(signed >= committed, `${label}: last verified signature ${signed}`);
      checkLedgerFiles(rig.dir, replay, label);

      const resumeOptions = { seed: run.seed, view: RESUMED_VIEW, txCount: 120, sign: true };
      const last = await resume(writer, replay, rig.identities, resumeOptions);
      const reopened = LedgerWriter.open(rig.dir, WRITER_OPTIONS);
      assert.equal(reopened.recoveredTornTailBytes, 0, `${label}: a clean close leaves no tail`);
      assert.equal(reopened.lastSeqno, last);
      reopened.close();
      const final = replayLedger(rig.dir, run.seed, rig.identities.serviceCertPem, `${label}+`);
      assert.equal(final.lastSeqno, last);
      assert.equal(final.verifier.lastVerifiedSeqno, last, `${label}: everything signed`);
      assert.equal(final.txNumberAt[last], replay.txNumberAt[signed]! + 120);
      checkLedgerFiles(rig.dir, final, `${label}+`);
      const checkMs = Math.round(performance.now() - killedMs);
      t.diagnostic(
        `${label}: child ran ${Math.round(killedMs - startMs)} ms, checks ${checkMs} ms`,
      );
    } finally {
      rig.cleanup();
    }
  });
}

interface TornTail {
  readonly what: string;
  readonly bytes: Uint8Array;
}

/** The torn tails a crash can leave after the last whole entry of `file` in `dir`. */
function possibleTornTails(dir: string, file: string): TornTail[] {
  const entries = [...readLedger(dir)].filter((item) => item.file === file);
  const offsets = entries.map((item) => item.offset);
  const last = entries.at(-1);
  assert.ok(last !== undefined && last.kind === "entry", `${file} holds entries`);
  return [
    { what: "the first half of an entry", bytes: last.entry.slice(0, last.entry.byteLength >> 1) },
    { what: "5 bytes of an entry header", bytes: last.entry.slice(0, 5) },
    { what: "zero-filled blocks", bytes: new Uint8Array(4096) },
    { what: "a positions table before its header", bytes: encodePositionsTable(offsets) },
  ];
}

const TORN_TEST_NAME =
  "torn tails a crash can leave in the in-progress file are cut on open and the ledger then " +
  "verifies, while other trailing garbage is reported as corruption";

test(TORN_TEST_NAME, async (t: TestContext) => {
  const rig = await makeRig();
  const run: CrashRun = { sealer: "inline", seed: 4, killDelayMs: 400 };
  const label = `seed ${run.seed}, killed ${run.killDelayMs} ms in`;
  const pem = rig.identities.serviceCertPem;
  try {
    assertKilledAfterCommit(await runAndKill(rig, run), label);
    const writer = LedgerWriter.open(rig.dir, WRITER_OPTIONS);
    // Unsigned entries in an in-progress file, as a crash between two signatures leaves them
    // (the killed child may have stopped right after completing a chunk).
    const replay = replayLedger(rig.dir, run.seed, pem, label);
    const unsigned = { seed: run.seed, view: RESUMED_VIEW, txCount: 30, sign: false };
    const baseLast = await resume(writer, replay, rig.identities, unsigned);
    const file = listLedgerFiles(rig.dir).at(-1)!;
    assert.equal(file.lastSeqno, null, `${label}: ${file.name} is in progress`);
    const baseBytes = new Uint8Array(readFileSync(file.path));

    for (const [k, tail] of possibleTornTails(rig.dir, file.name).entries()) {
      const what = `${label}, ${tail.what} (${tail.bytes.byteLength} bytes)`;
      const dir = join(rig.root, `torn-${k}`);
      cpSync(rig.dir, dir, { recursive: true });
      const path = join(dir, file.name);
      appendFileSync(path, tail.bytes);
      const before = [...readLedger(dir)].at(-1);
      assert.deepEqual(
        before,
        {
          kind: "torn-tail",
          file: file.name,
          offset: baseBytes.byteLength,
          bytesRemaining: tail.bytes.byteLength,
        },
        `${what}: the reader reports a torn tail`,
      );
      const torn = LedgerWriter.open(dir, WRITER_OPTIONS);
      assert.equal(torn.recoveredTornTailBytes, tail.bytes.byteLength, what);
      assert.equal(torn.lastSeqno, baseLast, what);
      assert.ok(equalBytes(new Uint8Array(readFileSync(path)), baseBytes), `${what}: cut exactly`);
      const recovered = replayLedger(dir, run.seed, pem, what);
      assert.equal(recovered.lastSeqno, baseLast, what);
      const signedOptions = { seed: run.seed, view: RESUMED_AGAIN_VIEW, txCount: 60, sign: true };
      const last = await resume(torn, recovered, rig.identities, signedOptions);
      const final = replayLedger(dir, run.seed, pem, `${what}+`);
      assert.equal(final.verifier.lastVerifiedSeqno, last, `${what}: resumed and signed`);
    }
    t.diagnostic(`${label}: ${file.name}, ${baseBytes.byteLength} bytes, last seqno ${baseLast}`);

    const garbage = join(rig.root, "garbage");
    cpSync(rig.dir, garbage, { recursive: true });
    appendFileSync(join(garbage, file.name), new Uint8Array(7).fill(0xde));
    assert.throws(() => LedgerWriter.open(garbage, WRITER_OPTIONS), LedgerError);
    assert.equal(statSync(join(garbage, file.name)).size, baseBytes.byteLength + 7, "left as is");
  } finally {
    rig.cleanup();
  }
});
