/**
 * The /node frontend (ccf-compatibility.md §3.3) and the common /commit, /tx and /api endpoints of
 * every frontend (§3.2): public, no authentication. Roles, views and statuses are reported from the
 * node's consensus state.
 */
import { toBase64, utf8 } from "../../base/bytes.js";
import {
  formatTxId,
  isPossibleTxId,
  parseCanonicalInt,
  parseTxId,
  type TxId,
} from "../../base/ids.js";
import type { Tx } from "../../kv/tx.js";
import { SINGLETON_KEY } from "../../kv/encoding.js";
import {
  deleteById,
  entriesById,
  getById,
  getSingleton,
  GOV_MAPS,
  type NodeInfo,
  type NodeStatus,
} from "../../gov/tables.js";
import { negotiate } from "../../http/accept.js";
import { nodeToNodeAddressOf } from "../replication/nodes-table.js";
import { HttpError, HttpErrorCode, type JsonBody } from "../../http/errors.js";
import {
  FORWARD_TO_PRIMARY,
  type Router,
  type RpcRequest,
  type RpcResponse,
} from "../../http/router.js";
import { forwardsForSession, json, runInTx } from "./rpc-context.js";
import { CONSORTIA_VERSION } from "../config/version.js";
import { parseAddress } from "../config/config-values.js";
import type { NodeContext } from "./node-context.js";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/exposition.js";

/** What GET /node/metrics answers in, the default first. */
const METRICS_OFFERS = ["application/json", "text/plain"] as const;

function prometheusText(node: NodeContext): RpcResponse {
  const headers = { "content-type": PROMETHEUS_CONTENT_TYPE };
  return { status: 200, headers, body: node.prometheusMetrics() };
}

/** The values of GET /node/network/nodes?status= (CCF's NodeStatus). */
const NODE_STATUSES: readonly string[] = ["Pending", "Trusted", "Retired"] satisfies NodeStatus[];

export type TxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

/** The service status as last committed locally ("Opening" before genesis). */
export function serviceStatus(node: NodeContext): string {
  const bytes = node.store.get(GOV_MAPS.serviceInfo.name, SINGLETON_KEY);
  return bytes === undefined ? "Opening" : GOV_MAPS.serviceInfo.codec.decode(bytes).status;
}

/** CCF's status of a txId for one node (ccf-compatibility.md §3.2), from its consensus log. */
export function txStatus(node: NodeContext, id: TxId): TxStatus {
  return node.raft.status(id.view, id.seqno);
}

function parseTxIdParam(request: RpcRequest): TxId {
  const text = request.queryParams.get("transaction_id");
  const id = text === null ? null : parseTxId(text);
  if (id === null || !isPossibleTxId(id)) {
    throw new HttpError(
      HttpErrorCode.InvalidQueryParameterValue,
      "Query parameter transaction_id must be a transaction id <view>.<seqno>, both at " +
        `least 1, got ${text ?? "nothing"}.`,
    );
  }
  return id;
}

function badQueryValue(name: string, text: string, allowed: string): never {
  throw new HttpError(
    HttpErrorCode.InvalidQueryParameterValue,
    `Invalid value '${text}' for query parameter '${name}': expected ${allowed}.`,
  );
}

/** An optional boolean query parameter: "true" or "false" only. */
function booleanParam(request: RpcRequest, name: string): boolean {
  const text = request.queryParams.get(name);
  if (text === null) return false;
  if (text !== "true" && text !== "false") badQueryValue(name, text, "one of true, false");
  return text === "true";
}

/**
 * GET /commit: the local commit txId and, with view_history=true, CCF's view history: for each
 * view from view_history_since (default 1) to the commit's view, the txId of the view's first
 * seqno (a view without entries shares the next view's first seqno, as in CCF).
 */
function commitView(node: NodeContext, request: RpcRequest): JsonBody {
  const commit = node.pipeline.commitTxId;
  const withHistory = booleanParam(request, "view_history");
  const sinceText = request.queryParams.get("view_history_since");
  if (!withHistory) return { transaction_id: formatTxId(commit) };
  const since = sinceText === null ? 1 : parseCanonicalInt(sinceText);
  if (since === null || since < 1 || since > Math.max(1, commit.view)) {
    badQueryValue("view_history_since", sinceText ?? "", `a view in [1, ${commit.view}]`);
  }
  const firsts = commit.seqno === 0 ? [] : node.raft.log.viewHistory(commit);
  const history: string[] = [];
  for (let v = since; v <= firsts.length; v++) history.push(`${v}.${firsts[v - 1]}`);
  return { transaction_id: formatTxId(commit), view_history: history };
}

/** /commit, /tx and /api under `prefix`. */
export function registerCommonEndpoints(
  router: Router,
  node: NodeContext,
  prefix: "/node" | "/app" | "/gov",
  openApi: () => JsonBody,
): void {
  // The node frontend's are Never in CCF; the app's and governance's are Sometimes.
  const sticky = (request: RpcRequest) =>
    prefix !== "/node" && forwardsForSession(request, node.raft);
  router.add("GET", `${prefix}/commit`, (request) =>
    sticky(request) ? FORWARD_TO_PRIMARY : json(commitView(node, request)),
  );
  router.add("GET", `${prefix}/tx`, (request) => {
    if (sticky(request)) return FORWARD_TO_PRIMARY;
    const id = parseTxIdParam(request);
    return json({ transaction_id: formatTxId(id), status: txStatus(node, id) });
  });
  router.add("GET", `${prefix}/api`, () => json(openApi()));
}

function nodeInfoView(node: NodeContext, id: string, info: NodeInfo): JsonBody {
  return {
    node_id: id,
    status: info.status,
    primary: id === node.raft.leader,
    rpc_interfaces: info.rpc_interfaces as JsonBody,
    node_data: (info.node_data ?? null) as JsonBody,
    last_written: 0,
  };
}

function listNodes(node: NodeContext, tx: Tx): JsonBody[] {
  return entriesById(tx, GOV_MAPS.nodeInfo).map(([id, info]) => nodeInfoView(node, id, info));
}

function findNode(node: NodeContext, tx: Tx, id: string): RpcResponse {
  const info = getById(tx, GOV_MAPS.nodeInfo, id);
  if (info === undefined) {
    throw new HttpError(HttpErrorCode.ResourceNotFound, `Node ${id} not found.`);
  }
  return json(nodeInfoView(node, id, info));
}

export function quoteView(node: NodeContext): JsonBody {
  return {
    node_id: node.nodeId,
    raw: toBase64(utf8(JSON.stringify(node.quote))),
    endorsements: "",
    format: "Insecure_Virtual",
    measurement: node.quote.measurement,
  };
}

function isPartOfNetwork(node: NodeContext): boolean {
  return node.startupState() === "PartOfNetwork";
}

/** The optional ?status= of GET /node/network/nodes: one of CCF's node statuses, else 400. */
export function nodeStatusParam(request: RpcRequest): string | null {
  const status = request.queryParams.get("status");
  if (status !== null && !NODE_STATUSES.includes(status)) {
    badQueryValue("status", status, `one of ${NODE_STATUSES.join(", ")}`);
  }
  return status;
}

/**
 * The optional ?host= and ?port= of GET /node/network/nodes, as CCF has them: a node matches
 * when one of its RPC interfaces publishes that host and that port (`published_address` read by
 * the config's parseAddress). An IPv6 host matches with or without its brackets.
 */
export function publishedAddressFilter(request: RpcRequest): (node: JsonBody) => boolean {
  const host = request.queryParams.get("host");
  const port = request.queryParams.get("port");
  if (host === null && port === null) return () => true;
  const bare = (h: string) => h.replace(/^\[(.*)\]$/, "$1");
  return (node) => {
    const interfaces = (node as { rpc_interfaces?: Record<string, { published_address?: string }> })
      .rpc_interfaces;
    return Object.values(interfaces ?? {}).some(({ published_address: address }) => {
      const published = address === undefined ? undefined : parseAddress(address);
      if (published?.kind !== "ok") return false;
      const { host: h, port: p } = published.value;
      return (host === null || bare(host) === h) && (port === null || port === String(p));
    });
  };
}

function registerNetworkEndpoints(router: Router, node: NodeContext): void {
  router.add("GET", "/node/network", () =>
    runInTx(node.pipeline, (tx) => {
      const info = getSingleton(tx, GOV_MAPS.serviceInfo);
      return json({
        service_status: info?.status ?? "Opening",
        service_certificate: node.serviceCertPem,
        current_view: node.view,
        primary_id: node.raft.leader,
        recovery_count: info?.recovery_count ?? 0,
        service_data: (info?.service_data ?? null) as JsonBody,
        current_service_create_txid: info?.current_service_create_txid ?? "2.1",
      });
    }),
  );
  router.add("GET", "/node/network/nodes", (request) => {
    const status = nodeStatusParam(request);
    const matches = publishedAddressFilter(request);
    return runInTx(node.pipeline, (tx) => {
      const nodes = listNodes(node, tx).filter(
        (n) => (status === null || (n as { status: string }).status === status) && matches(n),
      );
      return json({ nodes });
    });
  });
  router.add("GET", "/node/network/nodes/self", () =>
    runInTx(node.pipeline, (tx) => findNode(node, tx, node.nodeId)),
  );
  router.add("GET", "/node/network/nodes/primary", () => {
    const primary = node.raft.leader;
    if (primary === null) throw new HttpError(HttpErrorCode.PrimaryNotFound, "No primary known.");
    return runInTx(node.pipeline, (tx) => findNode(node, tx, primary));
  });
  router.add("GET", "/node/network/nodes/{node_id}", (request) =>
    runInTx(node.pipeline, (tx) => findNode(node, tx, request.params.node_id ?? "")),
  );
  // Retired nodes whose retirement committed (retired_committed): safe to delete.
  router.add("GET", "/node/network/removable_nodes", () =>
    runInTx(node.pipeline, (tx) => {
      const nodes = entriesById(tx, GOV_MAPS.nodeInfo)
        .filter(([, info]) => info.status === "Retired" && info.retired_committed === true)
        .map(([id, info]) => nodeInfoView(node, id, info));
      return json({ nodes });
    }),
  );
  router.add("DELETE", "/node/network/nodes/{node_id}", (request) =>
    runInTx(node.pipeline, (tx) => {
      const id = request.params.node_id ?? "";
      const info = getById(tx, GOV_MAPS.nodeInfo, id);
      if (info === undefined) {
        throw new HttpError(HttpErrorCode.ResourceNotFound, `Node ${id} not found.`);
      }
      if (info.status !== "Retired" || info.retired_committed !== true) {
        throw new HttpError(
          HttpErrorCode.NodeNotRetiredCommitted,
          `Node ${id} is ${info.status}, not Retired with its retirement committed.`,
        );
      }
      deleteById(tx, GOV_MAPS.nodeInfo, id);
      deleteById(tx, GOV_MAPS.nodeEndorsedCerts, id);
      return json(true);
    }),
  );
}

function registerStatusEndpoints(router: Router, node: NodeContext): void {
  router.add("GET", "/node/state", () =>
    json({
      node_id: node.nodeId,
      state: node.startupState(),
      last_signed_seqno: node.pipeline.commitTxId.seqno,
      startup_seqno: node.startupSeqno,
      stop_notice: false,
    }),
  );
  router.add("GET", "/node/version", () =>
    json({
      ccf_version: `consortia-${CONSORTIA_VERSION}`,
      quickjs_version: "2025-09-13",
      unsafe: false,
    }),
  );
  // 200 on the primary (or a backup), 404 elsewhere: load balancers probe these.
  const whenRole = (primary: boolean) => (): RpcResponse => {
    if (node.raft.isLeader === primary) return { status: 200 };
    const what = primary ? "primary" : "backup";
    throw new HttpError(HttpErrorCode.ResourceNotFound, `Node is not ${what}.`);
  };
  router.add("GET", "/node/primary", whenRole(true));
  // HEAD on a backup redirects to the primary (ccf-compatibility.md §3.3), so a client can find it.
  router.add("HEAD", "/node/primary", () => {
    const primary = node.raft.leader;
    if (node.raft.isLeader) return { status: 200 };
    const address = primary === null ? null : node.rpcAddressOf(primary);
    if (address === null) {
      throw new HttpError(HttpErrorCode.PrimaryNotFound, "No primary is known to this node.");
    }
    return { status: 308, headers: { location: `https://${address}/node/primary` } };
  });
  router.add("GET", "/node/backup", whenRole(false));
  router.add("HEAD", "/node/backup", whenRole(false));
  for (const frontend of ["app", "gov"]) {
    router.add("GET", `/node/ready/${frontend}`, () => {
      if (!isPartOfNetwork(node)) {
        throw new HttpError(HttpErrorCode.NodeCannotHandleRequest, "Node is not ready.");
      }
      return { status: 204 };
    });
  }
  router.add("GET", "/node/quotes/self", () => json(quoteView(node)));
  router.add("GET", "/node/attestations/self", () => json(quoteView(node)));
  router.add("GET", "/node/quotes", () => json({ quotes: [quoteView(node)] }));
  // Prometheus text when asked for (Accept: text/plain, as Prometheus sends), JSON otherwise.
  router.add("GET", "/node/metrics", (request) =>
    negotiate(request.headers["accept"], METRICS_OFFERS) === "text/plain"
      ? prometheusText(node)
      : json(node.metrics() as JsonBody),
  );
  router.add("GET", "/node/metrics/prometheus", () => prometheusText(node));
  router.add("GET", "/node/self_signed_certificate", () =>
    json({ self_signed_certificate: node.nodeCertPem }),
  );
}

/**
 * CCF's retirement phase of this node, from its consensus log: Ordered (a configuration
 * without it is in the log), Signed (a signature follows that entry), Completed (that
 * configuration committed), RetiredCommitted (the primary recorded retired_committed). Null
 * while the node is in the latest configuration.
 */
function retirementPhase(node: NodeContext): string | null {
  const log = node.raft.log;
  const configs = log.configurations();
  const everIn = configs.some((c) => c.nodes.includes(node.nodeId));
  const latest = configs.at(-1);
  if (!everIn || latest === undefined || latest.nodes.includes(node.nodeId)) return null;
  // The first configuration after the last one that still held this node removed it.
  let removal = configs.length - 1;
  while (removal > 0 && !configs[removal - 1]!.nodes.includes(node.nodeId)) removal--;
  const removedAt = configs[removal]!.seqno;
  const bytes = node.store.get(GOV_MAPS.nodeInfo.name, utf8(node.nodeId));
  const info = bytes === undefined ? undefined : GOV_MAPS.nodeInfo.codec.decode(bytes);
  if (info?.retired_committed === true) return "RetiredCommitted";
  if (node.raft.commitSeqno >= removedAt) return "Completed";
  if (log.lastCommittable > removedAt) return "Signed";
  return "Ordered";
}

/** A node's published node-to-node address from the nodes table ("" if unknown). */
function n2nAddressOf(node: NodeContext, id: string): string {
  return nodeToNodeAddressOf(node.store, id) ?? "";
}

function registerConfigEndpoints(router: Router, node: NodeContext): void {
  router.add("GET", "/node/service/configuration", () =>
    runInTx(node.pipeline, (tx) => {
      const config = getSingleton(tx, GOV_MAPS.serviceConfig);
      return json({ ...(config as object | undefined), consensus: "CFT" } as JsonBody);
    }),
  );
  router.add("GET", "/node/config", () => {
    const latest = node.raft.details(node.clock.monotonicMs()).configurations.at(-1);
    const out: Record<string, JsonBody> = {};
    for (const id of latest?.nodes ?? []) out[id] = { address: n2nAddressOf(node, id) };
    return json(out);
  });
  router.add("GET", "/node/consensus", () => {
    const d = node.raft.details(node.clock.monotonicMs());
    const n2nAddress = (id: string): string => n2nAddressOf(node, id);
    const acks: Record<string, JsonBody> = {};
    for (const [id, a] of Object.entries(d.acks)) {
      acks[id] = { seqno: a.match, last_received_ms: a.lastAckAgoMs };
    }
    return json({
      details: {
        configs: d.configurations.map((c) => ({
          idx: c.seqno,
          rid: c.seqno,
          nodes: Object.fromEntries(c.nodes.map((id) => [id, { address: n2nAddress(id) }])),
        })),
        acks,
        membership_state: d.membership,
        ...(retirementPhase(node) !== null ? { retirement_phase: retirementPhase(node) } : {}),
        leadership_state: d.role,
        primary_id: d.leader,
        current_view: d.view,
        commit_seqno: d.commitSeqno,
        last_seqno: d.lastSeqno,
        ticking: true,
        reconfiguration_type: "OneTransaction",
      },
    });
  });
}

export function registerNodeEndpoints(
  router: Router,
  node: NodeContext,
  openApi: () => JsonBody,
): void {
  registerCommonEndpoints(router, node, "/node", openApi);
  registerStatusEndpoints(router, node);
  registerNetworkEndpoints(router, node);
  registerConfigEndpoints(router, node);
}
