// JS app routing (src/node/frontends/js-app-endpoints.ts) over a real Store and TxPipeline, with
// the app's tables written as set_js_app writes them: routes follow the KV (added, changed and
// removed by committed writes, as a backup sees replicated ones), a JS endpoint wins over a
// built-in one at the same path and verb, the commit rule (2xx, or setApplyWrites), readonly mode
// and historical's header check (its state is tested in test/e2e/js-app.test.ts),
// forwarding_required "always" on a backup, the service-open check, CCF's 500 for an exception,
// with details only when return_exception_details is set, and the life of reused interpreters
// (kept across requests and runtime options, dropped by interpreter.flush, the bytecode map and
// a limit hit), and the move to a fresh QuickJS module after the current one is discarded.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../../../src/base/bytes.js";
import type { View } from "../../../../src/base/ids.js";
import { Router, type RpcOutcome, type RpcRequest } from "../../../../src/http/router.js";
import { dispatchRequest } from "../../../../src/http/server.js";
import { discardQuickJS, getQuickJS } from "../../../../src/js/quickjs.js";
import { SINGLETON_KEY } from "../../../../src/kv/encoding.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";
import { Store } from "../../../../src/kv/store.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { JsAppRoutes, jsOpenApiPaths } from "../../../../src/node/frontends/js-app-endpoints.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { SystemClock } from "../../../../src/platform/system-clock.js";
import { InlineSealer } from "../../../../src/node/pipeline/sealer.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { tempDir } from "../../../helpers/pki.js";

const identities = await createStartIdentities({ now: new Date() });
const quickjs = await getQuickJS();
const cleanups: (() => void)[] = [];
after(() => {
  for (const cleanup of cleanups) cleanup();
});

const APP = `
export function put(r) { ccf.kv["public:kv"].set(ccf.strToBuf(r.params.k), ccf.strToBuf(r.body.text())); return {}; }
export function get(r) { const v = ccf.kv["public:kv"].get(ccf.strToBuf(r.params.k)); return v === undefined ? { statusCode: 404 } : { body: ccf.bufToStr(v) }; }
export function failingWrite(r) { ccf.kv["public:kv"].set(ccf.strToBuf("f"), ccf.strToBuf("x")); ccf.rpc.setApplyWrites(r.query === "apply"); return { statusCode: 409 }; }
export function boom() { throw new Error("kaboom"); }
export function touchGov() { ccf.kv["public:ccf.gov.users.info"].set(ccf.strToBuf("x"), ccf.strToBuf("{}")); return {}; }
export function v2() { return { body: "v2" }; }
let calls = 0;
export function count() { calls += 1; return { body: String(calls) }; }
export function spin() { calls += 1; for (;;) {} }`;

function endpoint(fn: string, extra: Record<string, unknown> = {}) {
  return {
    js_module: "/app.js",
    js_function: fn,
    forwarding_required: "sometimes",
    authn_policies: [],
    mode: "readwrite",
    ...extra,
  };
}

const ENDPOINTS: Record<string, unknown> = {
  "PUT /kv/{k}": endpoint("put"),
  "GET /kv/{k}": endpoint("get", { mode: "readonly", openapi: { summary: "read" } }),
  "POST /fail": endpoint("failingWrite"),
  "POST /boom": endpoint("boom"),
  "POST /gov": endpoint("touchGov"),
  "POST /ro": endpoint("put", { mode: "readonly" }),
  "GET /hist": endpoint("get", { mode: "historical" }),
  "POST /always": endpoint("put", { forwarding_required: "always" }),
  "GET /builtin": endpoint("v2"),
  "POST /count": endpoint("count", { interpreter_reuse: { key: "c" } }),
  "POST /spin": endpoint("spin", { interpreter_reuse: { key: "c" } }),
  "POST /fresh": endpoint("count"),
};

interface Rig {
  store: Store;
  router: Router;
  open: boolean;
  leader: boolean;
  writable: boolean;
  write(map: string, entries: [string, unknown][], clear?: boolean): void;
  call(method: string, path: string, body?: string, query?: string): Promise<RpcOutcome>;
}

function makeRig(): Rig {
  const { dir, cleanup } = tempDir("consortia-js-app-");
  cleanups.push(cleanup);
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(4));
  const store = new Store();
  const rig = { store, open: true, leader: true, writable: true } as Rig;
  const pipeline = new TxPipeline({
    store,
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    sealer: new InlineSealer(secrets),
    identity: identities.node,
    options: { view: 2 as View, sigTxInterval: 1000, sigMsInterval: 1e12, conflictRetriesMax: 3 },
    nowMs: 0,
    consensus: {
      replicate: () => {},
      canWrite: () => rig.writable,
      configurationOf: () => undefined,
    },
  });
  const node = {
    clock: new SystemClock(),
    store,
    pipeline,
    raft: {
      get isLeader() {
        return rig.leader;
      },
      status: () => "Unknown",
      log: { last: 0, baseSeqno: 0, viewAt: () => 0 },
    },
  } as unknown as NodeContext;
  const routes = new JsAppRoutes({
    node,
    quickjs,
    isOpen: () => rig.open,
    installers: [],
    log: () => {},
  });
  rig.router = new Router();
  rig.router.add("GET", "/app/builtin", () => ({ status: 200, body: "built-in" }));
  rig.router.addSource("/app/", routes);
  rig.write = (map, entries, clear = false) => {
    const tx = store.begin();
    const handle = tx.rw(map);
    if (clear) handle.clear();
    for (const [k, v] of entries) {
      const key = k === "" ? SINGLETON_KEY : utf8(k);
      handle.set(key, utf8(typeof v === "string" ? v : JSON.stringify(v)));
    }
    assert.equal(store.commit(tx).kind, "committed");
  };
  rig.call = (method, path, body = "", query = "") => {
    const request: RpcRequest = {
      method,
      path,
      query,
      queryParams: new URLSearchParams(query),
      headers: {},
      body: utf8(body),
      params: {},
      callerCertDer: null,
    };
    return dispatchRequest(request, rig.router, () => {});
  };
  rig.write(SERVICE_TABLES.modules, [["/app.js", APP]]);
  rig.write(SERVICE_TABLES.endpoints, Object.entries(ENDPOINTS));
  return rig;
}

function status(outcome: RpcOutcome): number {
  assert.ok(!("kind" in outcome), "not a forward");
  return outcome.status;
}

function bodyText(outcome: RpcOutcome): string {
  assert.ok(!("kind" in outcome));
  const body = outcome.body;
  return body instanceof Uint8Array ? fromUtf8(body) : JSON.stringify(body);
}

test("routes follow the KV and a JS endpoint wins over a built-in one", async () => {
  const rig = makeRig();
  assert.equal(status(await rig.call("PUT", "/app/kv/a", "one")), 200);
  const got = await rig.call("GET", "/app/kv/a");
  assert.equal(bodyText(got), "one");
  assert.equal(bodyText(await rig.call("GET", "/app/builtin")), "v2");
  assert.equal(status(await rig.call("DELETE", "/app/kv/a")), 405);
  // A new app version: the changed module is used at once.
  rig.write(SERVICE_TABLES.modules, [
    ["/app.js", 'export function v2() { return { body: "v3" }; }'],
  ]);
  assert.equal(bodyText(await rig.call("GET", "/app/builtin")), "v3");
  // remove_js_app: the JS paths are gone, the built-in one answers again.
  rig.write(SERVICE_TABLES.endpoints, [], true);
  assert.equal(status(await rig.call("GET", "/app/kv/a")), 404);
  assert.equal(bodyText(await rig.call("GET", "/app/builtin")), '"built-in"');
});

test("writes commit on 2xx or with setApplyWrites; readonly and ccf maps refuse", async () => {
  const rig = makeRig();
  assert.equal(status(await rig.call("POST", "/app/fail")), 409);
  assert.equal(rig.store.get("public:kv", utf8("f")), undefined);
  assert.equal(status(await rig.call("POST", "/app/fail", "", "apply")), 409);
  assert.equal(fromUtf8(rig.store.get("public:kv", utf8("f"))!), "x");
  assert.equal(status(await rig.call("POST", "/app/ro", "x")), 500);
  assert.equal(status(await rig.call("POST", "/app/gov")), 500);
  assert.equal(rig.store.get(SERVICE_TABLES.userInfo, utf8("x")), undefined);
});

test("exceptions are CCF's 500, with details only when the runtime options say", async () => {
  const rig = makeRig();
  const plain = await rig.call("POST", "/app/boom");
  assert.equal(status(plain), 500);
  assert.deepEqual(JSON.parse(bodyText(plain)), {
    error: { code: "InternalError", message: "Exception thrown while executing." },
  });
  const options = { max_heap_bytes: 1 << 26, max_stack_bytes: 1 << 18, max_execution_time_ms: 500 };
  rig.write(SERVICE_TABLES.jsRuntimeOptions, [
    ["", { ...options, return_exception_details: true }],
  ]);
  const detailed = JSON.parse(bodyText(await rig.call("POST", "/app/boom"))) as {
    error: { details: { code: string; message: string }[] };
  };
  assert.equal(detailed.error.details[0]?.code, "JSException");
  assert.match(detailed.error.details[0]?.message ?? "", /kaboom/);
});

test("historical needs the txId header; always-forward forwards; closed is FrontendNotOpen", async () => {
  const rig = makeRig();
  const historical = await rig.call("GET", "/app/hist");
  assert.equal(status(historical), 400);
  assert.match(bodyText(historical), /MissingRequiredHeader/);
  rig.leader = false;
  assert.deepEqual(await rig.call("POST", "/app/always"), { kind: "forward-to-primary" });
  rig.writable = false;
  assert.deepEqual(await rig.call("PUT", "/app/kv/b", "x"), { kind: "forward-to-primary" });
  rig.open = false;
  const closed = await rig.call("GET", "/app/kv/a");
  assert.equal(status(closed), 404);
  assert.match(bodyText(closed), /FrontendNotOpen/);
});

test("/app/api paths come from the openapi metadata", () => {
  const paths = jsOpenApiPaths([
    { method: "GET", path: "/kv/{k}", props: endpoint("get", { openapi: { summary: "read" } }) },
    { method: "GET", path: "/hidden", props: endpoint("get", { openapi_hidden: true }) },
  ] as never);
  assert.deepEqual(Object.keys(paths), ["/app/kv/{k}"]);
  assert.equal((paths["/app/kv/{k}"] as { get: { summary: string } }).get.summary, "read");
});

test("a rollback and a new write at the same seqno still rebuild the routes", async () => {
  const rig = makeRig();
  const before = rig.store.seqno;
  rig.write(SERVICE_TABLES.endpoints, [["GET /a", endpoint("v2")]], true);
  assert.equal(bodyText(await rig.call("GET", "/app/a")), "v2");
  rig.store.rollback(before);
  rig.write(SERVICE_TABLES.endpoints, [["GET /b", endpoint("v2")]], true);
  assert.equal(status(await rig.call("GET", "/app/a")), 404);
  assert.equal(bodyText(await rig.call("GET", "/app/b")), "v2");
});

test("reused interpreters last until set_js_app's flush, a limit hit or a new app", async () => {
  const rig = makeRig();
  const count = async (path = "/app/count") => bodyText(await rig.call("POST", path));
  assert.deepEqual([await count(), await count(), await count()], ["1", "2", "3"]);
  assert.deepEqual([await count("/app/fresh"), await count("/app/fresh")], ["1", "1"]);
  // New runtime options change the limits, not the interpreters (as in CCF).
  const options = { max_heap_bytes: 1 << 26, max_stack_bytes: 1 << 18, max_execution_time_ms: 100 };
  rig.write(SERVICE_TABLES.jsRuntimeOptions, [["", options]]);
  assert.equal(await count(), "4");
  // A handler that loops answers 500 within its limit and its interpreter is not reused.
  const started = Date.now();
  assert.equal(status(await rig.call("POST", "/app/spin")), 500);
  assert.ok(Date.now() - started < 1000);
  assert.equal(await count(), "1");
  assert.equal(await count(), "2");
  // set_js_app writes interpreter.flush: the interpreters go, even with the same modules.
  rig.write(SERVICE_TABLES.interpreterFlush, [["", true]]);
  assert.equal(await count(), "1");
  // refresh_js_app_bytecode_cache rewrites the bytecode map: the same.
  rig.write(SERVICE_TABLES.modulesQuickjsBytecode, [["/app.js", "compiled"]]);
  assert.equal(await count(), "1");
  assert.equal(await count(), "2");
});

test("after the QuickJS module is discarded, the app moves to a fresh one", async () => {
  const rig = makeRig();
  const count = async () => bodyText(await rig.call("POST", "/app/count"));
  assert.deepEqual([await count(), await count()], ["1", "2"]);
  // As the sandbox does when a guest made the WASM instance abort (quickjs.ts).
  discardQuickJS(quickjs);
  assert.equal(await count(), "3", "the old module serves until the new one has loaded");
  const fresh = await getQuickJS();
  assert.notEqual(fresh, quickjs);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([await count(), await count()], ["1", "2"], "interpreters of the new module");
});
