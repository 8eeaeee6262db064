/**
 * Where each node of the network answers, for the console's per-node calls: the published RPC
 * address of each node in GET /node/network/nodes, as the network itself reports it (so the
 * console only ever calls nodes of the pinned service). Read again when older than
 * DIRECTORY_TTL_MS or when a node is not in it.
 */
import { ConsoleError, ConsoleErrorCode } from "./console-error.js";
import type { NetworkClient } from "./network-client.js";

const DIRECTORY_TTL_MS = 5_000;

interface NodeListing {
  readonly nodes?: readonly {
    readonly node_id?: unknown;
    readonly rpc_interfaces?: Record<
      string,
      { published_address?: unknown; bind_address?: unknown }
    >;
  }[];
}

export class NodeDirectory {
  private urls = new Map<string, string>();
  private readAtMs = -Infinity;

  constructor(private readonly network: NetworkClient) {}

  /** https://<published address> of node `nodeId`; ResourceNotFound when it is not a node. */
  async urlOf(nodeId: string): Promise<string> {
    const fresh = performance.now() - this.readAtMs < DIRECTORY_TTL_MS;
    if (!fresh || !this.urls.has(nodeId)) await this.refresh();
    const url = this.urls.get(nodeId);
    if (url === undefined) {
      throw new ConsoleError(
        ConsoleErrorCode.ResourceNotFound,
        `node ${nodeId} is not in the network's node list`,
      );
    }
    return url;
  }

  private async refresh(): Promise<void> {
    const response = await this.network.send({
      method: "GET",
      pathAndQuery: "/node/network/nodes",
    });
    if (response.status !== 200) {
      throw new ConsoleError(
        ConsoleErrorCode.NetworkUnreachable,
        `the network answered ${response.status} to GET /node/network/nodes`,
      );
    }
    let listing: NodeListing;
    try {
      listing = JSON.parse(new TextDecoder().decode(response.body)) as NodeListing;
    } catch (err: unknown) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new ConsoleError(
        ConsoleErrorCode.NetworkUnreachable,
        "the network's node list is not JSON",
      );
    }
    const urls = new Map<string, string>();
    const nodes: NodeListing["nodes"] = Array.isArray(listing?.nodes) ? listing.nodes : [];
    for (const node of nodes ?? []) {
      const first = Object.values(node?.rpc_interfaces ?? {})[0];
      const address = first?.published_address ?? first?.bind_address;
      if (node === null || typeof node !== "object") continue;
      if (typeof node.node_id === "string" && typeof address === "string") {
        urls.set(node.node_id, `https://${address}`);
      }
    }
    this.urls = urls;
    this.readAtMs = performance.now();
  }
}
