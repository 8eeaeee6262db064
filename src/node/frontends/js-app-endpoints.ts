/**
 * The endpoints of the JS app deployed by governance (ccf-compatibility.md §9), served under
 * /app: routes follow `public:ccf.gov.endpoints` and `public:ccf.gov.modules` as committed to
 * this node's store, on every node (a backup applies set_js_app or remove_js_app through
 * replication and its routes change with it). JsAppRoutes is a RouteSource of the node's
 * router, consulted before the built-in routes, so a JS endpoint wins over a built-in one at the
 * same path and verb; when the app is removed its paths answer 404 again.
 *
 * Per request: the service must be open (404 FrontendNotOpen), `forwarding_required: always`
 * forwards from a backup before running; `historical` endpoints read the committed transaction
 * named by x-ms-ccf-transaction-id (historical.ts, CCF's errors for a missing header or a pending
 * or invalid txId) as `ccf.historicalState`, and may not write. Authentication (js-app-auth.ts)
 * and the handler run in one transaction (rpc-context.ts), whose writes commit as the handler
 * said with ccf.rpc.setApplyWrites(bool), or else on a 2xx answer (CCF's should_apply_writes);
 * a write on a backup is forwarded to the primary. readonly endpoints may not write at all; no
 * endpoint writes `public:ccf.` or `ccf.` maps. A guest failure is 500 InternalError
 * "Exception thrown while executing." (the timeout's own message for the deadline), with
 * details only when return_exception_details is set.
 *
 * Rebuilding: the routes and the runtime are rebuilt, and the cached interpreters dropped, when
 * the seqno of the last write to the endpoints, modules, interpreter.flush or bytecode map
 * changes (set_js_app, remove_js_app, refresh_js_app_bytecode_cache), or the store rolled back; a
 * new runtime options write only changes the limits and the cache's bound. Reading five seqnos
 * is the per-request cost.
 */
import { utf8 } from "../../base/bytes.js";
import type { JsonBody } from "../../http/errors.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import {
  FORWARD_TO_PRIMARY,
  Router,
  type RouteMatch,
  type RouteSource,
  type RpcOutcome,
  type RpcRequest,
  type RpcResponse,
} from "../../http/router.js";
import {
  JsAppError,
  parseEndpointKey,
  parseEndpointProperties,
  type JsEndpointProperties,
} from "../../js/app-bundle.js";
import type { JsAppServices, JsHistoricalState } from "../../js/app-globals.js";
import { formatTxId, type Seqno } from "../../base/ids.js";
import { loadHistoricalState, requestedTxId } from "./historical.js";
import { historicalRangesOf } from "./historical-ranges.js";
import { notAvailable, withHistoricalEntries, type HistoricalFetch } from "./historical-reads.js";
import type { HistoricalState } from "../../apps/app.js";
import {
  JsAppRuntime,
  parseRuntimeOptions,
  type AppGlobalsInstaller,
  type JsAppOutcome,
  type JsRuntimeOptions,
} from "../../js/app-runtime.js";
import type { KvAccess } from "../../js/ccf-globals.js";
import { InterpreterCache } from "../../js/interpreter-cache.js";
import { getQuickJS, isDiscarded, type QuickJSWASMModule } from "../../js/quickjs.js";
import { SINGLETON_KEY } from "../../kv/encoding.js";
import { SERVICE_TABLES } from "../../kv/service-tables.js";
import type { Tx } from "../../kv/tx.js";
import { authenticateJs } from "./js-app-auth.js";
import type { NodeContext } from "./node-context.js";
import { forwardsBeforeRunning, runInTx } from "./rpc-context.js";

export interface JsAppFrontendDeps {
  readonly node: NodeContext;
  readonly quickjs: QuickJSWASMModule;
  /** Whether the service is open (app endpoints answer FrontendNotOpen until it is). */
  readonly isOpen: () => boolean;
  /** Extensions of the `ccf` global (ccf.crypto), installed after the base one. */
  readonly installers: readonly AppGlobalsInstaller[];
  readonly log: (line: string) => void;
}

/** One deployed endpoint, as stored. */
export interface JsEndpoint {
  readonly method: string;
  /** Path below /app, with `{param}` segments. */
  readonly path: string;
  readonly props: JsEndpointProperties;
}

export const APP_ACCESS: KvAccess = {
  mode: "read-write",
  readOnlyPrefixes: ["public:ccf.", "ccf."],
};
export const READ_ONLY: KvAccess = { mode: "read-only" };
const EXCEPTION_MESSAGE = "Exception thrown while executing.";
/**
 * The maps whose writes make a new app version: its modules and endpoints, interpreter.flush
 * (set_js_app writes it, as CCF's flush marker) and the bytecode map
 * (refresh_js_app_bytecode_cache rewrites it). A new version drops the cached interpreters.
 */
const APP_MAPS = [
  SERVICE_TABLES.endpoints,
  SERVICE_TABLES.modules,
  SERVICE_TABLES.interpreterFlush,
  SERVICE_TABLES.modulesQuickjsBytecode,
] as const;

/** The JS endpoints committed to the store, in key order; malformed rows are skipped. */
export function storedEndpoints(node: NodeContext, log?: (line: string) => void): JsEndpoint[] {
  const out: JsEndpoint[] = [];
  const decoder = new TextDecoder();
  for (const [keyBytes, valueBytes] of node.store.entries(SERVICE_TABLES.endpoints)) {
    const key = parseEndpointKey(decoder.decode(keyBytes));
    if (key === null) {
      log?.(`skipping JS endpoint with a malformed key: ${decoder.decode(keyBytes)}`);
      continue;
    }
    try {
      const props = parseEndpointProperties(JSON.parse(decoder.decode(valueBytes)), "endpoint");
      out.push({ method: key.method, path: key.path, props });
    } catch (err: unknown) {
      if (!(err instanceof JsAppError) && !(err instanceof SyntaxError)) throw err;
      log?.(`skipping JS endpoint ${decoder.decode(keyBytes)}: ${err.message}`);
    }
  }
  return out;
}

export class JsAppRoutes implements RouteSource {
  /** Invariant: built from the maps as they were at `version` (app maps, then options). */
  private version = "";
  /** The app maps' part of `version`: the cached interpreters belong to it. */
  private appVersion = "";
  /**
   * What `version` was built from, as numbers (the rollback count, each APP_MAPS seqno, the
   * runtime options' seqno), so a request checks it without building strings; empty: rebuild.
   */
  private builtAt: number[] = [];
  /** Reused interpreters (endpoints with interpreter_reuse), for the current app version. */
  private readonly interpreters = new InterpreterCache(
    parseRuntimeOptions(undefined).max_cached_interpreters,
  );
  private router = new Router();
  private runtime: JsAppRuntime | null = null;
  private options: JsRuntimeOptions = parseRuntimeOptions(undefined);
  private readonly services: JsAppServices;

  /** The QuickJS module interpreters are made from: deps.quickjs, until it is discarded. */
  private quickjs: QuickJSWASMModule;
  private reloading = false;

  constructor(private readonly deps: JsAppFrontendDeps) {
    this.services = consensusServices(deps.node);
    this.quickjs = deps.quickjs;
  }

  match(method: string, path: string): RouteMatch {
    this.refresh();
    return this.router.match(method, path);
  }

  /** The deployed endpoints (for /app/api and /gov/service/javascript-app). */
  endpoints(): JsEndpoint[] {
    return storedEndpoints(this.deps.node);
  }

  /**
   * Moves to a fresh QuickJS module once the current one was discarded (a guest made its WASM
   * instance abort: quickjs.ts). Until the new one has loaded (~20 ms) requests still use the
   * old one; then every interpreter and route is rebuilt on the new one.
   */
  private replaceDiscardedQuickJS(): void {
    if (this.reloading || !isDiscarded(this.quickjs)) return;
    this.reloading = true;
    getQuickJS().then(
      (fresh) => {
        this.reloading = false;
        this.quickjs = fresh;
        this.interpreters.abandon();
        this.version = "";
        this.appVersion = "";
        this.builtAt = [];
      },
      (err: unknown) => {
        this.reloading = false;
        this.deps.log(`reloading QuickJS failed: ${String(err)}`);
      },
    );
  }

  /** The store positions the routes depend on, in `builtAt`'s order. */
  private storePositions(): number[] {
    const store = this.deps.node.store;
    const positions = [store.rollbackCount];
    for (const map of APP_MAPS) positions.push(store.lastWriteSeqno(map));
    positions.push(store.lastWriteSeqno(SERVICE_TABLES.jsRuntimeOptions));
    return positions;
  }

  /** Whether the store is where the routes were built (per request: no allocation). */
  private isCurrent(): boolean {
    const at = this.builtAt;
    if (at.length === 0) return false;
    const store = this.deps.node.store;
    // A rollback may undo a write and a new one land at the same seqno.
    if (at[0] !== store.rollbackCount) return false;
    for (let i = 0; i < APP_MAPS.length; i++) {
      if (at[i + 1] !== store.lastWriteSeqno(APP_MAPS[i]!)) return false;
    }
    return at[APP_MAPS.length + 1] === store.lastWriteSeqno(SERVICE_TABLES.jsRuntimeOptions);
  }

  private refresh(): void {
    this.replaceDiscardedQuickJS();
    if (this.isCurrent()) return;
    const store = this.deps.node.store;
    const positions = this.storePositions();
    this.builtAt = positions;
    const appMaps = APP_MAPS.length + 1;
    const appVersion = `${positions[0]}/${positions.slice(1, appMaps).join(":")}`;
    const version = `${appVersion}/${positions[appMaps]}`;
    if (version === this.version) return;
    this.version = version;
    this.options = parseRuntimeOptions(store.get(SERVICE_TABLES.jsRuntimeOptions, SINGLETON_KEY));
    if (appVersion === this.appVersion && this.runtime !== null) {
      // Only the runtime options changed: new limits, the interpreters stay.
      this.runtime.setRuntimeOptions(this.options);
      return;
    }
    this.appVersion = appVersion;
    // The interpreters of the previous app go now, not at the next reuse.
    this.interpreters.clear();
    const modules = new Map<string, string>();
    const decoder = new TextDecoder();
    for (const [name, source] of store.entries(SERVICE_TABLES.modules)) {
      modules.set(decoder.decode(name), decoder.decode(source));
    }
    const log = this.deps.log;
    this.runtime = new JsAppRuntime(this.quickjs, modules, {
      runtimeOptions: this.options,
      log: (level, message) => log(`[js app ${level}] ${message}`),
      installers: this.deps.installers,
      cache: this.interpreters,
      version: appVersion,
    });
    this.router = new Router();
    for (const endpoint of storedEndpoints(this.deps.node, log)) {
      const route = `/app${endpoint.path}`;
      const runtime = this.runtime;
      this.router.add(endpoint.method, route, (request) =>
        endpoint.props.mode === "historical"
          ? withHistoricalEntries(this.deps.node, (fetch) =>
              this.handle(runtime, endpoint, route, request, fetch),
            )
          : this.handle(runtime, endpoint, route, request, null),
      );
    }
  }

  private handle(
    runtime: JsAppRuntime,
    endpoint: JsEndpoint,
    route: string,
    request: RpcRequest,
    /** Historical endpoints: where the state's ledger entries come from. */
    fetch: HistoricalFetch | null,
  ): RpcOutcome {
    const { node } = this.deps;
    if (!this.deps.isOpen()) {
      throw new HttpError(HttpErrorCode.FrontendNotOpen, "Frontend is not open.");
    }
    const props = endpoint.props;
    if (forwardsBeforeRunning(props.forwarding_required, request, node.raft)) {
      return FORWARD_TO_PRIMARY;
    }
    const options = this.options;
    let applyWrites: boolean | null = null;
    const keep = (response: RpcResponse) =>
      applyWrites ?? (response.status >= 200 && response.status < 300);
    return runInTx(
      node.pipeline,
      (tx, setClaims) => {
        const who = authenticateJs(tx, request, props.authn_policies, node.clock.realtimeMs());
        const access = props.mode === "readwrite" ? APP_ACCESS : READ_ONLY;
        let historical: JsHistoricalState | undefined;
        if (fetch !== null) {
          const id = requestedTxId(request);
          const state = loadHistoricalState(node, id, fetch);
          if (state === null) return notAvailable(id);
          historical = jsHistoricalState(state);
        }
        const outcome = runtime.call(
          {
            module: props.js_module,
            handler: props.js_function,
            ...(props.interpreter_reuse === undefined
              ? {}
              : { interpreterReuse: props.interpreter_reuse.key }),
          },
          guestRequest(request, route, who, historical),
          { tx, access },
          this.services,
        );
        if (outcome.kind === "failure")
          throw guestFailure(outcome, options, request, this.deps.log);
        applyWrites = outcome.applyWrites;
        if (outcome.claimsDigest !== null) setClaims(outcome.claimsDigest);
        return toRpcResponse(outcome);
      },
      keep,
    );
  }
}

/**
 * The answer to a guest failure, as CCF's JS runtime gives it: 500 InternalError with the
 * exception's details only when return_exception_details is set (app services use it too).
 */
export function guestFailure(
  outcome: Extract<JsAppOutcome, { kind: "failure" }>,
  options: JsRuntimeOptions,
  request: RpcRequest,
  log: (line: string) => void,
): HttpError {
  if (options.log_exception_details) {
    const trace = outcome.trace === undefined ? "" : `\n${outcome.trace}`;
    log(`JS exception in ${request.method} ${request.path}: ${outcome.message}${trace}`);
  }
  const message = outcome.reason === "exception" ? EXCEPTION_MESSAGE : outcome.message;
  if (!options.return_exception_details) {
    return new HttpError(HttpErrorCode.InternalError, message);
  }
  const detail: Record<string, JsonBody> = { code: "JSException", message: outcome.message };
  if (outcome.trace !== undefined) detail.trace = outcome.trace;
  return new HttpError(HttpErrorCode.InternalError, message, { details: [detail] });
}

function jsHistoricalState(state: HistoricalState): JsHistoricalState {
  return {
    transactionId: formatTxId(state.txId),
    receipt: state.receipt,
    get: (map, key) => state.get(map, key) ?? undefined,
  };
}

export function guestRequest(
  request: RpcRequest,
  route: string,
  who: ReturnType<typeof authenticateJs>,
  historical: JsHistoricalState | undefined,
): Parameters<JsAppRuntime["call"]>[1] {
  const url = request.query === "" ? request.path : `${request.path}?${request.query}`;
  return {
    method: request.method,
    url,
    path: request.path,
    route,
    query: request.query,
    hostname: request.headers["host"] ?? "",
    headers: request.headers,
    params: request.params,
    body: request.body,
    ...(who.caller === undefined ? {} : { caller: who.caller }),
    ...(who.coseContent === undefined ? {} : { coseContent: who.coseContent }),
    ...(historical === undefined ? {} : { historical }),
  };
}

/** The handler's answer as an RpcResponse: the app's headers, and a body typed as CCF does. */
export function toRpcResponse(outcome: Extract<JsAppOutcome, { kind: "response" }>): RpcResponse {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(outcome.headers)) headers[name.toLowerCase()] = value;
  const body = outcome.body;
  const status = outcome.status;
  switch (body.kind) {
    case "none":
      return { status, headers };
    case "text":
      headers["content-type"] ??= "text/plain";
      return { status, headers, body: utf8(body.text) };
    case "bytes":
      headers["content-type"] ??= "application/octet-stream";
      return { status, headers, body: body.bytes };
    case "json":
      headers["content-type"] ??= "application/json";
      return { status, headers, body: utf8(body.text) };
  }
}

export function consensusServices(node: NodeContext): JsAppServices {
  // Ranges load in the background and answer null until then, as CCF's (historical-ranges.ts).
  const ranges = historicalRangesOf(node);
  return {
    stateRange: (handle, from, to) => {
      const states = ranges.stateRange(handle, from as Seqno, to as Seqno);
      return states === null ? null : states.map(jsHistoricalState);
    },
    dropCachedStates: (handle) => ranges.drop(handle),
    lastCommittedTxId: () => {
      const id = node.pipeline.commitTxId;
      return { view: id.view, seqno: id.seqno };
    },
    statusForTxId: (view, seqno) => node.raft.status(view, seqno),
    viewForSeqno: (seqno) => {
      const log = node.raft.log;
      if (seqno < 1 || seqno > log.last || seqno <= log.baseSeqno) return null;
      return log.viewAt(seqno);
    },
  };
}

/** OpenAPI paths of the JS endpoints (from their openapi metadata), hidden ones left out. */
export function jsOpenApiPaths(endpoints: readonly JsEndpoint[]): Record<string, JsonBody> {
  const paths: Record<string, Record<string, JsonBody>> = {};
  for (const { method, path, props } of endpoints) {
    if (props.openapi_hidden === true) continue;
    const at = (paths[`/app${path}`] ??= {});
    at[method.toLowerCase()] = {
      ...(props.openapi ?? {}),
      "x-ccf-forwarding": props.forwarding_required,
      "x-ccf-mode": props.mode,
    } as JsonBody;
  }
  return paths;
}

/** Rows of a string-keyed map through `tx`, in key order. */
function rowsOf(tx: Tx, map: string): [string, Uint8Array][] {
  const decoder = new TextDecoder();
  const rows: [string, Uint8Array][] = [];
  tx.ro(map).forEach((value, key) => rows.push([decoder.decode(key), value]));
  return rows.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * GET /gov/service/javascript-app as CCF 6 answers it: `{endpoints: {path: {VERB: operation}}}`
 * with camelCase fields, or the stored properties unchanged with `?case=original`.
 */
export function jsAppView(tx: Tx, originalCase: boolean): JsonBody {
  const endpoints: Record<string, Record<string, JsonBody>> = {};
  const decoder = new TextDecoder();
  for (const [key, value] of rowsOf(tx, SERVICE_TABLES.endpoints)) {
    const parsed = parseEndpointKey(key);
    if (parsed === null) continue;
    const stored = JSON.parse(decoder.decode(value)) as Record<string, JsonBody>;
    const at = (endpoints[parsed.path] ??= {});
    at[parsed.method] = originalCase
      ? stored
      : {
          jsModule: stored.js_module ?? null,
          jsFunction: stored.js_function ?? null,
          forwardingRequired: stored.forwarding_required ?? "sometimes",
          redirectionStrategy: stored.redirection_strategy ?? "none",
          authnPolicies: stored.authn_policies ?? [],
          mode: stored.mode ?? "readwrite",
          openApi: stored.openapi ?? {},
        };
  }
  return { endpoints };
}

/** GET /gov/service/javascript-modules: `{value: [{moduleName}]}`. */
export function jsModulesView(tx: Tx): JsonBody {
  return { value: rowsOf(tx, SERVICE_TABLES.modules).map(([name]) => ({ moduleName: name })) };
}

/** The source of module `name` ("/app.js"), or undefined. */
export function jsModuleSource(tx: Tx, name: string): string | undefined {
  const source = tx.ro(SERVICE_TABLES.modules).get(utf8(name));
  return source === undefined ? undefined : new TextDecoder().decode(source);
}
