/**
 * Every frontend of a node, registered in one place: /node (node-endpoints, the join endpoint,
 * snapshot downloads), /gov (governance, with the constitution run in QuickJS against the node
 * through NodeGovHost), and /app (the built-in logging app).
 */
import { loggingApp } from "../apps/logging.js";
import { QuickJsConstitution } from "../js/constitution.js";
import { snapshotDirsOf } from "./config/directories.js";
import { CONSORTIA_VERSION } from "./config/version.js";
import { registerAppEndpoints } from "./frontends/app-endpoints.js";
import { registerGovEndpoints } from "./frontends/gov-endpoints.js";
import { NodeGovHost, withGovHost } from "./frontends/gov-host.js";
import { registerNodeEndpoints } from "./frontends/node-endpoints.js";
import { registerJoinEndpoint } from "./join/join-endpoint.js";
import type { NodeHost, NodeHostDeps } from "./node-host.js";
import { registerSnapshotEndpoints } from "./snapshots/snapshot-endpoints.js";

export async function registerFrontends(node: NodeHost, deps: NodeHostDeps): Promise<void> {
  registerJoin(node, deps);
  registerSnapshotEndpoints(node.router, {
    snapshotDirs: () => snapshotDirsOf(node.config),
    log: (line) => deps.log(`[snapshots] ${line}`),
  });
  registerNodeEndpoints(node.router, node, () => nodeOpenApi(node));
  registerAppEndpoints(node.router, node, [loggingApp()]);
  const govHost = new NodeGovHost(node, deps.log);
  const constitution = await QuickJsConstitution.fromKv({
    host: govHost,
    log: (level, message) => deps.log(`[constitution ${level}] ${message}`),
  });
  registerGovEndpoints(node.router, node, withGovHost(constitution, govHost));
}

function registerJoin(node: NodeHost, deps: NodeHostDeps): void {
  registerJoinEndpoint(node.router, {
    pipeline: node.pipeline,
    role: () => {
      const leader = node.raft.leader;
      return {
        isPrimary: node.raft.isLeader,
        primaryRpcAddress: leader === null ? null : node.rpcAddressOf(leader),
      };
    },
    startupSeqno: node.startupSeqno,
    serviceIdentity: () => ({
      certPem: node.serviceCertPem,
      privateKey: node.identity.servicePrivateKey,
      coseSignatures: node.identity.signing.service.coseSignatures,
    }),
    ledgerSecrets: () => node.history.secrets.list(),
    now: deps.now,
    log: (line) => deps.log(`[join] ${line}`),
  });
}

/** The OpenAPI document of the node frontend: its routes, as registered when asked. */
function nodeOpenApi(node: NodeHost) {
  return {
    openapi: "3.0.0",
    info: { title: "Consortia node frontend", version: CONSORTIA_VERSION },
    paths: Object.fromEntries(
      node.router
        .routes()
        .filter((r) => r.template.startsWith("/node"))
        .map((r) => [r.template, { [r.method.toLowerCase()]: { responses: {} } }]),
    ),
  };
}
