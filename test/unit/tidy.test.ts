// House style limits that a reviewer would otherwise check by eye (house style 6.8): lines at
// most 100 columns in src/, bench/ and scripts/, and no empty catch blocks that swallow errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { listTs } from "../../scripts/check-layers.js";

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
