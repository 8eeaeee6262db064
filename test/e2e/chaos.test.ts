/**
 * The bounded chaos run inside `npm test` (issue #15 item 4; docs/testing.md "npm run chaos"):
 * a 3-node network of real processes with node-to-node traffic through fault-injecting proxies,
 * four mTLS clients writing and reading five records, and 50 s of faults: each kind once (an
 * isolated primary, a kill with replacement, SIGSTOP, an isolated backup, a reconfiguration,
 * delays), then seed 15's picks. Oracle: the
 * linearizability checker (src/check/linearizability.ts, itself tested against hand-made and
 * simulated histories) over the clients' history, and the final checks of test/chaos/run.ts:
 * every write reported Committed is Committed on every live node and each record ends as its
 * last committed write. About 2 minutes of wall time; the run prints its summary as
 * diagnostics.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { FaultKind } from "../chaos/nemesis.js";
import { runChaos } from "../chaos/run.js";

const FAULTS_MS = 50_000;
/** Each kind of fault once, then the seed's picks. */
const SCHEDULE: readonly FaultKind[] = [
  "isolate-primary",
  "kill",
  "pause",
  "isolate-backup",
  "reconfigure",
  "delay",
];
const SEED = 15;

test("under kills, pauses, partitions and reconfigurations, no committed write is lost and reads on the primary are linearizable", async (t) => {
  const lines: string[] = [];
  const report = await runChaos({
    faultsMs: FAULTS_MS,
    seed: SEED,
    nodes: 3,
    clients: 4,
    keys: 5,
    schedule: SCHEDULE,
    log: (line) => lines.push(line),
  });
  for (const line of lines) t.diagnostic(line);
  const { total, ok, failed, indeterminate } = report.ops;
  t.diagnostic(`ops ${total}: ok ${ok}, failed ${failed}, indeterminate ${indeterminate}`);
  t.diagnostic(`faults: ${report.faults.join(", ")}`);
  assert.ok(report.faults.length >= 5, `only ${report.faults.length} faults were applied`);
  for (const kind of ["isolate-primary", "kill", "pause"]) {
    assert.ok(report.faults.includes(kind), `no ${kind} fault was applied`);
  }
  // The nodes talked through the proxies, and cut links refused their connections.
  t.diagnostic(`node-to-node connections: ${JSON.stringify(report.links)}`);
  assert.ok(report.links.accepted > 0, "no node-to-node connection went through the proxies");
  if (report.faults.some((f) => f.startsWith("isolate"))) assert.ok(report.links.refused > 0);
  assert.ok(ok >= 100, `only ${ok} operations succeeded`);
  assert.deepEqual(report.lost, []);
  assert.equal(report.check.kind, "linearizable", report.anomalies.join("\n\n"));
  assert.ok(report.passed);
});
