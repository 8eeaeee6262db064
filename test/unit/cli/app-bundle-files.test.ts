// Reading JS app bundles for `consortia app deploy` and `sandbox --js-app-bundle`
// (src/cli/app-bundle-files.ts): a directory in CCF's layout (app.json + src/) gives every file
// under src/ as a module named by its path relative to src/ with "/" separators (dotfiles
// excepted), a directory without src/ gives the .js files beside app.json, a bundle.json file is taken as is, and bad inputs are CliErrors that name
// the file. The oracle is ccf-build-bundle's naming, written down in ccf-compatibility.md §9.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadBundle } from "../../../src/cli/app-bundle-files.js";
import { CliError } from "../../../src/cli/cli-error.js";
import { tempDir } from "../../helpers/pki.js";

test("a directory with src/ names every file under it relative to src/", () => {
  const { dir, cleanup } = tempDir("consortia-bundle-");
  try {
    writeFileSync(join(dir, "app.json"), '{"endpoints": {}}');
    mkdirSync(join(dir, "src", "lib"), { recursive: true });
    writeFileSync(join(dir, "src", "app.js"), "export const a = 1;");
    writeFileSync(join(dir, "src", "lib", "x.mjs"), "export const x = 1;");
    writeFileSync(join(dir, "src", ".hidden.js"), "ignored");
    writeFileSync(join(dir, "app.js"), "outside src/: ignored");
    const bundle = loadBundle(dir);
    assert.deepEqual(bundle.metadata, { endpoints: {} });
    assert.deepEqual(bundle.modules, [
      { name: "app.js", module: "export const a = 1;" },
      { name: "lib/x.mjs", module: "export const x = 1;" },
    ]);
    writeFileSync(join(dir, "bundle.json"), JSON.stringify(bundle));
    assert.deepEqual(loadBundle(join(dir, "bundle.json")), bundle);
  } finally {
    cleanup();
  }
});

test("a directory without src/ names modules relative to itself; bad inputs are CliErrors", () => {
  const { dir, cleanup } = tempDir("consortia-bundle-");
  try {
    assert.throws(() => loadBundle(join(dir, "missing")), CliError);
    assert.throws(() => loadBundle(dir), /cannot read .*app\.json: ENOENT/);
    writeFileSync(join(dir, "app.json"), "{not json");
    assert.throws(() => loadBundle(dir), /app\.json is not valid JSON/);
    writeFileSync(join(dir, "app.json"), "{}");
    assert.throws(() => loadBundle(dir), /no \.js modules/);
    writeFileSync(join(dir, "main.js"), "export {};");
    writeFileSync(join(dir, "notes.txt"), "not a module");
    assert.deepEqual(loadBundle(dir).modules, [{ name: "main.js", module: "export {};" }]);
    writeFileSync(join(dir, "bad.json"), '{"modules": 3}');
    assert.throws(() => loadBundle(join(dir, "bad.json")), /is not a bundle/);
  } finally {
    cleanup();
  }
});
