// Builds the web console's single-page app (console/: TypeScript for the browser, plain DOM)
// into a folder: app.js (one esbuild bundle, with @consortia/client bundled from its sources),
// index.html and style.css. scripts/build.mjs builds it into dist/console/, which `consortia
// console` serves; the browser test builds a fresh copy of its own.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Writes the console app into `outDir` (created if missing). */
export async function buildConsole(outDir) {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(ROOT, "console", "src", "main.ts") },
    outdir: outDir,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: "linked",
    // The SDK from its sources, so the console never bundles a stale packages/client/dist.
    alias: { "@consortia/client/browser": join(ROOT, "packages", "client", "src", "browser.ts") },
    logLevel: "warning",
  });
  for (const name of ["index.html", "style.css"]) {
    copyFileSync(join(ROOT, "console", name), join(outDir, name));
  }
}
