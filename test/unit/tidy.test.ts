// House style limits that a reviewer would otherwise check by eye (house style 6.8): lines at
// most 100 columns in src/, bench/ and scripts/, and no empty catch blocks that swallow errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTs(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

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
