/**
 * House-style size limits (house style 6.8) that a reviewer would otherwise check by eye: no
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

/** The size violations of one source text; `file` only labels the messages. */
export async function checkSource(file: string, text: string): Promise<string[]> {
  const problems: string[] = [];
  const lines = text.endsWith("\n") ? text.split("\n").length - 1 : text.split("\n").length;
  if (lines > FILE_LINES_MAX && !text.startsWith(GENERATED_MARKER)) {
    problems.push(`${file}:1 file (${lines} lines, at most ${FILE_LINES_MAX})`);
  }
  const parser = typescriptPlugin.parsers.typescript;
  const ast = (await parser.parse(text, {} as Parameters<typeof parser.parse>[1])) as AstNode;
  walkFunctions(ast, null, (fn, parent) => {
    const loc = fn.loc!;
    const length = loc.end.line - loc.start.line + 1;
    if (length > FUNCTION_LINES_MAX) {
      problems.push(`${file}:${loc.start.line} ${functionName(fn, parent)} (${length} lines)`);
    }
  });
  return problems;
}

/** The size violations of every file in `files`. */
export async function checkSizes(files: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  for (const file of files) problems.push(...(await checkSource(file, readFileSync(file, "utf8"))));
  return problems;
}
