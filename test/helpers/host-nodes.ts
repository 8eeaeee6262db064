/**
 * Nodes as an operator runs them on separate hosts, for end-to-end tests: each node's config is
 * written by `consortia config init` (never by hand), and the node runs as `consortia node
 * --config FILE`, optionally under a prefix command (`ip netns exec NS` for a network namespace).
 * Nothing here assumes loopback: callers pass the host each node publishes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../src/node/startup/startup-checks.js";
import { CLI_ARGV, runCliAsync } from "./cli.js";
import { httpsRequest, type Reply } from "./https.js";

export interface HostNode {
  readonly name: string;
  readonly dir: string;
  readonly configFile: string;
  /** `https://host:port` of the node's published RPC address. */
  readonly url: string;
  readonly child: ChildProcess;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

export interface HostNodeSpec {
  readonly name: string;
  /** Where the node's config, ledger and logs go (config init --dir). */
  readonly dir: string;
  /** The published host, as peers and clients reach it. */
  readonly host: string;
  readonly rpcPort: number;
  readonly nodePort: number;
  /** Further `config init` arguments: --start/--join, --peer, --member, --bind, --san... */
  readonly args: readonly string[];
  /** A command the node runs under, e.g. ["ip", "netns", "exec", "ns1"]. */
  readonly prefix?: readonly string[];
}

/** `host:port` with IPv6 hosts in brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A TCP port free on every address of `host` now ("0.0.0.0" or "::" for all). */
export const freePortOn = freePort;

/** Whether this machine can listen on `host` (e.g. "::1" where IPv6 is disabled: no). */
export function canListenOn(host: string): Promise<boolean> {
  return freePortOn(host).then(
    () => true,
    () => false,
  );
}

/** Writes the node's config with `consortia config init`, then starts `consortia node`. */
export async function startHostNode(spec: HostNodeSpec): Promise<HostNode> {
  const init = await runCliAsync([
    ...["config", "init", "--name", spec.name, "--host", spec.host, "--dir", spec.dir],
    ...["--rpc-port", String(spec.rpcPort), "--node-port", String(spec.nodePort)],
    ...spec.args,
  ]);
  if (init.status !== 0) throw new Error(`config init ${spec.name}: ${init.stderr}`);
  const configFile = join(spec.dir, "config.json");
  const out = openSync(join(spec.dir, "out"), "a");
  const argv = [
    ...(spec.prefix ?? []),
    process.execPath,
    ...CLI_ARGV,
    "node",
    "--config",
    configFile,
  ];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", out, out] });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `https://${hostPort(spec.host, spec.rpcPort)}`;
  return { name: spec.name, dir: spec.dir, configFile, url, child, exited };
}

/** The node's output so far (stdout and stderr). */
export function hostNodeLog(node: Pick<HostNode, "dir">): string {
  const file = join(node.dir, "out");
  return existsSync(file) ? readFileSync(file, "utf8") : "";
}

/** GET `path` from the node at its published address, trusting only `ca`. */
export function getFrom(node: Pick<HostNode, "url">, ca: string, path: string): Promise<Reply> {
  return httpsRequest(`${node.url}${path}`, { ca }, "GET");
}

/**
 * Waits until the node answers /node/state with `state`; fails with its log after `timeoutMs`,
 * or at once when its process (if this one started it) has exited.
 */
export async function waitForState(
  node: Pick<HostNode, "name" | "dir" | "url"> & { readonly child?: HostNode["child"] },
  ca: string,
  state: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (node.child !== undefined && node.child.exitCode !== null) break;
    try {
      const reply = await getFrom(node, ca, "/node/state");
      if (reply.status === 200 && JSON.parse(reply.body).state === state) return;
      last = `${reply.status} ${reply.body}`;
    } catch (err: unknown) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${node.name} not ${state} (${last}); its log:\n${hostNodeLog(node)}`);
}

/** Stops the node with SIGTERM (SIGKILL after 5 s) and waits for it to exit. */
export async function stopHostNode(node: HostNode): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill("SIGTERM");
  const timer = setTimeout(() => node.child.kill("SIGKILL"), 5_000);
  await node.exited;
  clearTimeout(timer);
}
