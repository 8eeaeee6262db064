/**
 * `consortia sandbox --app-service BUNDLE` (sandbox.ts): once the service is open, an app
 * server for BUNDLE runs beside the nodes and is registered by governance, as an operator would
 * do it by hand (README "Apps as a service", docs/adr/0005-app-services.md):
 *
 * 1. <workspace>/sandbox_app_service/ gets a sandbox CA (ca_cert.pem, a self-signed CA) and the
 *    server's key and certificate issued by it (server_privk.pem, server_cert.pem; SANs
 *    127.0.0.1 and localhost, serverAuth), made with the project's X.509 issuance;
 * 2. `consortia app serve --bundle FILE --tls-cert .. --tls-key .. --service-cert
 *    sandbox_common/service_cert.pem` runs as a child process with CONSORTIA_APP_PACKAGE_ID
 *    and CONSORTIA_APP_SERVER_ADDRESS=127.0.0.1:<port + 200>, its output in out and err there;
 *    the sandbox tracks its PID and stops it with the nodes (server.pid with --no-wait);
 * 3. member0 proposes set_app_service {package_id, address, ca_cert} and a majority accepts;
 * 4. the sandbox waits until every node routes the bundle's endpoints (GET /node/app-services
 *    says its connection is ready): a node connects to the server and fetches the bundle after
 *    the proposal commits, and until then a request could reach a built-in endpoint of the same
 *    path, or none.
 *
 * BUNDLE is a bundle file, `registry`, or an app directory (app.json + src/), whose bundle is
 * written to sandbox_app_service/bundle.json first: the package id is that file's SHA-256.
 *
 * Invariant: the bundle is read (and a directory's bundle built) before any node starts, so a
 * bad path fails the sandbox before it spawns anything.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { toHex, utf8 } from "../../base/bytes.js";
import { isNodeError } from "../../base/errors.js";
import { createServiceCertificate, endorseNodeCertificate } from "../../crypto/cert-issuance.js";
import { sha256 } from "../../crypto/hash.js";
import { ecPrivateKeyPem, generateEcKeyPair } from "../../crypto/identity.js";
import { checkBundleModules, loadBundle } from "../app-bundle-files.js";
import { CliError } from "../cli-error.js";
import type { GovClient, MemberSigner } from "../gov-client.js";
import { PACKAGE_ID_VARS, SERVER_ADDRESS_VARS } from "./app-serve.js";
import { SandboxError, SandboxErrorCode } from "./sandbox-error.js";
import { log, proposeAndPass, spawnCli, type NodeProcess } from "./sandbox-nodes.js";

/** The app server listens on the sandbox's --port plus this. */
export const APP_SERVICE_PORT_OFFSET = 200;
export const APP_SERVICE_DIR = "sandbox_app_service";
export const APP_SERVER_PID_FILE = "server.pid";
const SERVER_READY_TIMEOUT_MS = 30_000;
const CERT_VALIDITY_DAYS = 365;
const SERVING_LINE = /Serving package ([0-9a-f]{64}) at (\S+)/;

/** The bundle an app server will serve: its bytes, and the file to write them to (if any). */
export interface AppServiceBundle {
  /** What the operator named (a path, or `registry` resolved to its file). */
  readonly source: string;
  readonly bytes: Uint8Array;
  readonly packageId: string;
  /** The file to serve: `source` itself, or null when the bundle was built from a folder. */
  readonly file: string | null;
}

/** Reads (or builds, for an app directory) the bundle at `path`, already resolved. */
export function readAppServiceBundle(path: string): AppServiceBundle {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read the --app-service bundle ${path}: ${err.code}`);
  }
  let bytes: Uint8Array;
  if (isDir) {
    const bundle = loadBundle(path);
    checkBundleModules(bundle);
    bytes = utf8(JSON.stringify(bundle));
  } else {
    bytes = new Uint8Array(readFileSync(path));
  }
  return { source: path, bytes, packageId: toHex(sha256(bytes)), file: isDir ? null : path };
}

interface ServerFiles {
  readonly bundle: string;
  readonly caCert: string;
  readonly cert: string;
  readonly key: string;
}

/** Step 1: the sandbox CA, the server's key and certificate, and the bundle file if built. */
async function writeServerFiles(dir: string, bundle: AppServiceBundle): Promise<ServerFiles> {
  mkdirSync(dir, { recursive: true });
  const now = new Date();
  const caKeys = generateEcKeyPair();
  const caPem = await createServiceCertificate({
    keys: caKeys,
    subject: "CN=Consortia sandbox app service CA",
    validityDays: CERT_VALIDITY_DAYS,
    now,
  });
  const keys = generateEcKeyPair();
  const certPem = await endorseNodeCertificate({
    servicePrivateKey: caKeys.privateKey,
    serviceCertPem: caPem,
    nodePublicKey: keys.publicKey,
    subject: "CN=Consortia app server",
    subjectAltNames: ["iPAddress:127.0.0.1", "dNSName:localhost"],
    validityDays: CERT_VALIDITY_DAYS,
    now,
  });
  const files: ServerFiles = {
    bundle: bundle.file ?? join(dir, "bundle.json"),
    caCert: join(dir, "ca_cert.pem"),
    cert: join(dir, "server_cert.pem"),
    key: join(dir, "server_privk.pem"),
  };
  if (bundle.file === null) writeFileSync(files.bundle, bundle.bytes);
  writeFileSync(files.caCert, caPem);
  writeFileSync(files.cert, certPem);
  writeFileSync(files.key, ecPrivateKeyPem(keys.privateKey), { mode: 0o600 });
  return files;
}

/** Waits until the server's out file says it serves `packageId`; returns its address. */
async function waitUntilServing(
  dir: string,
  packageId: string,
  signal: AbortSignal,
): Promise<string> {
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
  const out = join(dir, "out");
  for (;;) {
    const text = existsSync(out) ? readFileSync(out, "utf8") : "";
    const match = SERVING_LINE.exec(text);
    if (match !== null && match[1] === packageId) return match[2]!;
    if (signal.aborted) {
      throw new SandboxError({ code: SandboxErrorCode.Aborted }, "app server start abandoned");
    }
    if (Date.now() > deadline) {
      throw new SandboxError(
        { code: SandboxErrorCode.Timeout },
        `the app server did not say it serves ${packageId} (see ${out})`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface NodeAppServices {
  appServices?: { packageId?: string; state?: string; reason?: string | null }[];
}

/**
 * Step 4: polls each node's GET /node/app-services until its connection to the server of
 * `packageId` is ready (hello answered with the bundle: the node routes its endpoints).
 */
async function waitUntilRouted(
  clients: readonly GovClient[],
  packageId: string,
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
  for (const [index, client] of clients.entries()) {
    for (;;) {
      const view = await client.requestJson<NodeAppServices>("GET", "/node/app-services");
      const mine = view?.appServices?.find((a) => a.packageId === packageId);
      if (mine?.state === "ready") break;
      if (signal.aborted) {
        throw new SandboxError({ code: SandboxErrorCode.Aborted }, "app server start abandoned");
      }
      if (Date.now() > deadline) {
        const seen = mine === undefined ? "no connection" : `${mine.state} ${mine.reason ?? ""}`;
        throw new SandboxError(
          { code: SandboxErrorCode.Timeout },
          `node ${index} has no ready connection to the app server (${seen})`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

export interface AppServiceStart {
  readonly bundle: AppServiceBundle;
  readonly workspace: string;
  readonly serviceCertFile: string;
  readonly port: number;
  /** Its own process group, as the nodes (sandbox-nodes.ts spawnNode). */
  readonly detached: boolean;
  readonly primary: GovClient;
  /** A client of each node, in index order: the sandbox is ready once each routes the app. */
  readonly nodeClients: readonly GovClient[];
  readonly members: readonly MemberSigner[];
  /** Called at once with the server process, so that a failure or a signal stops it. */
  readonly track: (server: NodeProcess) => void;
  readonly signal: AbortSignal;
}

/** Steps 1 to 3; the server is tracked as soon as it is spawned. */
export async function startSandboxAppService(o: AppServiceStart): Promise<void> {
  const dir = join(o.workspace, APP_SERVICE_DIR);
  const files = await writeServerFiles(dir, o.bundle);
  const address = `127.0.0.1:${o.port + APP_SERVICE_PORT_OFFSET}`;
  const args = ["app", "serve", "--bundle", files.bundle, "--tls-cert", files.cert];
  args.push("--tls-key", files.key, "--service-cert", o.serviceCertFile);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...PACKAGE_ID_VARS, ...SERVER_ADDRESS_VARS]) delete env[name];
  env[PACKAGE_ID_VARS[0]] = o.bundle.packageId;
  env[SERVER_ADDRESS_VARS[0]] = address;
  const { child, exited } = spawnCli({ args, dir, detached: o.detached, env });
  o.track({ index: -1, child, dir, exited, label: "App server", pidFile: APP_SERVER_PID_FILE });
  const serving = await waitUntilServing(dir, o.bundle.packageId, o.signal);
  const caCert = readFileSync(files.caCert, "utf8");
  await proposeAndPass(o.primary, o.members, [
    { name: "set_app_service", args: { package_id: o.bundle.packageId, address, ca_cert: caCert } },
  ]);
  await waitUntilRouted(o.nodeClients, o.bundle.packageId, o.signal);
  log(`App server for ${o.bundle.source} is serving at ${serving} (PID ${child.pid ?? "?"})`);
  log(`  package id ${o.bundle.packageId}, registered by set_app_service`);
  log(`  its files (CA, certificate, key, out, err) are in ${dir}`);
}
