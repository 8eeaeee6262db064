/**
 * Reading a JS app bundle for `consortia app deploy` and `consortia sandbox --js-app-bundle`
 * (ccf-compatibility.md §9): a FILE is a bundle.json `{metadata, modules}` as CCF's
 * ccf-build-bundle writes it; a DIR is CCF's layout, app.json plus the modules, named by their
 * path relative to DIR/src with "/" separators. As ccf-build-bundle and CCF's sandbox do, every
 * file under src/ is a module (dotfiles excepted). Without src/, the .js and .mjs files beside
 * app.json (node_modules excluded) are the modules. Modules are listed in sorted order.
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

/** Every module file below `dir`, sorted by path: all files, or only JS ones outside src/. */
function moduleFiles(dir: string, onlyJs: boolean): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || (onlyJs && entry.name === "node_modules")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...moduleFiles(path, onlyJs));
    else if (!onlyJs || MODULE_FILE.test(entry.name)) out.push(path);
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
  const hasSrc = isDirectoryOrAbsent(src);
  const root = hasSrc ? src : path;
  const modules = moduleFiles(root, !hasSrc).map((file) => ({
    name: relative(root, file).split(sep).join("/"),
    module: readText(file),
  }));
  if (modules.length === 0) throw new CliError(`no .js modules found under ${root}`);
  return { metadata, modules };
}

/**
 * Checks what a bundle's metadata says about its modules, as the node does at proposal time:
 * metadata is an object whose `endpoints` map paths to verbs to operations, and every
 * operation's js_module (with or without a leading "/") is one of the bundle's modules.
 */
export function checkBundleModules(bundle: BundleFile): void {
  const metadata = bundle.metadata as { endpoints?: unknown } | null;
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    throw new CliError("app.json must be a JSON object");
  }
  const endpoints = metadata.endpoints ?? {};
  if (endpoints === null || typeof endpoints !== "object" || Array.isArray(endpoints)) {
    throw new CliError(`app.json: "endpoints" must be an object`);
  }
  const names = new Set(bundle.modules.map((m) => m.name.replace(/^\//, "")));
  for (const [path, verbs] of Object.entries(endpoints as Record<string, unknown>)) {
    if (verbs === null || typeof verbs !== "object") {
      throw new CliError(`app.json: endpoint ${path} must map verbs to operations`);
    }
    for (const [verb, op] of Object.entries(verbs as Record<string, unknown>)) {
      const module = (op as { js_module?: unknown } | null)?.js_module;
      const where = `app.json: ${verb.toUpperCase()} ${path}`;
      if (typeof module !== "string") throw new CliError(`${where} has no js_module`);
      if (!names.has(module.replace(/^\//, ""))) {
        throw new CliError(`${where} names module ${module}, which is not in the bundle`);
      }
    }
  }
}

function isDirectoryOrAbsent(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err: unknown) {
    if (isNodeError(err) && err.code === "ENOENT") return false;
    throw err;
  }
}
