// `consortia node` whose start fails, as a real process (src/cli/commands/node.ts runNode,
// src/node/start-node.ts): it exits 1 within seconds with one line on stderr, and leaves its
// directory as it found it, so the operator fixes the cause and starts the same config again.
//   1. An rpc port held by another listener (a net.Server of this test): the line names the
//      address, the interface and EADDRINUSE; no ledger or certificate was written. Once the
//      port is free, the same command starts the node, which answers GET /node/state over TLS.
//   2. A failure after the genesis, with sealer worker threads running (the service
//      certificate is to go in a directory that does not exist): the process still exits, and
//      the genesis is gone.
// Oracles: exit codes, time to exit, stderr, the directory listing, and the node's answer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/node/startup/startup-checks.js";
import { CLI_ARGV, runCli } from "../helpers/cli.js";
import { httpsRequest } from "../helpers/https.js";
import { closeServer, tryListen } from "../helpers/listen.js";
import { waitFor } from "../helpers/network.js";

/** A failed start prints its line and exits within this; the old code never exited. */
const EXIT_WITHIN_MS = 8000;

interface Exit {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
  readonly elapsedMs: number;
}

/** Runs `consortia node --config FILE` until it exits, killing it after EXIT_WITHIN_MS. */
function runNodeToExit(configFile: string): Promise<Exit> {
  const started = Date.now();
  const child = spawn(process.execPath, [...CLI_ARGV, "node", "--config", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const kill = setTimeout(() => child.kill("SIGKILL"), EXIT_WITHIN_MS);
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr, elapsedMs: Date.now() - started });
    });
  });
}

function assertNothingWritten(nodeDir: string): void {
  const ledgerDir = join(nodeDir, "ledger");
  const ledger = existsSync(ledgerDir) ? readdirSync(ledgerDir) : [];
  assert.deepEqual(
    ledger.filter((f) => f.startsWith("ledger_")),
    [],
    "no ledger",
  );
  assert.equal(existsSync(join(nodeDir, "service_cert.pem")), false, "no service certificate");
  assert.equal(existsSync(join(nodeDir, "node.pid")), false, "no pid file");
}

/** A Start config made by `consortia config init`, in `<dir>/n0/config.json`. */
async function initConfig(dir: string): Promise<{ file: string; rpcPort: number }> {
  const keygen = runCli(["keygen", "--name", "member0", "--out", dir]);
  assert.equal(keygen.status, 0, keygen.stderr);
  const rpcPort = await freePort("0.0.0.0");
  const nodePort = await freePort("0.0.0.0");
  const init = runCli(
    [
      ...["config", "init", "--start", "--name", "n0", "--host", "127.0.0.1"],
      ...["--member", join(dir, "member0_cert.pem")],
      ...["--rpc-port", String(rpcPort), "--node-port", String(nodePort)],
    ],
    { cwd: dir },
  );
  assert.equal(init.status, 0, init.stderr);
  return { file: join(dir, "n0", "config.json"), rpcPort };
}

test("a node whose start fails exits at once and can be started again", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "node-start-failure-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { file, rpcPort } = await initConfig(dir);
  const nodeDir = join(dir, "n0");

  await t.test("an rpc port held by another listener", async () => {
    const blocker = await tryListen("0.0.0.0", rpcPort);
    assert.ok(blocker !== null, `port ${rpcPort} was taken before the test held it`);
    let run: Exit;
    try {
      run = await runNodeToExit(file);
    } finally {
      await closeServer(blocker);
    }
    assert.equal(run.code, 1, `${run.stdout}${run.stderr}`);
    assert.ok(run.elapsedMs < EXIT_WITHIN_MS, `exited after ${run.elapsedMs} ms`);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.match(
      lines[0]!,
      new RegExp(
        `^consortia: node failed to start: cannot listen on 0\\.0\\.0\\.0:${rpcPort} ` +
          "\\(EADDRINUSE\\) for network\\.rpc_interfaces\\.primary_rpc_interface",
      ),
    );
    assertNothingWritten(nodeDir);
  });

  await t.test("once the port is free, the same command starts the node", async () => {
    const child = spawn(process.execPath, [...CLI_ARGV, "node", "--config", file], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      const url = `https://127.0.0.1:${rpcPort}/node/state`;
      const state = await waitFor("the restarted node's state", 30_000, async () => {
        const ca = readFileSync(join(nodeDir, "service_cert.pem"), "utf8");
        const reply = await httpsRequest(url, { ca }, "GET");
        return reply.status === 200 ? (JSON.parse(reply.body) as { state: string }) : undefined;
      });
      assert.equal(state.state, "PartOfNetwork", output);
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output);
  });

  await t.test("a failure after the genesis, with worker threads running", async () => {
    rmSync(join(nodeDir, "ledger"), { recursive: true, force: true });
    for (const f of ["service_cert.pem", "node.pid"]) rmSync(join(nodeDir, f), { force: true });
    const config = JSON.parse(readFileSync(file, "utf8")) as Record<string, any>;
    config["worker_threads"] = 2;
    config["command"]["service_certificate_file"] = "missing/service_cert.pem";
    writeFileSync(file, JSON.stringify(config));
    const run = await runNodeToExit(file);
    assert.equal(run.code, 1, `${run.stdout}${run.stderr}`);
    assert.ok(run.elapsedMs < EXIT_WITHIN_MS, `exited after ${run.elapsedMs} ms`);
    const lines = run.stderr.trim().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /^consortia: node failed to start: ENOENT: .*missing/);
    assertNothingWritten(nodeDir);
  });
});
