/**
 * The genesis transaction of a new service (command Start), from the config: the members with
 * their certificates, encryption keys and data, the constitution, the service configuration,
 * and this node, Trusted, with its virtual measurement and host data.
 */
import { readFileSync } from "node:fs";
import { formatTxId, type Seqno, type View } from "../../base/ids.js";
import type { GenesisInput } from "../../gov/genesis.js";
import type { NodeConfig } from "../config/config.js";
import { decodeVirtualQuote, trustedNodeInfo, type NodeIdentity } from "./node-identity.js";

export function genesisInput(
  config: NodeConfig,
  identity: NodeIdentity,
  startView: View,
): GenesisInput {
  if (config.command.type !== "Start") throw new TypeError("only command Start writes genesis");
  const start = config.command.start;
  const sc = start.serviceConfiguration;
  const quote = decodeVirtualQuote(identity.quote);
  return {
    members: start.members.map((m) => ({
      certPem: readFileSync(m.certificateFile, "utf8"),
      ...(m.encryptionPublicKeyFile !== undefined
        ? { encryptionPublicKeyPem: readFileSync(m.encryptionPublicKeyFile, "utf8") }
        : {}),
      ...(m.data !== undefined ? { memberData: m.data } : {}),
      recoveryRole: m.recoveryRole,
    })),
    constitution: start.constitutionFiles.map((f) => readFileSync(f, "utf8")).join("\n"),
    serviceCertPem: identity.serviceCertPem,
    serviceData: config.serviceData ?? null,
    configuration: {
      recovery_threshold: sc.recoveryThreshold,
      maximum_node_certificate_validity_days: sc.maximumNodeCertificateValidityDays,
      maximum_service_certificate_validity_days: sc.maximumServiceCertificateValidityDays,
      reconfiguration_type: sc.reconfigurationType,
      recent_cose_proposals_window_size: sc.recentCoseProposalsWindowSize,
    },
    node: {
      nodeId: identity.signing.nodeId,
      info: trustedNodeInfo(config, identity),
      endorsedCertificatePem: identity.signing.certPem,
    },
    createTxId: formatTxId({ view: startView, seqno: 1 as Seqno }),
    virtualMeasurement: quote.measurement,
    virtualHostData: quote.host_data,
  };
}
