/**
 * Every frontend of a node, registered in one place: /node (node-endpoints, the join endpoint,
 * snapshot downloads), /gov (governance, with the constitution run in QuickJS against the node
 * through NodeGovHost), and /app (the built-in logging app, the JS app deployed by governance,
 * and the apps served by app services (ADR 0005); the last two follow the KV and win over
 * built-in routes).
 */
import { loggingApp } from "../apps/logging.js";
import { ecPrivateKeyPem } from "../crypto/identity.js";
import { AppServiceRoutes } from "./app-service/app-service-routes.js";
import { BallotPool } from "../js/ballot-pool.js";
import { QuickJsConstitution } from "../js/constitution.js";
import { snapshotDirsOf } from "./config/directories.js";
import { CONSORTIA_VERSION } from "./config/version.js";
import { OpenCheck, registerAppEndpoints } from "./frontends/app-endpoints.js";
import { JsAppRoutes, jsOpenApiPaths } from "./frontends/js-app-endpoints.js";
import type { AppGlobalsInstaller } from "../js/app-runtime.js";
import { getQuickJS } from "../js/quickjs.js";
import { installAppCrypto } from "../js/app-crypto-globals.js";
import { registerGovEndpoints } from "./frontends/gov-endpoints.js";
import { NodeGovHost, withGovHost } from "./frontends/gov-host.js";
import { registerNodeEndpoints } from "./frontends/node-endpoints.js";
import { registerJoinEndpoint } from "./join/join-endpoint.js";
import type { NodeHost, NodeHostDeps } from "./node-host.js";
import { registerSnapshotEndpoints } from "./snapshots/snapshot-endpoints.js";

/** Extensions of JS apps' `ccf` global, installed in order after the base one (app-runtime.ts). */
const APP_GLOBALS_INSTALLERS: readonly AppGlobalsInstaller[] = [(ctx) => installAppCrypto(ctx)];

function openCheck(node: NodeHost): () => boolean {
  const check = new OpenCheck(node);
  return () => check.isOpen();
}

export async function registerFrontends(node: NodeHost, deps: NodeHostDeps): Promise<void> {
  registerJoin(node, deps);
  registerSnapshotEndpoints(node.router, {
    snapshotDirs: () => snapshotDirsOf(node.config),
    log: (line) => deps.log(`[snapshots] ${line}`),
  });
  registerNodeEndpoints(node.router, node, () => nodeOpenApi(node));
  const jsApp = new JsAppRoutes({
    node,
    quickjs: await getQuickJS(),
    isOpen: openCheck(node),
    installers: APP_GLOBALS_INSTALLERS,
    log: (line) => deps.log(`[js app] ${line}`),
  });
  node.router.addSource("/app/", jsApp);
  const appServices = new AppServiceRoutes({
    node,
    isOpen: openCheck(node),
    identity: () => ({
      certPem: node.nodeCertPem,
      keyPem: ecPrivateKeyPem(node.identity.signing.privateKey),
      serviceCertPem: node.serviceCertPem,
    }),
    log: (line) => deps.log(`[app service] ${line}`),
  });
  node.router.addSource("/app/", appServices);
  node.router.add("GET", "/node/app-services", () => ({
    status: 200,
    body: { appServices: appServices.states() },
  }));
  registerAppEndpoints(node.router, node, [loggingApp()], () =>
    jsOpenApiPaths([...jsApp.endpoints(), ...appServices.endpoints()]),
  );
  const govHost = new NodeGovHost(node, deps.log, () => node.identity.servicePrivateKey);
  const constitution = await QuickJsConstitution.fromKv({
    host: govHost,
    appGlobalsInstallers: APP_GLOBALS_INSTALLERS,
    log: (level, message) => deps.log(`[constitution ${level}] ${message}`),
  });
  // Members' ballots run in a worker, never on this thread (js/ballot-pool.ts).
  // Started now (at a low priority), so that a node that becomes primary has its workers ready.
  const ballots = new BallotPool({ log: (line) => deps.log(`[ballots] ${line}`) });
  ballots.warm();
  node.onStop(() => ballots.close());
  registerGovEndpoints(node.router, node, withGovHost(constitution, govHost), ballots);
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
