/**
 * The node configuration file of `consortia node --config FILE`: a CCF 6.x style JSON document
 * (ccf-compatibility.md §1, CCF's `doc/host_config_schema/cchost_config.json`),
 * parsed with zod into a camelCase NodeConfig (types in config-values.ts, re-exported here), with
 * CCF's defaults filled in, sizes in bytes, times in milliseconds, addresses parsed, relative
 * paths resolved against the config file's directory, input files checked, data files read.
 *
 * Invariants of a NodeConfig returned by loadNodeConfig:
 * - every object we model was strict: an unknown key is an error, except the CCF keys listed in
 *   IGNORED_KEYS (reported in `ignoredKeys`) and an `enclave` section with platform Virtual;
 * - every path is absolute, and every input file (member certificates and encryption keys,
 *   constitution files, data JSON files) existed and the JSON ones parsed when it was loaded;
 *
 * Every problem is a ConfigError whose `key` is the dotted path of the offending key, e.g.
 * `command.start.members[0].certificate_file`, and whose message names that key.
 */
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { isNodeError } from "../../base/errors.js";
import {
  address,
  ConfigError,
  ConfigErrorCode,
  count,
  fail,
  filePath,
  issueToConfigError,
  defaultSubjectAltNames,
  sizeBytes,
  subjectAltName,
  timeMs,
  timeMsOrNull,
  type JoinConfig,
  type MemberConfig,
  type NodeCommand,
  type NodeConfig,
  type RecoverConfig,
  type RpcInterfaceConfig,
  type ServiceConfigurationConfig,
  type StartConfig,
} from "./config-values.js";
import { withDistinctPorts } from "./bind-clashes.js";

export { ConfigError, ConfigErrorCode, type ConfigErrorType } from "./config-values.js";
// prettier-ignore
export type { JoinConfig, MemberConfig, NetAddress, NodeCommand, NodeConfig, RecoverConfig,
  RecoveryRole, RpcInterfaceConfig, ServiceConfigurationConfig, StartConfig,
} from "./config-values.js";

/**
 * CCF keys accepted and ignored, as dotted paths (`*` matches any interface name). Everything
 * else we do not model is an unknown key. Only keys whose absence of effect is harmless for the
 * features Consortia has today belong here.
 */
export const IGNORED_KEYS: readonly string[] = [
  // Host log level and format: Consortia's node logging is not configured from this file.
  "logging",
  // JWT key refresh: there is no JWT authentication yet.
  "jwt",
  // cchost plumbing between the untrusted host and the enclave, with no counterpart here.
  "tick_interval",
  "slow_io_logging_threshold",
  "memory",
  // Outbound and node-to-node channel limits: the channels bound their frames
  // (FRAME_PAYLOAD_MAX_BYTES) and forwarding times out after three election timeouts.
  "client_connection_timeout",
  "node_to_node_message_limit",
  "network.rpc_interfaces.*.forwarding_timeout_ms",
  // Historical-query cache bound: the historical store is not bounded yet.
  "historical_cache_soft_limit",
  // HTTP/2-only settings: app_protocol HTTP2 is rejected, so they could have no effect.
  "network.rpc_interfaces.*.http_configuration.max_concurrent_streams_count",
  "network.rpc_interfaces.*.http_configuration.initial_window_size",
  "network.rpc_interfaces.*.http_configuration.max_frame_size",
];

// ---------------------------------------------------------------------------------------------
// Schema (snake_case in, camelCase out). Paths are resolved afterwards by completeConfig.
// ---------------------------------------------------------------------------------------------

const enclaveSchema = z.strictObject({
  // Consortia runs no TEE: only CCF's Virtual platform has a meaning here.
  platform: z.literal("Virtual"),
  type: z.enum(["Release", "Debug", "Virtual"]).optional(),
});

const nodeToNodeSchema = z
  .strictObject({ bind_address: address, published_address: address.optional() })
  .transform((o) => ({
    bindAddress: o.bind_address,
    publishedAddress: o.published_address ?? o.bind_address,
  }));

const httpSchema = z
  .strictObject({
    max_body_size: sizeBytes("1MB"),
    max_header_size: sizeBytes("16KB"),
    max_headers_count: count(1).default(256),
  })
  .transform((o) => ({
    maxBodySizeBytes: o.max_body_size,
    maxHeaderSizeBytes: o.max_header_size,
    maxHeadersCount: o.max_headers_count,
  }))
  .prefault({});

const rpcInterfaceSchema = z
  .strictObject({
    bind_address: address,
    published_address: address.optional(),
    protocol: z.enum(["tcp"]).default("tcp"),
    app_protocol: z.enum(["HTTP1"]).default("HTTP1"),
    max_open_sessions_soft: count(1).default(1000),
    // CCF's default hard limit is 1010; we keep it 10 above an explicit soft limit.
    max_open_sessions_hard: count(1).optional(),
    http_configuration: httpSchema,
  })
  .transform((o, ctx): RpcInterfaceConfig => {
    const hard = o.max_open_sessions_hard ?? o.max_open_sessions_soft + 10;
    if (hard < o.max_open_sessions_soft) {
      const message = `must be at least max_open_sessions_soft (${o.max_open_sessions_soft})`;
      fail(ctx, ConfigErrorCode.BadValue, message, ["max_open_sessions_hard"]);
    }
    return {
      bindAddress: o.bind_address,
      publishedAddress: o.published_address ?? o.bind_address,
      protocol: o.protocol,
      appProtocol: o.app_protocol,
      maxOpenSessionsSoft: o.max_open_sessions_soft,
      maxOpenSessionsHard: hard,
      http: o.http_configuration,
    };
  });

const networkSchema = z
  .strictObject({
    node_to_node_interface: nodeToNodeSchema,
    rpc_interfaces: z
      .record(z.string().min(1), rpcInterfaceSchema)
      .refine((m) => Object.keys(m).length > 0, {
        message: "must define at least one interface",
        params: { configCode: ConfigErrorCode.BadValue },
      }),
  })
  .transform((o, ctx) => withDistinctPorts(o, ctx));

const nodeCertificateSchema = z
  .strictObject({
    subject_name: z.string().min(1).default("CN=CCF Node"),
    // Absent or empty: CCF derives them from the published RPC addresses (completeConfig).
    subject_alt_names: z.array(subjectAltName).default([]),
    curve_id: z.enum(["Secp384R1", "Secp256R1"]).default("Secp384R1"),
    initial_validity_days: count(1).default(1),
  })
  .transform((o) => ({
    subjectName: o.subject_name,
    subjectAltNames: o.subject_alt_names,
    curveId: o.curve_id,
    initialValidityDays: o.initial_validity_days,
  }))
  .prefault({});

const memberSchema = z
  .strictObject({
    certificate_file: filePath,
    encryption_public_key_file: filePath.optional(),
    data_json_file: filePath.optional(),
    recovery_role: z.enum(["NonParticipant", "Participant", "Owner"]).optional(),
  })
  .transform((o, ctx): MemberConfig => {
    // CCF: a member with an encryption key takes part in recovery unless told otherwise.
    const role =
      o.recovery_role ?? (o.encryption_public_key_file ? "Participant" : "NonParticipant");
    if (role !== "NonParticipant" && o.encryption_public_key_file === undefined) {
      const message = `${role} requires encryption_public_key_file (recovery shares are encrypted)`;
      fail(ctx, ConfigErrorCode.BadValue, message, ["recovery_role"]);
    }
    return {
      certificateFile: o.certificate_file,
      ...(o.encryption_public_key_file !== undefined && {
        encryptionPublicKeyFile: o.encryption_public_key_file,
      }),
      ...(o.data_json_file !== undefined && { dataJsonFile: o.data_json_file }),
      recoveryRole: role,
    };
  });

const serviceConfigurationSchema = z
  .strictObject({
    recovery_threshold: count(0),
    maximum_node_certificate_validity_days: count(1).default(365),
    maximum_service_certificate_validity_days: count(1).default(365),
    recent_cose_proposals_window_size: count(1).default(100),
    reconfiguration_type: z.enum(["OneTransaction", "TwoTransaction"]).default("OneTransaction"),
  })
  .transform((o): ServiceConfigurationConfig => ({
    recoveryThreshold: o.recovery_threshold,
    maximumNodeCertificateValidityDays: o.maximum_node_certificate_validity_days,
    maximumServiceCertificateValidityDays: o.maximum_service_certificate_validity_days,
    recentCoseProposalsWindowSize: o.recent_cose_proposals_window_size,
    reconfigurationType: o.reconfiguration_type,
  }));

const startSchema = z
  .strictObject({
    constitution_files: z.array(filePath).min(1),
    members: z.array(memberSchema).min(1),
    service_configuration: serviceConfigurationSchema,
    initial_service_certificate_validity_days: count(1).default(1),
    service_subject_name: z.string().min(1).default("CN=CCF Service"),
    cose_signatures: z
      .strictObject({ issuer: z.string().optional(), subject: z.string().optional() })
      .optional(),
  })
  .transform((o): StartConfig => ({
    constitutionFiles: o.constitution_files,
    members: o.members,
    serviceConfiguration: o.service_configuration,
    initialServiceCertificateValidityDays: o.initial_service_certificate_validity_days,
    serviceSubjectName: o.service_subject_name,
    ...(o.cose_signatures !== undefined && { coseSignatures: dropUndefined(o.cose_signatures) }),
  }));

const joinSchema = z
  .strictObject({
    target_rpc_address: address,
    retry_timeout: timeMs("1000ms"),
    follow_redirect: z.boolean().default(true),
    fetch_recent_snapshot: z.boolean().default(true),
    fetch_snapshot_max_attempts: count(1).default(3),
    fetch_snapshot_retry_interval: timeMs("1000ms"),
  })
  .transform((o): JoinConfig => ({
    targetRpcAddress: o.target_rpc_address,
    retryTimeoutMs: o.retry_timeout,
    followRedirect: o.follow_redirect,
    fetchRecentSnapshot: o.fetch_recent_snapshot,
    fetchSnapshotMaxAttempts: o.fetch_snapshot_max_attempts,
    fetchSnapshotRetryIntervalMs: o.fetch_snapshot_retry_interval,
  }));

const recoverSchema = z
  .strictObject({
    previous_service_identity_file: filePath,
    initial_service_certificate_validity_days: count(1).default(1),
  })
  .transform((o): RecoverConfig => ({
    previousServiceIdentityFile: o.previous_service_identity_file,
    initialServiceCertificateValidityDays: o.initial_service_certificate_validity_days,
  }));

/** Sections for the other command types are validated and ignored, as CCF's templates emit them. */
const commandSchema = z
  .strictObject({
    type: z.enum(["Start", "Join", "Recover"]),
    service_certificate_file: filePath.default("service_cert.pem"),
    start: startSchema.optional(),
    join: joinSchema.optional(),
    recover: recoverSchema.optional(),
  })
  .transform((o, ctx): NodeCommand => {
    const serviceCertificateFile = o.service_certificate_file;
    const missing = (section: string): never => {
      const message = `missing required key command.${section} (command.type is ${o.type})`;
      fail(ctx, ConfigErrorCode.MissingRequired, message, [section]);
      return z.NEVER;
    };
    switch (o.type) {
      case "Start":
        return o.start
          ? { type: o.type, serviceCertificateFile, start: o.start }
          : missing("start");
      case "Join":
        return o.join ? { type: o.type, serviceCertificateFile, join: o.join } : missing("join");
      case "Recover":
        return o.recover
          ? { type: o.type, serviceCertificateFile, recover: o.recover }
          : missing("recover");
    }
  });

const ledgerSchema = z
  .strictObject({
    directory: filePath.default("ledger"),
    read_only_directories: z.array(filePath).default([]),
    chunk_size: sizeBytes("5MB"),
  })
  .transform((o) => ({
    directory: o.directory,
    readOnlyDirectories: o.read_only_directories,
    chunkSizeBytes: o.chunk_size,
  }))
  .prefault({});

const snapshotsSchema = z
  .strictObject({
    directory: filePath.default("snapshots"),
    tx_count: count(1).default(10000),
    read_only_directory: filePath.optional(),
  })
  .transform((o) => ({
    directory: o.directory,
    txCount: o.tx_count,
    ...(o.read_only_directory !== undefined && { readOnlyDirectory: o.read_only_directory }),
  }))
  .prefault({});

const consensusSchema = z
  .strictObject({
    message_timeout: timeMs("100ms"),
    election_timeout: timeMs("5000ms"),
    max_uncommitted_tx_count: count(0).default(10000),
  })
  .transform((o, ctx) => {
    // A follower must hear several heartbeats before it may suspect the primary.
    if (o.election_timeout <= o.message_timeout) {
      const message = `must be greater than message_timeout (${o.message_timeout}ms)`;
      fail(ctx, ConfigErrorCode.BadTime, message, ["election_timeout"]);
    }
    return {
      messageTimeoutMs: o.message_timeout,
      electionTimeoutMs: o.election_timeout,
      maxUncommittedTxCount: o.max_uncommitted_tx_count,
    };
  })
  .prefault({});

const ledgerSignaturesSchema = z
  .strictObject({ tx_count: count(1).default(5000), delay: timeMs("1000ms") })
  .transform((o) => ({ txCount: o.tx_count, delayMs: o.delay }))
  .prefault({});

const outputFilesSchema = z
  .strictObject({
    node_certificate_file: filePath.default("nodecert.pem"),
    pid_file: filePath.default("node.pid"),
    node_to_node_address_file: filePath.optional(),
    rpc_addresses_file: filePath.optional(),
  })
  .transform((o) => ({
    nodeCertificateFile: o.node_certificate_file,
    pidFile: o.pid_file,
    ...(o.node_to_node_address_file !== undefined && {
      nodeToNodeAddressFile: o.node_to_node_address_file,
    }),
    ...(o.rpc_addresses_file !== undefined && { rpcAddressesFile: o.rpc_addresses_file }),
  }))
  .prefault({});

const nodeConfigSchema = z.strictObject({
  enclave: enclaveSchema.optional(),
  network: networkSchema,
  node_certificate: nodeCertificateSchema,
  command: commandSchema,
  node_data_json_file: filePath.optional(),
  service_data_json_file: filePath.optional(),
  ledger: ledgerSchema,
  snapshots: snapshotsSchema,
  consensus: consensusSchema,
  ledger_signatures: ledgerSignaturesSchema,
  output_files: outputFilesSchema,
  /** CCF: threads beside the main one. Consortia: threads that seal ledger entries. */
  worker_threads: z.number().int().min(0).max(16).default(0),
  /** Closes RPC sessions on which nothing arrives for this long; null: never (as CCF). */
  idle_connection_timeout: timeMsOrNull("60s"),
});

function dropUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

type ParsedConfig = z.output<typeof nodeConfigSchema>;

/**
 * Reads, validates and completes the node configuration at `path`; see the module comment for
 * what the result guarantees. Throws ConfigError on any problem, before anything is started.
 */
export function loadNodeConfig(path: string): NodeConfig {
  const configFile = resolve(path);
  const config = parseNodeConfig(readConfigJson(configFile), configFile);
  return readInputFiles(config);
}

/**
 * Validates an already-parsed JSON document as if it had been read from `configFile` (relative
 * paths resolve against its directory). Touches no files: existence checks are loadNodeConfig's.
 */
export function parseNodeConfig(json: unknown, configFile: string): NodeConfig {
  const file = resolve(configFile);
  const document = structuredClone(json);
  const ignoredKeys = stripIgnoredKeys(document);
  const parsed = nodeConfigSchema.safeParse(document, { reportInput: true });
  if (!parsed.success) throw issueToConfigError(parsed.error.issues, file);
  return completeConfig(parsed.data, file, ignoredKeys);
}

/** One line for the CLI, naming the file and the key. */
export function describeConfigError(err: unknown): string {
  const text =
    err instanceof ConfigError
      ? `invalid node configuration ${err.type.file}: ${err.message}`
      : `invalid node configuration: ${err instanceof Error ? err.message : String(err)}`;
  return text.replace(/\s*\n\s*/g, " ");
}

function readConfigJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (!isNodeError(err)) throw err;
    const missing = err.code === "ENOENT";
    const code = missing ? ConfigErrorCode.MissingFile : ConfigErrorCode.UnreadableFile;
    const why = missing ? "file not found" : err.message;
    throw new ConfigError({ code, key: "", file }, `cannot read config file ${file}: ${why}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const message = `config file ${file} is not valid JSON: ${err.message}`;
    throw new ConfigError({ code: ConfigErrorCode.InvalidJson, key: "", file }, message);
  }
}

/** Deletes the keys matching IGNORED_KEYS from `document`; returns their dotted paths, sorted. */
function stripIgnoredKeys(document: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown, parts: readonly string[], at: string): void => {
    if (typeof node !== "object" || node === null || Array.isArray(node)) return;
    const record = node as Record<string, unknown>;
    const [head, ...rest] = parts;
    if (head === undefined) return;
    for (const name of head === "*" ? Object.keys(record) : [head]) {
      if (!Object.hasOwn(record, name)) continue;
      const key = at === "" ? name : `${at}.${name}`;
      if (rest.length > 0) visit(record[name], rest, key);
      else {
        delete record[name];
        found.push(key);
      }
    }
  };
  for (const pattern of IGNORED_KEYS) visit(document, pattern.split("."), "");
  return found.sort();
}

function completeConfig(c: ParsedConfig, configFile: string, ignoredKeys: string[]): NodeConfig {
  const at = (p: string): string => resolve(dirname(configFile), p);
  const out = c.output_files;
  return {
    configFile,
    network: c.network,
    nodeCertificate: {
      ...c.node_certificate,
      subjectAltNames:
        c.node_certificate.subjectAltNames.length > 0
          ? c.node_certificate.subjectAltNames
          : defaultSubjectAltNames(Object.values(c.network.rpcInterfaces)),
    },
    command: resolveCommandPaths(c.command, at),
    ...(c.node_data_json_file !== undefined && { nodeDataJsonFile: at(c.node_data_json_file) }),
    ...(c.service_data_json_file !== undefined && {
      serviceDataJsonFile: at(c.service_data_json_file),
    }),
    ledger: {
      directory: at(c.ledger.directory),
      readOnlyDirectories: c.ledger.readOnlyDirectories.map(at),
      chunkSizeBytes: c.ledger.chunkSizeBytes,
    },
    snapshots: {
      directory: at(c.snapshots.directory),
      txCount: c.snapshots.txCount,
      ...(c.snapshots.readOnlyDirectory !== undefined && {
        readOnlyDirectory: at(c.snapshots.readOnlyDirectory),
      }),
    },
    consensus: c.consensus,
    workerThreads: c.worker_threads,
    idleConnectionTimeoutMs: c.idle_connection_timeout,
    ledgerSignatures: c.ledger_signatures,
    outputFiles: {
      nodeCertificateFile: at(out.nodeCertificateFile),
      pidFile: at(out.pidFile),
      ...(out.nodeToNodeAddressFile !== undefined && {
        nodeToNodeAddressFile: at(out.nodeToNodeAddressFile),
      }),
      ...(out.rpcAddressesFile !== undefined && { rpcAddressesFile: at(out.rpcAddressesFile) }),
    },
    ignoredKeys,
  };
}

function resolveCommandPaths(command: NodeCommand, at: (p: string) => string): NodeCommand {
  const serviceCertificateFile = at(command.serviceCertificateFile);
  switch (command.type) {
    case "Start": {
      const start = command.start;
      const members = start.members.map((m) => ({
        ...m,
        certificateFile: at(m.certificateFile),
        ...(m.encryptionPublicKeyFile !== undefined && {
          encryptionPublicKeyFile: at(m.encryptionPublicKeyFile),
        }),
        ...(m.dataJsonFile !== undefined && { dataJsonFile: at(m.dataJsonFile) }),
      }));
      const constitutionFiles = start.constitutionFiles.map(at);
      return {
        ...command,
        serviceCertificateFile,
        start: { ...start, members, constitutionFiles },
      };
    }
    case "Join":
      return { ...command, serviceCertificateFile };
    case "Recover": {
      const previousServiceIdentityFile = at(command.recover.previousServiceIdentityFile);
      const recover = { ...command.recover, previousServiceIdentityFile };
      return { ...command, serviceCertificateFile, recover };
    }
  }
}

/** Checks every input file the command needs and reads the JSON data files into the config. */
function readInputFiles(config: NodeConfig): NodeConfig {
  const file = config.configFile;
  const command = config.command;
  // Join's service certificate is the CA of the service it joins: an input, unlike Start's.
  if (command.type === "Join") {
    requireFile("command.service_certificate_file", command.serviceCertificateFile, file);
  } else if (command.type === "Recover") {
    const key = "command.recover.previous_service_identity_file";
    requireFile(key, command.recover.previousServiceIdentityFile, file);
  }
  let withData: NodeConfig = config;
  if (command.type === "Start") {
    command.start.constitutionFiles.forEach((p, i) =>
      requireFile(`command.start.constitution_files[${i}]`, p, file),
    );
    const members = command.start.members.map((m, i) => {
      const at = `command.start.members[${i}]`;
      requireFile(`${at}.certificate_file`, m.certificateFile, file);
      if (m.encryptionPublicKeyFile !== undefined) {
        requireFile(`${at}.encryption_public_key_file`, m.encryptionPublicKeyFile, file);
      }
      if (m.dataJsonFile === undefined) return m;
      return { ...m, data: readJsonFile(`${at}.data_json_file`, m.dataJsonFile, file) };
    });
    withData = { ...config, command: { ...command, start: { ...command.start, members } } };
  }
  const { nodeDataJsonFile: nodeData, serviceDataJsonFile: serviceData } = config;
  return {
    ...withData,
    ...(nodeData !== undefined && {
      nodeData: readJsonFile("node_data_json_file", nodeData, file),
    }),
    ...(serviceData !== undefined && {
      serviceData: readJsonFile("service_data_json_file", serviceData, file),
    }),
  };
}

function requireFile(key: string, path: string, configFile: string): void {
  let problem = "not a regular file";
  try {
    if (statSync(path).isFile()) return;
  } catch (err) {
    if (!isNodeError(err)) throw err;
    const code = err.code;
    problem = code === "ENOENT" || code === "ENOTDIR" ? "file not found" : err.message;
  }
  const type = { code: ConfigErrorCode.MissingFile, key, file: configFile };
  throw new ConfigError(type, `${key}: ${problem}: ${path}`);
}

function readJsonFile(key: string, path: string, configFile: string): unknown {
  requireFile(key, path, configFile);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (!isNodeError(err)) throw err;
    const type = { code: ConfigErrorCode.UnreadableFile, key, file: configFile };
    throw new ConfigError(type, `${key}: cannot read ${path}: ${err.message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    const type = { code: ConfigErrorCode.InvalidDataJson, key, file: configFile };
    throw new ConfigError(type, `${key}: ${path} is not valid JSON: ${err.message}`);
  }
}
