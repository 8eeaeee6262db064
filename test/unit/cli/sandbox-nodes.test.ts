/**
 * The sandbox's node configs (src/cli/commands/sandbox-nodes.ts writeNodeConfig) with and
 * without --node-to-node-published-port: node i publishes 127.0.0.1:port+i and still binds its
 * own node-to-node port. Oracle: the node's own config loader (src/node/config), which must
 * read the file and report both addresses. --curve: the config carries the chosen curve_id,
 * which the node's loader reads and its identity code turns into the key curve; a bad value
 * is a one-line CLI error before anything starts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeNodeConfig, type Settings } from "../../../src/cli/commands/sandbox-nodes.js";
import { loadNodeConfig } from "../../../src/node/config/config.js";
import { curveIdOf } from "../../../src/cli/commands/sandbox.js";
import { curveOf } from "../../../src/node/startup/node-identity.js";
import { runCli } from "../../helpers/cli.js";

const SETTINGS: Settings = {
  nodes: 3,
  electionTimeoutMs: 1000,
  workerThreads: 1,
  members: 1,
  users: 1,
  port: 8000,
  workspace: "/nonexistent",
  sigMsInterval: 100,
  curveId: "Secp256R1",
  wait: false,
  recover: false,
};

test("--node-to-node-published-port makes node i publish port + i; without it, the bind address", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-nodes-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const common = join(dir, "common");
  mkdirSync(common);
  writeFileSync(join(common, "service_cert.pem"), "");
  const proxied = { ...SETTINGS, nodeToNodePublishedPort: 9300 };
  const n2n = (file: string) => loadNodeConfig(file).network.nodeToNodeInterface;
  const withProxy = n2n(writeNodeConfig(2, join(dir, "a"), common, [], proxied));
  assert.equal(withProxy.bindAddress.port, 8102);
  assert.equal(withProxy.publishedAddress.port, 9302);
  const plain = n2n(writeNodeConfig(2, join(dir, "b"), common, [], SETTINGS));
  assert.equal(plain.publishedAddress.port, 8102);
});

test("--curve sets node_certificate.curve_id, which decides the node's key curve", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-nodes-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const common = join(dir, "common");
  mkdirSync(common);
  writeFileSync(join(common, "service_cert.pem"), "");
  const constitution = [join(common, "constitution.js")];
  for (const file of ["constitution.js", "member0_cert.pem", "member0_enc_pubk.pem"]) {
    writeFileSync(join(common, file), "");
  }
  for (const [flag, curveId, keyCurve] of [
    ["secp256r1", "Secp256R1", "secp256r1"],
    ["secp384r1", "Secp384R1", "secp384r1"],
  ] as const) {
    assert.equal(curveIdOf(flag), curveId);
    for (const index of [0, 1]) {
      const settings = { ...SETTINGS, curveId: curveIdOf(flag) };
      const file = writeNodeConfig(
        index,
        join(dir, `${flag}-${index}`),
        common,
        constitution,
        settings,
      );
      const config = loadNodeConfig(file);
      assert.equal(config.nodeCertificate.curveId, curveId, `${flag} node ${index}`);
      assert.equal(curveOf(config), keyCurve);
    }
  }
});

test("a bad --curve is a clear CLI error, before any workspace is made", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-nodes-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.throws(() => curveIdOf("secp521r1"), /--curve must be secp256r1 or secp384r1/);
  assert.throws(() => curveIdOf("toString"), /--curve must be/);
  const workspace = join(dir, "workspace");
  const run = runCli(["sandbox", "--curve", "P-256", "--workspace", workspace]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /--curve must be secp256r1 or secp384r1, got "P-256"/);
  assert.equal(existsSync(workspace), false);
  const help = runCli(["sandbox", "--help"]);
  assert.match(help.stdout, /--curve <curve>[\s\S]*secp256r1[\s\S]*secp384r1/);
});
