/**
 * House-style size limits (style.md §6) that a reviewer would otherwise check by eye: no
 * function longer than FUNCTION_LINES_MAX lines and no file longer than FILE_LINES_MAX lines.
 *
 * Sources are parsed with prettier's TypeScript parser (a dev dependency), so strings, comments,
 * template literals and regular expressions cannot confuse the count the way brace counting
 * would. A function's length runs from its first to its last line and includes any functions
 * nested in it; the nested ones are checked on their own as well.
 *
 * A generated table is exempt from the file limit when its first line starts with
 * GENERATED_MARKER (for example `// generated: by scripts/make-table.ts from RFC 1234`); its
 * functions are still checked. Returns the violations as `file:line name (N lines)` strings.
 *
 * It also finds KV table names of CCF's service tables (`public:ccf.gov.*`,
 * `public:ccf.internal.*`) written as string literals: they live in one registry
 * (TABLE_REGISTRY) and everything else refers to its constants.
 */
import { readFileSync } from "node:fs";
import * as typescriptPlugin from "prettier/plugins/typescript";

export const FUNCTION_LINES_MAX = 70;
export const FILE_LINES_MAX = 600;
export const GENERATED_MARKER = "// generated:";

/** The part of an ESTree node this checker reads. */
interface AstNode {
  type: string;
  loc?: { start: { line: number }; end: { line: number } };
  [key: string]: unknown;
}

const FUNCTION_TYPES = new Set([
  "FunctionDeclaration",
  "FunctionExpression",
  "ArrowFunctionExpression",
]);

function isNode(value: unknown): value is AstNode {
  return typeof value === "object" && value !== null && typeof (value as AstNode).type === "string";
}

/** The source name of a property key or identifier, or null when it is computed. */
function keyName(key: unknown): string | null {
  if (!isNode(key)) return null;
  if (key.type === "Identifier" || key.type === "PrivateIdentifier") return String(key["name"]);
  if (key.type === "Literal") return String(key["value"]);
  return null;
}

/** A readable name for a function: its own, or the binding, property or method it sits in. */
function functionName(fn: AstNode, parent: AstNode | null): string {
  const own = keyName(fn["id"]);
  if (own !== null) return own;
  if (parent === null) return "<anonymous>";
  switch (parent.type) {
    case "VariableDeclarator":
      return keyName(parent["id"]) ?? "<anonymous>";
    case "MethodDefinition":
    case "Property":
    case "PropertyDefinition":
    case "TSAbstractMethodDefinition":
      return keyName(parent["key"]) ?? "<computed>";
    case "AssignmentExpression":
      return keyName(parent["left"]) ?? "<anonymous>";
    case "CallExpression": {
      const callee = parent["callee"];
      const name = isNode(callee) ? (keyName(callee) ?? keyName(callee["property"])) : null;
      return name === null ? "<callback>" : `<callback of ${name}>`;
    }
    default:
      return "<anonymous>";
  }
}

/** Calls `visit` for every function node in the tree, with the node that holds it. */
function walkFunctions(
  node: AstNode,
  parent: AstNode | null,
  visit: (fn: AstNode, parent: AstNode | null) => void,
): void {
  if (FUNCTION_TYPES.has(node.type)) visit(node, parent);
  for (const [key, value] of Object.entries(node)) {
    if (key === "loc" || key === "range" || key === "parent") continue;
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) if (isNode(child)) walkFunctions(child, node, visit);
  }
}

async function parse(text: string): Promise<AstNode> {
  const parser = typescriptPlugin.parsers.typescript;
  return (await parser.parse(text, {} as Parameters<typeof parser.parse>[1])) as AstNode;
}

/** The size violations of one source text; `file` only labels the messages. */
export async function checkSource(file: string, text: string): Promise<string[]> {
  const problems: string[] = [];
  const lines = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
  if (lines > FILE_LINES_MAX && !text.startsWith(GENERATED_MARKER)) {
    problems.push(`${file}:1 file (${lines} lines, at most ${FILE_LINES_MAX})`);
  }
  walkFunctions(await parse(text), null, (fn, parent) => {
    const loc = fn.loc!;
    const length = loc.end.line - loc.start.line + 1;
    if (length > FUNCTION_LINES_MAX) {
      problems.push(`${file}:${loc.start.line} ${functionName(fn, parent)} (${length} lines)`);
    }
  });
  return problems;
}

/** The one module of src/ allowed to spell out service table names. */
export const TABLE_REGISTRY = "src/kv/service-tables.ts";

/**
 * A CCF service table name (or name prefix) inside a string: `ccf.gov.` or `ccf.internal.`,
 * with or without the `public:` domain. The COSE header parameters `ccf.gov.msg.*` of governance
 * requests are not table names and do not match.
 */
const TABLE_NAME_RE = /(?<![\w.])(?:public:)?ccf\.(?:gov|internal)\.(?!msg\.)[\w.]*/;

/** The text of every string literal and template literal part in the tree, with its line. */
function stringsOf(node: AstNode, out: { text: string; line: number }[]): void {
  const line = node.loc?.start.line ?? 0;
  if (node.type === "Literal" && typeof node["value"] === "string") {
    out.push({ text: node["value"], line });
  } else if (node.type === "TemplateElement") {
    const value = node["value"] as { cooked: string | null; raw: string };
    out.push({ text: value.cooked ?? value.raw, line });
  }
  for (const [key, value] of Object.entries(node)) {
    if (key === "loc" || key === "range" || key === "parent") continue;
    const children = Array.isArray(value) ? value : [value];
    for (const child of children) if (isNode(child)) stringsOf(child, out);
  }
}

/** The service table names spelled out in one source text (comments do not count). */
export async function checkTableNames(file: string, text: string): Promise<string[]> {
  const strings: { text: string; line: number }[] = [];
  stringsOf(await parse(text), strings);
  return strings.flatMap(({ text: literal, line }) => {
    const name = TABLE_NAME_RE.exec(literal)?.[0];
    return name === undefined ? [] : [`${file}:${line} ${name} (use ${TABLE_REGISTRY})`];
  });
}

/** The size violations of every file in `files`. */
export async function checkSizes(files: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const file of files) problems.push(...(await checkSource(file, readFileSync(file, "utf8"))));
  return problems;
}
