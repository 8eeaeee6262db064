/**
 * The governance half of the genesis transaction (ccf-compatibility.md §4.4, §5.2): what
 * CCF's create_service/start path writes before the first signature. Members start Accepted with
 * an ack record whose digest is "" (they update it once a signature exists); the service starts
 * Opening with recovery_count 0; the start node is Trusted and its virtual measurement and host
 * data are the join policy, so later nodes built the same way may join.
 *
 * Pure: certificates are parsed only to compute member ids (hex SHA-256 of the DER).
 */
import { memberIdFromCert } from "../crypto/identity.js";
import type { Tx } from "../kv/tx.js";
import { GovErrorCode, govError } from "./errors.js";
import {
  GOV_MAPS,
  type MemberInfo,
  type NodeInfo,
  type ReconfigurationType,
  type RecoveryRole,
  setById,
  setSingleton,
  type ServiceConfig,
  type ServiceInfo,
} from "./tables.js";

export interface GenesisMember {
  readonly certPem: string;
  readonly encryptionPublicKeyPem?: string;
  readonly memberData?: unknown;
  /** Default: Participant with an encryption key, NonParticipant without. */
  readonly recoveryRole?: RecoveryRole;
}

export interface GenesisConfiguration {
  /** 0 means "the number of recovery members" (CCF's start configuration rule). */
  readonly recovery_threshold: number;
  readonly maximum_node_certificate_validity_days: number;
  readonly maximum_service_certificate_validity_days: number;
  readonly reconfiguration_type: ReconfigurationType;
  readonly recent_cose_proposals_window_size: number;
}

export interface GenesisInput {
  readonly members: readonly GenesisMember[];
  /** The constitution's JS source (the concatenated constitution files). */
  readonly constitution: string;
  readonly serviceCertPem: string;
  readonly serviceData: unknown;
  readonly configuration: GenesisConfiguration;
  /** The start node; its status is written as Trusted whatever `info.status` says. */
  readonly node: {
    readonly nodeId: string;
    readonly info: NodeInfo;
    readonly endorsedCertificatePem?: string;
  };
  /** "view.seqno" of the genesis transaction, when the caller knows it. */
  readonly createTxId?: string;
  readonly virtualMeasurement: string;
  readonly virtualHostData: string;
}

export interface GenesisResult {
  /** Member ids in input order. */
  readonly memberIds: string[];
  readonly recoveryThreshold: number;
}

/** Writes the genesis governance state into `tx`. Throws GovError(InvalidInput) on bad input. */
export function writeGenesis(tx: Tx, input: GenesisInput): GenesisResult {
  if (input.members.length === 0) {
    throw govError(GovErrorCode.InvalidInput, "genesis needs at least one member");
  }
  const memberIds: string[] = [];
  let recoveryMembers = 0;
  for (const member of input.members) {
    const { memberId, recovery } = writeMember(tx, member);
    memberIds.push(memberId);
    if (recovery) recoveryMembers++;
  }
  setSingleton(tx, GOV_MAPS.constitution, input.constitution);

  const service: ServiceInfo = {
    cert: input.serviceCertPem,
    status: "Opening",
    recovery_count: 0,
    service_data: input.serviceData,
  };
  if (input.createTxId !== undefined) service.current_service_create_txid = input.createTxId;
  setSingleton(tx, GOV_MAPS.serviceInfo, service);

  const recoveryThreshold = checkedThreshold(input.configuration, recoveryMembers);
  const config: ServiceConfig = {
    recovery_threshold: recoveryThreshold,
    consensus: "CFT",
    maximum_node_certificate_validity_days:
      input.configuration.maximum_node_certificate_validity_days,
    maximum_service_certificate_validity_days:
      input.configuration.maximum_service_certificate_validity_days,
    reconfiguration_type: input.configuration.reconfiguration_type,
    recent_cose_proposals_window_size: input.configuration.recent_cose_proposals_window_size,
  };
  setSingleton(tx, GOV_MAPS.serviceConfig, config);

  const { nodeId, info, endorsedCertificatePem } = input.node;
  setById(tx, GOV_MAPS.nodeInfo, nodeId, { ...info, status: "Trusted" });
  if (endorsedCertificatePem !== undefined) {
    setById(tx, GOV_MAPS.nodeEndorsedCerts, nodeId, endorsedCertificatePem);
  }
  setById(tx, GOV_MAPS.virtualMeasurements, input.virtualMeasurement, "AllowedToJoin");
  setById(tx, GOV_MAPS.virtualHostData, input.virtualHostData, "");
  return { memberIds, recoveryThreshold };
}

function writeMember(tx: Tx, member: GenesisMember): { memberId: string; recovery: boolean } {
  const memberId = memberIdFromCert(member.certPem);
  const hasKey = member.encryptionPublicKeyPem !== undefined;
  const role = member.recoveryRole ?? (hasKey ? "Participant" : "NonParticipant");
  if (role !== "NonParticipant" && !hasKey) {
    throw govError(
      GovErrorCode.InvalidInput,
      `member ${memberId}: recovery role ${role} requires an encryption public key`,
    );
  }
  setById(tx, GOV_MAPS.memberCerts, memberId, member.certPem);
  if (member.encryptionPublicKeyPem !== undefined) {
    setById(tx, GOV_MAPS.memberEncryptionKeys, memberId, member.encryptionPublicKeyPem);
  }
  const info: MemberInfo = { status: "Accepted", recovery_role: role };
  if (member.memberData !== undefined) info.member_data = member.memberData;
  setById(tx, GOV_MAPS.memberInfo, memberId, info);
  setById(tx, GOV_MAPS.memberAcks, memberId, { state_digest: "" });
  return { memberId, recovery: role !== "NonParticipant" };
}

/** Resolves threshold 0 and refuses one no set of recovery members could ever reach. */
function checkedThreshold(configuration: GenesisConfiguration, recoveryMembers: number): number {
  const requested = configuration.recovery_threshold;
  const threshold = requested === 0 ? recoveryMembers : requested;
  if (recoveryMembers > 0 && threshold > recoveryMembers) {
    throw govError(
      GovErrorCode.InvalidInput,
      `recovery_threshold ${threshold} exceeds the number of recovery members ` +
        `(${recoveryMembers})`,
    );
  }
  return threshold;
}
