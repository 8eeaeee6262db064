// Every `consortia` command the operator's guide and the README show is one the CLI knows: its
// subcommand exists and each --option it passes is one that subcommand declares. The guide's
// deployment blocks also run as written in test/e2e/multi-host.test.ts; this check covers
// every other block (backups, replacing a machine, recovery, systemd, containers) as well, so a
// renamed flag or command cannot leave the documentation behind.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { buildProgram } from "../../../src/cli/main.js";

const ROOT = join(import.meta.dirname, "..", "..", "..");

/** The sh blocks of a Markdown file, continuation lines joined, with their first line. */
function shellLines(markdown: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = markdown.split("\n");
  let inShell = false;
  let pending: { line: number; text: string } | null = null;
  for (const [i, line] of lines.entries()) {
    if (line.startsWith("```")) {
      inShell = !inShell && line.trim() === "```sh";
      continue;
    }
    if (!inShell) continue;
    const text: string = pending === null ? line : `${pending.text} ${line.trim()}`;
    const at: number = pending?.line ?? i + 1;
    if (text.endsWith("\\")) pending = { line: at, text: text.slice(0, -1) };
    else {
      pending = null;
      out.push({ line: at, text });
    }
  }
  return out;
}

/** `NAME=value` before a command: the environment it runs in. */
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
const TOKEN = /"(?:[^"\\]|\\.)*"|'[^']*'|[^\s"']+/g;

/**
 * Each `consortia ...` invocation in `text` where `consortia` is the command run (first on the
 * line, or after a pipe, `;`, `&&` or `$(`; not an argument such as a user or image name): its
 * words up to the next pipe, `)`, `;` or comment.
 */
function invocations(text: string, variables: ReadonlyMap<string, string>): string[][] {
  const tokens = (text.match(TOKEN) ?? []).flatMap((t) => {
    const value = variables.get(t);
    return value === undefined ? [t] : (value.match(TOKEN) ?? []);
  });
  const found: string[][] = [];
  for (const [i, token] of tokens.entries()) {
    const before = tokens[i - 1];
    const commandPosition =
      before === undefined || ["|", ";", "&&", "$("].includes(before) || ASSIGNMENT.test(before);
    if (!(token === "consortia" && commandPosition) && !token.endsWith("$(consortia")) continue;
    const words: string[] = [];
    for (const word of tokens.slice(i + 1)) {
      if (["|", ";", "&&", "#", ")"].includes(word) || word.startsWith("#")) break;
      if (word.endsWith(")") && !word.startsWith("(")) {
        words.push(word.slice(0, -1));
        break;
      }
      words.push(word);
    }
    found.push(words);
  }
  return found;
}

/** `name="value"` definitions in the file's shell lines, as `$name` → value. */
function shellVariables(lines: readonly { text: string }[]): Map<string, string> {
  const variables = new Map<string, string>();
  for (const { text } of lines) {
    const defined = /^([a-z_]+)="([^"$]*)"$/.exec(text.trim());
    if (defined !== null) variables.set(`$${defined[1]}`, defined[2]!);
  }
  return variables;
}

/** The problem with one invocation, or null: an unknown subcommand or option. */
function problemOf(program: Command, words: readonly string[]): string | null {
  let command = program;
  let rest = [...words];
  while (rest.length > 0 && !rest[0]!.startsWith("-")) {
    const sub = command.commands.find((c) => c.name() === rest[0]);
    if (sub === undefined) break;
    command = sub;
    rest = rest.slice(1);
  }
  if (command === program) return `no command ${JSON.stringify(words[0])}`;
  if (command.commands.length > 0 && command.options.length === 0) {
    return `"${command.name()}" needs a subcommand`;
  }
  for (const word of rest) {
    if (!word.startsWith("--")) continue;
    const flag = word.split("=")[0]!;
    if (flag === "--help") continue;
    if (!command.options.some((o) => o.long === flag)) {
      return `${command.name()} has no option ${flag}`;
    }
  }
  return null;
}

for (const file of ["docs/operating.md", "README.md"]) {
  test(`every consortia command in ${file} names a real command and real options`, async () => {
    const lines = shellLines(readFileSync(join(ROOT, file), "utf8"));
    const variables = shellVariables(lines);
    const program = await buildProgram();
    let checked = 0;
    const problems: string[] = [];
    for (const { line, text } of lines) {
      for (const words of invocations(text, variables)) {
        checked++;
        const problem = problemOf(program, words);
        if (problem !== null) problems.push(`${file}:${line}: ${problem}: ${text.trim()}`);
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked >= 10, `only ${checked} consortia commands found in ${file}`);
  });
}

test("the check finds a renamed option and an unknown command", async () => {
  const program = await buildProgram();
  const check = (text: string) =>
    invocations(text, new Map()).map((words) => problemOf(program, words));
  assert.deepEqual(check("consortia config init --start --name n0"), [null]);
  assert.match(String(check("consortia config init --start --nmae n0")[0]), /no option --nmae/);
  assert.match(String(check("x=$(consortia gov proposee | field id)")[0]), /needs a subcommand/);
  assert.match(String(check("consortia nodes --config c.json")[0]), /no command "nodes"/);
  const nested = check(
    "A=$(consortia app package-id --bundle b) B=1 consortia app serve --tls-kye k",
  );
  assert.equal(nested[0], null);
  assert.match(String(nested[1]), /serve has no option --tls-kye/);
});
