/**
 * The limits of one piece of guest work in the QuickJS sandbox (sandbox.ts): a wall-clock
 * deadline, polled by QuickJS's interrupt handler, and the memory the shared WASM instance may
 * grow by meanwhile (quickjs.ts's growth cap). Created when the work starts, disarmed when it
 * ends (sandbox.ts's guarded() does it on every path).
 */
import {
  noteWasmNeeded,
  setWasmGrowthCap,
  wasmBytes,
  wasmNeededBytes,
  type QuickJSWASMModule,
} from "./quickjs.js";

/** Extra heap granted after a failure, so that reading the error cannot itself run out. */
export const DIAGNOSIS_HEADROOM_BYTES = 1024 * 1024;

/** The deadline as an interrupt handler; disarmed once the guest's work is over. */
export class Deadline {
  /** Whether the handler interrupted the guest at least once. */
  interrupted = false;
  /** Whether it interrupted because the WASM memory grew past the call's memory limit. */
  memoryExceeded = false;
  private armed = true;
  private readonly atMs: number;
  private readonly startBytes: number;
  /** The growth cap in force before this deadline's (restored by disarm). */
  private readonly outerCap: number | undefined;

  constructor(
    budgetMs: number,
    /** The runtime's memory limit, kept to grant headroom when diagnosing a failure. */
    readonly memoryBytes: number,
    /** Current size of the shared WASM memory, in bytes. */
    private readonly wasmBytes: () => number,
    /** The WASM memory growth policy (quickjs.ts); none when absent. */
    private readonly growth?: WasmGrowthPolicy,
  ) {
    this.atMs = Date.now() + budgetMs;
    this.startBytes = wasmBytes();
    // Growth past what guest work needed so far plus `memoryBytes` is refused as it is
    // attempted. Nested guest work (a bundle validated inside a proposal's call) keeps the
    // outer cap if it is lower.
    const cap = (growth?.neededBytes() ?? 0) + memoryBytes + DIAGNOSIS_HEADROOM_BYTES;
    this.outerCap = growth?.setCap(cap);
    if (this.outerCap !== undefined && this.outerCap < cap) growth?.setCap(this.outerCap);
  }

  /**
   * QuickJS polls this while the guest runs. Besides the deadline it enforces the byte limit
   * QuickJS itself cannot (see the module comment): growth of the WASM memory during this call
   * beyond `memoryBytes` stops the guest as out-of-memory.
   */
  readonly handler = (): boolean => {
    if (!this.armed) return false;
    if (this.wasmBytes() - this.startBytes > this.memoryBytes) {
      this.memoryExceeded = true;
      this.interrupted = true;
      return true;
    }
    if (Date.now() <= this.atMs) return false;
    this.interrupted = true;
    return true;
  };

  /** The outcome of an interrupted call: out of memory, or out of time. */
  interruptOutcome(): { readonly kind: "out-of-memory" | "timeout" } {
    return this.memoryExceeded ? { kind: "out-of-memory" } : { kind: "timeout" };
  }

  /**
   * Ends the guest's work: the handler stops interrupting and the growth cap is restored.
   * `withinLimits` says the work ended without hitting a limit, so the memory it grew to was
   * needed.
   */
  disarm(withinLimits = false): void {
    if (!this.armed) return;
    this.armed = false;
    // Only growth this work caused counts: memory freed by a runaway guest is not "needed".
    if (withinLimits && this.wasmBytes() > this.startBytes) this.growth?.noteNeeded();
    this.growth?.setCap(this.outerCap);
  }
}

/** A deadline of `limits` over the WASM memory of `quickjs`, started now. */
export function newDeadline(
  quickjs: QuickJSWASMModule,
  limits: { readonly deadlineMs: number; readonly memoryBytes: number },
): Deadline {
  return new Deadline(limits.deadlineMs, limits.memoryBytes, () => wasmBytes(quickjs), {
    neededBytes: () => wasmNeededBytes(quickjs),
    noteNeeded: () => noteWasmNeeded(quickjs),
    setCap: (cap) => setWasmGrowthCap(quickjs, cap),
  });
}

/** How a Deadline caps WASM memory growth (quickjs.ts). */
export interface WasmGrowthPolicy {
  neededBytes(): number;
  noteNeeded(): void;
  /** Sets the cap (undefined: none) and returns the previous one. */
  setCap(capBytes: number | undefined): number | undefined;
}
