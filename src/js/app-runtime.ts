/**
 * The runtime of JS applications deployed by governance (ccf-compatibility.md §9): runs an
 * endpoint's exported function from the bundle's ES modules (stored in `public:ccf.gov.modules`
 * under "/" + name) in the QuickJS sandbox, with a CCF-shaped request object, and maps what it
 * returns to a response as CCF does.
 *
 * Request: `{headers, params, query, url, path, route, method, hostname, body, caller?}` where
 * `body` has text(), json() and arrayBuffer() over the request's bytes, and `caller` is what the
 * node's authentication established (a COSE caller's `cose.content` is an ArrayBuffer of the
 * verified payload). Response: `{statusCode = 200, headers = {}, body?}`: a string body is sent
 * as text/plain, an ArrayBuffer or typed array as application/octet-stream, anything else
 * JSON-stringified as application/json (the app's own content-type header wins).
 *
 * Globals: `ccf` of ccf-globals.ts bound to the request's transaction with the access the node
 * chose (apps never write `public:ccf.` maps; readonly endpoints write nothing), then the app
 * additions of app-globals.ts, then each AppGlobalsInstaller in order (where `ccf.crypto`'s
 * extensions install themselves). Limits come from `public:ccf.gov.js_runtime_options`.
 *
 * Interpreters (interpreter-cache.ts), as CCF 6: an endpoint without `interpreter_reuse` gets a
 * fresh runtime for each request (nothing one request did is seen by the next); endpoints with
 * `interpreter_reuse: {key}` share the interpreter cached under that key and their access
 * ("(rw)"/"(ro)"), so module-level state survives between their requests, until the app changes,
 * the interpreter is evicted (max_cached_interpreters) or it hit a limit. The globals of a
 * reused interpreter are installed once over a RequestSlot re-pointed at each request: ccf.kv
 * (and module-level handles such as typedKv's) act on the current request's transaction and
 * access, ccf.rpc's effects and the request/response bytes are the current request's. Historical
 * endpoints always run fresh (their state is part of the globals). CCF also keeps the
 * `enableUntrustedDateTime` setting of a reused interpreter, and so do we.
 *
 * Compiled bytecode is not cached: this QuickJS build cannot serialise it. Its only binary
 * serialiser, QTS_bjson_encode, calls JS_WriteObject with JS_WRITE_OBJ_REFERENCE and without
 * JS_WRITE_OBJ_BYTECODE, and QTS_bjson_decode reads with no flags (quickjs-emscripten
 * c/interface.c, 0.32 and its main branch); JS_EvalFunction is not exported either, so a module
 * compiled with `compileOnly` cannot be run. A reused interpreter is the cache that exists: its
 * modules are parsed and evaluated once per app version.
 */
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { fromUtf8 } from "../base/bytes.js";
import { type CcfBinding, installCcfGlobals } from "./ccf-globals.js";
import {
  installAppGlobals,
  type JsAppRequestState,
  type JsAppServices,
  type JsHistoricalState,
} from "./app-globals.js";
import { RESERVED_MODULE_PREFIX } from "./app-bundle.js";
import { newHostFunction, newGuestArrayBuffer } from "./host-function.js";
import type { QuickJSWASMModule } from "./quickjs.js";
import { InterpreterCache, JsInterpreter, normalisedModules } from "./interpreter-cache.js";
import {
  DEFAULT_JS_LIMITS,
  resolveLimits,
  type ContextSetup,
  type JsLimits,
  type JsLogFn,
  type JsonValue,
  type JsOutcome,
} from "./sandbox.js";

/** Installs extensions of the `ccf` global (e.g. ccf.crypto) after the base one exists. */
export type AppGlobalsInstaller = (ctx: QuickJSContext) => void;

/** CCF's JSRuntimeOptions (set_js_runtime_options), with CCF's defaults. */
export interface JsRuntimeOptions {
  readonly max_heap_bytes: number;
  readonly max_stack_bytes: number;
  readonly max_execution_time_ms: number;
  readonly log_exception_details: boolean;
  readonly return_exception_details: boolean;
  readonly max_cached_interpreters: number;
}

export const DEFAULT_JS_RUNTIME_OPTIONS: JsRuntimeOptions = {
  max_heap_bytes: 100 * 1024 * 1024,
  max_stack_bytes: 1024 * 1024,
  max_execution_time_ms: 1000,
  log_exception_details: false,
  return_exception_details: false,
  max_cached_interpreters: 10,
};

/** The stored options (JSON bytes) over the defaults; unusable fields keep their default. */
export function parseRuntimeOptions(bytes: Uint8Array | undefined): JsRuntimeOptions {
  if (bytes === undefined) return DEFAULT_JS_RUNTIME_OPTIONS;
  let stored: unknown;
  try {
    stored = JSON.parse(fromUtf8(bytes));
  } catch (err: unknown) {
    if (err instanceof SyntaxError || err instanceof TypeError) return DEFAULT_JS_RUNTIME_OPTIONS;
    throw err;
  }
  if (typeof stored !== "object" || stored === null) return DEFAULT_JS_RUNTIME_OPTIONS;
  const out: Record<string, number | boolean> = { ...DEFAULT_JS_RUNTIME_OPTIONS };
  for (const [key, fallback] of Object.entries(DEFAULT_JS_RUNTIME_OPTIONS)) {
    const value = (stored as Record<string, unknown>)[key];
    if (typeof fallback === "boolean" && typeof value === "boolean") out[key] = value;
    // max_cached_interpreters may be 0 (cache none), as set_js_runtime_options allows.
    const least = key === "max_cached_interpreters" ? 0 : 1;
    if (typeof fallback === "number" && Number.isSafeInteger(value) && (value as number) >= least) {
      out[key] = value as number;
    }
  }
  return out as unknown as JsRuntimeOptions;
}

/** A request as the runtime hands it to the guest (the node fills it from its RpcRequest). */
export interface JsAppRequest {
  readonly method: string;
  /** Path with query string, as sent: "/app/log?id=1". */
  readonly url: string;
  /** Path without query: "/app/log". */
  readonly path: string;
  /** The matched template: "/app/log/{id}". */
  readonly route: string;
  /** The raw query string without "?". */
  readonly query: string;
  readonly hostname: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly params: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The caller's identity as JSON; absent for endpoints without policies. */
  readonly caller?: JsonValue;
  /** A COSE caller's verified payload, set as caller.cose.content (and all_of members'). */
  readonly coseContent?: Uint8Array;
  /** Historical endpoints: the transaction named by x-ms-ccf-transaction-id. */
  readonly historical?: JsHistoricalState;
}

export type JsAppBody =
  | { readonly kind: "none" }
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "bytes"; readonly bytes: Uint8Array }
  | { readonly kind: "json"; readonly text: string };

export type JsAppOutcome =
  | {
      readonly kind: "response";
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: JsAppBody;
      /** ccf.rpc.setApplyWrites's last value, or null when the handler did not call it. */
      readonly applyWrites: boolean | null;
      readonly claimsDigest: Uint8Array | null;
    }
  | {
      readonly kind: "failure";
      readonly reason: "exception" | "timeout" | "out-of-memory";
      readonly message: string;
      readonly trace?: string;
    };

export interface JsAppRuntimeOptions {
  readonly runtimeOptions: JsRuntimeOptions;
  readonly log?: JsLogFn;
  readonly installers?: readonly AppGlobalsInstaller[];
  /** Where reused interpreters are kept (shared across app versions by the node); a private
   *  one when absent. Its bound is set from runtimeOptions.max_cached_interpreters. */
  readonly cache?: InterpreterCache;
  /** The app's version: interpreters cached for another version are dropped first. */
  readonly version?: string;
}

const DISPATCH_MODULE = `/${RESERVED_MODULE_PREFIX}dispatch.js`;
const HOST_GLOBAL = "__consortiaRequest";
/**
 * The request's body as text, when it is valid UTF-8, travels inside the request JSON under this
 * field (removed before the handler sees the request): body.text() and body.json() then need no
 * host call, each of which costs ~10 us in quickjs-emscripten. arrayBuffer() still asks the host.
 */
const BODY_TEXT_FIELD = "\u0000bodyText";
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
/**
 * Passed instead of the caller's JSON when it is the one the interpreter's previous call got
 * (a client's requests on one connection all have the same caller, ~1 KB with its certificate):
 * the guest keeps the last caller text. Not JSON, so no caller is ever mistaken for it (and no
 * NUL: quickjs-emscripten passes strings to the guest as C strings).
 */
const SAME_CALLER = "=";

/** Builds the request object, calls the handler and turns its response into plain data. */
const DISPATCH_SOURCE = String.raw`const host = globalThis.${HOST_GLOBAL};
delete globalThis.${HOST_GLOBAL};
const BODY_TEXT = ${JSON.stringify(BODY_TEXT_FIELD)};
const SAME_CALLER = ${JSON.stringify(SAME_CALLER)};
let lastCallerText = "";
function requestBody(text) {
  let bytes;
  const get = () => (bytes === undefined ? (bytes = host.body()) : bytes);
  const asText = () => (text === undefined ? host.text(get()) : text);
  return Object.freeze({
    text: asText,
    json: () => JSON.parse(asText()),
    arrayBuffer: () => get(),
  });
}
function fillCose(caller) {
  if (caller === null || typeof caller !== "object") return;
  if (caller.cose !== undefined) caller.cose = { content: host.coseContent() };
  for (const key of Object.keys(caller)) if (key !== "cose") fillCose(caller[key]);
}
// The caller (with a certificate PEM, ~1 KB) is parsed only if the handler reads it.
function lazyCaller(request, callerText) {
  let caller;
  Object.defineProperty(request, "caller", {
    enumerable: true,
    configurable: true,
    get() {
      if (caller === undefined) {
        caller = JSON.parse(callerText);
        fillCose(caller);
      }
      return caller;
    },
    set(value) { caller = value; },
  });
}
function wireBody(body) {
  if (body === undefined) return { kind: "none" };
  if (typeof body === "string") return { kind: "text", text: body };
  if (body instanceof ArrayBuffer) { host.setResponseBytes(body); return { kind: "bytes" }; }
  if (ArrayBuffer.isView(body)) {
    host.setResponseBytes(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
    return { kind: "bytes" };
  }
  return { kind: "json", text: JSON.stringify(body) };
}
function wire(response) {
  if (response === undefined || response === null) response = {};
  if (typeof response !== "object") throw new TypeError("an endpoint must return an object");
  const status = response.statusCode === undefined ? 200 : response.statusCode;
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new TypeError("statusCode must be an integer HTTP status");
  }
  const headers = {};
  for (const [k, v] of Object.entries(response.headers ?? {})) headers[k] = String(v);
  return { status, headers, body: wireBody(response.body) };
}
export function dispatch(ns, requestText, module, name, callerArg) {
  const callerText = callerArg === SAME_CALLER ? lastCallerText : (lastCallerText = callerArg);
  const handler = ns[name];
  if (typeof handler !== "function") {
    throw new TypeError("module " + module.slice(1) + " exports no function " + name);
  }
  const request = JSON.parse(requestText);
  const text = request[BODY_TEXT];
  delete request[BODY_TEXT];
  request.body = requestBody(text);
  if (callerText !== "") lazyCaller(request, callerText);
  const response = handler(request);
  if (response !== null && typeof response === "object" && typeof response.then === "function") {
    return response.then((settled) => JSON.stringify(wire(settled)));
  }
  return JSON.stringify(wire(response));
}`;

/** The per-call host side of the dispatch module: request bytes in, response bytes out. */
interface CallIo {
  request: JsAppRequest;
  responseBytes: Uint8Array | null;
}

/**
 * What an interpreter's host functions act on, re-pointed at each request (the globals are
 * installed once per interpreter over these objects, which are mutated, never replaced).
 */
interface RequestSlot {
  readonly binding: CcfBinding;
  readonly state: JsAppRequestState;
  readonly io: CallIo;
  services: JsAppServices;
  /** The caller JSON the interpreter's previous call got ("" for none): see SAME_CALLER. */
  lastCaller: string;
}

/** An endpoint's handler and its reuse policy (CCF's `interpreter_reuse.key`, if any). */
export interface JsAppEndpointRef {
  readonly module: string;
  readonly handler: string;
  readonly interpreterReuse?: string;
}

export class JsAppRuntime {
  private readonly modules: Map<string, string>;
  private limits: JsLimits;
  private readonly cache: InterpreterCache;
  private readonly slots = new WeakMap<JsInterpreter, RequestSlot>();

  /** `modules` maps stored module names ("/app.js") to their sources. */
  constructor(
    private readonly quickjs: QuickJSWASMModule,
    modules: ReadonlyMap<string, string>,
    private readonly options: JsAppRuntimeOptions,
  ) {
    this.modules = normalisedModules(modules);
    this.modules.set(DISPATCH_MODULE, DISPATCH_SOURCE);
    this.limits = limitsOf(options.runtimeOptions);
    this.cache =
      options.cache ?? new InterpreterCache(options.runtimeOptions.max_cached_interpreters);
    this.cache.setMax(options.runtimeOptions.max_cached_interpreters);
  }

  /** New limits and cache bound (set_js_runtime_options), keeping the cached interpreters. */
  setRuntimeOptions(options: JsRuntimeOptions): void {
    this.limits = limitsOf(options);
    this.cache.setMax(options.max_cached_interpreters);
  }

  /**
   * Runs `handler` of `module` ("/app.js") for `request` over `binding`, in the interpreter
   * cached for the endpoint's reuse key, or a fresh one. Never throws for guest behaviour:
   * failures are outcomes.
   */
  call(
    endpoint: JsAppEndpointRef,
    request: JsAppRequest,
    binding: CcfBinding,
    services: JsAppServices,
  ): JsAppOutcome {
    const startedMs = Date.now();
    const key = reuseKey(endpoint, request, binding);
    let failure: JsOutcome | undefined;
    const make = (): JsInterpreter | undefined => {
      const made = this.makeInterpreter(request, binding, services, key === undefined);
      if ("failure" in made) failure = made.failure;
      return "interpreter" in made ? made.interpreter : undefined;
    };
    const got =
      key === undefined ? mapMade(make()) : this.cache.get(this.options.version ?? "", key, make);
    if (got === undefined) return toAppOutcome(failure!, null, null);
    const { interpreter, cached } = got;
    const slot = this.slots.get(interpreter)!;
    slot.binding.tx = binding.tx;
    slot.binding.access = binding.access;
    slot.services = services;
    slot.state.applyWrites = null;
    slot.state.claimsDigest = null;
    slot.state.rangeStates = [];
    slot.io.request = request;
    slot.io.responseBytes = null;
    try {
      // The deadline covers making the interpreter, as it covers a fresh runtime's set-up.
      const spent = Date.now() - startedMs;
      const limits = { ...this.limits, deadlineMs: Math.max(1, this.limits.deadlineMs - spent) };
      const caller = request.caller === undefined ? "" : JSON.stringify(request.caller);
      const callerArg = caller !== "" && caller === slot.lastCaller ? SAME_CALLER : caller;
      slot.lastCaller = caller;
      const args = [
        JSON.stringify(requestJson(request)),
        endpoint.module,
        endpoint.handler,
        callerArg,
      ];
      const outcome = interpreter.call(endpoint.module, args, limits);
      return toAppOutcome(outcome, slot.io.responseBytes, slot.state);
    } finally {
      if (!cached) interpreter.dispose();
      else if (!interpreter.reusable) this.cache.discard(key!, interpreter);
    }
  }

  private makeInterpreter(
    request: JsAppRequest,
    binding: CcfBinding,
    services: JsAppServices,
    fresh: boolean,
  ): ReturnType<typeof JsInterpreter.create> {
    const slot: RequestSlot = {
      binding: { tx: binding.tx, access: binding.access },
      state: { applyWrites: null, claimsDigest: null },
      io: { request, responseBytes: null },
      services,
      lastCaller: "",
    };
    const forward: JsAppServices = {
      lastCommittedTxId: () => slot.services.lastCommittedTxId(),
      statusForTxId: (view, seqno) => slot.services.statusForTxId(view, seqno),
      viewForSeqno: (seqno) => slot.services.viewForSeqno(seqno),
      // ccf.historical exists only when the services offer it (they do on a node).
      ...(services.stateRange === undefined || services.dropCachedStates === undefined
        ? {}
        : {
            stateRange: (handle, from, to) => slot.services.stateRange?.(handle, from, to) ?? null,
            dropCachedStates: (handle) => slot.services.dropCachedStates?.(handle) ?? false,
          }),
    };
    // Only a fresh interpreter sees a historical state: it is installed with the globals.
    const historical = fresh ? request.historical : undefined;
    const installers = this.options.installers ?? [];
    const globals = appGlobalsSetup(slot.binding, slot.state, forward, installers, historical);
    const made = JsInterpreter.create(
      this.quickjs,
      {
        modules: this.modules,
        entry: { module: DISPATCH_MODULE, exportName: "dispatch" },
        setup: (ctx) => {
          globals(ctx);
          installRequestHost(ctx, slot.io);
        },
        ...(this.options.log === undefined ? {} : { log: this.options.log }),
      },
      this.limits,
    );
    if ("interpreter" in made) this.slots.set(made.interpreter, slot);
    return made;
  }
}

function mapMade(
  made: JsInterpreter | undefined,
): { interpreter: JsInterpreter; cached: boolean } | undefined {
  return made === undefined ? undefined : { interpreter: made, cached: false };
}

/**
 * The cache key of CCF's KeyBased reuse: the endpoint's key and its access. Historical
 * endpoints never reuse (their state is installed with the globals).
 */
function reuseKey(
  endpoint: JsAppEndpointRef,
  request: JsAppRequest,
  binding: CcfBinding,
): string | undefined {
  if (endpoint.interpreterReuse === undefined || request.historical !== undefined) return undefined;
  return `${endpoint.interpreterReuse} (${binding.access.mode === "read-only" ? "ro" : "rw"})`;
}

function limitsOf(options: JsRuntimeOptions): JsLimits {
  return resolveLimits(DEFAULT_JS_LIMITS, {
    memoryBytes: options.max_heap_bytes,
    stackBytes: options.max_stack_bytes,
    deadlineMs: options.max_execution_time_ms,
  });
}

/** Installs an app's globals: `ccf` over `binding`, the app additions, then `installers`. */
export function appGlobalsSetup(
  binding: CcfBinding,
  state: JsAppRequestState,
  services: JsAppServices,
  installers: readonly AppGlobalsInstaller[],
  historical?: JsHistoricalState,
): ContextSetup {
  return (ctx) => {
    installCcfGlobals(ctx, binding);
    installAppGlobals(ctx, state, services, historical);
    for (const install of installers) install(ctx);
  };
}

/** Services for evaluating a bundle outside any request (validation): nothing is committed. */
export const NO_CONSENSUS_SERVICES: JsAppServices = {
  lastCommittedTxId: () => ({ view: 0, seqno: 0 }),
  statusForTxId: () => "Unknown",
  viewForSeqno: () => null,
};

function requestJson(request: JsAppRequest): JsonValue {
  const out: { [key: string]: JsonValue } = {
    method: request.method,
    url: request.url,
    path: request.path,
    route: request.route,
    query: request.query,
    hostname: request.hostname,
    headers: { ...request.headers },
    params: { ...request.params },
  };
  try {
    out[BODY_TEXT_FIELD] = STRICT_UTF8.decode(request.body);
  } catch (err: unknown) {
    // Not UTF-8: body.text() asks the host, which decodes with replacement characters.
    if (!(err instanceof TypeError)) throw err;
  }
  return out;
}

function installRequestHost(ctx: QuickJSContext, io: CallIo): void {
  const obj = ctx.newObject();
  const arrayBuffer = (b: Uint8Array): QuickJSHandle => newGuestArrayBuffer(ctx, b);
  const bytesOf = (h: QuickJSHandle | undefined): Uint8Array => {
    if (h === undefined) throw new TypeError("an ArrayBuffer is needed");
    const view = ctx.getArrayBuffer(h);
    try {
      return view.value.slice();
    } finally {
      view.dispose();
    }
  };
  const fns: Record<string, (...args: QuickJSHandle[]) => QuickJSHandle | void> = {
    body: () => arrayBuffer(io.request.body),
    text: (b) => ctx.newString(new TextDecoder().decode(bytesOf(b))),
    coseContent: () => arrayBuffer(io.request.coseContent ?? new Uint8Array(0)),
    setResponseBytes: (b) => {
      io.responseBytes = bytesOf(b);
    },
  };
  for (const [name, impl] of Object.entries(fns)) {
    const fn = newHostFunction(ctx, name, impl);
    ctx.setProp(obj, name, fn);
    fn.dispose();
  }
  ctx.setProp(ctx.global, HOST_GLOBAL, obj);
  obj.dispose();
}

interface WireResponse {
  status: number;
  headers: Record<string, string>;
  body:
    | { kind: "none" }
    | { kind: "text"; text: string }
    | { kind: "bytes" }
    | { kind: "json"; text: string };
}

function toAppOutcome(
  outcome: JsOutcome,
  responseBytes: Uint8Array | null,
  state: JsAppRequestState | null,
): JsAppOutcome {
  switch (outcome.kind) {
    case "timeout":
      return {
        kind: "failure",
        reason: "timeout",
        message: "Operation took too long to complete.",
      };
    case "out-of-memory":
      return { kind: "failure", reason: "out-of-memory", message: "Out of memory." };
    case "exception":
      return outcome.stack === undefined
        ? { kind: "failure", reason: "exception", message: outcome.message }
        : { kind: "failure", reason: "exception", message: outcome.message, trace: outcome.stack };
    case "ok": {
      const wire = outcome.value as unknown as WireResponse;
      const body: JsAppBody =
        wire.body.kind === "bytes"
          ? { kind: "bytes", bytes: responseBytes ?? new Uint8Array(0) }
          : wire.body;
      return {
        kind: "response",
        status: wire.status,
        headers: wire.headers,
        body,
        applyWrites: state?.applyWrites ?? null,
        claimsDigest: state?.claimsDigest ?? null,
      };
    }
  }
}
