// The node's GovHost (src/node/frontends/gov-host.ts): what a proposal cannot do is a
// GovHostError with a code and CCF's message (the constitution sees it as a JS Error), while a
// call outside a governance transaction, or any other failure of the node, is not turned into
// one. The node is a fake NodeContext holding only what these calls read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { AssertionError } from "../../../../src/base/assert.js";
import { createCertificateSigningRequest } from "../../../../src/crypto/cert-issuance.js";
import { generateEcKeyPair, generateIdentity } from "../../../../src/crypto/identity.js";
import {
  getSingleton,
  GOV_MAPS,
  setSingleton,
  type ServiceStatus,
} from "../../../../src/gov/tables.js";
import { Store } from "../../../../src/kv/store.js";
import type { Tx } from "../../../../src/kv/tx.js";
import {
  GovHostError,
  GovHostErrorCode,
  NodeGovHost,
  parseAsn1Time,
} from "../../../../src/node/frontends/gov-host.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { RecoveryError, RecoveryErrorCode } from "../../../../src/node/recovery/recovery-shares.js";

const service = await generateIdentity({ name: "CCF Service", now: new Date() });
const serviceKey = () => createPrivateKey(service.privateKeyPem);

function node(writeRekey: (tx: Tx) => void = () => {}): NodeContext {
  const fake: Partial<NodeContext> = {
    serviceCertPem: service.certPem,
    disasterRecovery: null,
    scheduleRecoverySharesRefresh: () => {},
    writeRekey,
  };
  return fake as NodeContext;
}

function txWithStatus(status: ServiceStatus): Tx {
  const tx = new Store().begin();
  setSingleton(tx, GOV_MAPS.serviceInfo, {
    cert: service.certPem,
    status,
    recovery_count: 0,
    service_data: null,
    current_service_create_txid: "2.1",
  });
  return tx;
}

function isGovHostError(code: GovHostErrorCode, message: RegExp) {
  return (e: unknown) => e instanceof GovHostError && e.code === code && message.test(e.message);
}

test("opening a service that is not Opening is a GovHostError naming its status", () => {
  const host = new NodeGovHost(node(), () => {}, serviceKey);
  host.tx = txWithStatus("Open");
  assert.throws(
    () => host.transitionServiceToOpen(undefined, service.certPem),
    isGovHostError(GovHostErrorCode.NotOpening, /^service is Open, not Opening$/),
  );
  host.tx = txWithStatus("Opening");
  assert.throws(
    () => host.transitionServiceToOpen(service.certPem, service.certPem),
    isGovHostError(GovHostErrorCode.UnexpectedPreviousIdentity, /only for a recovered service/),
  );
  assert.throws(
    () => host.transitionServiceToOpen(undefined, "not this service"),
    isGovHostError(GovHostErrorCode.WrongNextIdentity, /not this service's certificate/),
  );
  host.transitionServiceToOpen(undefined, service.certPem);
  assert.equal(getSingleton(host.tx, GOV_MAPS.serviceInfo)?.status, "Open");
});

test("a GovHost call outside a governance transaction is an assertion, not a refusal", () => {
  const host = new NodeGovHost(node(), () => {}, serviceKey);
  assert.throws(() => host.transitionServiceToOpen(undefined, service.certPem), AssertionError);
  assert.throws(() => host.triggerLedgerRekey(), AssertionError);
});

test("a rekey before the reshare is refused; other rekey failures are not converted", () => {
  const notHeld = new RecoveryError({ code: RecoveryErrorCode.KeyNotHeld }, "retry the rekey");
  const refused = new NodeGovHost(
    node(() => {
      throw notHeld;
    }),
    () => {},
    serviceKey,
  );
  refused.tx = txWithStatus("Open");
  assert.throws(
    () => refused.triggerLedgerRekey(),
    isGovHostError(GovHostErrorCode.RekeyNotReady, /^retry the rekey$/),
  );
  const broken = new NodeGovHost(
    node(() => {
      throw new AssertionError("node bug");
    }),
    () => {},
    serviceKey,
  );
  broken.tx = txWithStatus("Open");
  assert.throws(() => broken.triggerLedgerRekey(), AssertionError);
});

test("generate_endorsed_certificate issues the CSR's subject and SANs from valid_from", async () => {
  const host = new NodeGovHost(node(), () => {}, serviceKey);
  const keys = generateEcKeyPair("secp256r1");
  const csr = await createCertificateSigningRequest({
    keys,
    subject: "CN=node7",
    subjectAltNames: ["dNSName:node7.example.com", "iPAddress:10.0.0.7"],
  });
  assert.throws(() => host.generateEndorsedCertificate(csr, "240101120000Z", 30), AssertionError);
  host.tx = txWithStatus("Open");
  const cert = new X509Certificate(host.generateEndorsedCertificate(csr, "240101120000Z", 30));
  assert.ok(cert.verify(new X509Certificate(service.certPem).publicKey), "issued by the service");
  assert.ok(cert.publicKey.equals(keys.publicKey));
  assert.equal(cert.subject, "CN=node7");
  assert.equal(cert.subjectAltName, "DNS:node7.example.com, IP Address:10.0.0.7");
  assert.equal(Date.parse(cert.validFrom), Date.UTC(2024, 0, 1, 12, 0, 0));
  assert.throws(
    () => host.generateEndorsedCertificate(csr, "2024-01-01", 30),
    isGovHostError(GovHostErrorCode.BadCertificateRequest, /valid_from "2024-01-01"/),
  );
  assert.throws(
    () => host.generateEndorsedCertificate("not a csr", "240101120000Z", 30),
    isGovHostError(GovHostErrorCode.BadCertificateRequest, /certificate signing request/),
  );
});

test("ASN.1 times: UTCTime years 1950-2049, GeneralizedTime, and nothing that is not a date", () => {
  assert.equal(parseAsn1Time("491231235959Z")?.toISOString(), "2049-12-31T23:59:59.000Z");
  assert.equal(parseAsn1Time("500101000000Z")?.toISOString(), "1950-01-01T00:00:00.000Z");
  assert.equal(parseAsn1Time("20510203040506Z")?.toISOString(), "2051-02-03T04:05:06.000Z");
  for (const bad of [
    "240230120000Z",
    "241301000000Z",
    "240101240000Z",
    "240101120000",
    "2401011200Z",
  ]) {
    assert.equal(parseAsn1Time(bad), null, bad);
  }
});
