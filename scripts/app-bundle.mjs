// CCF's bundle {metadata, modules} of a TypeScript JS app (app.json + src/*.ts importing
// @microsoft/ccf-app), built as an app's own build would: each top-level src/*.ts is an ES module
// entry, with @microsoft/ccf-app bundled in and shared code split into chunks that the entries
// import by relative path; modules are named by their path below the output src/ (as
// ccf-build-bundle names them). Nothing is written to disk. Used by scripts/build.mjs for the
// apps that ship with the project, and by the tests for their fixture apps, so both build alike
// (test/unit/cli/builtin-apps.test.ts compares them).
import { build } from "esbuild";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";

export async function buildTsAppBundle(dir, { logLevel = "warning" } = {}) {
  const src = join(dir, "src");
  const entryPoints = readdirSync(src)
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
    .map((f) => join(src, f));
  const outdir = join(dir, "dist", "src");
  const result = await build({
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    target: "es2020",
    chunkNames: "chunks/[name]-[hash]",
    write: false,
    logLevel,
  });
  const modules = result.outputFiles
    .map((f) => ({ name: relative(outdir, f.path).split(sep).join("/"), module: f.text }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const metadata = JSON.parse(readFileSync(join(dir, "app.json"), "utf8"));
  return { metadata, modules };
}
