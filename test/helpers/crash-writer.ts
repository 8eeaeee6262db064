/**
 * A child process for crash tests of the ledger's durability contract (docs/architecture.md):
 * it runs a real TxPipeline (Store, TxHistory, LedgerWriter with small chunks, signatures every
 * CRASH_SIG_TX_INTERVAL transactions, an inline or one-worker sealer) over a ledger directory
 * and writes transactions until it is killed, printing `committed <seqno>` each time the
 * pipeline's commit point advances.
 *
 * Run: node --import tsx test/helpers/crash-writer.ts <ledgerDir> <identityFile> <inline|worker>
 * <seed>. The identity file (writeCrashIdentity) holds the node's key and certificates, so the
 * parent can verify signatures against the service certificate and resume with the same node.
 *
 * Invariant: a `committed N` line is written with a synchronous write(2) only after the
 * pipeline reported N committed, i.e. after its ledger sync returned. So whatever the parent
 * reads after a SIGKILL is a commit point the ledger on disk must still hold.
 *
 * Transaction i (1-based) writes crashTxKey(i) to CRASH_PUBLIC_MAP (value crashPublicValue(i))
 * and to CRASH_PRIVATE_MAP (value crashPrivateValue(seed, i): 1..2048 deterministic bytes), so
 * the parent can check every entry's decrypted contents. The secret is crashSecretKey(seed).
 * The process stops by itself only at a bound (CRASH_TXS_MAX transactions or CRASH_RUN_MS_MAX),
 * printing `bound <seqno>`, so a parent that expected to kill it can tell.
 *
 * Imported by tests for its constants and value functions; main runs only when executed.
 */
import { createPrivateKey } from "node:crypto";
import { readFileSync, writeFileSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { utf8 } from "../../src/base/bytes.js";
import type { NodeId, View } from "../../src/base/ids.js";
import { sha256 } from "../../src/crypto/hash.js";
import { Store } from "../../src/kv/store.js";
import { TxHistory } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import type { StartIdentities } from "../../src/node/startup/start-identities.js";
import { InlineSealer, WorkerSealer, type EntrySealer } from "../../src/node/pipeline/sealer.js";
import {
  serviceSigningIdentity,
  TxPipeline,
  type NodeSigningIdentity,
} from "../../src/node/pipeline/tx-pipeline.js";

export const CRASH_VIEW = 3 as View;
export const CRASH_CHUNK_SIZE_BYTES = 64 * 1024;
export const CRASH_SIG_TX_INTERVAL = 50;
export const CRASH_PUBLIC_MAP = "public:crash";
export const CRASH_PRIVATE_MAP = "crash";
export const CRASH_TXS_MAX = 2_000_000;
export const CRASH_RUN_MS_MAX = 60_000;
/** Largest private value; sizes vary in 1..this so entries straddle chunk boundaries unevenly. */
export const CRASH_VALUE_SIZE_MAX_BYTES = 2048;

export type CrashSealerKind = "inline" | "worker";

/** The ledger secret of a run with `seed`. */
export function crashSecretKey(seed: number): Uint8Array {
  return sha256(utf8(`crash-writer ledger secret ${seed}`));
}

/** 8-byte big-endian key of transaction i, so keys sort by i. */
export function crashTxKey(i: number): Uint8Array {
  const key = new Uint8Array(8);
  new DataView(key.buffer).setUint32(4, i);
  return key;
}

/** The transaction number a crashTxKey encodes, or null for any other key. */
export function crashTxNumber(key: Uint8Array): number | null {
  if (key.byteLength !== 8) return null;
  const view = new DataView(key.buffer, key.byteOffset, 8);
  return view.getUint32(0) === 0 ? view.getUint32(4) : null;
}

export function crashPublicValue(i: number): Uint8Array {
  return utf8(`crash tx ${i}`);
}

/** 1..CRASH_VALUE_SIZE_MAX_BYTES bytes determined by (seed, i): an xorshift32 stream. */
export function crashPrivateValue(seed: number, i: number): Uint8Array {
  let state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i, 0xc2b2ae35)) | 1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const value = new Uint8Array(1 + (next() % CRASH_VALUE_SIZE_MAX_BYTES));
  for (let k = 0; k < value.byteLength; k++) value[k] = next() & 0xff;
  return value;
}

interface IdentityFile {
  readonly nodeId: string;
  readonly privateKeyPem: string;
  readonly certPem: string;
  readonly serviceCertPem: string;
  readonly servicePrivateKeyPem: string;
}

/** Saves what a crash-writer child needs to sign as `identities.node`. */
export function writeCrashIdentity(path: string, identities: StartIdentities): void {
  const file: IdentityFile = {
    nodeId: identities.node.nodeId,
    privateKeyPem: identities.node.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    certPem: identities.node.certPem,
    serviceCertPem: identities.serviceCertPem,
    servicePrivateKeyPem: identities.serviceKeys.privateKey
      .export({ type: "pkcs8", format: "pem" })
      .toString(),
  };
  writeFileSync(path, JSON.stringify(file));
}

function readCrashIdentity(path: string): NodeSigningIdentity {
  const file = JSON.parse(readFileSync(path, "utf8")) as IdentityFile;
  return {
    nodeId: file.nodeId as NodeId,
    privateKey: createPrivateKey(file.privateKeyPem),
    certPem: file.certPem,
    service: serviceSigningIdentity(createPrivateKey(file.servicePrivateKeyPem)),
  };
}

/** One line to stdout with write(2), retried on a full non-blocking pipe. */
function printLine(line: string): void {
  const bytes = utf8(`${line}\n`);
  let done = 0;
  while (done < bytes.byteLength) {
    try {
      done += writeSync(1, bytes, done, bytes.byteLength - done);
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
  }
}

function makeSealer(kind: CrashSealerKind, secrets: LedgerSecrets): EntrySealer {
  if (kind === "inline") return new InlineSealer(secrets);
  return new WorkerSealer({ secrets, workers: 1, batchTxMax: 32, inFlightBatchesMax: 4 });
}

async function main(args: readonly string[]): Promise<void> {
  const [dir, identityPath, kind, seedText] = args;
  if (dir === undefined || identityPath === undefined || seedText === undefined) {
    throw new Error("usage: crash-writer <ledgerDir> <identityFile> <inline|worker> <seed>");
  }
  if (kind !== "inline" && kind !== "worker") throw new Error(`unknown sealer ${kind}`);
  const seed = Number(seedText);
  const secrets = new LedgerSecrets(crashSecretKey(seed));
  const pipeline = new TxPipeline({
    store: new Store(),
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: CRASH_CHUNK_SIZE_BYTES }),
    sealer: makeSealer(kind, secrets),
    identity: readCrashIdentity(identityPath),
    options: {
      view: CRASH_VIEW,
      sigTxInterval: CRASH_SIG_TX_INTERVAL,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 1,
      receiptWindowTxs: 1000,
    },
    nowMs: 0,
  });
  const deadlineMs = Date.now() + CRASH_RUN_MS_MAX;
  let printed = 0;
  for (let i = 1; i <= CRASH_TXS_MAX; i++) {
    const outcome = await pipeline.execute((tx) => {
      tx.rw(CRASH_PUBLIC_MAP).set(crashTxKey(i), crashPublicValue(i));
      tx.rw(CRASH_PRIVATE_MAP).set(crashTxKey(i), crashPrivateValue(seed, i));
    });
    if (outcome.kind !== "committed") throw new Error(`tx ${i}: ${outcome.kind}`);
    const committed = pipeline.commitTxId.seqno;
    if (committed > printed) {
      printLine(`committed ${committed}`);
      printed = committed;
    }
    if (i % 1024 === 0 && Date.now() > deadlineMs) break;
  }
  await pipeline.close();
  printLine(`bound ${pipeline.commitTxId.seqno}`);
}

const entry = process.argv[1];
if (entry !== undefined && resolve(entry) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`crash-writer: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
