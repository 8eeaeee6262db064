// Disaster recovery's ledger side (src/node/recovery-replay.ts) on REAL ledgers: each ledger is
// written by TxPipeline (no consensus) with real Store, TxHistory, LedgerWriter and signatures by
// a node identity whose certificate a service certificate issued (createStartIdentities). The
// first transaction records service.info with the service certificate, as genesis does, so the
// replay can check every signer against the service in force. The ledgers are then altered on
// disk (unsigned suffix, torn entry, flipped byte, a later service's suffix) and replayed;
// the oracle is the builder's own record of what it wrote and the entries read back from disk.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toHex, utf8 } from "../../../../src/base/bytes.js";
import type { Seqno, TxId, View } from "../../../../src/base/ids.js";
import { sha256 } from "../../../../src/crypto/hash.js";
import { GOV_MAPS, setSingleton } from "../../../../src/gov/tables.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../../../src/kv/service-tables.js";
import { Store } from "../../../../src/kv/store.js";
import type { SnapshotMap } from "../../../../src/kv/snapshot-state.js";
import { compareNames } from "../../../../src/kv/write-set.js";
import { decodeEntry, encodeEntry } from "../../../../src/ledger/entry-format.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { listLedgerFiles, readLedger } from "../../../../src/ledger/io/ledger-reader.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { findSignature } from "../../../../src/ledger/signature.js";
import { encodeSnapshot, snapshotDigest } from "../../../../src/ledger/snapshot.js";
import {
  createStartIdentities,
  type StartIdentities,
} from "../../../../src/node/startup/start-identities.js";
import {
  type PublicReplay,
  RecoveryReplayError,
  RecoveryReplayErrorCode,
  type RecoverySnapshot,
  replayPrivate,
  replayPublic,
  setAsideLedgerAfter,
} from "../../../../src/node/recovery/recovery-replay.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import {
  PRIVATE_MAP,
  privateValue,
  PUBLIC_MAP,
  publicValue,
  txKey,
  txWriteSet,
} from "../../../helpers/ledger-fixture.js";
import { tempDir } from "../../../helpers/pki.js";

const VIEW = 3 as View;
/** The view history of a ledger written in VIEW alone: views 1, 2 and 3 start at seqno 1. */
const SNAPSHOT_VIEW_HISTORY = [1, 1, 1] as Seqno[];
const CHUNK_BYTES = 2048;
const serviceA = createStartIdentities({ now: new Date() });
const serviceB = createStartIdentities({ now: new Date() });

/**
 * Writes a ledger the way a service does, one pipeline per service identity over the same store,
 * history and directory. App transaction i writes txKey(i) to a public and a private map.
 */
class LedgerBuilder {
  readonly dir: string;
  readonly cleanup: () => void;
  readonly secrets = new LedgerSecrets(new Uint8Array(randomBytes(32)));
  readonly store = new Store();
  readonly history = new TxHistory(this.secrets);
  /** Seqno of app transaction i. */
  readonly seqnoOfTx = new Map<number, number>();
  private pipeline: TxPipeline | null = null;
  private nextTx = 1;

  /** Chunks complete at the first signature past this size. */
  constructor(private readonly chunkSizeBytes = CHUNK_BYTES) {
    ({ dir: this.dir, cleanup: this.cleanup } = tempDir("consortia-recovery-replay-"));
  }

  /** Starts writing as `ids`' node (after any earlier service's pipeline closed). */
  open(ids: StartIdentities, sigTxInterval = 3): this {
    assert.equal(this.pipeline, null, "close the previous pipeline first");
    this.pipeline = new TxPipeline({
      store: this.store,
      history: this.history,
      ledger: LedgerWriter.open(this.dir, { chunkSizeBytes: this.chunkSizeBytes }),
      identity: ids.node,
      options: {
        view: VIEW,
        sigTxInterval,
        sigMsInterval: Number.MAX_SAFE_INTEGER,
        conflictRetriesMax: 1,
      },
      nowMs: 0,
    });
    return this;
  }

  private get p(): TxPipeline {
    assert.ok(this.pipeline !== null, "open a pipeline first");
    return this.pipeline;
  }

  /** service.info with `certPem` (what genesis and a recovery's start transaction write). */
  async serviceInfo(certPem: string, recoveryCount = 0): Promise<number> {
    const outcome = await this.p.execute((tx) =>
      setSingleton(tx, GOV_MAPS.serviceInfo, {
        cert: certPem,
        status: "Open",
        recovery_count: recoveryCount,
        service_data: null,
      }),
    );
    assert.equal(outcome.kind, "committed");
    return outcome.kind === "committed" ? outcome.txId.seqno : -1;
  }

  /** `count` app transactions; returns their tx numbers. */
  async txs(count: number): Promise<number[]> {
    const numbers: number[] = [];
    for (let k = 0; k < count; k++) {
      const i = this.nextTx++;
      const outcome = await this.p.execute((tx) => {
        tx.rw(PUBLIC_MAP).set(txKey(i), publicValue(i));
        tx.rw(PRIVATE_MAP).set(txKey(i), privateValue(i));
      });
      assert.equal(outcome.kind, "committed", `tx ${i}`);
      if (outcome.kind === "committed") this.seqnoOfTx.set(i, outcome.txId.seqno);
      numbers.push(i);
    }
    return numbers;
  }

  /** One transaction writing `value` to public map `map` (singleton key). */
  async write(map: string, value: Uint8Array): Promise<number> {
    const outcome = await this.p.execute((tx) => tx.rw(map).set(SINGLETON_KEY_BYTES, value));
    assert.equal(outcome.kind, "committed");
    return outcome.kind === "committed" ? outcome.txId.seqno : -1;
  }

  signature(): TxId {
    return this.p.emitSignature();
  }

  /** Signs what is unsigned and closes the ledger. */
  async close(): Promise<void> {
    await this.p.close();
    this.pipeline = null;
  }

  /** Appends `count` app transactions nobody signs (a crashed primary's suffix). */
  appendUnsigned(count: number): number[] {
    assert.equal(this.pipeline, null, "close the pipeline first");
    const ledger = LedgerWriter.open(this.dir, { chunkSizeBytes: this.chunkSizeBytes });
    const numbers: number[] = [];
    for (let k = 0; k < count; k++) {
      const i = this.nextTx++;
      const txId: TxId = { view: VIEW, seqno: (ledger.lastSeqno + 1) as Seqno };
      const commitEvidenceDigest = sha256(this.secrets.commitEvidence(txId));
      const entry = encodeEntry(
        { txId, writeSet: txWriteSet(i), commitEvidenceDigest },
        this.secrets,
      );
      ledger.append(entry, { seqno: txId.seqno, isSignature: false });
      this.seqnoOfTx.set(i, txId.seqno);
      numbers.push(i);
    }
    ledger.close();
    return numbers;
  }
}

interface DiskEntry {
  readonly seqno: number;
  readonly file: string;
  readonly offset: number;
  readonly bytes: Uint8Array;
  readonly view: number;
  /** The root a signature entry signs, or null. */
  readonly signedRoot: string | null;
}

function readDisk(dir: string): DiskEntry[] {
  const out: DiskEntry[] = [];
  for (const item of readLedger(dir)) {
    if (item.kind !== "entry") continue;
    const entry = decodeEntry(item.entry);
    out.push({
      seqno: item.seqno,
      file: item.file,
      offset: item.offset,
      bytes: item.entry.slice(),
      view: entry.view,
      signedRoot: findSignature(entry.publicMaps)?.root ?? null,
    });
  }
  return out;
}

function signatureSeqnos(entries: readonly DiskEntry[]): number[] {
  return entries.filter((e) => e.signedRoot !== null).map((e) => e.seqno);
}

/**
 * replayPublic on the node thread and with two hashing workers: both must give the same result,
 * or fail with the same error (rethrown).
 */
async function replay(
  b: LedgerBuilder,
  previousServiceCertPem: string,
  snapshot?: RecoverySnapshot,
): Promise<{ result: PublicReplay; log: string[] }> {
  const run = async (workers: number) => {
    const log: string[] = [];
    try {
      const result = await replayPublic({
        workers,
        ledgerDir: b.dir,
        previousServiceCertPem,
        secrets: new LedgerSecrets(new Uint8Array(randomBytes(32))),
        snapshot,
        log: (line) => log.push(line),
      });
      return { result, log };
    } catch (e) {
      return { error: e as Error, log };
    }
  };
  const inline = await run(0);
  const parallel = await run(2);
  if ("error" in inline) {
    assert.ok("error" in parallel, "the parallel replay fails too");
    assert.equal(parallel.error.message, inline.error.message);
    throw inline.error;
  }
  assert.ok("result" in parallel, `the parallel replay succeeds too: ${String(parallel.error)}`);
  const summary = (r: PublicReplay) => ({
    last: r.lastSignedSeqno,
    view: r.lastView,
    root: r.lastSignedRoot,
    dropped: r.droppedEntries,
    entries: r.entries.length,
    tree: toHex(r.history.tree.root()),
    seqno: r.store.seqno,
  });
  assert.deepEqual(summary(parallel.result), summary(inline.result));
  assert.deepEqual(parallel.log, inline.log);
  return inline;
}

/** assert.throws matcher for a RecoveryReplayError with `code` and, when given, its location. */
function replayError(
  code: RecoveryReplayErrorCode,
  at: { seqno?: number; file?: string; offset?: number } = {},
): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof RecoveryReplayError, `a RecoveryReplayError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const [k, v] of Object.entries(at)) {
      assert.equal((e.type as Record<string, unknown>)[k], v, `${k} of: ${e.message}`);
    }
    if (at.seqno !== undefined) assert.match(e.message, new RegExp(`seqno ${at.seqno}\\b`));
    if (at.file !== undefined) assert.ok(e.message.includes(at.file), e.message);
    if (at.offset !== undefined) assert.match(e.message, new RegExp(`offset ${at.offset}\\b`));
    return true;
  };
}

function publicOf(store: Store, i: number): Uint8Array | undefined {
  return store.get(PUBLIC_MAP, txKey(i));
}

/** Genesis then `txCount` app transactions under service A, closed (all signed). */
async function cleanLedger(txCount: number, chunkSizeBytes?: number): Promise<LedgerBuilder> {
  const ids = await serviceA;
  const b = new LedgerBuilder(chunkSizeBytes).open(ids);
  await b.serviceInfo(ids.serviceCertPem);
  await b.txs(txCount);
  await b.close();
  return b;
}

test("a clean ledger replays whole: public writes, root, entries, views", async () => {
  const ids = await serviceA;
  const b = await cleanLedger(20);
  try {
    const disk = readDisk(b.dir);
    const signatures = signatureSeqnos(disk);
    assert.ok(listLedgerFiles(b.dir).length > 2, "the ledger spans several files");
    const last = disk.at(-1)!;
    assert.equal(signatures.at(-1), last.seqno, "close signed the end");
    const progress: number[] = [];
    const log: string[] = [];
    const result = await replayPublic({
      ledgerDir: b.dir,
      previousServiceCertPem: ids.serviceCertPem,
      secrets: new LedgerSecrets(new Uint8Array(randomBytes(32))),
      log: (line) => log.push(line),
      onProgress: (seqno) => progress.push(seqno),
    });
    assert.equal(result.lastSignedSeqno, last.seqno);
    assert.equal(result.lastView, VIEW);
    assert.equal(result.lastSignedRoot, last.signedRoot);
    assert.equal(result.droppedEntries, 0);
    assert.deepEqual(result.base, { seqno: 0, view: 0, viewHistory: [] });
    // The recomputed tree is the writer's tree, and its root at the last signature is the one
    // the signature signed (over leaf 0 and seqnos 1..S-1: a tree of S leaves).
    assert.equal(toHex(result.history.tree.root()), toHex(b.history.tree.root()));
    assert.equal(result.history.lastSeqno, last.seqno);
    assert.equal(toHex(result.history.tree.rootAt(last.seqno)), last.signedRoot);
    // Raft entries: every entry, in order, with its view, payload and signature flag.
    assert.equal(result.entries.length, disk.length);
    result.entries.forEach((e, k) => {
      const d = disk[k]!;
      assert.equal(e.seqno, d.seqno);
      assert.equal(e.view, d.view);
      assert.equal(e.isSignature, d.signedRoot !== null, `signature flag of ${d.seqno}`);
      assert.deepEqual(e.payload, d.bytes);
    });
    // The store: every public write, compacted at the end; no private map.
    assert.equal(result.store.seqno, last.seqno);
    assert.equal(result.store.compactedSeqno, last.seqno);
    for (let i = 1; i <= 20; i++) {
      assert.deepEqual(publicOf(result.store, i), publicValue(i), `public write of tx ${i}`);
      assert.equal(result.store.lastWriteSeqno(PUBLIC_MAP, txKey(i)), b.seqnoOfTx.get(i));
    }
    assert.equal(result.store.get(PRIVATE_MAP, txKey(1)), undefined);
    assert.ok(!result.store.mapNames().includes(PRIVATE_MAP));
    assert.ok(result.store.mapNames().includes(SERVICE_TABLES.serviceInfo));
    assert.equal(progress.at(-1), last.seqno, "progress reaches the end");
    assert.deepEqual(log, [], "nothing dropped or set aside");
  } finally {
    b.cleanup();
  }
});

test("an unsigned suffix and a torn last entry are dropped", async () => {
  const ids = await serviceA;
  const b = await cleanLedger(8);
  try {
    const lastSigned = readDisk(b.dir).at(-1)!;
    const tail = b.appendUnsigned(3);
    const disk = readDisk(b.dir);
    assert.equal(disk.length, lastSigned.seqno + 3);
    // Tear the last entry: cut its file in the middle of it.
    const torn = disk.at(-1)!;
    const lastFile = listLedgerFiles(b.dir).at(-1)!;
    assert.equal(lastFile.lastSeqno, null, "the tail is in the in-progress file");
    assert.equal(lastFile.name, torn.file);
    truncateSync(lastFile.path, torn.offset + Math.floor(torn.bytes.byteLength / 2));
    const { result, log } = await replay(b, ids.serviceCertPem);
    assert.equal(result.lastSignedSeqno, lastSigned.seqno);
    assert.equal(result.lastSignedRoot, lastSigned.signedRoot);
    assert.equal(result.droppedEntries, 3, "two whole unsigned entries and the torn one");
    assert.equal(result.entries.length, lastSigned.seqno);
    assert.equal(result.store.seqno, lastSigned.seqno);
    assert.equal(result.history.lastSeqno, lastSigned.seqno);
    assert.equal(toHex(result.history.tree.rootAt(lastSigned.seqno)), lastSigned.signedRoot);
    for (const i of tail) assert.equal(publicOf(result.store, i), undefined, `tx ${i} dropped`);
    assert.deepEqual(publicOf(result.store, 8), publicValue(8));
    assert.ok(
      log.some((l) => l.includes("torn")),
      log.join("\n"),
    );
    assert.ok(
      log.some((l) => l.includes("dropping 2 entries")),
      log.join("\n"),
    );
  } finally {
    b.cleanup();
  }
});

test("a torn entry right after the last signature is the only one dropped", async () => {
  const ids = await serviceA;
  const b = await cleanLedger(5);
  try {
    const lastSigned = readDisk(b.dir).at(-1)!;
    b.appendUnsigned(1);
    const torn = readDisk(b.dir).at(-1)!;
    truncateSync(join(b.dir, torn.file), torn.offset + 5);
    const { result } = await replay(b, ids.serviceCertPem);
    assert.equal(result.lastSignedSeqno, lastSigned.seqno);
    assert.equal(result.droppedEntries, 1);
  } finally {
    b.cleanup();
  }
});

test("a flipped byte in a covered entry: InvalidLedger at the signature covering it", async () => {
  const ids = await serviceA;
  const b = await cleanLedger(12);
  try {
    const disk = readDisk(b.dir);
    const signatures = signatureSeqnos(disk);
    const altered = b.seqnoOfTx.get(4)!;
    const covering = disk.find((d) => d.signedRoot !== null && d.seqno > altered)!;
    assert.ok(covering.seqno < signatures.at(-1)!, "not the last signature");
    // Change one character of tx 4's public value in its file.
    const entry = disk.find((d) => d.seqno === altered)!;
    const path = join(b.dir, entry.file);
    const bytes = readFileSync(path);
    const marker = Buffer.from("<public value of tx 4>");
    const at = bytes.indexOf(marker, entry.offset);
    assert.ok(at > entry.offset && at < entry.offset + entry.bytes.byteLength, "marker found");
    bytes[at + 1] = bytes[at + 1]! ^ 0x20; // "p" -> "P"
    writeFileSync(path, bytes);
    await assert.rejects(
      () => replay(b, ids.serviceCertPem),
      replayError(RecoveryReplayErrorCode.InvalidLedger, {
        seqno: covering.seqno,
        file: covering.file,
        offset: covering.offset,
      }),
    );
  } finally {
    b.cleanup();
  }
});

test("a flipped byte in a signature's own signature bytes is InvalidLedger there", async () => {
  const ids = await serviceA;
  const b = await cleanLedger(6);
  try {
    const disk = readDisk(b.dir);
    const sig = disk.find((d) => d.signedRoot !== null && d.seqno > 2)!;
    // The signature value is JSON with "sig":"<base64>": alter a character inside it.
    const path = join(b.dir, sig.file);
    const bytes = readFileSync(path);
    const at = bytes.indexOf(Buffer.from('"sig":"'), sig.offset) + 10;
    assert.ok(at > sig.offset && at < sig.offset + sig.bytes.byteLength, "sig field found");
    bytes[at] = bytes[at] === 0x41 ? 0x42 : 0x41; // another base64 letter
    writeFileSync(path, bytes);
    await assert.rejects(
      () => replay(b, ids.serviceCertPem),
      replayError(RecoveryReplayErrorCode.InvalidLedger, {
        seqno: sig.seqno,
        file: sig.file,
        offset: sig.offset,
      }),
    );
  } finally {
    b.cleanup();
  }
});

test("another service's certificate as previous identity: WrongPreviousIdentity", async () => {
  const other = await serviceB;
  const b = await cleanLedger(4);
  try {
    await assert.rejects(
      () => replay(b, other.serviceCertPem),
      replayError(RecoveryReplayErrorCode.WrongPreviousIdentity),
    );
  } finally {
    b.cleanup();
  }
});

test("signatures by a node the service in force did not issue are InvalidLedger", async () => {
  const a = await serviceA;
  const other = await serviceB;
  // service.info says A, but B's node signs.
  const b = new LedgerBuilder().open(other);
  try {
    await b.serviceInfo(a.serviceCertPem);
    await b.txs(4);
    await b.close();
    const first = readDisk(b.dir).find((d) => d.signedRoot !== null)!;
    for (const previous of [a.serviceCertPem, other.serviceCertPem]) {
      await assert.rejects(
        () => replay(b, previous),
        replayError(RecoveryReplayErrorCode.InvalidLedger, {
          seqno: first.seqno,
          file: first.file,
          offset: first.offset,
        }),
      );
    }
  } finally {
    b.cleanup();
  }
});

test("a signature before service.info: InvalidLedger; no signature: NothingSigned", async () => {
  const a = await serviceA;
  const b = new LedgerBuilder().open(a);
  try {
    await b.txs(2);
    await b.close();
    await assert.rejects(
      () => replay(b, a.serviceCertPem),
      replayError(RecoveryReplayErrorCode.InvalidLedger, { seqno: 3 }),
    );
  } finally {
    b.cleanup();
  }
  const unsigned = new LedgerBuilder();
  try {
    unsigned.appendUnsigned(3);
    await assert.rejects(
      () => replay(unsigned, a.serviceCertPem),
      replayError(RecoveryReplayErrorCode.NothingSigned),
    );
  } finally {
    unsigned.cleanup();
  }
});

test("an aborted recovery's suffix under a later identity is set aside", async () => {
  const a = await serviceA;
  const later = await serviceB;
  const b = new LedgerBuilder().open(a);
  try {
    await b.serviceInfo(a.serviceCertPem);
    const underA = await b.txs(5);
    await b.close();
    const lastOfA = readDisk(b.dir).at(-1)!;
    // The aborted recovery: service B's first transaction takes over service.info, then B's
    // node writes and signs.
    b.open(later);
    await b.serviceInfo(later.serviceCertPem, 1);
    const underB = await b.txs(4);
    await b.close();
    const disk = readDisk(b.dir);
    const last = disk.at(-1)!;
    assert.ok(signatureSeqnos(disk).filter((s) => s > lastOfA.seqno).length >= 2);

    const { result, log } = await replay(b, a.serviceCertPem);
    assert.equal(result.lastSignedSeqno, lastOfA.seqno);
    assert.equal(result.lastSignedRoot, lastOfA.signedRoot);
    assert.equal(result.droppedEntries, last.seqno - lastOfA.seqno);
    assert.equal(result.entries.length, lastOfA.seqno);
    assert.ok(
      log.some((l) => l.includes(`setting aside entries ${lastOfA.seqno + 1}..${last.seqno}`)),
      log.join("\n"),
    );
    for (const i of underA) assert.deepEqual(publicOf(result.store, i), publicValue(i));
    for (const i of underB) assert.equal(publicOf(result.store, i), undefined, `tx ${i}`);
    const info = GOV_MAPS.serviceInfo.codec.decode(
      result.store.get(SERVICE_TABLES.serviceInfo, SINGLETON_KEY_BYTES)!,
    );
    assert.equal(info.cert, a.serviceCertPem);
    assert.equal(info.recovery_count, 0);

    // Recovering B's ledger instead: everything replays, across the change of identity.
    const whole = await replay(b, later.serviceCertPem);
    assert.equal(whole.result.lastSignedSeqno, last.seqno);
    assert.equal(whole.result.droppedEntries, 0);
    assert.ok(!whole.log.some((l) => l.includes("setting aside")), whole.log.join("\n"));
    for (const i of [...underA, ...underB]) {
      assert.deepEqual(publicOf(whole.result.store, i), publicValue(i), `tx ${i}`);
    }
  } finally {
    b.cleanup();
  }
});

for (const workers of [0, 2]) {
  test(`replayPrivate (${workers} workers) returns every private write up to the recovery point`, async () => {
    const b = await cleanLedger(15);
    try {
      const disk = readDisk(b.dir);
      const last = disk.at(-1)!.seqno;
      const store = await replayPrivate({
        workers,
        ledgerDir: b.dir,
        secrets: b.secrets,
        upTo: last as Seqno,
      });
      assert.equal(store.seqno, last);
      assert.equal(store.compactedSeqno, last);
      for (let i = 1; i <= 15; i++) {
        assert.deepEqual(store.get(PRIVATE_MAP, txKey(i)), privateValue(i), `tx ${i}`);
        assert.equal(store.lastWriteSeqno(PRIVATE_MAP, txKey(i)), b.seqnoOfTx.get(i));
      }
      assert.deepEqual(store.mapNames(), [PRIVATE_MAP], "the private domain only");
      // An earlier recovery point: later private writes are not replayed.
      const upTo = b.seqnoOfTx.get(7)!;
      const partial = await replayPrivate({
        workers,
        ledgerDir: b.dir,
        secrets: b.secrets,
        upTo: upTo as Seqno,
      });
      assert.equal(partial.seqno, upTo);
      assert.deepEqual(partial.get(PRIVATE_MAP, txKey(7)), privateValue(7));
      assert.equal(partial.get(PRIVATE_MAP, txKey(8)), undefined);
    } finally {
      b.cleanup();
    }
  });

  test(`replayPrivate (${workers} workers): a wrong key is CannotDecrypt, upTo past the end InvalidLedger`, async () => {
    const b = await cleanLedger(6);
    try {
      const disk = readDisk(b.dir);
      const last = disk.at(-1)!.seqno as Seqno;
      const wrong = new LedgerSecrets(new Uint8Array(randomBytes(32)));
      await assert.rejects(
        () => replayPrivate({ workers, ledgerDir: b.dir, secrets: wrong, upTo: last }),
        replayError(RecoveryReplayErrorCode.CannotDecrypt, {
          seqno: 1,
          file: disk[0]!.file,
          offset: disk[0]!.offset,
        }),
      );
      // Right until a (wrong) rekey at tx 4's seqno: the error names that entry.
      const from = b.seqnoOfTx.get(4)!;
      const rekeyed = LedgerSecrets.fromList([
        ...b.secrets.list(),
        { fromSeqno: from, key: new Uint8Array(32).fill(1) },
      ]);
      const entry = disk.find((d) => d.seqno === from)!;
      await assert.rejects(
        () => replayPrivate({ workers, ledgerDir: b.dir, secrets: rekeyed, upTo: last }),
        replayError(RecoveryReplayErrorCode.CannotDecrypt, {
          seqno: from,
          file: entry.file,
          offset: entry.offset,
        }),
      );
      await assert.rejects(
        () =>
          replayPrivate({
            workers,
            ledgerDir: b.dir,
            secrets: b.secrets,
            upTo: (last + 2) as Seqno,
          }),
        replayError(RecoveryReplayErrorCode.InvalidLedger),
      );
    } finally {
      b.cleanup();
    }
  });
}

test("setAsideLedgerAfter sets later files aside and uncommits the spanning file", async () => {
  // Larger chunks: several signatures per file.
  const b = await cleanLedger(40, 4 * CHUNK_BYTES);
  try {
    const files = listLedgerFiles(b.dir);
    const signatures = signatureSeqnos(readDisk(b.dir));
    // A signature strictly inside a committed file that has files after it.
    const point = signatures.find((s) =>
      files.some(
        (f, k) =>
          k < files.length - 1 && f.committed && f.firstSeqno <= s && s < (f.lastSeqno ?? 0),
      ),
    );
    assert.ok(
      point !== undefined,
      `a signature inside a committed file: ${files.map((f) => f.name)}`,
    );
    const spanning = files.find((f) => f.firstSeqno <= point && point < (f.lastSeqno ?? 0))!;
    const before = files.filter((f) => (f.lastSeqno ?? Infinity) < spanning.firstSeqno);
    const after = files.filter((f) => f.firstSeqno > point);
    assert.ok(after.length > 0);
    const log: string[] = [];
    setAsideLedgerAfter(b.dir, point, (line) => log.push(line));
    const names = readdirSync(b.dir).sort();
    for (const f of after) assert.ok(names.includes(`${f.name}.ignored`), `${f.name} set aside`);
    for (const f of before) assert.ok(names.includes(f.name), `${f.name} kept`);
    const uncommitted = spanning.name.replace(/\.committed$/, "");
    assert.ok(names.includes(uncommitted), `${spanning.name} renamed ${uncommitted}`);
    assert.ok(!names.includes(spanning.name));
    assert.equal(log.length, after.length + 1);
    // The reader no longer sees the set-aside files; the writer opens and truncates there.
    assert.equal(readDisk(b.dir).at(-1)!.seqno, spanning.lastSeqno);
    const writer = LedgerWriter.open(b.dir, { chunkSizeBytes: 4 * CHUNK_BYTES });
    writer.truncate(point);
    assert.equal(writer.lastSeqno, point);
    writer.close();
    const kept = readDisk(b.dir);
    assert.equal(kept.at(-1)!.seqno, point);
    assert.equal(kept.length, point);
    for (const f of after) {
      assert.ok(readdirSync(b.dir).includes(`${f.name}.ignored`), "set-aside files stay");
    }
  } finally {
    b.cleanup();
  }
});

test("setAsideLedgerAfter at a file's last seqno leaves that file committed", async () => {
  const b = await cleanLedger(30);
  try {
    const files = listLedgerFiles(b.dir);
    const first = files[0]!;
    assert.ok(first.committed && first.lastSeqno !== null);
    setAsideLedgerAfter(b.dir, first.lastSeqno, () => {});
    const names = readdirSync(b.dir);
    assert.ok(names.includes(first.name), "still committed");
    for (const f of files.slice(1)) assert.ok(names.includes(`${f.name}.ignored`));
  } finally {
    b.cleanup();
  }
});

/** A ledger with a snapshot at a signature and its evidence (right or `wrongHash`) after it. */
async function ledgerWithSnapshot(
  evidenceHash: "right" | "wrong",
): Promise<{ b: LedgerBuilder; snapshot: RecoverySnapshot }> {
  const ids = await serviceA;
  const b = new LedgerBuilder().open(ids, 1000);
  await b.serviceInfo(ids.serviceCertPem);
  await b.txs(6);
  const at = b.signature();
  // What the snapshotter captures at a signature: the store plus the Merkle tree up to it, the
  // signature's leaf and the view history (every entry is in VIEW: its views start at 1).
  const tree: SnapshotMap = {
    name: SERVICE_TABLES.tree,
    seqno: at.seqno,
    keys: [
      { key: SINGLETON_KEY_BYTES, value: b.history.serialisedTreeForSnapshot(), seqno: at.seqno },
    ],
  };
  // The signature wrote its own tree map (leaves up to seqno - 1): the snapshot's replaces it.
  const stored = b.store.snapshotMaps().filter((m) => m.name !== SERVICE_TABLES.tree);
  const maps = [...stored, tree].sort((x, y) => compareNames(x.name, y.name));
  const entryBytes = encodeSnapshot(
    {
      seqno: at.seqno,
      hashAtSnapshot: b.history.tree.leaf(b.history.tree.size - 1),
      viewHistory: SNAPSHOT_VIEW_HISTORY,
      maps,
    },
    b.secrets,
  );
  const hash = evidenceHash === "right" ? toHex(snapshotDigest(entryBytes)) : "00".repeat(32);
  const evidenceSeqno = await b.write(
    SERVICE_TABLES.snapshotEvidence,
    utf8(JSON.stringify({ hash, version: at.seqno })),
  );
  await b.txs(4);
  await b.close();
  return {
    b,
    snapshot: { seqno: at.seqno, evidenceSeqno: evidenceSeqno as Seqno, entryBytes },
  };
}

test("a replay from a snapshot whose evidence matches starts at the snapshot", async () => {
  const ids = await serviceA;
  const { b, snapshot } = await ledgerWithSnapshot("right");
  try {
    const last = readDisk(b.dir).at(-1)!;
    const { result } = await replay(b, ids.serviceCertPem, snapshot);
    assert.deepEqual(result.base, {
      seqno: snapshot.seqno,
      view: VIEW,
      viewHistory: SNAPSHOT_VIEW_HISTORY,
    });
    assert.equal(result.lastSignedSeqno, last.seqno);
    assert.equal(result.entries.length, last.seqno - snapshot.seqno);
    assert.equal(result.entries[0]!.seqno, snapshot.seqno + 1);
    assert.equal(toHex(result.history.tree.root()), toHex(b.history.tree.root()));
    for (let i = 1; i <= 10; i++) {
      assert.deepEqual(publicOf(result.store, i), publicValue(i), `tx ${i}`);
    }
    // The private domain: from the snapshot, then the ledger after it.
    const priv = await replayPrivate({
      ledgerDir: b.dir,
      secrets: b.secrets,
      snapshot,
      upTo: result.lastSignedSeqno,
    });
    for (let i = 1; i <= 10; i++) {
      assert.deepEqual(priv.get(PRIVATE_MAP, txKey(i)), privateValue(i), `tx ${i}`);
    }
  } finally {
    b.cleanup();
  }
});

test("a replay from a snapshot whose evidence does not match is InvalidLedger", async () => {
  const ids = await serviceA;
  const { b, snapshot } = await ledgerWithSnapshot("wrong");
  try {
    const evidence = readDisk(b.dir).find((d) => d.seqno === snapshot.evidenceSeqno)!;
    await assert.rejects(
      () => replay(b, ids.serviceCertPem, snapshot),
      replayError(RecoveryReplayErrorCode.InvalidLedger, {
        seqno: evidence.seqno,
        file: evidence.file,
        offset: evidence.offset,
      }),
    );
  } finally {
    b.cleanup();
  }
});
