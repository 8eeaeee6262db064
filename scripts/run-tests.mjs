// Runs every test file under test/ with node's test runner (Node 20 needs an explicit file list).
// Extra arguments filter files by substring: `npm test -- merkle kv`.
//
// Two lanes run side by side, each one file at a time: the end-to-end tests (real processes,
// mostly waiting on elections, timers and the network) and everything else (unit, property and
// scenario tests, mostly CPU). At most one test network runs at a time, so the timing bounds of
// the end-to-end tests see one network's load, not two. The e2e lane is printed as it runs; the
// other lane's output is printed whole when it ends. CONSORTIA_TEST_LANES=1 runs one lane.
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { createInterface } from "node:readline";

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = findTests("test").filter(
  (f) => filters.length === 0 || filters.some((x) => f.includes(x)),
);
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}

const isE2e = (f) => f.startsWith(`test${sep}e2e${sep}`);
const oneLane = process.env.CONSORTIA_TEST_LANES === "1";
const lanes = (
  oneLane
    ? [{ name: "all", files, live: true }]
    : [
        { name: "e2e", files: files.filter(isE2e), live: true },
        { name: "unit, property and scenario", files: files.filter((f) => !isE2e(f)), live: false },
      ]
).filter((lane) => lane.files.length > 0);
if (!lanes.some((lane) => lane.live)) lanes[0].live = true;

const COUNTS = ["tests", "pass", "fail", "cancelled", "skipped", "todo"];

/**
 * Keeps each failing test's TAP block ("not ok" and its YAML details, at most 60 lines), so that
 * the end of the output names every failure however long the run was.
 */
function failureCollector() {
  const blocks = [];
  let open = null;
  return {
    blocks,
    see(line) {
      if (open) {
        if (open.lines.length < 60) open.lines.push(line);
        if (line === `${open.indent}  ...`) open = null;
        return;
      }
      const m = /^(\s*)not ok \d+ - /.exec(line);
      if (m) {
        open = { indent: m[1], lines: [line] };
        blocks.push(open.lines);
      }
    },
  };
}

/** Runs one lane; resolves with its exit status and the counts from its summary lines. */
function runLane(lane) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--test", ...lane.files], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const buffered = [];
    const counts = {};
    const failures = failureCollector();
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = /^# (\w+) (\d+)$/.exec(line);
      if (m && COUNTS.includes(m[1])) counts[m[1]] = Number(m[2]);
      failures.see(line);
      if (lane.live) process.stdout.write(`${line}\n`);
      else buffered.push(line);
    });
    child.on("close", (code, signal) => {
      if (!lane.live) {
        process.stdout.write(`# ---- lane: ${lane.name} (${lane.files.length} files) ----\n`);
        process.stdout.write(`${buffered.join("\n")}\n# ---- end of lane: ${lane.name} ----\n`);
      }
      resolve({ lane, status: code ?? (signal ? 1 : 0), counts, failures: failures.blocks });
    });
  });
}

const started = Date.now();
const results = await Promise.all(lanes.map(runLane));
if (results.length > 1) {
  const total = COUNTS.map((k) => `${k} ${results.reduce((n, r) => n + (r.counts[k] ?? 0), 0)}`);
  console.log(`# all lanes: ${total.join(", ")}; ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
for (const r of results) {
  if (r.failures.length === 0) continue;
  console.log(`# ---- failures in lane ${r.lane.name} (${r.failures.length} blocks) ----`);
  for (const block of r.failures) console.log(block.join("\n"));
}
for (const r of results) if (r.status !== 0) console.log(`# lane ${r.lane.name} failed`);
process.exit(results.every((r) => r.status === 0) ? 0 : 1);
