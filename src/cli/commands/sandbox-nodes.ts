/**
 * The node processes of a sandbox, shared by `consortia sandbox` (sandbox.ts) and its disaster
 * recovery (sandbox-recover.ts): their settings, config files, spawning and stopping, the
 * proposals that pass by a majority of members, and the banner and log lines the operator sees.
 *
 * Invariant: a node stopped here is gone when stopNodes resolves (SIGTERM, then SIGKILL after
 * STOP_GRACE_MS).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isNodeError } from "../../base/errors.js";
import { CliError } from "../cli-error.js";
import { SandboxError, SandboxErrorCode } from "./sandbox-error.js";
import { ClientError } from "@consortia/client";
import { type Action, type GovClient, type MemberSigner } from "../gov-client.js";

export interface Settings {
  readonly nodes: number;
  readonly electionTimeoutMs: number;
  readonly workerThreads: number;
  readonly members: number;
  readonly users: number;
  readonly port: number;
  readonly workspace: string;
  readonly sigMsInterval: number;
  /** --curve: node_certificate.curve_id of every node (its node key and the service key). */
  readonly curveId: SandboxCurveId;
  readonly wait: boolean;
  /** --recover: recover the stopped sandbox in the workspace instead of creating one. */
  readonly recover: boolean;
  /** --js-app-bundle: the JS app deployed (set_js_app) once the service is open. */
  readonly jsAppBundle?: string;
  /** --app-service: the bundle an app server serves, registered once the service is open. */
  readonly appService?: string;
  /**
   * --node-to-node-published-port: node i's published node-to-node address is 127.0.0.1 at
   * this port + i (peers dial it instead of the bind address; a fault-injecting proxy, say).
   */
  readonly nodeToNodePublishedPort?: number;
}

/** The curves CCF allows for node and service keys, as node_certificate.curve_id spells them. */
export type SandboxCurveId = "Secp256R1" | "Secp384R1";

/** --curve's values (OpenSSL's names, as `openssl ecparam` and the CCF docs use them). */
export const SANDBOX_CURVES: Readonly<Record<string, SandboxCurveId>> = {
  secp256r1: "Secp256R1",
  secp384r1: "Secp384R1",
};

export interface NodeProcess {
  readonly index: number;
  readonly child: ChildProcess;
  readonly dir: string;
  /** Resolves once the process has exited (or failed to spawn). */
  readonly exited: Promise<string>;
  /** How log lines name it and the file its PID goes to with --no-wait (default: a node's). */
  readonly label?: string;
  readonly pidFile?: string;
}

const labelOf = (p: NodeProcess): string => p.label ?? `Node [${p.index}]`;

const STOP_GRACE_MS = 5_000;

export function log(line: string): void {
  const time = new Date().toISOString().slice(11, 23);
  process.stdout.write(`[${time}] ${line}\n`);
}

/** --no-wait: leave the nodes running; otherwise run until SIGINT/SIGTERM, then stop them. */
export async function runUntilStopped(
  nodes: readonly NodeProcess[],
  settings: Settings,
  stop: Promise<string>,
): Promise<void> {
  if (!settings.wait) {
    for (const node of nodes) {
      writeFileSync(join(node.dir, node.pidFile ?? "node.pid"), `${node.child.pid}\n`);
      node.child.unref();
      log(`${labelOf(node)} is running as PID ${node.child.pid} (--no-wait)`);
    }
    log("Stop them with kill, using the PIDs above or the node.pid (server.pid) files");
    return;
  }
  const signal = await stop;
  log(`${signal} received: stopping the network`);
  for (const line of await stopNodes(nodes)) log(line);
}

/** SIGINT/SIGTERM as a promise, installed before anything starts so no signal is lost. */
export function stopSignal(): { promise: Promise<string>; dispose: () => void } {
  let fire: (signal: string) => void = () => {};
  const promise = new Promise<string>((r) => (fire = r));
  const onInt = () => fire("SIGINT");
  const onTerm = () => fire("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return {
    promise,
    dispose: () => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
    },
  };
}

/** Node `index`'s config.json in `dir`: Start (0) or Join (others), unless `command` is given. */
export function writeNodeConfig(
  index: number,
  dir: string,
  common: string,
  constitutionFiles: readonly string[],
  settings: Settings,
  command?: Record<string, unknown>,
): string {
  mkdirSync(dir, { recursive: true });
  const members = Array.from({ length: settings.members }, (_, i) => ({
    certificate_file: join(common, `member${i}_cert.pem`),
    encryption_public_key_file: join(common, `member${i}_enc_pubk.pem`),
  }));
  const serviceCertificateFile = join(common, "service_cert.pem");
  const defaultCommand =
    index === 0
      ? {
          type: "Start",
          service_certificate_file: serviceCertificateFile,
          start: {
            constitution_files: constitutionFiles,
            members,
            service_configuration: { recovery_threshold: 1 },
            // CCF's sandbox (its test infra) names the COSE ledger signatures' issuer and
            // subject so; a node's own default is CCF's, both empty.
            cose_signatures: { issuer: "service.example.com", subject: "ledger.signature" },
          },
        }
      : {
          type: "Join",
          service_certificate_file: serviceCertificateFile,
          join: { target_rpc_address: `127.0.0.1:${settings.port}`, retry_timeout: "500ms" },
        };
  const config = {
    enclave: { platform: "Virtual", type: "Release" },
    network: {
      node_to_node_interface: {
        bind_address: `127.0.0.1:${settings.port + 100 + index}`,
        ...(settings.nodeToNodePublishedPort !== undefined && {
          published_address: `127.0.0.1:${settings.nodeToNodePublishedPort + index}`,
        }),
      },
      rpc_interfaces: {
        primary_rpc_interface: { bind_address: `127.0.0.1:${settings.port + index}` },
      },
    },
    command: command ?? defaultCommand,
    ledger: { directory: join(dir, `${index}.ledger`) },
    snapshots: { directory: join(dir, `${index}.snapshots`) },
    ledger_signatures: { delay: `${settings.sigMsInterval}ms` },
    node_certificate: { curve_id: settings.curveId },
    worker_threads: settings.workerThreads,
    consensus: {
      message_timeout: `${Math.max(10, Math.floor(settings.electionTimeoutMs / 10))}ms`,
      election_timeout: `${settings.electionTimeoutMs}ms`,
    },
    output_files: {
      node_certificate_file: join(dir, `${index}.pem`),
      pid_file: join(dir, "node.pid"),
    },
  };
  const file = join(dir, "config.json");
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
  return file;
}

/** `consortia node --config FILE` as a child process (spawnCli). */
export function spawnNode(
  index: number,
  dir: string,
  configFile: string,
  detached: boolean,
): NodeProcess {
  const { child, exited } = spawnCli({ args: ["node", "--config", configFile], dir, detached });
  return { index, child, dir, exited };
}

export interface CliSpawn {
  /** The CLI's arguments, e.g. ["node", "--config", file]. */
  readonly args: readonly string[];
  /** Where its stdout and stderr go, as the files out and err. */
  readonly dir: string;
  readonly detached: boolean;
  /** Its whole environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * This same CLI as a child process: process.argv[1] is bin/consortia (bundle) or
 * src/cli/entry.ts (tsx), and execArgv carries the loader (`--import tsx`) in the latter case.
 */
export function spawnCli(o: CliSpawn): { child: ChildProcess; exited: Promise<string> } {
  const script = process.argv[1];
  if (script === undefined) throw new CliError("cannot tell how this CLI was started");
  const execArgv = process.execArgv.filter((a) => !/^--(inspect|test)/.test(a));
  const out = openSync(join(o.dir, "out"), "w");
  const err = openSync(join(o.dir, "err"), "w");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...execArgv, script, ...o.args], {
      stdio: ["ignore", out, err],
      detached: o.detached,
      env: o.env ?? process.env,
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const exited = new Promise<string>((resolveExit) => {
    child.once("exit", (code, signal) =>
      resolveExit(signal !== null ? `signal ${signal}` : `code ${code ?? "?"}`),
    );
    child.once("error", (e) => resolveExit(`spawn error: ${e.message}`));
  });
  return { child, exited };
}

/** The first member proposes `actions`; a strict majority accepts (else SandboxError says why). */
export async function proposeAndPass(
  client: GovClient,
  members: readonly MemberSigner[],
  actions: readonly Action[],
): Promise<void> {
  const [proposer] = members;
  if (proposer === undefined) {
    throw new SandboxError({ code: SandboxErrorCode.MissingState }, "no member to propose");
  }
  let proposal = await retryWhileNoSignature(() => client.propose(actions, proposer));
  const majority = Math.floor(members.length / 2) + 1;
  for (const member of members.slice(0, majority)) {
    if (proposal.proposalState !== "Open") break;
    proposal = await client.vote(proposal.proposalId, true, member);
  }
  if (proposal.proposalState !== "Accepted") {
    const why = proposal.failure?.reason ?? "";
    throw new SandboxError(
      {
        code: SandboxErrorCode.ProposalFailed,
        proposalId: proposal.proposalId,
        state: proposal.proposalState,
      },
      `proposal ${proposal.proposalId} ended ${proposal.proposalState} ${why}`,
    );
  }
}

/** :update answers 500 until the node has emitted its first signature; give it a few seconds. */
export async function retryWhileNoSignature<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return await call();
    } catch (err: unknown) {
      const noSignatureYet = err instanceof ClientError && err.type.status === 500;
      if (!noSignatureYet || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export function printBanner(common: string, settings: Settings): void {
  const url = `https://127.0.0.1:${settings.port}`;
  log("Started Consortia network with the following nodes:");
  for (let i = 0; i < settings.nodes; i++) {
    log(`  Node [${i}] = https://127.0.0.1:${settings.port + i}`);
  }
  log("You can now issue business transactions to the built-in logging application");
  log(`Keys and certificates have been copied to the common folder: ${common}`);
  if (settings.users > 0) {
    log(
      `  curl ${url}/app/log/private -X POST --cacert ${join(common, "service_cert.pem")} ` +
        `--cert ${join(common, "user0_cert.pem")} --key ${join(common, "user0_privk.pem")} ` +
        `-H "Content-Type: application/json" --data-binary '{"id": 42, "msg": "hello world"}'`,
    );
  }
  log("See docs/ and `consortia gov --help` for governance commands");
  if (settings.wait) log("Press Ctrl+C to shutdown the network");
}

/** Stops every node, in parallel. */
export function stopNodes(nodes: readonly NodeProcess[]): Promise<string[]> {
  return Promise.all(nodes.map(stopNode));
}

/** SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves once the process is gone. */
async function stopNode(node: NodeProcess): Promise<string> {
  const { child } = node;
  const name = labelOf(node);
  if (child.exitCode !== null || child.signalCode !== null) return `${name} had already stopped`;
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const graceful = await Promise.race([
    node.exited.then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), STOP_GRACE_MS))),
  ]);
  clearTimeout(timer);
  if (graceful) return `${name} stopped`;
  child.kill("SIGKILL");
  await node.exited;
  return `${name} did not stop within ${STOP_GRACE_MS} ms and was killed`;
}

/** The last lines of the node's err and out files, for a failed start. */
export function tails(dir: string): string {
  const tail = (name: string): string => {
    let text = "";
    try {
      text = readFileSync(join(dir, name), "utf8");
    } catch (err: unknown) {
      if (!isNodeError(err)) throw err;
      return `(no ${name} file)`;
    }
    const lines = text.trimEnd().split("\n").slice(-20);
    return `--- ${join(dir, name)} (last ${lines.length} lines) ---\n${lines.join("\n")}`;
  };
  return `${tail("err")}\n${tail("out")}`;
}
