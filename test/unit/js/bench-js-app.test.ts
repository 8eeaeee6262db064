// The JS logging app `npm run bench -- --app js` deploys (bench/js-logging-app) is a valid
// bundle as set_js_app validates it, reuses one interpreter, and writes what the built-in
// logging app writes for the same request (src/apps/logging.ts: map "records", key the id as
// JSON, value the message as JSON), so the two benchmarks do the same work. No speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fromUtf8, utf8 } from "../../../src/base/bytes.js";
import { loadBundle } from "../../../src/cli/app-bundle-files.js";
import { bundleProblem, parseBundle } from "../../../src/js/app-bundle.js";
import {
  appGlobalsSetup,
  DEFAULT_JS_RUNTIME_OPTIONS,
  JsAppRuntime,
  NO_CONSENSUS_SERVICES,
  type JsAppOutcome,
  type JsAppRequest,
} from "../../../src/js/app-runtime.js";
import { InterpreterCache } from "../../../src/js/interpreter-cache.js";
import { getQuickJS } from "../../../src/js/quickjs.js";
import { DEFAULT_JS_LIMITS } from "../../../src/js/sandbox.js";
import { Store } from "../../../src/kv/store.js";

const quickjs = await getQuickJS();
const bundle = parseBundle(loadBundle(join(import.meta.dirname, "../../../bench/js-logging-app")));

const SERVICES = {
  lastCommittedTxId: () => ({ view: 2, seqno: 1 }),
  statusForTxId: () => "Committed",
  viewForSeqno: () => 2,
};

function request(method: string, query: string, body: string): JsAppRequest {
  return {
    method,
    url: `/app/log/private${query === "" ? "" : "?" + query}`,
    path: "/app/log/private",
    route: "/app/log/private",
    query,
    hostname: "",
    headers: { "content-type": "application/json" },
    params: {},
    body: utf8(body),
    caller: { policy: "user_cert", id: "u", data: null, cert: "PEM" },
  };
}

function answer(outcome: JsAppOutcome): { status: number; body: unknown } {
  assert.equal(outcome.kind, "response", JSON.stringify(outcome));
  if (outcome.kind !== "response" || outcome.body.kind !== "json") throw new Error("no JSON");
  return { status: outcome.status, body: JSON.parse(outcome.body.text) };
}

test("the bench's JS logging app passes set_js_app's validation", () => {
  // As gov-globals.ts validates it: the app's globals over a read-only transaction.
  const binding = { tx: new Store().begin(), access: { mode: "read-only" as const } };
  const state = { applyWrites: false, claimsDigest: null };
  const setup = appGlobalsSetup(binding, state, NO_CONSENSUS_SERVICES, []);
  assert.equal(bundleProblem(quickjs, bundle, { limits: DEFAULT_JS_LIMITS, setup }), null);
  const post = bundle.metadata.endpoints["/log/private"]?.["post"];
  assert.deepEqual(post?.interpreter_reuse, { key: "logging" });
  assert.deepEqual(post?.authn_policies, ["user_cert"]);
});

test("it writes the built-in app's records and answers as it does, in one interpreter", () => {
  const modules = new Map(bundle.modules.map((m) => ["/" + m.name, m.module]));
  const cache = new InterpreterCache(10);
  const rt = new JsAppRuntime(quickjs, modules, {
    runtimeOptions: DEFAULT_JS_RUNTIME_OPTIONS,
    cache,
    version: "v",
  });
  const store = new Store();
  const call = (method: string, handler: string, query: string, body: string) => {
    const tx = store.begin();
    const mode = method === "POST" ? "read-write" : "read-only";
    const endpoint = { module: "/logging.js", handler, interpreterReuse: "logging" };
    const outcome = rt.call(
      endpoint,
      request(method, query, body),
      { tx, access: { mode } },
      SERVICES,
    );
    if (outcome.kind === "response" && tx.hasWrites) store.commit(tx);
    return answer(outcome);
  };
  const msg = "x".repeat(100);
  assert.deepEqual(call("POST", "postPrivate", "", JSON.stringify({ id: 42, msg })), {
    status: 200,
    body: true,
  });
  assert.equal(fromUtf8(store.get("records", utf8("42"))!), JSON.stringify(msg));
  assert.deepEqual(call("GET", "getPrivate", "id=42", ""), { status: 200, body: { msg } });
  assert.equal(call("GET", "getPrivate", "id=7", "").status, 404);
  assert.equal(call("POST", "postPrivate", "", '{"id": -1, "msg": "m"}').status, 400);
  assert.equal(call("POST", "postPrivate", "", "not json").status, 400);
  assert.equal(cache.created, 2, "one interpreter for writes, one for reads (rw and ro)");
});
