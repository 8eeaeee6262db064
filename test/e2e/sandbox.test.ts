/**
 * End-to-end: `consortia sandbox --no-wait` from source brings up three real node processes
 * (the default), has the members ack and open the service, and leaves them running; then a
 * user writes and reads a private record over mTLS and `consortia gov list` sees the opening
 * proposal Accepted. This is the path `npm start` takes, so it is tested through real processes
 * and real HTTPS. The nodes are always killed by their PIDs in `finally`.
 *
 * `consortia sandbox --recover` (`npm start -- --recover`) is tested the same way: a sandbox
 * stopped with SIGINT is recovered (records back on node 0 and on a rejoined node, recoveryCount
 * 1, the previous service set aside), refused while its nodes run, then a second recovery killed
 * halfway is started over by a third, which completes (recoveryCount 2).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { memberIdFromCert } from "../../src/crypto/identity.js";
import { decryptShare } from "../../src/node/recovery/recovery-shares.js";
import { runCli } from "../helpers/cli.js";
import { httpsRequest as https } from "../helpers/https.js";
import { freePortBlock, isAlive, sleep, waitFor } from "../helpers/network.js";

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
    assert.deepEqual({ status: write.status, body: write.body }, { status: 200, body: "true" });
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

const ENTRY = join(import.meta.dirname, "..", "..", "src", "cli", "entry.ts");
const TSX = import.meta.resolve("tsx");

/** The CLI in the background: `consortia sandbox` without --no-wait runs until SIGINT. */
class BackgroundCli {
  readonly child: ChildProcess;
  /** Resolves once the process has exited and its output is read: its exit code or signal. */
  readonly closed: Promise<number | string>;
  private text = "";

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, ["--import", TSX, ENTRY, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.setEncoding("utf8").on("data", (c: string) => (this.text += c));
    this.child.stderr?.setEncoding("utf8").on("data", (c: string) => (this.text += c));
    this.closed = new Promise((resolve) =>
      this.child.once("close", (code, signal) => resolve(signal ?? code ?? -1)),
    );
  }

  get output(): string {
    return this.text;
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (!this.running()) assert.fail(`the CLI exited before printing ${pattern}:\n${this.text}`);
      if (Date.now() > deadline) assert.fail(`no ${pattern} within ${timeoutMs} ms:\n${this.text}`);
      await sleep(100);
    }
  }

  /** Ctrl+C: the CLI stops its nodes and exits 0. */
  async interrupt(): Promise<void> {
    this.child.kill("SIGINT");
    let timer: NodeJS.Timeout | undefined;
    const how = await Promise.race([
      this.closed,
      new Promise<string>((r) => (timer = setTimeout(() => r("still running"), 30_000))),
    ]);
    clearTimeout(timer);
    assert.equal(how, 0, `the CLI did not stop cleanly on SIGINT:\n${this.text}`);
    assert.match(this.text, /SIGINT received: stopping the network/);
  }
}

/** The PIDs in the node.pid files of the workspace's nodes, the set-aside ones included. */
function nodePids(workspace: string): number[] {
  const parents = [
    workspace,
    ...readdirSync(workspace)
      .filter((n) => /^previous_service_\d+$/.test(n))
      .map((n) => join(workspace, n)),
  ];
  const pids: number[] = [];
  for (const parent of parents) {
    for (const name of readdirSync(parent).filter((n) => /^sandbox_\d+$/.test(n))) {
      const file = join(parent, name, "node.pid");
      const pid = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : Number.NaN;
      if (Number.isSafeInteger(pid) && pid > 0) pids.push(pid);
    }
  }
  return pids;
}

/** SIGKILLs every live node of the workspace and waits until none runs (zombies aside). */
async function killNodes(workspace: string): Promise<void> {
  const pids = nodePids(workspace);
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  await waitFor("the workspace's nodes to die", 10_000, async () =>
    pids.some(isAlive) ? undefined : true,
  );
}

test(
  "--recover recovers a stopped sandbox, refuses a running one, restarts an interrupted one",
  {
    timeout: 180_000,
  },
  async (t) => {
    const workspace = mkdtempSync(join(tmpdir(), "consortia-sandbox-recover-"));
    const port = await freePortBlock(3);
    const common = join(workspace, "sandbox_common");
    const args = ["sandbox", "--workspace", workspace, "--port", String(port)];
    const timing = ["--sig-ms-interval", "50", "--election-timeout", "1000"];
    const clis: BackgroundCli[] = [];
    const start = (extra: readonly string[]) => {
      const cli = new BackgroundCli([...args, ...timing, ...extra]);
      clis.push(cli);
      return cli;
    };
    t.after(async () => {
      for (const cli of clis) if (cli.running()) cli.child.kill("SIGKILL");
      await Promise.all(clis.map((cli) => cli.closed));
      await killNodes(workspace);
      rmSync(workspace, { recursive: true, force: true });
    });
    const tls = () => ({
      ca: readFileSync(join(common, "service_cert.pem"), "utf8"),
      cert: readFileSync(join(common, "user0_cert.pem"), "utf8"),
      key: readFileSync(join(common, "user0_privk.pem"), "utf8"),
    });
    const url = (index: number, path: string) => `https://127.0.0.1:${port + index}${path}`;
    const serviceInfo = async () => {
      const reply = await https(url(0, "/gov/service/info?api-version=2024-07-01"), tls(), "GET");
      assert.equal(reply.status, 200, reply.body);
      return JSON.parse(reply.body) as { status: string; recoveryCount: number };
    };
    // A rejoined node answers reads locally, once it has caught up: retried until then.
    const checkRecords = async (index: number) => {
      const read = (kind: string, id: number) =>
        https(url(index, `/app/log/${kind}?id=${id}`), tls(), "GET");
      const [priv, pub] = await waitFor(`the records on node ${index}`, 20_000, async () => {
        const replies = [await read("private", 1), await read("public", 2)];
        return replies.every((r) => r.status === 200) ? replies : undefined;
      });
      assert.deepEqual(JSON.parse(priv?.body ?? ""), { msg: "private before" });
      assert.deepEqual(JSON.parse(pub?.body ?? ""), { msg: "public before" });
    };
    const marker = join(workspace, "recovery_in_progress.json");
    const predecessor = join(common, "predecessor_service_cert.pem");

    // 1. A sandbox takes a private and a public record (committed), then stops on SIGINT.
    const sandbox = start([]);
    await sandbox.waitForOutput(/Press Ctrl\+C to shutdown the network/, 60_000);
    const write = async (kind: string, id: number, msg: string) => {
      const body = JSON.stringify({ id, msg });
      const reply = await https(url(0, `/app/log/${kind}`), tls(), "POST", body);
      assert.equal(reply.status, 200, reply.body);
      return String(reply.headers["x-ms-ccf-transaction-id"]);
    };
    await write("private", 1, "private before");
    const last = await write("public", 2, "public before");
    await waitFor(`${last} committed`, 20_000, async () => {
      const reply = await https(url(0, `/app/tx?transaction_id=${last}`), tls(), "GET");
      return (JSON.parse(reply.body) as { status: string }).status === "Committed"
        ? true
        : undefined;
    });
    const firstCert = readFileSync(join(common, "service_cert.pem"), "utf8");
    const firstPids = nodePids(workspace);
    assert.equal(firstPids.length, 3);
    await sandbox.interrupt();
    assert.ok(!firstPids.some(isAlive), "SIGINT stopped every node");

    // 2. Recovery: the records are back on node 0 and on a rejoined node, under a new identity.
    const recovered = start(["--recover"]);
    await recovered.waitForOutput(/Recovery complete in /, 90_000);
    await recovered.waitForOutput(/Press Ctrl\+C to shutdown the network/, 10_000);
    assert.match(recovered.output, /node 0: public replay/);
    assert.match(recovered.output, /node 0: (\[recovery\] )?private replay/);
    assert.doesNotMatch(recovered.output, /An earlier recovery did not complete/);
    assert.ok(!existsSync(marker), "the marker is removed once the recovery is complete");
    const secondCert = readFileSync(join(common, "service_cert.pem"), "utf8");
    assert.notEqual(secondCert, firstCert);
    assert.equal(readFileSync(predecessor, "utf8"), firstCert);
    const previous1 = join(workspace, "previous_service_1");
    assert.deepEqual(readdirSync(previous1).sort(), ["sandbox_0", "sandbox_1", "sandbox_2"]);
    for (let i = 0; i < 3; i++) {
      assert.ok(existsSync(join(previous1, `sandbox_${i}`, `${i}.ledger`)), `old node ${i}`);
    }
    await checkRecords(0);
    await checkRecords(2);
    const firstInfo = await serviceInfo();
    assert.equal(firstInfo.status, "Open");
    assert.equal(firstInfo.recoveryCount, 1);

    // 3. --recover while the nodes run is refused before anything is moved.
    const refused = runCli([...args, "--recover"]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /is still running: stop the sandbox first/);
    assert.ok(!existsSync(join(workspace, "previous_service_2")));
    assert.ok(!existsSync(marker));
    await recovered.interrupt();

    // 4. A recovery killed (CLI and nodes) once the public ledger is replayed...
    const interrupted = start(["--recover"]);
    await interrupted.waitForOutput(/WaitingForRecoveryShares|replayed the public ledger/, 60_000);
    interrupted.child.kill("SIGKILL");
    await interrupted.closed;
    await killNodes(workspace);
    assert.ok(existsSync(marker), "the marker outlives a killed recovery");
    // ...is started over from the same previous service by the next --recover.
    const restarted = start(["--recover"]);
    await restarted.waitForOutput(/Recovery complete in /, 90_000);
    await restarted.waitForOutput(/Press Ctrl\+C to shutdown the network/, 10_000);
    const previous2 = join(workspace, "previous_service_2");
    assert.ok(
      restarted.output.includes(
        `An earlier recovery did not complete: starting again from ${previous2}`,
      ),
      restarted.output,
    );
    assert.ok(!existsSync(join(workspace, "previous_service_3")));
    assert.ok(!existsSync(marker));
    assert.equal(readFileSync(predecessor, "utf8"), secondCert);
    const info = await serviceInfo();
    assert.equal(info.status, "Open");
    assert.equal(info.recoveryCount, 2);
    await checkRecords(0);
    await checkRecords(2);
    await restarted.interrupt();
  },
);
