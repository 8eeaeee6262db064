/**
 * The JS apps that ship with the project, by name: `--bundle registry` (app deploy) and
 * `--js-app-bundle registry` (sandbox) mean the enclave registry (apps/registry, docs/
 * registry.md), which the build (scripts/build.mjs) writes to dist/apps/registry/bundle.json.
 *
 * A bare name (no "/" or "\") that is a shipped app's name always means that app, even when a
 * file or folder of that name exists in the working directory; write `./registry` for that.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CliError } from "./cli-error.js";
import { findPackageRoot } from "./package-root.js";

export const BUILTIN_APPS: readonly string[] = ["registry"];

/** The bundle file a shipped app's name stands for, or `path` itself. */
export function resolveBundlePath(path: string): string {
  if (!BUILTIN_APPS.includes(path)) return path;
  const file = join(findPackageRoot(), "dist", "apps", path, "bundle.json");
  if (!existsSync(file)) {
    throw new CliError(`the ${path} app is not built (${file} is missing): run npm run build`);
  }
  return file;
}
