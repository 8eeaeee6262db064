/**
 * The node's listening sockets, bound first of all, before the ledger, the certificate files or
 * the pid file are written: a port that another process holds fails the start while nothing is
 * on disk, so the operator frees it (or fixes the config) and starts the same node again.
 *
 * An interface configured with port 0 keeps the port the OS picked, so the address the node
 * publishes is the one it holds, with no window in which another process can take it.
 *
 * The servers take their sockets over once the node serves (NodeHost.serve): Node's
 * `server.listen(handle)` listens on a socket that is already bound. A joiner's rpc sockets
 * serve its pending state first, and are bound again for the node (rebindRpc). Until a server
 * takes a socket, its connections are held unread and then handed to the server
 * (http/held-listener.ts): a client that connects while the node starts waits for its answer.
 */
import { HeldListener } from "../../http/held-listener.js";
import type { NodeConfig, NetAddress } from "../config/config.js";
import { formatAddress } from "../config/config-values.js";
import { StartupError, StartupErrorCode } from "./startup-checks.js";

type Network = NodeConfig["network"];

/** One bound socket: the interface's key in the config, for errors and logs. */
interface Bound {
  readonly key: string;
  readonly listener: HeldListener;
  taken: boolean;
}

export class ListeningSockets {
  private constructor(
    /** The config with every port 0 replaced by the port bound. */
    readonly config: NodeConfig,
    private readonly nodeToNode: Bound,
    private readonly rpc: Map<string, Bound>,
  ) {}

  /**
   * Binds every rpc interface, then the node-to-node interface. The first that cannot listen
   * closes those already bound and fails the start with a StartupError naming the interface,
   * its address and the OS error (EADDRINUSE, EADDRNOTAVAIL, EACCES).
   */
  static async bind(config: NodeConfig): Promise<ListeningSockets> {
    const network = config.network;
    const bound: Bound[] = [];
    try {
      const rpc = new Map<string, Bound>();
      const rpcInterfaces: Record<string, Network["rpcInterfaces"][string]> = {};
      for (const [name, i] of Object.entries(network.rpcInterfaces)) {
        const key = `network.rpc_interfaces.${name}`;
        const socket = await bindOne(key, i.bindAddress, bound);
        rpc.set(name, socket.bound);
        rpcInterfaces[name] = { ...i, ...addressesOf(i, socket.port) };
      }
      const n2n = network.nodeToNodeInterface;
      const n2nSocket = await bindOne("network.node_to_node_interface", n2n.bindAddress, bound);
      const resolved: NodeConfig = {
        ...config,
        network: { nodeToNodeInterface: addressesOf(n2n, n2nSocket.port), rpcInterfaces },
      };
      return new ListeningSockets(resolved, n2nSocket.bound, rpc);
    } catch (e) {
      await Promise.all(bound.map((b) => b.listener.close()));
      throw e;
    }
  }

  /** The node-to-node interface's socket, for its server to adopt (once). */
  takeNodeToNode(): HeldListener {
    return take(this.nodeToNode);
  }

  /** The socket of rpc interface `name`, for its server to adopt (once). */
  takeRpc(name: string): HeldListener {
    const bound = this.rpc.get(name);
    if (bound === undefined) throw new RangeError(`no socket for rpc interface ${name}`);
    return take(bound);
  }

  /**
   * Binds again, at the same addresses, the rpc sockets that servers took and have closed: a
   * joiner serves its rpc interfaces while it waits to be trusted (join/pending-server.ts),
   * then the node serves them. The two are a moment apart, and nothing was written between.
   */
  async rebindRpc(): Promise<void> {
    for (const [name, taken] of this.rpc) {
      if (!taken.taken) continue;
      const address = this.config.network.rpcInterfaces[name]!.bindAddress;
      this.rpc.set(name, (await bindOne(taken.key, address, [])).bound);
    }
  }

  /** Closes the sockets that no server took over (a start that failed). */
  async close(): Promise<void> {
    const left = [this.nodeToNode, ...this.rpc.values()].filter((b) => !b.taken);
    for (const b of left) b.taken = true;
    await Promise.all(left.map((b) => b.listener.close()));
  }
}

function take(bound: Bound): HeldListener {
  if (bound.taken) throw new RangeError(`the socket of ${bound.key} was already taken`);
  bound.taken = true;
  return bound.listener;
}

/** A published port 0 is the port bound (a published host names the node whatever its port). */
function addressesOf(
  i: { readonly bindAddress: NetAddress; readonly publishedAddress: NetAddress },
  port: number,
): { bindAddress: NetAddress; publishedAddress: NetAddress } {
  const published = i.publishedAddress;
  return {
    bindAddress: { ...i.bindAddress, port },
    publishedAddress: published.port === 0 ? { ...published, port } : published,
  };
}

async function bindOne(
  key: string,
  address: NetAddress,
  bound: Bound[],
): Promise<{ bound: Bound; port: number }> {
  const listener = await HeldListener.bind(address.host, address.port).catch((e: unknown) => {
    throw cannotListen(key, address, e);
  });
  const entry = { key, listener, taken: false };
  bound.push(entry);
  return { bound: entry, port: listener.port };
}

/** The OS error of a failed listen as a StartupError; anything else as it was. */
function cannotListen(key: string, address: NetAddress, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (!(e instanceof Error) || code === undefined) return e;
  const hint = code === "EADDRINUSE" ? ": another process (or interface) holds that port" : "";
  return new StartupError(
    { code: StartupErrorCode.CannotListen },
    `cannot listen on ${formatAddress(address)} (${code}) for ${key}${hint}`,
  );
}
