// Issue #14 item 5 at the unit tier: the enclave registry (apps/registry, built as the project
// builds it) answers the same whether deployed into the node (JsAppRoutes, its tables written
// as set_js_app writes them) or served by an app server (AppServiceRoutes over real mutual TLS),
// for the same requests by the same user against stores with the same history: a registration
// (a write whose claims digest is its record's), the chaincode's enclaves, one enclave, a
// chaincode and an unknown one. Oracle: the in-node answers and the in-node store's rows.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { utf8 } from "../../../../src/base/bytes.js";
import { ecPrivateKeyPem, memberIdFromCert } from "../../../../src/crypto/identity.js";
import { Router } from "../../../../src/http/router.js";
import { dispatchRequest } from "../../../../src/http/server.js";
import { installAppCrypto } from "../../../../src/js/app-crypto-globals.js";
import { getQuickJS } from "../../../../src/js/quickjs.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";
import type { Store } from "../../../../src/kv/store.js";
import { packageIdOf, startAppServer } from "../../../../src/appservice/server.js";
import { AppServiceRoutes } from "../../../../src/node/app-service/app-service-routes.js";
import { JsAppRoutes } from "../../../../src/node/frontends/js-app-endpoints.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { answer, nodeStub, rpcRequest } from "../../../helpers/app-service-rig.js";
import { buildTsApp } from "../../../helpers/js-app-build.js";
import { simulateEnclave } from "../../../helpers/registry-enclave.js";
import { APP_DIR, MAPS, policy } from "../../apps/registry/harness.js";

const service = await createStartIdentities({ now: new Date() });
const serverPki = await createStartIdentities({ now: new Date() });
const user = await createStartIdentities({ now: new Date() });
const cleanups: (() => void | Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const built = await buildTsApp(APP_DIR);
const BUNDLE = utf8(JSON.stringify({ metadata: built.metadata, modules: built.modules }));
const PACKAGE_ID = packageIdOf(BUNDLE);
const USER_DER = new Uint8Array(
  Buffer.from(user.node.certPem.replace(/-----[^-]+-----|\s/g, ""), "base64"),
);

/** The same history in both stores: a user, a chaincode policy, the app in both forms. */
function seed(store: Store, address: string): void {
  const tx = store.begin();
  const id = memberIdFromCert(user.node.certPem);
  tx.rw(SERVICE_TABLES.userCerts).set(utf8(id), utf8(user.node.certPem));
  tx.rw(MAPS.chaincodes).set(utf8("cc1"), utf8(JSON.stringify(policy("cc1"))));
  for (const m of built.modules)
    tx.rw(SERVICE_TABLES.modules).set(utf8(`/${m.name}`), utf8(m.module));
  const endpoints = (built.metadata as { endpoints: Record<string, Record<string, object>> })
    .endpoints;
  for (const [path, operations] of Object.entries(endpoints)) {
    for (const [verb, info] of Object.entries(operations)) {
      const stored = { ...info, js_module: `/${(info as { js_module: string }).js_module}` };
      tx.rw(SERVICE_TABLES.endpoints).set(
        utf8(`${verb.toUpperCase()} ${path}`),
        utf8(JSON.stringify(stored)),
      );
    }
  }
  const row = { address, ca_cert: serverPki.serviceCertPem };
  tx.rw(SERVICE_TABLES.appServices).set(utf8(PACKAGE_ID), utf8(JSON.stringify(row)));
  assert.equal(store.commit(tx).kind, "committed");
}

test("the enclave registry answers the same in the node and served by an app server", async () => {
  const server = await startAppServer({
    bundle: BUNDLE,
    packageId: PACKAGE_ID,
    host: "127.0.0.1",
    port: 0,
    tlsCert: serverPki.node.certPem,
    tlsKey: ecPrivateKeyPem(serverPki.node.privateKey),
    serviceCert: service.serviceCertPem,
  });
  cleanups.push(() => server.close());
  const address = `127.0.0.1:${server.port}`;
  const inNode = nodeStub(service, cleanups);
  const served = nodeStub(service, cleanups);
  seed(inNode.store, address);
  seed(served.store, address);
  const nodeRouter = new Router();
  nodeRouter.addSource(
    "/app/",
    new JsAppRoutes({
      node: inNode,
      quickjs: await getQuickJS(),
      isOpen: () => true,
      installers: [(ctx) => installAppCrypto(ctx)],
      log: () => {},
    }),
  );
  const serviceRouter = new Router();
  const routes = new AppServiceRoutes({
    node: served as NodeContext,
    isOpen: () => true,
    identity: () => ({
      certPem: service.node.certPem,
      keyPem: ecPrivateKeyPem(service.node.privateKey),
      serviceCertPem: service.serviceCertPem,
    }),
    log: () => {},
  });
  cleanups.push(() => routes.close());
  serviceRouter.addSource("/app/", routes);
  const both = async (method: string, path: string, body?: string) => {
    const o = { certDer: USER_DER, ...(body === undefined ? {} : { body: utf8(body) }) };
    const a = answer(await dispatchRequest(rpcRequest(method, path, o), nodeRouter, () => {}));
    const b = answer(await dispatchRequest(rpcRequest(method, path, o), serviceRouter, () => {}));
    assert.deepEqual(b, a, `${method} ${path}`);
    return a;
  };
  // Wait for the server's bundle.
  for (let i = 0; i < 60 && routes.endpoints().length === 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const enclave = simulateEnclave({});
  const registered = await both("POST", "/app/registry/enclaves", enclave.body);
  assert.equal(registered.status, 200, registered.body);
  assert.equal(served.store.seqno, inNode.store.seqno);
  for (const map of [MAPS.enclaves, MAPS.enclaveStatus]) {
    assert.deepEqual([...served.store.entries(map)], [...inNode.store.entries(map)], map);
  }
  assert.equal((await both("GET", "/app/registry/chaincodes/cc1/enclaves")).status, 200);
  const one = await both("GET", `/app/registry/chaincodes/cc1/enclaves/${enclave.enclaveId}`);
  assert.equal(one.status, 200, one.body);
  assert.equal((await both("GET", "/app/registry/chaincodes/cc1")).status, 200);
  assert.equal((await both("GET", "/app/registry/chaincodes/nope")).status, 404);
});
