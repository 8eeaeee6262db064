/**
 * IO as injected interfaces (style.md §2.3). Pure layers see only these; src/platform
 * implements them with node APIs and test/sim with deterministic fakes.
 */

export interface Clock {
  /** Monotonic milliseconds, for intervals and timeouts. */
  monotonicMs(): number;
  /** Wall-clock milliseconds since the Unix epoch, for values written into transactions. */
  realtimeMs(): number;
}

export interface Rng {
  /** Fills and returns `length` random bytes. */
  bytes(length: number): Uint8Array;
  /** A uniformly random integer in [0, bound). */
  intBelow(bound: number): number;
}

/**
 * The synchronous file calls of a writer that must be durable (the ledger writer), as an
 * interface so that a unit test can inject a failure (EIO, ENOSPC) at the file-call boundary.
 * Node's `node:fs` functions fit it; errors are Node's (an Error with an errno `code`).
 */
export interface SyncFileSystem {
  openSync(path: string, flags: string): number;
  writeSync(
    fd: number,
    bytes: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): number;
  fdatasyncSync(fd: number): void;
  fsyncSync(fd: number): void;
  ftruncateSync(fd: number, length: number): void;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  readFileSync(path: string): Uint8Array;
}
