/**
 * A real multi-node network for end-to-end tests: `consortia sandbox --no-wait` on free
 * loopback ports, with helpers to talk to its nodes over mTLS, find the primary, kill nodes by
 * PID and start extra joining nodes. `stop()` kills every process it knows and removes the
 * workspace; call it from `t.after` or `finally`.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { request, type Agent } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GovClient,
  type Action,
  type MemberSigner,
  type Proposal,
} from "../../src/cli/gov-client.js";
import { runCli, runCliAsync } from "./cli.js";
import { isProcessRunning } from "../../src/cli/process-state.js";

/** Whether a node process runs; a zombie does not (see isProcessRunning). */
export { isProcessRunning as isAlive };

const ENTRY = join(import.meta.dirname, "..", "..", "src", "cli", "entry.ts");
const TSX = import.meta.resolve("tsx");

export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface NetNode {
  readonly index: number;
  readonly port: number;
  pid: number;
  id: string;
  /** The certificate of this node's service, when it is not the sandbox's (a recovered one). */
  ca?: string;
  /** Set by Network.kill: a killed process may linger as a zombie, so pids cannot tell. */
  killed?: boolean;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A base port p with p..p+span-1 and p+100..p+100+span-1 free (RPC and node-to-node), and
 * p+offset for each of `alsoFree` (e.g. 200, a sandbox's app server).
 */
export async function freePortBlock(
  span: number,
  alsoFree: readonly number[] = [],
): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + 10 * Math.floor(Math.random() * 3000);
    let ok = true;
    for (let i = 0; i < span && ok; i++) {
      ok = (await canBind(port + i)) && (await canBind(port + 100 + i));
    }
    for (const offset of alsoFree) ok = ok && (await canBind(port + offset));
    if (ok) return port;
  }
  throw new Error("no free port block found");
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = "no attempt";
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = "not yet";
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})`);
}

export class Network {
  readonly nodes: NetNode[] = [];
  readonly extra: ChildProcess[] = [];
  readonly tls: { ca: string; cert: string; key: string };
  readonly members: MemberSigner[];
  /** Set when nodes publish their node-to-node address at basePort + this + index (a proxy). */
  nodeToNodePublishedOffset: number | undefined;

  private constructor(
    readonly workspace: string,
    readonly basePort: number,
    count: number,
  ) {
    const common = join(workspace, "sandbox_common");
    this.tls = {
      ca: readFileSync(join(common, "service_cert.pem"), "utf8"),
      cert: readFileSync(join(common, "user0_cert.pem"), "utf8"),
      key: readFileSync(join(common, "user0_privk.pem"), "utf8"),
    };
    this.members = [0, 1, 2].map((i) => ({
      certPem: readFileSync(join(common, `member${i}_cert.pem`), "utf8"),
      keyPem: readFileSync(join(common, `member${i}_privk.pem`), "utf8"),
    }));
    for (let i = 0; i < count; i++) {
      const pid = Number(readFileSync(join(workspace, `sandbox_${i}`, "node.pid"), "utf8"));
      this.nodes.push({ index: i, port: basePort + i, pid, id: "" });
    }
  }

  /** `consortia sandbox --no-wait` with `count` nodes; the service is open when this returns. */
  static async start(
    count: number,
    options: {
      electionTimeoutMs?: number;
      sigMsInterval?: number;
      spareNodes?: number;
      /**
       * Node i publishes its node-to-node address as basePort + this offset + i, where the
       * caller runs something (a proxy) that forwards to basePort + 100 + i; `proxyReady`
       * starts it once the base port is known, before any node starts.
       */
      nodeToNodeProxy?: { offset: number; proxyReady: (basePort: number) => Promise<void> };
    } = {},
  ): Promise<Network> {
    const workspace = mkdtempSync(join(tmpdir(), "consortia-net-"));
    // Two spare ports for joiners by default; more for tests that start many extra nodes.
    const span = count + Math.max(2, options.spareNodes ?? 0);
    const proxy = options.nodeToNodeProxy;
    const offsets =
      proxy === undefined ? [] : Array.from({ length: span }, (_, i) => proxy.offset + i);
    const port = await freePortBlock(span, offsets);
    const published: string[] = [];
    if (proxy !== undefined) {
      await proxy.proxyReady(port);
      published.push("--node-to-node-published-port", String(port + proxy.offset));
    }
    const run = await runCliAsync([
      "sandbox",
      "--no-wait",
      "--workspace",
      workspace,
      "--port",
      String(port),
      "--nodes",
      String(count),
      "--election-timeout",
      String(options.electionTimeoutMs ?? 1000),
      "--sig-ms-interval",
      String(options.sigMsInterval ?? 50),
      ...published,
    ]);
    if (run.status !== 0) {
      rmSync(workspace, { recursive: true, force: true });
      assert.fail(`sandbox failed:\n${run.stdout}\n${run.stderr}`);
    }
    const net = new Network(workspace, port, count);
    if (proxy !== undefined) net.nodeToNodePublishedOffset = proxy.offset;
    for (const node of net.nodes) {
      const self = JSON.parse((await net.get(node, "/node/network/nodes/self")).body) as {
        node_id: string;
      };
      node.id = self.node_id;
    }
    return net;
  }

  url(node: NetNode, path: string): string {
    return `https://127.0.0.1:${node.port}${path}`;
  }

  /** One request on a connection of its own, or on `agent`'s (one keep-alive session). */
  call(
    node: NetNode,
    method: string,
    path: string,
    body?: unknown,
    agent: Agent | false = false,
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers = text === undefined ? {} : { "content-type": "application/json" };
      const req = request(
        this.url(node, path),
        { method, headers, ...this.tls, ca: node.ca ?? this.tls.ca, agent },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (data += chunk));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, body: data, headers: res.headers }),
          );
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(text);
    });
  }

  /** GET /node/state without checking the server's certificate (a joiner's is self-signed). */
  stateOf(node: NetNode): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(
        this.url(node, "/node/state"),
        { rejectUnauthorized: false, agent: false },
        (res) => {
          let data = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (data += chunk));
          res.on("end", () => resolve((JSON.parse(data) as { state: string }).state));
        },
      );
      req.setTimeout(5_000, () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end();
    });
  }

  get(node: NetNode, path: string): Promise<Reply> {
    return this.call(node, "GET", path);
  }

  alive(): NetNode[] {
    return this.nodes.filter((n) => n.killed !== true && isProcessRunning(n.pid));
  }

  /** The primary as a majority of live nodes report it, once they agree. */
  async primary(timeoutMs = 20_000): Promise<NetNode> {
    return waitFor("a primary", timeoutMs, async () => {
      for (const node of this.alive()) {
        const reply = await this.get(node, "/node/network/nodes/primary").catch(() => null);
        if (reply?.status !== 200) continue;
        const id = (JSON.parse(reply.body) as { node_id: string }).node_id;
        const primary = this.alive().find((n) => n.id === id);
        if (primary === undefined) continue;
        const check = await this.get(primary, "/node/primary").catch(() => null);
        if (check?.status === 200) return primary;
      }
      return undefined;
    });
  }

  /** Writes a private record through `node`; returns the txId ("view.seqno"). */
  async write(node: NetNode, id: number, msg: string): Promise<string> {
    const reply = await this.call(node, "POST", "/app/log/private", { id, msg });
    assert.equal(reply.status, 200, `write ${id} via node ${node.index}: ${reply.body}`);
    return String(reply.headers["x-ms-ccf-transaction-id"]);
  }

  async status(node: NetNode, txId: string): Promise<string> {
    const reply = await this.get(node, `/app/tx?transaction_id=${txId}`);
    return (JSON.parse(reply.body) as { status: string }).status;
  }

  async waitCommitted(node: NetNode, txId: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(`${txId} Committed on node ${node.index}`, timeoutMs, async () => {
      const status = await this.status(node, txId);
      assert.notEqual(status, "Invalid", `${txId} became Invalid on node ${node.index}`);
      return status === "Committed" ? true : undefined;
    });
  }

  async read(node: NetNode, id: number): Promise<Reply> {
    return this.get(node, `/app/log/private?id=${id}`);
  }

  gov(node: NetNode): GovClient {
    return new GovClient({ url: `https://127.0.0.1:${node.port}`, caPem: node.ca ?? this.tls.ca });
  }

  kill(node: NetNode): void {
    node.killed = true;
    if (isProcessRunning(node.pid)) process.kill(node.pid, "SIGKILL");
  }

  /** sandbox_<index>: the directory of node `index` (its config, out, err and files). */
  dirOf(index: number): string {
    return join(this.workspace, `sandbox_${index}`);
  }

  /**
   * Writes sandbox_<index>/config.json, node 0's config (any sandbox has it) with `command`,
   * this index's ports and, unless given, this index's ledger and snapshot directories; returns
   * its path.
   */
  writeNodeConfig(
    index: number,
    command: Record<string, unknown>,
    dirs: { ledger?: string; snapshots?: string; readOnlyLedgers?: readonly string[] } = {},
    /** Keys added to the node's RPC interface (session and header limits, for example). */
    rpcInterface: Record<string, unknown> = {},
    /** Keys added to its node-to-node interface (a published_address, for example). */
    n2nInterface: Record<string, unknown> = {},
  ): string {
    const dir = this.dirOf(index);
    mkdirSync(dir, { recursive: true });
    const template = JSON.parse(readFileSync(join(this.dirOf(0), "config.json"), "utf8")) as Record<
      string,
      Record<string, unknown>
    >;
    const port = this.basePort + index;
    const config = {
      ...template,
      network: {
        node_to_node_interface: {
          bind_address: `127.0.0.1:${port + 100}`,
          ...(this.nodeToNodePublishedOffset !== undefined && {
            published_address: `127.0.0.1:${this.basePort + this.nodeToNodePublishedOffset + index}`,
          }),
          ...n2nInterface,
        },
        rpc_interfaces: {
          primary_rpc_interface: { bind_address: `127.0.0.1:${port}`, ...rpcInterface },
        },
      },
      command,
      ledger: {
        directory: dirs.ledger ?? join(dir, `${index}.ledger`),
        read_only_directories: dirs.readOnlyLedgers ?? [],
      },
      snapshots: { directory: dirs.snapshots ?? join(dir, `${index}.snapshots`) },
      output_files: {
        node_certificate_file: join(dir, `${index}.pem`),
        pid_file: join(dir, "node.pid"),
      },
    };
    const file = join(dir, "config.json");
    writeFileSync(file, JSON.stringify(config, null, 2));
    return file;
  }

  /** Runs `consortia node --config file` as node `index` (stdout and stderr to out and err). */
  private launch(index: number, file: string): NetNode {
    const dir = this.dirOf(index);
    const out = openSync(join(dir, "out"), "w");
    const err = openSync(join(dir, "err"), "w");
    const child = spawn(process.execPath, ["--import", TSX, ENTRY, "node", "--config", file], {
      stdio: ["ignore", out, err],
    });
    closeSync(out);
    closeSync(err);
    this.extra.push(child);
    const node: NetNode = { index, port: this.basePort + index, pid: child.pid ?? -1, id: "" };
    this.nodes.push(node);
    return node;
  }

  /**
   * Starts one more node process joining the service through `target` (a Join config modelled
   * on node 0's); returns it once its process is running. `serviceCertFile` is the service's
   * certificate (default: the sandbox's); `rpcInterface` adds keys to its RPC interface.
   */
  spawnJoiner(
    target: NetNode,
    options: {
      serviceCertFile?: string;
      rpcInterface?: Record<string, unknown>;
      n2nInterface?: Record<string, unknown>;
    } = {},
  ): NetNode {
    const index = this.nodes.length;
    const command = {
      type: "Join",
      service_certificate_file:
        options.serviceCertFile ?? join(this.workspace, "sandbox_common", "service_cert.pem"),
      join: { target_rpc_address: `127.0.0.1:${target.port}`, retry_timeout: "300ms" },
    };
    const file = this.writeNodeConfig(
      index,
      command,
      {},
      options.rpcInterface,
      options.n2nInterface,
    );
    return this.launch(index, file);
  }

  /**
   * Starts a node with command Recover on `ledgerDir` (a copy of a stopped service's ledger,
   * which it extends) and `snapshotsDir` (default: an empty one), naming `previousServiceCertFile`
   * as the previous service identity. The new service's certificate goes to
   * sandbox_<index>/service_cert.pem once the node has started; `ready()` waits for that and
   * answers the node with `ca` set to it.
   */
  /** member0 proposes `actions` through `gov`; members vote for it in turn until it is decided. */
  async decide(gov: GovClient, actions: readonly Action[]): Promise<Proposal> {
    let proposal = await gov.propose(actions, this.members[0]);
    for (const member of this.members) {
      if (proposal.proposalState !== "Open") break;
      proposal = await gov.vote(proposal.proposalId, true, member);
    }
    return proposal;
  }

  /** decide() through `via`: the proposal must end Accepted. */
  async pass(via: NetNode, actions: readonly Action[]): Promise<void> {
    const gov = this.gov(via);
    try {
      const proposal = await this.decide(gov, actions);
      assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
    } finally {
      gov.close();
    }
  }

  /** GET /gov/service/info on `node`, which must answer 200. */
  async serviceInfo(
    node: NetNode,
  ): Promise<{ status: string; recoveryCount: number; creationTransactionId: string }> {
    const reply = await this.get(node, "/gov/service/info?api-version=2024-07-01");
    assert.equal(reply.status, 200, reply.body);
    return JSON.parse(reply.body) as {
      status: string;
      recoveryCount: number;
      creationTransactionId: string;
    };
  }

  spawnRecover(options: {
    ledgerDir: string;
    previousServiceCertFile: string;
    snapshotsDir?: string;
    /** ledger.read_only_directories of the recovering node. */
    readOnlyLedgerDirs?: readonly string[];
    /**
     * Write the config as an operator would, with `consortia config init --recover` (default
     * settings otherwise), instead of from node 0's config.
     */
    viaConfigInit?: boolean;
  }): { node: NetNode; child: ChildProcess; serviceCertFile: string; ready(): Promise<NetNode> } {
    const index = this.nodes.length;
    const serviceCertFile = join(this.dirOf(index), "service_cert.pem");
    // An earlier recovery at this index left its certificate here: reading it as this one's
    // (before the node writes its own) made a loaded run wait on the wrong CA.
    rmSync(serviceCertFile, { force: true });
    const configInit = () => {
      assert.equal(options.readOnlyLedgerDirs, undefined, "config init has no read-only ledgers");
      const port = this.basePort + index;
      const run = runCli([
        ...["config", "init", "--recover", "--name", `node${index}`, "--host", "127.0.0.1"],
        ...["--bind", "127.0.0.1", "--rpc-port", String(port), "--node-port", String(port + 100)],
        ...["--previous-service-cert", options.previousServiceCertFile],
        ...["--ledger-dir", options.ledgerDir, "--service-cert", serviceCertFile],
        ...(options.snapshotsDir !== undefined ? ["--snapshots-dir", options.snapshotsDir] : []),
        ...["--dir", this.dirOf(index), "--force"],
      ]);
      assert.equal(run.status, 0, `config init --recover: ${run.stderr}`);
      return join(this.dirOf(index), "config.json");
    };
    const file =
      options.viaConfigInit === true
        ? configInit()
        : this.writeNodeConfig(
            index,
            {
              type: "Recover",
              service_certificate_file: serviceCertFile,
              recover: { previous_service_identity_file: options.previousServiceCertFile },
            },
            {
              ledger: options.ledgerDir,
              ...(options.snapshotsDir !== undefined && { snapshots: options.snapshotsDir }),
              ...(options.readOnlyLedgerDirs !== undefined && {
                readOnlyLedgers: options.readOnlyLedgerDirs,
              }),
            },
          );
    const node = this.launch(index, file);
    const child = this.extra.at(-1)!;
    const ready = async () => {
      // null once the process has exited: waiting longer cannot help.
      const pem = await waitFor(`node ${index}'s new service certificate`, 30_000, async () => {
        if (child.exitCode !== null || child.signalCode !== null) return null;
        return existsSync(serviceCertFile) ? readFileSync(serviceCertFile, "utf8") : undefined;
      });
      assert.ok(pem !== null, `node ${index} exited (${child.exitCode}):\n${this.logOf(node)}`);
      node.ca = pem;
      const self = await waitFor(`node ${index} answering`, 30_000, async () => {
        const reply = await this.get(node, "/node/network/nodes/self");
        return reply.status === 200 ? (JSON.parse(reply.body) as { node_id: string }) : undefined;
      });
      node.id = self.node_id;
      return node;
    };
    return { node, child, serviceCertFile, ready };
  }

  /** What node `node` printed so far (its out, then its err). */
  logOf(node: NetNode): string {
    const read = (name: string) => {
      const path = join(this.dirOf(node.index), name);
      return existsSync(path) ? readFileSync(path, "utf8") : "";
    };
    return read("out") + read("err");
  }

  /** SIGTERMs every live node (an orderly stop: each closes its ledger) and waits for them. */
  async terminateAll(timeoutMs = 15_000): Promise<void> {
    const live = this.alive();
    for (const node of live) process.kill(node.pid, "SIGTERM");
    await waitFor("every node stopped", timeoutMs, async () =>
      live.every((n) => !isProcessRunning(n.pid)) ? true : undefined,
    );
    for (const node of live) node.killed = true;
  }

  async stop(): Promise<void> {
    for (const node of this.nodes)
      if (isProcessRunning(node.pid)) process.kill(node.pid, "SIGKILL");
    for (const child of this.extra) child.kill("SIGKILL");
    // CONSORTIA_KEEP_WORKSPACE=1 keeps node logs and ledgers for a post-mortem.
    if (process.env["CONSORTIA_KEEP_WORKSPACE"] === "1") {
      process.stderr.write(`kept workspace ${this.workspace}\n`);
      return;
    }
    rmSync(this.workspace, { recursive: true, force: true });
  }
}
