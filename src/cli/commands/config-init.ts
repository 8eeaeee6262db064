/**
 * `consortia config init --start|--join|--recover --name N --host H ...`: writes a ready node
 * config for one host (ccf-compatibility.md §1), so an operator of a node on its own machine does
 * not write JSON by hand (a Recover node: disaster recovery from a copied ledger, README). The
 * node publishes `H` (its name or address as peers and clients reach it) on both interfaces and
 * binds `--bind` (all addresses by default); its certificate names `H` and every `--san`. The
 * document is checked with the node's own schema (parseNodeConfig) before it is written, and an
 * existing config is kept unless --force.
 *
 * The directory written is self-contained (docs/operating.md copies it to the node's machine):
 * every input file the config names (member certificates and keys, constitution, the service
 * certificate a joiner reads, the previous one a recovery reads) is copied into it and named by a
 * path relative to it, which the node resolves against the config file's directory.
 *
 * `nodeConfigForHost` builds the document without IO, for tests and for harnesses that start
 * nodes on several hosts (network namespaces) from the same options.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { isIP } from "node:net";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import type { Command } from "commander";
import { isReportable, CliError } from "../cli-error.js";
import { constitutionFileNames } from "../constitution-files.js";
import { findPackageRoot } from "../package-root.js";
import { describeConfigError, parseNodeConfig } from "../../node/config/config.js";
import {
  formatAddress,
  parseAddress,
  subjectAltNameOf,
  type NetAddress,
} from "../../node/config/config-values.js";

/** CCF's conventional ports for the RPC and node-to-node interfaces of a node. */
export const DEFAULT_RPC_PORT = 8000;
export const DEFAULT_NODE_PORT = 8001;

/** What one host's node is: everything `config init` asks for, checked. */
export interface HostNodeOptions {
  readonly command: "Start" | "Join" | "Recover";
  readonly name: string;
  /** Published host: a DNS name, an IPv4 address or an IPv6 address without brackets. */
  readonly host: string;
  /** Bind host; default `0.0.0.0`, or `::` when `host` is an IPv6 address. */
  readonly bind?: string;
  readonly rpcPort: number;
  readonly nodePort: number;
  /** Extra SANs beyond `host`'s own (`dNSName:x`, `iPAddress:y`). */
  readonly sans: readonly string[];
  /** Join: the RPC address of a node of the service. */
  readonly peer?: NetAddress;
  /** Start: members, each a certificate and optionally an encryption public key (paths). */
  readonly members: readonly MemberFiles[];
  readonly constitutionFiles: readonly string[];
  /** Start and Recover: written there. Join: the certificate of the service to join. */
  readonly serviceCertificateFile: string;
  readonly recoveryThreshold: number;
  /** Recover: the certificate of the service whose ledger is recovered. */
  readonly previousServiceCertificateFile?: string;
  /** The ledger and snapshot directories (default `ledger` and `snapshots` beside the config). */
  readonly ledgerDir?: string;
  readonly snapshotsDir?: string;
}

interface MemberFiles {
  readonly cert: string;
  readonly encKey?: string;
}

/** The node config JSON for `o` (paths as given; relative ones resolve against the file). */
export function nodeConfigForHost(o: HostNodeOptions): Record<string, unknown> {
  const bindHost = o.bind ?? (isIP(o.host) === 6 ? "::" : "0.0.0.0");
  const at = (host: string, port: number) => formatAddress({ host, port });
  const sans = [subjectAltNameOf(o.host), ...o.sans.filter((s) => s !== subjectAltNameOf(o.host))];
  return {
    enclave: { platform: "Virtual", type: "Release" },
    network: {
      node_to_node_interface: {
        bind_address: at(bindHost, o.nodePort),
        published_address: at(o.host, o.nodePort),
      },
      rpc_interfaces: {
        primary_rpc_interface: {
          bind_address: at(bindHost, o.rpcPort),
          published_address: at(o.host, o.rpcPort),
        },
      },
    },
    node_certificate: { subject_name: `CN=${o.name}`, subject_alt_names: sans },
    command: commandSection(o),
    ledger: { directory: o.ledgerDir ?? "ledger" },
    snapshots: { directory: o.snapshotsDir ?? "snapshots" },
    output_files: { node_certificate_file: "nodecert.pem", pid_file: "node.pid" },
  };
}

function commandSection(o: HostNodeOptions): Record<string, unknown> {
  if (o.command === "Recover") {
    const previous = o.previousServiceCertificateFile;
    if (previous === undefined) {
      throw new CliError("--recover needs --previous-service-cert <file> (the old service's)");
    }
    return {
      type: "Recover",
      service_certificate_file: o.serviceCertificateFile,
      recover: { previous_service_identity_file: previous },
    };
  }
  if (o.command === "Join") {
    if (o.peer === undefined) throw new CliError("--join needs --peer <url> (a node's address)");
    return {
      type: "Join",
      service_certificate_file: o.serviceCertificateFile,
      join: { target_rpc_address: formatAddress(o.peer), retry_timeout: "1000ms" },
    };
  }
  if (o.members.length === 0) {
    throw new CliError("--start needs at least one --member <cert.pem[,enc_pubk.pem]>");
  }
  return {
    type: "Start",
    service_certificate_file: o.serviceCertificateFile,
    start: {
      constitution_files: o.constitutionFiles,
      members: o.members.map((m) => ({
        certificate_file: m.cert,
        ...(m.encKey !== undefined && { encryption_public_key_file: m.encKey }),
      })),
      service_configuration: { recovery_threshold: o.recoveryThreshold },
    },
  };
}

// ---- A self-contained node directory ------------------------------------------------------

/** An input file to copy into the node directory: `from` (absolute) to `to` (relative to it). */
interface InputCopy {
  readonly from: string;
  readonly to: string;
}

/** The folders of a node directory that hold copied inputs only (see copyInputs). */
const MEMBERS_FOLDER = "members";
const CONSTITUTION_FOLDER = "constitution";
const COPY_FOLDERS = [MEMBERS_FOLDER, CONSTITUTION_FOLDER];

/**
 * `o` with each input file given by an absolute path renamed to its copy in the node directory
 * (relative: members/<file>, constitution/<file>, service_cert.pem for Join,
 * previous_service_cert.pem for Recover), and the copies to make. Outputs keep their paths. Two
 * different files that would be copied to one name are refused rather than one lost.
 */
function selfContained(o: HostNodeOptions): {
  options: HostNodeOptions;
  copies: InputCopy[];
} {
  const copies = new Map<string, InputCopy>();
  const place = (option: string, from: string, to: string): string => {
    if (!isAbsolute(from)) return from;
    const earlier = copies.get(to);
    if (earlier !== undefined && earlier.from !== from) {
      throw new CliError(
        `${option}: ${earlier.from} and ${from} would both be copied to ${to}; rename one`,
      );
    }
    copies.set(to, { from, to });
    return to;
  };
  const into = (sub: string, option: string) => (from: string) =>
    place(option, from, `${sub}/${basename(from)}`);
  const member = into(MEMBERS_FOLDER, "--member");
  const previous = o.previousServiceCertificateFile;
  const options: HostNodeOptions = {
    ...o,
    members: o.members.map((m) => ({
      cert: member(m.cert),
      ...(m.encKey !== undefined && { encKey: member(m.encKey) }),
    })),
    constitutionFiles: o.constitutionFiles.map(into(CONSTITUTION_FOLDER, "--constitution-dir")),
    ...(o.command === "Join" && {
      serviceCertificateFile: place("--service-cert", o.serviceCertificateFile, "service_cert.pem"),
    }),
    ...(previous !== undefined && {
      previousServiceCertificateFile: place(
        "--previous-service-cert",
        previous,
        "previous_service_cert.pem",
      ),
    }),
  };
  return { options, copies: [...copies.values()] };
}

/**
 * Copies each input into `dir`; a file already there (the same file) is left as it is. With
 * `prune` (--force over a directory config init wrote), files in the copy folders that no
 * input names are removed: a member dropped from the command line would otherwise stay in
 * members/ beside the config that no longer names it.
 */
function copyInputs(dir: string, copies: readonly InputCopy[], prune: boolean): void {
  const wanted = new Set(copies.map((c) => c.to));
  for (const folder of prune ? COPY_FOLDERS : []) {
    const path = join(dir, folder);
    if (!existsSync(path)) continue;
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      if (entry.isFile() && !wanted.has(`${folder}/${entry.name}`)) rmSync(join(path, entry.name));
    }
  }
  for (const { from, to } of copies) {
    const target = join(dir, to);
    if (existsSync(target) && realpathSync(target) === realpathSync(from)) continue;
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(from, target);
  }
}

// ---- Options as typed ---------------------------------------------------------------------

interface InitFlags {
  start?: boolean;
  join?: boolean;
  recover?: boolean;
  previousServiceCert?: string;
  ledgerDir?: string;
  snapshotsDir?: string;
  name?: string;
  host?: string;
  peer?: string;
  rpcPort: string;
  nodePort: string;
  bind?: string;
  san: string[];
  member: string[];
  constitutionDir?: string;
  serviceCert?: string;
  recoveryThreshold: string;
  dir?: string;
  force?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A host as typed (brackets allowed around IPv6); a CliError naming `option` if it is bad. */
export function parseHostOption(option: string, text: string): string {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const parsed = parseAddress(formatAddress({ host: bare, port: 1 }));
  if (parsed.kind === "error") {
    throw new CliError(`${option} ${JSON.stringify(text)}: not an IP address or host name`);
  }
  return parsed.value.host;
}

/** The published host: refuses an IPv6 zone id, which names a link of this host only. */
function parsePublishedHost(text: string): string {
  const host = parseHostOption("--host", text);
  const zone = host.indexOf("%");
  if (zone >= 0) {
    throw new CliError(
      `--host ${JSON.stringify(text)}: a zone id (${host.slice(zone)}) means nothing to other ` +
        "hosts, which reach the node by this address; give an address without one",
    );
  }
  return host;
}

/** `--san`s as typed; an IP address with a zone id cannot go in a certificate. */
function parseSans(sans: readonly string[]): string[] {
  for (const san of sans) {
    if (san.startsWith("iPAddress:") && san.includes("%")) {
      throw new CliError(`--san ${JSON.stringify(san)}: a certificate cannot name a zone id (%)`);
    }
  }
  return [...sans];
}

function parsePort(option: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new CliError(`${option} ${JSON.stringify(text)}: expected a port from 1 to 65535`);
  }
  return Number(text);
}

/** `https://host:port`, `host:port` or `[v6]:port`; https URLs default to port 443. */
export function parsePeerOption(text: string): NetAddress {
  const bad = (why: string) => new CliError(`--peer ${JSON.stringify(text)}: ${why}`);
  let address = text;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch (err: unknown) {
      if (!(err instanceof TypeError)) throw err;
      throw bad(unbracketedIpv6(text) ?? "not a URL");
    }
    if (url.protocol !== "https:") throw bad("nodes are reached over https://");
    if (url.pathname !== "/" || url.search !== "") throw bad("expected no path or query");
    address = `${url.hostname}:${url.port === "" ? "443" : url.port}`;
  }
  const parsed = parseAddress(address);
  if (parsed.kind === "error") throw bad(parsed.reason);
  if (parsed.value.port === 0) throw bad("the port must be from 1 to 65535");
  return parsed.value;
}

/** Why `url` failed to parse when its host is an IPv6 address without brackets, with the fix. */
function unbracketedIpv6(url: string): string | undefined {
  const [, scheme = "", authority = "", rest = ""] =
    /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/i.exec(url) ?? [];
  if (authority.includes("[") || authority.split(":").length < 3) return undefined;
  const port = /:(\d{1,5})$/.exec(authority)?.[1];
  const host = port === undefined ? authority : authority.slice(0, -port.length - 1);
  const example = `${scheme}[${host}]${port === undefined ? "" : `:${port}`}${rest}`;
  return `an IPv6 host must be in brackets, e.g. ${example}`;
}

function parseMember(text: string): { cert: string; encKey?: string } {
  const [cert, encKey, ...rest] = text.split(",");
  if (cert === undefined || cert === "" || encKey === "" || rest.length > 0) {
    throw new CliError(`--member ${JSON.stringify(text)}: expected <cert.pem>[,<enc_pubk.pem>]`);
  }
  const files = encKey === undefined ? [cert] : [cert, encKey];
  for (const file of files) {
    if (!existsSync(file)) throw new CliError(`--member: ${file}: file not found`);
  }
  return encKey === undefined
    ? { cert: resolve(cert) }
    : { cert: resolve(cert), encKey: resolve(encKey) };
}

/** Which command, and that the options given belong to it; a CliError otherwise. */
function commandOf(f: InitFlags): HostNodeOptions["command"] {
  const commands = [f.start, f.join, f.recover].filter((c) => c === true).length;
  if (commands !== 1) throw new CliError("give exactly one of --start, --join and --recover");
  const command = f.start === true ? "Start" : f.join === true ? "Join" : "Recover";
  if (command !== "Join" && f.peer !== undefined) throw new CliError("--peer is for --join");
  if (command !== "Start" && f.member.length > 0) throw new CliError("--member is for --start");
  const previous = f.previousServiceCert;
  if (command !== "Recover" && previous !== undefined) {
    throw new CliError("--previous-service-cert is for --recover");
  }
  if (previous !== undefined && !existsSync(previous)) {
    throw new CliError(`--previous-service-cert: ${previous}: file not found`);
  }
  // A joiner reads the service certificate (copied into its directory); the others write it.
  if (command === "Join" && f.serviceCert !== undefined && !existsSync(f.serviceCert)) {
    throw new CliError(`--service-cert: ${f.serviceCert}: file not found`);
  }
  return command;
}

/** The checked options; input files by absolute path (selfContained then copies them). */
function hostNodeOptions(f: InitFlags): HostNodeOptions {
  const command = commandOf(f);
  // Checked here rather than by commander, which prints its whole help page after the error.
  if (f.name === undefined) throw new CliError("config init needs --name <name>");
  if (f.host === undefined) throw new CliError("config init needs --host <host>");
  if (!NAME.test(f.name)) {
    throw new CliError(`--name ${JSON.stringify(f.name)}: letters, digits, '.', '_' and '-' only`);
  }
  const threshold = f.recoveryThreshold;
  if (!/^\d{1,4}$/.test(threshold)) {
    throw new CliError(`--recovery-threshold ${JSON.stringify(threshold)}: expected a number`);
  }
  const rpcPort = parsePort("--rpc-port", f.rpcPort);
  const nodePort = parsePort("--node-port", f.nodePort);
  if (rpcPort === nodePort) {
    throw new CliError(
      `--rpc-port and --node-port are both ${rpcPort}: the RPC and node-to-node interfaces ` +
        "listen on the same address, so they need different ports",
    );
  }
  const constitutionDir = resolve(f.constitutionDir ?? join(findPackageRoot(), "constitution"));
  const previous = f.previousServiceCert;
  return {
    command,
    name: f.name,
    host: parsePublishedHost(f.host),
    ...(f.bind !== undefined && { bind: parseHostOption("--bind", f.bind) }),
    rpcPort,
    nodePort,
    sans: parseSans(f.san),
    ...(f.peer !== undefined && { peer: parsePeerOption(f.peer) }),
    members: f.member.map(parseMember),
    constitutionFiles: command === "Start" ? constitutionFiles(constitutionDir) : [],
    serviceCertificateFile:
      f.serviceCert === undefined ? "service_cert.pem" : resolve(f.serviceCert),
    recoveryThreshold: Number(threshold),
    ...(previous !== undefined && { previousServiceCertificateFile: resolve(previous) }),
    ...(f.ledgerDir !== undefined && { ledgerDir: resolve(f.ledgerDir) }),
    ...(f.snapshotsDir !== undefined && { snapshotsDir: resolve(f.snapshotsDir) }),
  };
}

function constitutionFiles(dir: string): string[] {
  const names = existsSync(dir) ? constitutionFileNames(dir) : [];
  if (names.length === 0) throw new CliError(`--constitution-dir ${dir}: no .js files`);
  return names.map((n) => join(dir, n));
}

/**
 * Checks the document with the node's schema, then copies the inputs and writes it; returns the
 * file written. Nothing is written when the config exists (without --force) or is invalid.
 */
function writeConfig(dir: string, options: HostNodeOptions, force: boolean): string {
  const { options: local, copies } = selfContained(options);
  const document = nodeConfigForHost(local);
  const file = resolve(dir, "config.json");
  try {
    parseNodeConfig(document, file);
  } catch (err: unknown) {
    if (!isReportable(err)) throw err;
    throw new CliError(describeConfigError(err));
  }
  const overwriting = existsSync(file);
  if (overwriting && !force) {
    throw new CliError(`${file} exists; use --force to overwrite it`);
  }
  try {
    mkdirSync(dir, { recursive: true });
    copyInputs(dir, copies, overwriting);
    writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  } catch (err: unknown) {
    if (!isReportable(err)) throw err;
    throw new CliError(`writing ${dir}: ${err.message}`);
  }
  return file;
}

const HELP_AFTER = `
Writes <dir>/config.json (default dir: ./<name>) for one node on this host, publishing --host
on both interfaces (RPC on --rpc-port, node-to-node on --node-port) and binding --bind (default
0.0.0.0, or :: for an IPv6 --host). The node certificate names --host and every --san. Ledger,
snapshots, nodecert.pem and node.pid go under <dir> (unless --ledger-dir, --snapshots-dir).
--recover starts the disaster recovery of a service from a copy of its ledger.

<dir> is self-contained, to copy to the node's machine as it is: the files the node reads are
copied into it (members/, constitution/, service_cert.pem read by --join, or
previous_service_cert.pem for --recover) and the config names them relative to its directory.
A --join without --service-cert reads <dir>/service_cert.pem. Paths given to --ledger-dir,
--snapshots-dir and --service-cert of --start/--recover are written as absolute paths.

Examples:
  consortia config init --start --name node0 --host node0.example.com \\
      --member member0_cert.pem,member0_enc_pubk.pem
  consortia config init --join --name node1 --host 10.0.0.12 \\
      --peer https://node0.example.com:8000 --service-cert service_cert.pem
  consortia config init --recover --name node0 --host node0.example.com \\
      --previous-service-cert old_service_cert.pem --ledger-dir /backup/ledger \\
      --snapshots-dir /backup/snapshots --service-cert new_service_cert.pem
Then: consortia node --config node0/config.json
`;

export function registerConfig(program: Command): void {
  const config = program.command("config").description("Node configuration files.");
  const collect = (value: string, previous: string[]) => [...previous, value];
  config
    .command("init")
    .description("Write a ready node config (JSON) for one host")
    .option("--start", "the node starts a new service")
    .option("--join", "the node joins a running service (needs --peer)")
    .option("--recover", "the node recovers a service from its ledger (disaster recovery)")
    .option("--name <name>", "node name: certificate subject CN and default --dir (required)")
    .option("--host <host>", "published host: DNS name, IPv4 or IPv6 address (required)")
    .option("--peer <url>", "a node of the service to join, https://host:port")
    .option("--rpc-port <port>", "RPC port", String(DEFAULT_RPC_PORT))
    .option("--node-port <port>", "node-to-node port", String(DEFAULT_NODE_PORT))
    .option("--bind <host>", "address to listen on (default all: 0.0.0.0, or :: for IPv6)")
    .option("--san <san>", "extra certificate SAN, dNSName:<n> or iPAddress:<ip>", collect, [])
    .option("--member <files>", "--start: <cert.pem>[,<enc_pubk.pem>] (repeat)", collect, [])
    .option("--constitution-dir <dir>", "--start: constitution .js files (default: bundled)")
    .option("--service-cert <file>", "service certificate: written (start, recover), read (join)")
    .option("--previous-service-cert <file>", "--recover: the certificate of the old service")
    .option("--ledger-dir <dir>", "ledger directory (default <dir>/ledger)")
    .option("--snapshots-dir <dir>", "snapshots directory (default <dir>/snapshots)")
    .option("--recovery-threshold <n>", "--start: recovery threshold", "1")
    .option("--dir <dir>", "where config.json goes (default ./<name>)")
    .option(
      "--force",
      "overwrite an existing config.json (copies in members/ and constitution/ that no " +
        "option names are removed)",
    )
    .addHelpText("after", HELP_AFTER)
    .action((flags: InitFlags) => {
      const options = hostNodeOptions(flags);
      const dir = resolve(flags.dir ?? options.name);
      const file = writeConfig(dir, options, flags.force === true);
      const rpc = formatAddress({ host: options.host, port: options.rpcPort });
      console.log(`wrote ${file} (${options.command}: clients reach https://${rpc})`);
      console.log(`start the node with: consortia node --config ${file}`);
    });
}
