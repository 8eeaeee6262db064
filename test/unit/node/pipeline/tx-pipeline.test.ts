// TxPipeline (src/node/tx-pipeline.ts) through its public API only (constructor deps, execute,
// tick, emitSignature, close, receipt, commitTxId, lastTxId), with real Store, TxHistory,
// LedgerWriter and sealers, on a temporary ledger directory. The ledger files are the oracle:
// they are read back with readLedger + decodeEntry + findSignature to find where signatures
// landed, what they claim as commit point, and whether every file that is wholly committed
// carries `.committed`; LedgerVerifier checks the finished ledger and verifyReceipt the
// receipts. Conflicts are provoked from inside a handler by committing a competing write.
// Pipeline calls are awaited, so the tests hold whether they return values or promises.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { utf8, toHex } from "../../../../src/base/bytes.js";
import type { Seqno, View } from "../../../../src/base/ids.js";
import { Store } from "../../../../src/kv/store.js";
import { decodeEntry } from "../../../../src/ledger/entry-format.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { listLedgerFiles, readLedger } from "../../../../src/ledger/io/ledger-reader.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { LedgerVerifier } from "../../../../src/ledger/ledger-verifier.js";
import { verifyReceipt } from "../../../../src/ledger/receipt.js";
import { findSignature, type SignatureValue } from "../../../../src/ledger/signature.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import type { EntrySealer } from "../../../../src/node/pipeline/sealer.js";
import { TxPipeline, type TxPipelineOptions } from "../../../../src/node/pipeline/tx-pipeline.js";
import { makeSealer, type SealerKind } from "../../../helpers/ledger-fixture.js";
import { tempDir } from "../../../helpers/pki.js";

const VIEW = 4 as View;
const MAP = "records";
const PUBLIC_MAP = "public:records";
const identitiesPromise = createStartIdentities({ now: new Date() });

interface Rig {
  readonly pipeline: TxPipeline;
  readonly store: Store;
  readonly ledger: LedgerWriter;
  readonly sealer: EntrySealer;
  readonly dir: string;
  cleanup(): Promise<void>;
}

interface RigOptions extends Partial<Omit<TxPipelineOptions, "view">> {
  readonly sealer?: SealerKind;
  readonly chunkSizeBytes?: number;
  readonly nowMs?: number;
  readonly secretKey?: Uint8Array;
}

async function makeRig(options: RigOptions = {}): Promise<Rig> {
  const ids = await identitiesPromise;
  const { dir, cleanup } = tempDir("consortia-pipeline-");
  const secrets = new LedgerSecrets(options.secretKey ?? new Uint8Array(32).fill(9));
  const store = new Store();
  const ledger = LedgerWriter.open(dir, { chunkSizeBytes: options.chunkSizeBytes ?? 1 << 20 });
  const sealer = makeSealer(options.sealer ?? "inline", secrets);
  const pipeline = new TxPipeline({
    store,
    history: new TxHistory(secrets),
    ledger,
    sealer,
    identity: ids.node,
    options: {
      view: VIEW,
      sigTxInterval: options.sigTxInterval ?? 1000,
      sigMsInterval: options.sigMsInterval ?? Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: options.conflictRetriesMax ?? 5,
      receiptWindowTxs: options.receiptWindowTxs,
    },
    nowMs: options.nowMs ?? 0,
    // A fixed wall clock: the COSE signatures' iat, like everything else, is then the same in
    // every rig, and so are the ledger files.
    realtimeMs: () => 1_700_000_000_000,
  });
  return {
    pipeline,
    store,
    ledger,
    sealer,
    dir,
    cleanup: async () => {
      await sealer.close();
      cleanup();
    },
  };
}

function key(i: number): Uint8Array {
  return utf8(`k${String(i).padStart(5, "0")}`);
}

/** One write to a private and one to a public map. */
async function write(p: TxPipeline, i: number): Promise<number> {
  const outcome = await p.execute((tx) => {
    tx.rw(MAP).set(key(i), utf8(`private ${i}`));
    tx.rw(PUBLIC_MAP).set(key(i), utf8(`public ${i}`));
  });
  assert.equal(outcome.kind, "committed", `tx ${i}`);
  return outcome.kind === "committed" ? outcome.txId.seqno : -1;
}

interface LedgerContents {
  readonly seqnos: number[];
  readonly signatures: Map<number, SignatureValue>;
}

function readContents(dir: string): LedgerContents {
  const seqnos: number[] = [];
  const signatures = new Map<number, SignatureValue>();
  for (const item of readLedger(dir)) {
    assert.equal(item.kind, "entry", "no torn tail in a closed ledger");
    if (item.kind !== "entry") continue;
    seqnos.push(item.seqno);
    const sig = findSignature(decodeEntry(item.entry).publicMaps);
    if (sig !== null) signatures.set(item.seqno, sig);
  }
  return { seqnos, signatures };
}

function verifyLedgerDir(dir: string, serviceCertPem: string): LedgerVerifier {
  const verifier = new LedgerVerifier({ serviceCertPem });
  for (const item of readLedger(dir)) {
    if (item.kind !== "entry") continue;
    const step = verifier.push(item.entry);
    assert.notEqual(step.kind, "invalid", step.kind === "invalid" ? step.reason : "");
  }
  return verifier;
}

for (const sealer of ["inline", "worker"] as const) {
  test(`a signature follows every sigTxInterval transactions and close signs the rest (${sealer} sealer)`, async () => {
    const ids = await identitiesPromise;
    const rig = await makeRig({ sigTxInterval: 5, sealer });
    try {
      for (let i = 1; i <= 23; i++) await write(rig.pipeline, i);
      await rig.pipeline.close();
      const { seqnos, signatures } = readContents(rig.dir);
      // 5 txs then a signature: signatures at 6, 12, 18, 24; 3 txs left, signed by close at 28.
      assert.deepEqual([...signatures.keys()], [6, 12, 18, 24, 28]);
      assert.deepEqual(
        seqnos,
        Array.from({ length: 28 }, (_, i) => i + 1),
      );
      let previous = 0;
      for (const [seqno, sig] of signatures) {
        assert.equal(sig.seqno, seqno);
        assert.equal(sig.view, VIEW);
        assert.equal(sig.node, ids.node.nodeId);
        // The commit point known when signing: the previous signature.
        assert.equal(sig.commit_seqno, previous, `commit_seqno of signature ${seqno}`);
        previous = seqno;
      }
      const verifier = verifyLedgerDir(rig.dir, ids.serviceCertPem);
      assert.equal(verifier.lastVerifiedSeqno, 28);
      assert.equal(verifier.signatureCount, 5);
    } finally {
      await rig.cleanup();
    }
  });
}

test("inline and worker sealers produce byte-identical ledger files", async () => {
  const rigs = [
    await makeRig({ sigTxInterval: 7 }),
    await makeRig({ sigTxInterval: 7, sealer: "worker" }),
  ];
  try {
    for (const rig of rigs) {
      for (let i = 1; i <= 40; i++) await write(rig.pipeline, i);
      await rig.pipeline.close();
    }
    const [a, b] = rigs.map((r) => readdirSync(r.dir).sort());
    assert.deepEqual(a, b);
    assert.ok(a!.length > 0);
    for (const name of a!) {
      assert.ok(
        readFileSync(join(rigs[0]!.dir, name)).equals(readFileSync(join(rigs[1]!.dir, name))),
        name,
      );
    }
  } finally {
    for (const rig of rigs) await rig.cleanup();
  }
});

test("commitTxId advances to each signature and stays there until the next one", async () => {
  const rig = await makeRig({ sigTxInterval: 4 });
  try {
    const p = rig.pipeline;
    assert.deepEqual(p.commitTxId, { view: VIEW, seqno: 0 });
    const expectedCommit = [0, 0, 0, 5, 5, 5, 5, 10, 10]; // after tx i (1-based): sigs at 5, 10
    for (let i = 1; i <= expectedCommit.length; i++) {
      const seqno = await write(p, i);
      assert.equal(p.commitTxId.seqno, expectedCommit[i - 1], `commit after tx ${i}`);
      assert.equal(p.commitTxId.view, VIEW);
      // The tx that triggers a signature is followed by it: lastTxId is the signature then.
      const last = p.commitTxId.seqno === seqno + 1 ? seqno + 1 : seqno;
      assert.deepEqual(p.lastTxId, { view: VIEW, seqno: last });
    }
    const sig = await p.emitSignature();
    assert.deepEqual(sig, { view: VIEW, seqno: 12 });
    assert.deepEqual(p.commitTxId, sig);
    assert.deepEqual(p.lastTxId, sig);
    await p.close();
  } finally {
    await rig.cleanup();
  }
});

test("a signature and everything before it are written out before the signature commits", async () => {
  // 1 MiB chunks: no chunk completes, so only the pipeline's sync can put the bytes in the file.
  const rig = await makeRig({ sigTxInterval: 1000 });
  try {
    const p = rig.pipeline;
    for (let i = 1; i <= 3; i++) await write(p, i);
    await p.emitSignature();
    assert.deepEqual(p.commitTxId, { view: VIEW, seqno: 4 });
    const onDisk = readContents(rig.dir);
    assert.deepEqual(onDisk.seqnos, [1, 2, 3, 4]);
    assert.deepEqual([...onDisk.signatures.keys()], [4]);
    await p.close();
  } finally {
    await rig.cleanup();
  }
});

test("tick emits a signature only when sigMsInterval has elapsed and there are unsigned transactions", async () => {
  const rig = await makeRig({ sigMsInterval: 100, nowMs: 1000 });
  try {
    const p = rig.pipeline;
    assert.equal(await p.tick(5000), false, "nothing to sign");
    assert.equal(p.commitTxId.seqno, 0);
    await write(p, 1);
    assert.equal(await p.tick(1099), false, "99 ms after start");
    assert.equal(p.commitTxId.seqno, 0);
    assert.equal(await p.tick(1100), true, "100 ms after start");
    assert.deepEqual(p.commitTxId, { view: VIEW, seqno: 2 });
    assert.equal(await p.tick(1300), false, "elapsed, but nothing new to sign");
    await write(p, 2);
    // The interval runs from the last signature (at 1100), not from the previous tick.
    assert.equal(await p.tick(1199), false);
    assert.equal(await p.tick(1200), true);
    assert.deepEqual(p.commitTxId, { view: VIEW, seqno: 4 });
    await p.close();
    assert.deepEqual([...readContents(rig.dir).signatures.keys()], [2, 4]);
  } finally {
    await rig.cleanup();
  }
});

test("ledger files are renamed .committed exactly when wholly committed", async () => {
  const ids = await identitiesPromise;
  // 1 KiB chunks: every signature (~1.3 KiB with its cert) completes a chunk.
  const rig = await makeRig({ sigTxInterval: 3, chunkSizeBytes: 1024 });
  try {
    const p = rig.pipeline;
    for (let i = 1; i <= 20; i++) {
      await write(p, i);
      const commit = p.commitTxId.seqno;
      for (const file of listLedgerFiles(rig.dir)) {
        if (file.lastSeqno === null) continue;
        assert.ok(file.committed, `${file.name} is complete and committed (commit ${commit})`);
        assert.ok(file.lastSeqno <= commit, `${file.name} ends at or before commit ${commit}`);
      }
    }
    await p.close();
    const files = listLedgerFiles(rig.dir);
    assert.ok(files.filter((f) => f.committed).length >= 4, files.map((f) => f.name).join(" "));
    // Files are contiguous and the committed ones end at signatures.
    const { signatures } = readContents(rig.dir);
    for (const f of files) if (f.lastSeqno !== null) assert.ok(signatures.has(f.lastSeqno), f.name);
    assert.equal(
      verifyLedgerDir(rig.dir, ids.serviceCertPem).lastVerifiedSeqno,
      p.commitTxId.seqno,
    );
  } finally {
    await rig.cleanup();
  }
});

test("after close every transaction's receipt verifies against the service certificate", async () => {
  const ids = await identitiesPromise;
  const rig = await makeRig({ sigTxInterval: 6, sealer: "worker" });
  try {
    const p = rig.pipeline;
    const claims = new Uint8Array(32).fill(0xc1);
    for (let i = 1; i <= 14; i++) await write(p, i);
    const withClaims = await p.execute((tx) => tx.rw(MAP).set(key(99), utf8("claimed")), claims);
    assert.equal(withClaims.kind, "committed");
    await p.close();
    const last = p.lastTxId.seqno;
    assert.equal(last, 18); // 15 txs + signatures at 7 and 14 + the closing one
    for (let seqno = 1; seqno <= last; seqno++) {
      const outcome = await p.receipt(seqno as Seqno);
      assert.equal(outcome.kind, "receipt", `seqno ${seqno}`);
      if (outcome.kind !== "receipt") continue;
      const result = verifyReceipt(outcome.receipt, ids.serviceCertPem);
      assert.equal(
        result.kind,
        "valid",
        `seqno ${seqno}: ${result.kind === "invalid" ? result.reason : ""}`,
      );
    }
    const claimed = await p.receipt(17 as Seqno);
    assert.ok(claimed.kind === "receipt");
    assert.equal(claimed.receipt.leaf_components?.claims_digest, toHex(claims));
  } finally {
    await rig.cleanup();
  }
});

test("a committed transaction's receipt is not-signed (not unavailable) until a signature covers it", async () => {
  const rig = await makeRig({ sigTxInterval: 100 });
  try {
    const seqno = await write(rig.pipeline, 1);
    assert.deepEqual(await rig.pipeline.receipt(seqno as Seqno), { kind: "not-signed" });
    await rig.pipeline.close();
  } finally {
    await rig.cleanup();
  }
});

test("a handler whose read is invalidated by a concurrent commit is retried and commits after it", async () => {
  const ids = await identitiesPromise;
  const rig = await makeRig({ sigTxInterval: 100 });
  try {
    const p = rig.pipeline;
    await write(p, 1);
    let attempts = 0;
    const inner: unknown[] = [];
    const outcome = await p.execute((tx) => {
      attempts++;
      const seen = tx.rw(MAP).get(key(1));
      if (attempts === 1) {
        // A competing transaction, committed through the pipeline while this one runs.
        inner.push(p.execute((t) => t.rw(MAP).set(key(1), utf8("concurrent"))));
      }
      tx.rw(MAP).set(key(2), seen ?? utf8("missing"));
      return attempts;
    });
    const [innerOutcome] = await Promise.all(inner);
    assert.deepEqual(innerOutcome, {
      kind: "committed",
      txId: { view: VIEW, seqno: 2 },
      result: undefined,
    });
    assert.equal(outcome.kind, "committed");
    assert.equal(attempts, 2, "the handler ran again after the conflict");
    if (outcome.kind === "committed") assert.equal(outcome.txId.seqno, 3);
    // The retry read the concurrent value.
    assert.deepEqual(rig.store.get(MAP, key(2)), utf8("concurrent"));
    await p.close();
    assert.deepEqual(readContents(rig.dir).seqnos, [1, 2, 3, 4]);
    assert.equal(verifyLedgerDir(rig.dir, ids.serviceCertPem).lastVerifiedSeqno, 4);
  } finally {
    await rig.cleanup();
  }
});

test("a handler conflicting on every attempt gives a conflict outcome after conflictRetriesMax attempts", async () => {
  const rig = await makeRig({ conflictRetriesMax: 3 });
  try {
    const p = rig.pipeline;
    let attempts = 0;
    const outcome = await p.execute((tx) => {
      attempts++;
      tx.rw(MAP).get(key(1));
      // A competing write committed directly on the store, invalidating the read above.
      const rival = rig.store.begin();
      rival.rw(MAP).set(key(1), utf8(`rival ${attempts}`));
      assert.equal(rig.store.commit(rival).kind, "committed");
      tx.rw(MAP).set(key(2), utf8("never"));
    });
    assert.deepEqual(outcome, { kind: "conflict", attempts: 3 });
    assert.equal(attempts, 3);
    assert.equal(rig.store.get(MAP, key(2)), undefined);
    // The rivals bypassed the pipeline, so it cannot sign any more: close the parts directly.
    rig.ledger.close();
  } finally {
    await rig.cleanup();
  }
});

test("read-only handlers do not advance the seqno, write to the ledger or need a signature", async () => {
  const rig = await makeRig({ sigTxInterval: 2 });
  try {
    const p = rig.pipeline;
    await write(p, 1);
    await write(p, 2); // signature at 3
    const before = p.lastTxId;
    for (let i = 0; i < 5; i++) {
      const outcome = await p.execute((tx) => tx.ro(MAP).get(key(1)));
      assert.deepEqual(outcome, { kind: "read-only", readSeqno: 3, result: utf8("private 1") });
    }
    assert.deepEqual(p.lastTxId, before);
    assert.equal(await p.tick(Number.MAX_SAFE_INTEGER), false, "nothing unsigned");
    await p.close();
    assert.deepEqual(readContents(rig.dir).seqnos, [1, 2, 3]);
  } finally {
    await rig.cleanup();
  }
});

test("close adds no signature when everything is already signed", async () => {
  const rig = await makeRig({ sigTxInterval: 3 });
  try {
    for (let i = 1; i <= 6; i++) await write(rig.pipeline, i);
    await rig.pipeline.close();
    const { seqnos, signatures } = readContents(rig.dir);
    assert.deepEqual([...signatures.keys()], [4, 8]);
    assert.equal(seqnos.at(-1), 8);
  } finally {
    await rig.cleanup();
  }
});

test("receipts older than receiptWindowTxs are compacted away; recent ones still verify", async () => {
  const ids = await identitiesPromise;
  const rig = await makeRig({ sigTxInterval: 10, receiptWindowTxs: 25 });
  try {
    for (let i = 1; i <= 60; i++) await write(rig.pipeline, i);
    const last = rig.pipeline.lastTxId.seqno;
    assert.equal(rig.pipeline.receipt(1 as Seqno).kind, "unavailable");
    const recent = rig.pipeline.receipt((last - 5) as Seqno);
    assert.equal(recent.kind, "receipt");
    if (recent.kind === "receipt") {
      assert.equal(verifyReceipt(recent.receipt, ids.serviceCertPem).kind, "valid");
    }
    await rig.pipeline.close();
  } finally {
    await rig.cleanup();
  }
});

test("requestLedgerChunk makes the next signature complete the current chunk", async () => {
  const rig = await makeRig({ sigTxInterval: 1000, chunkSizeBytes: 1 << 20 });
  try {
    for (let i = 1; i <= 5; i++) await write(rig.pipeline, i);
    rig.pipeline.requestLedgerChunk();
    rig.pipeline.emitSignature();
    for (let i = 6; i <= 8; i++) await write(rig.pipeline, i);
    await rig.pipeline.close();
    const names = readdirSync(rig.dir)
      .filter((f) => f.startsWith("ledger_"))
      .sort();
    assert.ok(names.includes("ledger_1-6.committed"), names.join(", "));
  } finally {
    await rig.cleanup();
  }
});
