/**
 * The endpoints of apps served by app services (ADR 0005, issue #14), under /app: one connection
 * per row of `public:ccf.gov.app_services` (connection.ts), and the routes of each server's
 * bundle once it proved it serves the package. Rows are followed as committed to this node's
 * store, on every node, checked every ROWS_POLL_MS: a new row connects, a changed row reconnects,
 * a removed row closes the connection and its routes go. The routes of a bundle stay while its
 * server is down, so its endpoints answer 503 AppServiceUnavailable rather than 404.
 *
 * A request runs as an in-node JS endpoint's does (js-app-endpoints.ts): the service must be
 * open, `forwarding_required: always` forwards from a backup, the caller is authenticated by the
 * endpoint's policies (js-app-auth.ts) and the server sees it as in-node handlers do. The node
 * sends the call, answers the server's needs from its store, and commits the result after
 * validating it (remote-transaction.ts), retrying with fresh values at most OCC_ATTEMPTS_MAX
 * times (then 503 TransactionCommitAttemptsExceedLimit, as for conflicts). The whole request
 * must finish within the row's timeout_ms (504 AppServiceTimeout). Historical endpoints are not
 * served this way (501 NotImplemented). GET /node/app-services shows this node's connections
 * (state connecting, ready, down or mismatch, with the reason).
 */
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import {
  FORWARD_TO_PRIMARY,
  Router,
  type RouteMatch,
  type RouteSource,
  type RpcOutcome,
  type RpcRequest,
} from "../../http/router.js";
import type { JsAppBundle } from "../../js/app-bundle.js";
import { parseRuntimeOptions } from "../../js/app-runtime.js";
import { SINGLETON_KEY } from "../../kv/encoding.js";
import { SERVICE_TABLES } from "../../kv/service-tables.js";
import { appServiceRows, type AppServiceRow } from "../../gov/app-services.js";
import type { CallMessage, Values } from "../../appservice/messages.js";
import { authenticateJs } from "../frontends/js-app-auth.js";
import {
  APP_ACCESS,
  guestFailure,
  guestRequest,
  READ_ONLY,
  type JsEndpoint,
} from "../frontends/js-app-endpoints.js";
import type { NodeContext } from "../frontends/node-context.js";
import { forwardsBeforeRunning } from "../frontends/rpc-context.js";
import { AppServiceConnection, type NodeTlsIdentity } from "./connection.js";
import { commitResult, valuesFor } from "./remote-transaction.js";

/** How often the node looks for changes to the app services table. */
export const ROWS_POLL_MS = 100;
/** How many times a result may be found stale before the request gives up. */
export const OCC_ATTEMPTS_MAX = 10;

export interface AppServiceDeps {
  readonly node: NodeContext;
  readonly isOpen: () => boolean;
  readonly identity: () => NodeTlsIdentity;
  readonly log: (line: string) => void;
}

interface Served {
  readonly connection: AppServiceConnection;
  /** The endpoints of the last verified bundle; empty until the first one. */
  endpoints: JsEndpoint[];
}

const PARAM_SEGMENT = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** Whether the router can take `template` (it asserts on malformed ones). */
function isRoutable(template: string): boolean {
  const names = new Set<string>();
  for (const segment of template.slice(1).split("/")) {
    if (PARAM_SEGMENT.test(segment)) {
      if (names.has(segment)) return false;
      names.add(segment);
    } else if (/[{}]/.test(segment)) {
      return false;
    }
  }
  return true;
}

function endpointsOf(bundle: JsAppBundle): JsEndpoint[] {
  const out: JsEndpoint[] = [];
  for (const [path, operations] of Object.entries(bundle.metadata.endpoints)) {
    for (const [verb, props] of Object.entries(operations)) {
      out.push({ method: verb.toUpperCase(), path, props });
    }
  }
  return out;
}

export class AppServiceRoutes implements RouteSource {
  private version = "";
  private readonly served = new Map<string, Served>();
  private router = new Router();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly deps: AppServiceDeps) {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), ROWS_POLL_MS);
    this.timer.unref();
  }

  match(method: string, path: string): RouteMatch {
    this.refresh();
    return this.router.match(method, path);
  }

  /** The endpoints served now (for /app/api). */
  endpoints(): JsEndpoint[] {
    return [...this.served.values()].flatMap((s) => s.endpoints);
  }

  /** This node's view of each app service, for GET /node/app-services. */
  states(): { packageId: string; address: string; state: string; reason: string | null }[] {
    return [...this.served.values()].map(({ connection }) => {
      const status = connection.status;
      return {
        packageId: connection.row.packageId,
        address: connection.row.address,
        state: status.kind,
        reason: "reason" in status ? status.reason : null,
      };
    });
  }

  close(): void {
    clearInterval(this.timer);
    for (const served of this.served.values()) served.connection.close();
    this.served.clear();
  }

  private refresh(): void {
    const store = this.deps.node.store;
    const version = `${store.rollbackCount}/${store.lastWriteSeqno(SERVICE_TABLES.appServices)}`;
    if (version === this.version) return;
    this.version = version;
    const tx = store.begin();
    const rows = appServiceRows(tx.ro(SERVICE_TABLES.appServices));
    tx.close();
    const wanted = new Map(rows.map((row) => [row.packageId, row]));
    // A changed row (address, ca_cert, timeout) reconnects; the package's routes stay.
    const known = new Map<string, JsEndpoint[]>();
    for (const [packageId, served] of this.served) {
      const row = wanted.get(packageId);
      if (row !== undefined && sameRow(row, served.connection.row)) continue;
      served.connection.close();
      this.served.delete(packageId);
      if (row !== undefined) known.set(packageId, served.endpoints);
    }
    for (const row of rows) {
      if (!this.served.has(row.packageId)) this.connect(row, known.get(row.packageId) ?? []);
    }
    this.rebuild();
  }

  private connect(row: AppServiceRow, endpoints: JsEndpoint[]): void {
    const served: Served = {
      endpoints,
      connection: new AppServiceConnection(row, {
        identity: this.deps.identity,
        log: this.deps.log,
        onBundle: (bundle) => {
          if (this.served.get(row.packageId) !== served) return;
          served.endpoints = endpointsOf(bundle);
          this.rebuild();
        },
      }),
    };
    this.served.set(row.packageId, served);
  }

  private rebuild(): void {
    const router = new Router();
    const taken = new Set<string>();
    for (const served of this.served.values()) {
      for (const endpoint of served.endpoints) {
        const route = `/app${endpoint.path}`;
        const id = `${endpoint.method} ${route}`;
        if (taken.has(id) || !isRoutable(route)) {
          this.deps.log(`app service ${served.connection.row.packageId}: skipping ${id}`);
          continue;
        }
        taken.add(id);
        router.add(endpoint.method, route, (request) =>
          this.handle(served.connection, endpoint, route, request),
        );
      }
    }
    this.router = router;
  }

  private async handle(
    connection: AppServiceConnection,
    endpoint: JsEndpoint,
    route: string,
    request: RpcRequest,
  ): Promise<RpcOutcome> {
    const { node } = this.deps;
    if (!this.deps.isOpen()) {
      throw new HttpError(HttpErrorCode.FrontendNotOpen, "Frontend is not open.");
    }
    const props = endpoint.props;
    if (forwardsBeforeRunning(props.forwarding_required, request, node.raft)) {
      return FORWARD_TO_PRIMARY;
    }
    if (props.mode === "historical") {
      throw new HttpError(
        HttpErrorCode.NotImplemented,
        "Historical endpoints are not served by app services.",
      );
    }
    const tx = node.store.begin();
    const who = authenticateJs(tx, request, props.authn_policies, node.clock.realtimeMs());
    tx.close();
    const guest = guestRequest(request, route, who, undefined);
    const call: Omit<CallMessage, "id" | "values" | "last_committed"> = {
      t: "call",
      module: "/" + props.js_module,
      handler: props.js_function,
      mode: props.mode,
      interpreter_reuse: props.interpreter_reuse?.key ?? null,
      request: {
        method: guest.method,
        url: guest.url,
        path: guest.path,
        route: guest.route,
        query: guest.query,
        hostname: guest.hostname,
        headers: guest.headers,
        params: guest.params,
        body: guest.body,
      },
      caller: guest.caller === undefined ? null : JSON.stringify(guest.caller),
      cose_content: guest.coseContent ?? null,
    };
    const access = props.mode === "readwrite" ? APP_ACCESS : READ_ONLY;
    const context = { request, policies: props.authn_policies, access };
    return this.run(connection, call, context);
  }

  /** Calls until a result validates, the attempts run out or the deadline passes. */
  private async run(
    connection: AppServiceConnection,
    call: Omit<CallMessage, "id" | "values" | "last_committed">,
    context: Parameters<typeof commitResult>[2],
  ): Promise<RpcOutcome> {
    const { node } = this.deps;
    const deadlineMs = node.clock.monotonicMs() + connection.row.timeoutMs;
    let values: Values = {
      epoch: node.store.rollbackCount,
      keys: [],
      maps: [],
      tx_status: [],
      views: [],
    };
    for (let attempt = 1; attempt <= OCC_ATTEMPTS_MAX; attempt++) {
      const committed = node.pipeline.commitTxId;
      const answer = await connection.call(
        { ...call, values, last_committed: [committed.view, committed.seqno] },
        Math.max(1, deadlineMs - node.clock.monotonicMs()),
        (need) => valuesFor(node, need),
      );
      if (answer.t === "failed") {
        const reason =
          answer.reason === "timeout" || answer.reason === "out-of-memory"
            ? answer.reason
            : "exception";
        const options = parseRuntimeOptions(
          node.store.get(SERVICE_TABLES.jsRuntimeOptions, SINGLETON_KEY),
        );
        throw guestFailure(
          { kind: "failure", reason, message: answer.message },
          options,
          context.request,
          this.deps.log,
        );
      }
      const outcome = commitResult(node, answer, context);
      if (outcome.kind === "answer") return outcome.outcome;
      values = outcome.fresh;
    }
    throw new HttpError(
      HttpErrorCode.TransactionCommitAttemptsExceedLimit,
      `The app service's results were stale ${OCC_ATTEMPTS_MAX} times.`,
    );
  }
}

function sameRow(a: AppServiceRow, b: AppServiceRow): boolean {
  return a.address === b.address && a.caCert === b.caCert && a.timeoutMs === b.timeoutMs;
}
