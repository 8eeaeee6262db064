/**
 * What the console's proxy passes on to the network: the closed list of node, gov and app
 * paths its pages call (ccf-compatibility.md §3.2–§3.5), each with the one method it is used
 * with. Anything else is refused, so the console is never an open proxy to the network (or to
 * anything else: the host is never taken from the request).
 *
 * Pure: matching only. Ids in paths are checked for their shape (64 hex digits for members,
 * proposals and nodes; `view.seqno` for transactions) before anything is sent.
 */

const ID = "[a-f0-9]{64}";
const TX_ID = "[0-9]{1,20}\\.[0-9]{1,20}";
/** A JS module's name as /gov/service/javascript-modules/{name} takes it (URL-encoded). */
const MODULE_NAME = "[A-Za-z0-9._~%-]{1,256}";

export type ProxyMethod = "GET" | "POST";

export interface ProxyRoute {
  readonly method: ProxyMethod;
  readonly pattern: RegExp;
  /** POSTs carry a signed governance request: the body must be application/cose. */
  readonly cose: boolean;
}

const get = (source: string): ProxyRoute => ({
  method: "GET",
  pattern: new RegExp(`^${source}$`),
  cose: false,
});
const postCose = (source: string): ProxyRoute => ({
  method: "POST",
  pattern: new RegExp(`^${source}$`),
  cose: true,
});

/** Every path the pages read or write, as sent to the network. */
export const PROXY_ROUTES: readonly ProxyRoute[] = [
  get("/(node|gov|app)/(commit|tx|api)"),
  get("/app/receipt"),
  get(
    "/node/(network|network/nodes|network/nodes/(self|primary)|state|version|consensus|config" +
      "|ready/(app|gov)|metrics|quotes|quotes/self|service/configuration|js_metrics)",
  ),
  get(`/node/network/nodes/${ID}`),
  get(
    "/gov/service/(info|constitution|members|users|nodes|join-policy|javascript-app" +
      "|javascript-modules|transactions/commit|app-services)",
  ),
  get(`/gov/service/(members|users|nodes)/${ID}`),
  get(`/gov/service/javascript-modules/${MODULE_NAME}`),
  get(`/gov/service/transactions/${TX_ID}`),
  get("/gov/members/proposals"),
  get(`/gov/members/proposals/${ID}(/actions|/ballots/${ID})?`),
  get(`/gov/members/state-digests/${ID}`),
  postCose("/gov/members/proposals:create"),
  postCose(`/gov/members/proposals/${ID}:withdraw`),
  postCose(`/gov/members/proposals/${ID}/ballots/${ID}:submit`),
  // The enclave registry (docs/registry.md): enclave ids are upper-case hex.
  get(
    "/app/registry/chaincodes/[A-Za-z0-9._-]{1,128}" +
      "(/enclaves(/[A-Fa-f0-9]{64})?|/provisioned|/encryption-key|/endpoints)?",
  ),
];

/**
 * Paths the console reads on one node in particular (its own state, commit and role, for the
 * network page): the network answers them for whichever node is asked, so they go to that
 * node's published address.
 */
export const PER_NODE_ROUTES: readonly ProxyRoute[] = [
  get("/node/(state|commit|consensus|version|ready/(app|gov)|network/nodes/self|metrics)"),
];

export type RouteMatch =
  | { readonly kind: "route"; readonly route: ProxyRoute }
  | { readonly kind: "unknown-path" }
  | { readonly kind: "other-method"; readonly allowed: readonly ProxyMethod[] };

/** Which of `routes` serves `method path`; `path` has no query string. */
export function matchRoute(
  routes: readonly ProxyRoute[],
  method: string,
  path: string,
): RouteMatch {
  const matching = routes.filter((r) => r.pattern.test(path));
  const route = matching.find((r) => r.method === method);
  if (route !== undefined) return { kind: "route", route };
  if (matching.length === 0) return { kind: "unknown-path" };
  return { kind: "other-method", allowed: [...new Set(matching.map((r) => r.method))] };
}

export function isNodeId(text: string): boolean {
  return new RegExp(`^${ID}$`).test(text);
}
