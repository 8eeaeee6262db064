/**
 * `consortia app serve --bundle FILE|registry --tls-cert F --tls-key F --service-cert F` runs an
 * app server (src/appservice/server.ts) for one bundle file, and `consortia app package-id
 * --bundle FILE|registry` prints that file's package id (docs/adr/0005-app-services.md).
 *
 * The mode comes from the environment, as the enclave registry's chaincode picks it (issue
 * #14): CONSORTIA_APP_PACKAGE_ID and CONSORTIA_APP_SERVER_ADDRESS (or their aliases
 * CHAINCODE_PKG_ID and CHAINCODE_SERVER_ADDRESS) both set means service mode, on that host:port;
 * only one set is an error naming the missing one; neither set is an error too, since an app's
 * normal mode is deployment into the nodes by governance (`consortia app deploy`), which needs
 * no server. An empty variable counts as unset.
 *
 * Invariants:
 * - the server starts only with the bundle whose digest is the package id: the package id is
 *   the lower-case hex SHA-256 of the bundle file's bytes, checked here before anything listens
 *   (and again by startAppServer);
 * - the mode is decided before any file is read, so a misconfigured environment is reported
 *   as such whatever the other options say;
 * - SIGINT/SIGTERM close the server (its connections end) and the command returns; the
 *   handlers are installed before the server starts and removed when it stops.
 */
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { isNodeError } from "../../base/errors.js";
import { sha256 } from "../../crypto/hash.js";
import { toHex } from "../../base/bytes.js";
import { resolveBundlePath } from "../builtin-apps.js";
import { CliError, isReportable } from "../cli-error.js";
import { readText } from "./gov.js";

/** The environment variables of service mode, each with the alias FPC's chaincode reads. */
export const PACKAGE_ID_VARS = ["CONSORTIA_APP_PACKAGE_ID", "CHAINCODE_PKG_ID"] as const;
export const SERVER_ADDRESS_VARS = [
  "CONSORTIA_APP_SERVER_ADDRESS",
  "CHAINCODE_SERVER_ADDRESS",
] as const;

export type AppServiceMode =
  | { readonly kind: "service"; readonly packageId: string; readonly address: string }
  | { readonly kind: "incomplete"; readonly missing: string; readonly present: string }
  | { readonly kind: "conflict"; readonly names: readonly [string, string] }
  | { readonly kind: "normal" };

type Env = Readonly<Record<string, string | undefined>>;

/** The value of the first of `names` set (non-empty), or a conflict when two set differ. */
function lookup(
  env: Env,
  names: readonly [string, string],
): { kind: "set"; name: string; value: string } | { kind: "unset" } | { kind: "conflict" } {
  const set = names.filter((n) => (env[n] ?? "") !== "");
  const [first, second] = set;
  if (first === undefined) return { kind: "unset" };
  if (second !== undefined && env[first] !== env[second]) return { kind: "conflict" };
  return { kind: "set", name: first, value: env[first]! };
}

/** Which mode the environment asks for (pure: the caller passes process.env). */
export function appServiceMode(env: Env): AppServiceMode {
  const id = lookup(env, PACKAGE_ID_VARS);
  const address = lookup(env, SERVER_ADDRESS_VARS);
  if (id.kind === "conflict") return { kind: "conflict", names: PACKAGE_ID_VARS };
  if (address.kind === "conflict") return { kind: "conflict", names: SERVER_ADDRESS_VARS };
  if (id.kind === "set" && address.kind === "set") {
    return { kind: "service", packageId: id.value, address: address.value };
  }
  if (id.kind === "set") {
    return { kind: "incomplete", missing: SERVER_ADDRESS_VARS[0], present: id.name };
  }
  if (address.kind === "set") {
    return { kind: "incomplete", missing: PACKAGE_ID_VARS[0], present: address.name };
  }
  return { kind: "normal" };
}

/** The one-line refusal for every mode but service mode. */
export function modeRefusal(mode: Exclude<AppServiceMode, { kind: "service" }>): string {
  switch (mode.kind) {
    case "incomplete":
      return (
        `${mode.present} is set but ${mode.missing} is not: service mode needs both ` +
        `${PACKAGE_ID_VARS[0]} (or ${PACKAGE_ID_VARS[1]}) and ${SERVER_ADDRESS_VARS[0]} ` +
        `(or ${SERVER_ADDRESS_VARS[1]})`
      );
    case "conflict":
      return `${mode.names[0]} and ${mode.names[1]} are both set, to different values`;
    case "normal":
      return (
        `not in service mode: ${PACKAGE_ID_VARS[0]} and ${SERVER_ADDRESS_VARS[0]} are not set. ` +
        "In normal mode an app is deployed into the nodes by governance " +
        "(consortia app deploy --bundle FILE) and needs no server; to serve it, set both " +
        "(the package id is printed by consortia app package-id --bundle FILE)"
      );
  }
}

export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/** host:port or [ipv6]:port; port 0 lets the system choose one. */
export function parseServerAddress(text: string): ServerAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = match === null ? Number.NaN : Number(match[3]);
  if (match === null || !(port >= 0 && port <= 65535)) {
    throw new CliError(
      `${SERVER_ADDRESS_VARS[0]} must be host:port (or [ipv6]:port), got ${JSON.stringify(text)}`,
    );
  }
  return { host: match[1] ?? match[2]!, port };
}

/** The package id of a bundle file: the lower-case hex SHA-256 of its bytes. */
export function packageIdOfFile(path: string): { file: string; bytes: Uint8Array; id: string } {
  const file = resolveBundlePath(path);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    const hint =
      err.code === "EISDIR"
        ? " (a bundle file is needed: consortia app bundle DIR writes one)"
        : "";
    throw new CliError(`cannot read the bundle ${file}: ${err.code}${hint}`);
  }
  return { file, bytes, id: toHex(sha256(bytes)) };
}

const PACKAGE_ID = /^[0-9a-f]{64}$/;

interface ServeOptions {
  bundle?: string;
  tlsCert?: string;
  tlsKey?: string;
  serviceCert?: string;
}

/** What `serve` starts with, once every check passed; nothing listens yet. */
interface ServePlan {
  readonly file: string;
  readonly bytes: Uint8Array;
  readonly packageId: string;
  readonly address: ServerAddress;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly serviceCert: string;
}

/** The checks of `serve`, in the order the header gives; throws CliError on the first failure. */
export function planServe(o: ServeOptions, env: Env): ServePlan {
  const mode = appServiceMode(env);
  if (mode.kind !== "service") throw new CliError(modeRefusal(mode));
  const address = parseServerAddress(mode.address);
  if (!PACKAGE_ID.test(mode.packageId)) {
    throw new CliError(
      `the package id ${JSON.stringify(mode.packageId)} is not 64 lower-case hex digits ` +
        "(the SHA-256 of the bundle file: consortia app package-id --bundle FILE)",
    );
  }
  if (o.bundle === undefined) throw new CliError("--bundle FILE|registry is required");
  const { file, bytes, id } = packageIdOfFile(o.bundle);
  if (id !== mode.packageId) {
    throw new CliError(
      `refusing to serve ${file}: its package id is ${id}, not ${mode.packageId} ` +
        "(the package id must be the SHA-256 of the bundle file)",
    );
  }
  const missing = (["tlsCert", "tlsKey", "serviceCert"] as const).filter((k) => o[k] === undefined);
  if (missing.length > 0) {
    const flags = missing.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    throw new CliError(`service mode needs ${flags.join(", ")} (the server's TLS identity)`);
  }
  return {
    file,
    bytes,
    packageId: id,
    address,
    tlsCert: readText(o.tlsCert!, "--tls-cert"),
    tlsKey: readText(o.tlsKey!, "--tls-key"),
    serviceCert: readText(o.serviceCert!, "--service-cert"),
  };
}

function formatAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function log(line: string): void {
  const time = new Date().toISOString().slice(11, 23);
  process.stdout.write(`[${time}] ${line}\n`);
}

/** Starts the server of `plan` and serves until SIGINT or SIGTERM. */
async function serve(plan: ServePlan): Promise<void> {
  let fire: (signal: string) => void = () => {};
  const stopped = new Promise<string>((r) => (fire = r));
  const onInt = () => fire("SIGINT");
  const onTerm = () => fire("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  try {
    // Loaded only here: the server brings QuickJS, which `app new` and `app deploy` do not need.
    const { startAppServer } = await import("../../appservice/server.js");
    let server: Awaited<ReturnType<typeof startAppServer>>;
    try {
      server = await startAppServer({
        bundle: plan.bytes,
        packageId: plan.packageId,
        host: plan.address.host,
        port: plan.address.port,
        tlsCert: plan.tlsCert,
        tlsKey: plan.tlsKey,
        serviceCert: plan.serviceCert,
        log,
      });
    } catch (err: unknown) {
      if (!isReportable(err)) throw err;
      throw new CliError(`cannot serve ${plan.file}: ${err.message}`);
    }
    log(`Serving package ${plan.packageId} at ${formatAddress(server.host, server.port)}`);
    log(`Bundle: ${plan.file}`);
    const signal = await stopped;
    log(`${signal} received: stopping the app server`);
    await server.close();
    log("App server stopped");
  } finally {
    process.off("SIGINT", onInt);
    process.off("SIGTERM", onTerm);
  }
}

const SERVE_HELP = `
Service mode only: set ${PACKAGE_ID_VARS[0]} (the bundle file's SHA-256, see
\`consortia app package-id\`) and ${SERVER_ADDRESS_VARS[0]} (host:port to listen on);
${PACKAGE_ID_VARS[1]} and ${SERVER_ADDRESS_VARS[1]} are accepted as the same. Nodes connect
over mutual TLS: they present their service-endorsed certificate (issued by --service-cert)
and check this server's --tls-cert against the ca_cert of set_app_service (or the service
certificate). Register the server with a set_app_service proposal
{package_id, address, ca_cert?}. SIGINT or SIGTERM stops it.
`;

export function registerAppServe(app: Command): void {
  app
    .command("serve")
    .description("Serve a bundle as an app service (mode and address from the environment).")
    .option("--bundle <file>", "the bundle file (bundle.json), or registry")
    .option("--tls-cert <file>", "this server's TLS certificate (PEM)")
    .option("--tls-key <file>", "its private key (PEM)")
    .option("--service-cert <file>", "the network's service certificate (PEM)")
    .addHelpText("after", SERVE_HELP)
    .action((o: ServeOptions) => serve(planServe(o, process.env)));
  app
    .command("package-id")
    .description("Print a bundle file's package id (the hex SHA-256 of its bytes).")
    .requiredOption("--bundle <file>", "the bundle file (bundle.json), or registry")
    .action((o: { bundle: string }) => {
      process.stdout.write(`${packageIdOfFile(o.bundle).id}\n`);
    });
}
