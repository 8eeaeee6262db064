/**
 * Enforces layers.json (style.md §2.1, §2.2) and keeps it honest. Returns the violations:
 * - a file imports a layer its own layer may not import, or sits in no layer;
 * - a pure layer does IO, reads a clock or uses ambient randomness;
 * - layers.json names a layer with no folder in src/, or src/ has a folder with no layer;
 * - layers.json allows an edge that no import uses, so the rules say only what the code needs;
 * - modules of src/ import each other in a circle (each circle reported once, by its files;
 *   type-only imports count, since they tie the modules together for a reader just as much);
 * - an index.ts exists under src/: modules are imported directly, with no re-export doors, so
 *   an import names the module that defines what it uses.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";

interface LayerConfig {
  pure: string[];
  allowed: Record<string, string[]>;
  nodeBuiltinsInPure: Record<string, string[]>;
  bannedInPure: string[];
  bufferAllowed: string[];
  /** Workspace packages (packages/*) by name, and the layers that may import them. */
  workspacePackages?: Record<string, string[]>;
}

/** The workspace package a bare specifier names ("@consortia/client/node" -> its name), if any. */
function workspacePackageOf(spec: string, config: LayerConfig): string | null {
  for (const name of Object.keys(config.workspacePackages ?? {})) {
    if (spec === name || spec.startsWith(name + "/")) return name;
  }
  return null;
}

/** Every .ts file below `dir`. */
export function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTs(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** The most specific layer a file under src/ belongs to ("ledger/io" before "ledger"). */
function layerOf(srcRelative: string, layers: string[]): string | null {
  const candidates = layers.filter((l) => srcRelative === l || srcRelative.startsWith(l + "/"));
  candidates.sort((a, b) => b.length - a.length);
  return candidates[0] ?? null;
}

const IMPORT_RE =
  /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

/** One file of src/ with the module specifiers it imports (type-only imports included). */
interface SourceFile {
  /** Path relative to src/, with "/" separators. */
  rel: string;
  layer: string | null;
  source: string;
  specs: string[];
}

function readSources(src: string, layers: string[]): SourceFile[] {
  return listTs(src).map((file) => {
    const rel = relative(src, file).split("\\").join("/");
    const source = stripComments(readFileSync(file, "utf8"));
    const specs = [...source.matchAll(IMPORT_RE)].map((m) => m[1] ?? m[2] ?? "");
    return {
      rel,
      layer: layerOf(dirname(rel) === "." ? rel : dirname(rel), layers),
      source,
      specs,
    };
  });
}

/** The src/-relative path a relative specifier of `rel` names (".js" read as the ".ts"). */
function targetOf(rel: string, spec: string): string {
  const joined = join(dirname(rel), spec).split("\\").join("/");
  return joined.endsWith(".js") ? joined.slice(0, -3) + ".ts" : joined;
}

/** Import rules per file; returns the layer edges the imports use ("from -> to"). */
function checkImports(files: SourceFile[], config: LayerConfig, problems: string[]): Set<string> {
  const layers = Object.keys(config.allowed);
  const used = new Set<string>();
  for (const { rel, layer, specs } of files) {
    if (layer === null) {
      problems.push(`${rel}: not in any layer of layers.json`);
      continue;
    }
    for (const spec of specs) {
      if (spec.startsWith(".")) {
        const target = targetOf(rel, spec);
        const targetLayer = target.startsWith("..") ? null : layerOf(dirname(target), layers);
        if (targetLayer === null) {
          problems.push(`${rel}: imports ${spec}, outside src/ layers`);
        } else if (targetLayer !== layer) {
          used.add(`${layer} -> ${targetLayer}`);
          if (!config.allowed[layer]!.includes(targetLayer)) {
            problems.push(`${rel}: layer ${layer} may not import ${targetLayer} (${spec})`);
          }
        }
      } else if (workspacePackageOf(spec, config) !== null) {
        const name = workspacePackageOf(spec, config)!;
        if (!(config.workspacePackages?.[name] ?? []).includes(layer)) {
          problems.push(`${rel}: layer ${layer} may not import the package ${name} (${spec})`);
        }
      } else if (config.pure.includes(layer) && spec.startsWith("node:")) {
        const allowed = config.nodeBuiltinsInPure[layer] ?? [];
        if (!allowed.includes(spec)) problems.push(`${rel}: pure layer ${layer} imports ${spec}`);
      }
    }
  }
  return used;
}

/** Pure layers read no clock, do no IO and use no ambient randomness. */
function checkPurity(files: SourceFile[], config: LayerConfig, problems: string[]): void {
  for (const { rel, layer, source } of files) {
    if (layer === null || !config.pure.includes(layer)) continue;
    const code = source.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`/g, '""');
    for (const name of config.bannedInPure) {
      if (name === "Buffer" && config.bufferAllowed.includes(`src/${rel}`)) continue;
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const re = new RegExp(`(?<![\\w.$])${escaped}(?![\\w$])`);
      if (re.test(code)) problems.push(`${rel}: pure layer ${layer} uses ${name}`);
    }
  }
}

/** Every layer named anywhere in layers.json has a folder, and every top folder a layer. */
function checkFolders(src: string, config: LayerConfig, problems: string[]): void {
  const layers = Object.keys(config.allowed);
  const named = new Set([...layers, ...config.pure, ...Object.values(config.allowed).flat()]);
  for (const layer of [...named].sort()) {
    const dir = join(src, layer);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      problems.push(`layers.json: layer ${layer} has no folder in src/`);
    } else if (!layers.includes(layer)) {
      problems.push(`layers.json: layer ${layer} has no entry in "allowed"`);
    }
  }
  for (const name of readdirSync(src).sort()) {
    if (statSync(join(src, name)).isDirectory() && !layers.includes(name)) {
      problems.push(`src/${name}: folder with no layer in layers.json`);
    }
  }
}

/** Every allowed edge is used by at least one import. */
function checkUnusedEdges(config: LayerConfig, used: Set<string>, problems: string[]): void {
  for (const [layer, targets] of Object.entries(config.allowed)) {
    for (const target of targets) {
      if (!used.has(`${layer} -> ${target}`)) {
        problems.push(`layers.json: ${layer} may import ${target}, but no import does`);
      }
    }
  }
}

/**
 * The import circles among the files, one per strongly connected component of the import
 * graph (Tarjan's algorithm), each shown as one circle through its first file in path order.
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const indexOf = new Map<string, number>();
  const lowOf = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (file: string): void => {
    indexOf.set(file, indexOf.size);
    lowOf.set(file, indexOf.get(file)!);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!indexOf.has(next)) {
        visit(next);
        lowOf.set(file, Math.min(lowOf.get(file)!, lowOf.get(next)!));
      } else if (onStack.has(next)) {
        lowOf.set(file, Math.min(lowOf.get(file)!, indexOf.get(next)!));
      }
    }
    if (lowOf.get(file) !== indexOf.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    const selfImport = (graph.get(file) ?? []).includes(file);
    if (component.length > 1 || selfImport) components.push(component.sort());
  };
  for (const file of [...graph.keys()].sort()) if (!indexOf.has(file)) visit(file);
  return components.sort((a, b) => a[0]!.localeCompare(b[0]!)).map((c) => circleIn(graph, c));
}

/** The shortest circle through the first file of a component, staying inside it. */
function circleIn(graph: ReadonlyMap<string, readonly string[]>, component: string[]): string[] {
  const start = component[0]!;
  const members = new Set(component);
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const file = queue[i]!;
    for (const next of graph.get(file) ?? []) {
      if (!members.has(next)) continue;
      if (next === start) {
        const circle = [file];
        while (circle[0] !== start) circle.unshift(cameFrom.get(circle[0]!)!);
        return [...circle, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, file);
        queue.push(next);
      }
    }
  }
  throw new Error(`no circle through ${start} in its own strongly connected component`);
}

function checkCycles(files: SourceFile[], problems: string[]): void {
  const known = new Set(files.map((f) => f.rel));
  const graph = new Map<string, string[]>();
  for (const { rel, specs } of files) {
    const targets = specs.filter((s) => s.startsWith(".")).map((s) => targetOf(rel, s));
    graph.set(rel, [...new Set(targets.filter((t) => known.has(t)))].sort());
  }
  for (const circle of findCycles(graph)) problems.push(`import cycle: ${circle.join(" -> ")}`);
}

export function checkLayers(root: string): string[] {
  const config = JSON.parse(readFileSync(join(root, "layers.json"), "utf8")) as LayerConfig;
  const src = resolve(root, "src");
  const files = readSources(src, Object.keys(config.allowed));
  const problems: string[] = [];
  for (const { rel } of files) {
    if (basename(rel) === "index.ts") {
      problems.push(`${rel}: no index.ts in src/; import the module that defines the name`);
    }
  }
  const used = checkImports(files, config, problems);
  checkPurity(files, config, problems);
  checkFolders(src, config, problems);
  checkUnusedEdges(config, used, problems);
  checkCycles(files, problems);
  return problems;
}
