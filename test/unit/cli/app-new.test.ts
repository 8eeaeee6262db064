// `consortia app new` and `consortia app bundle` (src/cli/commands/app.ts, app-template.ts,
// app-bundle-files.ts): the scaffold has CCF's layout and pins @microsoft/ccf-app 6.0.1; it
// type-checks against ccf-app's types and its own build (esbuild + ccf-build-bundle, run with
// this repository's node_modules) writes a bundle equal to what `app bundle dist` writes; that
// bundle runs in the JS app runtime (PUT then GET of an item, 404 for a missing one). Bad
// input to either command is a one-line error: a bad name, a non-empty directory, no app.json,
// invalid JSON, an endpoint naming a module the bundle does not have.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromUtf8, utf8 } from "../../../src/base/bytes.js";
import { scaffoldApp } from "../../../src/cli/commands/app.js";
import { CliError } from "../../../src/cli/cli-error.js";
import { getQuickJS } from "../../../src/js/quickjs.js";
import { DEFAULT_JS_RUNTIME_OPTIONS, JsAppRuntime } from "../../../src/js/app-runtime.js";
import { NO_CONSENSUS_SERVICES } from "../../../src/js/app-runtime.js";
import { Store } from "../../../src/kv/store.js";
import { runCli } from "../../helpers/cli.js";
import { tempDir } from "../../helpers/pki.js";

const REPO = join(import.meta.dirname, "..", "..", "..");

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test("app new scaffolds an app that type-checks, builds and runs", async () => {
  const { dir, cleanup } = tempDir("consortia-app-new-");
  try {
    const app = join(dir, "my-app");
    const out = runCli(["app", "new", "my-app", "--dir", app]);
    assert.equal(out.status, 0, out.stderr);
    const pkg = JSON.parse(readFileSync(join(app, "package.json"), "utf8")) as {
      name: string;
      scripts: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    assert.equal(pkg.name, "my-app");
    assert.equal(pkg.devDependencies["@microsoft/ccf-app"], "6.0.1");
    assert.equal(pkg.scripts["build"], "node build.mjs");
    symlinkSync(join(REPO, "node_modules"), join(app, "node_modules"));
    const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
    run(process.execPath, [tsc, "--noEmit", "-p", "."], app);
    run(process.execPath, ["build.mjs"], app);
    const built = readFileSync(join(app, "dist", "bundle.json"), "utf8");
    const again = runCli(["app", "bundle", join(app, "dist"), "--out", join(dir, "b.json")]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Wrote a bundle of 1 modules to /);
    const bundle = JSON.parse(built) as { modules: { name: string; module: string }[] };
    assert.deepEqual(JSON.parse(readFileSync(join(dir, "b.json"), "utf8")), bundle);
    assert.deepEqual(
      bundle.modules.map((m) => m.name),
      ["endpoints.js"],
    );

    const modules = new Map(bundle.modules.map((m) => [`/${m.name}`, m.module]));
    const rt = new JsAppRuntime(await getQuickJS(), modules, {
      runtimeOptions: DEFAULT_JS_RUNTIME_OPTIONS,
    });
    const store = new Store();
    const call = (handler: string, body: string) => {
      const tx = store.begin();
      const request = {
        ...{ method: "PUT", url: "/app/items/a", path: "/app/items/a", query: "" },
        ...{ route: "/app/items/{id}", hostname: "h", headers: {}, params: { id: "a" } },
        ...{ body: utf8(body), caller: { policy: "user_cert", id: "u1", data: null, cert: "" } },
      };
      const outcome = rt.call(
        { module: "/endpoints.js", handler },
        request,
        { tx, access: { mode: "read-write" } },
        NO_CONSENSUS_SERVICES,
      );
      if (tx.hasWrites) store.commit(tx);
      return outcome;
    };
    const missing = call("getItem", "");
    assert.ok(missing.kind === "response" && missing.status === 404, JSON.stringify(missing));
    const put = call("putItem", '{"text": "hi"}');
    assert.ok(put.kind === "response" && put.status === 204, JSON.stringify(put));
    assert.equal(fromUtf8(store.get("items", utf8("a"))!), '{"text":"hi","author":"u1"}');
    const got = call("getItem", "");
    assert.ok(got.kind === "response" && got.body.kind === "json");
    assert.deepEqual(JSON.parse(got.body.text), { text: "hi", author: "u1" });
  } finally {
    cleanup();
  }
});

test("app new refuses a bad name and a directory that is not empty", () => {
  const { dir, cleanup } = tempDir("consortia-app-new-");
  try {
    assert.throws(() => scaffoldApp("Bad Name", join(dir, "x")), CliError);
    writeFileSync(join(dir, "file"), "");
    assert.throws(() => scaffoldApp("ok", dir), /is not empty/);
    const out = runCli(["app", "new", "ok", "--dir", dir]);
    assert.equal(out.status, 1);
    assert.match(out.stderr, /^consortia: .* exists and is not empty\n$/);
  } finally {
    cleanup();
  }
});

test("app bundle: missing app.json, invalid JSON, unknown module are one-line errors", () => {
  const { dir, cleanup } = tempDir("consortia-app-bundle-");
  try {
    const oneLine = (args: string[], pattern: RegExp) => {
      const out = runCli(["app", "bundle", ...args]);
      assert.equal(out.status, 1, out.stdout);
      assert.match(out.stderr, /^consortia: [^\n]+\n$/);
      assert.match(out.stderr, pattern);
    };
    mkdirSync(join(dir, "src"));
    writeFileSync(join(dir, "src", "app.js"), "export function f() {}");
    oneLine([dir], /cannot read .*app\.json: ENOENT/);
    writeFileSync(join(dir, "app.json"), "{ not json");
    oneLine([dir], /app\.json is not valid JSON/);
    const op = { js_module: "missing.js", js_function: "f" };
    writeFileSync(join(dir, "app.json"), JSON.stringify({ endpoints: { "/f": { get: op } } }));
    oneLine([dir], /GET \/f names module missing\.js, which is not in the bundle/);
    const ok = { js_module: "/app.js", js_function: "f" };
    writeFileSync(join(dir, "app.json"), JSON.stringify({ endpoints: { "/f": { get: ok } } }));
    const out = runCli(["app", "bundle", dir]);
    assert.equal(out.status, 0, out.stderr);
    const bundle = JSON.parse(readFileSync(join(dir, "bundle.json"), "utf8")) as unknown;
    assert.deepEqual(bundle, {
      metadata: { endpoints: { "/f": { get: ok } } },
      modules: [{ name: "app.js", module: "export function f() {}" }],
    });
  } finally {
    cleanup();
  }
});
