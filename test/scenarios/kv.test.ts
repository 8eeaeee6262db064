// Runs every golden kv script (test/scenarios/kv/*.txt) as its own test: each script is a
// transcript of the store's behaviour (seqnos, conflicts, deletes, rollback, compaction,
// canonical write sets) that was checked by hand against CCF's kv semantics. A behaviour change
// shows up as a diff naming the script and line; REWRITE=1 rewrites the transcripts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { kvHandlers, newKvEnv } from "./kv/handlers.js";
import { runScenarioFile } from "./runner.js";

const dir = join(import.meta.dirname, "kv");
const scripts = readdirSync(dir)
  .filter((name) => name.endsWith(".txt"))
  .sort();

test("the kv scenario directory holds scripts", () => {
  assert.ok(scripts.length > 0, `no .txt scripts in ${dir}`);
});

for (const name of scripts) {
  test(`kv scenario ${name} produces its golden transcript`, () => {
    runScenarioFile(join(dir, name), { handlers: kvHandlers, newEnv: newKvEnv });
  });
}
