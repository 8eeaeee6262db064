/**
 * How historical queries get ledger entries without blocking the node's event loop
 * (ccf-compatibility.md §3.8; issue #15: synchronous reads of 5 MB chunks delayed every other
 * request). Each node has one ChunkCache (ledger/io/chunk-cache.ts), made at its first
 * historical read: files are read with fs/promises, a few at a time, and the chunks read last
 * are kept.
 *
 * A request's handler runs synchronously inside its transaction (style.md §2.4), so it asks a
 * HistoricalFetch for the entries it needs: those in memory are answered at once, the others
 * start loading and the handler answers CCF's 202 "not currently available" (notAvailable).
 * withHistoricalEntries then waits for those loads (at most HISTORICAL_WAIT_MS) and runs the
 * handler again, so a client usually gets its answer in one request, and gets the 202 with
 * Retry-After, as from CCF, when the node is too busy reading to answer in time.
 */
import { formatTxId, type Seqno, type TxId } from "../../base/ids.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import type { RpcOutcome, RpcResponse } from "../../http/router.js";
import { ChunkCache, type ChunkLoadOutcome } from "../../ledger/io/chunk-cache.js";
import { LedgerError } from "../../ledger/io/ledger-reader.js";
import type { NodeContext } from "./node-context.js";

/** How long a request waits for its entries before answering 202 (CCF answers it at once). */
export const HISTORICAL_WAIT_MS = 3_000;
/** CCF's Retry-After on a 202 for a historical transaction not in memory yet. */
const RETRY_AFTER_SECONDS = 3;
/** Ledger files read at once: each read runs on libuv's pool of 4 threads. */
const CONCURRENT_READS_MAX = 2;
/** Files waiting to be read; requests past it get 202 at once. */
const QUEUED_READS_MAX = 64;
/** Chunk files kept in memory (CCF's chunks are 5 MB: about 9 of them). */
const CACHE_BYTES_MAX = 48 * 1024 * 1024;

const caches = new WeakMap<NodeContext, ChunkCache>();

/** The node's chunk cache, made at its first historical read. */
export function chunkCacheOf(node: NodeContext): ChunkCache {
  let cache = caches.get(node);
  if (cache === undefined) {
    cache = new ChunkCache({
      directory: node.config.ledger.directory,
      readOnlyDirectories: node.config.ledger.readOnlyDirectories,
      concurrentReadsMax: CONCURRENT_READS_MAX,
      queuedReadsMax: QUEUED_READS_MAX,
      cacheBytesMax: CACHE_BYTES_MAX,
    });
    caches.set(node, cache);
  }
  return cache;
}

/** A load's end, as a value: a HistoricalFetch never leaves a rejected promise unobserved. */
type LoadResult =
  | { readonly kind: "done"; readonly outcome: ChunkLoadOutcome }
  | { readonly kind: "failed"; readonly error: HttpError };

/** The committed ledger entries one run of a handler asked for. */
export class HistoricalFetch {
  private readonly loads: Promise<LoadResult>[] = [];

  constructor(private readonly node: NodeContext) {}

  /** The framed entry at committed `seqno`, or null when it is being loaded. */
  entry(seqno: Seqno): Uint8Array | null {
    const cache = chunkCacheOf(this.node);
    const found = cache.entryAt(seqno);
    if (found !== null) return found;
    // Ordering: the writer's buffer reaches the files before the commit seqno is read.
    this.node.pipeline.flushLedger();
    const load = cache.load(seqno, this.node.pipeline.commitTxId.seqno);
    this.loads.push(
      load.then(
        (outcome) => ({ kind: "done", outcome }),
        (err) => failed(err, seqno),
      ),
    );
    return null;
  }

  get pending(): boolean {
    return this.loads.length > 0;
  }

  /** Waits for the loads, at most `waitMs`; true when all finished. Throws their HttpError. */
  async settle(waitMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), waitMs);
    });
    try {
      const results = await Promise.race([Promise.all(this.loads), timeout]);
      if (results === null) return false;
      for (const result of results) {
        if (result.kind === "failed") throw result.error;
      }
      return results.every((r) => r.kind === "done" && r.outcome.kind === "loaded");
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A failed load as CCF's 500: a damaged or missing ledger file is the node's fault. */
function failed(err: unknown, seqno: number): LoadResult {
  if (!isLedgerReadFailure(err)) throw err;
  const message = `Ledger entry ${seqno} could not be read: ${err.message}`;
  return { kind: "failed", error: new HttpError(HttpErrorCode.InternalError, message) };
}

/** Whether `err` is what reading ledger files may fail with: damage, or a file system error. */
export function isLedgerReadFailure(err: unknown): err is Error {
  return err instanceof LedgerError || (err instanceof Error && "syscall" in err);
}

/**
 * Runs `run` (a handler that answers notAvailable when its fetch lacks an entry); when it asked
 * for entries not in memory, waits for them and runs it once more. Answers the first run's 202
 * when they take longer than HISTORICAL_WAIT_MS.
 */
export async function withHistoricalEntries(
  node: NodeContext,
  run: (fetch: HistoricalFetch) => RpcOutcome,
): Promise<RpcOutcome> {
  const first = new HistoricalFetch(node);
  const outcome = run(first);
  if (!first.pending) return outcome;
  if (!(await first.settle(HISTORICAL_WAIT_MS))) return outcome;
  return run(new HistoricalFetch(node));
}

/** CCF's answer for a historical transaction whose state is not in memory yet. */
export function notAvailable(id: TxId): RpcResponse {
  return {
    status: 202,
    headers: { "retry-after": String(RETRY_AFTER_SECONDS), "content-type": "text/plain" },
    body: new TextEncoder().encode(
      `Historical transaction ${formatTxId(id)} is not currently available.`,
    ),
  };
}
