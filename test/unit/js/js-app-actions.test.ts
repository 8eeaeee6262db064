// The JS app actions of the default constitution (set_js_app, remove_js_app,
// set_js_runtime_options, refresh_js_app_bytecode_cache) run by the QuickJS runner over a real
// Store, and bundle validation (src/js/app-bundle.ts) at proposal time: the rows CCF's apply
// writes (modules under "/"+name, endpoints under "<VERB> <path>" with js_module prefixed,
// interpreter.flush, runtime options) and a refusal naming the problem for each kind of bad
// bundle (unknown policy or mode, a module that does not compile, a missing module or export).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Store } from "../../../src/kv/store.js";
import { QuickJsConstitution } from "../../../src/js/constitution.js";
import { parseBundle, parseEndpointKey } from "../../../src/js/app-bundle.js";
import {
  defaultConstitutionSource,
  expectOk,
  inTx,
  proposal,
  readJson,
  readRaw,
  RecordingHost,
  SINGLETON,
} from "../../fixtures/constitution/harness.js";

const MODULES = "public:ccf.gov.modules";
const ENDPOINTS = "public:ccf.gov.endpoints";
const FLUSH = "public:ccf.gov.interpreter.flush";
const OPTIONS = "public:ccf.gov.js_runtime_options";
const VERSION = "public:ccf.gov.modules_quickjs_version";

function bundle(
  overrides: { policy?: unknown; mode?: unknown; source?: string; fn?: string } = {},
) {
  return {
    metadata: {
      endpoints: {
        "/records/{id}": {
          get: {
            js_module: "app.js",
            js_function: overrides.fn ?? "get",
            forwarding_required: "sometimes",
            authn_policies: [overrides.policy ?? "user_cert", { all_of: ["user_cert", "no_auth"] }],
            mode: overrides.mode ?? "readonly",
            openapi: { summary: "read" },
          },
        },
      },
    },
    modules: [
      {
        name: "app.js",
        module:
          overrides.source ??
          'import { x } from "./lib/x.js";\nexport function get() { return { body: x }; }',
      },
      { name: "lib/x.js", module: 'export const x = "x";' },
    ],
  };
}

async function setup() {
  const store = new Store();
  const gov = await QuickJsConstitution.create(defaultConstitutionSource(), {
    host: new RecordingHost(),
  });
  return { store, gov };
}

function validate(w: Awaited<ReturnType<typeof setup>>, name: string, args: unknown) {
  return expectOk(w.gov.validate(w.store.begin(), proposal([name, args])));
}

test("set_js_app writes CCF's tables; remove_js_app clears them", async () => {
  const w = await setup();
  const args = { bundle: bundle() };
  assert.deepEqual(validate(w, "set_js_app", args), { valid: true, description: "" });
  expectOk(inTx(w.store, (tx) => w.gov.apply(tx, proposal(["set_js_app", args]), "p1")));
  assert.equal(readRaw(w.store, MODULES, "/lib/x.js"), 'export const x = "x";');
  const stored = readJson(w.store, ENDPOINTS, "GET /records/{id}") as Record<string, unknown>;
  assert.equal(stored.js_module, "/app.js");
  assert.equal(stored.js_function, "get");
  assert.equal(stored.mode, "readonly");
  assert.deepEqual(readJson(w.store, FLUSH, SINGLETON), true);
  assert.match(String(readJson(w.store, VERSION, SINGLETON)), /QuickJS/);
  const noCache = { bundle: bundle(), disable_bytecode_cache: true };
  expectOk(inTx(w.store, (tx) => w.gov.apply(tx, proposal(["set_js_app", noCache]), "p3")));
  assert.equal(readRaw(w.store, VERSION, SINGLETON), undefined);
  expectOk(inTx(w.store, (tx) => w.gov.apply(tx, proposal(["remove_js_app"]), "p2")));
  assert.equal(readRaw(w.store, MODULES, "/app.js"), undefined);
  assert.equal(readRaw(w.store, ENDPOINTS, "GET /records/{id}"), undefined);
});

test("set_js_runtime_options stores the options; bad ones are refused", async () => {
  const w = await setup();
  const args = { max_heap_bytes: 1 << 20, max_stack_bytes: 1 << 18, max_execution_time_ms: 50 };
  expectOk(inTx(w.store, (tx) => w.gov.apply(tx, proposal(["set_js_runtime_options", args]), "p")));
  assert.deepEqual(readJson(w.store, OPTIONS, SINGLETON), args);
  const bad = validate(w, "set_js_runtime_options", { ...args, max_heap_bytes: "big" });
  assert.equal(bad.valid, false);
  assert.match(bad.description, /max_heap_bytes/);
  const refresh = validate(w, "refresh_js_app_bytecode_cache", {});
  assert.equal(refresh.valid, true);
});

test("invalid bundles are refused with a message naming the problem", async () => {
  const w = await setup();
  const cases: [unknown, RegExp][] = [
    [bundle({ policy: "kerberos" }), /authn_policies\[0\] must be one of .* "kerberos"/],
    [bundle({ mode: "sometimes" }), /\.mode must be one of readwrite, readonly, historical/],
    [bundle({ source: "export function get( {" }), /module app\.js: SyntaxError/],
    [bundle({ fn: "missing" }), /module 'app.js' does not export 'missing'/],
    [bundle({ source: 'import "./nope.js"; export function get() {}' }), /nope\.js/],
    [{ ...bundle(), modules: [] }, /module 'app\.js' not found in bundle/],
    [{ metadata: {}, modules: [] }, /bundle\.metadata\.endpoints must be an object/],
  ];
  for (const [b, pattern] of cases) {
    const verdict = validate(w, "set_js_app", { bundle: b });
    assert.equal(verdict.valid, false, JSON.stringify(b));
    assert.match(verdict.description, pattern);
  }
});

test("parseBundle keeps all_of and rejects reserved names; endpoint keys parse", () => {
  const parsed = parseBundle(bundle());
  const op = parsed.metadata.endpoints["/records/{id}"]!.get!;
  assert.deepEqual(op.authn_policies, ["user_cert", { all_of: ["user_cert", "no_auth"] }]);
  assert.throws(
    () => parseBundle({ ...bundle(), modules: [{ name: ".consortia/x.js", module: "" }] }),
    /must not start with/,
  );
  assert.deepEqual(parseEndpointKey("POST /log/{id}"), { method: "POST", path: "/log/{id}" });
  assert.equal(parseEndpointKey("post /log"), null);
});
