// withHistoricalEntries and HistoricalFetch (src/node/frontends/historical-reads.ts) over a real
// ledger directory written by LedgerWriter, with a node context reduced to the ledger
// configuration and the pipeline's flush and commit seqno. Oracles: the entry bytes given to the
// writer, how often the handler ran, and CCF's 202 shape (historical_queries_adapter: status
// 202, Retry-After 3, text "Historical transaction <txid> is not currently available.") when a
// read does not finish in time (a FIFO named as a ledger file blocks it until the test writes).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { Seqno, TxId, View } from "../../../../src/base/ids.js";
import { HttpError } from "../../../../src/http/errors.js";
import type { RpcOutcome, RpcResponse } from "../../../../src/http/router.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import {
  HISTORICAL_WAIT_MS,
  notAvailable,
  withHistoricalEntries,
  type HistoricalFetch,
} from "../../../../src/node/frontends/historical-reads.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { fakeEntry } from "../../../helpers/fake-entries.js";

const ID: TxId = { view: 2 as View, seqno: 7 as Seqno };

function entryOf(seqno: number): Uint8Array {
  return fakeEntry({ seqno, payloadSizeBytes: 40 });
}

function nodeOn(dir: string): NodeContext {
  return {
    config: { ledger: { directory: dir, readOnlyDirectories: [] } },
    pipeline: { flushLedger: () => undefined, commitTxId: { view: 2, seqno: 24 } },
  } as unknown as NodeContext;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "historical-reads-"));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeLedger(dir: string): void {
  const writer = LedgerWriter.open(dir, { chunkSizeBytes: 1000 });
  for (let seqno = 1; seqno <= 24; seqno++) {
    writer.append(entryOf(seqno), { seqno, isSignature: seqno % 4 === 0 });
  }
  writer.commit(24);
  writer.close();
}

/** A handler of seqno 7 as historical endpoints are written: 202 while the entry loads. */
function handlerOf(runs: { count: number }) {
  return (fetch: HistoricalFetch): RpcOutcome => {
    runs.count++;
    const entry = fetch.entry(ID.seqno);
    if (entry === null) return notAvailable(ID);
    return { status: 200, body: entry };
  };
}

test("a handler whose entry is not in memory waits for it and runs again", async () => {
  await withDir(async (dir) => {
    writeLedger(dir);
    const node = nodeOn(dir);
    const runs = { count: 0 };
    const first = (await withHistoricalEntries(node, handlerOf(runs))) as RpcResponse;
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, entryOf(7));
    assert.equal(runs.count, 2);
    const second = (await withHistoricalEntries(node, handlerOf(runs))) as RpcResponse;
    assert.equal(second.status, 200);
    assert.equal(runs.count, 3, "in memory now: one run");
  });
});

test("a read that does not finish in time is answered 202 with Retry-After, as CCF", async () => {
  await withDir(async (dir) => {
    const fifo = join(dir, "ledger_1-12.committed");
    execFileSync("mkfifo", [fifo]);
    const runs = { count: 0 };
    const start = Date.now();
    const answer = (await withHistoricalEntries(nodeOn(dir), handlerOf(runs))) as RpcResponse;
    const waitedMs = Date.now() - start;
    // Unblock the read (a writer opens the FIFO, then closes it: the reader sees its end).
    const writer = await open(fifo, "w");
    await writer.close();
    assert.equal(answer.status, 202);
    assert.equal(answer.headers?.["retry-after"], "3");
    assert.equal(answer.headers?.["content-type"], "text/plain");
    const text = new TextDecoder().decode(answer.body as Uint8Array);
    assert.equal(text, "Historical transaction 2.7 is not currently available.");
    assert.equal(runs.count, 1);
    assert.ok(waitedMs >= HISTORICAL_WAIT_MS - 50, `waited ${waitedMs} ms`);
  });
});

test("a damaged ledger file is a 500 InternalError naming the file", async () => {
  await withDir(async (dir) => {
    writeLedger(dir);
    const file = join(dir, "ledger_1-12.committed");
    const bytes = readFileSync(file);
    writeFileSync(file, bytes.subarray(0, bytes.byteLength - 3));
    await assert.rejects(withHistoricalEntries(nodeOn(dir), handlerOf({ count: 0 })), (err) => {
      assert.ok(err instanceof HttpError, String(err));
      assert.equal(err.code, "InternalError");
      assert.match(err.message, /Ledger entry 7 could not be read: ledger_1-12\.committed/);
      return true;
    });
  });
});
