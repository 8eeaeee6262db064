/**
 * Assembles a running node: NodeHost.start (identities, genesis), join or recover, then every
 * frontend's
 * endpoints (/node, /gov, /app with the built-in logging app), then serve().
 */
import { loggingApp } from "../apps/logging.js";
import type { NodeConfig } from "./config/config.js";
import { registerAppEndpoints } from "./frontends/app-endpoints.js";
import { NodeHost, type NodeHostDeps } from "./node-host.js";
import { registerNodeEndpoints } from "./frontends/node-endpoints.js";
import { registerGovEndpoints } from "./frontends/gov-endpoints.js";
import { NodeGovHost, withGovHost } from "./frontends/gov-host.js";
import { QuickJsConstitution } from "../js/constitution.js";

export async function startNode(config: NodeConfig, deps: NodeHostDeps): Promise<NodeHost> {
  const node =
    config.command.type === "Join"
      ? await NodeHost.join(config, deps)
      : config.command.type === "Recover"
        ? await NodeHost.recover(config, deps)
        : await NodeHost.start(config, deps);
  const apps = [loggingApp()];
  registerNodeEndpoints(node.router, node, () => ({
    openapi: "3.0.0",
    info: { title: "Consortia node frontend", version: "0.1.0" },
    paths: Object.fromEntries(
      node.router
        .routes()
        .filter((r) => r.template.startsWith("/node"))
        .map((r) => [r.template, { [r.method.toLowerCase()]: { responses: {} } }]),
    ),
  }));
  registerAppEndpoints(node.router, node, apps);
  const govHost = new NodeGovHost(node, deps.log);
  const constitution = await QuickJsConstitution.fromKv({
    host: govHost,
    log: (level, message) => deps.log(`[constitution ${level}] ${message}`),
  });
  registerGovEndpoints(node.router, node, withGovHost(constitution, govHost));
  await node.serve();
  return node;
}
