/**
 * `npm run bench:rounds [-- bench options]`: runs `npm run bench` (without etcd unless asked)
 * with every node tracing its consensus events (CONSORTIA_ROUND_TRACE), then prints where the
 * signature rounds under load spent their time, stage by stage (round-stages.ts).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROUND_TRACE_ENV } from "../src/node/replication/round-trace.js";
import { percentile } from "./load.js";
import { parseTrace, roundStages } from "./round-stages.js";

const dir = mkdtempSync(join(tmpdir(), "consortia-round-trace-"));
try {
  const given = process.argv.slice(2);
  const args = given.some((a) => a === "--etcd" || a === "--no-etcd")
    ? given
    : ["--no-etcd", ...given];
  const bench = join(import.meta.dirname, "http.ts");
  const run = spawnSync(process.execPath, ["--import", "tsx", bench, ...args], {
    stdio: "inherit",
    env: { ...process.env, [ROUND_TRACE_ENV]: dir },
  });
  if (run.status !== 0) throw new Error(`npm run bench failed (${run.status ?? run.signal})`);
  const traces = readdirSync(dir).map((f) => parseTrace(readFileSync(join(dir, f), "utf8")));
  const stages = roundStages(traces);
  const rounds = stages.at(-1)!.samples.length;
  console.log(`commit rounds under load (${rounds} signatures, ms):`);
  for (const { name, samples } of stages) {
    const sorted = [...samples].sort((a, b) => a - b);
    const columns = [50, 90, 99].map((p) => {
      const value = percentile(sorted, p).toFixed(2).padStart(6);
      return `p${p} ${value}`;
    });
    console.log(`  ${name.padEnd(22)} ${columns.join("  ")}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
