// The golden scenario runner (test/scenarios/runner.ts) on small scripts in a temp directory,
// with a toy handler registry: a matching script passes, a mismatch fails with a diff naming the
// file and lines, REWRITE=1 rewrites only the expected blocks, and script mistakes (unknown
// command, missing separator, a throwing handler) fail with the file and line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Command,
  diffLines,
  type HandlerRegistry,
  parseCommand,
  runScenarioFile,
} from "../scenarios/runner.js";

interface Counter {
  total: number;
}

const handlers: HandlerRegistry<Counter> = {
  add(env, command) {
    for (const arg of command.positional) env.total += Number(arg);
    return `total=${env.total}`;
  },
  echo(_env, command) {
    return command.input.join("\n");
  },
  fail() {
    throw new Error("boom");
  },
};

const SCRIPT = `# adds up
add 1 2
----
total=3

# echo copies its input lines
echo
one
two
----
one
two

add 4
----
total=7
`;

function withScript(text: string, body: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "scenario-"));
  try {
    const file = join(dir, "script.txt");
    writeFileSync(file, text);
    body(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(file: string, rewrite = false): void {
  runScenarioFile(file, { handlers, newEnv: () => ({ total: 0 }), rewrite });
}

/** The message of the error `body` throws; fails when it throws nothing. */
function failureOf(body: () => void): string {
  try {
    body();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return assert.fail("expected a failure");
}

test("a script whose outputs match its expected blocks passes", () => {
  withScript(SCRIPT, (file) => run(file));
});

test("a mismatching stanza fails with a unified diff naming the file and lines", () => {
  const wrong = SCRIPT.replace("total=7", "total=8");
  withScript(wrong, (file) => {
    const message = failureOf(() => run(file));
    assert.match(message, new RegExp(`${escape(file)}:14: output of "add" differs`));
    assert.match(message, new RegExp(`--- expected ${escape(file)}:16\n\\+\\+\\+ actual`));
    assert.match(message, /@@ -16,1 \+16,1 @@\n-total=8\n\+total=7/);
    assert.match(message, /REWRITE=1/);
    assert.doesNotMatch(message, /:2: output/, "matching stanzas are not reported");
  });
});

test("every mismatching stanza of a file is reported, not just the first", () => {
  const wrong = SCRIPT.replace("total=3", "total=0").replace("two\n\nadd", "three\n\nadd");
  withScript(wrong, (file) => {
    const message = failureOf(() => run(file));
    assert.match(message, /:2: output of "add" differs/);
    assert.match(message, /:7: output of "echo" differs\n.*\n.*\n.*\n one\n-three\n\+two/);
  });
});

test("REWRITE=1 replaces the expected blocks and keeps comments, commands and input", () => {
  const stale = SCRIPT.replace("total=3", "total=0\nleftover").replace("one\ntwo\n\n", "\n");
  withScript(stale, (file) => {
    const saved = process.env["REWRITE"];
    process.env["REWRITE"] = "1";
    try {
      runScenarioFile(file, { handlers, newEnv: () => ({ total: 0 }) });
    } finally {
      if (saved === undefined) delete process.env["REWRITE"];
      else process.env["REWRITE"] = saved;
    }
    assert.equal(readFileSync(file, "utf8"), SCRIPT);
    run(file);
  });
});

test("an unknown command fails with its file and line and the known commands", () => {
  withScript(`${SCRIPT}\nfrobnicate 3\n----\nok\n`, (file) => {
    const message = failureOf(() => run(file));
    assert.match(message, new RegExp(`${escape(file)}:18: unknown command "frobnicate"`));
    assert.match(message, /known: add, echo, fail/);
  });
});

test("an unknown command fails in REWRITE mode too and leaves the file alone", () => {
  const text = `frobnicate\n----\nok\n`;
  withScript(text, (file) => {
    assert.match(
      failureOf(() => run(file, true)),
      /unknown command "frobnicate"/,
    );
    assert.equal(readFileSync(file, "utf8"), text);
  });
});

test("a stanza without a separator and a throwing handler name the file and line", () => {
  withScript("add 1\ntotal=1\n", (file) => {
    assert.match(
      failureOf(() => run(file)),
      new RegExp(`${escape(file)}:1: "add" has no "----"`),
    );
  });
  withScript("add 1\n----\ntotal=1\n\nfail\n----\n", (file) => {
    assert.match(
      failureOf(() => run(file)),
      new RegExp(`${escape(file)}:5: "fail" threw: boom`),
    );
  });
});

test("command lines split into positional and key=value arguments, quotes allowed", () => {
  const command: Command = parseCommand('put m a=1 "b c" d="e f" "g=h"', 3);
  assert.equal(command.name, "put");
  assert.deepEqual(command.positional, ["m", "b c", "g=h"]);
  assert.deepEqual(
    [...command.named],
    [
      ["a", "1"],
      ["d", "e f"],
    ],
  );
  assert.equal(command.line, 3);
  assert.throws(() => parseCommand("put a=1 a=2", 7), /<script>:7: argument a given twice/);
});

test("the line diff keeps common lines and marks removals before additions", () => {
  assert.deepEqual(diffLines(["a", "b", "c"], ["a", "x", "c", "d"]), [
    " a",
    "-b",
    "+x",
    " c",
    "+d",
  ]);
  assert.deepEqual(diffLines([], ["a"]), ["+a"]);
  assert.deepEqual(diffLines(["a"], []), ["-a"]);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
