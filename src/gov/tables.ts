/**
 * The governance tables (ccf-compatibility.md §5.2): the JSON shape of each value, and
 * typed get/set helpers pairing each table with its codec. The names themselves live in the
 * registry (kv/service-tables.ts SERVICE_TABLES); this module never repeats them.
 *
 * Serialisation is CCF's ServiceMap/ServiceValue: a string id key is its UTF-8 bytes, a
 * singleton lives under SINGLETON_KEY (8 zero bytes), values are JSON, and certificate / key
 * tables hold raw PEM text. Field names of values are CCF's snake_case, so a ledger written
 * here reads like one written by CCF.
 */
import {
  type Codec,
  jsonCodec,
  rawCodec,
  SINGLETON_KEY,
  stringCodec,
  typedMap,
  type TypedMapHandle,
  type TypedReadonlyMapHandle,
} from "../kv/encoding.js";
import { type Tx } from "../kv/tx.js";
import { SERVICE_TABLES, type ServiceTableName } from "../kv/service-tables.js";

// ---- Value shapes -------------------------------------------------------------------------

export type MemberStatus = "Accepted" | "Active";
export type RecoveryRole = "NonParticipant" | "Participant" | "Owner";

export interface MemberInfo {
  status: MemberStatus;
  member_data?: unknown;
  recovery_role: RecoveryRole;
}

export interface MemberAck {
  /** The hex Merkle root the member must sign to become Active ("" before any update). */
  state_digest: string;
  /** Base64 COSE_Sign1 of the member's last ack. */
  cose_sign1_req?: string;
  /** Legacy HTTP-signature ack; removed on every COSE ack, as CCF does. */
  signed_req?: unknown;
}

export interface UserInfo {
  user_data?: unknown;
}

export type NodeStatus = "Pending" | "Trusted" | "Retired";
export type QuoteFormat = "Insecure_Virtual" | "AMD_SEV_SNP_v1" | "OE_SGX_v1";

/** One network interface of a node, as CCF's NodeInfoNetwork serialises it. */
export interface NetInterfaceInfo {
  bind_address: string;
  published_address?: string;
  protocol?: string;
  app_protocol?: string;
  max_open_sessions_soft?: number;
  max_open_sessions_hard?: number;
  endorsement?: { authority: string };
  [extra: string]: unknown;
}

/** Where peers and clients reach an interface: its published address, else its bind address. */
export function reachableAddress(net: {
  readonly bind_address: string;
  readonly published_address?: string | undefined;
}): string {
  return net.published_address ?? net.bind_address;
}

export interface QuoteInfo {
  format: QuoteFormat;
  /** Base64 of the raw quote (for virtual nodes: the JSON report). */
  quote: string;
  /** Base64 of the endorsements ("" for virtual nodes). */
  endorsements: string;
  uvm_endorsements?: string;
  endorsed_tcb?: string;
}

export interface NodeInfo {
  node_to_node_interface: NetInterfaceInfo;
  rpc_interfaces: Record<string, NetInterfaceInfo>;
  quote_info: QuoteInfo;
  /** PEM public key the node's ledger secrets are wrapped to. */
  encryption_pub_key: string;
  status: NodeStatus;
  /** Seqno of the ledger secret the node received when it became Trusted. */
  ledger_secret_seqno?: number;
  certificate_signing_request?: string;
  public_key?: string;
  node_data: unknown;
  retired_committed?: boolean;
}

/** A value of nodes.snp.uvm_endorsements: feed -> {svn} (a decimal string, as CCF stores it). */
export type UvmEndorsementFeeds = Record<string, { svn: string }>;

/**
 * A value of nodes.snp.tcb_versions: CCF's TcbVersionPolicy, every field optional. Milan and
 * Genoa have no fmc; `hexstring` is kept when the policy was set from CCF's hex form.
 */
export interface SnpTcbVersionPolicy {
  fmc?: number;
  boot_loader?: number;
  tee?: number;
  snp?: number;
  microcode?: number;
  hexstring?: string;
}

export type ServiceStatus = "Opening" | "Open" | "WaitingForRecoveryShares" | "Recovering";

export interface ServiceInfo {
  /** PEM of the current service identity. */
  cert: string;
  status: ServiceStatus;
  /** Invariant: a count, incremented by every disaster recovery. */
  recovery_count: number;
  service_data: unknown;
  /** "view.seqno" of the transaction that created the current service identity. */
  current_service_create_txid?: string;
  previous_service_identity_version?: number;
}

export type ReconfigurationType = "OneTransaction" | "TwoTransaction";

export interface ServiceConfig {
  recovery_threshold: number;
  consensus: "CFT";
  maximum_node_certificate_validity_days: number;
  maximum_service_certificate_validity_days: number;
  reconfiguration_type: ReconfigurationType;
  recent_cose_proposals_window_size: number;
}

export type ProposalState = "Open" | "Accepted" | "Withdrawn" | "Rejected" | "Failed" | "Dropped";

/** Why a ballot, resolve() or apply() failed: the JS exception message and stack. */
export interface Failure {
  reason: string;
  trace?: string;
}

export interface ProposalInfo {
  proposer_id: string;
  state: ProposalState;
  /** Member id -> ballot JS source. */
  ballots: Record<string, string>;
  /** Written once the proposal leaves Open: member id -> how the ballot voted. */
  final_votes?: Record<string, boolean>;
  /** Written once the proposal leaves Open: member id -> why the ballot threw. */
  vote_failures?: Record<string, Failure>;
  failure?: Failure;
}

// ---- Typed access -------------------------------------------------------------------------

/** A gov table paired with the codec of its values; keys are string ids (UTF-8 bytes). */
export interface GovMap<V> {
  readonly name: ServiceTableName;
  readonly codec: Codec<V>;
}

function jsonMap<V>(name: ServiceTableName): GovMap<V> {
  return { name, codec: jsonCodec<V>() };
}

function textMap(name: ServiceTableName): GovMap<string> {
  return { name, codec: stringCodec };
}

export const GOV_MAPS = {
  memberCerts: textMap(SERVICE_TABLES.memberCerts),
  memberEncryptionKeys: textMap(SERVICE_TABLES.memberEncryptionKeys),
  memberInfo: jsonMap<MemberInfo>(SERVICE_TABLES.memberInfo),
  memberAcks: jsonMap<MemberAck>(SERVICE_TABLES.memberAcks),
  userCerts: textMap(SERVICE_TABLES.userCerts),
  userInfo: jsonMap<UserInfo>(SERVICE_TABLES.userInfo),
  nodeInfo: jsonMap<NodeInfo>(SERVICE_TABLES.nodeInfo),
  nodeEndorsedCerts: textMap(SERVICE_TABLES.nodeEndorsedCerts),
  /** measurement -> "AllowedToJoin". */
  virtualMeasurements: jsonMap<string>(SERVICE_TABLES.virtualMeasurements),
  /** hex host data -> metadata (the default constitution stores ""). */
  virtualHostData: jsonMap<string>(SERVICE_TABLES.virtualHostData),
  /** Lowercase hex SEV-SNP measurement -> "AllowedToJoin". */
  snpMeasurements: jsonMap<string>(SERVICE_TABLES.snpMeasurements),
  /** Lowercase hex SEV-SNP host data -> its security policy ("" when none was given). */
  snpHostData: jsonMap<string>(SERVICE_TABLES.snpHostData),
  /** DID of a UVM endorsement issuer -> feed -> minimum SVN. */
  snpUvmEndorsements: jsonMap<UvmEndorsementFeeds>(SERVICE_TABLES.snpUvmEndorsements),
  /** Hex CPUID (CCF's form) -> the minimum TCB version of that CPU. */
  snpTcbVersions: jsonMap<SnpTcbVersionPolicy>(SERVICE_TABLES.snpTcbVersions),
  serviceInfo: jsonMap<ServiceInfo>(SERVICE_TABLES.serviceInfo),
  serviceConfig: jsonMap<ServiceConfig>(SERVICE_TABLES.serviceConfig),
  /** Singleton: the constitution JS source as a JSON string. */
  constitution: jsonMap<string>(SERVICE_TABLES.constitution),
  /** proposal id -> the raw proposal body as submitted. */
  proposals: textMap(SERVICE_TABLES.proposals),
  proposalsInfo: jsonMap<ProposalInfo>(SERVICE_TABLES.proposalsInfo),
  /** member id -> the member's latest signed governance request (COSE_Sign1 bytes). */
  coseHistory: { name: SERVICE_TABLES.coseHistory, codec: rawCodec } as GovMap<Uint8Array>,
  /** Singleton: the last signature; only `root` is read here. */
  signatures: jsonMap<{ root?: unknown }>(SERVICE_TABLES.signatures),
  /** member id -> its recovery share, RSA-OAEP encrypted to its encryption key (base64). */
  recoveryShares: jsonMap<RecoveryShareRecord>(SERVICE_TABLES.recoveryShares),
  /** Singleton: the latest ledger secret wrapped by the current recovery key. */
  encryptedLedgerSecrets: jsonMap<EncryptedLedgerSecretRecord>(
    SERVICE_TABLES.encryptedLedgerSecrets,
  ),
  /** member id -> a share submitted during recovery, sealed with the current ledger secret. */
  encryptedSubmittedShares: jsonMap<SubmittedShareRecord>(SERVICE_TABLES.encryptedSubmittedShares),
  /** Singleton: the previous service's certificate (PEM), recorded by a recovery. */
  previousServiceIdentity: textMap(SERVICE_TABLES.previousServiceIdentity),
  /** Singleton: the last root the previous service signed, and where. */
  previousServiceLastSignedRoot: jsonMap<PreviousServiceLastSignedRoot>(
    SERVICE_TABLES.previousServiceLastSignedRoot,
  ),
  /**
   * Singleton: every previous service identity, re-issued as a CA certificate by the current
   * service key (PEMs, oldest first); receipts of earlier services carry them as
   * service_endorsements. (CCF writes COSE endorsements here; ours are X.509.)
   */
  previousServiceIdentityEndorsement: jsonMap<string[]>(
    SERVICE_TABLES.previousServiceIdentityEndorsement,
  ),
} as const;

export interface SubmittedShareRecord {
  /** Base64 of IV | AES-256-GCM ciphertext | tag under the ledger secret in force at `version`. */
  encrypted_share: string;
  version: number;
}

export interface PreviousServiceLastSignedRoot {
  /** Hex SHA-256 Merkle root of the previous service's last signature. */
  root: string;
  /** "view.seqno" of that signature. */
  txid: string;
}

export interface RecoveryShareRecord {
  /** Base64 of the encrypted share. */
  encrypted_share: string;
}

export interface EncryptedLedgerSecretRecord {
  /** The seqno the wrapped ledger secret is in force from. */
  version: number;
  /** Base64 of AES-256-GCM(wrapping key, zero IV, ledger secret) | tag. */
  encrypted_ledger_secret: string;
  /** The recovery threshold the shares were issued for. */
  recovery_threshold: number;
}

export function govMapRw<V>(tx: Tx, map: GovMap<V>): TypedMapHandle<string, V> {
  return typedMap(tx.rw(map.name), stringCodec, map.codec);
}

export function govMapRo<V>(tx: Tx, map: GovMap<V>): TypedReadonlyMapHandle<string, V> {
  return typedMap(tx.ro(map.name), stringCodec, map.codec);
}

export function getById<V>(tx: Tx, map: GovMap<V>, id: string): V | undefined {
  return govMapRo(tx, map).get(id);
}

export function setById<V>(tx: Tx, map: GovMap<V>, id: string, value: V): void {
  govMapRw(tx, map).set(id, value);
}

export function deleteById<V>(tx: Tx, map: GovMap<V>, id: string): boolean {
  return govMapRw(tx, map).delete(id);
}

/** Every (id, value) of the map, sorted by id so callers see a deterministic order. */
export function entriesById<V>(tx: Tx, map: GovMap<V>): Array<[string, V]> {
  const out: Array<[string, V]> = [];
  govMapRo(tx, map).forEach((value, id) => out.push([id, value]));
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function getSingleton<V>(tx: Tx, map: GovMap<V>): V | undefined {
  const bytes = tx.ro(map.name).get(SINGLETON_KEY);
  return bytes === undefined ? undefined : map.codec.decode(bytes);
}

export function setSingleton<V>(tx: Tx, map: GovMap<V>, value: V): void {
  tx.rw(map.name).set(SINGLETON_KEY, map.codec.encode(value));
}
