/**
 * Regenerates the console's screenshots in docs/console/ (README "Web console"):
 *
 *   node --import tsx scripts/console-screenshots.ts
 *
 * Starts a 3-node sandbox with the enclave registry deployed and a console before it (from the
 * sources, on free ports), then in Debian's chromium (scripts/ensure-chromium.mjs): member0
 * proposes a registry chaincode policy in the page and member0 and member1 vote it through; an
 * enclave simulated by `consortia registry simulate-enclave` registers as user0; then each page
 * is captured at 1280x800, and the network, proposals and transaction pages at phone width
 * (390x844). All processes are stopped by their pids at the end.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { findOrInstallChromium } from "./ensure-chromium.mjs";
import { buildConsole } from "./build-console.mjs";
import { launch, propose, startSandboxAndConsole, useIdentity, voteFor } from "./console-driver.js";

const ROOT = join(import.meta.dirname, "..");
const OUT = join(ROOT, "docs", "console");
const PORT = Number(process.env["CONSOLE_SCREENSHOT_PORT"] ?? "27300");
const CHAINCODE = { chaincode_id: "cc1", version: "mrenclave-1", sequence: 1 };

function cli(args: string[]): string {
  const entry = join(ROOT, "src", "cli", "entry.ts");
  const run = spawnSync(process.execPath, ["--import", "tsx", entry, ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  if (run.status !== 0) throw new Error(`consortia ${args[0]} failed: ${run.stderr}`);
  return run.stdout;
}

/** An enclave of the chaincode registered as user0 (the registry's own CLI). */
function registerEnclave(workspace: string): void {
  const dir = join(workspace, "enclave1");
  cli([
    ...["registry", "simulate-enclave", "--chaincode-id", CHAINCODE.chaincode_id],
    ...["--version", CHAINCODE.version, "--peer-endpoint", "peer0.org1:7051", "--out", dir],
  ]);
  cli([
    ...["registry", "register", "--chaincode-id", CHAINCODE.chaincode_id, "--wait"],
    ...["--workspace", workspace, "--node", `https://127.0.0.1:${PORT}`],
    ...["--attested-data", join(dir, "attested_data.json")],
    ...["--evidence", join(dir, "evidence.json")],
  ]);
}

async function shoot(page: Page, name: string, ready: string): Promise<void> {
  await page.locator(ready).first().waitFor({ timeout: 60_000 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(OUT, `${name}.png`) });
  process.stdout.write(`docs/console/${name}.png\n`);
}

async function main(): Promise<void> {
  const chromium = findOrInstallChromium();
  if (chromium.path === undefined) throw new Error(chromium.reason);
  const dir = mkdtempSync(join(tmpdir(), "consortia-screenshots-"));
  const workspace = join(dir, "ws");
  const appDir = join(dir, "app");
  await buildConsole(appDir);
  mkdirSync(OUT, { recursive: true });
  const running = await startSandboxAndConsole({
    workspace,
    port: PORT,
    appDir,
    sandboxArgs: ["--js-app-bundle", "registry"],
  });
  const browser = await launch(chromium.path);
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const url = running.url;
    await page.goto(`${url}/#/proposals`);
    await useIdentity(page, running.common, "member0");
    const policy = { ...CHAINCODE, platforms: ["Insecure_Virtual"] };
    const body = { actions: [{ name: "set_registry_chaincode", args: policy }] };
    const { proposalId, txId } = await propose(page, "set_registry_chaincode", body);
    await voteFor(page, proposalId);
    await useIdentity(page, running.common, "member1");
    await voteFor(page, proposalId);
    registerEnclave(workspace);
    await page.goto(`${url}/#/network`);
    await shoot(page, "network", 'table[aria-label="Nodes"] tbody tr:nth-child(3) .badge.good');
    await page.goto(`${url}/#/service`);
    await shoot(page, "service", 'table[aria-label="Members"]');
    await page.goto(`${url}/#/proposals`);
    await shoot(page, "proposals", 'table[aria-label="Proposals"]');
    await page.goto(`${url}/#/ledger?seqno=${txId.split(".")[1]}`);
    await shoot(page, "ledger", "article.entry");
    await page.goto(`${url}/#/tx?id=${txId}`);
    await shoot(page, "transaction", "#receipt-cose-verified");
    await page.goto(`${url}/#/registry?chaincode=${CHAINCODE.chaincode_id}`);
    await page.locator('table[aria-label="Enclaves"] button').first().click();
    await shoot(page, "registry", "ul.checks li:nth-child(4)");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/#/network`);
    await shoot(page, "network-phone", 'table[aria-label="Nodes"] tbody tr:nth-child(3)');
    await page.goto(`${url}/#/proposals`);
    await shoot(page, "proposals-phone", 'table[aria-label="Proposals"]');
    await page.goto(`${url}/#/tx?id=${txId}`);
    await shoot(page, "transaction-phone", "#receipt-cose-verified");
  } finally {
    await browser.close();
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
