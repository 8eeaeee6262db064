/**
 * The process-wide QuickJS WASM module (quickjs-emscripten-core with the
 * @jitl/quickjs-wasmfile-release-sync variant: Bellard QuickJS, the engine family CCF vendors).
 *
 * Invariant: at most one healthy module per process. Loading costs ~15-25 ms and every runtime
 * created from the module shares its WASM memory, so runtimes are cheap and the module is not.
 * A module whose WASM instance aborted (an emscripten `abort`, e.g. a failed QuickJS assertion
 * while freeing a runtime) is unusable; the sandbox reports it through `discardQuickJS`, and the
 * next `getQuickJS` loads a fresh one instead of failing every later call.
 *
 * Why QuickJS, and why this variant: style.md §9.
 */
import { newQuickJSWASMModuleFromVariant, type QuickJSWASMModule } from "quickjs-emscripten-core";

export type { QuickJSWASMModule } from "quickjs-emscripten-core";

/**
 * While guest code runs, the WASM memory may grow only up to a cap (the sandbox's Deadline sets
 * it from the guest's memory limit; see sandbox.ts on why QuickJS's own limit cannot bound the
 * byte total). emscripten's heap resize calls `memory.grow` and, when it throws, makes malloc
 * fail, which QuickJS turns into a clean out-of-memory exception. Without the cap, a guest
 * allocating large buffers in a loop grows the memory by up to one interrupt-polling interval
 * (thousands of allocations) before the Deadline sees it: gigabytes, for good, since WASM
 * memory never shrinks.
 */
const growthCaps = new WeakMap<QuickJSWASMModule, number>();
/**
 * The WASM memory size that guest work is known to have needed: the size at load, raised only
 * after guest work that ended without hitting a limit. Caps are set from it, not from the
 * current size: memory freed after a runaway guest is reused by the next one instead of being
 * a base for growing further (repeated bombs would otherwise grow the memory by their limit
 * each time).
 */
const neededBytes = new WeakMap<QuickJSWASMModule, number>();

/** See `neededBytes`. */
export function wasmNeededBytes(module: QuickJSWASMModule): number {
  return neededBytes.get(module) ?? module.getWasmMemory().buffer.byteLength;
}

/** Records that guest work ended within its limits at the current memory size. */
export function noteWasmNeeded(module: QuickJSWASMModule): void {
  const size = module.getWasmMemory().buffer.byteLength;
  neededBytes.set(module, Math.max(size, wasmNeededBytes(module)));
}

/** Sets (or, with undefined, lifts) the growth cap of `module`'s memory; returns the previous. */
export function setWasmGrowthCap(
  module: QuickJSWASMModule,
  capBytes: number | undefined,
): number | undefined {
  const previous = growthCaps.get(module);
  if (capBytes === undefined) growthCaps.delete(module);
  else growthCaps.set(module, capBytes);
  return previous;
}

/** Installs the cap check on `module`'s memory (an own `grow` shadowing the prototype's). */
function capGrowth(module: QuickJSWASMModule): void {
  const memory = module.getWasmMemory();
  neededBytes.set(module, memory.buffer.byteLength);
  const grow = memory.grow.bind(memory);
  Object.defineProperty(memory, "grow", {
    value: (pages: number): number => {
      const cap = growthCaps.get(module);
      if (cap !== undefined && memory.buffer.byteLength + pages * WASM_PAGE_BYTES > cap) {
        throw new RangeError("WASM memory growth refused: the guest's memory limit");
      }
      return grow(pages);
    },
  });
}

const WASM_PAGE_BYTES = 65536;

/** The module being loaded or loaded; null before the first use and after a discard. */
let loading: Promise<QuickJSWASMModule> | null = null;
/** Invariant: the value `loading` resolved to, or null while it is pending or absent. */
let loaded: QuickJSWASMModule | null = null;

/** The shared QuickJS module, loaded on first use. Concurrent first callers share one load. */
export function getQuickJS(): Promise<QuickJSWASMModule> {
  if (loading === null) {
    // A dynamic import keeps the variant's WASM off the start-up path of commands that never run
    // JS. A default import of the variant does not typecheck under NodeNext (TS2345).
    const load = newQuickJSWASMModuleFromVariant(
      import("@jitl/quickjs-wasmfile-release-sync"),
    ).then((module) => {
      capGrowth(module);
      return module;
    });
    load.then(
      (module) => {
        if (loading === load) loaded = module;
      },
      // A failed load must not stick: the next caller retries.
      () => {
        if (loading === load) loading = null;
      },
    );
    loading = load;
  }
  return loading;
}

/** Forgets `module` if it is the current one, so the next getQuickJS loads a fresh instance. */
export function discardQuickJS(module: QuickJSWASMModule): void {
  if (loaded !== module) return;
  loaded = null;
  loading = null;
}
