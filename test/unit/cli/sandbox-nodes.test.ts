/**
 * The sandbox's node configs (src/cli/commands/sandbox-nodes.ts writeNodeConfig) with and
 * without --node-to-node-published-port: node i publishes 127.0.0.1:port+i and still binds its
 * own node-to-node port. Oracle: the node's own config loader (src/node/config), which must
 * read the file and report both addresses.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeNodeConfig, type Settings } from "../../../src/cli/commands/sandbox-nodes.js";
import { loadNodeConfig } from "../../../src/node/config/config.js";

const SETTINGS: Settings = {
  nodes: 3,
  electionTimeoutMs: 1000,
  workerThreads: 1,
  members: 1,
  users: 1,
  port: 8000,
  workspace: "/nonexistent",
  sigMsInterval: 100,
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
