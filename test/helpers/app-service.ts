/**
 * For the app service e2e tests (test/e2e/app-service*.test.ts): a sandbox started with
 * `consortia sandbox --no-wait --app-service BUNDLE` as a real process, its PIDs (nodes and app
 * server), governance through the CLI (`consortia gov propose` and `vote`, as the README shows),
 * and `consortia app serve` started by hand with the sandbox's server files, as an operator
 * restarts a server. Everything started is stopped by PID.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_ARGV, runCli, type CliRun } from "./cli.js";
import { type Tls } from "./https.js";
import { isAlive } from "./network.js";

/** The app server listens on the sandbox's --port + 200 (src/cli/commands/sandbox-app-service.ts). */
export const APP_SERVER_PORT_OFFSET = 200;

export interface ServiceSandbox {
  readonly workspace: string;
  readonly nodes: number;
  readonly port: number;
  /** Node 0, the primary. */
  readonly url: string;
  /** user0 and the service certificate. */
  readonly tls: Tls;
  /** <workspace>/sandbox_app_service: CA, server certificate and key, out and err. */
  readonly serverDir: string;
  /** The address set_app_service registered. */
  readonly address: string;
  readonly packageId: string;
}

export function ok(run: CliRun, what: string): string {
  assert.equal(run.status, 0, `${what} failed:\n${run.stdout}\n${run.stderr}`);
  return run.stdout;
}

export const sha256Hex = (bytes: Buffer | string): string =>
  createHash("sha256").update(bytes).digest("hex");

/** `consortia sandbox --no-wait --app-service BUNDLE`; asserts it started. */
export function startServiceSandbox(o: {
  workspace: string;
  port: number;
  nodes: number;
  bundle: string;
  extra?: readonly string[];
}): ServiceSandbox {
  const run = runCli([
    ...["sandbox", "--no-wait", "--nodes", String(o.nodes), "--workspace", o.workspace],
    ...["--port", String(o.port), "--sig-ms-interval", "50", "--app-service", o.bundle],
    ...(o.extra ?? []),
  ]);
  ok(run, "sandbox --app-service");
  const packageId = /package id ([0-9a-f]{64}), registered by set_app_service/.exec(run.stdout);
  assert.ok(packageId !== null, run.stdout);
  const common = join(o.workspace, "sandbox_common");
  return {
    workspace: o.workspace,
    nodes: o.nodes,
    port: o.port,
    url: `https://127.0.0.1:${o.port}`,
    tls: {
      ca: readFileSync(join(common, "service_cert.pem"), "utf8"),
      cert: readFileSync(join(common, "user0_cert.pem"), "utf8"),
      key: readFileSync(join(common, "user0_privk.pem"), "utf8"),
    },
    serverDir: join(o.workspace, "sandbox_app_service"),
    address: `127.0.0.1:${o.port + APP_SERVER_PORT_OFFSET}`,
    packageId: packageId[1]!,
  };
}

function pidIn(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** The PID of the app server a --no-wait sandbox left (its server.pid). */
export function appServerPid(workspace: string): number | undefined {
  return pidIn(join(workspace, "sandbox_app_service", "server.pid"));
}

/** The PIDs a --no-wait sandbox left: node.pid of each node, server.pid of its app server. */
export function sandboxPids(workspace: string, nodes: number): number[] {
  const files = Array.from({ length: nodes }, (_, i) =>
    join(workspace, `sandbox_${i}`, "node.pid"),
  );
  files.push(join(workspace, "sandbox_app_service", "server.pid"));
  return files.map(pidIn).filter((p): p is number => p !== undefined);
}

/** SIGTERM, then SIGKILL after 5 s; resolves once every PID is gone. */
export async function stopPids(pids: readonly number[]): Promise<void> {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && pids.some(isAlive); i++) await new Promise((r) => setTimeout(r, 100));
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

/** member0 proposes one action (`consortia gov propose`); member0 and member1 accept it. */
export function govern(sandbox: ServiceSandbox, name: string, args: unknown): void {
  const where = ["--workspace", sandbox.workspace, "--node", sandbox.url];
  const proposed = ok(
    runCli(["gov", "propose", "--action", name, "--args", JSON.stringify(args), ...where]),
    `propose ${name}`,
  );
  voteThrough(sandbox, (JSON.parse(proposed) as { proposalId: string }).proposalId);
}

/** member0 and member1 accept a proposal (`consortia gov vote`), a majority of three. */
export function voteThrough(sandbox: ServiceSandbox, proposalId: string): void {
  const where = ["--workspace", sandbox.workspace, "--node", sandbox.url];
  const common = join(sandbox.workspace, "sandbox_common");
  let state = "";
  for (const member of ["member0", "member1"]) {
    const identity = ["--cert", join(common, `${member}_cert.pem`)];
    identity.push("--key", join(common, `${member}_privk.pem`));
    const vote = ["gov", "vote", "--proposal-id", proposalId, "--accept", ...where, ...identity];
    state = (JSON.parse(ok(runCli(vote), `vote ${proposalId}`)) as { proposalState: string })
      .proposalState;
    if (state !== "Open") break;
  }
  assert.equal(state, "Accepted", `proposal ${proposalId} was not accepted`);
}

export interface ServerRun {
  readonly child: ChildProcess;
  /** Everything it printed so far. */
  output(): string;
  stop(): Promise<number | null>;
}

/**
 * `consortia app serve --bundle BUNDLE` started by hand with the sandbox's server certificate
 * and key (or `tls`, files) and service certificate, on the address the sandbox registered; resolves once it says
 * it serves.
 */
export async function serveByHand(
  sandbox: ServiceSandbox,
  bundle: string,
  tls: { cert: string; key: string } = {
    cert: join(sandbox.serverDir, "server_cert.pem"),
    key: join(sandbox.serverDir, "server_privk.pem"),
  },
): Promise<ServerRun> {
  const packageId = sha256Hex(readFileSync(bundle));
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env["CHAINCODE_PKG_ID"];
  delete env["CHAINCODE_SERVER_ADDRESS"];
  env["CONSORTIA_APP_PACKAGE_ID"] = packageId;
  env["CONSORTIA_APP_SERVER_ADDRESS"] = sandbox.address;
  const args = ["app", "serve", "--bundle", bundle];
  args.push("--tls-cert", tls.cert, "--tls-key", tls.key);
  args.push("--service-cert", join(sandbox.workspace, "sandbox_common", "service_cert.pem"));
  const child = spawn(process.execPath, [...CLI_ARGV, ...args], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout!.on("data", (c: Buffer) => (text += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (text += c.toString("utf8")));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const run: ServerRun = {
    child,
    output: () => text,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const deadline = Date.now() + 20_000;
  while (!text.includes(`Serving package ${packageId} at ${sandbox.address}`)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await run.stop();
      assert.fail(`app serve did not start:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return run;
}
