// The systemd unit and the Dockerfile (packaging/, Dockerfile; docs/operating.md) run what they
// say: the unit passes `systemd-analyze verify`; its ExecStartPre and ExecStart, with the install
// paths mapped onto this checkout and a temporary state directory, validate a config, run a node
// that answers over TLS and writes its ledger beside its config, and stop with exit 0 on
// KillSignal; a second start on the same ledger is refused (the node is replaced, not restarted)
// with an exit status the unit retries, unlike the storage fault's 74. The Dockerfile's
// ENTRYPOINT + CMD is the same command line as the unit's ExecStart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../helpers/cli.js";
import { httpsRequest } from "../helpers/https.js";
import { waitFor } from "../helpers/network.js";
import { freePort } from "../../src/node/startup/startup-checks.js";

const ROOT = join(import.meta.dirname, "..", "..");
const UNIT = readFileSync(join(ROOT, "packaging", "systemd", "consortia-node.service"), "utf8");
const DOCKERFILE = readFileSync(join(ROOT, "Dockerfile"), "utf8");

/** Every value of `key=` in the unit, in order. */
function unitValues(key: string): string[] {
  return UNIT.split("\n")
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

/** A unit command line with the install paths mapped onto this checkout and `state`. */
function localCommand(line: string, state: string): string[] {
  return line
    .split(" ")
    .map((word) =>
      word === "/usr/bin/node"
        ? process.execPath
        : word.replace("/opt/consortia", ROOT).replace("/var/lib/consortia", state),
    );
}

/** The exec-form JSON array of a Dockerfile instruction. */
function dockerExec(instruction: string): string[] {
  const line = DOCKERFILE.split("\n").find((l) => l.startsWith(`${instruction} `));
  assert.ok(line !== undefined, `Dockerfile has no ${instruction}`);
  return JSON.parse(line.slice(instruction.length + 1)) as string[];
}

test("the systemd unit passes systemd-analyze verify", (t) => {
  const which = spawnSync("sh", ["-c", "command -v systemd-analyze"], { encoding: "utf8" });
  if (which.status !== 0) {
    t.skip("systemd-analyze is not installed");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "consortia-unit-"));
  try {
    // verify checks that ExecStart's program exists: point it at this machine's node.
    const unit = join(dir, "consortia-node.service");
    writeFileSync(unit, UNIT.replaceAll("/usr/bin/node", process.execPath));
    const run = spawnSync("systemd-analyze", ["verify", unit], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr.trim(), "", "no warnings");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the Dockerfile runs the unit's command line, as a dedicated user, on Node 20", () => {
  const [execStart] = unitValues("ExecStart");
  assert.ok(execStart !== undefined);
  const unitArgs = execStart.split(" ").slice(1);
  assert.deepEqual([...dockerExec("ENTRYPOINT"), ...dockerExec("CMD")].slice(1), unitArgs);
  assert.ok(existsSync(join(ROOT, unitArgs[0]!.replace("/opt/consortia/", ""))));
  assert.match(DOCKERFILE, /^FROM node:20-/m);
  assert.match(DOCKERFILE, /^USER consortia$/m);
  assert.match(DOCKERFILE, /^STOPSIGNAL SIGTERM$/m);
  assert.match(readFileSync(join(ROOT, ".dockerignore"), "utf8"), /^node_modules$/m);
  assert.deepEqual(unitValues("RestartPreventExitStatus"), ["74"]);
  assert.deepEqual(unitValues("KillSignal"), ["SIGTERM"]);
});

test("the unit's commands validate a config, run a node and stop it on SIGTERM", async () => {
  const work = mkdtempSync(join(tmpdir(), "consortia-install-"));
  const state = join(work, "var-lib-consortia");
  try {
    // As docs/operating.md installs a node: `config init` writes a self-contained directory on
    // the operator's machine, which is copied whole into the unit's state directory.
    const keygen = runCli(["keygen", "--name", "member0", "--gen-enc-key", "--out", work]);
    assert.equal(keygen.status, 0, keygen.stderr);
    const [rpcPort, nodePort] = [await freePort("127.0.0.1"), await freePort("127.0.0.1")];
    const member = ["member0_cert.pem", "member0_enc_pubk.pem"].map((f) => join(work, f));
    const init = runCli([
      ...["config", "init", "--start", "--name", "n0", "--host", "127.0.0.1"],
      ...["--bind", "127.0.0.1", "--rpc-port", String(rpcPort), "--node-port", String(nodePort)],
      ...["--member", member.join(","), "--dir", join(work, "n0")],
    ]);
    assert.equal(init.status, 0, init.stderr);
    cpSync(join(work, "n0"), state, { recursive: true });
    rmSync(join(work, "n0"), { recursive: true });
    const [pre] = unitValues("ExecStartPre");
    const [start] = unitValues("ExecStart");
    const [check, ...checkArgs] = localCommand(pre!, state);
    const checked = spawnSync(check!, checkArgs, { cwd: state, encoding: "utf8" });
    assert.equal(checked.status, 0, checked.stderr);
    assert.match(checked.stdout, /is valid/);

    const [program, ...args] = localCommand(start!, state);
    const node = spawn(program!, args, { cwd: state, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    node.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    node.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => node.on("exit", resolve));
    try {
      const certFile = join(state, "service_cert.pem");
      await waitFor("the node's service certificate", 30_000, async () =>
        existsSync(certFile) && readFileSync(certFile, "utf8").includes("END CERTIFICATE")
          ? true
          : undefined,
      );
      const ca = readFileSync(certFile, "utf8");
      const port = rpcPort;
      const answer = await httpsRequest(`https://127.0.0.1:${port}/node/state`, { ca }, "GET");
      assert.equal(answer.status, 200, answer.body);
      assert.ok(existsSync(join(state, "ledger")), "the ledger sits beside the config");
    } finally {
      node.kill("SIGTERM");
    }
    assert.equal(await exited, 0, output);

    // A restart on the same ledger is refused: the unit's Restart= retries it (exit status is
    // not 74) until StartLimitBurst, and the operator replaces the node.
    const again = spawnSync(program!, args, { cwd: state, encoding: "utf8", timeout: 30_000 });
    assert.notEqual(again.status, 0);
    assert.notEqual(again.status, 74);
    assert.match(again.stderr, /already holds a ledger/);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
