/**
 * What `consortia console` connects to, from its flags: a sandbox workspace (`--workspace W`:
 * the service certificate in W/sandbox_common/, every node's RPC address and node 0's ledger
 * directory from W/sandbox_<i>/config.json, user0's identity for app endpoints that need a
 * user certificate) or one node (`--node URL --cacert FILE`, with `--ledger-dir` for the
 * ledger explorer and `--user-cert`/`--user-key` for the registry page).
 *
 * Every bad flag or missing file is a CliError of one line, before anything listens.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { tryParseCertificate } from "../../crypto/certs.js";
import { CliError } from "../cli-error.js";

export interface ConsoleFlags {
  readonly workspace?: string;
  readonly node?: string;
  readonly cacert?: string;
  readonly ledgerDir?: string;
  readonly userCert?: string;
  readonly userKey?: string;
  readonly port: string;
}

export interface ConsoleSettings {
  readonly port: number;
  readonly nodeUrls: readonly string[];
  readonly serviceCertPem: string;
  readonly ledgerDir: string | null;
  readonly client: { readonly certPem: string; readonly keyPem: string } | null;
}

export function consoleSettings(flags: ConsoleFlags): ConsoleSettings {
  const port = portOf(flags.port);
  if (flags.workspace !== undefined && flags.node !== undefined) {
    throw new CliError("give --workspace or --node, not both");
  }
  if (flags.workspace === undefined && flags.node === undefined) {
    throw new CliError("give --workspace W (a sandbox) or --node URL --cacert FILE");
  }
  const ledgerDir = flags.ledgerDir === undefined ? undefined : checkedDir(flags.ledgerDir);
  const client = clientOf(flags);
  if (flags.workspace !== undefined) {
    if (flags.cacert !== undefined) {
      throw new CliError("--cacert goes with --node; a workspace has its service certificate");
    }
    const ws = fromWorkspace(resolve(flags.workspace));
    return { port, ...ws, ledgerDir: ledgerDir ?? ws.ledgerDir, client: client ?? ws.client };
  }
  if (flags.cacert === undefined) throw new CliError("--node needs --cacert FILE");
  return {
    port,
    nodeUrls: [nodeUrlOf(flags.node!)],
    serviceCertPem: readCert(flags.cacert, "--cacert"),
    ledgerDir: ledgerDir ?? null,
    client: client ?? null,
  };
}

function portOf(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new CliError(`--port must be an integer in 0..65535, got ${JSON.stringify(text)}`);
  }
  return port;
}

function nodeUrlOf(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err: unknown) {
    if (!(err instanceof TypeError)) throw err;
    throw new CliError(`--node must be a URL such as https://127.0.0.1:8000, got ${text}`);
  }
  if (url.protocol !== "https:" || url.pathname !== "/" || url.search !== "") {
    throw new CliError(`--node must be https://host:port with no path, got ${text}`);
  }
  return url.origin;
}

function readFile(path: string, flag: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new CliError(`${flag}: no such file: ${path}`);
  }
  return readFileSync(path, "utf8");
}

function readCert(path: string, flag: string): string {
  const pem = readFile(path, flag);
  if (tryParseCertificate(pem) === null) {
    throw new CliError(`${flag}: ${path} is not a PEM certificate`);
  }
  return pem;
}

function checkedDir(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new CliError(`--ledger-dir: no such directory: ${path}`);
  }
  return resolve(path);
}

function clientOf(flags: ConsoleFlags): ConsoleSettings["client"] | undefined {
  if (flags.userCert === undefined && flags.userKey === undefined) return undefined;
  if (flags.userCert === undefined || flags.userKey === undefined) {
    throw new CliError("--user-cert and --user-key go together");
  }
  return {
    certPem: readCert(flags.userCert, "--user-cert"),
    keyPem: readFile(flags.userKey, "--user-key"),
  };
}

interface NodeConfigFile {
  readonly network?: {
    readonly rpc_interfaces?: Record<
      string,
      { bind_address?: unknown; published_address?: unknown }
    >;
  };
  readonly ledger?: { readonly directory?: unknown };
}

/** A sandbox workspace's network, in node index order. */
function fromWorkspace(workspace: string) {
  const common = join(workspace, "sandbox_common");
  const certFile = join(common, "service_cert.pem");
  if (!existsSync(certFile)) {
    throw new CliError(
      `${workspace} is not a sandbox workspace (no sandbox_common/service_cert.pem)`,
    );
  }
  const indexes = readdirSync(workspace)
    .map((name) => /^sandbox_(\d+)$/.exec(name)?.[1])
    .filter((i): i is string => i !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const configs = indexes
    .map((i) => join(workspace, `sandbox_${i}`, "config.json"))
    .filter((file) => existsSync(file))
    .map((file) => configOf(file));
  const nodeUrls = configs.flatMap((c) => {
    const first = Object.values(c.network?.rpc_interfaces ?? {})[0];
    const address = first?.published_address ?? first?.bind_address;
    return typeof address === "string" ? [`https://${address}`] : [];
  });
  if (nodeUrls.length === 0) throw new CliError(`${workspace}: no node config.json found`);
  const dir = configs[0]?.ledger?.directory;
  const user = join(common, "user0");
  const hasUser = existsSync(`${user}_cert.pem`) && existsSync(`${user}_privk.pem`);
  return {
    nodeUrls,
    serviceCertPem: readCert(certFile, "--workspace"),
    ledgerDir: typeof dir === "string" ? resolve(workspace, dir) : null,
    client: hasUser
      ? {
          certPem: readFileSync(`${user}_cert.pem`, "utf8"),
          keyPem: readFileSync(`${user}_privk.pem`, "utf8"),
        }
      : null,
  };
}

function configOf(file: string): NodeConfigFile {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as NodeConfigFile;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`${file} is not JSON: ${err.message}`);
  }
}
