// The layering of layers.json holds for every file under src/: pure layers do no IO and read no
// clock, and no layer imports one it may not. A failure names the file and the import.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { checkLayers } from "../../scripts/check-layers.js";

test("every src file respects layers.json", () => {
  assert.deepEqual(checkLayers(process.cwd()), []);
});

test("the checker catches a pure layer that reads the clock or imports node:fs", () => {
  const root = mkdtempSync(join(tmpdir(), "layers-"));
  try {
    copyFileSync("layers.json", join(root, "layers.json"));
    mkdirSync(join(root, "src", "kv"), { recursive: true });
    mkdirSync(join(root, "src", "cli"), { recursive: true });
    writeFileSync(
      join(root, "src", "kv", "bad.ts"),
      'import { readFileSync } from "node:fs";\nexport const t = Date.now();\nexport const u = new Date();\n',
    );
    writeFileSync(
      join(root, "src", "kv", "up.ts"),
      'import { x } from "../cli/main.js";\nexport const y = x;\n',
    );
    writeFileSync(join(root, "src", "cli", "main.ts"), "export const x = 1;\n");
    const problems = checkLayers(root);
    assert.ok(
      problems.some((p) => p.includes("bad.ts") && p.includes("node:fs")),
      problems.join("\n"),
    );
    for (const clockRead of ["Date.now", "new Date()"]) {
      assert.ok(
        problems.some((p) => p.includes("bad.ts") && p.endsWith(`uses ${clockRead}`)),
        problems.join("\n"),
      );
    }
    assert.ok(
      problems.some((p) => p.includes("up.ts") && p.includes("may not import cli")),
      problems.join("\n"),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
