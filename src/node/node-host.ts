/**
 * One Consortia node (issue #3: Start only; Join with #4, Recover with #5). Start creates the
 * service and node identities, writes the genesis transaction (members, constitution, service
 * info Opening, this node Trusted, its virtual measurement and host data), signs it, and serves
 * every rpc interface over HTTPS with the node certificate the service key endorsed.
 *
 * The node owns its store, history, ledger and pipeline (house style: one owner, no locks);
 * handlers run synchronously inside pipeline.execute, and a timer ticks the pipeline so
 * signatures follow `ledger_signatures.delay` when transactions are few.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createPublicKey, randomBytes } from "node:crypto";
import { createServer as createNetServer } from "node:net";
import { derToPem, toBase64, toHex, utf8 } from "../base/bytes.js";
import type { NodeId, Seqno, TxId, View } from "../base/ids.js";
import { sha256 } from "../crypto/hash.js";
import { generateEncryptionKey, ecPrivateKeyPem } from "../crypto/identity.js";
import { Store } from "../kv/store.js";
import { TxHistory } from "../ledger/history.js";
import { LedgerSecrets } from "../ledger/ledger-secrets.js";
import { LedgerWriter } from "../ledger/io/ledger-writer.js";
import { Router } from "../http/router.js";
import { createRpcServer, type RpcServer } from "../http/server.js";
import type { NodeConfig } from "./config.js";
import { formatAddress } from "./config-values.js";
import { createStartIdentities, type StartIdentities } from "./identities.js";
import { InlineSealer } from "./sealer.js";
import { TxPipeline, DEFAULT_PIPELINE_OPTIONS } from "./tx-pipeline.js";
import { TXID_HEADER } from "./rpc-context.js";
import { writeGenesis } from "../gov/genesis.js";
import type { NodeInfo } from "../gov/tables.js";
import { formatTxId } from "../base/ids.js";

export const CONSORTIA_VERSION = "0.1.0";
/** CCF's virtual attestation measurement (ccf-api.md 2.3). */
export const VIRTUAL_MEASUREMENT = "Insecure hard-coded virtual measurement v1";
/** The first service view is 2 (ccf-api.md 7); this node runs alone in it until #4. */
const START_VIEW = 2 as View;
/** How often the pipeline is ticked (time-based signatures, sealed entries recorded). */
const TICK_INTERVAL_MS = 10;

export type NodeStartupState = "Initialized" | "PartOfNetwork" | "Stopped";

export interface NodeHostDeps {
  readonly log: (line: string) => void;
  readonly now?: () => Date;
}

/** What endpoint modules see of the node. */
export interface NodeContext {
  readonly nodeId: NodeId;
  readonly config: NodeConfig;
  readonly store: Store;
  readonly history: TxHistory;
  readonly pipeline: TxPipeline;
  readonly serviceCertPem: string;
  readonly nodeCertPem: string;
  readonly view: View;
  readonly hostData: string;
  readonly quote: VirtualQuote;
  readonly startupState: () => NodeStartupState;
}

export interface VirtualQuote {
  readonly measurement: string;
  readonly host_data: string;
  readonly report_data: string;
}

/** host_data of a virtual node: SHA-256 of what it runs (the package name and version). */
export function virtualHostData(): string {
  return toHex(sha256(utf8(`consortia ${CONSORTIA_VERSION}`)));
}

function checkEmptyLedger(directory: string): void {
  mkdirSync(directory, { recursive: true });
  const existing = readdirSync(directory).filter((f) => f.startsWith("ledger_"));
  if (existing.length > 0) {
    throw new Error(
      `ledger directory ${directory} already holds a ledger (${existing[0]}): Start needs an ` +
        "empty ledger directory (Recover, to restart from a ledger, arrives with issue #5)",
    );
  }
}

async function makeIdentities(config: NodeConfig, now: Date): Promise<StartIdentities> {
  if (config.command.type !== "Start") throw new Error("only Start is supported");
  const start = config.command.start;
  return createStartIdentities({
    now,
    curve: config.nodeCertificate.curveId === "Secp256R1" ? "secp256r1" : "secp384r1",
    serviceValidityDays: start.initialServiceCertificateValidityDays,
    nodeValidityDays: config.nodeCertificate.initialValidityDays,
    serviceSubject: start.serviceSubjectName,
    nodeSubject: config.nodeCertificate.subjectName,
    subjectAltNames: config.nodeCertificate.subjectAltNames,
  });
}

export class NodeHost implements NodeContext {
  private state: NodeStartupState = "Initialized";
  private readonly servers: RpcServer[] = [];
  private tickTimer: NodeJS.Timeout | null = null;
  readonly router = new Router();

  private constructor(
    readonly config: NodeConfig,
    private readonly identities: StartIdentities,
    readonly store: Store,
    readonly history: TxHistory,
    readonly pipeline: TxPipeline,
    readonly quote: VirtualQuote,
    readonly encryptionPublicKeyPem: string,
    private readonly deps: NodeHostDeps,
  ) {}

  get nodeId(): NodeId {
    return this.identities.node.nodeId;
  }

  get serviceCertPem(): string {
    return this.identities.serviceCertPem;
  }

  get nodeCertPem(): string {
    return this.identities.node.certPem;
  }

  get view(): View {
    return START_VIEW;
  }

  get hostData(): string {
    return this.quote.host_data;
  }

  readonly startupState = (): NodeStartupState => this.state;

  /** Creates the service (command.type Start): identities, genesis, signature. */
  static async start(config: NodeConfig, deps: NodeHostDeps): Promise<NodeHost> {
    const now = deps.now?.() ?? new Date();
    // Fail before writing a ledger when an interface cannot listen: a retry then just works.
    for (const rpc of Object.values(config.network.rpcInterfaces))
      await probeListen(rpc.bindAddress);
    checkEmptyLedger(config.ledger.directory);
    mkdirSync(config.snapshots.directory, { recursive: true });
    const identities = await makeIdentities(config, now);
    const secrets = new LedgerSecrets(randomBytes(32));
    const store = new Store();
    const history = new TxHistory(secrets);
    const ledger = LedgerWriter.open(config.ledger.directory, {
      chunkSizeBytes: config.ledger.chunkSizeBytes,
    });
    const pipeline = new TxPipeline({
      store,
      history,
      ledger,
      sealer: new InlineSealer(secrets),
      identity: identities.node,
      options: {
        ...DEFAULT_PIPELINE_OPTIONS,
        view: START_VIEW,
        sigTxInterval: config.ledgerSignatures.txCount,
        sigMsInterval: config.ledgerSignatures.delayMs,
      },
      nowMs: Date.now(),
    });
    // A virtual quote binds the node key through report_data = SHA-256(public key DER).
    const nodePublicDer = new Uint8Array(
      createPublicKey(identities.node.privateKey).export({ type: "spki", format: "der" }),
    );
    const quote: VirtualQuote = {
      measurement: VIRTUAL_MEASUREMENT,
      host_data: virtualHostData(),
      report_data: toBase64(sha256(nodePublicDer)),
    };
    const encryptionKey = generateEncryptionKey();
    const host = new NodeHost(
      config,
      identities,
      store,
      history,
      pipeline,
      quote,
      encryptionKey.publicKeyPem,
      deps,
    );
    host.writeGenesis(nodePublicDer);
    writeFileSync(config.command.serviceCertificateFile, identities.serviceCertPem);
    writeFileSync(config.outputFiles.nodeCertificateFile, identities.node.certPem);
    return host;
  }

  /**
   * The genesis transaction (2.1) and a signature over it, so members can fetch a state
   * digest to ack right away.
   */
  private writeGenesis(nodePublicDer: Uint8Array): void {
    if (this.config.command.type !== "Start") throw new Error("only Start is supported");
    const start = this.config.command.start;
    const constitution = start.constitutionFiles.map((f) => readFileSync(f, "utf8")).join("\n");
    const members = start.members.map((m) => ({
      certPem: readFileSync(m.certificateFile, "utf8"),
      ...(m.encryptionPublicKeyFile !== undefined
        ? { encryptionPublicKeyPem: readFileSync(m.encryptionPublicKeyFile, "utf8") }
        : {}),
      ...(m.data !== undefined ? { memberData: m.data } : {}),
      recoveryRole: m.recoveryRole,
    }));
    const sc = start.serviceConfiguration;
    const outcome = this.pipeline.execute((tx) =>
      writeGenesis(tx, {
        members,
        constitution,
        serviceCertPem: this.serviceCertPem,
        serviceData: this.config.serviceData ?? null,
        configuration: {
          recovery_threshold: sc.recoveryThreshold,
          maximum_node_certificate_validity_days: sc.maximumNodeCertificateValidityDays,
          maximum_service_certificate_validity_days: sc.maximumServiceCertificateValidityDays,
          reconfiguration_type: sc.reconfigurationType,
          recent_cose_proposals_window_size: sc.recentCoseProposalsWindowSize,
        },
        node: {
          nodeId: this.nodeId,
          info: this.nodeInfo(nodePublicDer),
          endorsedCertificatePem: this.nodeCertPem,
        },
        createTxId: formatTxId({ view: START_VIEW, seqno: 1 as Seqno }),
        virtualMeasurement: this.quote.measurement,
        virtualHostData: this.quote.host_data,
      }),
    );
    if (outcome.kind !== "committed" || outcome.txId.seqno !== 1) {
      throw new Error(`genesis did not commit as 2.1 (${outcome.kind})`);
    }
    this.pipeline.emitSignature();
  }

  private nodeInfo(nodePublicDer: Uint8Array): NodeInfo {
    const net = this.config.network;
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
      quote_info: {
        format: "Insecure_Virtual",
        quote: toBase64(utf8(JSON.stringify(this.quote))),
        endorsements: "",
      },
      encryption_pub_key: this.encryptionPublicKeyPem,
      status: "Trusted",
      public_key: derToPem(nodePublicDer, "PUBLIC KEY"),
      node_data: this.config.nodeData ?? null,
    };
  }

  /** Starts serving: every rpc interface, and the pipeline tick. */
  async serve(): Promise<void> {
    const keyPem = ecPrivateKeyPem(this.identities.node.privateKey);
    for (const [name, rpc] of Object.entries(this.config.network.rpcInterfaces)) {
      const server = await createRpcServer({
        host: rpc.bindAddress.host,
        port: rpc.bindAddress.port,
        certPem: this.identities.node.certPem,
        keyPem,
        caPem: this.identities.serviceCertPem,
        maxBodyBytes: rpc.http.maxBodySizeBytes,
        router: this.router,
        onRequest: async (request, next) => {
          const response = await next(request);
          if (response.headers?.[TXID_HEADER] !== undefined) return response;
          const txId: TxId = this.pipeline.lastTxId;
          return { ...response, headers: { ...response.headers, [TXID_HEADER]: formatTxId(txId) } };
        },
        log: (message, error) => this.deps.log(`[${name}] ${message} ${String(error ?? "")}`),
      });
      this.servers.push(server);
      this.deps.log(`rpc interface ${name} listening on ${server.host}:${server.port}`);
    }
    this.tickTimer = setInterval(() => this.pipeline.tick(Date.now()), TICK_INTERVAL_MS);
    this.state = "PartOfNetwork";
  }

  /** The addresses actually bound (port 0 in the config picks a free port). */
  get boundInterfaces(): { name: string; host: string; port: number }[] {
    const names = Object.keys(this.config.network.rpcInterfaces);
    return this.servers.map((s, i) => ({ name: names[i]!, host: s.host, port: s.port }));
  }

  publishedAddress(name: string): string {
    const rpc = this.config.network.rpcInterfaces[name];
    return rpc === undefined ? "" : formatAddress(rpc.publishedAddress);
  }

  async stop(): Promise<void> {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.tickTimer = null;
    await Promise.all(this.servers.map((s) => s.close()));
    this.servers.length = 0;
    await this.pipeline.close();
    this.state = "Stopped";
  }
}

/** Listens on `address` and closes again; rejects with the OS error (EADDRINUSE, ...). */
function probeListen(address: { host: string; port: number }): Promise<void> {
  if (address.port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(address.port, address.host, () => server.close(() => resolve()));
  });
}
