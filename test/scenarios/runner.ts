/**
 * The golden scenario runner (style.md §7.2, after etcd-io/raft's datadriven
 * interaction tests and CCF's tests/raft_scenarios). One runner serves the kv, consensus and
 * governance scripts; each suite supplies a handler per command and a fresh environment.
 *
 * Script format, one stanza after another, separated by blank lines:
 *
 *     # comment lines (only before a command)
 *     command arg1 key=value "quoted arg" key="quoted value"
 *     optional input lines
 *     ----
 *     expected output (ends at the first blank line or the end of the file)
 *
 * Invariants: the handlers of one file share one environment and run in file order; a handler's
 * output never contains a blank line (that would end its block), so rewriting a file and parsing
 * it again gives the same stanzas. With REWRITE=1 the runner writes the actual outputs back in
 * place of the expected ones, leaving comments, commands and input untouched; otherwise every
 * mismatch is reported at once as a unified-style diff naming the file and line.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, relative } from "node:path";

export interface Command {
  readonly name: string;
  /** Arguments without `key=`, in order. */
  readonly positional: readonly string[];
  /** `key=value` arguments, in order. Invariant: keys are unique. */
  readonly named: ReadonlyMap<string, string>;
  /** The lines between the command line and `----`. */
  readonly input: readonly string[];
  /** 1-based line of the command in its file. */
  readonly line: number;
}

/** Runs one command against the suite's environment and renders what it observed. */
export type Handler<Env> = (env: Env, command: Command) => string;
export type HandlerRegistry<Env> = Readonly<Record<string, Handler<Env>>>;

export interface ScenarioOptions<Env> {
  readonly handlers: HandlerRegistry<Env>;
  readonly newEnv: () => Env;
  /** Write the actual outputs into the file instead of comparing. Default: env REWRITE=1. */
  readonly rewrite?: boolean;
}

interface Stanza {
  readonly command: Command;
  readonly expected: readonly string[];
  /** 0-based index in the file's lines of the first expected line. */
  readonly expectedIndex: number;
}

const SEPARATOR = "----";
// A named argument is `key=` then a bare word or a JSON string; a positional one is either.
const TOKEN_RE = /(?:[^\s"=]+=)?"(?:[^"\\]|\\.)*"|\S+/g;

/** Splits a command line into a Command; throws on a malformed line (a bug in the script). */
export function parseCommand(text: string, line: number, file = "<script>"): Command {
  const tokens = text.match(TOKEN_RE) ?? [];
  const [name, ...args] = tokens;
  const where = `${file}:${line}`;
  assert.ok(name !== undefined && !name.startsWith('"'), `${where}: no command word`);
  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const token of args) {
    const eq = token.startsWith('"') ? -1 : token.indexOf("=");
    if (eq <= 0) {
      positional.push(unquote(token));
      continue;
    }
    const key = token.slice(0, eq);
    assert.ok(!named.has(key), `${where}: argument ${key} given twice`);
    named.set(key, unquote(token.slice(eq + 1)));
  }
  return { name, positional, named, input: [], line };
}

function unquote(token: string): string {
  return token.startsWith('"') ? (JSON.parse(token) as string) : token;
}

function parseScript(text: string, file: string): Stanza[] {
  const lines = splitLines(text);
  const stanzas: Stanza[] = [];
  let i = 0;
  while (i < lines.length) {
    const commandLine = lines[i]!;
    if (commandLine.trim() === "" || commandLine.startsWith("#")) {
      i++;
      continue;
    }
    const command = { ...parseCommand(commandLine, i + 1, file), input: [] as string[] };
    for (i++; i < lines.length && lines[i] !== SEPARATOR; i++) {
      const where = `${file}:${i + 1}`;
      assert.ok(lines[i]!.trim() !== "", `${where}: blank line before "${SEPARATOR}"`);
      command.input.push(lines[i]!);
    }
    assert.ok(i < lines.length, `${file}:${command.line}: "${command.name}" has no "${SEPARATOR}"`);
    const expectedIndex = ++i;
    while (i < lines.length && lines[i]!.trim() !== "") i++;
    stanzas.push({ command, expected: lines.slice(expectedIndex, i), expectedIndex });
  }
  return stanzas;
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Runs every stanza of `file`; throws an AssertionError listing every mismatch. */
export function runScenarioFile<Env>(file: string, options: ScenarioOptions<Env>): void {
  const shown =
    isAbsolute(file) && !relative(".", file).startsWith("..") ? relative(".", file) : file;
  const text = readFileSync(file, "utf8");
  const stanzas = parseScript(text, shown);
  const env = options.newEnv();
  const actuals = stanzas.map((stanza) => runStanza(env, stanza.command, options.handlers, shown));
  if (options.rewrite ?? process.env["REWRITE"] === "1") {
    const lines = splitLines(text);
    for (let s = stanzas.length - 1; s >= 0; s--) {
      const { expectedIndex, expected } = stanzas[s]!;
      lines.splice(expectedIndex, expected.length, ...actuals[s]!);
    }
    const rewritten = lines.join("\n") + "\n";
    if (rewritten !== text) writeFileSync(file, rewritten);
    return;
  }
  const diffs: string[] = [];
  stanzas.forEach((stanza, s) => {
    const actual = actuals[s]!;
    if (actual.join("\n") !== stanza.expected.join("\n")) {
      diffs.push(describe(shown, stanza, actual));
    }
  });
  if (diffs.length > 0) {
    assert.fail(`${diffs.join("\n\n")}\n\n(run with REWRITE=1 to accept the actual output)`);
  }
}

function runStanza<Env>(
  env: Env,
  command: Command,
  handlers: HandlerRegistry<Env>,
  file: string,
): string[] {
  const where = `${file}:${command.line}`;
  const handler = Object.hasOwn(handlers, command.name) ? handlers[command.name] : undefined;
  if (handler === undefined) {
    const known = Object.keys(handlers).sort().join(", ");
    assert.fail(`${where}: unknown command "${command.name}" (known: ${known})`);
  }
  let output: string;
  try {
    output = handler(env, command);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${where}: "${command.name}" threw: ${message}`, { cause: error });
  }
  const lines = output === "" ? [] : splitLines(output);
  assert.ok(
    lines.every((l) => l.trim() !== ""),
    `${where}: "${command.name}" output has a blank line, which would end its block`,
  );
  return lines;
}

function describe(file: string, stanza: Stanza, actual: readonly string[]): string {
  const { command, expected, expectedIndex } = stanza;
  const first = expectedIndex + 1;
  const header = [
    `${file}:${command.line}: output of "${command.name}" differs`,
    `--- expected ${file}:${first}`,
    "+++ actual",
    `@@ -${first},${expected.length} +${first},${actual.length} @@`,
  ];
  return [...header, ...diffLines(expected, actual)].join("\n");
}

/** A line diff by longest common subsequence: stanzas are a few lines, so O(n*m) is fine. */
export function diffLines(expected: readonly string[], actual: readonly string[]): string[] {
  const n = expected.length;
  const m = actual.length;
  // common[i][j]: the LCS length of expected[i..] and actual[j..].
  const common = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      common[i]![j] =
        expected[i] === actual[j]
          ? common[i + 1]![j + 1]! + 1
          : Math.max(common[i + 1]![j]!, common[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] === actual[j]) {
      out.push(` ${expected[i++]}`);
      j++;
    } else if (i < n && (j === m || common[i + 1]![j]! >= common[i]![j + 1]!)) {
      out.push(`-${expected[i++]}`);
    } else {
      out.push(`+${actual[j++]}`);
    }
  }
  return out;
}
