/**
 * Routing of RPCs by method and path template, CCF style (ccf-compatibility.md §3.1):
 * templates such as `/app/log/private/raw_text/{id}` where a `{name}` segment matches exactly
 * one non-empty path segment, percent-decoded into `params.name`. Routes are added and removed
 * at runtime, because JS apps are installed by governance while the node is serving.
 *
 * Outcomes of a lookup are a `{kind}` union: a handler with its params, OPTIONS on a known path
 * (204 + Allow), a known path with another verb (405 UnsupportedHttpVerb + Allow), an unknown
 * path (404 ResourceNotFound), or a path whose escapes are malformed (400 InvalidResourceName).
 * responseForMiss turns the non-handler outcomes into CCF's exact responses.
 *
 * Invariant: at most one handler per (method, template). When several templates match a path,
 * the most specific wins: segments are compared left to right and a literal beats a parameter,
 * so `/x/count` is preferred over `/x/{id}` for the path `/x/count`.
 */
import { assert } from "../base/assert.js";
import type { TxId } from "../base/ids.js";
import { errorBody, HttpErrorCode, httpStatusOf, type JsonBody } from "./errors.js";

/** One request as handlers see it; built by the server, never mutated after dispatch. */
export interface RpcRequest {
  /** Upper case, as sent ("GET", "POST", ...). */
  readonly method: string;
  /** The path without the query string, still percent-encoded. */
  readonly path: string;
  /** The raw query string without the leading "?" ("" when absent). */
  readonly query: string;
  readonly queryParams: URLSearchParams;
  /** Header names in lower case; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** Percent-decoded values of the matched template's `{name}` segments. */
  readonly params: Readonly<Record<string, string>>;
  /** DER of the TLS client certificate, or null when the client presented none. */
  readonly callerCertDer: Uint8Array | null;
  /**
   * The client connection's state, shared by its requests; absent for a request that did not
   * come from a client connection of this node (one forwarded here, a test's).
   */
  readonly session?: RpcSession;
  /**
   * The template of the route that matched ("/app/log/private/raw_text/{id}"): written once,
   * by dispatch, before the handler runs; absent before routing and when no route matched. The
   * server reads it for its RequestObserver (request metrics by endpoint).
   */
  template?: string | undefined;
}

/** What a node remembers of one client connection between its requests. */
export interface RpcSession {
  /**
   * A request of this connection was forwarded to the primary. From then on its requests to
   * endpoints CCF marks ForwardingRequired::Sometimes (app endpoints, governance reads, /tx and
   * /commit of those frontends) are forwarded too while this node is a backup, so the client
   * reads its own writes: CCF's session `is_forwarding`.
   */
  forwarded: boolean;
}

/**
 * A handler's answer. A Uint8Array body is sent as application/octet-stream, a string as
 * text/plain, anything else as JSON (application/json), unless `headers` sets content-type.
 */
export interface RpcResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: JsonBody | Uint8Array;
  /**
   * The transaction this answer reflects: the one a write was assigned, or the last one a read
   * may have observed. The node's request path writes it as x-ms-ccf-transaction-id; the server
   * itself never sends it.
   */
  readonly txId?: TxId;
}

/**
 * What a handler tells the node instead of answering when the request must run on the primary
 * (it wrote, on a backup). The node's request path forwards it; a server without one answers
 * 503 PrimaryNotFound.
 */
export interface ForwardToPrimary {
  readonly kind: "forward-to-primary";
}
export const FORWARD_TO_PRIMARY: ForwardToPrimary = Object.freeze({ kind: "forward-to-primary" });

/** A handler's outcome: an answer, or "run me on the primary". */
export type RpcOutcome = RpcResponse | ForwardToPrimary;

export function isForward(outcome: RpcOutcome): outcome is ForwardToPrimary {
  return "kind" in outcome;
}

export type RpcHandler = (request: RpcRequest) => RpcOutcome | Promise<RpcOutcome>;

export type RouteMatch =
  | {
      kind: "handler";
      handler: RpcHandler;
      /** NO_PARAMS when the template has no parameters. */
      params: Readonly<Record<string, string>>;
      /** The template that matched, e.g. "/app/log/private/raw_text/{id}". */
      template: string;
    }
  | { kind: "options"; allow: string }
  | { kind: "unsupported-verb"; allow: string }
  | { kind: "unknown-path" }
  | { kind: "malformed-path" };

/**
 * The params of every match of a template without parameters, and of requests before routing.
 * Frozen: one object is shared by all of them.
 */
export const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

type Segment = { literal: string } | { param: string };

type HandlerMatch = Extract<RouteMatch, { kind: "handler" }>;

interface Route {
  readonly template: string;
  readonly segments: readonly Segment[];
  /** Invariant: never empty while the route is registered. */
  readonly handlers: Map<string, RpcHandler>;
  /**
   * Templates without parameters: the match of each method, built once (a lookup of such a
   * path, the common case, allocates nothing). Invariant: same keys and handlers as `handlers`.
   */
  readonly matches: Map<string, HandlerMatch>;
}

/** The outcome of every lookup of an unknown path (shared: it carries nothing). */
const UNKNOWN_PATH: RouteMatch = Object.freeze({ kind: "unknown-path" });

/** How many segments `path` has ("/a/b" has 2), as path.split("/").length - 1. */
function segmentCount(path: string): number {
  let count = 0;
  for (let at = path.indexOf("/"); at >= 0; at = path.indexOf("/", at + 1)) count++;
  return count;
}

const METHOD_PATTERN = /^[A-Z]+$/;
const PARAM_PATTERN = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

function parseTemplate(template: string): Segment[] {
  assert(template.startsWith("/"), `route template must start with "/": ${template}`);
  const names = new Set<string>();
  return template
    .slice(1)
    .split("/")
    .map((text) => {
      const param = PARAM_PATTERN.exec(text);
      if (param === null) {
        assert(!/[{}]/.test(text), `route segment must be literal or {name}: ${template}`);
        return { literal: text };
      }
      const name = param[1]!;
      assert(!names.has(name), `duplicate parameter {${name}} in ${template}`);
      names.add(name);
      return { param: name };
    });
}

function hasParams(segments: readonly Segment[]): boolean {
  return segments.some((s) => "param" in s);
}

/** Decodes each segment of a path; null when an escape is malformed. */
function decodeSegments(path: string): string[] | null {
  const raw = path.slice(1).split("/");
  const decoded: string[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const segment = raw[i]!;
    if (!segment.includes("%")) {
      decoded[i] = segment;
      continue;
    }
    try {
      decoded[i] = decodeURIComponent(segment);
    } catch (e) {
      if (e instanceof URIError) return null;
      throw e;
    }
  }
  return decoded;
}

function bindParams(route: Route, segments: readonly string[]): Record<string, string> | null {
  const params: Record<string, string> = {};
  for (let i = 0; i < route.segments.length; i++) {
    const pattern = route.segments[i]!;
    const value = segments[i]!;
    if ("literal" in pattern) {
      if (pattern.literal !== value) return null;
    } else {
      if (value === "") return null;
      params[pattern.param] = value;
    }
  }
  return params;
}

/** Negative when `a` is more specific than `b` (a literal earlier than b's parameter). */
function compareSpecificity(a: Route, b: Route): number {
  for (let i = 0; i < a.segments.length; i++) {
    const aLiteral = "literal" in a.segments[i]!;
    const bLiteral = "literal" in b.segments[i]!;
    if (aLiteral !== bLiteral) return aLiteral ? -1 : 1;
  }
  return 0;
}

function allowHeader(methods: Iterable<string>): string {
  // CCF lists OPTIONS first, then the endpoint's verbs.
  return ["OPTIONS", ...[...new Set(methods)].filter((m) => m !== "OPTIONS").sort()].join(", ");
}

/**
 * Routes kept outside the router, consulted before its own for paths under a prefix: JS app
 * endpoints, which follow the KV rather than registrations (CCF: a JS endpoint wins over a
 * built-in one at the same path and verb).
 */
export interface RouteSource {
  match(method: string, path: string): RouteMatch;
}

export class Router {
  /** Consulted in order before the router's own routes, for paths starting with `prefix`. */
  private readonly sources: { prefix: string; source: RouteSource }[] = [];

  /** Templates without parameters, by exact path: the common case, found in O(1). */
  private readonly literalRoutes = new Map<string, Route>();
  /** Templates with parameters, by segment count. */
  private readonly templatedRoutes = new Map<number, Route[]>();
  private readonly byTemplate = new Map<string, Route>();

  /** Registers a handler; returns a function that removes exactly this registration. */
  add(method: string, template: string, handler: RpcHandler): () => void {
    assert(METHOD_PATTERN.test(method), `HTTP method must be upper case: ${method}`);
    let route = this.byTemplate.get(template);
    if (route === undefined) {
      const segments = parseTemplate(template);
      route = { template, segments, handlers: new Map(), matches: new Map() };
      this.byTemplate.set(template, route);
      if (!hasParams(segments)) {
        this.literalRoutes.set(template, route);
      } else {
        const group = this.templatedRoutes.get(segments.length) ?? [];
        group.push(route);
        this.templatedRoutes.set(segments.length, group);
      }
    }
    assert(!route.handlers.has(method), `route already registered: ${method} ${template}`);
    route.handlers.set(method, handler);
    if (!hasParams(route.segments)) {
      route.matches.set(method, { kind: "handler", handler, params: NO_PARAMS, template });
    }
    return () => {
      if (this.byTemplate.get(template)?.handlers.get(method) === handler) {
        this.remove(method, template);
      }
    };
  }

  /** Removes a handler; returns whether one was registered. */
  remove(method: string, template: string): boolean {
    const route = this.byTemplate.get(template);
    if (route === undefined || !route.handlers.delete(method)) return false;
    route.matches.delete(method);
    if (route.handlers.size === 0) {
      this.byTemplate.delete(template);
      this.literalRoutes.delete(template);
      const group = this.templatedRoutes.get(route.segments.length);
      if (group !== undefined) {
        const rest = group.filter((r) => r !== route);
        if (rest.length === 0) this.templatedRoutes.delete(route.segments.length);
        else this.templatedRoutes.set(route.segments.length, rest);
      }
    }
    return true;
  }

  /** Every registered (method, template), sorted by template then method (for /api). */
  routes(): { method: string; template: string }[] {
    const out: { method: string; template: string }[] = [];
    for (const route of this.byTemplate.values()) {
      for (const method of route.handlers.keys()) out.push({ method, template: route.template });
    }
    return out.sort(
      (a, b) => a.template.localeCompare(b.template) || a.method.localeCompare(b.method),
    );
  }

  /** Adds a source consulted before this router's routes; returns a function removing it. */
  addSource(prefix: string, source: RouteSource): () => void {
    const entry = { prefix, source };
    this.sources.push(entry);
    return () => {
      const at = this.sources.indexOf(entry);
      if (at >= 0) this.sources.splice(at, 1);
    };
  }

  /**
   * Finds the handler for `method` on `path` (no query string), or why there is none. A source
   * whose handler matches wins; a source's known-path miss (405, OPTIONS) stands when the router
   * does not know the path at all.
   */
  match(method: string, path: string): RouteMatch {
    if (this.sources.length === 0) return this.matchOwn(method, path);
    let sourceMiss: RouteMatch | undefined;
    for (const { prefix, source } of this.sources) {
      if (!path.startsWith(prefix)) continue;
      const found = source.match(method, path);
      if (found.kind === "handler" || found.kind === "malformed-path") return found;
      if (found.kind !== "unknown-path") sourceMiss ??= found;
    }
    const own = this.matchOwn(method, path);
    return own.kind === "unknown-path" && sourceMiss !== undefined ? sourceMiss : own;
  }

  private matchOwn(method: string, path: string): RouteMatch {
    if (!path.startsWith("/")) return UNKNOWN_PATH;
    const literal = this.literalRoutes.get(path);
    const found = literal?.matches.get(method);
    if (found !== undefined) return found;

    const candidates: { route: Route; params: Readonly<Record<string, string>> }[] = [];
    if (literal !== undefined) candidates.push({ route: literal, params: NO_PARAMS });
    const templated = this.templatedRoutes;
    const group = templated.size === 0 ? undefined : templated.get(segmentCount(path));
    if (group !== undefined) {
      const segments = decodeSegments(path);
      if (segments === null) return { kind: "malformed-path" };
      for (const route of group) {
        const params = bindParams(route, segments);
        if (params !== null) candidates.push({ route, params });
      }
    }
    if (candidates.length === 0) return UNKNOWN_PATH;

    const withMethod = candidates
      .filter((c) => c.route.handlers.has(method))
      .sort((a, b) => compareSpecificity(a.route, b.route));
    const best = withMethod[0];
    if (best !== undefined) {
      const found = best.route.handlers.get(method)!;
      return {
        kind: "handler",
        handler: found,
        params: best.params,
        template: best.route.template,
      };
    }
    const allow = allowHeader(candidates.flatMap((c) => [...c.route.handlers.keys()]));
    return method === "OPTIONS" ? { kind: "options", allow } : { kind: "unsupported-verb", allow };
  }
}

/** CCF's response for a lookup that found no handler (the `path` is echoed as CCF does). */
export function responseForMiss(
  match: Exclude<RouteMatch, { kind: "handler" }>,
  path: string,
): RpcResponse {
  switch (match.kind) {
    case "options":
      return { status: 204, headers: { allow: match.allow } };
    case "unsupported-verb":
      return {
        status: httpStatusOf(HttpErrorCode.UnsupportedHttpVerb),
        headers: { allow: match.allow },
        body: errorBody(
          HttpErrorCode.UnsupportedHttpVerb,
          `Allowed methods for '${path}' are: ${match.allow}.`,
        ),
      };
    case "unknown-path":
      return {
        status: httpStatusOf(HttpErrorCode.ResourceNotFound),
        body: errorBody(HttpErrorCode.ResourceNotFound, `Unknown path: ${path}.`),
      };
    case "malformed-path":
      return {
        status: httpStatusOf(HttpErrorCode.InvalidResourceName),
        body: errorBody(HttpErrorCode.InvalidResourceName, `Malformed path: ${path}.`),
      };
  }
}
