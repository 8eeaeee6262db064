/**
 * `consortia app set-service --bundle FILE|registry --address HOST:PORT [--ca-cert FILE]
 * [--timeout-ms N]` proposes set_app_service {package_id, address, ca_cert?, timeout_ms?} for
 * an app server (`consortia app serve`), the package id computed from the bundle file as the
 * server computes it; `consortia app remove-service --bundle FILE|registry | --package-id ID`
 * proposes remove_app_service. Both sign as the member given by the connection options (gov.ts)
 * and print the node's answer; members then vote as on any proposal (`consortia gov vote`).
 * They are the service-mode twins of `consortia app deploy` (set_js_app, remove_js_app); the
 * constitution (constitution/actions-app-service.js) validates the arguments again.
 */
import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import type { Action } from "../gov-client.js";
import { packageIdOfFile, parseServerAddress } from "./app-serve.js";
import { addConnectionOptions, readText, runClientCall, type ConnectionOptions } from "./gov.js";

const PACKAGE_ID = /^[0-9a-f]{64}$/;
/** The constitution's bound on timeout_ms (actions-app-service.js). */
const TIMEOUT_MS_MAX = 600_000;

export interface SetServiceOptions {
  bundle: string;
  address: string;
  caCert?: string;
  timeoutMs?: string;
}

/** The set_app_service action of these options (files read now). */
export function setAppServiceAction(o: SetServiceOptions): Action {
  const { port } = parseServerAddress(o.address);
  if (port === 0) throw new CliError("--address needs a port from 1 to 65535");
  const args: Record<string, unknown> = {
    package_id: packageIdOfFile(o.bundle).id,
    address: o.address,
  };
  if (o.caCert !== undefined) args.ca_cert = readText(o.caCert, "--ca-cert");
  if (o.timeoutMs !== undefined) {
    const ms = /^\d+$/.test(o.timeoutMs) ? Number(o.timeoutMs) : Number.NaN;
    if (!(ms >= 1 && ms <= TIMEOUT_MS_MAX)) {
      throw new CliError(`--timeout-ms must be an integer in 1..${TIMEOUT_MS_MAX}`);
    }
    args.timeout_ms = ms;
  }
  return { name: "set_app_service", args };
}

/** The remove_app_service action for exactly one of a bundle or a package id. */
export function removeAppServiceAction(o: { bundle?: string; packageId?: string }): Action {
  if ((o.bundle === undefined) === (o.packageId === undefined)) {
    throw new CliError("give exactly one of --bundle FILE|registry or --package-id ID");
  }
  const id = o.packageId ?? packageIdOfFile(o.bundle!).id;
  if (!PACKAGE_ID.test(id)) throw new CliError("--package-id must be 64 lower-case hex digits");
  return { name: "remove_app_service", args: { package_id: id } };
}

export function registerAppServiceGov(app: Command): void {
  addConnectionOptions(
    app
      .command("set-service")
      .description("Propose set_app_service: route a bundle's endpoints to its app server."),
  )
    .requiredOption("--bundle <file>", "the bundle file the server serves, or registry")
    .requiredOption("--address <host:port>", "where the nodes reach the server")
    .option("--ca-cert <file>", "CA the server's certificate chains to (default: the service's)")
    .option("--timeout-ms <ms>", "how long a node waits for a result (node default 5000)")
    .action((o: ConnectionOptions & SetServiceOptions) => {
      const action = setAppServiceAction(o);
      return runClientCall(o, (c) => c.propose([action]));
    });
  addConnectionOptions(
    app
      .command("remove-service")
      .description("Propose remove_app_service: the nodes drop the server and its routes."),
  )
    .option("--bundle <file>", "the bundle file the server serves, or registry")
    .option("--package-id <id>", "or its package id")
    .action((o: ConnectionOptions & { bundle?: string; packageId?: string }) => {
      const action = removeAppServiceAction(o);
      return runClientCall(o, (c) => c.propose([action]));
    });
}
