/**
 * Two interfaces of one node (rpc interfaces, the node-to-node interface) cannot listen on one
 * port: the second would fail with EADDRINUSE once the first is up. The config names both, so
 * `consortia node --check` and a start report it before anything is bound or written.
 *
 * Linux refuses a port on an address when a wildcard of the same port is bound (0.0.0.0, and
 * `::`, which is dual-stack), and a wildcard when an address holds the port; so one port clashes
 * when the hosts are equal or either is a wildcard. Port 0 (any free port) never clashes.
 */
import { isIP, SocketAddress } from "node:net";
import type { z } from "zod";
import {
  ConfigErrorCode,
  fail,
  formatAddress,
  formatKey,
  type NetAddress,
} from "./config-values.js";

interface Bindable {
  readonly bindAddress: NetAddress;
}

/** One listening interface: its key path under `network`, and its bind address. */
interface Listener {
  readonly path: readonly string[];
  readonly address: NetAddress;
}

/**
 * The network section in camelCase, with a BadAddress issue on the second of the first two
 * interfaces that would listen on one port.
 */
export function withDistinctPorts<N extends Bindable, R extends Bindable>(
  o: { readonly node_to_node_interface: N; readonly rpc_interfaces: Record<string, R> },
  ctx: z.RefinementCtx,
): { nodeToNodeInterface: N; rpcInterfaces: Record<string, R> } {
  const listeners: Listener[] = Object.entries(o.rpc_interfaces).map(([name, i]) => ({
    path: ["rpc_interfaces", name, "bind_address"],
    address: i.bindAddress,
  }));
  const n2n = o.node_to_node_interface;
  listeners.push({ path: ["node_to_node_interface", "bind_address"], address: n2n.bindAddress });
  const clash = firstClash(listeners);
  if (clash !== null) {
    const [first, second] = clash;
    const message =
      `${formatAddress(second.address)} takes the port of ` +
      `${formatKey(["network", ...first.path])} (${formatAddress(first.address)}): ` +
      "each interface needs a port of its own";
    fail(ctx, ConfigErrorCode.BadAddress, message, [...second.path]);
  }
  return { nodeToNodeInterface: n2n, rpcInterfaces: o.rpc_interfaces };
}

function firstClash(listeners: readonly Listener[]): [Listener, Listener] | null {
  for (let j = 1; j < listeners.length; j++) {
    for (let i = 0; i < j; i++) {
      if (clashes(listeners[i]!.address, listeners[j]!.address)) {
        return [listeners[i]!, listeners[j]!];
      }
    }
  }
  return null;
}

/** Whether binding both addresses would fail: see the module comment. */
export function clashes(a: NetAddress, b: NetAddress): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const [hostA, hostB] = [canonicalHost(a.host), canonicalHost(b.host)];
  return hostA === hostB || isWildcard(hostA) || isWildcard(hostB);
}

/** IPv6 addresses in their shortest form (`0:0::0` is `::`), names in lower case. */
function canonicalHost(host: string): string {
  if (isIP(host) === 6) return new SocketAddress({ address: host, family: "ipv6" }).address;
  return host.toLowerCase();
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}
