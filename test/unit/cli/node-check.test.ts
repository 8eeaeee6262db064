// `consortia node --check` (src/cli/commands/node.ts) on a config whose rpc interface and
// node-to-node interface bind one port (the start of the repro this was found by: the node
// bound one of them, wrote its genesis, failed on the other and never exited). Both `--check`
// and a start report one line naming both interfaces and exit 1; the start writes nothing.
// `config init` refuses to write such a config at all. Oracles: the CLI's exit code and stderr,
// and the node's directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "consortia-node-check-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "m0_cert.pem"), "placeholder\n");

const CLASH = new RegExp(
  "^consortia: invalid node configuration .*config\\.json: " +
    "network\\.node_to_node_interface\\.bind_address: 0\\.0\\.0\\.0:8950 takes the port of " +
    "network\\.rpc_interfaces\\.primary_rpc_interface\\.bind_address \\(0\\.0\\.0\\.0:8950\\): " +
    "each interface needs a port of its own$",
);

function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, stderr);
  return lines[0]!;
}

/** `config init --start` of node `name` into `<dir>/<name>`, with rpc port 8950. */
function configInit(name: string, nodePort: number) {
  return runCli([
    ...["config", "init", "--start", "--name", name, "--host", "127.0.0.1"],
    ...["--member", join(dir, "m0_cert.pem"), "--dir", join(dir, name)],
    ...["--rpc-port", "8950", "--node-port", String(nodePort)],
  ]);
}

test("an rpc interface on the node-to-node port is one line from --check and at start", () => {
  const out = join(dir, "n0");
  const init = configInit("n0", 8951);
  assert.equal(init.status, 0, init.stderr);
  const file = join(out, "config.json");
  writeFileSync(file, readFileSync(file, "utf8").replaceAll(":8951", ":8950"));

  const check = runCli(["node", "--config", file, "--check"]);
  assert.equal(check.status, 1, check.stdout + check.stderr);
  assert.match(oneLine(check.stderr), CLASH);

  const start = runCli(["node", "--config", file]);
  assert.equal(start.status, 1, start.stdout + start.stderr);
  assert.match(oneLine(start.stderr), CLASH);
  // config init's own files (the config and the inputs it copied) and nothing the node writes.
  assert.deepEqual(readdirSync(out).sort(), ["config.json", "constitution", "members"]);
});

test("config init does not write a config whose interfaces share a port", () => {
  const init = configInit("n1", 8950);
  assert.equal(init.status, 1, init.stdout + init.stderr);
  assert.match(oneLine(init.stderr), /--rpc-port and --node-port are both 8950/);
  assert.equal(existsSync(join(dir, "n1", "config.json")), false);
});
