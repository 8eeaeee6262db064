/**
 * The local transaction pipeline of one node: execute a handler in a KV transaction, commit it,
 * serialise and encrypt it into a ledger entry, append its Merkle leaf, append the entry to the
 * ledger files, and emit signature transactions at least every `sigTxInterval` transactions or
 * `sigMsInterval` ms, whichever comes first (ccf-compatibility.md §6.4).
 *
 * A replicated primary also signs as soon as its previous signature committed (pump), at the
 * end of the event-loop turn that executed or committed something. Under load that is one
 * signature per commit round (group commit); when idle, a lone write is signed at once. Commit
 * latency is then one or two replication rounds, not the interval.
 *
 * Durability points (docs/architecture.md): ledger appends are buffered. Standalone (no
 * ConsensusSink), the pipeline syncs the ledger once per signature and only then treats the
 * signature as committed; replicated, consensus syncs and commits a signature once a majority
 * has persisted it.
 *
 * Storage faults (SECURITY.md, "Disk faults"): the first StorageError of the ledger writer
 * (ENOSPC, EIO... while writing or syncing) stops the pipeline for good: it is reported once to
 * `onStorageFault`, every later write is refused with the outcome "storage-fault", and every
 * later ledger duty throws it again. Nothing appended after the last successful sync is ever
 * committed here: commits only follow a sync that returned.
 *
 * One owner, no locks: the node loop owns the pipeline; handlers run synchronously inside
 * execute() and never hold a Tx across an await.
 */
import { assert } from "../../base/assert.js";
import { StorageError } from "../../base/storage-error.js";
import { toHex } from "../../base/bytes.js";
import type { NodeId, Seqno, TxId, View } from "../../base/ids.js";
import type { Store } from "../../kv/store.js";
import type { RaftEntry } from "../../consensus/types.js";
import { decodeWriteSet } from "../../ledger/entry-format.js";
import type { Tx } from "../../kv/tx.js";
import type { TxHistory, ReceiptOutcome } from "../../ledger/history.js";
import type { WriteSet } from "../../kv/write-set.js";
import type { LedgerWriter } from "../../ledger/io/ledger-writer.js";
import { FORCE_LEDGER_CHUNK_AFTER as FLAG_FORCE_CHUNK_AFTER } from "../../ledger/entry-header.js";
import type { SealedTx } from "../../ledger/seal-batch.js";
import { InlineSealer, type EntrySealer } from "./sealer.js";
import { writeSignatureMaps, type NodeSigningIdentity } from "./signature-tx.js";
import { ReplicatedEntryError, ReplicatedEntryErrorCode } from "./replicated-entry-error.js";

export {
  serviceSigningIdentity,
  type NodeSigningIdentity,
  type ServiceSigningIdentity,
} from "./signature-tx.js";

export interface TxPipelineOptions {
  readonly view: View;
  /** Signature after this many transactions (CCF ledger_signatures.tx_count, default 5000). */
  readonly sigTxInterval: number;
  /** Signature after this many ms with unsigned transactions (CCF default 100 in the sandbox). */
  readonly sigMsInterval: number;
  /** Conflicting executions retried before giving up. */
  readonly conflictRetriesMax: number;
  /**
   * Replicated nodes: writes are refused while this many transactions await commit
   * (consensus.max_uncommitted_tx_count; 0 = unlimited).
   */
  readonly maxUncommittedTxs?: number | undefined;
  /**
   * Committed transactions whose receipts stay answerable from memory; older history is
   * compacted and its receipts are no longer served (the ledger files keep the entries).
   * Unbounded if absent.
   */
  readonly receiptWindowTxs?: number | undefined;
}

export const DEFAULT_PIPELINE_OPTIONS: Omit<TxPipelineOptions, "view"> = {
  sigTxInterval: 5000,
  sigMsInterval: 100,
  conflictRetriesMax: 10,
  receiptWindowTxs: 100_000,
};

export type ExecuteOutcome<T> =
  | { readonly kind: "committed"; readonly txId: TxId; readonly result: T }
  | { readonly kind: "read-only"; readonly readSeqno: Seqno; readonly result: T }
  /** The caller's `keep` refused the result: nothing was written. */
  | { readonly kind: "discarded"; readonly result: T }
  | { readonly kind: "conflict"; readonly attempts: number }
  /** The handler wrote, but this node is not the primary: forward the request. */
  | { readonly kind: "not-primary" }
  /** The handler wrote, but too many transactions await commit (back-pressure). */
  | { readonly kind: "too-many-pending"; readonly pending: number }
  /** The handler wrote, but the ledger failed (now or before): nothing was written. */
  | { readonly kind: "storage-fault"; readonly fault: StorageError };

/** Optional per-stage timing for benchmarks: accumulates milliseconds per stage. */
export interface StageProfile {
  now(): number;
  readonly totalsMs: Record<PipelineStage, number>;
}
export type PipelineStage = "execute" | "serialise" | "merkle" | "ledger" | "signature";

/**
 * Where a replicated node's pipeline hands its entries: the replication outbox, which consensus
 * drains (the pipeline knows nothing of the consensus driver). Without one the pipeline runs
 * standalone: it syncs and commits at each signature itself (benchmarks, tests).
 */
export interface ConsensusSink {
  /** Leader: entries now in the local ledger (not yet synced), in seqno order. */
  replicate(entries: readonly RaftEntry[]): void;
  /** Whether this node may execute writes: consensus considers it the primary right now. */
  canWrite(): boolean;
  /** The new configuration (trusted node ids) a committed write set creates, if any. */
  configurationOf(writeSet: WriteSet): readonly NodeId[] | undefined;
}

export interface TxPipelineDeps {
  readonly store: Store;
  readonly history: TxHistory;
  readonly ledger: LedgerWriter;
  /** Seals committed write sets (inline or on worker threads) with `history.secrets`;
   * default: an InlineSealer on the node thread. */
  readonly sealer?: EntrySealer | undefined;
  readonly identity: NodeSigningIdentity;
  readonly options: TxPipelineOptions;
  /** Monotonic time now, from the clock that later drives `tick` (the interval starts here). */
  readonly nowMs: number;
  /**
   * Wall-clock milliseconds, read once per signature for the COSE signature's `iat` (the node's
   * Clock.realtimeMs; tests and benchmarks may leave the default, Date.now).
   */
  readonly realtimeMs?: (() => number) | undefined;
  readonly profile?: StageProfile | undefined;
  readonly consensus?: ConsensusSink | undefined;
  /** Called right after each signature, while the store and history stand exactly at it. */
  readonly onSignature?: ((txId: TxId) => void) | undefined;
  /**
   * Called for every transaction's write set once the store has it: on the primary right after
   * commit (before it is sealed), on a backup after appendReplicated applied it (before the next
   * entry is decrypted). Rekeys and snapshot evidence checks hang off it.
   */
  readonly onWriteSet?: ((seqno: Seqno, writeSet: WriteSet) => void) | undefined;
  /** Called once, at the first StorageError of the ledger: the node must stop (see above). */
  readonly onStorageFault?: ((fault: StorageError) => void) | undefined;
  /**
   * Called when pump() may have work: a transaction was executed, or a commit advanced while
   * transactions wait for a signature. The node runs pump() once, later in the same event-loop
   * turn (coalescing calls); the sealer's batch-done notice should call it too.
   */
  readonly onWork?: (() => void) | undefined;
}

/** The node records sealed transactions once this many are pending (one batch). */
const SEAL_POLL_TXS = 64;
const NOTHING: readonly SealedTx[] = [];

export class TxPipeline {
  private readonly store: Store;
  private readonly history: TxHistory;
  private readonly ledger: LedgerWriter;
  private readonly sealer: EntrySealer;
  private readonly identity: NodeSigningIdentity;
  private readonly options: TxPipelineOptions;
  private readonly profile: StageProfile | undefined;
  private readonly consensus: ConsensusSink | undefined;
  private readonly onSignature: ((txId: TxId) => void) | undefined;
  private readonly onWriteSet: ((seqno: Seqno, writeSet: WriteSet) => void) | undefined;
  private readonly realtimeMs: () => number;
  private readonly onStorageFault: ((fault: StorageError) => void) | undefined;
  private readonly onWork: () => void;
  /** The seqno of the last signature this node emitted (0: none yet). */
  private lastSignatureSeqno = 0;
  /** Invariant: once set, never cleared; no write is accepted and no commit advances. */
  private fault: StorageError | null = null;
  private view: View;
  /** Configurations created by transactions still with the sealer, by seqno. */
  private readonly pendingConfigs = new Map<number, readonly NodeId[]>();
  // Invariant: unsignedCount == number of transactions after the last signature.
  private unsignedCount = 0;
  /** Set by requestLedgerChunk: the next signature ends the current ledger chunk. */
  private chunkRequested = false;
  /** Set by emitSignature; tick() then restarts the time interval at its own clock. */
  private signedSinceTick = false;
  private submitsSincePoll = 0;
  private lastSignatureMs: number;
  private committed: TxId;

  constructor(deps: TxPipelineDeps) {
    this.store = deps.store;
    this.history = deps.history;
    this.ledger = deps.ledger;
    this.sealer = deps.sealer ?? new InlineSealer(deps.history.secrets);
    this.identity = deps.identity;
    this.options = deps.options;
    this.profile = deps.profile;
    this.consensus = deps.consensus;
    this.onSignature = deps.onSignature;
    this.onWriteSet = deps.onWriteSet;
    this.realtimeMs = deps.realtimeMs ?? Date.now;
    this.onStorageFault = deps.onStorageFault;
    this.onWork = deps.onWork ?? (() => undefined);
    this.view = deps.options.view;
    this.lastSignatureMs = deps.nowMs;
    assert(this.store.seqno === this.history.lastSeqno, "store and history start aligned");
    this.committed = { view: deps.options.view, seqno: this.store.seqno };
    // Replicated: what consensus committed so far is what the store can no longer roll back (0,
    // or the seqno of the snapshot it started from).
    if (deps.consensus !== undefined) {
      const seqno = this.store.compactedSeqno;
      this.committed = { view: (seqno === 0 ? 0 : deps.options.view) as View, seqno };
    }
  }

  get commitTxId(): TxId {
    return this.committed;
  }

  /** The last seqno in the store: executed here (maybe still being sealed) or replicated. */
  get lastSeqno(): Seqno {
    return this.store.seqno;
  }

  /** Transactions handed to the sealer and not yet recorded (its queue depth). */
  get sealerPendingCount(): number {
    return this.sealer.pendingCount;
  }

  get lastTxId(): TxId {
    return { view: this.view, seqno: this.store.seqno };
  }

  /** The view new transactions are created in (the consensus view once this node leads). */
  setView(view: View): void {
    this.view = view;
  }

  /**
   * Runs `handler` in a transaction and, if it wrote anything, appends it to the ledger.
   * `claimsDigest` may be a function, read after the handler ran (apps set claims as they go).
   * When `keep` says no to the handler's result, its writes are dropped ("discarded").
   */
  execute<T>(
    handler: (tx: Tx) => T,
    claimsDigest?: Uint8Array | (() => Uint8Array | undefined),
    keep?: (result: T) => boolean,
  ): ExecuteOutcome<T> {
    for (let attempt = 1; attempt <= this.options.conflictRetriesMax; attempt++) {
      const t0 = this.profile?.now() ?? 0;
      const tx = this.store.begin();
      const result = handler(tx);
      if (keep !== undefined && !keep(result)) {
        tx.close();
        return { kind: "discarded", result };
      }
      if (tx.hasWrites && this.fault !== null) {
        tx.close();
        return { kind: "storage-fault", fault: this.fault };
      }
      if (tx.hasWrites && this.consensus !== undefined) {
        if (!this.consensus.canWrite()) {
          tx.close();
          return { kind: "not-primary" };
        }
        const pending = this.store.seqno - this.committed.seqno;
        const limit = this.options.maxUncommittedTxs ?? 0;
        if (limit > 0 && pending >= limit) {
          tx.close();
          return { kind: "too-many-pending", pending };
        }
      }
      const outcome = this.store.commit(tx);
      if (this.profile !== undefined) this.profile.totalsMs.execute += this.profile.now() - t0;
      switch (outcome.kind) {
        case "conflict":
          continue;
        case "read-only":
          return { kind: "read-only", readSeqno: outcome.seqno, result };
        case "committed": {
          const txId = { view: this.view, seqno: outcome.seqno };
          this.onWriteSet?.(outcome.seqno, outcome.writeSet);
          const configuration = this.consensus?.configurationOf(outcome.writeSet);
          if (configuration !== undefined) this.pendingConfigs.set(outcome.seqno, configuration);
          const claims = typeof claimsDigest === "function" ? claimsDigest() : claimsDigest;
          const fault = this.recordCommitted(txId, outcome.writeSet, claims);
          if (fault !== null) return { kind: "storage-fault", fault };
          return { kind: "committed", txId, result };
        }
      }
    }
    return { kind: "conflict", attempts: this.options.conflictRetriesMax };
  }

  /**
   * Hands a transaction the store committed to the sealer (and signs when one is due); a
   * StorageError on the way is the answer instead: the transaction will never commit.
   */
  private recordCommitted(
    txId: TxId,
    writeSet: WriteSet,
    claims: Uint8Array | undefined,
  ): StorageError | null {
    try {
      this.submit(txId, writeSet, claims);
      this.unsignedCount++;
      if (this.unsignedCount >= this.options.sigTxInterval) this.emitSignature();
      else this.onWork();
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      return e;
    }
    return null;
  }

  /**
   * Runs one ledger duty. Its StorageError stops the pipeline (reported once) and is rethrown;
   * after that, every duty throws it again without touching the ledger.
   */
  private io<T>(duty: () => T): T {
    if (this.fault !== null) throw this.fault;
    try {
      return duty();
    } catch (e) {
      if (e instanceof StorageError) {
        this.fault = e;
        this.onStorageFault?.(e);
      }
      throw e;
    }
  }

  /** The StorageError that stopped this pipeline, or null. */
  get storageFault(): StorageError | null {
    return this.fault;
  }

  /** Hands a committed write set to the sealer; records whatever is sealed by now. */
  private submit(txId: TxId, writeSet: WriteSet, claimsDigest: Uint8Array | undefined): void {
    const p = this.profile;
    const t0 = p?.now() ?? 0;
    this.sealer.submit({ txId, writeSet, claimsDigest });
    let sealed = NOTHING;
    if (++this.submitsSincePoll >= SEAL_POLL_TXS) {
      this.submitsSincePoll = 0;
      sealed = this.sealer.poll();
    }
    if (p !== undefined) p.totalsMs.serialise += p.now() - t0;
    this.record(sealed);
  }

  /** Records sealed transactions, in seqno order, in the history and the ledger files. */
  private record(sealed: readonly SealedTx[]): void {
    if (sealed.length === 0) return;
    const p = this.profile;
    const replicated: RaftEntry[] = [];
    for (const tx of sealed) {
      const t0 = p?.now() ?? 0;
      this.history.recordSealed(tx);
      const t1 = p?.now() ?? 0;
      this.io(() => this.ledger.append(tx.entry, { seqno: tx.txId.seqno, isSignature: false }));
      if (p !== undefined) {
        p.totalsMs.merkle += t1 - t0;
        p.totalsMs.ledger += p.now() - t1;
      }
      if (this.consensus !== undefined) {
        const configuration = this.pendingConfigs.get(tx.txId.seqno);
        if (configuration !== undefined) this.pendingConfigs.delete(tx.txId.seqno);
        replicated.push({
          seqno: tx.txId.seqno,
          view: tx.txId.view,
          isSignature: false,
          configuration,
          payload: tx.entry,
        });
      }
    }
    if (replicated.length > 0) this.consensus!.replicate(replicated);
  }

  /**
   * Records what the sealer finished, and emits a signature if `sigMsInterval` has passed with
   * unsigned transactions. The node calls this from its loop, with monotonic time.
   */
  tick(nowMs: number): boolean {
    this.record(this.sealer.poll());
    if (this.consensus !== undefined && !this.consensus.canWrite()) return false;
    if (this.signedSinceTick) {
      // A signature by count (or an explicit one) restarts the interval.
      this.signedSinceTick = false;
      this.lastSignatureMs = nowMs;
    }
    if (this.unsignedCount === 0) return false;
    if (nowMs - this.lastSignatureMs < this.options.sigMsInterval) return false;
    return this.signAt(nowMs);
  }

  /** Emits a signature from the node loop at `nowMs`, which restarts the interval. */
  private signAt(nowMs: number): true {
    this.emitSignature();
    this.signedSinceTick = false;
    this.lastSignatureMs = nowMs;
    return true;
  }

  /**
   * Replicated primary: records what the sealer finished, and signs when a signature is due:
   * transactions are unsigned and the last signature committed (or the interval passed). The
   * signature first waits for the sealer to finish what it holds (one batch at most, well under
   * a millisecond), since its root covers every earlier entry. Returns whether it signed.
   */
  pump(nowMs: number): boolean {
    if (this.fault !== null) return false;
    this.record(this.sealer.poll());
    if (this.consensus === undefined || !this.consensus.canWrite()) return false;
    if (this.unsignedCount === 0) return false;
    const awaiting = this.committed.seqno < this.lastSignatureSeqno;
    if (awaiting && nowMs - this.lastSignatureMs < this.options.sigMsInterval) return false;
    return this.signAt(nowMs);
  }

  /**
   * Writes a signature transaction over every entry so far, makes the ledger durable, and
   * commits up to the signature. Returns the signature's TxId.
   */
  emitSignature(): TxId {
    if (this.fault !== null) throw this.fault;
    const t0 = this.profile?.now() ?? 0;
    // The root must cover every earlier entry: wait for the sealer to finish them all.
    this.record(this.sealer.drain());
    assert(this.history.lastSeqno === this.store.seqno, "every committed tx is recorded");
    const seqno = (this.store.seqno + 1) as Seqno;
    const txId: TxId = { view: this.view, seqno };
    const tx = this.store.begin();
    writeSignatureMaps(tx, {
      txId,
      commitTxId: this.committed,
      history: this.history,
      identity: this.identity,
      issuedAtSeconds: Math.floor(this.realtimeMs() / 1000),
    });
    const outcome = this.store.commit(tx);
    assert(outcome.kind === "committed" && outcome.seqno === seqno, "a signature never conflicts");
    // Signatures are sealed here, on the node thread: they are rare and nothing may overtake them.
    // trigger_ledger_chunk: the signature closes the current chunk (chunks end on signatures).
    const flags = this.chunkRequested ? FLAG_FORCE_CHUNK_AFTER : 0;
    this.chunkRequested = false;
    const entry = this.history.appendWriteSet({ txId, writeSet: outcome.writeSet, flags });
    this.io(() => this.ledger.append(entry, { seqno, isSignature: true }));
    this.unsignedCount = 0;
    this.lastSignatureSeqno = seqno;
    this.signedSinceTick = true;
    this.onSignature?.(txId);
    if (this.consensus !== undefined) {
      // Replicated: consensus syncs and commits once a majority holds the signature.
      this.consensus.replicate([{ seqno, view: txId.view, isSignature: true, payload: entry }]);
      if (this.profile !== undefined) this.profile.totalsMs.signature += this.profile.now() - t0;
      return txId;
    }
    // Durability point: the signature and everything before it reach the disk before commit.
    this.io(() => this.ledger.sync());
    this.commit(txId);
    if (this.profile !== undefined) this.profile.totalsMs.signature += this.profile.now() - t0;
    return txId;
  }

  /** Consensus committed up to `txId` (a signature this node holds durably). */
  commitTo(txId: TxId): void {
    if (txId.seqno <= this.committed.seqno) return;
    this.commit(txId);
  }

  /**
   * Follower path: entries from the primary, in seqno order after the last one. Records each
   * in the history, applies its write set to the store and appends it to the ledger.
   * Throws EntryError on malformed bytes, and ReplicatedEntryError for a signature over another
   * root or a private domain that does not decrypt.
   */
  appendReplicated(entries: readonly RaftEntry[]): void {
    for (const e of entries) {
      assert(e.seqno === this.store.seqno + 1, `replicated ${e.seqno} after ${this.store.seqno}`);
      const rootBefore = e.isSignature ? toHex(this.history.rootForNextSignature()) : "";
      const entry = this.history.appendEntry(e.payload);
      const signed = e.isSignature ? this.history.signatureAt(e.seqno) : null;
      if (signed !== null && signed.root !== rootBefore) {
        // The primary signed a tree this node does not have: the logs diverged. Fatal.
        this.history.retract((e.seqno - 1) as Seqno);
        throw new ReplicatedEntryError(
          { code: ReplicatedEntryErrorCode.RootMismatch, view: e.view, seqno: e.seqno },
          `signature ${e.view}.${e.seqno} signs root ${signed.root}, but this node's ledger ` +
            `has root ${rootBefore}`,
        );
      }
      const writeSet = decodeWriteSet(entry, this.history.secrets);
      if (writeSet === null) {
        this.history.retract((e.seqno - 1) as Seqno);
        throw new ReplicatedEntryError(
          { code: ReplicatedEntryErrorCode.CannotDecrypt, view: e.view, seqno: e.seqno },
          `entry ${e.view}.${e.seqno} does not decrypt with the ledger secrets`,
        );
      }
      this.store.apply(e.seqno, writeSet);
      this.io(() => this.ledger.append(e.payload, { seqno: e.seqno, isSignature: e.isSignature }));
      this.onWriteSet?.(e.seqno, writeSet);
      this.view = e.view;
    }
  }

  /**
   * Drops every transaction after `seqno` (an unsigned suffix consensus discarded), including
   * any still with the sealer.
   */
  rollbackTo(seqno: Seqno): void {
    assert(seqno >= this.committed.seqno, `rollback to ${seqno} below commit`);
    // Everything still with the sealer is dropped, so the target must not fall among those.
    assert(
      seqno <= this.history.lastSeqno || seqno >= this.store.seqno,
      `rollback to ${seqno} would keep transactions still being sealed`,
    );
    this.sealer.drain(); // sealed results of rolled-back transactions are discarded
    this.submitsSincePoll = 0;
    for (const s of this.pendingConfigs.keys()) if (s > seqno) this.pendingConfigs.delete(s);
    if (this.store.seqno > seqno) this.store.rollback(seqno);
    if (this.history.lastSeqno > seqno) this.history.retract(seqno);
    if (this.ledger.lastSeqno > seqno) this.io(() => this.ledger.truncate(seqno));
    // Secrets introduced by rolled-back transactions (in force from after seqno + 1) go too.
    this.sealer.retractSecrets((seqno + 1) as Seqno);
    this.unsignedCount = 0;
  }

  /** A new ledger secret, in force from `fromSeqno` (a rekey); seals after it use it. */
  addLedgerSecret(fromSeqno: Seqno, key: Uint8Array): void {
    this.sealer.addSecret(fromSeqno, key);
  }

  /** Makes every ledger entry appended so far durable (consensus' sync duty). */
  syncLedger(): void {
    this.io(() => this.ledger.sync());
  }

  private commit(txId: TxId): void {
    // No commit after a fault: the sync that made txId durable may be the one that failed.
    this.io(() => this.ledger.commit(txId.seqno));
    this.committed = txId;
    if (this.unsignedCount > 0) this.onWork();
    this.store.compact(txId.seqno);
    const window = this.options.receiptWindowTxs;
    if (window !== undefined && txId.seqno - window > this.history.firstRetained) {
      this.history.compact((txId.seqno - window) as Seqno);
    }
  }

  /** The receipt of `seqno`; "not-signed" while it is committed locally but not yet signed. */
  receipt(seqno: Seqno): ReceiptOutcome {
    // Committed in the KV but still with the sealer: no signature can cover it yet.
    if (seqno > this.history.lastSeqno && seqno <= this.store.seqno) return { kind: "not-signed" };
    return this.history.receipt(seqno);
  }

  /** trigger_ledger_chunk: the next signature transaction completes the current chunk. */
  requestLedgerChunk(): void {
    this.chunkRequested = true;
  }

  /** Hands buffered ledger bytes to the OS, so readers of the ledger files see them. */
  flushLedger(): void {
    this.io(() => this.ledger.flush());
  }

  /** Signs anything outstanding, closes the ledger files and stops the sealer. */
  async close(): Promise<void> {
    if (this.fault !== null) {
      // Stopping after a storage fault: nothing more is written or synced.
      this.ledger.abandon();
      await this.sealer.close();
      return;
    }
    if (this.consensus === undefined && this.unsignedCount > 0) this.emitSignature();
    this.ledger.close();
    await this.sealer.close();
  }
}
