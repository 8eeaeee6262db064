/**
 * Enforces layers.json: which src/ folders may import which, and that pure layers do no IO,
 * read no clock and use no ambient randomness (house style 6.2). Returns the violations.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

interface LayerConfig {
  pure: string[];
  allowed: Record<string, string[]>;
  nodeBuiltinsInPure: Record<string, string[]>;
  bannedInPure: string[];
  bufferAllowed: string[];
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

export function checkLayers(root: string): string[] {
  const config = JSON.parse(readFileSync(join(root, "layers.json"), "utf8")) as LayerConfig;
  const layers = Object.keys(config.allowed);
  const src = join(root, "src");
  const problems: string[] = [];
  for (const file of listTs(src)) {
    const rel = relative(src, file);
    const layer = layerOf(dirname(rel) === "." ? rel : dirname(rel), layers);
    if (layer === null) {
      problems.push(`${rel}: not in any layer of layers.json`);
      continue;
    }
    const pure = config.pure.includes(layer);
    const source = stripComments(readFileSync(file, "utf8"));
    for (const match of source.matchAll(IMPORT_RE)) {
      const spec = match[1] ?? match[2] ?? "";
      if (spec.startsWith(".")) {
        const target = relative(src, resolve(dirname(file), spec));
        const targetLayer = layerOf(dirname(target), layers);
        if (targetLayer === null || targetLayer.startsWith("..")) {
          problems.push(`${rel}: imports ${spec}, outside src/ layers`);
        } else if (targetLayer !== layer && !config.allowed[layer]!.includes(targetLayer)) {
          problems.push(`${rel}: layer ${layer} may not import ${targetLayer} (${spec})`);
        }
      } else if (pure && spec.startsWith("node:")) {
        const allowed = config.nodeBuiltinsInPure[layer] ?? [];
        if (!allowed.includes(spec)) problems.push(`${rel}: pure layer ${layer} imports ${spec}`);
      }
    }
    if (!pure) continue;
    for (const name of config.bannedInPure) {
      if (name === "Buffer" && config.bufferAllowed.includes(`src/${rel}`)) continue;
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const re = new RegExp(`(?<![\\w.$])${escaped}(?![\\w$])`);
      if (re.test(source.replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`/g, '""'))) {
        problems.push(`${rel}: pure layer ${layer} uses ${name}`);
      }
    }
  }
  return problems;
}
