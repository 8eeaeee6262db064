/**
 * `consortia registry simulate-enclave|register|list|show|verify` (issue #13 item 4): the enclave
 * registry (the `registry` app, under /app/registry) for operators and clients.
 *
 * - simulate-enclave makes a fresh enclave (registry-enclave.ts) and writes its attested data,
 *   virtual evidence and private keys (mode 0600) to a directory: for tests and demos only.
 * - register sends attested data and evidence as a user (POST /app/registry/enclaves) and prints
 *   the enclave id and transaction id; --wait waits until that transaction is committed.
 * - list and show print what the registry holds for a chaincode or one enclave.
 * - verify fetches an enclave's credentials and the receipt of their transaction, and checks
 *   them offline against the service certificate (registry-verify.ts) before printing the keys a
 *   client may trust.
 *
 * Connection options follow `consortia gov` (gov.ts), but the identity defaults to the
 * workspace's user0: registering is a user's call, and reads take a user or a member.
 * Invariant: every failure is one CliError line (exit 1), never a stack trace.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import { fromUtf8, toBase64 } from "../../base/bytes.js";
import { isNodeError, isTextDecodeError } from "../../base/errors.js";
import { CliError, isReportable } from "../cli-error.js";
import { ClientError, ClientErrorCode } from "@consortia/client";
import { type GovClient } from "../gov-client.js";
import { simulateEnclave, type SimulatedEnclave } from "../registry-enclave.js";
import { verifyRegistration, type TrustedEnclave } from "../registry-verify.js";
import { openClient, readText, type ConnectionOptions } from "./gov.js";

const DEFAULT_NODE = "https://127.0.0.1:8000";
const REGISTRY = "/app/registry";
const POLL_INTERVAL_MS = 200;
const DEFAULT_TIMEOUT_MS = 30_000;

const HELP_AFTER = `
Defaults come from a sandbox workspace (consortia sandbox): --cacert
<workspace>/sandbox_common/service_cert.pem, --cert/--key user0's, --node ${DEFAULT_NODE}.

The story (see README, "Enclave registry"):
  consortia gov propose --action set_registry_chaincode --args '{"chaincode_id": "cc1", ...}'
  consortia registry simulate-enclave --chaincode-id cc1 --version M --out enclave1
  consortia registry register --chaincode-id cc1 --attested-data enclave1/attested_data.json \\
    --evidence enclave1/evidence.json --wait
  consortia registry list --chaincode-id cc1
  consortia registry verify --chaincode-id cc1 --enclave-id <ID> --service-cert service_cert.pem
`;

/** Adds --workspace, --node, --cacert, --cert and --key; the identity defaults to user0. */
function addRegistryConnection(command: Command): Command {
  return command
    .option("--workspace <dir>", "sandbox workspace supplying the defaults", "./workspace")
    .option("--node <url>", "node URL", DEFAULT_NODE)
    .option("--cacert <file>", "service certificate for TLS (default: from the workspace)")
    .option("--cert <file>", "user (or member) certificate (default: workspace user0)")
    .option("--key <file>", "its private key (default: workspace user0)");
}

function openUserClient(options: ConnectionOptions, cacert?: string): GovClient {
  const common = join(options.workspace, "sandbox_common");
  return openClient({
    ...options,
    ...(options.cacert === undefined && cacert !== undefined && { cacert }),
    cert: options.cert ?? join(common, "user0_cert.pem"),
    key: options.key ?? join(common, "user0_privk.pem"),
  });
}

/** Runs `call` with a client; client errors become one-line CliErrors. */
async function withClient<T>(client: GovClient, call: (c: GovClient) => Promise<T>): Promise<T> {
  try {
    return await call(client);
  } catch (err: unknown) {
    if (err instanceof CliError || !isReportable(err)) throw err;
    throw new CliError(err.message);
  } finally {
    client.close();
  }
}

function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

function enclavePath(chaincodeId: string, enclaveId?: string): string {
  const base = `${REGISTRY}/chaincodes/${encodeURIComponent(chaincodeId)}`;
  return enclaveId === undefined
    ? `${base}/enclaves`
    : `${base}/enclaves/${encodeURIComponent(enclaveId)}`;
}

function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`${what} is not valid JSON: ${err.message}`);
  }
}

function readBytes(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read ${what} ${path}: ${err.code}`);
  }
}

function positiveInt(value: string, name: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new CliError(`${name} must be a non-negative integer`);
  return Number(value);
}

// ---- simulate-enclave -----------------------------------------------------------------------

interface SimulateCliOptions {
  chaincodeId: string;
  version: string;
  sequence: string;
  channelId?: string;
  peerEndpoint: string;
  mspId?: string;
  hostData?: string;
  curve: "secp256r1" | "secp384r1";
  out: string;
}

/** Writes the enclave's files into `dir`; returns their paths. */
export function writeSimulatedEnclave(enclave: SimulatedEnclave, dir: string): string[] {
  const files: [string, string | Uint8Array, number][] = [
    ["attested_data.json", enclave.attestedData, 0o644],
    ["evidence.json", `${JSON.stringify(enclave.evidence, null, 2)}\n`, 0o644],
    ["enclave_sk.pem", enclave.enclaveSkPem, 0o600],
    ["chaincode_dk.pem", enclave.chaincodeDkPem, 0o600],
  ];
  try {
    mkdirSync(dir, { recursive: true });
    return files.map(([name, content, mode]) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode });
      chmodSync(path, mode); // an existing file keeps its mode on write
      return path;
    });
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot write the enclave's files to ${dir}: ${err.code}`);
  }
}

function registerSimulate(registry: Command): void {
  registry
    .command("simulate-enclave")
    .description("Make a fresh enclave with virtual evidence (insecure: for tests and demos).")
    .requiredOption("--chaincode-id <id>", "the chaincode the enclave runs")
    .requiredOption("--version <measurement>", "the measurement the evidence claims")
    .option("--sequence <n>", "the chaincode's sequence", "1")
    .option("--channel-id <id>", "the channel")
    .option("--peer-endpoint <host:port>", "host_params.peer_endpoint", "localhost:7051")
    .option("--msp-id <id>", "host_params.peer_msp_id (the registering user's id or msp_id)")
    .option("--host-data <hex>", "the evidence's host_data (default: SHA-256 of a fixed text)")
    .addOption(
      new Option("--curve <curve>", "the enclave key's curve")
        .choices(["secp256r1", "secp384r1"])
        .default("secp256r1"),
    )
    .requiredOption("--out <dir>", "where to write the files")
    .action((o: SimulateCliOptions) => {
      if (o.hostData !== undefined && !/^([0-9a-fA-F]{2})+$/.test(o.hostData)) {
        throw new CliError("--host-data must be hex");
      }
      const enclave = simulateEnclave({
        chaincodeId: o.chaincodeId,
        version: o.version,
        sequence: positiveInt(o.sequence, "--sequence"),
        peerEndpoint: o.peerEndpoint,
        curve: o.curve,
        ...(o.channelId !== undefined && { channelId: o.channelId }),
        ...(o.mspId !== undefined && { mspId: o.mspId }),
        ...(o.hostData !== undefined && { hostData: o.hostData.toLowerCase() }),
      });
      const files = writeSimulatedEnclave(enclave, o.out);
      print(`enclave_id ${enclave.enclaveId}\n${files.map((f) => `wrote ${f}`).join("\n")}`);
    });
}

// ---- register -------------------------------------------------------------------------------

interface RegisterCliOptions extends ConnectionOptions {
  chaincodeId: string;
  attestedData: string;
  evidence: string;
  wait?: boolean;
  timeoutMs: string;
}

/** The request body: base64 of the attested data file's exact bytes, and the evidence JSON. */
export function registrationBody(attestedData: Uint8Array, evidenceText: string): string {
  const evidence = parseJsonText(evidenceText, "the evidence file");
  return JSON.stringify({ attested_data: toBase64(attestedData), evidence });
}

/** Waits (through the SDK's waitForCommit) until txId is committed; CliErrors otherwise. */
async function waitCommitted(client: GovClient, txId: string, timeoutMs: number) {
  try {
    await client.client.waitForCommit(txId, { timeoutMs, intervalMs: POLL_INTERVAL_MS });
  } catch (err: unknown) {
    if (!(err instanceof ClientError)) throw err;
    if (err.code === ClientErrorCode.TransactionInvalid) {
      throw new CliError(`transaction ${txId} is Invalid: register again`);
    }
    throw new CliError(err.message);
  }
}

function registerRegister(registry: Command): void {
  addRegistryConnection(
    registry
      .command("register")
      .description("Register an enclave's attested data and evidence (as a user)."),
  )
    .requiredOption("--chaincode-id <id>", "the chaincode (must match the attested data's)")
    .requiredOption("--attested-data <file>", "the attested data JSON, sent as its exact bytes")
    .requiredOption("--evidence <file>", 'evidence JSON {"format","quote","endorsements"}')
    .option("--wait", "wait until the registering transaction is committed")
    .option("--timeout-ms <ms>", "how long --wait waits", String(DEFAULT_TIMEOUT_MS))
    .action(async (o: RegisterCliOptions) => {
      const attested = readBytes(o.attestedData, "--attested-data");
      const claimed = chaincodeOfAttestedData(attested);
      if (claimed !== o.chaincodeId) {
        throw new CliError(
          `the attested data is for chaincode ${JSON.stringify(claimed)}, not ${o.chaincodeId}`,
        );
      }
      const body = registrationBody(attested, readText(o.evidence, "--evidence"));
      const timeoutMs = positiveInt(o.timeoutMs, "--timeout-ms");
      await withClient(openUserClient(o), async (client) => {
        const { value, txId } = await client.requestJsonWithTxId<Record<string, unknown>>(
          "POST",
          `${REGISTRY}/enclaves`,
          { bytes: new TextEncoder().encode(body), contentType: "application/json" },
        );
        const transactionId = value?.transaction_id ?? txId;
        if (typeof transactionId !== "string") {
          throw new CliError("the node's answer carries no transaction id");
        }
        if (o.wait === true) await waitCommitted(client, transactionId, timeoutMs);
        const answer = { enclave_id: value?.enclave_id, transaction_id: transactionId };
        print(JSON.stringify(o.wait === true ? { ...answer, committed: true } : answer, null, 2));
      });
    });
}

/** The chaincode_id the attested data names (so a wrong --chaincode-id fails before sending). */
function chaincodeOfAttestedData(bytes: Uint8Array): unknown {
  try {
    const parsed = JSON.parse(fromUtf8(bytes)) as { chaincode_id?: unknown } | null;
    return typeof parsed === "object" && parsed !== null ? parsed.chaincode_id : undefined;
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    throw new CliError(`the attested data is not UTF-8 JSON: ${err.message}`);
  }
}

// ---- list and show --------------------------------------------------------------------------

interface ReadCliOptions extends ConnectionOptions {
  chaincodeId: string;
  enclaveId?: string;
  json?: boolean;
}

interface ListedEnclave {
  enclave_id?: unknown;
  status?: unknown;
  transaction_id?: unknown;
  peer_endpoint?: unknown;
}

function registerListAndShow(registry: Command): void {
  addRegistryConnection(
    registry.command("list").description("List a chaincode's enclaves and their status."),
  )
    .requiredOption("--chaincode-id <id>", "the chaincode")
    .option("--json", "print the node's JSON answer")
    .action((o: ReadCliOptions) =>
      withClient(openUserClient(o), async (client) => {
        const answer = await client.requestJson<{ enclaves?: ListedEnclave[] }>(
          "GET",
          enclavePath(o.chaincodeId),
        );
        if (o.json === true) return print(JSON.stringify(answer ?? null, null, 2));
        const enclaves = answer?.enclaves ?? [];
        const lines = enclaves.map((e) =>
          [e.enclave_id, e.status, e.transaction_id, e.peer_endpoint].map(String).join("  "),
        );
        print([`${enclaves.length} enclave(s) of chaincode ${o.chaincodeId}`, ...lines].join("\n"));
      }),
    );
  addRegistryConnection(
    registry.command("show").description("Show one enclave's credentials, status and tx id."),
  )
    .requiredOption("--chaincode-id <id>", "the chaincode")
    .requiredOption("--enclave-id <id>", "the enclave (upper-case hex)")
    .option("--json", "print the node's JSON answer")
    .action((o: ReadCliOptions) =>
      withClient(openUserClient(o), async (client) => {
        const answer = await client.requestJson<Record<string, unknown>>(
          "GET",
          enclavePath(o.chaincodeId, o.enclaveId),
        );
        print(o.json === true ? JSON.stringify(answer ?? null, null, 2) : describeShown(answer));
      }),
    );
}

/** A few lines about a queryEnclaveCredentials answer (the JSON form has everything). */
function describeShown(answer: Record<string, unknown> | undefined): string {
  const data = (answer?.attested_data ?? {}) as Record<string, unknown>;
  const host = (data.host_params ?? {}) as Record<string, unknown>;
  const verified = (answer?.verified ?? {}) as Record<string, unknown>;
  const reason = answer?.reason === undefined ? "" : ` (${String(answer.reason)})`;
  return [
    `enclave ${String(answer?.enclave_id)} of chaincode ${String(answer?.chaincode_id)}`,
    `  status: ${String(answer?.status)}${reason}`,
    `  transaction_id: ${String(answer?.transaction_id)}`,
    `  format: ${String(verified.format)}`,
    `  measurement: ${String(verified.measurement)}`,
    `  host_data: ${String(verified.host_data)}`,
    `  peer_endpoint: ${String(host.peer_endpoint)}`,
    "(not verified here: `consortia registry verify` checks it against the service certificate)",
  ].join("\n");
}

// ---- verify ---------------------------------------------------------------------------------

interface VerifyCliOptions extends ConnectionOptions {
  chaincodeId: string;
  enclaveId: string;
  serviceCert: string;
  measurement?: string;
  json?: boolean;
  timeoutMs: string;
}

/** The JSON receipt of txId, once committed (the SDK's waitForCommit, then its receipt). */
async function fetchReceipt(client: GovClient, txId: string, timeoutMs: number) {
  await waitCommitted(client, txId, timeoutMs);
  return client.client.receipt(txId);
}

function registerVerify(registry: Command): void {
  addRegistryConnection(
    registry
      .command("verify")
      .description("Fetch an enclave's credentials and receipt; verify them offline."),
  )
    .requiredOption("--chaincode-id <id>", "the chaincode")
    .requiredOption("--enclave-id <id>", "the enclave (upper-case hex)")
    .requiredOption("--service-cert <file>", "the service certificate: the trust anchor")
    .option("--measurement <m>", "the measurement the client expects the enclave to run")
    .option("--json", "print the trusted keys as JSON")
    .option("--timeout-ms <ms>", "how long to wait for the receipt", String(DEFAULT_TIMEOUT_MS))
    .action(async (o: VerifyCliOptions) => {
      const serviceCertPem = readText(o.serviceCert, "--service-cert");
      const timeoutMs = positiveInt(o.timeoutMs, "--timeout-ms");
      const { credentials, receipt } = await withClient(
        openUserClient(o, o.serviceCert),
        async (client) => {
          const shown = await client.requestJson<Record<string, unknown>>(
            "GET",
            enclavePath(o.chaincodeId, o.enclaveId),
          );
          const txId = shown?.transaction_id;
          if (typeof txId !== "string") throw new CliError("the answer has no transaction_id");
          return { credentials: shown, receipt: await fetchReceipt(client, txId, timeoutMs) };
        },
      );
      let trusted: TrustedEnclave;
      try {
        trusted = verifyRegistration({
          chaincodeId: o.chaincodeId,
          enclaveId: o.enclaveId,
          credentials,
          receipt,
          serviceCertPem,
          now: new Date(),
          ...(o.measurement !== undefined && { expectedMeasurement: o.measurement }),
        });
      } catch (err: unknown) {
        if (!isReportable(err)) throw err;
        throw new CliError(`enclave ${o.enclaveId} is NOT verified: ${err.message}`);
      }
      print(o.json === true ? JSON.stringify(trustedJson(trusted), null, 2) : describe(trusted));
    });
}

/** The keys and facts a client may trust, as JSON. */
export function trustedJson(t: TrustedEnclave): Record<string, unknown> {
  return {
    chaincode_id: t.chaincodeId,
    enclave_id: t.enclaveId,
    transaction_id: t.transactionId,
    status: t.status,
    format: t.evidence.format,
    measurement: t.evidence.measurement,
    host_data: t.evidence.hostData,
    version: t.attestedData.version,
    sequence: t.attestedData.sequence,
    ...(t.attestedData.channel_id !== undefined && { channel_id: t.attestedData.channel_id }),
    peer_endpoint: t.attestedData.host_params.peer_endpoint,
    ...(t.attestedData.host_params.peer_msp_id !== undefined && {
      peer_msp_id: t.attestedData.host_params.peer_msp_id,
    }),
    enclave_vk: t.attestedData.enclave_vk,
    ...(t.attestedData.chaincode_ek !== undefined && { chaincode_ek: t.attestedData.chaincode_ek }),
    claims_digest: t.claimsDigest,
  };
}

function describe(t: TrustedEnclave): string {
  const json = trustedJson(t);
  const facts = ["measurement", "host_data", "peer_endpoint", "peer_msp_id", "channel_id"]
    .filter((key) => json[key] !== undefined)
    .map((key) => `  ${key}: ${String(json[key])}`);
  return [
    `enclave ${t.enclaveId} of chaincode ${t.chaincodeId} is verified (${t.transactionId})`,
    ...t.checks.map((check) => `  checked: ${check}`),
    ...facts,
    `enclave_vk:\n${t.attestedData.enclave_vk.trimEnd()}`,
    ...(t.attestedData.chaincode_ek === undefined
      ? []
      : [`chaincode_ek:\n${t.attestedData.chaincode_ek.trimEnd()}`]),
  ].join("\n");
}

export function registerRegistry(program: Command): void {
  const registry = program
    .command("registry")
    .description("The enclave registry: simulate, register, list, show and verify enclaves.")
    .addHelpText("after", HELP_AFTER);
  registerSimulate(registry);
  registerRegister(registry);
  registerListAndShow(registry);
  registerVerify(registry);
}
