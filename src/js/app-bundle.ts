/**
 * JS application bundles as CCF 6 deploys them (ccf-compatibility.md §9): the bundle
 * `{metadata: app.json, modules: [{name, module}]}` of a `set_js_app` proposal, and the endpoint
 * properties stored in `public:ccf.gov.endpoints` under "<VERB> <path>" (js_module prefixed with
 * "/", as CCF's apply stores it).
 *
 * parseBundle and parseEndpointProperties check every field and throw a JsAppError whose message
 * names the offending field (`bundle.metadata.endpoints["/log"]["post"].mode ...`), so a proposal
 * is refused with a message that says what to fix. bundleProblem goes further and evaluates the
 * modules in QuickJS: a module that does not compile, imports a missing module, throws at top
 * level, or does not export an endpoint's function is named.
 *
 * No IO: the sandbox is handed in.
 */
import { CcfError } from "../base/errors.js";
import { JsSandbox, type ContextSetup, type JsLimits, type JsonValue } from "./sandbox.js";
import type { QuickJSWASMModule } from "./quickjs.js";

export enum JsAppErrorCode {
  /** The bundle or an endpoint's properties are malformed. */
  InvalidBundle = "InvalidBundle",
}
export type JsAppErrorType = { code: JsAppErrorCode.InvalidBundle };

export class JsAppError extends CcfError<JsAppErrorType> {}

/** The authentication policies CCF 6 names in app.json; `jwt` is accepted and always refuses. */
export const JS_AUTHN_POLICIES = [
  "user_cert",
  "member_cert",
  "any_cert",
  "jwt",
  "user_cose_sign1",
  "member_cose_sign1",
  "no_auth",
] as const;
export type JsAuthnPolicy = (typeof JS_AUTHN_POLICIES)[number];
export type JsAuthnPolicySpec = JsAuthnPolicy | { readonly all_of: readonly JsAuthnPolicy[] };

export const JS_ENDPOINT_MODES = ["readwrite", "readonly", "historical"] as const;
export type JsEndpointMode = (typeof JS_ENDPOINT_MODES)[number];
export const FORWARDING_REQUIRED = ["sometimes", "always", "never"] as const;
export type ForwardingRequired = (typeof FORWARDING_REQUIRED)[number];
const REDIRECTION_STRATEGIES = ["none", "to_primary", "to_backup"];
const HTTP_VERBS = ["get", "post", "put", "delete", "patch"];

/** One operation of app.json, as stored in `public:ccf.gov.endpoints` (CCF's field names). */
export interface JsEndpointProperties {
  readonly js_module: string;
  readonly js_function: string;
  readonly forwarding_required: ForwardingRequired;
  readonly redirection_strategy?: string;
  readonly authn_policies: readonly JsAuthnPolicySpec[];
  readonly mode: JsEndpointMode;
  readonly openapi?: { readonly [key: string]: JsonValue };
  readonly openapi_hidden?: boolean;
  readonly interpreter_reuse?: { readonly key: string };
}

export interface JsAppModule {
  readonly name: string;
  readonly module: string;
}

export interface JsAppBundle {
  readonly metadata: {
    readonly endpoints: Readonly<Record<string, Readonly<Record<string, JsEndpointProperties>>>>;
  };
  readonly modules: readonly JsAppModule[];
}

/** Module names under this prefix are the runtime's own (app-runtime.ts). */
export const RESERVED_MODULE_PREFIX = ".consortia/";

function invalid(message: string): never {
  throw new JsAppError({ code: JsAppErrorCode.InvalidBundle }, message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkString(value: unknown, field: string): string {
  if (typeof value !== "string") invalid(`${field} must be a string`);
  return value;
}

function checkEnum<T extends string>(value: unknown, allowed: readonly T[], field: string): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    invalid(`${field} must be one of ${allowed.join(", ")} but is ${JSON.stringify(value)}`);
  }
  return value as T;
}

function parsePolicy(value: unknown, field: string): JsAuthnPolicySpec {
  if (typeof value === "string") {
    if (value === "all_of") invalid(`${field}: all_of must be an object {"all_of": [...]}`);
    return checkEnum(value, JS_AUTHN_POLICIES, field);
  }
  if (!isObject(value) || !Array.isArray(value.all_of)) {
    invalid(`${field} must be a policy name or {"all_of": [policy names]}`);
  }
  const parts = value.all_of.map((p, i) =>
    checkEnum(p, JS_AUTHN_POLICIES, `${field}.all_of[${i}]`),
  );
  if (parts.length === 0) invalid(`${field}.all_of must not be empty`);
  return { all_of: parts };
}

/**
 * Checks one operation of app.json (or a stored endpoints value). `js_module` is kept as given:
 * app.json names it relative ("app.js"), the endpoints table with a leading "/".
 */
export function parseEndpointProperties(value: unknown, field: string): JsEndpointProperties {
  if (!isObject(value)) invalid(`${field} must be an object`);
  const policies = value.authn_policies;
  if (!Array.isArray(policies)) invalid(`${field}.authn_policies must be an array`);
  const props: Record<string, unknown> = {
    js_module: checkString(value.js_module, `${field}.js_module`),
    js_function: checkString(value.js_function, `${field}.js_function`),
    forwarding_required: checkEnum(
      value.forwarding_required ?? "sometimes",
      FORWARDING_REQUIRED,
      `${field}.forwarding_required`,
    ),
    authn_policies: policies.map((p, i) => parsePolicy(p, `${field}.authn_policies[${i}]`)),
    mode: checkEnum(value.mode ?? "readwrite", JS_ENDPOINT_MODES, `${field}.mode`),
  };
  if (value.redirection_strategy !== undefined) {
    const strategy = value.redirection_strategy;
    props.redirection_strategy = checkEnum(strategy, REDIRECTION_STRATEGIES, `${field}.strategy`);
  }
  if (value.openapi !== undefined) {
    if (!isObject(value.openapi)) invalid(`${field}.openapi must be an object`);
    props.openapi = value.openapi;
  }
  if (value.openapi_hidden !== undefined) {
    if (typeof value.openapi_hidden !== "boolean") invalid(`${field}.openapi_hidden: boolean`);
    props.openapi_hidden = value.openapi_hidden;
  }
  if (value.interpreter_reuse !== undefined) {
    const reuse = value.interpreter_reuse;
    if (!isObject(reuse)) invalid(`${field}.interpreter_reuse must be an object`);
    props.interpreter_reuse = { key: checkString(reuse.key, `${field}.interpreter_reuse.key`) };
  }
  return props as unknown as JsEndpointProperties;
}

function parseModules(value: unknown): JsAppModule[] {
  if (!Array.isArray(value)) invalid("bundle.modules must be an array");
  const names = new Set<string>();
  return value.map((entry: unknown, i) => {
    const field = `bundle.modules[${i}]`;
    if (!isObject(entry)) invalid(`${field} must be an object`);
    const name = checkString(entry.name, `${field}.name`);
    const module = checkString(entry.module, `${field}.module`);
    if (name === "" || name.startsWith("/")) invalid(`${field}.name must be a relative path`);
    if (name.startsWith(RESERVED_MODULE_PREFIX)) {
      invalid(`${field}.name must not start with ${RESERVED_MODULE_PREFIX}`);
    }
    if (names.has(name)) invalid(`${field}.name ${JSON.stringify(name)} is a duplicate`);
    names.add(name);
    return { name, module };
  });
}

/** Checks a bundle's shape, every endpoint's properties and that each names a bundled module. */
export function parseBundle(value: unknown): JsAppBundle {
  if (!isObject(value)) invalid("bundle must be an object");
  const modules = parseModules(value.modules);
  const metadata = value.metadata;
  if (!isObject(metadata)) invalid("bundle.metadata must be an object");
  if (!isObject(metadata.endpoints)) invalid("bundle.metadata.endpoints must be an object");
  const names = new Set(modules.map((m) => m.name));
  const endpoints: Record<string, Record<string, JsEndpointProperties>> = {};
  for (const [path, operations] of Object.entries(metadata.endpoints)) {
    const at = `bundle.metadata.endpoints[${JSON.stringify(path)}]`;
    if (!path.startsWith("/")) invalid(`${at}: the path must start with "/"`);
    if (!isObject(operations)) invalid(`${at} must be an object`);
    const byVerb: Record<string, JsEndpointProperties> = {};
    for (const [verb, info] of Object.entries(operations)) {
      const field = `${at}[${JSON.stringify(verb)}]`;
      if (!HTTP_VERBS.includes(verb.toLowerCase())) {
        invalid(`${field}: unknown HTTP verb (use one of ${HTTP_VERBS.join(", ")})`);
      }
      const props = parseEndpointProperties(info, field);
      if (!names.has(props.js_module)) {
        invalid(`${field}.js_module: module '${props.js_module}' not found in bundle`);
      }
      byVerb[verb] = props;
    }
    endpoints[path] = byVerb;
  }
  return { metadata: { endpoints }, modules };
}

/** The synthetic module that imports every bundle module and lists its exports. */
const CHECK_MODULE = `/${RESERVED_MODULE_PREFIX}check.js`;
const CHECK_SOURCE = `export async function exportsOf(names) {
  const out = {};
  for (const name of names) {
    try {
      out[name] = Object.keys(await import(name));
    } catch (e) {
      const what = e && e.message !== undefined ? e.name + ": " + e.message : String(e);
      throw new Error("module " + name.slice(1) + ": " + what);
    }
  }
  return out;
}`;

/**
 * Why `bundle` (already parsed) cannot run, or null: every module is evaluated in one fresh
 * runtime with the `setup` globals (read-only, so top-level `ccf.kv` use works), and every
 * endpoint's js_function must be exported by its module.
 */
export function bundleProblem(
  quickjs: QuickJSWASMModule,
  bundle: JsAppBundle,
  options: { readonly limits: JsLimits; readonly setup?: ContextSetup },
): string | null {
  const modules = new Map<string, string>(bundle.modules.map((m) => ["/" + m.name, m.module]));
  modules.set(CHECK_MODULE, CHECK_SOURCE);
  const box = new JsSandbox(quickjs, modules, { limits: options.limits });
  const names = bundle.modules.map((m) => "/" + m.name);
  const outcome = box.call({
    module: CHECK_MODULE,
    exportName: "exportsOf",
    args: [names],
    ...(options.setup === undefined ? {} : { setup: options.setup }),
  });
  switch (outcome.kind) {
    case "timeout":
      return "evaluating the modules took too long";
    case "out-of-memory":
      return "evaluating the modules ran out of memory";
    case "exception":
      return outcome.message;
    case "ok":
      return missingExport(bundle, outcome.value as Record<string, string[]> | undefined);
  }
}

function missingExport(
  bundle: JsAppBundle,
  exported: Record<string, string[]> | undefined,
): string | null {
  for (const [path, operations] of Object.entries(bundle.metadata.endpoints)) {
    for (const [verb, props] of Object.entries(operations)) {
      const names = exported?.["/" + props.js_module] ?? [];
      if (!names.includes(props.js_function)) {
        return (
          `endpoint ${verb.toUpperCase()} ${path}: module '${props.js_module}' does not export ` +
          `'${props.js_function}'`
        );
      }
    }
  }
  return null;
}

/** The endpoints table key of an operation: "POST /log/private". */
export function endpointKey(verb: string, path: string): string {
  return `${verb.toUpperCase()} ${path}`;
}

/** The verb and path of an endpoints table key, or null when it is not "<VERB> /<path>". */
export function parseEndpointKey(key: string): { method: string; path: string } | null {
  const space = key.indexOf(" ");
  if (space <= 0) return null;
  const method = key.slice(0, space);
  const path = key.slice(space + 1);
  if (!/^[A-Z]+$/.test(method) || !path.startsWith("/")) return null;
  return { method, path };
}
