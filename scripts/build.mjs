// Bundles the CLI into dist/cli.mjs with esbuild, and every worker entry beside it. Run by
// `npm ci` (prepare) and `npm run build`. Worker entries are found where the code names them:
// `new URL("./<name>-worker.ts", import.meta.url)` (src/platform/workers.ts), so each bundles
// as dist/<name>-worker.mjs, where that URL points when resolved from the bundle.
// It also builds the JS apps that ship with the project (apps/<name>/: app.json + src/*.ts
// against @microsoft/ccf-app) into dist/apps/<name>/bundle.json, CCF's bundle
// {metadata, modules}: the file `--bundle <name>` names (src/cli/builtin-apps.ts).
// And the web console's single-page app (console/: TypeScript for the browser, plain DOM) into
// dist/console/ (scripts/build-console.mjs), which `consortia console` serves.
// First of all it compiles the client SDK, packages/client (@consortia/client), into
// packages/client/dist with tsc (JavaScript and .d.ts): the CLI imports it from there.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { buildTsAppBundle } from "./app-bundle.mjs";
import { buildConsole } from "./build-console.mjs";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

const WORKER_URL = /new URL\(\s*"(\.\/[a-z0-9-]+-worker\.ts)"\s*,\s*import\.meta\.url\s*\)/g;

function listTs(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return listTs(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** { "<name>-worker": path } for every worker URL in src/; names must be unique. */
export function workerEntryPoints(srcDir = "src") {
  const entries = {};
  for (const file of listTs(srcDir)) {
    for (const match of readFileSync(file, "utf8").matchAll(WORKER_URL)) {
      const path = resolve(dirname(file), match[1]);
      const name = basename(path, ".ts");
      if (entries[name] !== undefined && entries[name] !== path) {
        throw new Error(`two worker entries are named ${name}: ${entries[name]} and ${path}`);
      }
      entries[name] = path;
    }
  }
  return entries;
}

/** The apps built into dist/apps/: the folders of apps/ holding an app.json. */
const SHIPPED_APPS = ["registry"];

/** Compiles packages/client with its own tsconfig (ESM + declarations into its dist/). */
function buildClientPackage() {
  const dir = join("packages", "client");
  rmSync(join(dir, "dist"), { recursive: true, force: true });
  const tsc = join("node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", dir], { stdio: "inherit" });
}

buildClientPackage();
const workers = workerEntryPoints();
if (Object.keys(workers).length === 0) throw new Error("no worker entry points found in src/");
rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints: { cli: "src/cli/entry.ts", ...workers },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  // Shared code and each CLI command's own code go into chunks, loaded when used: the CLI starts
  // without loading the commands it does not run (src/cli/main.ts). Chunks sit beside the
  // entries, so a worker URL resolves into dist/ from whichever chunk holds it.
  splitting: true,
  chunkNames: "chunk-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  packages: "external",
  logLevel: "warning",
});
for (const app of SHIPPED_APPS) {
  const bundle = await buildTsAppBundle(join("apps", app));
  mkdirSync(join("dist", "apps", app), { recursive: true });
  writeFileSync(join("dist", "apps", app, "bundle.json"), JSON.stringify(bundle));
}
await buildConsole(join("dist", "console"));
