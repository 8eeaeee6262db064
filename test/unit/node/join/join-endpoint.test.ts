// POST /node/join (src/node/join.ts), called through a Router with fake RpcRequests on a real
// TxPipeline + Store after a real genesis, and the joiner (src/node/join-client.ts) against a
// real HTTPS server on loopback. The KV state is the oracle for what a join wrote: refused joins
// must leave the store's seqno unchanged. Endorsed certificates are checked against the service
// certificate with isIssuedBy and against the joiner's key; ledger secrets and the service key
// in network_info are compared with the ones the rig holds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPublicKey, KeyObject, webcrypto, X509Certificate } from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { utf8 } from "../../../../src/base/bytes.js";
import type { View } from "../../../../src/base/ids.js";
import { makeVirtualQuote, VIRTUAL_MEASUREMENT } from "../../../../src/attestation/virtual.js";
import { isIssuedBy } from "../../../../src/crypto/certs.js";
import {
  createCertificateSigningRequest,
  createSelfSignedCertificate,
} from "../../../../src/crypto/cert-issuance.js";
import {
  ecPrivateKeyPem,
  generateEcKeyPair,
  generateEncryptionKey,
  generateIdentity,
  nodeIdFromPublicKey,
} from "../../../../src/crypto/identity.js";
import type { EcKeyPair } from "../../../../src/crypto/certs.js";
import {
  getById,
  getSingleton,
  GOV_MAPS,
  type NodeInfo,
  setById,
  setSingleton,
  type ServiceStatus,
} from "../../../../src/gov/tables.js";
import { writeGenesis } from "../../../../src/gov/genesis.js";
import { HttpError } from "../../../../src/http/errors.js";
import { Router, type RpcRequest, type RpcResponse } from "../../../../src/http/router.js";
import {
  answerOf,
  createRpcServer,
  errorResponse,
  type RpcServer,
} from "../../../../src/http/server.js";
import { Store } from "../../../../src/kv/store.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import {
  registerJoinEndpoint,
  type JoinRequest,
  type JoinServerContext,
} from "../../../../src/node/join/join-endpoint.js";
import { JoinError, JoinErrorCode, joinNetwork } from "../../../../src/node/join/join-client.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import { tempDir } from "../../../helpers/pki.js";

const NOW = new Date(Date.now() - 60_000);
const HOST_DATA = "cd".repeat(32);
const GENESIS_N2N = "10.0.0.1:8081";
const service = await createStartIdentities({ now: NOW });
const member = await generateIdentity({ name: "member0", now: NOW });
const ENCRYPTION_KEY = generateEncryptionKey();
const SECRET = new Uint8Array(32).fill(7);

// ---- Rig ----------------------------------------------------------------------------------

interface Role {
  isPrimary: boolean;
  primaryRpcAddress: string | null;
}

interface Rig {
  readonly pipeline: TxPipeline;
  readonly store: Store;
  readonly router: Router;
  readonly role: Role;
  readonly logs: string[];
  close(): Promise<void>;
}

function genesisNodeInfo(): NodeInfo {
  return {
    node_to_node_interface: { bind_address: "127.0.0.1:0", published_address: GENESIS_N2N },
    rpc_interfaces: { primary: { bind_address: "127.0.0.1:0" } },
    quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
    encryption_pub_key: ENCRYPTION_KEY.publicKeyPem,
    status: "Trusted",
    node_data: null,
  };
}

async function makeRig(
  options: { status?: ServiceStatus; startupSeqno?: number; role?: Role } = {},
): Promise<Rig> {
  const { dir, cleanup } = tempDir("consortia-join-");
  const secrets = new LedgerSecrets(SECRET);
  const store = new Store();
  const pipeline = new TxPipeline({
    store,
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    identity: service.node,
    options: {
      view: 2 as View,
      sigTxInterval: 1000,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 5,
    },
    nowMs: 0,
  });
  pipeline.execute((tx) => {
    writeGenesis(tx, {
      members: [{ certPem: member.certPem }],
      constitution: "export function resolve() { return 'Open'; }",
      serviceCertPem: service.serviceCertPem,
      serviceData: null,
      configuration: {
        recovery_threshold: 0,
        maximum_node_certificate_validity_days: 30,
        maximum_service_certificate_validity_days: 365,
        reconfiguration_type: "OneTransaction",
        recent_cose_proposals_window_size: 100,
      },
      node: { nodeId: service.node.nodeId, info: genesisNodeInfo() },
      virtualMeasurement: VIRTUAL_MEASUREMENT,
      virtualHostData: HOST_DATA,
    });
    const info = getSingleton(tx, GOV_MAPS.serviceInfo)!;
    setSingleton(tx, GOV_MAPS.serviceInfo, { ...info, status: options.status ?? "Opening" });
  });
  const role: Role = options.role ?? { isPrimary: true, primaryRpcAddress: null };
  const logs: string[] = [];
  const ctx: JoinServerContext = {
    pipeline,
    role: () => ({ ...role }),
    startupSeqno: options.startupSeqno ?? 0,
    serviceIdentity: () => ({
      certPem: service.serviceCertPem,
      privateKey: service.serviceKeys.privateKey,
      coseSignatures: { issuer: "service.example.com", subject: "ledger.signature" },
    }),
    ledgerSecrets: () => secrets.list(),
    now: () => new Date(),
    log: (line) => logs.push(line),
  };
  const router = new Router();
  registerJoinEndpoint(router, ctx);
  return {
    pipeline,
    store,
    router,
    role,
    logs,
    close: async () => {
      await pipeline.close();
      cleanup();
    },
  };
}

/** Reads committed state in a throwaway transaction. */
function read<T>(rig: Rig, f: (tx: ReturnType<Store["begin"]>) => T): T {
  return f(rig.store.begin());
}

function write(rig: Rig, f: (tx: ReturnType<Store["begin"]>) => void): void {
  const outcome = rig.pipeline.execute(f);
  assert.equal(outcome.kind, "committed");
}

// ---- Joiners and requests -----------------------------------------------------------------

interface Joiner {
  readonly keys: EcKeyPair;
  readonly certPem: string;
  readonly certDer: Uint8Array;
  readonly publicKeyDer: Uint8Array;
  readonly nodeId: string;
}

async function joinerFrom(keys: EcKeyPair): Promise<Joiner> {
  const certPem = await createSelfSignedCertificate({
    keys,
    subject: "CN=CCF Node",
    validityDays: 30,
    now: NOW,
  });
  return {
    keys,
    certPem,
    certDer: new Uint8Array(new X509Certificate(certPem).raw),
    publicKeyDer: new Uint8Array(keys.publicKey.export({ type: "spki", format: "der" })),
    nodeId: nodeIdFromPublicKey(keys.publicKey),
  };
}

function makeJoiner(): Promise<Joiner> {
  return joinerFrom(generateEcKeyPair());
}

function quoteFor(publicKeyDer: Uint8Array, hostData: string): JoinRequest["quote_info"] {
  return makeVirtualQuote(publicKeyDer, hostData) as JoinRequest["quote_info"];
}

function joinRequest(j: Joiner, overrides: Partial<JoinRequest> = {}): JoinRequest {
  const tag = j.nodeId.slice(0, 8);
  return {
    node_info_network: {
      node_to_node_interface: { bind_address: "0.0.0.0:0", published_address: `n-${tag}:8081` },
      rpc_interfaces: {
        primary_rpc_interface: {
          bind_address: "0.0.0.0:0",
          published_address: `n-${tag}:8080`,
          protocol: "tcp",
          app_protocol: "HTTP1",
        },
      },
      will_locally_seal_ledger_secrets: false,
    },
    quote_info: quoteFor(j.publicKeyDer, HOST_DATA),
    public_encryption_key: ENCRYPTION_KEY.publicKeyPem,
    startup_seqno: 0,
    node_data: { name: tag },
    ...overrides,
  };
}

async function post(
  rig: Rig,
  body: unknown,
  callerCertDer: Uint8Array | null,
): Promise<{ status: number; headers: Record<string, string>; body: any }> {
  const match = rig.router.match("POST", "/node/join");
  assert.equal(match.kind, "handler");
  if (match.kind !== "handler") throw new Error("no handler");
  const request: RpcRequest = {
    method: "POST",
    path: "/node/join",
    query: "",
    queryParams: new URLSearchParams(),
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? utf8(body) : utf8(JSON.stringify(body)),
    params: {},
    callerCertDer,
  };
  let response: RpcResponse;
  try {
    response = answerOf(await match.handler(request));
  } catch (err: unknown) {
    if (!(err instanceof HttpError)) throw err;
    response = errorResponse(err);
  }
  return { status: response.status, headers: { ...response.headers }, body: response.body };
}

function postAs(rig: Rig, j: Joiner, overrides: Partial<JoinRequest> = {}) {
  return post(rig, joinRequest(j, overrides), j.certDer);
}

function assertError(
  reply: { status: number; body: any },
  status: number,
  code: string,
  message?: RegExp,
): void {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, code);
  if (message !== undefined) assert.match(reply.body.error.message, message);
}

/** The network_info of a Trusted answer is what the service holds, for this joiner. */
function assertNetworkInfo(body: any, j: Joiner, serviceStatus: ServiceStatus): void {
  assert.equal(body.node_status, "Trusted");
  assert.equal(body.node_id, j.nodeId);
  const info = body.network_info;
  assert.equal(info.public_only, false);
  assert.equal(info.last_recovered_signed_idx, 0);
  assert.equal(info.service_status, serviceStatus);
  assert.deepEqual(info.ledger_secrets, {
    "1": { raw_key: Buffer.from(SECRET).toString("base64") },
  });
  assert.equal(info.identity.cert, service.serviceCertPem);
  const servicePublic = createPublicKey(info.identity.priv_key);
  assert.ok(servicePublic.equals(service.serviceKeys.publicKey), "priv_key is the service key");
  assert.match(info.identity.priv_key, /^-----BEGIN PRIVATE KEY-----/);
  const endorsed: string = info.endorsed_certificate;
  assert.ok(isIssuedBy(endorsed, service.serviceCertPem), "endorsed by the service cert");
  assert.ok(new X509Certificate(endorsed).publicKey.equals(j.keys.publicKey), "joiner's key");
  // CCF 6 hands joiners the service's cose_signatures settings, which they sign with.
  assert.deepEqual(info.cose_signatures_config, {
    issuer: "service.example.com",
    subject: "ledger.signature",
  });
}

// ---- Server side --------------------------------------------------------------------------

test("while Opening a new node is Trusted at once and gets network_info", async (t) => {
  const rig = await makeRig({ status: "Opening" });
  t.after(() => rig.close());
  const j = await makeJoiner();
  const reply = await postAs(rig, j);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assertNetworkInfo(reply.body, j, "Opening");

  const [info, cert] = read(rig, (tx) => [
    getById(tx, GOV_MAPS.nodeInfo, j.nodeId),
    getById(tx, GOV_MAPS.nodeEndorsedCerts, j.nodeId),
  ]);
  assert.equal(cert, reply.body.network_info.endorsed_certificate);
  const expected = joinRequest(j);
  assert.deepEqual(info, {
    node_to_node_interface: expected.node_info_network.node_to_node_interface,
    rpc_interfaces: expected.node_info_network.rpc_interfaces,
    quote_info: expected.quote_info,
    encryption_pub_key: ENCRYPTION_KEY.publicKeyPem,
    status: "Trusted",
    public_key: j.keys.publicKey.export({ type: "spki", format: "pem" }).toString(),
    node_data: expected.node_data,
    ledger_secret_seqno: 1,
  });
  // Validity comes from the service config (30 days), not the default 365.
  const endorsed = new X509Certificate(cert as string);
  const days = (Date.parse(endorsed.validTo) - Date.parse(endorsed.validFrom)) / 86_400_000;
  assert.ok(Math.abs(days - 30) < 1, `validity ${days} days`);
  // Its SAN is the host of the published RPC address, not the bind address (CCF's default).
  assert.equal(endorsed.subjectAltName, `DNS:n-${j.nodeId.slice(0, 8)}`);

  // A re-post is answered from the same records: same certificate, nothing new written.
  const seqno = rig.store.seqno;
  const again = await postAs(rig, j);
  assert.equal(again.status, 200);
  assert.equal(again.body.network_info.endorsed_certificate, cert);
  assert.equal(rig.store.seqno, seqno);
});

for (const status of ["Recovering", "WaitingForRecoveryShares"] as const) {
  test(`a ${status} service tells joiners to retry (503), writing nothing`, async (t) => {
    const rig = await makeRig({ status });
    t.after(() => rig.close());
    const j = await makeJoiner();
    const seqno = rig.store.seqno;
    const reply = await postAs(rig, j);
    assert.equal(reply.status, 503);
    assert.equal(reply.body.error.code, "NodeCannotHandleRequest");
    assert.match(reply.body.error.message, new RegExp(status));
    assert.equal(rig.store.seqno, seqno);
  });
}

test("once Open a node is Pending until trusted, then gets network_info", async (t) => {
  const rig = await makeRig({ status: "Open" });
  t.after(() => rig.close());
  const j = await makeJoiner();
  const first = await postAs(rig, j);
  assert.equal(first.status, 200);
  assert.deepEqual(first.body, { node_status: "Pending", node_id: j.nodeId });
  assert.equal(read(rig, (tx) => getById(tx, GOV_MAPS.nodeInfo, j.nodeId))?.status, "Pending");
  assert.equal(
    read(rig, (tx) => getById(tx, GOV_MAPS.nodeEndorsedCerts, j.nodeId)),
    undefined,
  );

  const seqno = rig.store.seqno;
  const second = await postAs(rig, j);
  assert.deepEqual(second.body, { node_status: "Pending", node_id: j.nodeId });
  assert.equal(rig.store.seqno, seqno, "a Pending re-post writes nothing");

  // What transition_node_to_trusted does to nodes.info.
  write(rig, (tx) => {
    const info = getById(tx, GOV_MAPS.nodeInfo, j.nodeId)!;
    setById(tx, GOV_MAPS.nodeInfo, j.nodeId, { ...info, status: "Trusted" });
  });
  const third = await postAs(rig, j);
  assert.equal(third.status, 200, JSON.stringify(third.body));
  assertNetworkInfo(third.body, j, "Open");
  const stored = read(rig, (tx) => getById(tx, GOV_MAPS.nodeEndorsedCerts, j.nodeId));
  assert.equal(stored, third.body.network_info.endorsed_certificate);
});

test("an already endorsed Trusted node gets the recorded certificate", async (t) => {
  const rig = await makeRig({ status: "Open" });
  t.after(() => rig.close());
  const j = await makeJoiner();
  await postAs(rig, j);
  write(rig, (tx) => {
    const info = getById(tx, GOV_MAPS.nodeInfo, j.nodeId)!;
    setById(tx, GOV_MAPS.nodeInfo, j.nodeId, { ...info, status: "Trusted" });
    setById(tx, GOV_MAPS.nodeEndorsedCerts, j.nodeId, service.node.certPem);
  });
  const reply = await postAs(rig, j);
  assert.equal(reply.body.network_info.endorsed_certificate, service.node.certPem);
});

test("quotes that fail are 401 InvalidQuote and write nothing", async (t) => {
  const rig = await makeRig({ status: "Opening" });
  t.after(() => rig.close());
  const j = await makeJoiner();
  const other = await makeJoiner();
  const reportData = createHash("sha256").update(j.publicKeyDer).digest("base64");
  const badMeasurement = {
    format: "Insecure_Virtual" as const,
    quote: Buffer.from(
      JSON.stringify({ measurement: "evil", host_data: HOST_DATA, report_data: reportData }),
    ).toString("base64"),
    endorsements: "",
  };
  const cases: [JoinRequest["quote_info"], RegExp][] = [
    [badMeasurement, /^Quote does not contain known enclave measurement\.$/],
    [quoteFor(j.publicKeyDer, "ee".repeat(32)), /^Quote does not contain known host data/],
    [quoteFor(other.publicKeyDer, HOST_DATA), /ReportDataMismatch.*report data/],
    [{ ...quoteFor(j.publicKeyDer, HOST_DATA), quote: "%%%" }, /MalformedQuote/],
    [{ ...quoteFor(j.publicKeyDer, HOST_DATA), format: "OE_SGX_v1" }, /UnsupportedFormat/],
    [
      { ...quoteFor(j.publicKeyDer, HOST_DATA), format: "AMD_SEV_SNP_v1" },
      /EvidenceRejected.*SEV-SNP evidence rejected: the attestation report is \d+ bytes/,
    ],
  ];
  const seqno = rig.store.seqno;
  for (const [quote, message] of cases) {
    const reply = await postAs(rig, j, { quote_info: quote });
    assertError(reply, 401, "InvalidQuote", message);
  }
  assert.equal(rig.store.seqno, seqno);
  assert.equal(
    read(rig, (tx) => getById(tx, GOV_MAPS.nodeInfo, j.nodeId)),
    undefined,
  );
});

test("a join without a TLS client certificate is 401", async (t) => {
  const rig = await makeRig();
  t.after(() => rig.close());
  const j = await makeJoiner();
  const reply = await post(rig, joinRequest(j), null);
  assertError(reply, 401, "InvalidAuthenticationInfo", /client certificate/);
});

/** `request` with `published_address` of its RPC interface replaced. */
function withRpcAddress(request: any, published: string): unknown {
  const network = request.node_info_network;
  const rpc = { ...network.rpc_interfaces.primary_rpc_interface, published_address: published };
  const rpcInterfaces = { primary_rpc_interface: rpc };
  return { ...request, node_info_network: { ...network, rpc_interfaces: rpcInterfaces } };
}

test("malformed bodies are 400 InvalidInput naming the dotted key", async (t) => {
  const rig = await makeRig();
  t.after(() => rig.close());
  const j = await makeJoiner();
  const full = joinRequest(j) as any;
  const withoutQuote = { ...full, quote_info: { format: "Insecure_Virtual", endorsements: "" } };
  const extraKey = {
    ...full,
    node_info_network: { ...full.node_info_network, colour: "blue" },
  };
  const cases: [unknown, RegExp][] = [
    ["{not json", /not valid JSON/],
    [[1, 2], /must be a JSON object/],
    [withoutQuote, /Missing required key in join request: quote_info\.quote\./],
    [extraKey, /Unknown key in join request: node_info_network\.colour\./],
    [{ ...full, startup_seqno: -1 }, /startup_seqno/],
    [{ ...full, quote_info: { ...full.quote_info, format: "SGX" } }, /quote_info\.format/],
    [{ ...full, public_encryption_key: "not a key" }, /public_encryption_key/],
    [withRpcAddress(full, "node0.example.com"), /rpc_interfaces\.primary_rpc_interface\.pub/],
    [withRpcAddress(full, "::1:8080"), /IPv6 addresses must be written in brackets/],
  ];
  for (const [body, message] of cases) {
    assertError(await post(rig, body, j.certDer), 400, "InvalidInput", message);
  }
  assert.equal(
    read(rig, (tx) => getById(tx, GOV_MAPS.nodeInfo, j.nodeId)),
    undefined,
  );
});

test("a backup redirects joins to the primary with 308, or 503 without one", async (t) => {
  const role: Role = { isPrimary: false, primaryRpcAddress: "10.1.2.3:8443" };
  const rig = await makeRig({ role });
  t.after(() => rig.close());
  const j = await makeJoiner();
  const seqno = rig.store.seqno;
  const reply = await postAs(rig, j);
  assertError(reply, 308, "NodeCannotHandleRequest");
  assert.equal(reply.headers.location, "https://10.1.2.3:8443/node/join");

  role.primaryRpcAddress = null;
  assertError(await postAs(rig, j), 503, "PrimaryNotFound");
  assert.equal(rig.store.seqno, seqno);
});

test("joining from a snapshot older than the target's is 400 StartupSeqnoIsOld", async (t) => {
  const rig = await makeRig({ startupSeqno: 10 });
  t.after(() => rig.close());
  const j = await makeJoiner();
  assertError(await postAs(rig, j, { startup_seqno: 9 }), 400, "StartupSeqnoIsOld", /9.*10/);
  const ok = await postAs(rig, j, { startup_seqno: 10 });
  assert.equal(ok.status, 200);
});

test("a published node-to-node address already used by a live node is NodeAlreadyExists", async (t) => {
  const rig = await makeRig();
  t.after(() => rig.close());
  const j = await makeJoiner();
  const network = joinRequest(j).node_info_network;
  const clash = {
    ...network,
    node_to_node_interface: { bind_address: "127.0.0.1:0", published_address: GENESIS_N2N },
  };
  const reply = await postAs(rig, j, { node_info_network: clash });
  assertError(reply, 400, "NodeAlreadyExists", new RegExp(service.node.nodeId));

  // A Retired node's address may be reused.
  write(rig, (tx) => {
    const info = getById(tx, GOV_MAPS.nodeInfo, service.node.nodeId)!;
    setById(tx, GOV_MAPS.nodeInfo, service.node.nodeId, { ...info, status: "Retired" });
  });
  const reused = await postAs(rig, j, { node_info_network: clash });
  assert.equal(reused.status, 200, JSON.stringify(reused.body));
});

test("a Retired node cannot rejoin", async (t) => {
  const rig = await makeRig();
  t.after(() => rig.close());
  const j = await makeJoiner();
  assert.equal((await postAs(rig, j)).status, 200);
  write(rig, (tx) => {
    const info = getById(tx, GOV_MAPS.nodeInfo, j.nodeId)!;
    setById(tx, GOV_MAPS.nodeInfo, j.nodeId, { ...info, status: "Retired" });
  });
  assertError(await postAs(rig, j), 400, "InvalidNodeState", /Retired/);
});

async function csrFor(keys: webcrypto.CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=CCF Node",
    keys,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-384" },
  });
  return csr.toString("pem");
}

test("a CSR must certify the TLS client key (CSRPublicKeyInvalid) and is recorded", async (t) => {
  const rig = await makeRig({ status: "Open" });
  t.after(() => rig.close());
  const algorithm = { name: "ECDSA", namedCurve: "P-384" };
  const webKeys = (await webcrypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const j = await joinerFrom({
    privateKey: KeyObject.from(webKeys.privateKey),
    publicKey: KeyObject.from(webKeys.publicKey),
  });
  const otherKeys = (await webcrypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const mismatch = await postAs(rig, j, { certificate_signing_request: await csrFor(otherKeys) });
  assertError(mismatch, 400, "CSRPublicKeyInvalid", /does not match/);
  const garbage = await postAs(rig, j, { certificate_signing_request: "garbage" });
  assertError(garbage, 400, "CSRPublicKeyInvalid");

  const csr = await csrFor(webKeys);
  const reply = await postAs(rig, j, { certificate_signing_request: csr });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  const info = read(rig, (tx) => getById(tx, GOV_MAPS.nodeInfo, j.nodeId));
  assert.equal(info?.certificate_signing_request, csr);
});

test("a joiner's CSR gives its endorsed certificate the subject and SANs it asked for", async (t) => {
  const rig = await makeRig({ status: "Opening" });
  t.after(() => rig.close());
  const j = await makeJoiner();
  const csr = await createCertificateSigningRequest({
    keys: j.keys,
    subject: "CN=node1",
    subjectAltNames: ["dNSName:node1.example.com", "iPAddress:10.0.0.2"],
  });
  const reply = await postAs(rig, j, { certificate_signing_request: csr });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  assertNetworkInfo(reply.body, j, "Opening");
  const endorsed = new X509Certificate(reply.body.network_info.endorsed_certificate);
  assert.equal(endorsed.subject, "CN=node1");
  assert.equal(endorsed.subjectAltName, "DNS:node1.example.com, IP Address:10.0.0.2");
});

// ---- Joiner over HTTPS --------------------------------------------------------------------

async function serve(rig: Rig): Promise<RpcServer> {
  return createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: service.node.certPem,
    keyPem: ecPrivateKeyPem(service.node.privateKey),
    caPem: service.serviceCertPem,
    maxBodyBytes: 1 << 20,
    router: rig.router,
    log: () => {},
  });
}

test("joinNetwork follows a redirect, polls while Pending, and returns network_info", async (t) => {
  const primary = await makeRig({ status: "Open" });
  t.after(() => primary.close());
  const backupRole: Role = { isPrimary: false, primaryRpcAddress: null };
  // The backup shares nothing with the primary but the redirect.
  const backup = await makeRig({ role: backupRole });
  t.after(() => backup.close());
  const primaryServer = await serve(primary);
  t.after(() => primaryServer.close());
  const backupServer = await serve(backup);
  t.after(() => backupServer.close());
  backupRole.primaryRpcAddress = `127.0.0.1:${primaryServer.port}`;

  const j = await makeJoiner();
  const logs: string[] = [];
  let pendingAnswers = 0;
  const result = await joinNetwork({
    targetAddress: `127.0.0.1:${backupServer.port}`,
    serviceCertPem: service.serviceCertPem,
    nodeCertPem: j.certPem,
    nodeKeyPem: ecPrivateKeyPem(j.keys.privateKey),
    request: joinRequest(j),
    retryTimeoutMs: 20,
    log: (line) => logs.push(line),
    onPending: (nodeId) => {
      assert.equal(nodeId, j.nodeId);
      if (++pendingAnswers < 2) return;
      // Governance trusts the node after the second Pending answer.
      write(primary, (tx) => {
        const info = getById(tx, GOV_MAPS.nodeInfo, j.nodeId)!;
        if (info.status === "Pending") {
          setById(tx, GOV_MAPS.nodeInfo, j.nodeId, { ...info, status: "Trusted" });
        }
      });
    },
  });
  assert.equal(result.nodeId, j.nodeId);
  assert.equal(pendingAnswers, 2);
  assertNetworkInfo(
    { node_status: "Trusted", node_id: result.nodeId, network_info: result.networkInfo },
    j,
    "Open",
  );
  assert.ok(
    logs.some((l) => l.includes("redirected to 127.0.0.1:")),
    logs.join("\n"),
  );
  assert.equal(
    read(backup, (tx) => getById(tx, GOV_MAPS.nodeInfo, j.nodeId)),
    undefined,
  );
});

test("joinNetwork stops with the server's error on 401 InvalidQuote", async (t) => {
  const rig = await makeRig();
  t.after(() => rig.close());
  const server = await serve(rig);
  t.after(() => server.close());
  const j = await makeJoiner();
  const request = joinRequest(j, { quote_info: quoteFor(j.publicKeyDer, "00") });
  await assert.rejects(
    joinNetwork({
      targetAddress: `127.0.0.1:${server.port}`,
      serviceCertPem: service.serviceCertPem,
      nodeCertPem: j.certPem,
      nodeKeyPem: ecPrivateKeyPem(j.keys.privateKey),
      request,
      retryTimeoutMs: 20,
      log: () => {},
    }),
    (err: unknown) => {
      assert.ok(err instanceof JoinError, String(err));
      assert.equal(err.code, JoinErrorCode.Rejected);
      assert.equal(err.type.status, 401);
      assert.equal(err.type.serverCode, "InvalidQuote");
      assert.match(err.message, /401 InvalidQuote: Quote does not contain known host data/);
      return true;
    },
  );
});

test("joinNetwork retries an unreachable target until aborted", async (t) => {
  const rig = await makeRig();
  t.after(() => rig.close());
  const server = await serve(rig);
  const port = server.port;
  await server.close(); // Nothing listens there any more: every attempt is refused.
  const j = await makeJoiner();
  const controller = new AbortController();
  const logs: string[] = [];
  const joining = joinNetwork({
    targetAddress: `127.0.0.1:${port}`,
    serviceCertPem: service.serviceCertPem,
    nodeCertPem: j.certPem,
    nodeKeyPem: ecPrivateKeyPem(j.keys.privateKey),
    request: joinRequest(j),
    retryTimeoutMs: 10,
    log: (line) => {
      logs.push(line);
      if (logs.length === 3) controller.abort();
    },
    signal: controller.signal,
  });
  await assert.rejects(joining, (err: unknown) => {
    assert.ok(err instanceof JoinError, String(err));
    assert.equal(err.code, JoinErrorCode.Aborted);
    return true;
  });
  assert.ok(logs.length >= 3 && logs.every((l) => l.includes("could not reach")), logs.join("\n"));
});
