/**
 * `consortia sandbox` (what `npm start` runs): a local network of N nodes (3 by default) with
 * members and users, service open, like CCF's sandbox.sh (ccf-compatibility.md §10).
 *
 * Steps: wipe and recreate <workspace>; write member0..M-1 (with RSA encryption keys) and
 * user0..U-1 identities plus the constitution into <workspace>/sandbox_common/; write
 * <workspace>/sandbox_0/config.json (Start) and run `consortia node --config` as a separate OS
 * process (stdout/stderr to sandbox_0/out and err); wait for PartOfNetwork; then start nodes
 * 1..N-1 the same way with Join configs aimed at node 0 (the service is still Opening, so they
 * are trusted at once) and wait for each; have every member update and ack its state digest
 * (all Active); member0 proposes set_user for every user plus transition_service_to_open and a
 * strict majority votes for it; check the service is Open; print the node URLs, the common
 * folder and a curl example; then run until SIGINT/SIGTERM. With --js-app-bundle, a JS app is
 * deployed by governance once the service is open; with --app-service, an app server serves a
 * bundle and is registered by set_app_service (sandbox-app-service.ts), and it is stopped with
 * the nodes.
 *
 * Ports: node i serves RPC on --port + i and node-to-node on --port + 100 + i; the app server
 * (--app-service) listens on --port + 200.
 *
 * Invariants:
 * - no node process is left behind unless --no-wait asked for it: any failure or signal
 *   stops them all (sandbox-nodes.ts stopNodes) before this command returns;
 * - the workspace is wiped only if it is empty or looks like a sandbox workspace (holds
 *   sandbox_common/), so a mistyped --workspace cannot delete someone's directory.
 */
import { constitutionFileNames } from "../constitution-files.js";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { generateEncryptionKey, generateIdentity } from "../../crypto/identity.js";
import { isNodeError } from "../../base/errors.js";
import { CliError } from "../cli-error.js";
import { failureMessage, SandboxError, SandboxErrorCode } from "./sandbox-error.js";
import { GovClient, type Action, type MemberSigner } from "../gov-client.js";
import {
  log,
  printBanner,
  proposeAndPass,
  retryWhileNoSignature,
  runUntilStopped,
  spawnNode,
  stopNodes,
  stopSignal,
  tails,
  writeNodeConfig,
  SANDBOX_CURVES,
  type NodeProcess,
  type SandboxCurveId,
  type Settings,
} from "./sandbox-nodes.js";
import { recoverSandbox } from "./sandbox-recover.js";
import { setJsAppAction } from "./app.js";
import {
  APP_SERVICE_PORT_OFFSET,
  readAppServiceBundle,
  startSandboxAppService,
  type AppServiceBundle,
  type AppServiceStart,
} from "./sandbox-app-service.js";
import { resolveBundlePath } from "../builtin-apps.js";
import { findPackageRoot } from "../package-root.js";

interface SandboxOptions {
  nodes: string;
  electionTimeout: string;
  workerThreads: string;
  members: string;
  users: string;
  port: string;
  workspace: string;
  sigMsInterval: string;
  curve: string;
  wait: boolean;
  recover?: boolean;
  jsAppBundle?: string;
  appService?: string;
  nodeToNodePublishedPort?: string;
}

const READY_TIMEOUT_MS = 30_000;

const HELP_AFTER = `
The workspace is a sandbox: if it exists it is WIPED first (only if it is empty or holds
sandbox_common/, to protect other directories). Identities, the service certificate and the
constitution land in <workspace>/sandbox_common/; node i's config, ledger, snapshots, pid and
out/err logs in <workspace>/sandbox_<i>/. Node i serves RPC on --port + i and node-to-node on
--port + 100 + i. With --app-service, the app server listens on --port + 200 and keeps its
CA, certificate, key and out/err logs in <workspace>/sandbox_app_service/. Use the files with
curl or \`consortia gov\`.
`;

export function registerSandbox(program: Command): void {
  program
    .command("sandbox")
    .description("Start a local network (members, users, service open) until Ctrl+C.")
    .option("--nodes <n>", "number of nodes", "3")
    .option("--election-timeout <ms>", "consensus election timeout (ms)", "2000")
    .option("--worker-threads <n>", "threads per node sealing ledger entries", "1")
    .option("--members <m>", "number of members (member0 proposes)", "3")
    .option("--users <u>", "number of users", "1")
    .option(
      "--port <port>",
      "RPC port of node 0 (node i: port+i; node-to-node: port+100+i)",
      "8000",
    )
    .option("--workspace <dir>", "workspace directory (wiped first)", "./workspace")
    .option("--sig-ms-interval <ms>", "ledger signature interval (ms)", "100")
    .option(
      "--curve <curve>",
      "curve of the node and service keys: secp256r1 (signs faster) or secp384r1",
      "secp256r1",
    )
    .option("--no-wait", "exit once the service is open, leaving the node running")
    .option(
      "--node-to-node-published-port <port>",
      "node i publishes its node-to-node address as 127.0.0.1:port+i (e.g. a proxy before it)",
    )
    .option(
      "--js-app-bundle <path>",
      "deploy this JS app (bundle.json, app.json dir, or registry) once open",
    )
    .option(
      "--app-service <path>",
      "serve this bundle (file, app.json dir, or registry) by an app server, set_app_service",
    )
    .option(
      "--recover",
      "recover the stopped sandbox in --workspace (disaster recovery from its ledgers)",
    )
    .addHelpText("after", HELP_AFTER)
    .action((options: SandboxOptions) => {
      const settings = parseSettings(options);
      return settings.recover ? recoverSandbox(settings) : runSandbox(settings);
    });
}

function parseSettings(o: SandboxOptions): Settings {
  const int = (text: string, flag: string, min: number, max: number): number => {
    const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!(value >= min && value <= max)) {
      throw new CliError(
        `${flag} must be an integer in ${min}..${max}, got ${JSON.stringify(text)}`,
      );
    }
    return value;
  };
  const nodes = int(o.nodes, "--nodes", 1, 64);
  if (o.appService !== undefined && o.recover === true) {
    throw new CliError("--app-service starts a new sandbox; it cannot be combined with --recover");
  }
  // The app server listens on --port + 200, above the node-to-node ports.
  const portMax = 65535 - (o.appService === undefined ? 100 + nodes : APP_SERVICE_PORT_OFFSET);
  return {
    nodes,
    electionTimeoutMs: int(o.electionTimeout, "--election-timeout", 100, 600_000),
    workerThreads: int(o.workerThreads, "--worker-threads", 0, 16),
    members: int(o.members, "--members", 1, 100),
    users: int(o.users, "--users", 0, 100),
    port: int(o.port, "--port", 1, portMax),
    workspace: resolve(o.workspace),
    sigMsInterval: int(o.sigMsInterval, "--sig-ms-interval", 1, 3_600_000),
    curveId: curveIdOf(o.curve),
    wait: o.wait,
    recover: o.recover === true,
    ...(o.jsAppBundle === undefined
      ? {}
      : { jsAppBundle: resolve(resolveBundlePath(o.jsAppBundle)) }),
    ...(o.appService === undefined ? {} : { appService: resolve(resolveBundlePath(o.appService)) }),
    ...(o.nodeToNodePublishedPort === undefined
      ? {}
      : {
          nodeToNodePublishedPort: int(
            o.nodeToNodePublishedPort,
            "--node-to-node-published-port",
            1,
            65535 - nodes,
          ),
        }),
  };
}

/** --curve's value as node_certificate.curve_id; a CliError names the accepted values. */
export function curveIdOf(text: string): SandboxCurveId {
  const curveId = Object.hasOwn(SANDBOX_CURVES, text) ? SANDBOX_CURVES[text] : undefined;
  if (curveId === undefined) {
    const accepted = Object.keys(SANDBOX_CURVES).join(" or ");
    throw new CliError(`--curve must be ${accepted}, got ${JSON.stringify(text)}`);
  }
  return curveId;
}

async function runSandbox(settings: Settings): Promise<void> {
  const stop = stopSignal();
  try {
    // Read first: a bad bundle path fails before any node starts.
    const jsApp =
      settings.jsAppBundle === undefined ? undefined : setJsAppAction(settings.jsAppBundle);
    const appService =
      settings.appService === undefined ? undefined : readAppServiceBundle(settings.appService);
    prepareWorkspace(settings.workspace);
    const common = join(settings.workspace, "sandbox_common");
    const identities = await writeIdentities(common, settings);
    const constitution = copyConstitution(common);
    const nodes: NodeProcess[] = [];
    const afterOpen = { jsApp, appService };
    await bringUp(nodes, common, constitution, identities, settings, stop.promise, afterOpen);
    printBanner(common, settings);
    await runUntilStopped(nodes, settings, stop.promise);
  } finally {
    stop.dispose();
  }
}

function prepareWorkspace(workspace: string): void {
  if (existsSync(workspace)) {
    const entries = readdirSync(workspace);
    if (entries.length > 0 && !entries.includes("sandbox_common")) {
      throw new CliError(
        `refusing to wipe ${workspace}: it is not empty and holds no sandbox_common/ ` +
          "(choose another --workspace)",
      );
    }
    rmSync(workspace, { recursive: true, force: true });
  }
  mkdirSync(join(workspace, "sandbox_common"), { recursive: true });
}

interface Identities {
  readonly members: readonly MemberSigner[];
  readonly userCerts: readonly string[];
}

/** The files keygen writes: <name>_privk.pem, <name>_cert.pem [, <name>_enc_{priv,pub}k.pem]. */
async function writeIdentities(common: string, settings: Settings): Promise<Identities> {
  const make = async (name: string, encryption: boolean): Promise<MemberSigner> => {
    const identity = await generateIdentity({ name, now: new Date() });
    writeFileSync(join(common, `${name}_privk.pem`), identity.privateKeyPem, { mode: 0o600 });
    writeFileSync(join(common, `${name}_cert.pem`), identity.certPem);
    if (encryption) {
      const enc = generateEncryptionKey();
      writeFileSync(join(common, `${name}_enc_privk.pem`), enc.privateKeyPem, { mode: 0o600 });
      writeFileSync(join(common, `${name}_enc_pubk.pem`), enc.publicKeyPem);
    }
    return { certPem: identity.certPem, keyPem: identity.privateKeyPem };
  };
  const members: MemberSigner[] = [];
  for (let i = 0; i < settings.members; i++) members.push(await make(`member${i}`, true));
  const userCerts: string[] = [];
  for (let i = 0; i < settings.users; i++) userCerts.push((await make(`user${i}`, false)).certPem);
  return { members, userCerts };
}

function copyConstitution(common: string): string[] {
  const source = join(findPackageRoot(), "constitution");
  return constitutionFileNames(source).map((name) => {
    copyFileSync(join(source, name), join(common, name));
    return join(common, name);
  });
}

/**
 * Everything between the first spawn and "service open", pushing each node it starts onto
 * `nodes`; on failure every node is stopped and the failure explained.
 */
async function bringUp(
  nodes: NodeProcess[],
  common: string,
  constitution: readonly string[],
  identities: Identities,
  settings: Settings,
  stop: Promise<string>,
  afterOpen: AfterOpen,
): Promise<void> {
  const caPath = join(common, "service_cert.pem");
  const clients: GovClient[] = [];
  // Stops the polling loops once the race below is decided, so nothing keeps the process alive.
  const abort = new AbortController();
  let exited!: (why: string) => void;
  const anyExit = new Promise<string>((r) => (exited = r));
  const track = (p: NodeProcess): void => {
    nodes.push(p);
    const name = p.label ?? `node ${p.index}`;
    void p.exited.then((how) => exited(`${name} exited (${how})\n${tails(p.dir)}`));
  };
  const startNode = (index: number): void => {
    const dir = join(settings.workspace, `sandbox_${index}`);
    const configFile = writeNodeConfig(index, dir, common, constitution, settings);
    track(spawnNode(index, dir, configFile, settings.wait));
  };
  const work = async () => {
    startNode(0);
    await waitForFile(caPath, READY_TIMEOUT_MS, abort.signal);
    const caPem = readFileSync(caPath, "utf8");
    const client = (i: number) => {
      const c = new GovClient({ url: `https://127.0.0.1:${settings.port + i}`, caPem });
      clients.push(c);
      return c;
    };
    const primary = client(0);
    await primary.waitUntilReady({ timeoutMs: READY_TIMEOUT_MS, signal: abort.signal });
    for (let i = 1; i < settings.nodes; i++) {
      startNode(i);
      await client(i).waitUntilReady({ timeoutMs: READY_TIMEOUT_MS, signal: abort.signal });
      log(`Node [${i}] joined`);
    }
    await openService(primary, identities, caPem);
    const nodeClients = [...clients]; // one per node, in index order
    const opened = {
      primary,
      nodeClients,
      members: identities.members,
      track,
      signal: abort.signal,
    };
    await runAfterOpen(afterOpen, opened, settings, caPath);
  };
  const failure = await Promise.race([
    work().then(
      () => undefined,
      (e: unknown) => e,
    ),
    anyExit,
    stop.then((signal) => `${signal} received during startup`),
  ]);
  abort.abort();
  for (const c of clients) c.close();
  if (failure === undefined) return;
  const stopped = await stopNodes(nodes);
  const reason = failureMessage(failure);
  // A bug (an assertion, ...) is not a failed start to explain: it propagates as it is.
  if (reason === null) throw failure;
  const logs = nodes.map((n) => tails(n.dir)).join("\n");
  throw new CliError(`${reason}\n${stopped.join("\n")}\n${logs}`);
}

/** What a sandbox does once its service is open: --js-app-bundle, --app-service. */
interface AfterOpen {
  readonly jsApp: Action | undefined;
  readonly appService: AppServiceBundle | undefined;
}

async function runAfterOpen(
  after: AfterOpen,
  opened: Pick<AppServiceStart, "primary" | "nodeClients" | "members" | "track" | "signal">,
  settings: Settings,
  serviceCertFile: string,
): Promise<void> {
  if (after.jsApp !== undefined) {
    await proposeAndPass(opened.primary, opened.members, [after.jsApp]);
    log(`Deployed the JS app from ${settings.jsAppBundle ?? ""}`);
  }
  if (after.appService !== undefined) {
    await startSandboxAppService({
      ...opened,
      bundle: after.appService,
      workspace: settings.workspace,
      serviceCertFile,
      port: settings.port,
      // As for the nodes: their own process group while the sandbox waits, so a Ctrl+C reaches
      // the sandbox, which stops them in order.
      detached: settings.wait,
    });
  }
}

async function waitForFile(path: string, timeoutMs: number, signal: AbortSignal) {
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (signal.aborted || Date.now() > deadline) {
      throw new SandboxError({ code: SandboxErrorCode.Timeout }, `the node did not write ${path}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Members ack (all Active); member0 proposes users + open; a strict majority accepts. */
async function openService(client: GovClient, ids: Identities, serviceCertPem: string) {
  for (const member of ids.members)
    await retryWhileNoSignature(() => client.ackStateDigest(member));
  const actions: Action[] = [
    ...ids.userCerts.map((cert) => ({ name: "set_user", args: { cert } })),
    { name: "transition_service_to_open", args: { next_service_identity: serviceCertPem } },
  ];
  await proposeAndPass(client, ids.members, actions);
  const info = await client.serviceInfo();
  if (info.status !== "Open") {
    throw new SandboxError(
      { code: SandboxErrorCode.UnexpectedStatus, status: info.status },
      `service status is ${info.status}, not Open`,
    );
  }
}
