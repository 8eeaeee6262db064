/**
 * Fault-injecting TCP proxies between the nodes of a chaos run (docs/testing.md "npm run
 * chaos"). Node i publishes its node-to-node address as a proxy port (`--node-to-node-published-
 * port`), and the proxy forwards to node i's real node-to-node port. Every connection a proxy
 * accepts is attributed to the node process that dialled it: the dialler's socket is found in
 * /proc/net/tcp by its port, and the process by the socket's inode among /proc/<pid>/fd (Linux;
 * this runner's own children, so no privilege is needed). That makes partitions per directed
 * link (from node a to node b) possible with one published address per node.
 *
 * Faults: a blocked link's connections are destroyed and new ones refused (the node redials,
 * Raft sees lost messages); a delayed link holds each chunk `delayMs` before passing it on, in
 * order. A connection whose dialler cannot be identified is treated as blocked while any
 * partition is on (fail closed), and passed otherwise.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";

export interface LinkProxiesOptions {
  /** Proxy for node i listens on basePort + proxyOffset + i, forwards to basePort + 100 + i. */
  readonly basePort: number;
  readonly proxyOffset: number;
  readonly count: number;
  /** The current pid of node `index`, or undefined when it is not running. */
  readonly pidOf: (index: number) => number | undefined;
  readonly nodeCount: () => number;
}

interface Link {
  readonly from: number | null;
  readonly to: number;
  readonly client: Socket;
  readonly upstream: Socket;
}

/** The inode of the loopback TCP socket with local port `port` talking to `remotePort`. */
function socketInode(port: number, remotePort: number): string | undefined {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      if (f[1]!.endsWith(`:${hex(port)}`) && f[2]!.endsWith(`:${hex(remotePort)}`)) return f[9];
    }
  }
  return undefined;
}

function pidHoldsInode(pid: number, inode: string): boolean {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return false;
  }
  const target = `socket:[${inode}]`;
  for (const fd of fds) {
    try {
      if (readlinkSync(`${dir}/${fd}`) === target) return true;
    } catch {
      // The descriptor closed while we looked; keep looking at the others.
      continue;
    }
  }
  return false;
}

export class LinkProxies {
  readonly #servers: Server[] = [];
  readonly #links = new Set<Link>();
  /** Directed links "a>b" whose traffic is cut. */
  readonly #blocked = new Set<string>();
  #delayMs = 0;
  /** Connections accepted, refused (a cut link) and not attributed to a node. */
  accepted = 0;
  refused = 0;
  unidentified = 0;

  constructor(readonly options: LinkProxiesOptions) {}

  async start(): Promise<void> {
    for (let i = 0; i < this.options.count; i++) {
      const server = createServer((client) => this.#accept(i, client));
      server.on("error", () => undefined);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(this.options.basePort + this.options.proxyOffset + i, "127.0.0.1", resolve);
      });
      this.#servers.push(server);
    }
  }

  /** Cuts every link from `a` to `b` and from `b` to `a`. */
  cut(a: number, b: number): void {
    this.#blocked.add(`${a}>${b}`);
    this.#blocked.add(`${b}>${a}`);
    for (const link of this.#links) {
      if (link.from !== null && this.#isBlocked(link.from, link.to)) this.#end(link);
      else if (link.from === null) this.#end(link);
    }
  }

  /** Cuts `node` off from every other node. */
  isolate(node: number): void {
    for (let other = 0; other < this.options.nodeCount(); other++) {
      if (other !== node) this.cut(node, other);
    }
  }

  heal(): void {
    this.#blocked.clear();
    this.#delayMs = 0;
  }

  /** Every chunk on every link waits `ms` (0: none). */
  delay(ms: number): void {
    this.#delayMs = ms;
  }

  get partitioned(): boolean {
    return this.#blocked.size > 0;
  }

  async close(): Promise<void> {
    for (const link of this.#links) this.#end(link);
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))));
  }

  #isBlocked(from: number, to: number): boolean {
    return this.#blocked.has(`${from}>${to}`);
  }

  #identify(client: Socket): number | null {
    const inode = socketInode(client.remotePort ?? 0, client.localPort ?? 0);
    if (inode === undefined) return null;
    for (let i = 0; i < this.options.nodeCount(); i++) {
      const pid = this.options.pidOf(i);
      if (pid !== undefined && pidHoldsInode(pid, inode)) return i;
    }
    return null;
  }

  #accept(to: number, client: Socket): void {
    this.accepted += 1;
    const from = this.#identify(client);
    if (from === null) this.unidentified += 1;
    const blocked = from === null ? this.partitioned : this.#isBlocked(from, to);
    if (blocked) {
      this.refused += 1;
      client.destroy();
      return;
    }
    const upstream = connect(this.options.basePort + 100 + to, "127.0.0.1");
    const link: Link = { from, to, client, upstream };
    this.#links.add(link);
    this.#pipe(client, upstream);
    this.#pipe(upstream, client);
    for (const s of [client, upstream]) {
      s.on("error", () => this.#end(link));
      s.on("close", () => this.#end(link));
    }
  }

  /**
   * Forwards `source` to `sink`, each chunk after the current delay and strictly in order: a
   * chunk that arrives while earlier ones still wait queues behind them even once the delay is
   * over (TLS records reordered by the proxy would be a fault of the tool, not of the network).
   */
  #pipe(source: Socket, sink: Socket): void {
    const queue: { chunk: Buffer; atMs: number }[] = [];
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      timer = null;
      while (queue.length > 0 && queue[0]!.atMs <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (!sink.destroyed) sink.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(flush, queue[0]!.atMs - Date.now());
    };
    source.on("data", (chunk: Buffer) => {
      if (this.#delayMs === 0 && queue.length === 0) {
        sink.write(chunk);
        return;
      }
      queue.push({ chunk, atMs: Date.now() + this.#delayMs });
      if (timer === null) timer = setTimeout(flush, queue[0]!.atMs - Date.now());
    });
    source.on("close", () => {
      if (timer !== null) clearTimeout(timer);
    });
  }

  #end(link: Link): void {
    this.#links.delete(link);
    link.client.destroy();
    link.upstream.destroy();
  }
}
