// The JS app runtime (src/js/app-runtime.ts, app-globals.ts) over a real Store tx and the real
// QuickJS sandbox: the request object a handler sees (headers, params, query, url, path, route,
// method, hostname, body.text/json/arrayBuffer, caller with cose.content), the response mapping
// (text, bytes, typed arrays, JSON, status and headers), typedKv-style top-level ccf.kv use,
// relative imports, ccf.rpc and ccf.consensus effects, Date.now() before and after
// enableUntrustedDateTime, the Function constructor, exceptions and the deadline. The oracle is
// CCF's documented request/response mapping (ccf-compatibility.md §9).
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../../src/base/bytes.js";
import { Store } from "../../../src/kv/store.js";
import { getQuickJS } from "../../../src/js/quickjs.js";
import {
  DEFAULT_JS_RUNTIME_OPTIONS,
  JsAppRuntime,
  parseRuntimeOptions,
  type JsAppOutcome,
  type JsAppRequest,
} from "../../../src/js/app-runtime.js";
import type { JsAppServices } from "../../../src/js/app-globals.js";
import type { KvAccess } from "../../../src/js/ccf-globals.js";

const MODULES = new Map([
  [
    "/lib/store.js",
    `const records = ccf.kv["records"];
export function put(id, text) { records.set(ccf.strToBuf(id), ccf.strToBuf(text)); }
export function get(id) { const v = records.get(ccf.strToBuf(id)); return v && ccf.bufToStr(v); }`,
  ],
  [
    "/app.js",
    `import { put, get } from "./lib/store.js";
export function echo(request) {
  const { body, ...rest } = request;
  return { body: { ...rest, text: body.text(), json: body.json(), size: body.arrayBuffer().byteLength } };
}
export function write(request) { put(request.params.id, request.body.text()); return { statusCode: 204 }; }
export function read(request) {
  const v = get(request.params.id);
  return v === undefined ? { statusCode: 404, body: { error: { code: "ResourceNotFound", message: "no" } } } : { body: v };
}
export function bytes() { return { body: new Uint8Array([1, 2, 3]) }; }
export function buffer() { return { body: new Uint8Array([9, 8]).buffer, headers: { "x-n": 7 } }; }
export function rpc() {
  ccf.rpc.setApplyWrites(true);
  ccf.rpc.setClaimsDigest(new Uint8Array(32).fill(5).buffer);
  return { statusCode: 400, body: ccf.consensus.getLastCommittedTxId() };
}
export function clock() {
  const before = [Date.now(), new Date().getTime()];
  const previous = ccf.enableUntrustedDateTime(true);
  return { body: { before, previous, after: Date.now() > 1e12, isDate: new Date() instanceof Date } };
}
export function fn() { return { body: new Function("a", "b", "return a * b")(6, 7) }; }
export function cose(request) { return { body: ccf.bufToStr(request.caller.cose.content) }; }
export function past() {
  const h = ccf.historicalState;
  const kv = h.kv["records"];
  let refused = false;
  try { kv.set(ccf.strToBuf("k"), ccf.strToBuf("v")); } catch (e) { refused = true; }
  return { body: { id: h.transactionId, receipt: h.receipt, value: ccf.bufToStr(kv.get(ccf.strToBuf("k"))), other: kv.has(ccf.strToBuf("x")), refused } };
}
export function noPast() { return { body: ccf.historicalState === undefined }; }
export function boom() { throw new Error("kaboom"); }
export function spin() { for (;;) {} }
export function notAnObject() { return 5; }`,
  ],
]);

const SERVICES: JsAppServices = {
  lastCommittedTxId: () => ({ view: 2, seqno: 42 }),
  statusForTxId: () => "Committed",
  viewForSeqno: () => 2,
};

function request(overrides: Partial<JsAppRequest> = {}): JsAppRequest {
  return {
    method: "POST",
    url: "/app/echo/7?a=1&b=2",
    path: "/app/echo/7",
    route: "/app/echo/{id}",
    query: "a=1&b=2",
    hostname: "node.example",
    headers: { "content-type": "application/json", "x-custom": "yes" },
    params: { id: "7" },
    body: utf8('{"hello":"world"}'),
    caller: { policy: "user_cert", id: "abc", data: { role: "admin" }, cert: "PEM" },
    ...overrides,
  };
}

async function runtime(options = DEFAULT_JS_RUNTIME_OPTIONS): Promise<JsAppRuntime> {
  return new JsAppRuntime(await getQuickJS(), MODULES, { runtimeOptions: options });
}

function call(
  rt: JsAppRuntime,
  handler: string,
  req: JsAppRequest,
  store = new Store(),
  access: KvAccess = { mode: "read-write" },
): JsAppOutcome {
  const tx = store.begin();
  const outcome = rt.call({ module: "/app.js", handler }, req, { tx, access }, SERVICES);
  if (outcome.kind === "response" && tx.hasWrites) store.commit(tx);
  return outcome;
}

function okBody(outcome: JsAppOutcome): unknown {
  assert.equal(outcome.kind, "response", JSON.stringify(outcome));
  if (outcome.kind !== "response") throw new Error("unreachable");
  if (outcome.body.kind === "json") return JSON.parse(outcome.body.text);
  if (outcome.body.kind === "text") return outcome.body.text;
  return outcome.body;
}

test("the handler sees CCF's request object", async () => {
  const rt = await runtime();
  const body = okBody(call(rt, "echo", request())) as Record<string, unknown>;
  assert.deepEqual(body, {
    method: "POST",
    url: "/app/echo/7?a=1&b=2",
    path: "/app/echo/7",
    route: "/app/echo/{id}",
    query: "a=1&b=2",
    hostname: "node.example",
    headers: { "content-type": "application/json", "x-custom": "yes" },
    params: { id: "7" },
    caller: { policy: "user_cert", id: "abc", data: { role: "admin" }, cert: "PEM" },
    text: '{"hello":"world"}',
    json: { hello: "world" },
    size: 17,
  });
});

test("writes through a module-level ccf.kv handle and a relative import", async () => {
  const rt = await runtime();
  const store = new Store();
  const written = call(rt, "write", request({ body: utf8("first") }), store);
  assert.equal(written.kind === "response" && written.status, 204);
  assert.equal(fromUtf8(store.get("records", utf8("7"))!), "first");
  assert.equal(okBody(call(rt, "read", request(), store)), "first");
  const missing = call(rt, "read", request({ params: { id: "8" } }), store);
  assert.equal(missing.kind === "response" && missing.status, 404);
});

test("readonly access refuses the write with a JS exception", async () => {
  const rt = await runtime();
  const outcome = call(rt, "write", request(), new Store(), { mode: "read-only" });
  assert.equal(outcome.kind, "failure");
  assert.match(outcome.kind === "failure" ? outcome.message : "", /read-only/);
});

test("bodies map to text, bytes and JSON; headers are strings", async () => {
  const rt = await runtime();
  const bytes = call(rt, "bytes", request());
  assert.deepEqual(bytes.kind === "response" && bytes.body, {
    kind: "bytes",
    bytes: new Uint8Array([1, 2, 3]),
  });
  const buffer = call(rt, "buffer", request());
  assert.ok(buffer.kind === "response");
  assert.deepEqual(buffer.body, { kind: "bytes", bytes: new Uint8Array([9, 8]) });
  assert.deepEqual(buffer.headers, { "x-n": "7" });
  const text = call(rt, "read", request());
  assert.equal(text.kind === "response" && text.status, 404);
  assert.equal(text.kind === "response" && text.body.kind, "json");
});

test("ccf.rpc and ccf.consensus reach the host", async () => {
  const rt = await runtime();
  const outcome = call(rt, "rpc", request());
  assert.ok(outcome.kind === "response");
  assert.equal(outcome.status, 400);
  assert.equal(outcome.applyWrites, true);
  assert.deepEqual(outcome.claimsDigest, new Uint8Array(32).fill(5));
  assert.deepEqual(okBody(outcome), { view: 2, seqno: 42 });
});

test("Date is the epoch until enableUntrustedDateTime; Function works", async () => {
  const rt = await runtime();
  assert.deepEqual(okBody(call(rt, "clock", request())), {
    before: [0, 0],
    previous: false,
    after: true,
    isDate: true,
  });
  assert.equal(okBody(call(rt, "fn", request())), 42);
});

test("a COSE caller's content is an ArrayBuffer of the payload", async () => {
  const rt = await runtime();
  const caller = { policy: "user_cose_sign1", id: "u", data: null, cert: "P", cose: {} };
  const outcome = call(rt, "cose", request({ caller, coseContent: utf8("signed text") }));
  assert.equal(okBody(outcome), "signed text");
});

test("exceptions, bad responses and the deadline are failures", async () => {
  const rt = await runtime({ ...DEFAULT_JS_RUNTIME_OPTIONS, max_execution_time_ms: 100 });
  const boom = call(rt, "boom", request());
  assert.ok(boom.kind === "failure" && boom.reason === "exception");
  assert.match(boom.message, /kaboom/);
  assert.match(boom.trace ?? "", /boom/);
  const bad = call(rt, "notAnObject", request());
  assert.ok(bad.kind === "failure" && /must return an object/.test(bad.message));
  const missing = call(rt, "nope", request());
  assert.ok(missing.kind === "failure" && /exports no function nope/.test(missing.message));
  const spin = call(rt, "spin", request());
  assert.deepEqual(spin, {
    kind: "failure",
    reason: "timeout",
    message: "Operation took too long to complete.",
  });
});

test("runtime options parse over CCF's defaults", () => {
  assert.deepEqual(parseRuntimeOptions(undefined), DEFAULT_JS_RUNTIME_OPTIONS);
  const stored = utf8(JSON.stringify({ max_heap_bytes: 1024, return_exception_details: true }));
  const parsed = parseRuntimeOptions(stored);
  assert.equal(parsed.max_heap_bytes, 1024);
  assert.equal(parsed.return_exception_details, true);
  assert.equal(parsed.max_execution_time_ms, 1000);
  assert.deepEqual(parseRuntimeOptions(utf8("not json")), DEFAULT_JS_RUNTIME_OPTIONS);
});

test("historical endpoints see the transaction's writes and receipt, read-only", async () => {
  const rt = await runtime();
  const historical = {
    transactionId: "2.17",
    receipt: { node_id: "n", proof: [] },
    get: (map: string, key: Uint8Array) =>
      map === "records" && fromUtf8(key) === "k" ? utf8("then") : undefined,
  };
  assert.deepEqual(okBody(call(rt, "past", request({ historical }))), {
    id: "2.17",
    receipt: { node_id: "n", proof: [] },
    value: "then",
    other: false,
    refused: true,
  });
  assert.equal(okBody(call(rt, "noPast", request())), true);
});
