/**
 * The /app frontend: the framework endpoints (/app/commit, /app/tx, /app/api, /app/receipt, in
 * JSON or, asked with `Accept: application/cose`, COSE; ccf-compatibility.md §3.2, §3.5) and the
 * endpoints of built-in apps. App endpoints answer 404
 * FrontendNotOpen until governance opens the service; each runs authentication and its handler
 * in one transaction (rpc-context.ts).
 */
import { formatTxId, isPossibleTxId, parseTxId, type Seqno } from "../../base/ids.js";
import { GOV_MAPS } from "../../gov/tables.js";
import { SINGLETON_KEY } from "../../kv/encoding.js";
import type { AppEndpoint, AppModule } from "../../apps/app.js";
import { HttpError, HttpErrorCode, type JsonBody } from "../../http/errors.js";
import { FORWARD_TO_PRIMARY, type Router, type RpcRequest } from "../../http/router.js";
import { authenticate } from "./auth.js";
import type { NodeContext } from "./node-context.js";
import { registerCommonEndpoints, serviceStatus } from "./node-endpoints.js";
import { forwardsForSession, json, runInTx } from "./rpc-context.js";
import { coseReceiptResponse, prefersCose } from "../../apps/cose-receipts.js";
import {
  coseSignatureIn,
  loadHistoricalState,
  receiptOf,
  requestedTxId,
  requireCommitted,
} from "./historical.js";
import { notAvailable, withHistoricalEntries, type HistoricalFetch } from "./historical-reads.js";

function receiptEndpoint(node: NodeContext, request: RpcRequest, fetch: HistoricalFetch) {
  const text = request.queryParams.get("transaction_id");
  const id = text === null ? null : parseTxId(text);
  if (id === null || !isPossibleTxId(id)) {
    throw new HttpError(
      HttpErrorCode.InvalidQueryParameterValue,
      "Query parameter transaction_id must be of the form <view>.<seqno>.",
    );
  }
  requireCommitted(node, id);
  const outcome = receiptOf(node, id.seqno as Seqno);
  switch (outcome.kind) {
    case "receipt":
      if (prefersCose(request.headers["accept"])) {
        const entry = fetch.entry(outcome.signatureSeqno);
        if (entry === null) return notAvailable(id);
        const signature = coseSignatureIn(entry, outcome.signatureSeqno);
        return coseReceiptResponse(outcome.receipt, signature);
      }
      return json(outcome.receipt as unknown as JsonBody);
    case "not-signed":
      throw new HttpError(
        HttpErrorCode.TransactionPendingOrUnknown,
        `Transaction ${formatTxId(id)} is not covered by a signature yet.`,
      );
    case "unavailable":
      throw new HttpError(
        HttpErrorCode.ResourceNotFound,
        `The receipt of ${formatTxId(id)} is no longer held in memory, and this node does ` +
          "not rebuild receipts from its ledger files.",
      );
  }
}

/**
 * Whether the service is open, decoding the service info only when its stored bytes change: the
 * store replaces a value's array on every write and never mutates one it holds.
 */
export class OpenCheck {
  /** Invariant: `open` is what serviceStatus answered when the value was `bytes`. */
  private bytes: Uint8Array | undefined = undefined;
  private open = false;

  constructor(private readonly node: NodeContext) {}

  isOpen(): boolean {
    const bytes = this.node.store.get(GOV_MAPS.serviceInfo.name, SINGLETON_KEY);
    if (bytes === undefined || bytes !== this.bytes) {
      this.open = serviceStatus(this.node) === "Open";
      this.bytes = bytes;
    }
    return this.open;
  }
}

function registerAppEndpoint(
  router: Router,
  node: NodeContext,
  endpoint: AppEndpoint,
  openCheck: OpenCheck,
): void {
  const run = (request: RpcRequest, fetch: HistoricalFetch | null) => {
    if (!openCheck.isOpen()) {
      throw new HttpError(HttpErrorCode.FrontendNotOpen, "Frontend is not open.");
    }
    if (forwardsForSession(request, node.raft)) return FORWARD_TO_PRIMARY;
    return runInTx(node.pipeline, (tx, setClaimsDigest) => {
      const caller = authenticate(tx, request, endpoint.authPolicies, {
        nowMs: node.clock.realtimeMs(),
      });
      if (fetch === null) return endpoint.handler({ request, caller, tx, setClaimsDigest });
      const id = requestedTxId(request);
      const historical = loadHistoricalState(node, id, fetch);
      if (historical === null) return notAvailable(id);
      return endpoint.handler({ request, caller, tx, setClaimsDigest, historical });
    });
  };
  router.add(endpoint.method, `/app${endpoint.path}`, (request) =>
    endpoint.mode === "historical"
      ? withHistoricalEntries(node, (fetch) => run(request, fetch))
      : run(request, null),
  );
}

/** A minimal OpenAPI 3 document listing every endpoint of `modules`. */
export function appOpenApi(modules: readonly AppModule[]): JsonBody {
  const paths: Record<string, Record<string, JsonBody>> = {};
  for (const module of modules) {
    for (const endpoint of module.endpoints) {
      const path = `/app${endpoint.path}`;
      paths[path] ??= {};
      paths[path]![endpoint.method.toLowerCase()] = {
        summary: endpoint.summary ?? "",
        "x-ccf-authn-policies": [...endpoint.authPolicies],
        "x-ccf-mode": endpoint.mode,
        responses: { "200": { description: "Success" } },
      };
    }
  }
  return { openapi: "3.0.0", info: { title: "Consortia application", version: "0.1.0" }, paths };
}

/**
 * The /app frontend. `extraPaths` adds OpenAPI paths to /app/api (the JS app's endpoints, which
 * replace a built-in operation at the same path and verb, as they do when routed).
 */
export function registerAppEndpoints(
  router: Router,
  node: NodeContext,
  modules: readonly AppModule[],
  extraPaths: () => Record<string, JsonBody> = () => ({}),
): void {
  registerCommonEndpoints(router, node, "/app", () => {
    const doc = appOpenApi(modules) as { paths: Record<string, Record<string, JsonBody>> };
    for (const [path, operations] of Object.entries(extraPaths())) {
      doc.paths[path] = { ...doc.paths[path], ...(operations as Record<string, JsonBody>) };
    }
    return doc as unknown as JsonBody;
  });
  router.add("GET", "/app/receipt", (request) =>
    withHistoricalEntries(node, (fetch) => receiptEndpoint(node, request, fetch)),
  );
  const openCheck = new OpenCheck(node);
  for (const module of modules) {
    for (const endpoint of module.endpoints) registerAppEndpoint(router, node, endpoint, openCheck);
  }
}
