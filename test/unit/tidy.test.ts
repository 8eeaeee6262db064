// House style limits that a reviewer would otherwise check by eye (style.md §6), for every
// .ts file in src/, bench/ and scripts/: lines at most 100 columns, no empty catch blocks that
// swallow errors, functions at most 70 lines (first to last line, nested functions included)
// and files at most 600 lines. A generated table is exempt from the file limit when its first
// line starts with `// generated:` followed by what generated it; its functions still count.
// The sizes are measured on a real TypeScript parse (scripts/tidy.ts), not by brace counting.
// Service table names (`public:ccf.gov.*`, `public:ccf.internal.*`) are spelled out only in the
// registry, src/kv/service-tables.ts; everything else in src/ uses its constants.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { listTs } from "../../scripts/check-layers.js";
import {
  checkSizes,
  checkSource,
  checkTableNames,
  FILE_LINES_MAX,
  FUNCTION_LINES_MAX,
  GENERATED_MARKER,
  TABLE_REGISTRY,
} from "../../scripts/tidy.js";

const files = ["src", "bench", "scripts"].flatMap(listTs);

test("source lines are at most 100 columns", () => {
  const long: string[] = [];
  for (const file of files) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (line.length > 100) long.push(`${file}:${i + 1} (${line.length})`);
      });
  }
  assert.deepEqual(long, []);
});

test("no catch block is empty", () => {
  const empty = files.filter((f) => /catch\s*(\([^)]*\))?\s*\{\s*\}/.test(readFileSync(f, "utf8")));
  assert.deepEqual(empty, []);
});

test("functions are at most 70 lines and files at most 600", async () => {
  assert.deepEqual(await checkSizes(files), []);
});

/** A function `name` spanning exactly `lines` lines, with a brace inside a string on the way. */
function functionOf(name: string, lines: number): string {
  const body = Array.from({ length: lines - 2 }, (_, i) => `  const v${i} = "}";`);
  return [`export function ${name}(): void {`, ...body, "}"].join("\n") + "\n";
}

test("the size checker catches a 71-line function and a 601-line file", async () => {
  assert.deepEqual(await checkSource("ok.ts", functionOf("fits", FUNCTION_LINES_MAX)), []);
  assert.deepEqual(await checkSource("long.ts", functionOf("tooLong", FUNCTION_LINES_MAX + 1)), [
    "long.ts:1 tooLong (71 lines)",
  ]);

  // Nested functions count towards their parent, and methods and arrows are named.
  const nested = [
    "class Box {",
    "  constructor() {",
    ...Array.from({ length: 72 }, (_, i) => `    const f${i} = () => ${i};`),
    "  }",
    "}",
    "",
  ].join("\n");
  assert.deepEqual(await checkSource("box.ts", nested), ["box.ts:2 constructor (74 lines)"]);
  const arrow = `export const run = async () => {\n${"  await 0;\n".repeat(70)}};\n`;
  assert.deepEqual(await checkSource("arrow.ts", arrow), ["arrow.ts:1 run (72 lines)"]);

  const lines = (count: number) => "export const x = 1;\n".repeat(count);
  assert.deepEqual(await checkSource("fits.ts", lines(FILE_LINES_MAX)), []);
  assert.deepEqual(await checkSource("big.ts", lines(FILE_LINES_MAX + 1)), [
    "big.ts:1 file (601 lines, at most 600)",
  ]);
  const generated = `${GENERATED_MARKER} by a table generator\n${lines(FILE_LINES_MAX)}`;
  assert.deepEqual(await checkSource("table.ts", generated), []);
});

test("service table names are spelled out only in the registry", async () => {
  const found: string[] = [];
  for (const file of listTs("src").filter((f) => f !== TABLE_REGISTRY)) {
    found.push(...(await checkTableNames(file, readFileSync(file, "utf8"))));
  }
  assert.deepEqual(found, []);
});

test("the table name checker catches literals and templates, not comments or COSE headers", async () => {
  const source = [
    "// The map public:ccf.gov.members.info is named in a comment only.",
    'const a = "public:ccf.gov.members.info";',
    "const b = `no value in public:ccf.internal.${name}`;",
    'const c = ["ccf.internal.private_thing"];',
    'const header = "ccf.gov.msg.type";',
    "",
  ].join("\n");
  assert.deepEqual(await checkTableNames("t.ts", source), [
    `t.ts:2 public:ccf.gov.members.info (use ${TABLE_REGISTRY})`,
    `t.ts:3 public:ccf.internal. (use ${TABLE_REGISTRY})`,
    `t.ts:4 ccf.internal.private_thing (use ${TABLE_REGISTRY})`,
  ]);
});
