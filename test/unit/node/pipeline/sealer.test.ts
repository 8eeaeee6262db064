// Entry sealers: the worker sealer returns exactly what the inline sealer does, in seqno order
// across several workers; a failure inside a worker surfaces on the node thread with the
// worker's own message instead of a hang; a ledger secret added mid-stream applies from its
// seqno on, in the workers too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { toHex, utf8 } from "../../../../src/base/bytes.js";
import type { Seqno, TxId, View } from "../../../../src/base/ids.js";
import { decodeEntry, decodeWriteSet } from "../../../../src/ledger/entry-format.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import type { SealJob } from "../../../../src/ledger/seal-batch.js";
import { InlineSealer, WorkerSealer } from "../../../../src/node/pipeline/sealer.js";

const KEY_A = new Uint8Array(32).fill(1);
const KEY_B = new Uint8Array(32).fill(2);

function job(seqno: number): SealJob {
  const txId: TxId = { view: 2 as View, seqno: seqno as Seqno };
  const claimsDigest = seqno % 5 === 0 ? new Uint8Array(32).fill(seqno) : undefined;
  return {
    txId,
    claimsDigest,
    writeSet: {
      maps: [
        {
          name: "public:log",
          writes: [{ key: utf8(`k${seqno}`), value: utf8(`public ${seqno}`) }],
        },
        { name: "records", writes: [{ key: utf8(`k${seqno}`), value: utf8(`secret ${seqno}`) }] },
      ],
    },
  };
}

function render(sealed: { txId: TxId; entry: Uint8Array; leaf: Uint8Array }[]): string[] {
  return sealed.map((s) => `${s.txId.view}.${s.txId.seqno} ${toHex(s.entry)} ${toHex(s.leaf)}`);
}

test("two workers return byte-identical results to the inline sealer, in seqno order", async () => {
  const inline = new InlineSealer(new LedgerSecrets(KEY_A));
  const workers = new WorkerSealer({
    secrets: new LedgerSecrets(KEY_A),
    workers: 2,
    batchTxMax: 7,
    inFlightBatchesMax: 3,
  });
  try {
    const expected: string[] = [];
    const actual: string[] = [];
    for (let s = 1; s <= 100; s++) {
      inline.submit(job(s));
      workers.submit(job(s));
      if (s % 13 === 0) actual.push(...render(workers.poll()));
    }
    expected.push(...render(inline.drain()));
    actual.push(...render(workers.drain()));
    assert.equal(workers.pendingCount, 0);
    assert.deepEqual(actual, expected);
    assert.equal(actual.length, 100);
  } finally {
    await workers.close();
  }
});

test("a failure inside a worker is rethrown on the node thread with the worker's message", async () => {
  const sealer = new WorkerSealer({
    secrets: new LedgerSecrets(KEY_A),
    workers: 1,
    batchTxMax: 4,
    inFlightBatchesMax: 2,
  });
  try {
    sealer.submit(job(0)); // seqno 0 does not exist: the worker's secret lookup asserts
    sealer.poll(); // the worker is idle: the batch goes to it (drain would seal it here)
    const started = Date.now();
    assert.throws(() => sealer.drain(), /sealer worker failed: .*seqnos start at 1/s);
    assert.ok(Date.now() - started < 5000, "failure reported without waiting for a timeout");
  } finally {
    await sealer.close();
  }
});

test("a secret added at seqno 50 seals later entries with the new key, in workers too", async () => {
  const secrets = new LedgerSecrets(KEY_A);
  const sealer = new WorkerSealer({ secrets, workers: 2, batchTxMax: 8, inFlightBatchesMax: 4 });
  try {
    for (let s = 1; s < 50; s++) sealer.submit(job(s));
    sealer.addSecret(50 as Seqno, KEY_B);
    for (let s = 50; s <= 60; s++) sealer.submit(job(s));
    const sealed = sealer.drain();
    assert.equal(sealed.length, 60);
    const both = LedgerSecrets.fromList([
      { fromSeqno: 1, key: KEY_A },
      { fromSeqno: 50, key: KEY_B },
    ]);
    const onlyOld = new LedgerSecrets(KEY_A);
    for (const s of sealed) {
      const entry = decodeEntry(s.entry);
      assert.notEqual(decodeWriteSet(entry, both), null, `seqno ${s.txId.seqno} decrypts`);
      const withOld = decodeWriteSet(entry, onlyOld);
      assert.equal(withOld === null, s.txId.seqno >= 50, `seqno ${s.txId.seqno} key choice`);
    }
  } finally {
    await sealer.close();
  }
});

test("poll() sends a partial batch only while a worker may be idle; drain() seals the rest here", async () => {
  const sealer = new WorkerSealer({
    secrets: new LedgerSecrets(KEY_A),
    workers: 1,
    batchTxMax: 100,
    inFlightBatchesMax: 4,
  });
  try {
    sealer.submit(job(1));
    // Nothing in flight: the partial batch goes at once (latency when the node is not loaded).
    const first = sealer.poll();
    assert.equal(sealer.batchesDispatched, 1);
    // The only worker is busy with batch 1 until poll() has received it: seqnos 2..4 wait to be
    // batched together (the worker may finish batch 1 meanwhile, but the check comes first).
    for (let s = 2; s <= 4; s++) sealer.submit(job(s));
    const second = sealer.poll();
    if (first.length === 0) assert.equal(sealer.batchesDispatched, 1);
    const sentBeforeDrain = sealer.batchesDispatched;
    const rest = sealer.drain();
    const seqnos = [...first, ...second, ...rest].map((t) => t.txId.seqno);
    assert.deepEqual(seqnos, [1, 2, 3, 4]);
    // drain() waits for what is in flight and seals what is still queued on this thread.
    assert.equal(sealer.batchesDispatched, sentBeforeDrain);
    assert.equal(sealer.pendingCount, 0);
  } finally {
    await sealer.close();
  }
});
