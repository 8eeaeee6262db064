// Bundles the CLI into dist/cli.mjs with esbuild. Run by `npm ci` (prepare) and `npm run build`.
import { build } from "esbuild";
import { rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints: ["src/cli/entry.ts"],
  outfile: "dist/cli.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  packages: "external",
  logLevel: "warning",
});
