// The layering of layers.json holds for every file under src/: pure layers do no IO and read no
// clock, and no layer imports one it may not. layers.json itself says only what the code needs:
// every layer has a folder, every folder a layer, every allowed edge is used by some import.
// No modules of src/ import each other in a circle, and there is no index.ts (modules are
// imported directly, never through a re-export door). A failure names the file and the import.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, copyFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import { checkLayers, findCycles, listTs } from "../../scripts/check-layers.js";

test("every src file respects layers.json, which allows only what the code uses", () => {
  assert.deepEqual(checkLayers(process.cwd()), []);
});

/** A throwaway repository root with `layers` as layers.json and `files` under src/. */
function withRoot(
  layers: object | "copy",
  files: Record<string, string>,
  check: (problems: string[]) => void,
): void {
  const root = mkdtempSync(join(tmpdir(), "layers-"));
  try {
    if (layers === "copy") copyFileSync("layers.json", join(root, "layers.json"));
    else writeFileSync(join(root, "layers.json"), JSON.stringify(layers));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, "src", path)), { recursive: true });
      writeFileSync(join(root, "src", path), text);
    }
    check(checkLayers(root));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function assertReports(problems: string[], ...parts: string[]): void {
  assert.ok(
    problems.some((p) => parts.every((part) => p.includes(part))),
    `expected a problem with ${parts.join(", ")} in:\n${problems.join("\n")}`,
  );
}

test("the checker catches a pure layer that reads the clock or imports node:fs", () => {
  const files = {
    "kv/bad.ts":
      'import { readFileSync } from "node:fs";\nexport const t = Date.now();\n' +
      "export const u = new Date();\n",
    "kv/up.ts": 'import { x } from "../cli/main.js";\nexport const y = x;\n',
    "cli/main.ts": "export const x = 1;\n",
  };
  withRoot("copy", files, (problems) => {
    assertReports(problems, "bad.ts", "node:fs");
    for (const clockRead of ["Date.now", "new Date()"]) {
      assert.ok(
        problems.some((p) => p.includes("bad.ts") && p.endsWith(`uses ${clockRead}`)),
        problems.join("\n"),
      );
    }
    assertReports(problems, "up.ts", "may not import cli");
  });
});

const SMALL_LAYERS = {
  pure: ["base"],
  allowed: { base: [], app: ["base"], ghost: ["base"] },
  nodeBuiltinsInPure: {},
  bannedInPure: [],
  bufferAllowed: [],
};

test("the checker catches a layer without a folder, a folder without a layer, an unused edge", () => {
  const files = {
    "base/one.ts": "export const one = 1;\n",
    "app/main.ts": "export const main = 2;\n",
    "extra/stray.ts": "export const stray = 3;\n",
  };
  withRoot(SMALL_LAYERS, files, (problems) => {
    assertReports(problems, "layer ghost has no folder in src/");
    assertReports(problems, "src/extra: folder with no layer");
    assertReports(problems, "app may import base, but no import does");
  });
});

test("the checker catches an index.ts and an import cycle, reported once by its files", () => {
  const files = {
    "base/one.ts": "export const one = 1;\n",
    "app/index.ts": 'export * from "./a.js";\n',
    "app/a.ts":
      'import { b } from "./b.js";\nimport { one } from "../base/one.js";\n' +
      "export const a = () => b + one;\n",
    "app/b.ts": 'import type { c } from "./c.js";\nexport const b = 2;\nexport type B = c;\n',
    "app/c.ts": 'import { a } from "./a.js";\nexport type c = typeof a;\n',
  };
  withRoot({ ...SMALL_LAYERS, allowed: { base: [], app: ["base"] } }, files, (problems) => {
    assertReports(problems, "app/index.ts", "no index.ts");
    const cycles = problems.filter((p) => p.startsWith("import cycle"));
    assert.deepEqual(cycles, ["import cycle: app/a.ts -> app/b.ts -> app/c.ts -> app/a.ts"]);
  });
});

test("findCycles reports each strongly connected component once, and self-imports", () => {
  const graph = new Map([
    ["a", ["b"]],
    ["b", ["a", "c"]],
    ["c", ["d"]],
    ["d", ["c", "e"]],
    ["e", ["e"]],
    ["f", ["a"]],
  ]);
  assert.deepEqual(findCycles(graph), [
    ["a", "b", "a"],
    ["c", "d", "c"],
    ["e", "e"],
  ]);
});

// The node host is wired together by start-up: the frontends, boot paths and runtime modules see
// the node only through narrow interfaces (frontends/node-context.ts and their own deps), so
// only the start-up modules of src/node and the CLI may import node-host.ts.
test("only start-up and the CLI import the node host", () => {
  const startUp = new Set(["src/node/start-node.ts", "src/node/register-frontends.ts"]);
  const importers = listTs("src").filter((file) =>
    /from\s+["'][./]*(?:node\/)?node-host\.js["']/.test(readFileSync(file, "utf8")),
  );
  assert.ok(importers.length > 0, "start-up imports the host");
  const others = importers.filter((f) => !startUp.has(f) && !f.startsWith("src/cli/"));
  assert.deepEqual(others, []);
});

test("only the layers layers.json names may import a workspace package (the client SDK)", () => {
  const files = {
    "node/uses-sdk.ts":
      'import { connect } from "@consortia/client/node";\nexport const c = connect;\n',
    "cli/uses-sdk.ts":
      'import { ClientError } from "@consortia/client";\nexport const e = ClientError;\n',
  };
  withRoot("copy", files, (problems) => {
    assertReports(problems, "node/uses-sdk.ts", "may not import the package @consortia/client");
    assert.ok(!problems.some((p) => p.includes("cli/uses-sdk.ts")), problems.join("\n"));
  });
});
