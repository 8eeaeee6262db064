/**
 * The server side of `POST /node/join` (ccf-compatibility.md §2.3, CCF's
 * node_frontend.h): a joining node presents its self-signed node certificate as the TLS client
 * certificate (no other authentication) and posts its interfaces, quote and encryption key.
 *
 * Owns the join decision and its writes to `nodes.info` and `nodes.endorsed_certificates`:
 *  - only the primary admits nodes; a backup answers 308 to the primary (503 if none is known);
 *  - the quote must be bound to the caller's key and its measurement and host data (and, for
 *    SEV-SNP, its TCB) must be allowed by governance (`nodes.virtual.*`, `nodes.snp.*`:
 *    snp-policy.ts), else 401 InvalidQuote and nothing is written;
 *  - while the service is Opening a new node is Trusted at once (during a disaster recovery it is
 *    told to retry later: 503 NodeCannotHandleRequest); once it is Open
 *    the node is Pending until governance trusts it. The joiner re-posts and is recognised by
 *    its public key (node id = SHA-256 of the key's DER);
 *  - a Trusted answer carries network_info: the ledger secrets, the service identity, the
 *    node certificate endorsed by the service key and the service's cose_signatures settings.
 *
 * Invariant: every answer and write comes from one transaction (runInTx), so a refused join
 * writes nothing. Issuing a certificate is asynchronous and cannot run inside a transaction: a
 * first attempt that finds a Trusted node without an endorsed certificate is abandoned, the
 * certificate is issued, and the transaction runs again with it.
 */
import { createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { z } from "zod";
import { assert } from "../../base/assert.js";
import { isForeignError, isTextDecodeError } from "../../base/errors.js";
import { derToPem, equalBytes, fromUtf8, toBase64 } from "../../base/bytes.js";
import { AttestationError, verifyQuote, type VerifiedQuote } from "../../attestation/virtual.js";
import { CertError } from "../../crypto/certs.js";
import {
  csrPublicKeyDer,
  endorseCertificateRequest,
  endorseNodeCertificate,
} from "../../crypto/cert-issuance.js";
import { nodeIdFromPublicKey } from "../../crypto/identity.js";
import {
  entriesById,
  getById,
  getSingleton,
  GOV_MAPS,
  type NetInterfaceInfo,
  type NodeInfo,
  type NodeStatus,
  reachableAddress,
  setById,
  type ServiceStatus,
} from "../../gov/tables.js";
import { errorBody, HttpError, HttpErrorCode } from "../../http/errors.js";
import {
  isForward,
  type ForwardToPrimary,
  type Router,
  type RpcOutcome,
  type RpcRequest,
  type RpcResponse,
} from "../../http/router.js";
import type { Tx } from "../../kv/tx.js";
import type { CoseSignaturesConfig } from "../../ledger/cose-signature.js";
import { defaultSubjectAltNames, formatKey, parseAddress } from "../config/config-values.js";
import { json, runInTx } from "../frontends/rpc-context.js";
import type { TxPipeline } from "../pipeline/tx-pipeline.js";
import { readSnpJoinPolicy, snpJoinRefusal } from "./snp-policy.js";

export const JOIN_PATH = "/node/join";

/** Validity of endorsed node certificates when the service config does not say. */
const DEFAULT_NODE_CERT_VALIDITY_DAYS = 365;

// ---- Wire format ----------------------------------------------------------------------------

/** CCF's NetInterface as NodeInfoNetwork serialises it; every key but bind_address optional. */
/** A `host:port` (`[v6]:port`) as the node config accepts it; kept as the text sent. */
const addressText = z.string().superRefine((text, ctx) => {
  const parsed = parseAddress(text);
  if (parsed.kind === "error") ctx.addIssue({ code: "custom", message: parsed.reason });
});

const netInterfaceSchema = z.strictObject({
  bind_address: addressText,
  published_address: addressText.optional(),
  protocol: z.string().optional(),
  app_protocol: z.string().optional(),
  max_open_sessions_soft: z.number().int().nonnegative().optional(),
  max_open_sessions_hard: z.number().int().nonnegative().optional(),
  endorsement: z.strictObject({ authority: z.string() }).optional(),
  http_configuration: z.record(z.string(), z.unknown()).optional(),
  accepted_endpoints: z.array(z.string()).optional(),
  forwarding_timeout_ms: z.number().int().nonnegative().optional(),
  redirections: z.unknown().optional(),
  enabled_operator_features: z.array(z.string()).optional(),
});

export const QUOTE_FORMATS = ["Insecure_Virtual", "AMD_SEV_SNP_v1", "OE_SGX_v1"] as const;

const quoteInfoSchema = z.strictObject({
  format: z.enum(QUOTE_FORMATS),
  quote: z.string(),
  endorsements: z.string(),
  uvm_endorsements: z.string().optional(),
  endorsed_tcb: z.string().optional(),
});

/** CCF's JoinNetworkNodeToNode::In. */
export const joinRequestSchema = z.strictObject({
  node_info_network: z.strictObject({
    node_to_node_interface: netInterfaceSchema,
    rpc_interfaces: z.record(z.string().min(1), netInterfaceSchema),
    will_locally_seal_ledger_secrets: z.boolean().optional(),
  }),
  quote_info: quoteInfoSchema,
  public_encryption_key: z.string().min(1),
  startup_seqno: z.number().int().nonnegative(),
  certificate_signing_request: z.string().min(1).optional(),
  node_data: z.unknown().optional(),
});
export type JoinRequest = z.infer<typeof joinRequestSchema>;

const SERVICE_STATUSES = ["Opening", "Open", "WaitingForRecoveryShares", "Recovering"] as const;

/** What a Trusted node needs to take part in the network. Lenient: unknown keys are dropped. */
export const networkInfoSchema = z.object({
  public_only: z.boolean(),
  last_recovered_signed_idx: z.number().int().nonnegative(),
  /** Seqno (decimal) the secret is in force from -> the secret. */
  ledger_secrets: z.record(
    z.string().regex(/^\d+$/),
    z.object({
      raw_key: z.string(),
      previous_secret_stored_version: z.number().int().optional(),
    }),
  ),
  identity: z.object({ cert: z.string().min(1), priv_key: z.string().min(1) }),
  service_status: z.enum(SERVICE_STATUSES).optional(),
  endorsed_certificate: z.string().min(1).optional(),
  cose_signatures_config: z.object({ issuer: z.string(), subject: z.string() }).optional(),
});
export type NetworkInfo = z.infer<typeof networkInfoSchema>;

/** CCF's JoinNetworkNodeToNode::Out; network_info only once the node is Trusted. */
export const joinResponseSchema = z.object({
  node_status: z.enum(["Pending", "Trusted", "Retired"]),
  node_id: z.string().regex(/^[a-f0-9]{64}$/),
  network_info: networkInfoSchema.optional(),
});
export type JoinResponse = z.infer<typeof joinResponseSchema>;

// ---- Context --------------------------------------------------------------------------------

export interface JoinServerContext {
  readonly pipeline: TxPipeline;
  /** `primaryRpcAddress` is "host:port", or null when no primary is known. */
  role(): { isPrimary: boolean; primaryRpcAddress: string | null };
  /** Seqno of the snapshot this node started from (0 without one). */
  readonly startupSeqno: number;
  /** The service key and certificate, and the cose_signatures settings joiners sign with. */
  serviceIdentity(): {
    certPem: string;
    privateKey: KeyObject;
    coseSignatures: CoseSignaturesConfig;
  };
  /** LedgerSecrets.list(): in increasing fromSeqno order. */
  ledgerSecrets(): { fromSeqno: number; key: Uint8Array }[];
  now(): Date;
  log(line: string): void;
}

export function registerJoinEndpoint(router: Router, ctx: JoinServerContext): void {
  router.add("POST", JOIN_PATH, (request) => handleJoin(ctx, request));
}

// ---- Request checks (no transaction) ----------------------------------------------------------

interface Caller {
  readonly nodeId: string;
  readonly publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo of the TLS client certificate's key. */
  readonly publicKeyDer: Uint8Array;
}

/** A join being decided: who asks, what they sent, and what their quote attests. */
interface Join {
  readonly caller: Caller;
  readonly request: JoinRequest;
  readonly verified: VerifiedQuote;
}

function callerOf(request: RpcRequest): Caller {
  if (request.callerCertDer === null) {
    throw new HttpError(
      HttpErrorCode.InvalidAuthenticationInfo,
      "Joining nodes must present their node certificate as the TLS client certificate.",
    );
  }
  let publicKey: KeyObject;
  try {
    publicKey = new X509Certificate(request.callerCertDer).publicKey;
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    throw new HttpError(
      HttpErrorCode.InvalidAuthenticationInfo,
      `The TLS client certificate could not be parsed: ${err.message}.`,
    );
  }
  const publicKeyDer = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));
  return { nodeId: nodeIdFromPublicKey(publicKey), publicKey, publicKeyDer };
}

function describeIssue(issues: readonly z.core.$ZodIssue[]): string {
  const issue = issues.find((i) => i.code === "unrecognized_keys") ?? issues[0];
  if (issue === undefined) return "Invalid join request.";
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => formatKey([...issue.path, k])).join(", ");
    return `Unknown key in join request: ${keys}.`;
  }
  const key = formatKey(issue.path);
  if (key === "") return "Join request must be a JSON object.";
  if (issue.input === undefined) return `Missing required key in join request: ${key}.`;
  return `Invalid value in join request at ${key}: ${issue.message}.`;
}

function parseJoinRequest(body: Uint8Array): JoinRequest {
  let document: unknown;
  try {
    document = JSON.parse(fromUtf8(body));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    throw new HttpError(
      HttpErrorCode.InvalidInput,
      `Join request is not valid JSON: ${err.message}.`,
    );
  }
  const parsed = joinRequestSchema.safeParse(document, { reportInput: true });
  if (!parsed.success) {
    throw new HttpError(HttpErrorCode.InvalidInput, describeIssue(parsed.error.issues));
  }
  return parsed.data;
}

/** A backup sends joiners to the primary, as CCF does (308 + NodeCannotHandleRequest). */
function redirectToPrimary(ctx: JoinServerContext): RpcResponse | null {
  const role = ctx.role();
  if (role.isPrimary) return null;
  if (role.primaryRpcAddress === null) {
    throw new HttpError(
      HttpErrorCode.PrimaryNotFound,
      "This node is not the primary and no primary is known; retry the join later.",
    );
  }
  return {
    status: 308,
    headers: { location: `https://${role.primaryRpcAddress}${JOIN_PATH}` },
    body: errorBody(
      HttpErrorCode.NodeCannotHandleRequest,
      "Node is not primary; cannot handle join request.",
    ),
  };
}

function checkEncryptionKey(pem: string): void {
  try {
    createPublicKey(pem);
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    throw new HttpError(
      HttpErrorCode.InvalidInput,
      `public_encryption_key is not a PEM public key: ${err.message}.`,
    );
  }
}

/** The CSR, when given, must certify the key the node presented over TLS. */
function checkCsr(csrPem: string, caller: Caller): void {
  let csrKeyDer: Uint8Array;
  try {
    csrKeyDer = csrPublicKeyDer(csrPem);
  } catch (err: unknown) {
    if (!(err instanceof CertError)) throw err;
    throw new HttpError(
      HttpErrorCode.CSRPublicKeyInvalid,
      `certificate_signing_request is ${err.message}.`,
    );
  }
  if (!equalBytes(csrKeyDer, caller.publicKeyDer)) {
    throw new HttpError(
      HttpErrorCode.CSRPublicKeyInvalid,
      "Public key in certificate_signing_request does not match the TLS client certificate key.",
    );
  }
}

function verifiedQuoteOf(request: JoinRequest, caller: Caller, now: Date): VerifiedQuote {
  try {
    return verifyQuote(request.quote_info, caller.publicKeyDer, now);
  } catch (err: unknown) {
    if (!(err instanceof AttestationError)) throw err;
    throw new HttpError(
      HttpErrorCode.InvalidQuote,
      `Quote could not be verified (${err.code}): ${err.message}.`,
    );
  }
}

// ---- The transaction --------------------------------------------------------------------------

/**
 * What the join transaction decided: an answer, or that a Trusted answer needs an endorsed
 * certificate not issued yet. Issuing is asynchronous and a transaction runs to completion
 * without awaiting (style.md §2.4), so the transaction is discarded, the certificate issued,
 * and the transaction run again with it.
 */
type JoinDecision =
  | { readonly kind: "answer"; readonly response: RpcResponse }
  | { readonly kind: "certificate-needed"; readonly validityDays: number }
  /** This node stopped being the primary while answering: the joiner retries elsewhere. */
  | { readonly kind: "not-primary"; readonly outcome: ForwardToPrimary };

function answer(response: RpcResponse): JoinDecision {
  return { kind: "answer", response };
}

/**
 * Governance's join policy for the quote's format: nodes.virtual.* for virtual quotes,
 * nodes.snp.* for SEV-SNP ones (snp-policy.ts).
 */
function checkJoinPolicy(tx: Tx, join: Join): void {
  const verified = join.verified;
  if (verified.format === "AMD_SEV_SNP_v1") {
    const uvmEndorsements = join.request.quote_info.uvm_endorsements;
    const refusal = snpJoinRefusal(readSnpJoinPolicy(tx), verified, uvmEndorsements);
    if (refusal !== null) throw new HttpError(HttpErrorCode.InvalidQuote, `${refusal}.`);
    return;
  }
  if (getById(tx, GOV_MAPS.virtualMeasurements, verified.measurement) === undefined) {
    throw new HttpError(
      HttpErrorCode.InvalidQuote,
      "Quote does not contain known enclave measurement.",
    );
  }
  if (getById(tx, GOV_MAPS.virtualHostData, verified.hostData) === undefined) {
    throw new HttpError(HttpErrorCode.InvalidQuote, "Quote does not contain known host data.");
  }
}

function checkStartupSeqno(ctx: JoinServerContext, request: JoinRequest): void {
  if (request.startup_seqno >= ctx.startupSeqno) return;
  throw new HttpError(
    HttpErrorCode.StartupSeqnoIsOld,
    `Node requested to join from seqno ${request.startup_seqno} which is older than this ` +
      `node's startup seqno ${ctx.startupSeqno}. A snapshot at least as recent as ` +
      `${ctx.startupSeqno} must be used instead.`,
  );
}

function checkPublishedAddressUnique(tx: Tx, join: Join): void {
  const address = reachableAddress(join.request.node_info_network.node_to_node_interface);
  for (const [id, info] of entriesById(tx, GOV_MAPS.nodeInfo)) {
    if (id === join.caller.nodeId || info.status === "Retired") continue;
    if (reachableAddress(info.node_to_node_interface) === address) {
      throw new HttpError(
        HttpErrorCode.NodeAlreadyExists,
        `A node with the same node-to-node published address ${address} already exists ` +
          `(node id ${id}).`,
      );
    }
  }
}

/** Parsed JSON holds no `undefined` values, so zod's `?: T | undefined` is CCF's `?: T`. */
function asInterface(net: JoinRequest["node_info_network"]["node_to_node_interface"]) {
  return net as NetInterfaceInfo;
}

function nodeInfoOf(ctx: JoinServerContext, join: Join, status: NodeStatus): NodeInfo {
  const { request, caller } = join;
  const network = request.node_info_network;
  const rpcInterfaces: Record<string, NetInterfaceInfo> = {};
  for (const [name, rpc] of Object.entries(network.rpc_interfaces)) {
    rpcInterfaces[name] = asInterface(rpc);
  }
  const quote = request.quote_info;
  const secrets = ctx.ledgerSecrets();
  const info: NodeInfo = {
    node_to_node_interface: asInterface(network.node_to_node_interface),
    rpc_interfaces: rpcInterfaces,
    quote_info: {
      format: quote.format,
      quote: quote.quote,
      endorsements: quote.endorsements,
      ...(quote.uvm_endorsements !== undefined ? { uvm_endorsements: quote.uvm_endorsements } : {}),
      ...(quote.endorsed_tcb !== undefined ? { endorsed_tcb: quote.endorsed_tcb } : {}),
    },
    encryption_pub_key: request.public_encryption_key,
    status,
    public_key: derToPem(caller.publicKeyDer, "PUBLIC KEY"),
    node_data: request.node_data ?? null,
    ledger_secret_seqno: secrets[secrets.length - 1]?.fromSeqno ?? 0,
  };
  if (request.certificate_signing_request !== undefined) {
    info.certificate_signing_request = request.certificate_signing_request;
  }
  return info;
}

function networkInfoOf(
  ctx: JoinServerContext,
  serviceStatus: ServiceStatus,
  endorsedCertificate: string,
): NetworkInfo {
  const identity = ctx.serviceIdentity();
  const ledgerSecrets: NetworkInfo["ledger_secrets"] = {};
  for (const secret of ctx.ledgerSecrets()) {
    ledgerSecrets[String(secret.fromSeqno)] = { raw_key: toBase64(secret.key) };
  }
  return {
    public_only: false,
    last_recovered_signed_idx: 0,
    ledger_secrets: ledgerSecrets,
    identity: {
      cert: identity.certPem,
      priv_key: identity.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    },
    service_status: serviceStatus,
    endorsed_certificate: endorsedCertificate,
    cose_signatures_config: { ...identity.coseSignatures },
  };
}

function pendingAnswer(nodeId: string): RpcResponse {
  const body: JoinResponse = { node_status: "Pending", node_id: nodeId };
  return json(body);
}

/** The answer to a Trusted node; records its endorsed certificate if it has none yet. */
function trustedAnswer(
  tx: Tx,
  ctx: JoinServerContext,
  nodeId: string,
  issued: string | undefined,
): JoinDecision {
  const service = getSingleton(tx, GOV_MAPS.serviceInfo);
  if (service === undefined) {
    throw new HttpError(HttpErrorCode.InternalError, "Service information is missing.");
  }
  let certificate = getById(tx, GOV_MAPS.nodeEndorsedCerts, nodeId);
  if (certificate === undefined) {
    if (issued === undefined) {
      const config = getSingleton(tx, GOV_MAPS.serviceConfig);
      const days = config?.maximum_node_certificate_validity_days;
      return { kind: "certificate-needed", validityDays: days ?? DEFAULT_NODE_CERT_VALIDITY_DAYS };
    }
    setById(tx, GOV_MAPS.nodeEndorsedCerts, nodeId, issued);
    certificate = issued;
  }
  const body: JoinResponse = {
    node_status: "Trusted",
    node_id: nodeId,
    network_info: networkInfoOf(ctx, service.status, certificate),
  };
  return answer(json(body));
}

/** Decides a join inside `tx`: answers, writes, needs a certificate, or throws HttpError. */
function answerJoin(
  tx: Tx,
  ctx: JoinServerContext,
  join: Join,
  issued: string | undefined,
): JoinDecision {
  checkJoinPolicy(tx, join);
  checkStartupSeqno(ctx, join.request);
  const nodeId = join.caller.nodeId;
  const existing = getById(tx, GOV_MAPS.nodeInfo, nodeId);
  if (existing !== undefined) {
    switch (existing.status) {
      case "Pending":
        return answer(pendingAnswer(nodeId));
      case "Trusted":
        return trustedAnswer(tx, ctx, nodeId, issued);
      case "Retired":
        throw new HttpError(
          HttpErrorCode.InvalidNodeState,
          `Joining node ${nodeId} is not in expected state (Retired): a retired node ` +
            "cannot rejoin.",
        );
    }
  }
  checkPublishedAddressUnique(tx, join);
  const service = getSingleton(tx, GOV_MAPS.serviceInfo);
  if (service === undefined) {
    throw new HttpError(HttpErrorCode.InternalError, "Service information is missing.");
  }
  if (service.status === "Recovering" || service.status === "WaitingForRecoveryShares") {
    // The recovering node alone holds the previous ledger's secrets until the private replay;
    // a joiner could not decrypt what it would be sent. It retries (5xx) and joins once Open.
    throw new HttpError(
      HttpErrorCode.NodeCannotHandleRequest,
      `The service is ${service.status}: nodes can join once the recovery has completed.`,
    );
  }
  const trusted = service.status === "Opening";
  const status: NodeStatus = trusted ? "Trusted" : "Pending";
  setById(tx, GOV_MAPS.nodeInfo, nodeId, nodeInfoOf(ctx, join, status));
  return trusted ? trustedAnswer(tx, ctx, nodeId, issued) : answer(pendingAnswer(nodeId));
}

/**
 * Never reaches a client: the answer that makes runInTx discard the join transaction when it
 * decided it needs a certificate (runInTx commits only 2xx answers).
 */
const DISCARD: RpcResponse = { status: 500 };

/** Runs answerJoin in a transaction; a "certificate-needed" decision leaves no write behind. */
function runJoinTx(ctx: JoinServerContext, join: Join, issued: string | undefined): JoinDecision {
  // Assigned inside the transaction's callback (`as` keeps TS from narrowing it to null).
  let needed = null as JoinDecision | null;
  const response = runInTx(ctx.pipeline, (tx) => {
    const decision = answerJoin(tx, ctx, join, issued);
    if (decision.kind === "answer") return decision.response;
    needed = decision;
    return DISCARD;
  });
  if (needed !== null) return needed;
  return isForward(response) ? { kind: "not-primary", outcome: response } : answer(response);
}

/**
 * The SANs of the endorsed certificate of a joiner that sent no CSR: the hosts of its published
 * RPC addresses, CCF's default (the addresses parsed with the request).
 */
function joinerSubjectAltNames(request: JoinRequest): string[] {
  const interfaces = Object.values(request.node_info_network.rpc_interfaces).map((rpc) => {
    const parsed = parseAddress(reachableAddress(rpc));
    assert(parsed.kind === "ok", "the join request's addresses were checked when it was parsed");
    return { publishedAddress: parsed.value };
  });
  return defaultSubjectAltNames(interfaces);
}

async function issueNodeCertificate(
  ctx: JoinServerContext,
  join: Join,
  validityDays: number,
): Promise<string> {
  const identity = ctx.serviceIdentity();
  const csrPem = join.request.certificate_signing_request;
  if (csrPem !== undefined) {
    // CCF: the certificate has the subject and SANs the joiner asked for (its node_certificate).
    try {
      return endorseCertificateRequest({
        csrPem,
        servicePrivateKey: identity.privateKey,
        serviceCertPem: identity.certPem,
        validFrom: ctx.now(),
        validityDays,
      });
    } catch (err: unknown) {
      if (!(err instanceof CertError)) throw err;
      throw new HttpError(HttpErrorCode.CSRPublicKeyInvalid, `${err.message}.`);
    }
  }
  return endorseNodeCertificate({
    servicePrivateKey: identity.privateKey,
    serviceCertPem: identity.certPem,
    nodePublicKey: join.caller.publicKey,
    subjectAltNames: joinerSubjectAltNames(join.request),
    validityDays,
    now: ctx.now(),
  });
}

async function handleJoin(ctx: JoinServerContext, request: RpcRequest): Promise<RpcOutcome> {
  const caller = callerOf(request);
  const body = parseJoinRequest(request.body);
  const redirect = redirectToPrimary(ctx);
  if (redirect !== null) return redirect;
  checkEncryptionKey(body.public_encryption_key);
  if (body.certificate_signing_request !== undefined) {
    checkCsr(body.certificate_signing_request, caller);
  }
  const join: Join = { caller, request: body, verified: verifiedQuoteOf(body, caller, ctx.now()) };
  let decision = runJoinTx(ctx, join, undefined);
  if (decision.kind === "certificate-needed") {
    const issued = await issueNodeCertificate(ctx, join, decision.validityDays);
    decision = runJoinTx(ctx, join, issued);
  }
  if (decision.kind === "not-primary") return decision.outcome;
  // With the certificate issued, a Trusted answer has all it needs.
  assert(decision.kind === "answer", "the join decided it needs a certificate twice");
  const response = decision.response;
  const status = (response.body as JoinResponse).node_status;
  ctx.log(`join: node ${caller.nodeId} answered ${status}`);
  return response;
}
