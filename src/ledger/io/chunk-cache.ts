/**
 * Ledger chunk files read asynchronously, for historical queries (ccf-compatibility.md §3.8):
 * reading a 5 MB chunk with readFileSync held a node's event loop for milliseconds per request,
 * so 40 concurrent historical reads delayed every other request by half a second (issue #15).
 * Here directories are listed and files read with fs/promises, at most `concurrentReadsMax` files
 * at a time, the same file is read once however many callers want it, and the chunks read last
 * are kept (least recently used dropped beyond `cacheBytesMax`). Framing is checked as the
 * synchronous reader checks it (ledger-reader.ts: the same slots, read-only directories and
 * errors); only the scan of a loaded file runs on the event loop, one pass over entry headers.
 *
 * Callers look entries up synchronously (`entryAt`), and when one is not in memory ask for it
 * (`load`) and look again once the promise settles. Only committed entries are served: a load is
 * told the commit seqno (after the caller flushed the ledger writer), and entries after it are
 * not kept, so an entry that a later rollback replaced is never answered from memory.
 *
 * Bounded: at most `concurrentReadsMax` reads run and at most `queuedReadsMax` files wait for
 * a read; a load beyond that answers "busy" at once and the caller answers "not available yet".
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { LedgerErrorCode, ledgerError, type ScannedEntry } from "../chunk-format.js";
import {
  LedgerError,
  ledgerFileNamed,
  planSlotsOf,
  scanLedgerFile,
  sortLedgerFiles,
  type LedgerFileInfo,
  type Slot,
} from "./ledger-reader.js";

export interface ChunkCacheOptions {
  readonly directory: string;
  /** CCF's `ledger.read_only_directories`, searched in this order (see ReadLedgerOptions). */
  readonly readOnlyDirectories: readonly string[];
  /** Files read at the same time. */
  readonly concurrentReadsMax: number;
  /** Files waiting for a read; a load past it is refused ("busy"). */
  readonly queuedReadsMax: number;
  /** Bytes of chunk files kept in memory; the least recently used go first beyond it. */
  readonly cacheBytesMax: number;
}

/** What a load ended with: the entry is now in memory, or the cache refused to queue it. */
export type ChunkLoadOutcome = { readonly kind: "loaded" } | { readonly kind: "busy" };

interface CachedChunk {
  readonly path: string;
  readonly bytes: Uint8Array;
  /** Invariant: entries[i].seqno === entries[0].seqno + i; none after the load's commit seqno. */
  readonly entries: readonly ScannedEntry[];
}

/** A read of one file, shared by the loads that want it. */
interface PendingRead {
  readonly committedSeqno: number;
  readonly done: Promise<CachedChunk>;
}

export class ChunkCache {
  /** Least recently used first. Invariant: the sum of bytes is at most cacheBytesMax. */
  private readonly chunks: CachedChunk[] = [];
  private cachedBytes = 0;
  private readonly reading = new Map<string, PendingRead>();
  /** Reads waiting for a slot. Invariant: length <= queuedReadsMax. */
  private readonly queue: (() => void)[] = [];
  private running = 0;
  /** A listing of the ledger directories in progress, shared by the loads that need one. */
  private listing: Promise<Slot[]> | null = null;

  constructor(private readonly options: ChunkCacheOptions) {}

  /** The framed entry at `seqno` if a loaded chunk holds it (and marks that chunk used). */
  entryAt(seqno: number): Uint8Array | null {
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const chunk = this.chunks[i]!;
      const first = chunk.entries[0]?.seqno ?? Infinity;
      const entry = chunk.entries[seqno - first];
      if (entry === undefined) continue;
      this.chunks.splice(i, 1);
      this.chunks.push(chunk);
      return chunk.bytes.subarray(entry.offset, entry.offset + entry.lengthBytes);
    }
    return null;
  }

  /**
   * Brings the chunk holding `seqno` into memory. `committedSeqno` is the commit seqno after the
   * caller flushed the ledger (seqno <= committedSeqno). Rejects with LedgerError when the
   * ledger does not hold the seqno or a file is damaged, and with file system errors.
   */
  async load(seqno: number, committedSeqno: number): Promise<ChunkLoadOutcome> {
    // A file renamed (completed, committed) between listing and reading: one fresh try.
    try {
      return await this.loadOnce(seqno, committedSeqno);
    } catch (err: unknown) {
      if (!isMissingFile(err)) throw err;
      return this.loadOnce(seqno, committedSeqno);
    }
  }

  private async loadOnce(seqno: number, committedSeqno: number): Promise<ChunkLoadOutcome> {
    const { slot, last } = await this.locate(seqno);
    const path = slot.copies[0]!.path;
    const pending = this.reading.get(path);
    let chunk: CachedChunk;
    // A read that started before `seqno` was committed may not keep it: read again then.
    if (pending !== undefined && pending.committedSeqno >= seqno) chunk = await pending.done;
    else if (this.isFull()) return { kind: "busy" };
    else chunk = await this.startRead(path, slot, { last, committedSeqno });
    const first = chunk.entries[0]?.seqno ?? Infinity;
    if (chunk.entries[seqno - first] === undefined) {
      const file = slot.copies[0]!.name;
      const message = `the file ends before seqno ${seqno}`;
      throw ledgerError(
        LedgerErrorCode.MissingFile,
        { file, offset: chunk.bytes.byteLength },
        message,
      );
    }
    return { kind: "loaded" };
  }

  /** Whether a new read would have to wait and the queue of waiting reads is full. */
  private isFull(): boolean {
    const { concurrentReadsMax, queuedReadsMax } = this.options;
    return this.running >= concurrentReadsMax && this.queue.length >= queuedReadsMax;
  }

  private startRead(
    path: string,
    slot: Slot,
    options: { readonly last: boolean; readonly committedSeqno: number },
  ): Promise<CachedChunk> {
    const done = this.whenSlotFree(() => readChunk(slot, options));
    const pending = { committedSeqno: options.committedSeqno, done };
    this.reading.set(path, pending);
    const settle = () => {
      if (this.reading.get(path) === pending) this.reading.delete(path);
    };
    done.then((chunk) => {
      settle();
      this.keep(chunk);
    }, settle);
    return done;
  }

  private async whenSlotFree<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrentReadsMax) {
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }

  private keep(chunk: CachedChunk): void {
    const index = this.chunks.findIndex((c) => c.path === chunk.path);
    if (index >= 0) this.cachedBytes -= this.chunks.splice(index, 1)[0]!.bytes.byteLength;
    this.chunks.push(chunk);
    this.cachedBytes += chunk.bytes.byteLength;
    while (this.cachedBytes > this.options.cacheBytesMax && this.chunks.length > 1) {
      this.cachedBytes -= this.chunks.shift()!.bytes.byteLength;
    }
  }

  /** The slot whose files hold `seqno`, and whether it is the ledger's last. */
  private async locate(seqno: number): Promise<{ slot: Slot; last: boolean }> {
    // A shared listing may have started before the caller flushed the ledger: a seqno it does
    // not hold is looked up again in a fresh one (a file renamed since is load's ENOENT retry).
    let slots = await this.sharedSlots();
    let index = slots.findIndex((s) => holds(s.copies[0]!, seqno));
    if (index < 0) {
      slots = await this.planSlots();
      index = slots.findIndex((s) => holds(s.copies[0]!, seqno));
    }
    if (index < 0) throw missingSeqno(seqno, slots);
    return { slot: slots[index]!, last: index === slots.length - 1 };
  }

  /** The listing in progress if there is one (concurrent loads list once), else a new one. */
  private sharedSlots(): Promise<Slot[]> {
    if (this.listing === null) {
      const listing = this.planSlots();
      this.listing = listing;
      const clear = () => {
        if (this.listing === listing) this.listing = null;
      };
      listing.then(clear, clear);
    }
    return this.listing;
  }

  private async planSlots(): Promise<Slot[]> {
    const main = await listAsync(this.options.directory);
    const readOnly = await Promise.all(this.options.readOnlyDirectories.map(listAsync));
    return planSlotsOf(main, readOnly);
  }
}

function holds(file: LedgerFileInfo, seqno: number): boolean {
  return file.firstSeqno <= seqno && (file.lastSeqno === null || seqno <= file.lastSeqno);
}

function missingSeqno(seqno: number, slots: readonly Slot[]): LedgerError {
  const file = slots[0]?.copies[0]?.name ?? "";
  const message = `no ledger file holds seqno ${seqno}`;
  return ledgerError(LedgerErrorCode.MissingFile, { file, offset: 0 }, message);
}

/**
 * The first well-framed copy of `slot` (a read-only copy that does not frame is skipped, as the
 * synchronous reader skips it), keeping only entries up to `committedSeqno`.
 */
async function readChunk(
  slot: Slot,
  options: { readonly last: boolean; readonly committedSeqno: number },
): Promise<CachedChunk> {
  let failure: unknown = null;
  for (const file of slot.copies) {
    const raw = await readFile(file.path);
    const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    try {
      const scan = scanLedgerFile(file, options.last, bytes);
      const entries = scan.entries.filter((e) => e.seqno <= options.committedSeqno);
      return { path: slot.copies[0]!.path, bytes, entries };
    } catch (err: unknown) {
      if (!slot.readOnly || !(err instanceof LedgerError)) throw err;
      failure = err;
    }
  }
  throw failure;
}

async function listAsync(dir: string): Promise<LedgerFileInfo[]> {
  const files: Omit<LedgerFileInfo, "sizeBytes">[] = [];
  for (const name of await readdir(dir)) {
    const file = ledgerFileNamed(dir, name);
    if (file !== null) files.push(file);
  }
  const sizes = await Promise.all(files.map((f) => stat(f.path).then((s) => s.size)));
  return sortLedgerFiles(files.map((f, i) => ({ ...f, sizeBytes: sizes[i]! })));
}

function isMissingFile(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === "ENOENT";
}
