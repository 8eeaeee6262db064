// A start that fails part-way (startNode, src/node/start-node.ts) undoes what it began: after
// the failure this process holds no listener, timer or worker thread that the start opened,
// and the ledger directory holds no ledger, so the same node starts once the cause is fixed.
// The failure is real: the service certificate file is to go in a directory that does not
// exist, which is found only after the genesis transaction was written. The oracles are
// Node's own list of live resources, the directory listing, and the restarted node's answer
// to GET /node/state over TLS (checked against the service certificate it wrote).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { constitutionFileNames } from "../../../../src/cli/constitution-files.js";
import { generateIdentity } from "../../../../src/crypto/identity.js";
import { loadNodeConfig } from "../../../../src/node/config/config.js";
import { startNode } from "../../../../src/node/start-node.js";
import { httpsRequest } from "../../../helpers/https.js";

const CONSTITUTION = join(import.meta.dirname, "..", "..", "..", "..", "constitution");

/**
 * Live resources by type (TCPServerWrap, Timeout...), counted, and the process's threads, which
 * count worker threads (Node does not list workers among its resources).
 */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  counts.set("thread", readdirSync("/proc/self/task").length);
  return counts;
}

/** The resources live now that were not before (file system requests in flight aside). */
function leftSince(before: Map<string, number>): string[] {
  const left: string[] = [];
  for (const [type, n] of resources()) {
    if (type.startsWith("FS")) continue;
    if (n > (before.get(type) ?? 0)) left.push(`${type} x${n - (before.get(type) ?? 0)}`);
  }
  return left;
}

/** leftSince once what is being closed is gone (libuv ends handles a loop turn later), or 2 s. */
async function leftAfterClosing(before: Map<string, number>): Promise<string[]> {
  for (let waited = 0; waited < 2000 && leftSince(before).length > 0; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return leftSince(before);
}

async function writeConfig(dir: string, serviceCertificateFile: string): Promise<string> {
  const member = await generateIdentity({ name: "member0", now: new Date() });
  writeFileSync(join(dir, "member0_cert.pem"), member.certPem);
  const document = {
    network: {
      node_to_node_interface: { bind_address: "127.0.0.1:0" },
      rpc_interfaces: { primary: { bind_address: "127.0.0.1:0" } },
    },
    command: {
      type: "Start",
      service_certificate_file: serviceCertificateFile,
      start: {
        constitution_files: constitutionFileNames(CONSTITUTION).map((f) => join(CONSTITUTION, f)),
        members: [{ certificate_file: "member0_cert.pem" }],
        service_configuration: { recovery_threshold: 1 },
      },
    },
    // Sealer workers: threads a failed start must end.
    worker_threads: 2,
  };
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify(document));
  return file;
}

test("a start that fails after its genesis leaves nothing running and no ledger", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "start-failure-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const log = (line: string) => lines.push(line);
  const file = await writeConfig(dir, "missing/service_cert.pem");
  // libuv starts its thread pool at its first use: before counting.
  await readFile(file);
  const before = resources();
  await assert.rejects(startNode(loadNodeConfig(file), { log }), /ENOENT/);
  assert.deepEqual(await leftAfterClosing(before), [], lines.join("\n"));
  assert.deepEqual(
    readdirSync(join(dir, "ledger")).filter((f) => f.startsWith("ledger_")),
    [],
    "the genesis was deleted",
  );

  // The cause fixed, the same ledger directory takes the node.
  await writeConfig(dir, "service_cert.pem");
  const host = await startNode(loadNodeConfig(file), { log });
  try {
    const rpc = host.boundInterfaces[0]!;
    const ca = readFileSync(join(dir, "service_cert.pem"), "utf8");
    const reply = await httpsRequest(`https://127.0.0.1:${rpc.port}/node/state`, { ca }, "GET");
    assert.equal(reply.status, 200, reply.body);
    const state = JSON.parse(reply.body) as { node_id: string; state: string };
    assert.deepEqual([state.node_id, state.state], [host.nodeId, "PartOfNetwork"]);
  } finally {
    await host.stop();
  }
});
