/**
 * The real Clock and Rng (base/io.ts): monotonic time from performance.now(), wall-clock time
 * from Date.now(), randomness from node:crypto. The simulator injects its own.
 */
import { randomBytes, randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Clock, Rng } from "../base/io.js";

export class SystemClock implements Clock {
  monotonicMs(): number {
    return performance.now();
  }

  realtimeMs(): number {
    return Date.now();
  }
}

export class CryptoRng implements Rng {
  bytes(length: number): Uint8Array {
    return new Uint8Array(randomBytes(length));
  }

  intBelow(bound: number): number {
    return randomInt(bound);
  }
}
