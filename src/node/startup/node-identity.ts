/**
 * Who a node is: its signing key and service-endorsed certificate, its encryption key (rekeyed
 * ledger secrets reach it encrypted to it), its virtual quote, and the service identity it
 * belongs to. Created at Start and Recover with a new service identity, or at Join from the
 * service's answer; the node's nodes-table record follows from it and the config.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { derToPem, fromBase64, toHex, utf8 } from "../../base/bytes.js";
import { makeVirtualQuote, type QuoteInfo } from "../../attestation/virtual.js";
import { sha256 } from "../../crypto/hash.js";
import { generateEncryptionKey } from "../../crypto/identity.js";
import type { NodeInfo } from "../../gov/tables.js";
import type { NodeConfig } from "../config/config.js";
import { formatAddress } from "../config/config-values.js";
import { CONSORTIA_VERSION } from "../config/version.js";
import type { NodeSigningIdentity, ServiceSigningIdentity } from "../pipeline/tx-pipeline.js";
import { createStartIdentities } from "./start-identities.js";

/** Everything a node holds about who it is and which service it belongs to. */
export interface NodeIdentity {
  readonly signing: NodeSigningIdentity;
  readonly serviceCertPem: string;
  readonly servicePrivateKey: KeyObject;
  readonly publicKeyDer: Uint8Array;
  readonly encryptionPublicKeyPem: string;
  /** The node's RSA key: rekeyed ledger secrets reach it encrypted to the public half. */
  readonly encryptionPrivateKeyPem: string;
  readonly quote: QuoteInfo;
}

/** The fields of a virtual quote (attestation/virtual.ts) a node reports about itself. */
export interface VirtualQuote {
  readonly measurement: string;
  readonly host_data: string;
  readonly report_data: string;
}

/** host_data of a virtual node: SHA-256 of what it runs (the package name and version). */
export function virtualHostData(): string {
  return toHex(sha256(utf8(`consortia ${CONSORTIA_VERSION}`)));
}

/** A virtual quote for the node key whose SPKI DER is `publicKeyDer`. */
export function virtualQuoteFor(publicKeyDer: Uint8Array): QuoteInfo {
  return makeVirtualQuote(publicKeyDer, virtualHostData());
}

export function decodeVirtualQuote(quote: QuoteInfo): VirtualQuote {
  const bytes = fromBase64(quote.quote);
  if (bytes === null) throw new TypeError("a virtual quote is base64");
  return JSON.parse(new TextDecoder().decode(bytes)) as VirtualQuote;
}

export function spkiDer(key: KeyObject): Uint8Array {
  return new Uint8Array(createPublicKey(key).export({ type: "spki", format: "der" }));
}

export function curveOf(config: NodeConfig): "secp256r1" | "secp384r1" {
  return config.nodeCertificate.curveId === "Secp256R1" ? "secp256r1" : "secp384r1";
}

/** The two halves of an RSA encryption key, named as NodeIdentity names them. */
export function encryptionKeys(k: { publicKeyPem: string; privateKeyPem: string }) {
  return { encryptionPublicKeyPem: k.publicKeyPem, encryptionPrivateKeyPem: k.privateKeyPem };
}

/** How a new service identity is made: the service certificate and its COSE signatures. */
export interface NewServiceOptions {
  readonly validityDays: number;
  readonly subject?: string | undefined;
  /** Issuer and subject of ledger COSE signatures (CCF's default: both empty). */
  readonly coseSignatures?: ServiceSigningIdentity["coseSignatures"] | undefined;
}

/** A new service identity and this node's, endorsed by it (command Start or Recover). */
export async function newServiceIdentity(
  config: NodeConfig,
  now: Date,
  service: NewServiceOptions,
): Promise<NodeIdentity> {
  const ids = await createStartIdentities({
    now,
    curve: curveOf(config),
    serviceValidityDays: service.validityDays,
    nodeValidityDays: config.nodeCertificate.initialValidityDays,
    ...(service.subject !== undefined ? { serviceSubject: service.subject } : {}),
    ...(service.coseSignatures !== undefined ? { coseSignatures: service.coseSignatures } : {}),
    nodeSubject: config.nodeCertificate.subjectName,
    subjectAltNames: config.nodeCertificate.subjectAltNames,
  });
  const publicKeyDer = spkiDer(ids.node.privateKey);
  return {
    signing: ids.node,
    serviceCertPem: ids.serviceCertPem,
    servicePrivateKey: ids.serviceKeys.privateKey,
    publicKeyDer,
    ...encryptionKeys(generateEncryptionKey()),
    quote: virtualQuoteFor(publicKeyDer),
  };
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
/** This node's nodes-table record, as Trusted (genesis, a recovery's start). */
export function trustedNodeInfo(config: NodeConfig, identity: NodeIdentity): NodeInfo {
  const network = nodeInfoNetwork(config);
  return {
    node_to_node_interface: network.node_to_node_interface,
    rpc_interfaces: network.rpc_interfaces,
    quote_info: identity.quote as NodeInfo["quote_info"],
    encryption_pub_key: identity.encryptionPublicKeyPem,
    status: "Trusted",
    public_key: derToPem(identity.publicKeyDer, "PUBLIC KEY"),
    node_data: config.nodeData ?? null,
  };
}
