// The proposals page's templates (console/src/templates.ts): the action names it offers are read
// from the constitution's source, so this checks them against the shipped constitution files
// (the oracle: the names its actions map defines, found here by a separate, simpler scan), and
// that every template is a proposal body naming its action, with the context's ids filled in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { actionNames, proposalTemplate } from "../../../../console/src/templates.js";

const DIR = join(import.meta.dirname, "..", "..", "..", "..", "constitution");
const source = readdirSync(DIR)
  .filter((f) => /^actions(-[a-z-]+)?\.js$/.test(f))
  .map((f) => readFileSync(join(DIR, f), "utf8"))
  .join("\n");

/** Names by lines: `["name", new Action(` on one line, or `"name",` then `new Action(`. */
function namesByLines(text: string): Set<string> {
  const lines = text.split("\n").map((l) => l.trim());
  const names = new Set<string>();
  lines.forEach((line, i) => {
    const oneLine = /^\["([a-z0-9_]+)", new Action\(/.exec(line)?.[1];
    const split = /^"([a-z0-9_]+)",$/.exec(line)?.[1];
    if (oneLine !== undefined) names.add(oneLine);
    else if (split !== undefined && lines[i + 1]?.startsWith("new Action(")) names.add(split);
  });
  return names;
}

test("the templates offer every action of the shipped constitution, once each", () => {
  const expected = namesByLines(source);
  const names = actionNames(source);
  assert.ok(names.includes("set_member") && names.includes("set_registry_chaincode"));
  assert.deepEqual(new Set(names), expected);
  assert.equal(names.length, expected.size);
});

test("a template is a proposal of its action, with the member, user and node filled in", () => {
  const context = { memberId: "a".repeat(64), userId: "b".repeat(64), nodeId: "c".repeat(64) };
  for (const name of actionNames(source)) {
    const body = JSON.parse(proposalTemplate(name, context)) as {
      actions: { name: string; args: Record<string, unknown> }[];
    };
    assert.equal(body.actions.length, 1);
    assert.equal(body.actions[0]?.name, name);
    const args = body.actions[0]!.args;
    for (const [key, id] of [
      ["member_id", context.memberId],
      ["user_id", context.userId],
      ["node_id", context.nodeId],
    ]) {
      if (key! in args) assert.equal(args[key!], id, `${name}.${key}`);
    }
  }
});
