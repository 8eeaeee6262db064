/**
 * Helpers of the disk fault e2e tests (test/e2e/disk-faults*.test.ts; SECURITY.md, "Disk
 * faults"): tmpfs mounts (root), a recovered service opened by member 0's share, and writers
 * that post records until a node stops, keeping those /app/tx reported Committed.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { submitMemberShare } from "../../src/cli/commands/recovery.js";
import { Network, waitFor, type NetNode } from "./network.js";

/** What the CLI exits with after a storage fault (src/cli/commands/node.ts). */
export const STORAGE_FAULT_EXIT_CODE = 74;
export const MESSAGE_BYTES = 32 * 1024;
export const WRITERS = 4;

/** Mounts a tmpfs of `sizeMiB` (with `ro` when asked) at a new directory; null if impossible. */
export function mountTmpfs(
  sizeMiB: number,
  readOnly = false,
):
  | { dir: string; error: null }
  | {
      dir: null;
      error: string;
    } {
  const dir = mkdtempSync(join(tmpdir(), "consortia-tmpfs-"));
  const options = `size=${sizeMiB}m${readOnly ? ",ro" : ""}`;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "pipe" });
    return { dir, error: null };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { dir: null, error: e instanceof Error ? e.message : String(e) };
  }
}

export function unmount(dir: string): void {
  execFileSync("umount", ["-l", dir], { stdio: "pipe" });
  rmSync(dir, { recursive: true, force: true });
}

export async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Node 0's Start command, as the sandbox wrote it. */
export function startCommand(net: Network): Record<string, unknown> {
  const config = JSON.parse(readFileSync(join(net.dirOf(0), "config.json"), "utf8")) as {
    command: Record<string, unknown>;
  };
  return config.command;
}

export function assertNoStack(text: string): void {
  assert.doesNotMatch(text, /^\s+at /m, `a stack trace was printed:\n${text}`);
}

/** The members open a recovered service (threshold 1: member 0's share); waits for Open. */
export async function openRecovered(
  net: Network,
  node: NetNode,
  previousPem: string,
): Promise<void> {
  const gov = net.gov(node);
  try {
    const proposal = await net.decide(gov, [
      {
        name: "transition_service_to_open",
        args: { previous_service_identity: previousPem, next_service_identity: node.ca },
      },
    ]);
    assert.equal(proposal.proposalState, "Accepted", JSON.stringify(proposal));
    const common = join(net.workspace, "sandbox_common");
    const key = readFileSync(join(common, "member0_enc_privk.pem"), "utf8");
    await submitMemberShare(gov, net.members[0]!, key);
    await waitFor("the recovered service Open", 30_000, async () =>
      (await net.serviceInfo(node)).status === "Open" ? true : undefined,
    );
  } finally {
    gov.close();
  }
}

/** Recovers the service from `ledgerDir` and opens it; answers the node and its process. */
export async function recoverOnto(net: Network, ledgerDir: string, previousCertFile: string) {
  const recovering = net.spawnRecover({ ledgerDir, previousServiceCertFile: previousCertFile });
  const node = await recovering.ready();
  await openRecovered(net, node, readFileSync(previousCertFile, "utf8"));
  return { node, child: recovering.child, serviceCertFile: recovering.serviceCertFile };
}

/**
 * Writers post records until the node stops answering; each waits for its write's status and
 * keeps the ids /app/tx reported Committed (with their messages).
 */
export async function writeUntilDown(
  net: Network,
  node: NetNode,
  child: ChildProcess,
): Promise<Map<number, string>> {
  const committed = new Map<number, string>();
  let next = 1000;
  const deadline = Date.now() + 60_000;
  const writer = async () => {
    while (child.exitCode === null && Date.now() < deadline) {
      const id = next++;
      const msg = `${id}:`.padEnd(MESSAGE_BYTES, String.fromCharCode(97 + (id % 26)));
      const reply = await net.call(node, "POST", "/app/log/private", { id, msg }).catch(() => null);
      if (reply?.status !== 200) continue;
      const txId = String(reply.headers["x-ms-ccf-transaction-id"]);
      for (let i = 0; i < 100 && child.exitCode === null; i++) {
        const status = await net.status(node, txId).catch(() => null);
        if (status === "Committed") {
          committed.set(id, msg);
          break;
        }
        if (status === null || status === "Invalid") break;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  return committed;
}
