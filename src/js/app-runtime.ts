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
 * The sandbox evaluates the modules afresh for every call (one runtime per call); interpreter
 * reuse is not done here.
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
import { newHostFunction } from "./host-function.js";
import type { QuickJSWASMModule } from "./quickjs.js";
import {
  JsSandbox,
  type ContextSetup,
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
    if (typeof fallback === "number" && Number.isSafeInteger(value) && (value as number) > 0) {
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
}

const DISPATCH_MODULE = `/${RESERVED_MODULE_PREFIX}dispatch.js`;
const HOST_GLOBAL = "__consortiaRequest";

/** Builds the request object, calls the handler and turns its response into plain data. */
const DISPATCH_SOURCE = String.raw`const host = globalThis.${HOST_GLOBAL};
delete globalThis.${HOST_GLOBAL};
function requestBody() {
  let bytes;
  const get = () => (bytes === undefined ? (bytes = host.body()) : bytes);
  return Object.freeze({
    text: () => host.text(get()),
    json: () => JSON.parse(host.text(get())),
    arrayBuffer: () => get(),
  });
}
function fillCose(caller) {
  if (caller === null || typeof caller !== "object") return;
  if (caller.cose !== undefined) caller.cose = { content: host.coseContent() };
  for (const key of Object.keys(caller)) if (key !== "cose") fillCose(caller[key]);
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
export async function dispatch(request, module, name) {
  const ns = await import(module);
  const handler = ns[name];
  if (typeof handler !== "function") {
    throw new TypeError("module " + module.slice(1) + " exports no function " + name);
  }
  request.body = requestBody();
  if (request.caller !== undefined) fillCose(request.caller);
  let response = handler(request);
  if (response !== null && typeof response === "object" && typeof response.then === "function") {
    response = await response;
  }
  return wire(response);
}`;

/** The per-call host side of the dispatch module: request bytes in, response bytes out. */
interface CallIo {
  readonly request: JsAppRequest;
  responseBytes: Uint8Array | null;
}

export class JsAppRuntime {
  private readonly sandbox: JsSandbox;

  /** `modules` maps stored module names ("/app.js") to their sources. */
  constructor(
    quickjs: QuickJSWASMModule,
    modules: ReadonlyMap<string, string>,
    private readonly options: JsAppRuntimeOptions,
  ) {
    const all = new Map(modules);
    all.set(DISPATCH_MODULE, DISPATCH_SOURCE);
    const rt = options.runtimeOptions;
    const limits = {
      memoryBytes: rt.max_heap_bytes,
      stackBytes: rt.max_stack_bytes,
      deadlineMs: rt.max_execution_time_ms,
    };
    this.sandbox = new JsSandbox(
      quickjs,
      all,
      options.log === undefined ? { limits } : { limits, log: options.log },
    );
  }

  /** Runs `handler` of `module` ("/app.js") for `request` over `binding`. Never throws for
   *  guest behaviour: failures are outcomes. */
  call(
    endpoint: { readonly module: string; readonly handler: string },
    request: JsAppRequest,
    binding: CcfBinding,
    services: JsAppServices,
  ): JsAppOutcome {
    const state: JsAppRequestState = { applyWrites: null, claimsDigest: null };
    const io: CallIo = { request, responseBytes: null };
    const outcome = this.sandbox.call({
      module: DISPATCH_MODULE,
      exportName: "dispatch",
      args: [requestJson(request), endpoint.module, endpoint.handler],
      setup: (ctx) => {
        const installers = this.options.installers ?? [];
        appGlobalsSetup(binding, state, services, installers, request.historical)(ctx);
        installRequestHost(ctx, io);
      },
    });
    return toAppOutcome(outcome, io, state);
  }
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
  if (request.caller !== undefined) out.caller = request.caller;
  return out;
}

function installRequestHost(ctx: QuickJSContext, io: CallIo): void {
  const obj = ctx.newObject();
  const arrayBuffer = (b: Uint8Array): QuickJSHandle =>
    ctx.newArrayBuffer(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
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

function toAppOutcome(outcome: JsOutcome, io: CallIo, state: JsAppRequestState): JsAppOutcome {
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
          ? { kind: "bytes", bytes: io.responseBytes ?? new Uint8Array(0) }
          : wire.body;
      return {
        kind: "response",
        status: wire.status,
        headers: wire.headers,
        body,
        applyWrites: state.applyWrites,
        claimsDigest: state.claimsDigest,
      };
    }
  }
}
