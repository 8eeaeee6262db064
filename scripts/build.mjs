// Bundles the CLI into dist/cli.mjs with esbuild. Run by `npm ci` (prepare) and `npm run build`.
import { build } from "esbuild";
import { rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints: {
    cli: "src/cli/entry.ts",
    "sealer-worker": "src/node/sealer-worker.ts",
    "replay-worker": "src/node/replay-worker.ts",
    "snapshot-worker": "src/node/snapshot-worker.ts",
  },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  packages: "external",
  logLevel: "warning",
});
