/**
 * Startup helpers of a node (NodeHost.start and NodeHost.join): checks before anything is
 * written (empty ledger directory, interfaces that can listen), concrete ports for interfaces
 * configured with port 0, the network part of the node's nodes-table record, the ledger secrets
 * of a join answer, and the minimal HTTPS service of a joiner waiting to be trusted.
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { KeyObject } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import { fromBase64, fromUtf8, toHex } from "../base/bytes.js";
import type { Seqno } from "../base/ids.js";
import { decodeEntry } from "../ledger/entry-format.js";
import { parseReceipt, verifyReceipt } from "../ledger/receipt.js";
import { snapshotDigest, splitSnapshotFile } from "../ledger/snapshot.js";
import { listCommittedSnapshots } from "./snapshots/snapshot-files.js";
import { ecPrivateKeyPem } from "../crypto/identity.js";
import { LedgerSecrets } from "../ledger/ledger-secrets.js";
import { Router } from "../http/router.js";
import { createRpcServer, type RpcServer } from "../http/server.js";
import { errorBody, HttpErrorCode } from "../http/errors.js";
import type { NodeInfo } from "../gov/tables.js";
import type { NodeConfig } from "./config/config.js";
import type { NodeStartupState } from "./frontends/node-context.js";
import { formatAddress, type NetAddress } from "./config/config-values.js";
import type { NetworkInfo } from "./join/join-endpoint.js";

export function checkEmptyLedger(directory: string): void {
  mkdirSync(directory, { recursive: true });
  const existing = readdirSync(directory).filter((f) => f.startsWith("ledger_"));
  if (existing.length > 0) {
    throw new Error(
      `ledger directory ${directory} already holds a ledger (${existing[0]}): Start and Join ` +
        "need an empty ledger directory (a node's identity is never reused; Recover, to " +
        "restart from a ledger, arrives with issue #5)",
    );
  }
}

export function secretsOf(info: NetworkInfo): LedgerSecrets {
  const list = Object.entries(info.ledger_secrets).map(([from, s]) => {
    const key = fromBase64(s.raw_key);
    if (key === null || key.byteLength !== 32) throw new Error(`ledger secret ${from} is invalid`);
    return { fromSeqno: Number(from), key };
  });
  list.sort((a, b) => a.fromSeqno - b.fromSeqno);
  return LedgerSecrets.fromList(list);
}

/** node_info_network as the join request and the nodes table record it. */
export function nodeInfoNetwork(
  config: NodeConfig,
): Pick<NodeInfo, "node_to_node_interface" | "rpc_interfaces"> {
  const net = config.network;
  const rpcInterfaces: NodeInfo["rpc_interfaces"] = {};
  for (const [name, rpc] of Object.entries(net.rpcInterfaces)) {
    rpcInterfaces[name] = {
      bind_address: formatAddress(rpc.bindAddress),
      published_address: formatAddress(rpc.publishedAddress),
      protocol: rpc.protocol,
      app_protocol: rpc.appProtocol,
    };
  }
  return {
    node_to_node_interface: {
      bind_address: formatAddress(net.nodeToNodeInterface.bindAddress),
      published_address: formatAddress(net.nodeToNodeInterface.publishedAddress),
    },
    rpc_interfaces: rpcInterfaces,
  };
}

/**
 * The rpc interfaces of a joiner that is not Trusted yet: GET /node/state answers its state;
 * everything else is 503 NodeCannotHandleRequest (the node holds no service state yet).
 */
export async function servePending(
  config: NodeConfig,
  certPem: string,
  privateKey: KeyObject,
  state: () => { node_id: string; state: NodeStartupState },
): Promise<RpcServer[]> {
  const router = new Router();
  router.add("GET", "/node/state", () => ({
    status: 200,
    body: { ...state(), last_signed_seqno: 0, startup_seqno: 0, stop_notice: false },
  }));
  const servers: RpcServer[] = [];
  for (const rpc of Object.values(config.network.rpcInterfaces)) {
    servers.push(
      await createRpcServer({
        host: rpc.bindAddress.host,
        port: rpc.bindAddress.port,
        certPem,
        keyPem: ecPrivateKeyPem(privateKey),
        maxBodyBytes: rpc.http.maxBodySizeBytes,
        router,
        closeGraceMs: 0,
        onRequest: async (request, next) => {
          if (request.path === "/node/state") return next(request);
          return {
            status: 503,
            body: errorBody(
              HttpErrorCode.NodeCannotHandleRequest,
              "This node is joining the service and cannot handle requests yet.",
            ),
          };
        },
      }),
    );
  }
  return servers;
}

/** A port the OS says is free now (for interfaces configured with port 0). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Picks concrete ports for interfaces configured with port 0, so the addresses this node
 * publishes in the nodes table (where peers and clients find it) are real.
 */
export async function resolvePorts(config: NodeConfig): Promise<NodeConfig> {
  const resolve = async (bind: NetAddress, published: NetAddress) => {
    if (bind.port !== 0) return { bind, published };
    const port = await freePort(bind.host);
    return {
      bind: { ...bind, port },
      published: published.port === 0 ? { ...published, port } : published,
    };
  };
  const n2n = config.network.nodeToNodeInterface;
  const n2nResolved = await resolve(n2n.bindAddress, n2n.publishedAddress);
  const rpcInterfaces: Record<string, NodeConfig["network"]["rpcInterfaces"][string]> = {};
  for (const [name, rpc] of Object.entries(config.network.rpcInterfaces)) {
    const r = await resolve(rpc.bindAddress, rpc.publishedAddress);
    rpcInterfaces[name] = { ...rpc, bindAddress: r.bind, publishedAddress: r.published };
  }
  return {
    ...config,
    network: {
      nodeToNodeInterface: {
        bindAddress: n2nResolved.bind,
        publishedAddress: n2nResolved.published,
      },
      rpcInterfaces,
    },
  };
}

export async function probeInterfaces(config: NodeConfig): Promise<void> {
  // Fail before writing a ledger when an interface cannot listen: a retry then just works.
  for (const rpc of Object.values(config.network.rpcInterfaces)) {
    await probeListen(rpc.bindAddress);
  }
  await probeListen(config.network.nodeToNodeInterface.bindAddress);
}

/** Listens on `address` and closes again; rejects with the OS error (EADDRINUSE, ...). */
export function probeListen(address: { host: string; port: number }): Promise<void> {
  if (address.port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(address.port, address.host, () => server.close(() => resolve()));
  });
}

/** A committed snapshot found on disk, checked as far as possible without the ledger secret. */
export interface FoundSnapshot {
  readonly path: string;
  readonly seqno: Seqno;
  readonly evidenceSeqno: Seqno;
  readonly bytes: Uint8Array;
}

/**
 * The committed snapshots in `dirs` (snapshots.directory, then read_only_directory), newest
 * first, whose framing is sound, whose entry is at the seqno its name says and whose appended
 * receipt verifies against the service certificate. A corrupt, truncated or foreign file is
 * skipped with a log line, not fatal. The private domain is checked once the join brings the
 * ledger secret (the caller then takes the first that decrypts).
 */
export function usableCommittedSnapshots(
  dirs: readonly string[],
  serviceCertPem: string,
  log: (line: string) => void,
): FoundSnapshot[] {
  const candidates = listCommittedSnapshots(dirs, log).map((f) => ({
    path: f.path,
    seqno: f.parsed.seqno,
    evidenceSeqno: f.parsed.evidenceSeqno,
  }));
  const usable: FoundSnapshot[] = [];
  for (const c of candidates) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(c.path));
    } catch (e) {
      log(`snapshots: ignoring ${c.path}: ${String(e)}`);
      continue;
    }
    const problem = checkSnapshotFile(bytes, c.seqno, serviceCertPem);
    if (problem === null) usable.push({ ...c, bytes });
    else log(`snapshots: ignoring ${c.path}: ${problem}`);
  }
  return usable;
}

/** Why a committed snapshot file cannot be used (framing, receipt), or null. */
function checkSnapshotFile(
  bytes: Uint8Array,
  seqno: number,
  serviceCertPem: string,
): string | null {
  try {
    const split = splitSnapshotFile(bytes);
    if (split === null) return "truncated";
    const entry = decodeEntry(split.entry, "snapshot");
    if (entry.seqno !== seqno) return `its entry is at seqno ${entry.seqno}, not ${seqno}`;
    const receipt = parseReceipt(JSON.parse(fromUtf8(split.receipt)));
    const digest = toHex(snapshotDigest(split.entry));
    if (receipt.leaf_components?.claims_digest !== digest) {
      return `its receipt does not cover this snapshot (digest ${digest})`;
    }
    const verdict = verifyReceipt(receipt, serviceCertPem);
    return verdict.kind === "valid" ? null : `its receipt does not verify (${verdict.reason})`;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
