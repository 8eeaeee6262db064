/**
 * Reading a JS app bundle for `consortia app deploy` and `consortia sandbox --js-app-bundle`
 * (ccf-compatibility.md §9): a FILE is a bundle.json `{metadata, modules}` as CCF's
 * ccf-build-bundle writes it; a DIR is CCF's layout, app.json plus the modules, named by their
 * path relative to DIR/src when it exists (as ccf-build-bundle does) or to DIR otherwise, with
 * "/" separators. Modules are the .js and .mjs files, node_modules excluded, in sorted order.
 *
 * Checks here are about files only; the node validates the bundle itself when the proposal is
 * created (and refuses it with a message naming the problem).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { isNodeError } from "../base/errors.js";
import { CliError } from "./cli-error.js";

export interface BundleFile {
  readonly metadata: unknown;
  readonly modules: { readonly name: string; readonly module: string }[];
}

const MODULE_FILE = /\.m?js$/;

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read ${path}: ${err.code}`);
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`${path} is not valid JSON: ${err.message}`);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read bundle ${path}: ${err.code}`);
  }
}

/** Every module file below `dir`, sorted by path. */
function moduleFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...moduleFiles(path));
    else if (MODULE_FILE.test(entry.name)) out.push(path);
  }
  return out.sort();
}

/** The bundle at `path`: a bundle.json file, or a directory with app.json and its modules. */
export function loadBundle(path: string): BundleFile {
  if (!isDirectory(path)) {
    const bundle = parseJson(readText(path), path) as Partial<BundleFile> | null;
    if (bundle === null || typeof bundle !== "object" || !Array.isArray(bundle.modules)) {
      throw new CliError(`${path} is not a bundle: expected {"metadata": ..., "modules": [...]}`);
    }
    return bundle as BundleFile;
  }
  const metadataPath = join(path, "app.json");
  const metadata = parseJson(readText(metadataPath), metadataPath);
  const src = join(path, "src");
  const root = isDirectoryOrAbsent(src) ? src : path;
  const modules = moduleFiles(root).map((file) => ({
    name: relative(root, file).split(sep).join("/"),
    module: readText(file),
  }));
  if (modules.length === 0) throw new CliError(`no .js modules found under ${root}`);
  return { metadata, modules };
}

function isDirectoryOrAbsent(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err: unknown) {
    if (isNodeError(err) && err.code === "ENOENT") return false;
    throw err;
  }
}
