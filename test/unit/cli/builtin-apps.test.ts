// The apps that ship with the project by name (src/cli/builtin-apps.ts): `registry` stands for
// dist/apps/registry/bundle.json, which the build (scripts/build.mjs) makes from apps/registry,
// and `app deploy --bundle registry` proposes exactly that bundle; a path is left alone. The
// oracle for "the shipped bundle is the registry app" is a fresh build of apps/registry with the
// same esbuild options (test/helpers/js-app-build.ts): it fails when dist/ is stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveBundlePath } from "../../../src/cli/builtin-apps.js";
import { setJsAppAction } from "../../../src/cli/commands/app.js";
import { buildTsApp } from "../../helpers/js-app-build.js";

const REPO = join(import.meta.dirname, "..", "..", "..");

test("registry names the built registry bundle; paths are left alone", async () => {
  const file = resolveBundlePath("registry");
  assert.equal(file, join(REPO, "dist", "apps", "registry", "bundle.json"));
  assert.equal(resolveBundlePath("./registry"), "./registry");
  assert.equal(resolveBundlePath("dist/bundle.json"), "dist/bundle.json");
  const shipped = JSON.parse(readFileSync(file, "utf8")) as unknown;
  const fresh = await buildTsApp(join(REPO, "apps", "registry"));
  assert.deepEqual(shipped, fresh, "dist/apps/registry is stale: run npm run build");
  assert.deepEqual(setJsAppAction("registry"), { name: "set_js_app", args: { bundle: fresh } });
});
