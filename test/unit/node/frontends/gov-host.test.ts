// The node's GovHost (src/node/frontends/gov-host.ts): what a proposal cannot do is a
// GovHostError with a code and CCF's message (the constitution sees it as a JS Error), while a
// call outside a governance transaction, or any other failure of the node, is not turned into
// one. The node is a fake NodeContext holding only what these calls read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AssertionError } from "../../../../src/base/assert.js";
import { generateIdentity } from "../../../../src/crypto/identity.js";
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
} from "../../../../src/node/frontends/gov-host.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { RecoveryError, RecoveryErrorCode } from "../../../../src/node/recovery/recovery-shares.js";

const service = await generateIdentity({ name: "CCF Service", now: new Date() });

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
  const host = new NodeGovHost(node(), () => {});
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
  const host = new NodeGovHost(node(), () => {});
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
  );
  broken.tx = txWithStatus("Open");
  assert.throws(() => broken.triggerLedgerRekey(), AssertionError);
});
