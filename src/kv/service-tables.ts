/**
 * The names of CCF's built-in service tables (ccf-compatibility.md §5.2), in one place: the
 * governance tables (`public:ccf.gov.*`) and the node's internal ones (`public:ccf.internal.*`).
 * Code in src/ never repeats these literals (test/unit/tidy.test.ts checks it); gov/tables.ts pairs
 * the gov tables with their value codecs. The constitution JS (constitution/*.js) keeps its own
 * literals, as CCF's does, since that is CCF's format.
 *
 * This module sits in kv, the lowest layer every user of a table name may import. Singleton
 * tables (ServiceValue) keep their value under SINGLETON_KEY_BYTES.
 */

export const SERVICE_TABLES = {
  // Governance: members, users, nodes, the service, the constitution and proposals.
  memberCerts: "public:ccf.gov.members.certs",
  memberEncryptionKeys: "public:ccf.gov.members.encryption_public_keys",
  memberInfo: "public:ccf.gov.members.info",
  memberAcks: "public:ccf.gov.members.acks",
  userCerts: "public:ccf.gov.users.certs",
  userInfo: "public:ccf.gov.users.info",
  nodeInfo: "public:ccf.gov.nodes.info",
  nodeEndorsedCerts: "public:ccf.gov.nodes.endorsed_certificates",
  virtualMeasurements: "public:ccf.gov.nodes.virtual.measurements",
  virtualHostData: "public:ccf.gov.nodes.virtual.host_data",
  snpMeasurements: "public:ccf.gov.nodes.snp.measurements",
  snpHostData: "public:ccf.gov.nodes.snp.host_data",
  snpUvmEndorsements: "public:ccf.gov.nodes.snp.uvm_endorsements",
  snpTcbVersions: "public:ccf.gov.nodes.snp.tcb_versions",
  serviceInfo: "public:ccf.gov.service.info",
  serviceConfig: "public:ccf.gov.service.config",
  previousServiceIdentity: "public:ccf.gov.service.previous_service_identity",
  constitution: "public:ccf.gov.constitution",
  proposals: "public:ccf.gov.proposals",
  proposalsInfo: "public:ccf.gov.proposals_info",
  coseHistory: "public:ccf.gov.cose_history",
  coseRecentProposals: "public:ccf.gov.cose_recent_proposals",
  modules: "public:ccf.gov.modules",
  endpoints: "public:ccf.gov.endpoints",
  jsRuntimeOptions: "public:ccf.gov.js_runtime_options",
  /** Compiled module bytecode; Consortia stores none (app-runtime.ts compiles per call). */
  modulesQuickjsBytecode: "public:ccf.gov.modules_quickjs_bytecode",
  /** The QuickJS version the stored bytecode was compiled with. */
  modulesQuickjsVersion: "public:ccf.gov.modules_quickjs_version",
  /** Set by set_js_app: cached interpreters must be discarded. */
  interpreterFlush: "public:ccf.gov.interpreter.flush",
  /** App services (ADR 0005): package id -> {address, ca_cert?, timeout_ms?}. */
  appServices: "public:ccf.gov.app_services",
  // Internal: written by the node itself, never by a proposal's apply.
  signatures: "public:ccf.internal.signatures",
  /** The Merkle tree's frontier, stored in snapshots. */
  tree: "public:ccf.internal.tree",
  coseSignatures: "public:ccf.internal.cose_signatures",
  /** A snapshot's digest and seqno, written after the snapshot. */
  snapshotEvidence: "public:ccf.internal.snapshot_evidence",
  recoveryShares: "public:ccf.internal.recovery_shares",
  encryptedLedgerSecrets: "public:ccf.internal.encrypted_ledger_secrets",
  encryptedSubmittedShares: "public:ccf.internal.encrypted_submitted_shares",
  previousServiceLastSignedRoot: "public:ccf.internal.previous_service_last_signed_root",
  previousServiceIdentityEndorsement: "public:ccf.internal.previous_service_identity_endorsement",
  lastRecoveryType: "public:ccf.internal.last_recovery_type",
  /** A rekey's new ledger secret, encrypted for each trusted node (node id -> base64). */
  ledgerSecretsForNodes: "public:ccf.internal.ledger_secrets_for_nodes",
} as const;

export type ServiceTableName = (typeof SERVICE_TABLES)[keyof typeof SERVICE_TABLES];

/** The prefix of every governance table. */
export const GOV_TABLES_PREFIX = "public:ccf.gov.";

/** The prefix of every internal table: a proposal's apply may read them but not write them. */
export const INTERNAL_TABLES_PREFIX = "public:ccf.internal.";

/** The key of singleton (ServiceValue) tables: 8 zero bytes. */
export const SINGLETON_KEY_BYTES = new Uint8Array(8);
