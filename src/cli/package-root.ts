/**
 * Where the project's shipped files are: the repository (or installed package) root, found as
 * the nearest ancestor of this module that holds constitution/actions.js and package.json. It
 * works from the sources (tsx) and from the bundle in dist/ alike.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CliError } from "./cli-error.js";

/** The repository (or installed package) root: the nearest ancestor holding constitution/. */
export function findPackageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (
      existsSync(join(dir, "constitution", "actions.js")) &&
      existsSync(join(dir, "package.json"))
    ) {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new CliError(`cannot find the constitution/ directory above ${from}`);
    }
  }
}
