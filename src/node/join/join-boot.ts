/**
 * The Join boot path (command.type Join, CCF's join protocol): the node makes its keys and a
 * self-signed certificate, picks the newest usable committed snapshot (fetching one first when
 * configured), presents a virtual quote to the target's `POST /node/join` and waits while
 * Pending, answering /node/state meanwhile. Once Trusted, the service's answer brings the ledger
 * secrets, the service identity and the node's endorsed certificate; the node then starts from
 * the newest snapshot that decrypts with those secrets (or from seqno 1) and catches up from the
 * primary. This module never builds the node itself: it returns what the node starts from.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { fromBase64 } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import type { NodeId, Seqno } from "../../base/ids.js";
import type { QuoteInfo } from "../../attestation/virtual.js";
import {
  createCertificateSigningRequest,
  createSelfSignedCertificate,
} from "../../crypto/cert-issuance.js";
import {
  ecPrivateKeyPem,
  generateEcKeyPair,
  generateEncryptionKey,
  nodeIdFromPublicKey,
} from "../../crypto/identity.js";
import { LedgerSecrets } from "../../ledger/ledger-secrets.js";
import { decodeSnapshot, type DecodedSnapshot } from "../../ledger/snapshot.js";
import type { NodeConfig } from "../config/config.js";
import { snapshotDirsOf } from "../config/directories.js";
import { formatAddress } from "../config/config-values.js";
import type { NodeStartupState } from "../frontends/node-context.js";
import { serviceSigningIdentity } from "../pipeline/tx-pipeline.js";
import { fetchRecentSnapshotForJoin } from "../snapshots/snapshot-fetch.js";
import { usableCommittedSnapshots, type FoundSnapshot } from "../snapshots/usable-snapshots.js";
import {
  curveOf,
  encryptionKeys,
  nodeInfoNetwork,
  spkiDer,
  virtualQuoteFor,
  type NodeIdentity,
} from "../startup/node-identity.js";
import { StartupError, StartupErrorCode } from "../startup/startup-checks.js";
import { joinNetwork, type JoinResult } from "./join-client.js";
import type { JoinRequest, NetworkInfo } from "./join-endpoint.js";
import type { ListeningSockets } from "../startup/listening-sockets.js";
import { servePending } from "./pending-server.js";

export interface JoinBootDeps {
  readonly now: Date;
  readonly log: (line: string) => void;
  readonly signal?: AbortSignal | undefined;
  /** The node's sockets, bound before the join (startNode): the pending state is served there. */
  readonly sockets?: ListeningSockets | undefined;
}

/** What a Trusted joiner starts from. */
export interface JoinedNode {
  readonly identity: NodeIdentity;
  readonly secrets: LedgerSecrets;
  /** The newest committed snapshot that decrypts with the service's secrets, if any. */
  readonly snapshot: DecodedSnapshot | undefined;
  /** The seqno of that snapshot's evidence (from its file name), checked during replay. */
  readonly snapshotEvidenceSeqno: Seqno | undefined;
}

/** The joiner's own keys, made before it knows the service. */
interface JoinerKeys {
  readonly nodeId: string;
  readonly privateKey: KeyObject;
  readonly selfSignedPem: string;
  readonly publicKey: KeyObject;
  readonly publicKeyDer: Uint8Array;
  readonly quote: QuoteInfo;
  readonly encryption: { publicKeyPem: string; privateKeyPem: string };
}

/** Joins the service at command.join.target_rpc_address; resolves once this node is Trusted. */
export async function joinService(config: NodeConfig, deps: JoinBootDeps): Promise<JoinedNode> {
  if (config.command.type !== "Join") throw new TypeError("joinService needs command Join");
  mkdirSync(config.snapshots.directory, { recursive: true });
  const serviceCertPem = readFileSync(config.command.serviceCertificateFile, "utf8");
  const keys = await makeJoinerKeys(config, deps.now);
  const candidates = await snapshotCandidates(config, serviceCertPem, keys, deps.log);
  const request: JoinRequest = {
    node_info_network: nodeInfoNetwork(config) as JoinRequest["node_info_network"],
    quote_info: keys.quote as JoinRequest["quote_info"],
    public_encryption_key: keys.encryption.publicKeyPem,
    startup_seqno: candidates[0]?.seqno ?? 0,
    // The subject and SANs this node's certificate must have (CCF joiners send one too).
    certificate_signing_request: await createCertificateSigningRequest({
      keys,
      subject: config.nodeCertificate.subjectName,
      subjectAltNames: config.nodeCertificate.subjectAltNames,
    }),
    ...(config.nodeData !== undefined ? { node_data: config.nodeData } : {}),
  };
  const joined = await waitUntilTrusted(config, serviceCertPem, keys, request, deps);
  if (joined.nodeId !== keys.nodeId) {
    throw new StartupError(
      { code: StartupErrorCode.UnexpectedJoinAnswer },
      `the service named this node ${joined.nodeId}, not ${keys.nodeId}`,
    );
  }
  const identity = identityFromAnswer(keys, joined.networkInfo);
  const secrets = secretsOf(joined.networkInfo);
  const start = firstDecryptable(candidates, secrets, deps.log);
  deps.log(`node ${keys.nodeId} is Trusted; catching up from the primary`);
  return { identity, secrets, ...start };
}

async function makeJoinerKeys(config: NodeConfig, now: Date): Promise<JoinerKeys> {
  const keys = generateEcKeyPair(curveOf(config));
  const selfSignedPem = await createSelfSignedCertificate({
    keys,
    subject: config.nodeCertificate.subjectName ?? "CN=CCF Node",
    validityDays: config.nodeCertificate.initialValidityDays,
    now,
  });
  const publicKeyDer = spkiDer(keys.privateKey);
  return {
    nodeId: nodeIdFromPublicKey(keys.publicKey),
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    selfSignedPem,
    publicKeyDer,
    quote: virtualQuoteFor(publicKeyDer),
    encryption: generateEncryptionKey(),
  };
}

/** Committed snapshots to join from, newest first (fetched from the target when configured). */
async function snapshotCandidates(
  config: NodeConfig,
  serviceCertPem: string,
  keys: JoinerKeys,
  log: (line: string) => void,
): Promise<FoundSnapshot[]> {
  if (config.command.type !== "Join") return [];
  const join = config.command.join;
  const dirs = snapshotDirsOf(config);
  if (join.fetchRecentSnapshot) {
    await fetchRecentSnapshotForJoin({
      targetAddress: formatAddress(join.targetRpcAddress),
      serviceCertPem,
      nodeCertPem: keys.selfSignedPem,
      nodeKeyPem: ecPrivateKeyPem(keys.privateKey),
      dirs,
      destinationDir: config.snapshots.directory,
      maxAttempts: join.fetchSnapshotMaxAttempts,
      retryIntervalMs: join.fetchSnapshotRetryIntervalMs,
      log: (line) => log(`[snapshots] ${line}`),
    });
  }
  const candidates = usableCommittedSnapshots(dirs, serviceCertPem, log);
  const newest = candidates[0];
  if (newest !== undefined) log(`joining from snapshot ${newest.path} (seqno ${newest.seqno})`);
  return candidates;
}

/**
 * Posts the join until the service trusts this node. Meanwhile the node answers /node/state
 * (and 503 elsewhere) with its self-signed certificate, so operators can see it waiting.
 */
async function waitUntilTrusted(
  config: NodeConfig,
  serviceCertPem: string,
  keys: JoinerKeys,
  request: JoinRequest,
  deps: JoinBootDeps,
): Promise<JoinResult> {
  if (config.command.type !== "Join") throw new TypeError("waitUntilTrusted needs command Join");
  const target = formatAddress(config.command.join.targetRpcAddress);
  deps.log(`joining the service at ${target}`);
  let joinState: NodeStartupState = "Initialized";
  const state = () => ({ node_id: keys.nodeId, state: joinState });
  const sockets = deps.sockets;
  const waiting = await servePending(config, keys.selfSignedPem, keys.privateKey, state, sockets);
  let joined: JoinResult;
  try {
    joined = await joinNetwork({
      targetAddress: target,
      serviceCertPem,
      nodeCertPem: keys.selfSignedPem,
      nodeKeyPem: ecPrivateKeyPem(keys.privateKey),
      request,
      retryTimeoutMs: config.command.join.retryTimeoutMs,
      log: (line) => deps.log(`[join] ${line}`),
      ...(deps.signal !== undefined ? { signal: deps.signal } : {}),
      onPending: (id) => {
        if (joinState !== "Pending") {
          deps.log(`node ${id} is Pending: waiting for transition_node_to_trusted`);
        }
        joinState = "Pending";
      },
    });
  } finally {
    await Promise.all(waiting.map((server) => server.close()));
  }
  await sockets?.rebindRpc();
  return joined;
}

function identityFromAnswer(keys: JoinerKeys, info: NetworkInfo): NodeIdentity {
  const servicePrivateKey = createPrivateKey(info.identity.priv_key);
  const certPem = info.endorsed_certificate;
  if (certPem === undefined) {
    throw new StartupError(
      { code: StartupErrorCode.UnexpectedJoinAnswer },
      "the join answer holds no endorsed certificate",
    );
  }
  return {
    signing: {
      nodeId: keys.nodeId as NodeId,
      privateKey: keys.privateKey,
      certPem,
      // CCF: the service signing identity comes with the answer, with the service's
      // cose_signatures settings (both empty when the answer has none).
      service: serviceSigningIdentity(servicePrivateKey, info.cose_signatures_config),
    },
    serviceCertPem: info.identity.cert,
    servicePrivateKey,
    publicKeyDer: keys.publicKeyDer,
    ...encryptionKeys(keys.encryption),
    quote: keys.quote,
  };
}

/** The ledger secrets of a join answer. */
export function secretsOf(info: NetworkInfo): LedgerSecrets {
  const list = Object.entries(info.ledger_secrets).map(([from, s]) => {
    const key = fromBase64(s.raw_key);
    if (key === null || key.byteLength !== 32) {
      throw new StartupError(
        { code: StartupErrorCode.UnexpectedJoinAnswer },
        `ledger secret ${from} is invalid`,
      );
    }
    return { fromSeqno: Number(from), key };
  });
  list.sort((a, b) => a.fromSeqno - b.fromSeqno);
  return LedgerSecrets.fromList(list);
}

/**
 * The newest snapshot that decrypts with the service's ledger secrets (older ones are fine:
 * they only mean a longer replay); none when no candidate does.
 */
function firstDecryptable(
  candidates: readonly FoundSnapshot[],
  secrets: LedgerSecrets,
  log: (line: string) => void,
): Pick<JoinedNode, "snapshot" | "snapshotEvidenceSeqno"> {
  for (const candidate of candidates) {
    try {
      const snapshot = decodeSnapshot(candidate.bytes, secrets);
      return { snapshot, snapshotEvidenceSeqno: candidate.evidenceSeqno };
    } catch (e) {
      // A snapshot the secrets do not open is skipped; anything else is not ours to hide.
      if (!(e instanceof CcfError)) throw e;
      log(`snapshots: ignoring ${candidate.path}: ${e.message}`);
    }
  }
  if (candidates.length > 0) log("no snapshot is usable: catching up from seqno 1");
  return { snapshot: undefined, snapshotEvidenceSeqno: undefined };
}
