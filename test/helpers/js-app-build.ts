/**
 * Builds a TypeScript JS app fixture (app.json + src/*.ts importing @microsoft/ccf-app) into a
 * bundle as an app's own build would: each top-level src/*.ts is an ES module entry, with
 * @microsoft/ccf-app bundled in and shared code split into chunks that the entries import by
 * relative path; modules are named by their path below the output src/ (ccf-build-bundle's
 * naming). Nothing is written to disk.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { build } from "esbuild";

export interface BuiltBundle {
  readonly metadata: unknown;
  readonly modules: { name: string; module: string }[];
}

export async function buildTsApp(dir: string): Promise<BuiltBundle> {
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
    logLevel: "silent",
  });
  const modules = result.outputFiles
    .map((f) => ({ name: relative(outdir, f.path).split(sep).join("/"), module: f.text }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const metadata = JSON.parse(readFileSync(join(dir, "app.json"), "utf8")) as unknown;
  return { metadata, modules };
}
