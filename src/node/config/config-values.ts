/**
 * The building blocks of the node configuration (config.ts owns the file, the schema of its
 * sections and loading): value formats, the ConfigError they raise, the zod fields built on them,
 * the mapping from zod issues to ConfigError, and the camelCase output types.
 *
 * Value formats (ccf-compatibility.md §1.1). Each parser returns a
 * `{kind: "ok"}` / `{kind: "error", reason}` union, because a bad value in an operator's file is
 * an expected outcome; the zod fields turn the reason into an issue at the value's key.
 * - Size: a non-negative integer plus `B|KB|MB|GB|TB` (powers of 1024, unit case-insensitive as
 *   in CCF), e.g. `"5MB"`; a bare number (JSON number or digits-only string) means bytes.
 * - Time: a non-negative integer plus `us|ms|s|min|h`, e.g. `"100ms"`; converted to
 *   milliseconds (so `"10us"` is 0.01). A unit is required: a bare number would be ambiguous.
 * - Address: `host:port` with port 0..65535; IPv6 hosts in brackets (`[::1]:8080`).
 *
 * Invariant: every successful result is a finite, non-negative number no larger than
 * Number.MAX_SAFE_INTEGER (sizes are integers), so callers can use it without re-checking.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { assert } from "../../base/assert.js";
import { CcfError } from "../../base/errors.js";

export type ValueResult<T> = { kind: "ok"; value: T } | { kind: "error"; reason: string };

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
  tb: 1024 ** 4,
};

/** Milliseconds per unit. Units are case-sensitive: `"ms"` and `"Ms"` must not be confused. */
const TIME_UNITS_MS: Readonly<Record<string, number>> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  min: 60_000,
  h: 3_600_000,
};

const AMOUNT_AND_UNIT = /^(\d+)([A-Za-z]*)$/;

function describe(input: unknown): string {
  return typeof input === "string" ? JSON.stringify(input) : String(input);
}

/** Parses a size string or a bare byte count into bytes. */
export function parseSizeBytes(input: string | number): ValueResult<number> {
  const expected = 'expected a size such as "5MB", "16KB" or a number of bytes';
  if (typeof input === "number") {
    if (Number.isSafeInteger(input) && input >= 0) return { kind: "ok", value: input };
    return { kind: "error", reason: `bad size ${describe(input)}: ${expected}` };
  }
  const match = AMOUNT_AND_UNIT.exec(input);
  const multiplier = match === null ? undefined : SIZE_UNITS[(match[2] ?? "").toLowerCase() || "b"];
  if (match === null || multiplier === undefined) {
    return { kind: "error", reason: `bad size ${describe(input)}: ${expected}` };
  }
  const bytes = Number(match[1]) * multiplier;
  if (!Number.isSafeInteger(bytes)) {
    return { kind: "error", reason: `size ${describe(input)} is too large` };
  }
  return { kind: "ok", value: bytes };
}

/** Parses a time string into milliseconds (fractional for microseconds). */
export function parseTimeMs(input: string | number): ValueResult<number> {
  const expected = 'expected a time such as "100ms", "1s", "5min", "2h" or "10us"';
  if (typeof input === "number") {
    return {
      kind: "error",
      reason: `bad time ${describe(input)}: a unit is required; ${expected}`,
    };
  }
  const match = AMOUNT_AND_UNIT.exec(input);
  const unit = match?.[2] ?? "";
  const perUnitMs = TIME_UNITS_MS[unit];
  if (match === null || perUnitMs === undefined) {
    const hint = match !== null && unit === "" ? "a unit is required; " : "";
    return { kind: "error", reason: `bad time ${describe(input)}: ${hint}${expected}` };
  }
  const amount = Number(match[1]);
  if (!Number.isSafeInteger(amount) || amount * perUnitMs > Number.MAX_SAFE_INTEGER) {
    return { kind: "error", reason: `time ${describe(input)} is too large` };
  }
  return { kind: "ok", value: amount * perUnitMs };
}

/** A parsed `host:port`. Invariant: `host` has no brackets; 0 <= port <= 65535. */
export interface NetAddress {
  readonly host: string;
  readonly port: number;
}

const LABEL = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
const HOSTNAME = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
const DOTTED_DIGITS = /^[\d.]+$/;

function checkHost(host: string, bracketed: boolean): string | undefined {
  if (bracketed) return isIP(host) === 6 ? undefined : `${describe(host)} is not an IPv6 address`;
  if (host.includes(":")) return "IPv6 addresses must be written in brackets, e.g. [::1]:8080";
  if (DOTTED_DIGITS.test(host)) {
    return isIP(host) === 4 ? undefined : `${describe(host)} is not an IPv4 address`;
  }
  return HOSTNAME.test(host) ? undefined : `${describe(host)} is not a valid host name`;
}

/** Parses `host:port` (`[v6]:port` for IPv6). */
export function parseAddress(input: string): ValueResult<NetAddress> {
  const bad = (why: string): ValueResult<NetAddress> => ({
    kind: "error",
    reason: `bad address ${describe(input)}: ${why}`,
  });
  const colon = input.lastIndexOf(":");
  if (colon < 0) return bad('expected "host:port", e.g. "127.0.0.1:8080"');
  const portText = input.slice(colon + 1);
  let host = input.slice(0, colon);
  const bracketed = host.startsWith("[") && host.endsWith("]");
  if (bracketed) host = host.slice(1, -1);
  if (host === "") return bad("the host is empty");
  const hostProblem = checkHost(host, bracketed);
  if (hostProblem !== undefined) return bad(hostProblem);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  return { kind: "ok", value: { host, port: Number(portText) } };
}

/** The inverse of parseAddress: brackets IPv6 hosts again. */
export function formatAddress(address: NetAddress): string {
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/** The SAN naming `host`: `iPAddress:<ip>` for an IP address, `dNSName:<name>` otherwise. */
export function subjectAltNameOf(host: string): string {
  return isIP(host) === 0 ? `dNSName:${host}` : `iPAddress:${host}`;
}

/**
 * CCF's node certificate SANs when `node_certificate.subject_alt_names` is absent or empty: the
 * host of each RPC interface's published address, in order, without repeats.
 */
export function defaultSubjectAltNames(
  interfaces: readonly { readonly publishedAddress: NetAddress }[],
): string[] {
  return [...new Set(interfaces.map((i) => subjectAltNameOf(i.publishedAddress.host)))];
}

// ---------------------------------------------------------------------------------------------
// Output types of the node config (config.ts re-exports them)
// ---------------------------------------------------------------------------------------------

export interface RpcInterfaceConfig {
  readonly bindAddress: NetAddress;
  /** Defaults to bindAddress; used in redirects and nodes.info. */
  readonly publishedAddress: NetAddress;
  readonly protocol: "tcp";
  readonly appProtocol: "HTTP1";
  /** Invariant: maxOpenSessionsSoft <= maxOpenSessionsHard. */
  readonly maxOpenSessionsSoft: number;
  readonly maxOpenSessionsHard: number;
  readonly http: {
    readonly maxBodySizeBytes: number;
    readonly maxHeaderSizeBytes: number;
    readonly maxHeadersCount: number;
  };
}

export type RecoveryRole = "NonParticipant" | "Participant" | "Owner";

export interface MemberConfig {
  readonly certificateFile: string;
  /** Invariant: present whenever recoveryRole is not NonParticipant. */
  readonly encryptionPublicKeyFile?: string;
  readonly dataJsonFile?: string;
  /** The parsed content of dataJsonFile, present exactly when dataJsonFile is. */
  readonly data?: unknown;
  readonly recoveryRole: RecoveryRole;
}

export interface ServiceConfigurationConfig {
  /** 0 means "the number of recovery members" (CCF). */
  readonly recoveryThreshold: number;
  readonly maximumNodeCertificateValidityDays: number;
  readonly maximumServiceCertificateValidityDays: number;
  readonly recentCoseProposalsWindowSize: number;
  readonly reconfigurationType: "OneTransaction" | "TwoTransaction";
}

export interface StartConfig {
  /** Invariant: non-empty; concatenated in this order into one constitution module. */
  readonly constitutionFiles: readonly string[];
  /** Invariant: non-empty. */
  readonly members: readonly MemberConfig[];
  readonly serviceConfiguration: ServiceConfigurationConfig;
  readonly initialServiceCertificateValidityDays: number;
  readonly serviceSubjectName: string;
  readonly coseSignatures?: { readonly issuer?: string; readonly subject?: string };
}

export interface JoinConfig {
  readonly targetRpcAddress: NetAddress;
  readonly retryTimeoutMs: number;
  readonly followRedirect: boolean;
  readonly fetchRecentSnapshot: boolean;
  readonly fetchSnapshotMaxAttempts: number;
  readonly fetchSnapshotRetryIntervalMs: number;
}

export interface RecoverConfig {
  readonly previousServiceIdentityFile: string;
  readonly initialServiceCertificateValidityDays: number;
}

/** Start/Recover: where the new service certificate is written. Join: the service's CA. */
export type NodeCommand =
  | { readonly type: "Start"; readonly serviceCertificateFile: string; readonly start: StartConfig }
  | { readonly type: "Join"; readonly serviceCertificateFile: string; readonly join: JoinConfig }
  | {
      readonly type: "Recover";
      readonly serviceCertificateFile: string;
      readonly recover: RecoverConfig;
    };

export interface NodeConfig {
  /** Absolute path of the file this was loaded from. */
  readonly configFile: string;
  readonly network: {
    readonly nodeToNodeInterface: {
      readonly bindAddress: NetAddress;
      readonly publishedAddress: NetAddress;
    };
    /** Invariant: at least one interface. Keys are the operator's interface names. */
    readonly rpcInterfaces: Readonly<Record<string, RpcInterfaceConfig>>;
  };
  readonly nodeCertificate: {
    readonly subjectName: string;
    /**
     * `iPAddress:<ip>` or `dNSName:<name>` strings, validated; when the file gives none, the
     * hosts of the published RPC addresses (CCF's default).
     */
    readonly subjectAltNames: readonly string[];
    readonly curveId: "Secp384R1" | "Secp256R1";
    readonly initialValidityDays: number;
  };
  readonly command: NodeCommand;
  readonly nodeDataJsonFile?: string;
  readonly nodeData?: unknown;
  readonly serviceDataJsonFile?: string;
  readonly serviceData?: unknown;
  readonly ledger: {
    readonly directory: string;
    readonly readOnlyDirectories: readonly string[];
    readonly chunkSizeBytes: number;
  };
  readonly snapshots: {
    readonly directory: string;
    readonly txCount: number;
    readonly readOnlyDirectory?: string;
  };
  /** Threads sealing ledger entries beside the node thread (0: the node thread seals). */
  readonly workerThreads: number;
  /** RPC sessions idle this long are closed; null: never. */
  readonly idleConnectionTimeoutMs: number | null;
  readonly consensus: {
    readonly messageTimeoutMs: number;
    /** Invariant: greater than messageTimeoutMs. */
    readonly electionTimeoutMs: number;
    /** 0 means unlimited. */
    readonly maxUncommittedTxCount: number;
  };
  readonly ledgerSignatures: { readonly txCount: number; readonly delayMs: number };
  readonly outputFiles: {
    readonly nodeCertificateFile: string;
    readonly pidFile: string;
    readonly nodeToNodeAddressFile?: string;
    readonly rpcAddressesFile?: string;
  };
  /** Dotted keys present in the file and ignored because they match IGNORED_KEYS. */
  readonly ignoredKeys: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Errors, and the zod fields built on the parsers above (used by config.ts)
// ---------------------------------------------------------------------------------------------

export enum ConfigErrorCode {
  /** The config file or a data file could not be read (other than not existing). */
  UnreadableFile = "UnreadableFile",
  /** The config file is not valid JSON. */
  InvalidJson = "InvalidJson",
  UnknownKey = "UnknownKey",
  WrongType = "WrongType",
  MissingRequired = "MissingRequired",
  /** A string outside its closed set (curve_id, recovery_role, enclave.platform, ...). */
  BadEnum = "BadEnum",
  /** A value of the right type out of range: negative count, empty list, bad SAN, ... */
  BadValue = "BadValue",
  BadSize = "BadSize",
  BadTime = "BadTime",
  BadAddress = "BadAddress",
  /** The config file or a file it references does not exist (or is not a regular file). */
  MissingFile = "MissingFile",
  /** A referenced *_json_file is not valid JSON. */
  InvalidDataJson = "InvalidDataJson",
}

/** Invariant: `key` is a dotted path into the config JSON ("" for the document itself). */
export type ConfigErrorType = { code: ConfigErrorCode; key: string; file: string };

export class ConfigError extends CcfError<ConfigErrorType> {
  get key(): string {
    return this.type.key;
  }
}

type Ctx = z.RefinementCtx;

function typeName(value: unknown): string {
  if (value === null) return "null";
  return Array.isArray(value) ? "array" : typeof value;
}

export function fail(ctx: Ctx, code: ConfigErrorCode, message: string, path?: string[]): void {
  ctx.addIssue({ code: "custom", message, params: { configCode: code }, ...(path && { path }) });
}

/**
 * A size or time field parsed by `parse`, with CCF's default text `fallback`. Every size and time
 * in the config is a limit, timeout or period, so zero is rejected: it would disable or spin.
 */
function valueField(
  parse: (input: string | number) => ValueResult<number>,
  code: ConfigErrorCode,
  fallback: string,
) {
  return z
    .unknown()
    .optional()
    .transform((input, ctx) =>
      parseValue(input === undefined ? fallback : input, parse, code, ctx),
    );
}

function parseValue(
  value: unknown,
  parse: (input: string | number) => ValueResult<number>,
  code: ConfigErrorCode,
  ctx: Ctx,
): number {
  if (typeof value !== "string" && typeof value !== "number") {
    fail(ctx, ConfigErrorCode.WrongType, `must be a string, got ${typeName(value)}`);
    return z.NEVER;
  }
  const result = parse(value);
  if (result.kind === "error") fail(ctx, code, result.reason);
  else if (result.value === 0) fail(ctx, code, `must be greater than zero, got ${value}`);
  return result.kind === "ok" ? result.value : z.NEVER;
}

/** A time field where null (as in CCF's `idle_connection_timeout`) means "never". */
export const timeMsOrNull = (fallback: string) =>
  z
    .unknown()
    .optional()
    .transform((input, ctx) =>
      input === null
        ? null
        : parseValue(
            input === undefined ? fallback : input,
            parseTimeMs,
            ConfigErrorCode.BadTime,
            ctx,
          ),
    );

export const sizeBytes = (fallback: string) =>
  valueField(parseSizeBytes, ConfigErrorCode.BadSize, fallback);
export const timeMs = (fallback: string) =>
  valueField(parseTimeMs, ConfigErrorCode.BadTime, fallback);

export const address = z.string().transform((text, ctx) => {
  const result = parseAddress(text);
  if (result.kind === "ok") return result.value;
  fail(ctx, ConfigErrorCode.BadAddress, result.reason);
  return z.NEVER;
});

export const filePath = z.string().min(1);
export const count = (minimum: number) => z.number().int().min(minimum);

export const subjectAltName = z.string().superRefine((san, ctx) => {
  const [kind, ...rest] = san.split(":");
  const value = rest.join(":");
  const ok = kind === "iPAddress" ? isIP(value) !== 0 : kind === "dNSName" && value !== "";
  if (!ok) {
    const expected = 'expected "iPAddress:<ip>" or "dNSName:<name>"';
    fail(
      ctx,
      ConfigErrorCode.BadValue,
      `bad subject alternative name ${JSON.stringify(san)}: ${expected}`,
    );
  }
});

type Issue = z.core.$ZodIssue;

/** `["a", 0, "b.c"]` -> `a[0]["b.c"]`: the dotted key named in every message. */
export function formatKey(path: readonly PropertyKey[]): string {
  let key = "";
  for (const part of path) {
    if (typeof part === "number") key += `[${part}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(String(part)))
      key += `${key === "" ? "" : "."}${String(part)}`;
    else key += `[${JSON.stringify(String(part))}]`;
  }
  return key;
}

const ARTICLE: Readonly<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean (true or false)",
  object: "an object",
  record: "an object",
  array: "an array",
};

/**
 * Turns zod's issues into one ConfigError. An unknown key wins over the rest because a typo
 * in a key also makes the intended key look missing, and the typo is what the operator must fix.
 */
export function issueToConfigError(issues: readonly Issue[], file: string): ConfigError {
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
  // zod reports a failed parse with at least one issue.
  assert(issue !== undefined, "zod reported failure without issues");
  const [code, key, message] = describeIssue(issue);
  return new ConfigError({ code, key, file }, message);
}

function describeIssue(issue: Issue): [ConfigErrorCode, string, string] {
  const C = ConfigErrorCode;
  const key = formatKey(issue.path);
  const label = key === "" ? "the configuration" : key;
  const input = issue.input;
  switch (issue.code) {
    case "unrecognized_keys": {
      const first = formatKey([...issue.path, issue.keys[0] ?? ""]);
      const more = issue.keys.length > 1 ? ` (also: ${issue.keys.slice(1).join(", ")})` : "";
      return [C.UnknownKey, first, `unknown key ${first}${more}`];
    }
    case "invalid_type":
      if (input === undefined) return [C.MissingRequired, key, `missing required key ${key}`];
      if (issue.expected === "int" && typeof input === "number") {
        return [C.BadValue, key, `${label} must be an integer, got ${input}`];
      }
      return [
        C.WrongType,
        key,
        `${label} must be ${ARTICLE[issue.expected] ?? issue.expected}, got ${typeName(input)}`,
      ];
    case "invalid_value": {
      if (input === undefined) return [C.MissingRequired, key, `missing required key ${key}`];
      const values = issue.values.map((v) => JSON.stringify(v)).join(", ");
      return [C.BadEnum, key, `${label} must be one of ${values}; got ${JSON.stringify(input)}`];
    }
    case "too_small": {
      const min = Number(issue.minimum);
      const what =
        issue.origin === "array"
          ? `must have at least ${min} ${min === 1 ? "entry" : "entries"}`
          : issue.origin === "string"
            ? "must not be empty"
            : `must be at least ${min}`;
      return [C.BadValue, key, `${label} ${what}`];
    }
    case "too_big":
      return [C.BadValue, key, `${label} must be at most ${Number(issue.maximum)}`];
    case "custom": {
      const code = (issue.params?.["configCode"] as ConfigErrorCode | undefined) ?? C.BadValue;
      return [code, key, `${label}: ${issue.message}`];
    }
    default:
      return [C.WrongType, key, `${label}: ${issue.message}`];
  }
}
