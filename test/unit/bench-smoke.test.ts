// The pipeline benchmark keeps working: a tiny run ends with one JSON line carrying tx_per_s,
// and the ledger it leaves behind passes `consortia ledger verify`, its sample receipt
// `consortia receipt verify`. No speed is asserted (benchmarks print figures; tests do not time).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { nodeFlags } from "../../bench/sandbox.js";

test("bench:pipeline runs end to end and leaves a verifiable ledger and receipt", () => {
  const root = mkdtempSync(join(tmpdir(), "consortia-bench-smoke-"));
  const dir = join(root, "ledger");
  try {
    const args = ["--n", "3000", "--sig-tx-interval", "500", "--trials", "2", "--json"];
    args.push("--ledger-dir", dir);
    const run = spawnSync(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), "bench/pipeline.ts", ...args],
      { encoding: "utf8", timeout: 120_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    const result = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
    assert.equal(result.n, 3000);
    assert.ok(typeof result.tx_per_s === "number" && result.tx_per_s > 0);
    assert.equal(result.signatures, 6);
    assert.equal(result.trials, 2);
    assert.ok((result.tx_per_s_min as number) <= (result.tx_per_s_max as number));

    const verify = runCli(["ledger", "verify", "--dir", dir, "--no-progress"]);
    assert.equal(verify.status, 0, verify.stderr);
    assert.match(verify.stdout, /last verified seqno: 3006/);
    assert.ok(existsSync(join(dir, "sample_receipt.json")));
    const receipt = runCli([
      "receipt",
      "verify",
      "--receipt",
      join(dir, "sample_receipt.json"),
      "--service-cert",
      join(dir, "service_cert.pem"),
    ]);
    assert.equal(receipt.status, 0, receipt.stderr);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("bench:recovery recovers a small ledger and joins a node from a snapshot", () => {
  const run = spawnSync(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), "bench/recovery.ts", "--txs", "2000", "--json"],
    { encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split("\n");
  const result = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  assert.equal(result.txs, 2000);
  // Genesis and governance add a few transactions before the 2000 writes.
  const replayed = result.public_replay_txs as number;
  assert.ok(replayed > 2000 && replayed < 2100, `public replay of ${replayed} transactions`);
  assert.equal(result.private_replay_txs, replayed);
  assert.equal(result.joined_from_snapshot, true);
  assert.ok((result.snapshot_bytes as number) > 0);
});

test("the bench's sandbox takes profiling and extra node flags from its environment", () => {
  assert.deepEqual(nodeFlags({}), []);
  assert.deepEqual(nodeFlags({ CONSORTIA_BENCH_CPU_PROF: "/tmp/p" }), [
    "--cpu-prof",
    "--cpu-prof-dir=/tmp/p",
  ]);
  const both = { CONSORTIA_BENCH_CPU_PROF: "d", CONSORTIA_BENCH_NODE_FLAGS: "  --a  --b=1 " };
  assert.deepEqual(nodeFlags(both), ["--cpu-prof", "--cpu-prof-dir=d", "--a", "--b=1"]);
});
