// App services on the node side (src/node/app-service/, ADR 0005) against a real app server
// (src/appservice/server.ts) over real mutual TLS on loopback, with a real Store and TxPipeline
// and the app services table written as set_app_service writes it. Covers: routes appear once the
// server proved its package and go when the row is removed; writes and reads; optimistic
// concurrency (a result computed from a stale cached value is retried with fresh values, so
// concurrent increments never lose one, and a value written behind the server's back is seen);
// whole-map reads; ccf.consensus; a write on a backup forwarded to the primary (nothing applied
// there); the node's refusal of results that break the access rules (nothing applied); a result
// too large for a frame (500);
// and the faults: server down (503 AppServiceUnavailable, then used again after a restart at
// the same address without any governance action), a server of another package (503
// AppServicePackageMismatch), a node certificate the service did not issue (refused at TLS:
// 503), and a slow handler (504 AppServiceTimeout, its late result dropped). Oracles: the
// bundle's own logic, the store's contents, and CCF's error codes as ADR 0005 fixes them.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../../../src/base/bytes.js";
import { ecPrivateKeyPem } from "../../../../src/crypto/identity.js";
import { Router, type RpcOutcome, type RpcRequest } from "../../../../src/http/router.js";
import { dispatchRequest } from "../../../../src/http/server.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";
import type { Store } from "../../../../src/kv/store.js";
import { packageIdOf, startAppServer, type AppServer } from "../../../../src/appservice/server.js";
import type { ResultMessage } from "../../../../src/appservice/messages.js";
import { AppServiceRoutes } from "../../../../src/node/app-service/app-service-routes.js";
import { commitResult } from "../../../../src/node/app-service/remote-transaction.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { APP_ACCESS, READ_ONLY } from "../../../../src/node/frontends/js-app-endpoints.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { answer, nodeStub, rpcRequest } from "../../../helpers/app-service-rig.js";

const service = await createStartIdentities({ now: new Date() });
const serverPki = await createStartIdentities({ now: new Date() });
const stranger = await createStartIdentities({ now: new Date() });
const cleanups: (() => void | Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const APP = `
export function incr(r) {
  const m = ccf.kv["public:counters"];
  const k = ccf.strToBuf(r.params.k);
  const v = m.get(k);
  const n = v === undefined ? 1 : Number(ccf.bufToStr(v)) + 1;
  m.set(k, ccf.strToBuf(String(n)));
  ccf.kv["public:log"].set(ccf.strToBuf(r.params.k + "/" + n), ccf.strToBuf("x"));
  return { body: { n } };
}
export function get(r) {
  const v = ccf.kv["public:counters"].get(ccf.strToBuf(r.params.k));
  return v === undefined ? { statusCode: 404 } : { body: ccf.bufToStr(v) };
}
export function count() { return { body: { n: ccf.kv["public:log"].size } }; }
export function slow() { const end = Date.now() + 400; while (Date.now() < end) {} return {}; }
export function consensus() {
  const c = ccf.consensus;
  return { body: { last: c.getLastCommittedTxId(), status: c.getStatusForTxId(2, 9), view: c.getViewForSeqno(9) } };
}
export function huge() { return { body: "x".repeat(17 * 1024 * 1024) }; }
export function who(r) { return { body: { caller: r.caller === undefined ? null : r.caller } }; }
`;

function endpoint(fn: string, mode = "readwrite") {
  return { js_module: "app.js", js_function: fn, authn_policies: [], mode };
}

function bundleOf(source: string): Uint8Array {
  const bundle = {
    metadata: {
      endpoints: {
        "/incr/{k}": { post: endpoint("incr") },
        "/counter/{k}": { get: endpoint("get", "readonly") },
        "/count": { get: endpoint("count", "readonly") },
        "/slow": { post: endpoint("slow") },
        "/who": { get: endpoint("who", "readonly") },
        "/huge": { get: endpoint("huge", "readonly") },
        "/consensus": { get: endpoint("consensus", "readonly") },
      },
    },
    modules: [{ name: "app.js", module: source }],
  };
  return utf8(JSON.stringify(bundle));
}

const BUNDLE = bundleOf(APP);
const PACKAGE_ID = packageIdOf(BUNDLE);

async function serve(bundle = BUNDLE, port = 0): Promise<AppServer> {
  return startAppServer({
    bundle,
    packageId: packageIdOf(bundle),
    host: "127.0.0.1",
    port,
    tlsCert: serverPki.node.certPem,
    tlsKey: ecPrivateKeyPem(serverPki.node.privateKey),
    serviceCert: service.serviceCertPem,
  });
}

interface Rig {
  store: Store;
  node: NodeContext;
  routes: AppServiceRoutes;
  setRow(address: string | null, extra?: Record<string, unknown>): void;
  call(method: string, path: string): Promise<RpcOutcome>;
}

function makeRig(client = service, role = { primary: true }): Rig {
  const node = nodeStub(service, cleanups, role);
  const store = node.store;
  const routes = new AppServiceRoutes({
    node,
    isOpen: () => true,
    identity: () => ({
      certPem: client.node.certPem,
      keyPem: ecPrivateKeyPem(client.node.privateKey),
      serviceCertPem: client.serviceCertPem,
    }),
    log: () => {},
  });
  cleanups.push(() => routes.close());
  const router = new Router();
  router.addSource("/app/", routes);
  const setRow = (address: string | null, extra: Record<string, unknown> = {}) => {
    const tx = store.begin();
    const map = tx.rw(SERVICE_TABLES.appServices);
    if (address === null) map.delete(utf8(PACKAGE_ID));
    else {
      const row = { address, ca_cert: serverPki.serviceCertPem, ...extra };
      map.set(utf8(PACKAGE_ID), utf8(JSON.stringify(row)));
    }
    assert.equal(store.commit(tx).kind, "committed");
  };
  const call = (method: string, path: string) =>
    dispatchRequest(rpcRequest(method, path), router, () => {});
  return { store, node, routes, setRow, call };
}

/** Calls until the answer is not `status`, for up to ~3 s (connecting, reconnecting). */
async function callUntilNot(rig: Rig, method: string, path: string, status: number) {
  let got = answer(await rig.call(method, path));
  for (let i = 0; i < 60 && got.status === status; i++) {
    await new Promise((r) => setTimeout(r, 50));
    got = answer(await rig.call(method, path));
  }
  return got;
}

test("served endpoints route once the server proved its package, and go with the row", async () => {
  const server = await serve();
  cleanups.push(() => server.close());
  const rig = makeRig();
  assert.equal(answer(await rig.call("POST", "/app/incr/a")).status, 404);
  rig.setRow(`127.0.0.1:${server.port}`);
  const first = await callUntilNot(rig, "POST", "/app/incr/a", 404);
  assert.deepEqual(first, { status: 200, body: '{"n":1}' });
  assert.equal(fromUtf8(rig.store.get("public:counters", utf8("a"))!), "1");
  assert.equal(answer(await rig.call("GET", "/app/counter/a")).body, "1");
  assert.equal(answer(await rig.call("GET", "/app/who")).body, '{"caller":null}');
  // ccf.consensus: the call's last committed txId, statuses and views asked of the node.
  assert.deepEqual(JSON.parse(answer(await rig.call("GET", "/app/consensus")).body), {
    last: { view: rig.node.pipeline.commitTxId.view, seqno: rig.node.pipeline.commitTxId.seqno },
    status: "Unknown",
    view: null,
  });
  const address = `127.0.0.1:${server.port}`;
  assert.deepEqual(rig.routes.states(), [
    { packageId: PACKAGE_ID, address, state: "ready", reason: null },
  ]);
  rig.setRow(null);
  assert.equal(answer(await rig.call("POST", "/app/incr/a")).status, 404);
});

test("a stale cached read is retried with fresh values: no increment is lost", async () => {
  const server = await serve();
  cleanups.push(() => server.close());
  const rig = makeRig();
  rig.setRow(`127.0.0.1:${server.port}`);
  await callUntilNot(rig, "GET", "/app/count", 404);
  // Concurrent increments: each result after the first was computed from an outdated value.
  const replies = await Promise.all(
    Array.from({ length: 8 }, () => rig.call("POST", "/app/incr/c")),
  );
  const ns = replies.map((r) => JSON.parse(answer(r).body).n as number).sort((a, b) => a - b);
  assert.deepEqual(ns, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(fromUtf8(rig.store.get("public:counters", utf8("c"))!), "8");
  // A write the server never saw is seen by the next call.
  const tx = rig.store.begin();
  tx.rw("public:counters").set(utf8("c"), utf8("100"));
  rig.store.commit(tx);
  assert.equal(answer(await rig.call("POST", "/app/incr/c")).body, '{"n":101}');
  // A whole-map read: every increment logged one key.
  assert.equal(answer(await rig.call("GET", "/app/count")).body, '{"n":9}');
});

function result(
  writes: ResultMessage["writes"],
  reads: ResultMessage["reads"] = [],
): ResultMessage {
  return {
    t: "result",
    id: 1,
    epoch: 0,
    status: 200,
    headers: {},
    body_kind: "none",
    body: new Uint8Array(0),
    reads,
    map_reads: [],
    writes,
    cleared: [],
    claims_digest: null,
    apply_writes: null,
  };
}

test("the node refuses results that break the access rules, and applies nothing of them", () => {
  const rig = makeRig();
  const context = (access: typeof APP_ACCESS) => ({
    request: { headers: {} } as unknown as RpcRequest,
    policies: [],
    access,
  });
  const ok = [["public:a", utf8("k"), utf8("v")]] as const;
  const gov = [...ok, ["public:ccf.gov.users.info", utf8("x"), utf8("{}")]] as const;
  assert.throws(() => commitResult(rig.node, result(gov), context(APP_ACCESS)), /read-only/);
  assert.throws(() => commitResult(rig.node, result(ok), context(READ_ONLY)), /read-only/);
  assert.equal(rig.store.get("public:a", utf8("k")), undefined);
  // A stale read: nothing applied, the fresh value returned for the retry.
  const seed = rig.store.begin();
  seed.rw("public:a").set(utf8("r"), utf8("now"));
  rig.store.commit(seed);
  const stale = commitResult(
    rig.node,
    result(ok, [["public:a", utf8("r"), 0]]),
    context(APP_ACCESS),
  );
  assert.equal(stale.kind, "stale");
  assert.equal(rig.store.get("public:a", utf8("k")), undefined);
  assert.deepEqual(stale.kind === "stale" ? stale.fresh.keys : null, [
    ["public:a", utf8("r"), utf8("now"), rig.store.lastWriteSeqno("public:a", utf8("r"))],
  ]);
  const version = rig.store.lastWriteSeqno("public:a", utf8("r"));
  const done = commitResult(
    rig.node,
    result(ok, [["public:a", utf8("r"), version]]),
    context(APP_ACCESS),
  );
  assert.equal(done.kind, "answer");
  assert.equal(fromUtf8(rig.store.get("public:a", utf8("k"))!), "v");
});

test("a server that is down answers 503 and is used again after a restart, with no governance", async () => {
  let server = await serve();
  const port = server.port;
  const rig = makeRig();
  rig.setRow(`127.0.0.1:${port}`);
  assert.equal((await callUntilNot(rig, "POST", "/app/incr/d", 404)).status, 200);
  await server.close();
  const down = await callUntilNot(rig, "POST", "/app/incr/d", 200);
  assert.equal(down.status, 503);
  assert.equal(down.code, "AppServiceUnavailable");
  assert.equal(rig.routes.states()[0]?.state, "down");
  server = await serve(BUNDLE, port);
  cleanups.push(() => server.close());
  const back = await callUntilNot(rig, "POST", "/app/incr/d", 503);
  assert.deepEqual(back, { status: 200, body: '{"n":2}' });
});

test("a server of another package answers 503 AppServicePackageMismatch", async () => {
  const other = await serve(bundleOf(APP + "\n// another version"));
  cleanups.push(() => other.close());
  const rig = makeRig();
  const good = await serve();
  cleanups.push(() => good.close());
  rig.setRow(`127.0.0.1:${good.port}`);
  await callUntilNot(rig, "GET", "/app/count", 404);
  // The row now points at a server of another package: the routes stay, the calls are refused.
  rig.setRow(`127.0.0.1:${other.port}`, { timeout_ms: 4000 });
  let got = answer(await rig.call("GET", "/app/count"));
  for (let i = 0; i < 60 && got.code !== "AppServicePackageMismatch"; i++) {
    await new Promise((r) => setTimeout(r, 50));
    got = answer(await rig.call("GET", "/app/count"));
  }
  assert.equal(got.status, 503);
  assert.equal(got.code, "AppServicePackageMismatch");
});

test("a node certificate the service did not issue is refused at TLS", async () => {
  const server = await serve();
  cleanups.push(() => server.close());
  const rig = makeRig(stranger);
  rig.setRow(`127.0.0.1:${server.port}`);
  await new Promise((r) => setTimeout(r, 300));
  // No bundle was ever received: the paths are unknown, and nothing was served.
  assert.equal(answer(await rig.call("GET", "/app/count")).status, 404);
  assert.equal(rig.routes.endpoints().length, 0);
});

test("a handler slower than timeout_ms answers 504 AppServiceTimeout and its result is dropped", async () => {
  const server = await serve();
  cleanups.push(() => server.close());
  const rig = makeRig();
  rig.setRow(`127.0.0.1:${server.port}`, { timeout_ms: 100 });
  await callUntilNot(rig, "GET", "/app/count", 404);
  const seqno = rig.store.seqno;
  const slow = answer(await rig.call("POST", "/app/slow"));
  assert.equal(slow.status, 504);
  assert.equal(slow.code, "AppServiceTimeout");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(rig.store.seqno, seqno, "nothing was applied");
  // The connection is still good.
  assert.equal(answer(await rig.call("POST", "/app/incr/t")).status, 200);
});

test("a result too large for a frame is a 500, and the connection stays usable", async () => {
  const server = await serve();
  cleanups.push(() => server.close());
  const rig = makeRig();
  rig.setRow(`127.0.0.1:${server.port}`);
  await callUntilNot(rig, "GET", "/app/count", 404);
  const huge = answer(await rig.call("GET", "/app/huge"));
  assert.equal(huge.status, 500);
  assert.equal(huge.code, "InternalError");
  assert.equal(answer(await rig.call("POST", "/app/incr/h")).status, 200);
});

test("on a backup a write is forwarded to the primary and a read is answered locally", async () => {
  const server = await serve();
  cleanups.push(() => server.close());
  const role = { primary: true };
  const rig = makeRig(service, role);
  rig.setRow(`127.0.0.1:${server.port}`);
  assert.equal((await callUntilNot(rig, "POST", "/app/incr/b", 404)).status, 200);
  role.primary = false;
  const seqno = rig.store.seqno;
  assert.deepEqual(await rig.call("POST", "/app/incr/b"), { kind: "forward-to-primary" });
  assert.equal(rig.store.seqno, seqno, "nothing applied on the backup");
  assert.equal(answer(await rig.call("GET", "/app/counter/b")).body, "1");
});
