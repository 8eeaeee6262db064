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
