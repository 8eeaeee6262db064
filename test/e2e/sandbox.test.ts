/**
 * End-to-end: `consortia sandbox --no-wait` from source brings up three real node processes
 * (the default), has the members ack and open the service, and leaves them running; then a
 * user writes and reads a private record over mTLS and `consortia gov list` sees the opening
 * proposal Accepted. This is the path `npm start` takes, so it is tested through real processes
 * and real HTTPS. The nodes are always killed by their PIDs in `finally`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { memberIdFromCert } from "../../src/crypto/identity.js";
import { decryptShare } from "../../src/node/recovery-shares.js";
import { runCli } from "../helpers/cli.js";
import { freePortBlock, isAlive } from "../helpers/network.js";

interface Reply {
  status: number;
  body: string;
}

function https(
  url: string,
  tls: { ca: string; cert: string; key: string },
  method: string,
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { "content-type": "application/json" };
    const req = request(url, { method, headers, ...tls, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

async function killNode(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

test("the sandbox opens a service that serves user0 and lists the accepted proposal", async () => {
  const workspace = mkdtempSync(join(tmpdir(), "consortia-sandbox-"));
  const port = await freePortBlock(3);
  const pids: number[] = [];
  try {
    const args = ["sandbox", "--no-wait", "--workspace", workspace, "--port", String(port)];
    const run = runCli([...args, "--sig-ms-interval", "50"]);
    for (let i = 0; i < 3; i++) {
      const pidText = (() => {
        try {
          return readFileSync(join(workspace, `sandbox_${i}`, "node.pid"), "utf8");
        } catch {
          return "";
        }
      })();
      if (/^\d+\s*$/.test(pidText)) pids.push(Number(pidText));
    }
    assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /Started Consortia network with the following nodes:/);
    assert.match(run.stdout, new RegExp(`  Node \\[0\\] = https://127\\.0\\.0\\.1:${port}\\n`));
    const common = join(workspace, "sandbox_common");
    assert.ok(
      run.stdout.includes(`Keys and certificates have been copied to the common folder: ${common}`),
    );
    assert.equal(pids.length, 3, "every node's node.pid was written");
    for (let i = 0; i < 3; i++) {
      const line = `  Node [${i}] = https://127.0.0.1:${port + i}`;
      assert.ok(run.stdout.includes(line), line);
    }

    const tls = {
      ca: readFileSync(join(common, "service_cert.pem"), "utf8"),
      cert: readFileSync(join(common, "user0_cert.pem"), "utf8"),
      key: readFileSync(join(common, "user0_privk.pem"), "utf8"),
    };
    const url = `https://127.0.0.1:${port}/app/log/private`;
    const write = await https(url, tls, "POST", JSON.stringify({ id: 1, msg: "x" }));
    assert.deepEqual(write, { status: 200, body: "true" });
    const read = await https(`${url}?id=1`, tls, "GET");
    assert.equal(read.status, 200);
    assert.deepEqual(JSON.parse(read.body), { msg: "x" });

    const node = `https://127.0.0.1:${port}`;
    const list = runCli(["gov", "list", "--workspace", workspace, "--node", node]);
    assert.equal(list.status, 0, list.stderr);
    const proposals = JSON.parse(list.stdout) as { proposalState: string; ballotCount: number }[];
    assert.equal(proposals.length, 1);
    // Three members: a strict majority is two ballots.
    assert.equal(proposals[0]?.proposalState, "Accepted");
    assert.equal(proposals[0]?.ballotCount, 2);

    // Opening issued recovery shares: member0's decrypts with its encryption key (threshold 1:
    // the whole recovery key). Served by a backup, read locally once replicated.
    const member0Id = memberIdFromCert(readFileSync(join(common, "member0_cert.pem"), "utf8"));
    const sharePath = `/gov/recovery/encrypted-shares/${member0Id}?api-version=2024-07-01`;
    const backupUrl = `https://127.0.0.1:${port + 1}${sharePath}`;
    let shareReply = await https(backupUrl, tls, "GET");
    for (let i = 0; i < 50 && shareReply.status === 404; i++) {
      await new Promise((r) => setTimeout(r, 100));
      shareReply = await https(backupUrl, tls, "GET");
    }
    assert.equal(shareReply.status, 200, shareReply.body);
    const encrypted = (JSON.parse(shareReply.body) as { encryptedShare: string }).encryptedShare;
    const encKey = readFileSync(join(common, "member0_enc_privk.pem"), "utf8");
    const share = decryptShare(new Uint8Array(Buffer.from(encrypted, "base64")), encKey);
    assert.equal(share.byteLength, 33);
    assert.equal(share[0], 0);
  } finally {
    for (const pid of pids) await killNode(pid);
    rmSync(workspace, { recursive: true, force: true });
  }
});
