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
import {
  Lifetime,
  newQuickJSWASMModuleFromVariant,
  WeakLifetime,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSWASMModule,
} from "quickjs-emscripten-core";
import { CcfError } from "../base/errors.js";

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

/** The WASM memory of `module` (getWasmMemory costs ~1 us; the object never changes). */
const memories = new WeakMap<QuickJSWASMModule, { readonly buffer: ArrayBufferLike }>();

/** The current size of `module`'s WASM memory, in bytes. */
export function wasmBytes(module: QuickJSWASMModule): number {
  const known = memories.get(module);
  if (known !== undefined) return known.buffer.byteLength;
  const memory: { readonly buffer: ArrayBufferLike } = module.getWasmMemory();
  memories.set(module, memory);
  return memory.buffer.byteLength;
}

/** See `neededBytes`. */
export function wasmNeededBytes(module: QuickJSWASMModule): number {
  return neededBytes.get(module) ?? wasmBytes(module);
}

/** Records that guest work ended within its limits at the current memory size. */
export function noteWasmNeeded(module: QuickJSWASMModule): void {
  const size = wasmBytes(module);
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

/** Modules given to discardQuickJS: their holders should move to a fresh one (isDiscarded). */
const discarded = new WeakSet<QuickJSWASMModule>();

/** Whether `module` was discarded (its WASM instance may have aborted). */
export function isDiscarded(module: QuickJSWASMModule): boolean {
  return discarded.has(module);
}

/** Forgets `module` if it is the current one, so the next getQuickJS loads a fresh instance. */
export function discardQuickJS(module: QuickJSWASMModule): void {
  discarded.add(module);
  if (loaded !== module) return;
  loaded = null;
  loading = null;
}

/** The internals of a QuickJSContext (quickjs-emscripten-core 0.32.0) that fastHostCalls uses. */
interface ContextInternals {
  cToHostCallbacks?: { callFunction?: HostCallback };
  getFunction?: (id: number) => unknown;
  ffi?: {
    QTS_ArgvGetJSValueConstPointer?: (argv: number, index: number) => number;
    QTS_DupValuePointer?: (ctx: number, value: number) => number;
    QTS_Throw?: (ctx: number, error: number) => number;
  };
  memory?: { copyJSValue?: unknown; freeJSValue?: unknown };
  ctx?: { value: number };
  runtime?: unknown;
  errorToHandle?: (error: unknown) => QuickJSHandle;
}

type HostCallback = (
  ctx: number,
  thisPtr: number,
  argc: number,
  argv: number,
  fnId: number,
) => number;

/**
 * Replaces the context's guest-to-host call path with a plain synchronous one. The library's
 * own (QuickJSContext's cToHostCallbacks.callFunction) runs every host function inside a
 * generator-based "maybe async" scope, which costs ~7-9 us per call; this one does the same
 * steps in ~1 us: weak handles for `this` and the arguments (dead once the call returns, as
 * before), the result duplicated for the guest and its handle disposed, a `{error}` result or
 * a throw turned into a guest exception. A JS app request makes several host calls (ccf.kv,
 * ccf.strToBuf, ...), so this is most of the runtime's per-request overhead.
 *
 * It relies on private members of quickjs-emscripten-core 0.32.0 (pinned in package.json):
 * when they are not all there, the context keeps the library's path and this returns false
 * (test/unit/js/quickjs.test.ts fails then, so an upgrade cannot lose it silently).
 */
export function fastHostCalls(context: QuickJSContext): boolean {
  const c = context as unknown as ContextInternals;
  const callbacks = c.cToHostCallbacks;
  const getFunction = c.getFunction?.bind(context);
  const ffi = c.ffi;
  const argPointer = ffi?.QTS_ArgvGetJSValueConstPointer;
  const dup = ffi?.QTS_DupValuePointer;
  const raise = ffi?.QTS_Throw;
  const copy = c.memory?.copyJSValue;
  const free = c.memory?.freeJSValue;
  const ctxPtr = c.ctx?.value;
  const errorToHandle = c.errorToHandle?.bind(context);
  if (
    callbacks?.callFunction === undefined ||
    getFunction === undefined ||
    argPointer === undefined ||
    dup === undefined ||
    raise === undefined ||
    typeof copy !== "function" ||
    typeof free !== "function" ||
    typeof ctxPtr !== "number" ||
    errorToHandle === undefined
  ) {
    return false;
  }
  const weak = (ptr: number): QuickJSHandle =>
    new WeakLifetime(
      ptr,
      copy as never,
      free as never,
      c.runtime as never,
    ) as unknown as QuickJSHandle;
  callbacks.callFunction = (ctx, thisPtr, argc, argv, fnId) => {
    if (ctx !== ctxPtr) {
      throw new QuickJSInternalsError(
        { code: QuickJSInternalsErrorCode.WrongContext },
        "quickjs-emscripten made a host call for another context",
      );
    }
    const fn = getFunction(fnId) as (this: QuickJSHandle, ...args: QuickJSHandle[]) => unknown;
    const self = weak(thisPtr);
    const args = new Array<QuickJSHandle>(argc);
    for (let i = 0; i < argc; i++) args[i] = weak(argPointer(argv, i));
    try {
      return resultPointer(fn.apply(self, args), ctxPtr, dup);
    } catch (error: unknown) {
      const handle = errorToHandle(error);
      try {
        return raise(ctxPtr, handle.value as unknown as number);
      } finally {
        if (handle.alive) handle.dispose();
      }
    } finally {
      self.dispose();
      for (const arg of args) arg.dispose();
    }
  };
  return true;
}

/** A host function's result as a pointer the guest owns (0: undefined); throws a `{error}`. */
function resultPointer(
  result: unknown,
  ctxPtr: number,
  dup: (ctx: number, value: number) => number,
): number {
  if (result === undefined || result === null) return 0;
  const fail = result as { error?: unknown; value?: unknown };
  if (!(result instanceof Lifetime) && fail.error !== undefined) throw fail.error;
  const handle = (result instanceof Lifetime ? result : fail.value) as QuickJSHandle | undefined;
  if (!(handle instanceof Lifetime)) {
    throw new TypeError("a host function returned something other than a QuickJS handle");
  }
  try {
    return dup(ctxPtr, handle.value as unknown as number);
  } finally {
    if (handle.alive) handle.dispose();
  }
}

export enum QuickJSInternalsErrorCode {
  /** quickjs-emscripten called a context's host callback for another context. */
  WrongContext = "WrongContext",
}

/** quickjs-emscripten's internals did something fastHostCalls does not expect. */
export class QuickJSInternalsError extends CcfError<{
  code: QuickJSInternalsErrorCode.WrongContext;
}> {}
