/**
 * Reused JS interpreters and their cache, as CCF 6 has them for JS apps (CCF's
 * js/interpreter_cache.h and js/registry.cpp; doc/build_apps/js_app_bundle.rst "interpreter
 * reuse"):
 * - A JsInterpreter is one QuickJS runtime and context, kept across calls: the globals its
 *   `setup` installed once (whose host functions read a mutable per-request binding), the
 *   modules it loaded and whatever their top-level code keeps. Each call gets its own limits
 *   and deadline, as a fresh runtime would (sandbox.ts).
 * - An interpreter that hit a limit (deadline, heap, the WASM memory check, stack overflow) or
 *   saw a host exception is no longer `reusable`: the guest was stopped somewhere in the middle,
 *   so its state is not trusted, and its owner disposes it (its memory goes back to the WASM
 *   allocator for the next runtime; the WASM memory itself never shrinks).
 * - InterpreterCache is CCF's LRU: interpreters by key (the endpoint's `interpreter_reuse.key`
 *   and its access, "(rw)" or "(ro)"), at most `max` of them (max_cached_interpreters; 0 caches
 *   none), all dropped when the freshness marker changes (CCF's version of the last write to
 *   `interpreter.flush`; ours is the app's version, js-app-endpoints.ts). Evicted and dropped
 *   interpreters are disposed at once.
 *
 * Invariant: a JsInterpreter's only long-lived handles are its entry function and the
 * namespaces of the modules it called, disposed before the context; per-call handles are
 * disposed within the call (sandbox.ts's invariant).
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from "quickjs-emscripten-core";
import { assert } from "../base/assert.js";
import { newDeadline, type Deadline } from "./deadline.js";
import { fastHostCalls, wasmBytes, type QuickJSWASMModule } from "./quickjs.js";
import {
  applyLimits,
  describeFailure,
  disposeRuntime,
  guarded,
  importModule,
  installConsole,
  moduleLoader,
  normalizeModuleName,
  settle,
  STACK_OVERFLOW_MESSAGE,
  type ContextSetup,
  type JsLimits,
  type JsLogFn,
  type JsonValue,
  type JsOutcome,
} from "./sandbox.js";

export interface JsInterpreterSpec {
  /** Modules by normalised name ("/app.js"). */
  readonly modules: ReadonlyMap<string, string>;
  /** Installs the globals once, right after the context is created. */
  readonly setup: ContextSetup;
  /** The function every call runs: an export of one of `modules`. */
  readonly entry: { readonly module: string; readonly exportName: string };
  readonly log?: JsLogFn;
}

/** QuickJS's message for a guest stack overflow, as describeFailure (or guarded) shows it. */
const STACK_OVERFLOW = STACK_OVERFLOW_MESSAGE;
/**
 * A reused interpreter's heap is measured after every call during which the WASM memory grew
 * (new memory was needed: someone holds more), and otherwise on a schedule; above
 * max_heap_bytes the interpreter is not reused. Without growth, what a call can keep is
 * bounded by the WASM memory already free, so the bound is max_heap_bytes plus what the
 * unchecked calls in between kept. The schedule keeps that small: the first measurement comes
 * after HEAP_CHECK_FIRST calls; each next one after as many calls as, at the rate the heap grew
 * since the previous measurement, would use half the headroom left (at least 1, at most
 * HEAP_CHECK_MAX: a measurement walks the heap, ~35-60 us, too dear for every request of an
 * app that keeps nothing).
 */
const HEAP_CHECK_FIRST = 8;
const HEAP_CHECK_MAX = 64;

export class JsInterpreter {
  /** Calls made, including the failed one that made the interpreter unusable. */
  calls = 0;
  private healthy = true;
  private disposed = false;
  /** The call after which the heap is measured next (see HEAP_CHECK_FIRST). */
  private nextHeapCheck = HEAP_CHECK_FIRST;
  /** The last heap measurement and the call it followed. */
  private lastHeap: { readonly bytes: number; readonly calls: number } | undefined;
  /** Namespaces of the modules called so far (handles owned here, disposed with the context). */
  private readonly namespaces = new Map<string, QuickJSHandle>();

  private constructor(
    private readonly quickjs: QuickJSWASMModule,
    private readonly rt: QuickJSRuntime,
    private readonly ctx: QuickJSContext,
    private readonly entry: QuickJSHandle,
  ) {}

  /**
   * A runtime and context with `spec.setup` run and the entry module imported, under `limits`;
   * or the outcome that prevented it (the guest failed or hit a limit while loading).
   */
  static create(
    quickjs: QuickJSWASMModule,
    spec: JsInterpreterSpec,
    limits: JsLimits,
  ): { interpreter: JsInterpreter } | { failure: JsOutcome } {
    const rt = quickjs.newRuntime();
    const deadline = newDeadline(quickjs, limits);
    let ctx: QuickJSContext | undefined;
    let entry: QuickJSHandle | undefined;
    let made: JsInterpreter | undefined;
    try {
      const outcome = guarded(
        deadline,
        () => ctx,
        () => {
          applyLimits(rt, limits, deadline);
          rt.setModuleLoader(...moduleLoader(spec.modules));
          ctx = rt.newContext();
          fastHostCalls(ctx);
          installConsole(ctx, spec.log);
          spec.setup(ctx);
          const ns = importModule(ctx, spec.entry.module);
          if ("error" in ns) return describeFailure(ctx, ns.error, deadline);
          entry = ctx.getProp(ns.value, spec.entry.exportName);
          ns.value.dispose();
          if (ctx.typeof(entry) === "function") return { kind: "ok", value: undefined };
          const what = `${spec.entry.module} exports no function ${spec.entry.exportName}`;
          return { kind: "exception", message: what };
        },
      );
      if (outcome.kind === "ok" && ctx !== undefined && entry !== undefined) {
        made = new JsInterpreter(quickjs, rt, ctx, entry);
        return { interpreter: made };
      }
      return { failure: outcome };
    } finally {
      if (made === undefined) {
        entry?.dispose();
        disposeRuntime(quickjs, ctx, rt);
      }
    }
  }

  /** Whether the interpreter may serve another call (no limit hit, no host exception). */
  get reusable(): boolean {
    return this.healthy && !this.disposed;
  }

  /**
   * Calls the entry function with the namespace of `module` (imported by the host on its first
   * use in this interpreter), then the strings `args`, under `limits` and a deadline starting
   * now. The entry returns JSON text (or a promise of it): the outcome's value is that JSON.
   */
  call(module: string, args: readonly string[], limits: JsLimits): JsOutcome {
    assert(this.reusable, "a JS interpreter is called after it failed or was disposed");
    this.calls++;
    const deadline = newDeadline(this.quickjs, limits);
    const ctx = this.ctx;
    const wasmBefore = this.wasmBytes();
    try {
      const outcome = guarded(
        deadline,
        () => ctx,
        () => {
          applyLimits(this.rt, limits, deadline);
          const ns = this.namespace(module, deadline);
          if ("failure" in ns) return ns.failure;
          return callEntry(ctx, deadline, this.entry, ns.value, args);
        },
      );
      if (outcome.kind === "timeout" || outcome.kind === "out-of-memory") this.healthy = false;
      if (outcome.kind === "exception" && outcome.message.startsWith(STACK_OVERFLOW)) {
        this.healthy = false;
      }
      const grew = this.wasmBytes() > wasmBefore;
      if (this.healthy && (grew || this.calls >= this.nextHeapCheck)) {
        const bytes = this.heapBytes();
        if (bytes > limits.memoryBytes) this.healthy = false;
        else this.scheduleHeapCheck(bytes, limits.memoryBytes);
      }
      return outcome;
    } catch (error) {
      this.healthy = false;
      throw error;
    }
  }

  /**
   * The namespace of `module`, imported statically by the host. Not the guest's dynamic
   * `import()`: after a guest out-of-memory under a dynamic import, this QuickJS build leaks
   * objects and then aborts in JS_FreeRuntime (list_empty(&rt->gc_obj_list)), which kills the
   * whole WASM instance. A module whose evaluation failed makes the interpreter unusable, so
   * the next request tries it afresh.
   */
  private namespace(
    module: string,
    deadline: Deadline,
  ): { value: QuickJSHandle } | { failure: JsOutcome } {
    const known = this.namespaces.get(module);
    if (known !== undefined) return { value: known };
    const ns = importModule(this.ctx, module);
    if ("error" in ns) {
      this.healthy = false;
      return { failure: describeFailure(this.ctx, ns.error, deadline) };
    }
    this.namespaces.set(module, ns.value);
    return { value: ns.value };
  }

  /** Sets nextHeapCheck after a measurement of `bytes` under `limit` (see HEAP_CHECK_FIRST). */
  private scheduleHeapCheck(bytes: number, limit: number): void {
    const previous = this.lastHeap;
    this.lastHeap = { bytes, calls: this.calls };
    let interval = HEAP_CHECK_FIRST;
    if (previous !== undefined) {
      const perCall =
        Math.max(0, bytes - previous.bytes) / Math.max(1, this.calls - previous.calls);
      interval = perCall === 0 ? HEAP_CHECK_MAX : Math.floor((limit - bytes) / (2 * perCall));
    }
    this.nextHeapCheck = this.calls + Math.min(HEAP_CHECK_MAX, Math.max(1, interval));
  }

  private wasmBytes(): number {
    return wasmBytes(this.quickjs);
  }

  /**
   * QuickJS's own estimate of what the runtime holds (JS_ComputeMemoryUsage's
   * memory_used_size: objects, arrays, ArrayBuffers, functions, atoms; not the bytes of
   * strings, which it does not walk). The memory limit cannot bound what a reused interpreter
   * keeps between calls (sandbox.ts: this build counts each allocation as 8 bytes), so call()
   * checks this estimate instead (it walks the heap: ~35 us for an app's globals, hence not
   * after every call).
   */
  private heapBytes(): number {
    const usage = this.rt.computeMemoryUsage();
    const used = this.ctx.getProp(usage, "memory_used_size");
    try {
      return this.ctx.getNumber(used);
    } finally {
      used.dispose();
      usage.dispose();
    }
  }

  /** Frees the runtime; idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const ns of this.namespaces.values()) ns.dispose();
    this.namespaces.clear();
    this.entry.dispose();
    disposeRuntime(this.quickjs, this.ctx, this.rt);
  }
}

/** Calls `entry(ns, ...args)` and parses the JSON text it returns (after settling a promise). */
function callEntry(
  ctx: QuickJSContext,
  deadline: Deadline,
  entry: QuickJSHandle,
  ns: QuickJSHandle,
  args: readonly string[],
): JsOutcome {
  const handles = args.map((arg) => ctx.newString(arg));
  let result: ReturnType<QuickJSContext["callFunction"]>;
  try {
    result = ctx.callFunction(entry, ctx.undefined, ns, ...handles);
  } finally {
    for (const handle of handles) handle.dispose();
  }
  if (result.error !== undefined) return describeFailure(ctx, result.error, deadline);
  const settled = settle(ctx, result.value);
  if ("error" in settled) return describeFailure(ctx, settled.error, deadline);
  const text = ctx.typeof(settled.value) === "string" ? ctx.getString(settled.value) : undefined;
  settled.value.dispose();
  if (text === undefined) return { kind: "exception", message: "the entry returned no JSON" };
  return { kind: "ok", value: JSON.parse(text) as JsonValue };
}

/** The module name `name` is stored under, as JsInterpreterSpec.modules wants it. */
export function normalisedModules(modules: ReadonlyMap<string, string>): Map<string, string> {
  return new Map([...modules].map(([name, source]) => [normalizeModuleName("/", name), source]));
}

export class InterpreterCache {
  /** In least- to most-recently used order (Map insertion order). */
  private readonly entries = new Map<string, JsInterpreter>();
  private marker: string | undefined;
  /** Interpreters created, for tests and logs. */
  created = 0;

  constructor(private max: number) {}

  get size(): number {
    return this.entries.size;
  }

  get capacity(): number {
    return this.max;
  }

  /** Changes the bound, disposing the least recently used interpreters beyond it. */
  setMax(max: number): void {
    this.max = max;
    this.evict();
  }

  /**
   * The interpreter cached under `key` for `marker`, or one made by `make` (cached when it is
   * made and the cache holds any). A new marker first drops every cached interpreter. The
   * result is undefined only when `make` fails; the caller disposes an interpreter that is
   * not `cached`.
   */
  get(
    marker: string,
    key: string,
    make: () => JsInterpreter | undefined,
  ): { interpreter: JsInterpreter; cached: boolean } | undefined {
    if (marker !== this.marker) {
      this.clear();
      this.marker = marker;
    }
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return { interpreter: hit, cached: true };
    }
    const made = make();
    if (made === undefined) return undefined;
    this.created++;
    if (this.max === 0) return { interpreter: made, cached: false };
    this.entries.set(key, made);
    this.evict();
    return { interpreter: made, cached: true };
  }

  /** Disposes and forgets the interpreter under `key` if it is `interpreter`. */
  discard(key: string, interpreter: JsInterpreter): void {
    if (this.entries.get(key) === interpreter) this.entries.delete(key);
    interpreter.dispose();
  }

  /**
   * Forgets every cached interpreter without disposing it: for a QuickJS module that was
   * discarded (its WASM instance may have aborted, so freeing into it can fail).
   */
  abandon(): void {
    this.entries.clear();
  }

  /** Disposes every cached interpreter. */
  clear(): void {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const interpreter of all) interpreter.dispose();
  }

  private evict(): void {
    for (const [key, interpreter] of this.entries) {
      if (this.entries.size <= this.max) break;
      this.entries.delete(key);
      interpreter.dispose();
    }
  }
}
