// `npm run sim:long` (src/sim/long.ts) as a real process: seed ranges and time-bounded
// campaigns on one thread and on worker threads print a line per seed and exit 0; a violation
// (a deliberately broken consensus, mutations.ts) prints the seed and a replay command that
// fails the same way, and exits 1; usage errors exit 2. Oracle: the exit codes, the printed
// seeds, and `npm run sim` (main.ts) re-running the printed replay command.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

function run(script: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", script, ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const long = (args: string[]) => run("src/sim/long.ts", args);

test("a seed range runs every seed on worker threads, prints each, and exits 0", () => {
  const r = long(["--seeds", "3..5", "--steps", "2000", "--jobs", "2"]);
  assert.equal(r.status, 0, r.out);
  for (const seed of [3, 4, 5]) assert.match(r.out, new RegExp(`seed ${seed} OK: 2000 steps`));
  assert.doesNotMatch(r.out, /seed [26] /);
  assert.match(
    r.out,
    /done in \d+:\d\d: 3 seeds, 6000 faulty steps of passing seeds; no violation/,
  );
});

test("a time-bounded campaign starts at --from and stops when time is up", () => {
  const r = long(["--minutes", "0.01", "--from", "40", "--steps", "1500"]);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /from seed 40, for 0.01 min/);
  assert.match(r.out, /seed 40 OK: 1500 steps/);
  // 0.6 s of campaign: a few seeds at most, never an unbounded run.
  const seeds = [...r.out.matchAll(/seed (\d+) OK/g)].length;
  assert.ok(seeds >= 1 && seeds < 20, r.out);
});

test("a violation prints the seed and a replay command that fails the same way; exit 1", () => {
  const r = long(["--seeds", "2..3", "--steps", "20000", "--mutation", "grant-every-vote"]);
  assert.equal(r.status, 1, r.out);
  const failed = /FAILED seed 2 \((\w+)\)[^\n]*\n(\w+ violated at seed 2 step \d+)/.exec(r.out);
  assert.ok(failed !== null, r.out);
  const replay = /replay: npm run sim -- (.*) --verbose/.exec(r.out);
  assert.ok(replay !== null, r.out);
  assert.match(r.out, /FAILED: seeds 2, 3/);
  const again = run("src/sim/main.ts", replay[1]!.split(" "));
  assert.equal(again.status, 1, again.out);
  assert.ok(again.out.includes(failed[2]!), `${failed[2]} in\n${again.out}`);
});

test("usage errors exit 2", () => {
  const none = long(["--steps", "10"]);
  assert.equal(none.status, 2, none.out);
  assert.match(none.out, /give --minutes N or --seeds A..B/);
  assert.equal(long(["--seeds", "5..2"]).status, 2);
});
