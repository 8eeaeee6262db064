/**
 * A REAL ledger for tests of the verifier, the `ledger verify` CLI and the pipeline: built in a
 * temporary directory through TxPipeline (KV commit, entry encoding and encryption, Merkle tree,
 * signatures, LedgerWriter chunking), not assembled by hand. Transaction i (1-based) writes
 * txKey(i) to a private map and to a public map, so every entry has both a ciphertext and a
 * clear public value whose bytes tests can find and alter.
 *
 * Small chunks (8 KiB by default) complete a chunk every signature or two, so the ledger spans
 * several files, all `.committed` except (with an unsigned tail) the last in-progress one.
 *
 * Like a service's genesis, the first transaction also records the service certificate in
 * service.info, so the COSE signatures of the signature transactions can be checked against it.
 *
 * Entries are sealed inline by default, or on a worker thread (`sealer: "worker"`). Pipeline
 * calls are awaited (close() is async, the rest may become so). The optional unsigned tail is
 * appended after the pipeline has closed, with encodeEntry and a fresh LedgerWriter, as a
 * crashed primary would leave it: entries after the last signature, never signed.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { utf8 } from "../../src/base/bytes.js";
import type { Seqno, TxId, View } from "../../src/base/ids.js";
import { sha256 } from "../../src/crypto/hash.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../src/kv/service-tables.js";
import { Store } from "../../src/kv/store.js";
import type { WriteSet } from "../../src/kv/write-set.js";
import { decodeEntry, encodeEntry } from "../../src/ledger/entry-format.js";
import { TxHistory } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import { readLedger } from "../../src/ledger/io/ledger-reader.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import type { Receipt } from "../../src/ledger/receipt.js";
import { findSignature } from "../../src/ledger/signature.js";
import {
  createStartIdentities,
  type StartIdentities,
} from "../../src/node/startup/start-identities.js";
import { InlineSealer, WorkerSealer, type EntrySealer } from "../../src/node/pipeline/sealer.js";
import { TxPipeline } from "../../src/node/pipeline/tx-pipeline.js";

export const PRIVATE_MAP = "records";
export const PUBLIC_MAP = "public:records";
export const FIXTURE_VIEW = 2 as View;

/** 8-byte big-endian key of transaction i, so keys sort by i. */
export function txKey(i: number): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setUint32(4, i);
  return key;
}

/** A ~100-byte private value, distinct per transaction. */
export function privateValue(i: number): Uint8Array {
  return utf8(`private value of tx ${i} `.padEnd(100, "p"));
}

/** A public value with a marker tests can search for in the entry bytes. */
export function publicValue(i: number): Uint8Array {
  return utf8(`<public value of tx ${i}>`.padEnd(48, "q"));
}

export type SealerKind = "inline" | "worker";

/** An entry sealer over `secrets`: on this thread, or on one worker thread in small batches. */
export function makeSealer(
  kind: SealerKind,
  secrets: LedgerSecrets,
  options: { onSealed?: () => void } = {},
): EntrySealer {
  if (kind === "inline") return new InlineSealer(secrets);
  const { onSealed } = options;
  return new WorkerSealer({ secrets, workers: 1, batchTxMax: 8, inFlightBatchesMax: 4, onSealed });
}

/** The canonical write set transaction i produces (maps sorted by name: "public:" < "records"). */
export function txWriteSet(i: number): WriteSet {
  return {
    maps: [
      { name: PUBLIC_MAP, writes: [{ key: txKey(i), value: publicValue(i) }] },
      { name: PRIVATE_MAP, writes: [{ key: txKey(i), value: privateValue(i) }] },
    ],
  };
}

export interface LedgerFixtureOptions {
  /** Ordinary transactions executed through the pipeline (all signed by the end). */
  readonly txCount: number;
  readonly sigTxInterval: number;
  /** Default 8192. */
  readonly chunkSizeBytes?: number;
  /** Transactions appended after the last signature and never signed. Default 0. */
  readonly unsignedTailCount?: number;
  /** Seqnos whose pipeline receipts to collect after close. */
  readonly receiptSeqnos?: readonly number[];
  /** Reuse identities across fixtures (creating them costs a key pair and two certs). */
  readonly identities?: StartIdentities;
  /** Transaction number of the first transaction (for txKey/values). Default 1. */
  readonly firstTxNumber?: number;
  /** Where entries are sealed. Default "inline". */
  readonly sealer?: SealerKind;
}

export interface LedgerFixture {
  readonly dir: string;
  readonly identities: StartIdentities;
  readonly secrets: LedgerSecrets;
  /** Seqno of the last entry in the ledger (unsigned tail included). */
  readonly lastSeqno: number;
  /** Seqno of the last signature. */
  readonly lastSignedSeqno: number;
  /** Every signature's seqno, ascending, read back from the ledger. */
  readonly signatureSeqnos: readonly number[];
  /** Seqno -> transaction number i of the ordinary transactions (signatures excluded). */
  readonly txNumberBySeqno: ReadonlyMap<number, number>;
  readonly receipts: ReadonlyMap<number, Receipt>;
  cleanup(): void;
}

export async function buildLedgerFixture(options: LedgerFixtureOptions): Promise<LedgerFixture> {
  const identities = options.identities ?? (await createStartIdentities({ now: new Date() }));
  const secrets = new LedgerSecrets(new Uint8Array(randomBytes(32)));
  const dir = mkdtempSync(join(tmpdir(), "consortia-ledger-fixture-"));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const chunkSizeBytes = options.chunkSizeBytes ?? 8192;
  try {
    const pipeline = new TxPipeline({
      store: new Store(),
      history: new TxHistory(secrets),
      ledger: LedgerWriter.open(dir, { chunkSizeBytes }),
      sealer: makeSealer(options.sealer ?? "inline", secrets),
      identity: identities.node,
      options: {
        view: FIXTURE_VIEW,
        sigTxInterval: options.sigTxInterval,
        sigMsInterval: Number.MAX_SAFE_INTEGER,
        conflictRetriesMax: 1,
      },
      nowMs: 0,
    });
    const txNumberBySeqno = new Map<number, number>();
    const first = options.firstTxNumber ?? 1;
    for (let i = first; i < first + options.txCount; i++) {
      const outcome = await pipeline.execute((tx) => {
        if (i === first) {
          const info = { cert: identities.serviceCertPem, status: "Open" };
          tx.rw(SERVICE_TABLES.serviceInfo).set(SINGLETON_KEY_BYTES, utf8(JSON.stringify(info)));
        }
        tx.rw(PUBLIC_MAP).set(txKey(i), publicValue(i));
        tx.rw(PRIVATE_MAP).set(txKey(i), privateValue(i));
      });
      if (outcome.kind !== "committed") throw new Error(`fixture tx ${i}: ${outcome.kind}`);
      txNumberBySeqno.set(outcome.txId.seqno, i);
    }
    await pipeline.close();
    const receipts = new Map<number, Receipt>();
    for (const seqno of options.receiptSeqnos ?? []) {
      const outcome = await pipeline.receipt(seqno as Seqno);
      if (outcome.kind !== "receipt") throw new Error(`fixture receipt ${seqno}: ${outcome.kind}`);
      receipts.set(seqno, outcome.receipt);
    }
    const tail = options.unsignedTailCount ?? 0;
    const next = first + options.txCount;
    appendUnsignedTail(dir, chunkSizeBytes, secrets, next, tail, txNumberBySeqno);
    const signatureSeqnos = readSignatureSeqnos(dir);
    return {
      dir,
      identities,
      secrets,
      lastSeqno: signatureSeqnos.lastSeqno,
      lastSignedSeqno: signatureSeqnos.list.at(-1) ?? 0,
      signatureSeqnos: signatureSeqnos.list,
      txNumberBySeqno,
      receipts,
      cleanup,
    };
  } catch (err: unknown) {
    cleanup();
    throw err;
  }
}

/** Appends `count` never-signed transactions numbered from `firstTx` to the closed ledger. */
function appendUnsignedTail(
  dir: string,
  chunkSizeBytes: number,
  secrets: LedgerSecrets,
  firstTx: number,
  count: number,
  txNumberBySeqno: Map<number, number>,
): void {
  if (count === 0) return;
  const ledger = LedgerWriter.open(dir, { chunkSizeBytes });
  for (let k = 0; k < count; k++) {
    const txId: TxId = { view: FIXTURE_VIEW, seqno: (ledger.lastSeqno + 1) as Seqno };
    const commitEvidenceDigest = sha256(secrets.commitEvidence(txId));
    const entry = encodeEntry(
      { txId, writeSet: txWriteSet(firstTx + k), commitEvidenceDigest },
      secrets,
    );
    ledger.append(entry, { seqno: txId.seqno, isSignature: false });
    txNumberBySeqno.set(txId.seqno, firstTx + k);
  }
  ledger.close();
}

/** Every entry of the ledger in `dir`, copied out of the file buffers, in seqno order. */
export function readEntries(dir: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const item of readLedger(dir)) if (item.kind === "entry") out.push(item.entry.slice());
  return out;
}

function readSignatureSeqnos(dir: string): { list: number[]; lastSeqno: number } {
  const list: number[] = [];
  let lastSeqno = 0;
  for (const item of readLedger(dir)) {
    if (item.kind !== "entry") continue;
    lastSeqno = item.seqno;
    if (findSignature(decodeEntry(item.entry).publicMaps) !== null) list.push(item.seqno);
  }
  return { list, lastSeqno };
}
