// TxPipeline (src/node/tx-pipeline.ts) in replicated mode: `deps.consensus` is a recording fake
// ConsensusSink, everything else is real (Store, TxHistory, LedgerWriter on a temp dir, the
// inline sealer). Oracles: the ledger files read back with readLedger/listLedgerFiles, the
// entries' own headers and public maps (decodeEntry, findSignature), the store's contents, and
// a second pipeline (a follower) that must rebuild the primary's state from what the sink got.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../../../src/base/assert.js";
import { utf8, toHex } from "../../../../src/base/bytes.js";
import type { NodeId, Seqno, TxId, View } from "../../../../src/base/ids.js";
import type { RaftEntry } from "../../../../src/consensus/types.js";
import { Store } from "../../../../src/kv/store.js";
import type { WriteSet } from "../../../../src/kv/write-set.js";
import { decodeEntry } from "../../../../src/ledger/entry-format.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { listLedgerFiles, readLedger } from "../../../../src/ledger/io/ledger-reader.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { findSignature } from "../../../../src/ledger/signature.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import {
  ReplicatedEntryError,
  ReplicatedEntryErrorCode,
} from "../../../../src/node/pipeline/replicated-entry-error.js";
import { TxPipeline, type ConsensusSink } from "../../../../src/node/pipeline/tx-pipeline.js";
import { makeSealer } from "../../../helpers/ledger-fixture.js";
import { tempDir } from "../../../helpers/pki.js";

const VIEW = 4 as View;
const MAP = "records";
const PUBLIC_MAP = "public:records";
/** Writes to this map create a configuration (the fake sink's rule). */
const CONFIG_MAP = "public:nodes";
const CONFIGURATION = ["a", "b"] as unknown as readonly NodeId[];
const SECRET = new Uint8Array(32).fill(9);
const identitiesPromise = createStartIdentities({ now: new Date() });

/** A consensus driver stand-in: records every replicate call; canWrite is switchable. */
class RecordingSink implements ConsensusSink {
  readonly received: RaftEntry[] = [];
  writable: boolean;

  constructor(writable: boolean) {
    this.writable = writable;
  }

  replicate(entries: readonly RaftEntry[]): void {
    this.received.push(...entries);
  }

  canWrite(): boolean {
    return this.writable;
  }

  configurationOf(writeSet: WriteSet): readonly NodeId[] | undefined {
    return writeSet.maps.some((m) => m.name === CONFIG_MAP) ? CONFIGURATION : undefined;
  }
}

interface Rig {
  readonly pipeline: TxPipeline;
  readonly store: Store;
  readonly history: TxHistory;
  readonly ledger: LedgerWriter;
  readonly sink: RecordingSink;
  readonly dir: string;
  cleanup(): Promise<void>;
}

interface RigOptions {
  readonly canWrite?: boolean;
  readonly secretKey?: Uint8Array;
  readonly chunkSizeBytes?: number;
  readonly maxUncommittedTxs?: number;
  readonly sigMsInterval?: number;
  readonly onWork?: () => void;
}

async function makeRig(options: RigOptions = {}): Promise<Rig> {
  const ids = await identitiesPromise;
  const { dir, cleanup } = tempDir("consortia-pipeline-consensus-");
  const secrets = new LedgerSecrets(options.secretKey ?? SECRET);
  const store = new Store();
  const history = new TxHistory(secrets);
  const ledger = LedgerWriter.open(dir, { chunkSizeBytes: options.chunkSizeBytes ?? 1 << 20 });
  const sink = new RecordingSink(options.canWrite ?? true);
  const pipeline = new TxPipeline({
    store,
    history,
    ledger,
    sealer: makeSealer("inline", secrets),
    identity: ids.node,
    options: {
      view: VIEW,
      sigTxInterval: 1000,
      sigMsInterval: options.sigMsInterval ?? Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
      maxUncommittedTxs: options.maxUncommittedTxs,
    },
    nowMs: 0,
    consensus: sink,
    onWork: options.onWork,
  });
  return {
    pipeline,
    store,
    history,
    ledger,
    sink,
    dir,
    cleanup: async () => {
      try {
        await pipeline.close();
      } finally {
        cleanup();
      }
    },
  };
}

function key(i: number): Uint8Array {
  return utf8(`k${String(i).padStart(5, "0")}`);
}

/** Transaction i: a private and a public write, plus a write to CONFIG_MAP if `config`. */
function write(p: TxPipeline, i: number, config = false): TxId {
  const outcome = p.execute((tx) => {
    tx.rw(MAP).set(key(i), utf8(`private ${i}`));
    tx.rw(PUBLIC_MAP).set(key(i), utf8(`public ${i}`));
    if (config) tx.rw(CONFIG_MAP).set(key(i), utf8("trusted"));
  });
  assert.equal(outcome.kind, "committed", `tx ${i}`);
  return outcome.kind === "committed" ? outcome.txId : { view: 0 as View, seqno: 0 as Seqno };
}

/** Every ledger entry by seqno (after flushing the writer's buffer to the file). */
function ledgerBytes(rig: Rig): Map<number, Uint8Array> {
  rig.pipeline.flushLedger();
  const out = new Map<number, Uint8Array>();
  for (const item of readLedger(rig.dir)) {
    assert.equal(item.kind, "entry", "no torn tail");
    if (item.kind === "entry") out.set(item.seqno, item.entry.slice());
  }
  return out;
}

/** Every map of the store as sorted [hex key, hex value] pairs. */
function storeContents(store: Store): Record<string, [string, string][]> {
  const out: Record<string, [string, string][]> = {};
  for (const name of store.mapNames().sort()) {
    const pairs: [string, string][] = [];
    for (const [k, v] of store.entries(name)) pairs.push([toHex(k), toHex(v)]);
    out[name] = pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

test("a primary replicates every entry once, in order, with its view, kind, bytes and configuration", async () => {
  // 1 KiB chunks: each signature (~1.3 KiB with its cert) completes the chunk it ends.
  const rig = await makeRig({ chunkSizeBytes: 1024 });
  try {
    const { pipeline: p, sink } = rig;
    const uncommitted = { view: 0, seqno: 0 };
    write(p, 1);
    write(p, 2, true);
    assert.equal(sink.received.length, 0, "entries reach consensus once sealed and recorded");
    assert.equal(p.tick(1), false, "no signature before sigMsInterval");
    assert.deepEqual(
      sink.received.map((e) => e.seqno),
      [1, 2],
    );
    const sig1 = p.emitSignature();
    assert.deepEqual(sig1, { view: VIEW, seqno: 3 });
    // Written in view 4 but recorded only after the view changes: they keep their txIds' view.
    assert.deepEqual(write(p, 4), { view: VIEW, seqno: 4 });
    p.setView(6 as View);
    assert.deepEqual(write(p, 5, true), { view: 6, seqno: 5 });
    const sig2 = p.emitSignature();
    assert.deepEqual(sig2, { view: 6, seqno: 6 });
    // Enough writes for the pipeline to poll the sealer from execute itself.
    for (let i = 7; i <= 76; i++) write(p, i, i === 40);
    const sig3 = p.emitSignature();
    assert.deepEqual(sig3, { view: 6, seqno: 77 });

    // Exactly once, in seqno order.
    assert.deepEqual(
      sink.received.map((e) => e.seqno),
      range(1, 77),
    );
    const onDisk = ledgerBytes(rig);
    assert.deepEqual([...onDisk.keys()], range(1, 77));
    const configSeqnos = [2, 5, 40];
    const signatureSeqnos = [3, 6, 77];
    for (const e of sink.received) {
      const s = e.seqno;
      assert.equal(e.view, s === 4 || s <= 3 ? VIEW : 6, `view of ${s}`);
      assert.equal(e.isSignature, signatureSeqnos.includes(s), `isSignature of ${s}`);
      assert.deepEqual(e.configuration, configSeqnos.includes(s) ? CONFIGURATION : undefined);
      assert.deepEqual(e.payload, onDisk.get(s), `payload of ${s} is the ledger's bytes`);
      const decoded = decodeEntry(e.payload);
      assert.equal(decoded.seqno, s);
      assert.equal(decoded.view, e.view);
      assert.equal(findSignature(decoded.publicMaps) !== null, e.isSignature);
      const touchesConfig = decoded.publicMaps.some((m) => m.name === CONFIG_MAP);
      assert.equal(touchesConfig, e.configuration !== undefined, `configuration of ${s}`);
    }

    // Nothing is committed until consensus says so.
    assert.deepEqual(p.commitTxId, uncommitted);
    const before = listLedgerFiles(rig.dir);
    assert.deepEqual(
      before.map((f) => f.name),
      ["ledger_1-3", "ledger_4-6", "ledger_7-77"],
    );
    assert.ok(before.every((f) => !f.committed));
    const sig2Value = findSignature(decodeEntry(onDisk.get(6)!).publicMaps);
    assert.equal(sig2Value?.commit_seqno, 0, "a signature records the commit point it knew");

    p.commitTo(sig2);
    assert.deepEqual(p.commitTxId, sig2);
    assert.deepEqual(
      listLedgerFiles(rig.dir).map((f) => f.name),
      ["ledger_1-3.committed", "ledger_4-6.committed", "ledger_7-77"],
    );
    p.commitTo(sig1);
    assert.deepEqual(p.commitTxId, sig2, "an older commit point is ignored");
    p.commitTo(sig3);
    assert.deepEqual(p.commitTxId, sig3);
    assert.ok(listLedgerFiles(rig.dir).every((f) => f.committed));
    assert.equal(rig.ledger.committedSeqno, 77);
  } finally {
    await rig.cleanup();
  }
});

test("a node that cannot write refuses writing handlers but still runs read-only ones", async () => {
  const rig = await makeRig();
  try {
    const { pipeline: p, sink, store } = rig;
    write(p, 1);
    sink.writable = false;
    let runs = 0;
    const refused = p.execute((tx) => {
      runs++;
      tx.rw(MAP).set(key(2), utf8("refused"));
      return "wrote";
    });
    assert.deepEqual(refused, { kind: "not-primary" });
    assert.equal(runs, 1, "the handler ran once and was not retried");
    assert.equal(store.seqno, 1);
    assert.equal(store.get(MAP, key(2)), undefined);
    const read = p.execute((tx) => utf8(`${tx.ro(MAP).get(key(1)) !== undefined}`));
    assert.deepEqual(read, { kind: "read-only", readSeqno: 1, result: utf8("true") });
    // A backup never signs, however long its unsigned suffix has waited.
    assert.equal(p.tick(Number.MAX_SAFE_INTEGER), false);
    assert.deepEqual(
      sink.received.map((e) => e.seqno),
      [1],
    );
    assert.equal(store.seqno, 1);
  } finally {
    await rig.cleanup();
  }
});

test("maxUncommittedTxs refuses writes while that many transactions await commit", async () => {
  const rig = await makeRig({ maxUncommittedTxs: 3 });
  try {
    const { pipeline: p, store } = rig;
    for (let i = 1; i <= 3; i++) write(p, i);
    const refused = p.execute((tx) => tx.rw(MAP).set(key(4), utf8("too many")));
    assert.deepEqual(refused, { kind: "too-many-pending", pending: 3 });
    assert.equal(store.seqno, 3);
    assert.equal(store.get(MAP, key(4)), undefined);
    const read = p.execute((tx) => tx.ro(MAP).get(key(1)));
    assert.equal(read.kind, "read-only", "reads are not back-pressured");
    const sig = p.emitSignature();
    assert.deepEqual(
      p.execute((tx) => tx.rw(MAP).set(key(4), utf8("still"))),
      { kind: "too-many-pending", pending: 4 },
      "a signature alone commits nothing",
    );
    p.commitTo(sig);
    assert.deepEqual(write(p, 4), { view: VIEW, seqno: 5 });
    assert.deepEqual(store.get(MAP, key(4)), utf8("private 4"));
  } finally {
    await rig.cleanup();
  }
});

/** A primary with two signed batches (one with a configuration) and an unsigned tail. */
async function primaryWithHistory(offset = 0): Promise<Rig> {
  const rig = await makeRig({ chunkSizeBytes: 1024 });
  const p = rig.pipeline;
  for (let i = 1; i <= 5; i++) write(p, i + offset, i === 3);
  p.emitSignature(); // 6
  p.setView(7 as View);
  for (let i = 6; i <= 9; i++) write(p, i + offset);
  p.emitSignature(); // 11
  write(p, 10 + offset);
  write(p, 11 + offset);
  p.tick(1); // records the tail: 12, 13
  assert.equal(rig.sink.received.length, 13);
  return rig;
}

test("a follower fed the primary's entries ends with the same store, Merkle root and ledger", async () => {
  const primary = await primaryWithHistory();
  const follower = await makeRig({ canWrite: false, chunkSizeBytes: 1024 });
  try {
    const entries = primary.sink.received;
    follower.pipeline.appendReplicated(entries.slice(0, 4));
    follower.pipeline.appendReplicated(entries.slice(4));
    assert.equal(follower.sink.received.length, 0, "a follower replicates nothing");
    assert.deepEqual(follower.pipeline.lastTxId, primary.pipeline.lastTxId);
    assert.deepEqual(follower.pipeline.lastTxId, { view: 7, seqno: 13 });
    assert.deepEqual(storeContents(follower.store), storeContents(primary.store));
    assert.deepEqual(follower.store.get(MAP, key(11)), utf8("private 11"));
    assert.deepEqual(follower.store.get(CONFIG_MAP, key(3)), utf8("trusted"));
    assert.deepEqual(
      follower.history.rootForNextSignature(),
      primary.history.rootForNextSignature(),
    );
    assert.deepEqual(ledgerBytes(follower), ledgerBytes(primary));
    // Chunks end on the same signatures.
    const names = (r: Rig): string[] => listLedgerFiles(r.dir).map((f) => f.name);
    assert.deepEqual(names(follower), ["ledger_1-6", "ledger_7-11", "ledger_12"]);
    assert.deepEqual(names(follower), names(primary));
    // The follower can commit what consensus commits.
    follower.pipeline.commitTo({ view: 7 as View, seqno: 11 as Seqno });
    assert.deepEqual(follower.pipeline.commitTxId, { view: 7, seqno: 11 });
    assert.equal(follower.ledger.committedSeqno, 11);
  } finally {
    await primary.cleanup();
    await follower.cleanup();
  }
});

test("a follower rejects a signature over a different history and keeps its own", async () => {
  const primary = await primaryWithHistory();
  const other = await primaryWithHistory(100); // same shape, different writes
  const follower = await makeRig({ canWrite: false });
  try {
    const entries = primary.sink.received;
    const foreignSig = other.sink.received[5]!;
    assert.equal(foreignSig.seqno, 6);
    assert.ok(foreignSig.isSignature);
    follower.pipeline.appendReplicated(entries.slice(0, 5));
    const root = toHex(follower.history.rootForNextSignature());
    const ledgerBefore = ledgerBytes(follower);
    assert.throws(
      () => follower.pipeline.appendReplicated([foreignSig]),
      (e: unknown) =>
        e instanceof ReplicatedEntryError &&
        e.code === ReplicatedEntryErrorCode.RootMismatch &&
        e.type.seqno === 6 &&
        /root/.test(e.message),
    );
    assert.equal(follower.history.lastSeqno, 5);
    assert.equal(toHex(follower.history.rootForNextSignature()), root);
    assert.equal(follower.history.signatureAt(6 as Seqno), null);
    assert.equal(follower.store.seqno, 5);
    assert.equal(follower.ledger.lastSeqno, 5);
    assert.deepEqual(ledgerBytes(follower), ledgerBefore);
    // Its state is intact: the genuine continuation still applies.
    follower.pipeline.appendReplicated(entries.slice(5));
    assert.deepEqual(
      follower.history.rootForNextSignature(),
      primary.history.rootForNextSignature(),
    );
  } finally {
    await primary.cleanup();
    await other.cleanup();
    await follower.cleanup();
  }
});

test("a follower with the wrong ledger secret rejects the entries and records none", async () => {
  const primary = await primaryWithHistory();
  const follower = await makeRig({ canWrite: false, secretKey: new Uint8Array(32).fill(7) });
  try {
    assert.throws(
      () => follower.pipeline.appendReplicated(primary.sink.received),
      (e: unknown) =>
        e instanceof ReplicatedEntryError &&
        e.code === ReplicatedEntryErrorCode.CannotDecrypt &&
        /does not decrypt/.test(e.message),
    );
    assert.equal(follower.history.lastSeqno, 0);
    assert.equal(follower.store.seqno, 0);
    assert.equal(follower.ledger.lastSeqno, 0);
  } finally {
    await primary.cleanup();
    await follower.cleanup();
  }
});

test("rollbackTo drops the unsigned suffix from store, history, ledger and pending configurations", async () => {
  const rig = await makeRig();
  try {
    const { pipeline: p, store, history, sink } = rig;
    for (let i = 1; i <= 3; i++) write(p, i);
    const committed = p.emitSignature(); // 4
    p.commitTo(committed);
    write(p, 5);
    write(p, 6);
    const sig = p.emitSignature(); // 7
    assert.deepEqual(sig, { view: VIEW, seqno: 7 });
    const rootAtSig = toHex(history.rootForNextSignature());
    const storeAtSig = storeContents(store);
    write(p, 8);
    write(p, 9);
    p.tick(1); // 8 and 9 are recorded and replicated
    write(p, 10, true); // still with the sealer, its configuration pending
    assert.equal(history.lastSeqno, 9);
    assert.equal(store.seqno, 10);

    p.rollbackTo(sig.seqno);
    assert.equal(store.seqno, 7);
    assert.equal(store.get(MAP, key(8)), undefined);
    assert.equal(store.get(CONFIG_MAP, key(10)), undefined);
    assert.deepEqual(store.get(MAP, key(6)), utf8("private 6"));
    assert.deepEqual(storeContents(store), storeAtSig);
    assert.equal(history.lastSeqno, 7);
    assert.equal(toHex(history.rootForNextSignature()), rootAtSig);
    assert.deepEqual([...ledgerBytes(rig).keys()], range(1, 7));
    assert.deepEqual(p.lastTxId, sig);

    // New transactions reuse the seqnos; the dropped configuration does not resurface.
    const seen = sink.received.length;
    for (let i = 8; i <= 10; i++) assert.equal(write(p, i + 100).seqno, i);
    p.emitSignature();
    const fresh = sink.received.slice(seen);
    assert.deepEqual(
      fresh.map((e) => e.seqno),
      [8, 9, 10, 11],
    );
    for (const e of fresh) assert.equal(e.configuration, undefined, `configuration of ${e.seqno}`);
    assert.deepEqual([...ledgerBytes(rig).keys()], range(1, 11));

    assert.throws(
      () => p.rollbackTo(3 as Seqno),
      (err: unknown) => err instanceof AssertionError && /below commit/.test(err.message),
    );
    assert.equal(store.seqno, 11);
    p.rollbackTo(committed.seqno); // down to the commit point itself is allowed
    assert.equal(store.seqno, 4);
    assert.equal(history.lastSeqno, 4);
    assert.deepEqual([...ledgerBytes(rig).keys()], range(1, 4));
  } finally {
    await rig.cleanup();
  }
});

test("a new ledger secret seals later entries; rolling back its rekey drops it", async () => {
  const primary = await makeRig();
  const follower = await makeRig({ canWrite: false });
  try {
    write(primary.pipeline, 1); // seqno 1
    write(primary.pipeline, 2); // seqno 2: the "rekey" transaction
    const newKey = new Uint8Array(32).fill(0x42);
    primary.pipeline.addLedgerSecret(3 as Seqno, newKey);
    write(primary.pipeline, 3); // seqno 3, sealed with the new secret
    primary.pipeline.emitSignature();
    // A follower without the new secret cannot decrypt seqno 3; with it, it can.
    const entries = primary.sink.received;
    follower.pipeline.appendReplicated(entries.slice(0, 2));
    assert.throws(() => follower.pipeline.appendReplicated(entries.slice(2, 3)), /decrypt/);
    follower.pipeline.addLedgerSecret(3 as Seqno, newKey);
    follower.pipeline.appendReplicated(entries.slice(2));
    assert.deepEqual(follower.store.get(MAP, key(3)), utf8("private 3"));
    assert.equal(follower.history.secrets.secretFor(3 as Seqno).fromSeqno, 3);
    // Rolling back the rekey transaction (seqno 2) forgets the secret it introduced.
    follower.pipeline.rollbackTo(1 as Seqno);
    assert.equal(follower.history.secrets.latest.fromSeqno, 1);
    // Rolling back to the rekey transaction itself keeps it.
    primary.pipeline.rollbackTo(2 as Seqno);
    assert.equal(primary.history.secrets.latest.fromSeqno, 3);
  } finally {
    await primary.cleanup();
    await follower.cleanup();
  }
});

/** Seqnos of the signatures the sink received so far. */
function signatureSeqnos(sink: RecordingSink): number[] {
  return sink.received.filter((e) => e.isSignature).map((e) => e.seqno);
}

test("pump signs as soon as the pipeline drains, at most one signature awaiting commit", async () => {
  let work = 0;
  const rig = await makeRig({ sigMsInterval: 50, onWork: () => work++ });
  try {
    const p = rig.pipeline;
    assert.equal(p.pump(0), false, "nothing to sign");
    write(p, 1);
    assert.ok(work >= 1, "an executed write asks for a pump");
    assert.equal(p.pump(0), true, "a drained pipeline with no signature in flight signs at once");
    assert.deepEqual(signatureSeqnos(rig.sink), [2]);
    write(p, 2);
    write(p, 3);
    assert.equal(p.pump(10), false, "signature 2 awaits commit: the next one waits");
    const before = work;
    p.commitTo({ view: VIEW, seqno: 2 as Seqno });
    assert.ok(work > before, "a commit with unsigned transactions asks for a pump");
    assert.equal(p.pump(11), true, "signature 2 committed: sign what came since");
    assert.deepEqual(signatureSeqnos(rig.sink), [2, 5]);
    write(p, 4);
    assert.equal(p.pump(12), false);
    assert.equal(p.pump(61), true, "the interval signs even with a signature in flight");
    assert.deepEqual(signatureSeqnos(rig.sink), [2, 5, 7]);
    assert.equal(p.pump(200), false, "no unsigned transaction, no signature");
  } finally {
    await rig.cleanup();
  }
});

test("pump drains the sealer worker to sign; its batch notices bring later entries to consensus", async () => {
  const ids = await identitiesPromise;
  const { dir, cleanup } = tempDir("consortia-pipeline-pump-");
  const secrets = new LedgerSecrets(SECRET);
  const store = new Store();
  const history = new TxHistory(secrets);
  const ledger = LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 });
  const sink = new RecordingSink(true);
  let sealed = 0;
  const pipeline = new TxPipeline({
    store,
    history,
    ledger,
    sealer: makeSealer("worker", secrets, { onSealed: () => sealed++ }),
    identity: ids.node,
    options: { view: VIEW, sigTxInterval: 1000, sigMsInterval: 1e9, conflictRetriesMax: 3 },
    nowMs: 0,
    consensus: sink,
  });
  try {
    write(pipeline, 1);
    assert.equal(pipeline.pump(0), true, "a due signature waits for the write being sealed");
    write(pipeline, 3);
    assert.equal(pipeline.pump(1), false, "signature 2 awaits commit");
    const deadline = Date.now() + 10_000;
    while (sealed < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(sealed, 2, "the worker announced each batch");
    assert.equal(
      pipeline.pump(2),
      false,
      "still awaiting commit, but the sealed entry is recorded",
    );
    assert.deepEqual(
      sink.received.map((e) => [e.seqno, e.isSignature]),
      [
        [1, false],
        [2, true],
        [3, false],
      ],
    );
  } finally {
    await pipeline.close();
    cleanup();
  }
});
