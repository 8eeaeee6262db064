/**
 * The JS sandbox: runs exported functions of a fixed set of ES modules (a constitution, a ballot,
 * later a JS app bundle) inside QuickJS, with hard limits, and turns every way a guest can fail
 * into a typed outcome instead of a host exception.
 *
 * Semantics (ccf-compatibility.md §4.2 and §9; style.md §9 on QuickJS):
 * - Modules are named by absolute paths ("/actions.js"); "app.js" means "/app.js", as CCF stores
 *   bundle modules under "/" + name. Imports resolve "./x" and "../x" against the importing
 *   module and anything else from the root; only names in the set load, so there is no file,
 *   network or std/os module access.
 * - Each call gets a fresh runtime and context (one runtime per call: simple, and nothing a guest
 *   does survives into the next call). Its memory limit, 256 KiB stack and deadline cover module
 *   evaluation, the call, promise jobs and result conversion. JS apps may instead keep a runtime
 *   across calls (interpreter-cache.ts), built from the same pieces (guarded, applyLimits, ...).
 * - Arguments and results cross as JSON: the guest's own JSON.stringify serialises the result,
 *   so `undefined` stays undefined and functions inside objects are dropped, as in JSON.
 * - The guest sees only ECMAScript built-ins, `console` (routed to the injected log function)
 *   and what a per-call `setup` installs (e.g. the `ccf` global of ccf-globals.ts). There is no
 *   process, require, fetch or setTimeout.
 *
 * Known limit of the memory cap (quickjs-emscripten issues #271 and #255): this WASM build has no
 * malloc_usable_size, so QuickJS counts every allocation as 8 bytes. `memoryBytes` therefore
 * bounds the size of any single allocation and the number of live allocations (memoryBytes / 8),
 * not their byte total: a guest retaining many large arrays, strings or ArrayBuffers grows the
 * shared WASM memory. So while guest code runs, the WASM memory may grow only up to what guest
 * work needed so far plus `memoryBytes` (deadline.ts, quickjs.ts): a refused growth fails the
 * allocation and the guest gets QuickJS's out-of-memory at once. (The interrupt handler also
 * checks the growth, but QuickJS polls it only every ~10,000 ticks: a loop allocating 1 MiB
 * buffers had grown the memory to its 2 GiB maximum, for good, before it was first asked.)
 *
 * Invariant: every QuickJS handle created here is disposed before its context. A leaked handle
 * makes QuickJS abort while freeing the runtime, which poisons the shared WASM module; if that
 * ever happens the module is discarded (quickjs.ts) so later calls load a fresh one.
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from "quickjs-emscripten-core";
import { AssertionError } from "../base/assert.js";
import { CcfError, isForeignError } from "../base/errors.js";
import { newHostFunction, takeHostFault } from "./host-function.js";
import { DIAGNOSIS_HEADROOM_BYTES, newDeadline, type Deadline } from "./deadline.js";
import { discardQuickJS, fastHostCalls, getQuickJS, type QuickJSWASMModule } from "./quickjs.js";

export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface JsLimits {
  /** QuickJS heap limit for the whole runtime, including its built-ins (see the caveat above). */
  readonly memoryBytes: number;
  /** Wall-clock budget from runtime creation to the converted result. */
  readonly deadlineMs: number;
  /** Guest stack; clamped to MAX_STACK_BYTES. */
  readonly stackBytes: number;
}

/**
 * The guest stack cap, whatever max_stack_bytes asks (CCF's default is 1 MiB). QuickJS measures
 * its stack on emscripten's shadow stack (5 MiB in this build, so that is not the limit), but
 * each guest frame is also a few WASM frames on the *host* V8 stack (~984 KiB by default), about
 * 2.4 bytes of host stack per byte of guest stack. Measured with a top-level caller: 384 KiB
 * still ends in QuickJS's clean "InternalError: stack overflow", 448 KiB overflows the host first
 * (a RangeError out of the WASM instance, which leaves QuickJS's state unusable); 1 MiB works
 * only with `node --stack-size=3900`, and raising V8's stack past the OS thread's is unsafe.
 * 256 KiB leaves room for the host frames of a request; the interpreter-cache test recurses from
 * a deep host stack to check it.
 */
export const MAX_STACK_BYTES = 256 * 1024;

/** CCF's runtime defaults (ccf-compatibility.md §4.2), with the stack clamped as above. */
export const DEFAULT_JS_LIMITS: JsLimits = {
  memoryBytes: 100 * 1024 * 1024,
  deadlineMs: 1000,
  stackBytes: MAX_STACK_BYTES,
};

export type JsOutcome =
  | { readonly kind: "ok"; readonly value: JsonValue | undefined }
  | { readonly kind: "exception"; readonly message: string; readonly stack?: string }
  | { readonly kind: "timeout" }
  | { readonly kind: "out-of-memory" };

export type JsLogLevel = "debug" | "log" | "info" | "warn" | "error";
export type JsLogFn = (level: JsLogLevel, message: string) => void;

/** Installs host globals into a fresh context before any module is evaluated. It must dispose
 *  every handle it creates (or hand it to the context, e.g. with setProp then dispose). */
export type ContextSetup = (ctx: QuickJSContext) => void;

export interface JsCall {
  /** Module name as in the set ("/constitution.js" or "constitution.js"). */
  readonly module: string;
  readonly exportName: string;
  readonly args?: readonly JsonValue[];
  readonly setup?: ContextSetup;
  readonly limits?: Partial<JsLimits>;
}

export interface JsSandboxOptions {
  readonly limits?: Partial<JsLimits>;
  /** Receives guest console output; dropped when absent. */
  readonly log?: JsLogFn;
}

export enum JsSandboxErrorCode {
  /** Two module names of a set normalise to the same path. */
  DuplicateModule = "DuplicateModule",
  /** A limit is not a positive finite number. */
  InvalidLimit = "InvalidLimit",
  /**
   * A host setup script (the `ccf` globals) threw while installing itself into a fresh context:
   * only the guest's limits can cause that (e.g. out of memory), so run() reports it as such.
   */
  SetupFailed = "SetupFailed",
}

export type JsSandboxErrorType =
  | { code: JsSandboxErrorCode.DuplicateModule; name: string }
  | { code: JsSandboxErrorCode.InvalidLimit; limit: string }
  | { code: JsSandboxErrorCode.SetupFailed; setup: string };

export class JsSandboxError extends CcfError<JsSandboxErrorType> {}

/** Error stacks are cut to this many characters: a stack overflow's trace is ~30 KB. */
const STACK_SHOWN_MAX = 4096;

/** The synthetic module that imports the target; not a normalised path, so it cannot collide. */
const ENTRY_MODULE = "<entry>";

/**
 * Resolves `requested` as imported from `base`: "./x" and "../x" relative to base's directory,
 * anything else from the root. ".." never climbs above the root.
 */
export function normalizeModuleName(base: string, requested: string): string {
  const relative = requested.startsWith("./") || requested.startsWith("../");
  const baseDir = base.startsWith("/") ? base.slice(0, base.lastIndexOf("/") + 1) : "/";
  const path = relative ? baseDir + requested : "/" + requested;
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return "/" + out.join("/");
}

export function resolveLimits(base: JsLimits, override: Partial<JsLimits> | undefined): JsLimits {
  const limits = { ...base, ...override };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new JsSandboxError(
        { code: JsSandboxErrorCode.InvalidLimit, limit: name },
        `invalid JS limit ${name}: ${String(value)}`,
      );
    }
  }
  return { ...limits, stackBytes: Math.min(limits.stackBytes, MAX_STACK_BYTES) };
}

export class JsSandbox {
  /** Invariant: keys are normalised module names. */
  private readonly modules: ReadonlyMap<string, string>;
  private readonly limits: JsLimits;
  private readonly log: JsLogFn | undefined;

  constructor(
    private readonly quickjs: QuickJSWASMModule,
    modules: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
    options: JsSandboxOptions = {},
  ) {
    const entries = modules instanceof Map ? [...modules] : Object.entries(modules);
    const normalised = new Map<string, string>();
    for (const [name, source] of entries) {
      const path = normalizeModuleName("/", name);
      if (normalised.has(path)) {
        throw new JsSandboxError(
          { code: JsSandboxErrorCode.DuplicateModule, name: path },
          `duplicate JS module ${JSON.stringify(path)}`,
        );
      }
      normalised.set(path, source);
    }
    this.modules = normalised;
    this.limits = resolveLimits(DEFAULT_JS_LIMITS, options.limits);
    this.log = options.log;
  }

  /** A sandbox over the process-wide QuickJS module. */
  static async create(
    modules: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
    options: JsSandboxOptions = {},
  ): Promise<JsSandbox> {
    return new JsSandbox(await getQuickJS(), modules, options);
  }

  get moduleNames(): readonly string[] {
    return [...this.modules.keys()];
  }

  /**
   * Evaluates `module` (and what it imports) and returns its export names, sorted. Used to
   * check a constitution or bundle before storing it.
   */
  exportsOf(module: string, setup?: ContextSetup): JsOutcome {
    return this.run(this.limits, setup, (ctx, deadline) => {
      const ns = importModule(ctx, module);
      if ("error" in ns) return describeFailure(ctx, ns.error, deadline);
      const keys = callGlobal(ctx, "Object", "keys", ns.value);
      ns.value.dispose();
      if ("error" in keys) return describeFailure(ctx, keys.error, deadline);
      const names = ctx.dump(keys.value) as string[];
      keys.value.dispose();
      return { kind: "ok", value: names.sort() };
    });
  }

  /** Calls `exportName` of `module` with JSON arguments. Never throws for guest behaviour. */
  call(call: JsCall): JsOutcome {
    const limits = resolveLimits(this.limits, call.limits);
    return this.run(limits, call.setup, (ctx, deadline) => callExport(ctx, deadline, call));
  }

  /** One fresh runtime + context around `body`, disposed whatever happens. */
  private run(
    limits: JsLimits,
    setup: ContextSetup | undefined,
    body: (ctx: QuickJSContext, deadline: Deadline) => JsOutcome,
  ): JsOutcome {
    const rt = this.quickjs.newRuntime();
    // Created last: from here on, guarded() disarms it (restoring the growth cap) in all cases.
    const deadline = newDeadline(this.quickjs, limits);
    let ctx: QuickJSContext | undefined;
    try {
      return guarded(
        deadline,
        () => ctx,
        () => {
          applyLimits(rt, limits, deadline);
          rt.setModuleLoader(...moduleLoader(this.modules));
          ctx = rt.newContext();
          fastHostCalls(ctx);
          installConsole(ctx, this.log);
          setup?.(ctx);
          return body(ctx, deadline);
        },
      );
    } finally {
      disposeRuntime(this.quickjs, ctx, rt);
    }
  }
}

/** Puts `limits` and `deadline` on `rt` (before each call of a reused runtime, too). */
export function applyLimits(rt: QuickJSRuntime, limits: JsLimits, deadline: Deadline): void {
  rt.setMemoryLimit(limits.memoryBytes);
  rt.setMaxStackSize(limits.stackBytes);
  rt.setInterruptHandler(deadline.handler);
}

/** The loader and normaliser arguments of setModuleLoader over a set of normalised modules. */
export function moduleLoader(
  modules: ReadonlyMap<string, string>,
): Parameters<QuickJSRuntime["setModuleLoader"]> {
  return [
    (name) => modules.get(name) ?? { error: new Error(`module not found: ${name}`) },
    (base, requested) => normalizeModuleName(base, requested),
  ];
}

/**
 * Runs `body` (guest work under `deadline`) and turns what the host sees into an outcome: the
 * body's own, or out-of-time / out-of-memory when the guest's limits made a host call fail. A
 * host fault (AssertionError) and any other host exception propagate. `ctx` gives the context
 * once it exists, to collect a host fault raised inside it.
 */
export function guarded(
  deadline: Deadline,
  ctx: () => QuickJSContext | undefined,
  body: () => JsOutcome,
): JsOutcome {
  try {
    const outcome = body();
    deadline.disarm(outcome.kind === "ok" || outcome.kind === "exception");
    // A host function's assertion reached the guest as an exception, which the guest may
    // have caught: it is a host bug all the same (host-function.ts).
    const current = ctx();
    const fault = current === undefined ? undefined : takeHostFault(current);
    if (fault !== undefined) throw fault;
    return outcome;
  } catch (error) {
    // Host-side failures while the guest's limits bite (e.g. a host API allocating a guest
    // value under the memory limit) are the guest's outcome; anything else is a host bug,
    // an assertion above all (even one raised while the deadline interrupted the guest).
    deadline.disarm();
    if (error instanceof AssertionError) throw error;
    const current = ctx();
    const fault = current === undefined ? undefined : takeHostFault(current);
    if (fault !== undefined) throw fault;
    if (deadline.interrupted) return deadline.interruptOutcome();
    if (error instanceof Error && /out of memory/i.test(error.message)) {
      return { kind: "out-of-memory" };
    }
    if (isHostStackOverflow(error)) return { kind: "exception", message: STACK_OVERFLOW_MESSAGE };
    throw error;
  }
}

/** What QuickJS itself says when the guest's stack limit stops it. */
export const STACK_OVERFLOW_MESSAGE = "InternalError: stack overflow";

/**
 * Whether `error` is V8's stack overflow. QuickJS's parser recurses per nesting level of the
 * source and, in this build, checks its stack limit too rarely: 100,000 nested parentheses
 * exhaust the host's V8 stack (each C frame is a WASM frame there) before QuickJS notices, and
 * the RangeError unwinds out of the WASM instance. That is the guest's doing (its source is too
 * deep), so it is the guest's outcome, with QuickJS's own message, not a host failure; the
 * runtime is disposed as after any call (measured: disposal and later runtimes still work, 60
 * overflows in a row), and a disposal that fails discards the module (disposeRuntime).
 */
export function isHostStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack size exceeded/i.test(error.message);
}

/** Disposes `ctx` then `rt`; a failure means the WASM instance aborted: it is discarded. */
export function disposeRuntime(
  quickjs: QuickJSWASMModule,
  ctx: QuickJSContext | undefined,
  rt: QuickJSRuntime,
): void {
  try {
    ctx?.dispose();
    rt.dispose();
  } catch (error) {
    // The WASM instance may have aborted: never reuse it.
    discardQuickJS(quickjs);
    throw error;
  }
}

/** The namespace of `module`, imported through a synthetic entry module. */
export function importModule(
  ctx: QuickJSContext,
  module: string,
): { value: QuickJSHandle } | { error: QuickJSHandle } {
  const spec = JSON.stringify(normalizeModuleName("/", module));
  const result = ctx.evalCode(`import * as ns from ${spec}; export { ns };`, ENTRY_MODULE, {
    type: "module",
  });
  if (result.error !== undefined) return { error: result.error };
  // With top-level await the evaluation yields a promise of the entry's namespace.
  const settled = settle(ctx, result.value);
  if ("error" in settled) return settled;
  try {
    return { value: ctx.getProp(settled.value, "ns") };
  } finally {
    settled.value.dispose();
  }
}

/** The settled value of a promise handle (consumed), or the handle itself if not a promise. */
export function settle(
  ctx: QuickJSContext,
  handle: QuickJSHandle,
): { value: QuickJSHandle } | { error: QuickJSHandle } {
  if (ctx.typeof(handle) !== "object") return { value: handle };
  let state = ctx.getPromiseState(handle);
  if (state.type === "fulfilled" && state.notAPromise === true) return { value: handle };
  if (state.type === "pending") {
    const jobs = ctx.runtime.executePendingJobs();
    if (jobs.error !== undefined) jobs.error.dispose();
    state = ctx.getPromiseState(handle);
  }
  handle.dispose();
  if (state.type === "fulfilled") return { value: state.value };
  if (state.type === "rejected") return { error: state.error };
  return {
    error: ctx.newError("promise did not settle: the guest awaited something that never happens"),
  };
}

function callExport(ctx: QuickJSContext, deadline: Deadline, call: JsCall): JsOutcome {
  const ns = importModule(ctx, call.module);
  if ("error" in ns) return describeFailure(ctx, ns.error, deadline);
  const fn = ctx.getProp(ns.value, call.exportName);
  ns.value.dispose();
  try {
    if (ctx.typeof(fn) !== "function") {
      const name = JSON.stringify(call.exportName);
      return { kind: "exception", message: `module ${call.module} exports no function ${name}` };
    }
    return callFunction(ctx, deadline, fn, call.args ?? []);
  } finally {
    fn.dispose();
  }
}

/** Calls the guest function `fn` (kept) with JSON arguments, awaiting a promise it returns. */
function callFunction(
  ctx: QuickJSContext,
  deadline: Deadline,
  fn: QuickJSHandle,
  args: readonly JsonValue[],
): JsOutcome {
  const argHandles: QuickJSHandle[] = [];
  try {
    const converted = toGuestArgs(ctx, args, argHandles);
    if ("error" in converted) return describeFailure(ctx, converted.error, deadline);
    const result = ctx.callFunction(fn, ctx.undefined, argHandles);
    if (result.error !== undefined) return describeFailure(ctx, result.error, deadline);
    const settled = settle(ctx, result.value);
    if ("error" in settled) return describeFailure(ctx, settled.error, deadline);
    return fromGuest(ctx, settled.value, deadline);
  } finally {
    for (const handle of argHandles) handle.dispose();
  }
}

/** Parses the JSON of all arguments in the guest at once; fills `out` with one handle per arg. */
function toGuestArgs(
  ctx: QuickJSContext,
  args: readonly JsonValue[],
  out: QuickJSHandle[],
): { ok: true } | { error: QuickJSHandle } {
  if (args.length === 0) return { ok: true };
  const json = ctx.newString(JSON.stringify(args));
  const parsed = callGlobal(ctx, "JSON", "parse", json);
  json.dispose();
  if ("error" in parsed) return parsed;
  try {
    for (let i = 0; i < args.length; i++) out.push(ctx.getProp(parsed.value, i));
  } finally {
    parsed.value.dispose();
  }
  return { ok: true };
}

/** Converts a guest result (consumed) to a host JSON value via the guest's JSON.stringify. */
function fromGuest(ctx: QuickJSContext, handle: QuickJSHandle, deadline: Deadline): JsOutcome {
  if (ctx.typeof(handle) === "undefined") {
    handle.dispose();
    return { kind: "ok", value: undefined };
  }
  const json = callGlobal(ctx, "JSON", "stringify", handle);
  handle.dispose();
  if ("error" in json) return describeFailure(ctx, json.error, deadline);
  try {
    if (ctx.typeof(json.value) !== "string") return { kind: "ok", value: undefined };
    return { kind: "ok", value: JSON.parse(ctx.getString(json.value)) as JsonValue };
  } finally {
    json.value.dispose();
  }
}

function callGlobal(
  ctx: QuickJSContext,
  object: string,
  method: string,
  arg: QuickJSHandle,
): { value: QuickJSHandle } | { error: QuickJSHandle } {
  const holder = ctx.getProp(ctx.global, object);
  const fn = ctx.getProp(holder, method);
  try {
    const result = ctx.callFunction(fn, holder, arg);
    return result.error !== undefined ? { error: result.error } : { value: result.value };
  } finally {
    fn.dispose();
    holder.dispose();
  }
}

/**
 * Classifies a guest exception (consumed): the deadline's interrupt, QuickJS's out-of-memory
 * InternalError, or an ordinary exception with its message and (cut) stack.
 */
export function describeFailure(
  ctx: QuickJSContext,
  error: QuickJSHandle,
  deadline: Deadline,
): JsOutcome {
  try {
    if (deadline.interrupted) return deadline.interruptOutcome();
    // Reading the error allocates (and may run guest getters, still under the deadline): after
    // an out-of-memory it must not fail for the same reason.
    ctx.runtime.setMemoryLimit(deadline.memoryBytes + DIAGNOSIS_HEADROOM_BYTES);
    return describeError(ctx, error);
  } catch (err: unknown) {
    // QuickJS failing to read the exception (a guest getter, the deadline, memory); a bug of
    // ours in describeError still propagates.
    if (!isForeignError(err)) throw err;
    if (deadline.interrupted) return deadline.interruptOutcome();
    return { kind: "exception", message: "unreadable exception" };
  } finally {
    error.dispose();
  }
}

function describeError(ctx: QuickJSContext, error: QuickJSHandle): JsOutcome {
  const dumped = ctx.dump(error) as unknown;
  if (typeof dumped !== "object" || dumped === null) {
    return { kind: "exception", message: String(dumped) };
  }
  const fields = dumped as { name?: unknown; message?: unknown; stack?: unknown };
  const message = typeof fields.message === "string" ? fields.message : JSON.stringify(dumped);
  if (fields.name === "InternalError" && message === "out of memory") {
    return { kind: "out-of-memory" };
  }
  // Plain Errors show their message only; other kinds keep the name ("InternalError: stack
  // overflow", "TypeError: ...") because it is most of the diagnosis.
  const name = typeof fields.name === "string" && fields.name !== "Error" ? fields.name : "";
  const shown = name === "" ? message : `${name}: ${message}`;
  if (typeof fields.stack !== "string" || fields.stack === "") {
    return { kind: "exception", message: shown };
  }
  return { kind: "exception", message: shown, stack: fields.stack.slice(0, STACK_SHOWN_MAX) };
}

const LOG_LEVELS: readonly JsLogLevel[] = ["debug", "log", "info", "warn", "error"];

/** A `console` whose methods format their arguments and hand one line to `log`. */
export function installConsole(ctx: QuickJSContext, log: JsLogFn | undefined): void {
  const consoleObject = ctx.newObject();
  for (const level of LOG_LEVELS) {
    const fn = newHostFunction(ctx, level, (...args) => {
      if (log === undefined) return;
      log(level, args.map((arg) => formatLogArg(ctx, arg)).join(" "));
    });
    ctx.setProp(consoleObject, level, fn);
    fn.dispose();
  }
  ctx.setProp(ctx.global, "console", consoleObject);
  consoleObject.dispose();
}

function formatLogArg(ctx: QuickJSContext, arg: QuickJSHandle): string {
  if (ctx.typeof(arg) === "string") return ctx.getString(arg);
  const dumped = ctx.dump(arg) as unknown;
  if (typeof dumped === "object" && dumped !== null) {
    const fields = dumped as { name?: unknown; message?: unknown };
    if (typeof fields.name === "string" && typeof fields.message === "string") {
      return `${fields.name}: ${fields.message}`;
    }
    return JSON.stringify(dumped);
  }
  return String(dumped);
}
