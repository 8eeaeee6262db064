/**
 * `node --import tsx bench/follower-apply.ts [--txs 20000] [--batch 16]`
 *
 * Microbenchmark of a backup's per-transaction work, in one process with no network: a primary
 * TxPipeline executes `--txs` logging-app-like writes (one private record each, a signature
 * every 40 transactions, commit one signature behind), its entries are encoded as AppendEntries
 * of `--batch` entries (encodeN2n), and a follower pipeline decodes each message (decodeN2n)
 * and applies it (appendReplicated, then commitTo the previous signature), as a backup's
 * consensus driver does. A first follower warms the JIT; each figure is the least of 2-3 runs.
 *
 * Prints CPU microseconds per entry (process.cpuUsage: user + system) for: the AppendEntries
 * encode and decode; the whole follower apply; and, alone, the write-set decode that
 * appendReplicated does per entry (AES-GCM unseal of the private domain and decode), so its
 * share of the follower's cost can be read off. Not a network figure: TLS, framing, fdatasync
 * and the HTTP polls a backup also serves under `npm run bench` are not included.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { utf8 } from "../src/base/bytes.js";
import type { Seqno, TxId, View } from "../src/base/ids.js";
import type { RaftEntry } from "../src/consensus/types.js";
import { Store } from "../src/kv/store.js";
import { decodeEntry, decodeWriteSet } from "../src/ledger/entry-format.js";
import { TxHistory } from "../src/ledger/history.js";
import { LedgerWriter } from "../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../src/ledger/ledger-secrets.js";
import { InlineSealer } from "../src/node/pipeline/sealer.js";
import { TxPipeline } from "../src/node/pipeline/tx-pipeline.js";
import { decodeN2n, encodeN2n } from "../src/node/replication/n2n/messages.js";
import { createStartIdentities } from "../src/node/startup/start-identities.js";

const { values } = parseArgs({
  options: { txs: { type: "string", default: "20000" }, batch: { type: "string", default: "16" } },
});
const TXS = Number(values.txs);
const BATCH = Number(values.batch);
const SIGNATURE_EVERY = 40;
const VIEW = 4 as View;
const SECRET = new Uint8Array(32).fill(9);
const identities = await createStartIdentities({ now: new Date() });
const dirs: string[] = [];

function pipeline(received: RaftEntry[] | null): TxPipeline {
  const dir = mkdtempSync(join(tmpdir(), "consortia-follower-bench-"));
  dirs.push(dir);
  const secrets = new LedgerSecrets(SECRET);
  return new TxPipeline({
    store: new Store(),
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 4 << 20 }),
    sealer: new InlineSealer(secrets),
    identity: identities.node,
    options: {
      view: VIEW,
      sigTxInterval: Number.MAX_SAFE_INTEGER,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
    },
    nowMs: 0,
    consensus: {
      replicate: (entries) => received?.push(...entries),
      canWrite: () => received !== null,
      configurationOf: () => undefined,
    },
  });
}

/** The primary's entries, as consensus would replicate them. */
async function primaryEntries(): Promise<RaftEntry[]> {
  const received: RaftEntry[] = [];
  const primary = pipeline(received);
  let lastSignature: TxId | null = null;
  for (let i = 0; i < TXS; i++) {
    primary.execute((tx) => {
      const msg = JSON.stringify({ msg: `message number ${i} from the follower bench` });
      tx.rw("records").set(utf8(String(i)), utf8(msg));
    });
    if (i % SIGNATURE_EVERY === SIGNATURE_EVERY - 1) {
      if (lastSignature !== null) primary.commitTo(lastSignature);
      primary.emitSignature();
      lastSignature = primary.lastTxId;
    }
  }
  await primary.close();
  return received;
}

function cpuUs(run: () => void): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return used.user + used.system;
}

function encodeAll(entries: readonly RaftEntry[]): Uint8Array[] {
  const wires: Uint8Array[] = [];
  for (let at = 0; at < entries.length; at += BATCH) {
    const message = {
      type: "append_entries" as const,
      view: VIEW,
      prevSeqno: at as Seqno,
      prevView: VIEW,
      leaderCommit: 0 as Seqno,
      entries: entries.slice(at, at + BATCH),
    };
    wires.push(encodeN2n({ kind: "raft", fromAddress: "127.0.0.1:1", message }));
  }
  return wires;
}

function follow(wires: readonly Uint8Array[]): void {
  const follower = pipeline(null);
  let signature: TxId | null = null;
  for (const wire of wires) {
    const m = decodeN2n(wire);
    if (m.kind !== "raft" || m.message.type !== "append_entries") throw new TypeError("not AE");
    follower.appendReplicated(m.message.entries);
    if (signature !== null) follower.commitTo(signature);
    for (const e of m.message.entries) if (e.isSignature) signature = e;
  }
  void follower.close();
}

/** The least CPU of `times` runs (the others paid for JIT warm-up or a GC). */
function leastCpuUs(times: number, run: () => void): number {
  return Math.min(...Array.from({ length: times }, () => cpuUs(run)));
}

const entries = await primaryEntries();
const n = entries.length;
let wires: Uint8Array[] = encodeAll(entries);
follow(wires); // warm-up
const encodeUs = leastCpuUs(3, () => (wires = encodeAll(entries)));
const decodeUs = leastCpuUs(3, () => wires.forEach((w) => decodeN2n(w)));
const followUs = leastCpuUs(2, () => follow(wires));
const secrets = new LedgerSecrets(SECRET);
const unsealUs = leastCpuUs(3, () =>
  entries.forEach((e) => decodeWriteSet(decodeEntry(e.payload), secrets)),
);
const per = (us: number): string => (us / n).toFixed(2);
console.log(`${n} entries in AppendEntries of ${BATCH}; CPU µs per entry:`);
console.log(`  AppendEntries encode ${per(encodeUs)}, decode ${per(decodeUs)}`);
console.log(`  follower (decode + appendReplicated + commitTo) ${per(followUs)}`);
console.log(`  of which write-set decode (unseal + decode), measured alone: ${per(unsealUs)}`);
for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
