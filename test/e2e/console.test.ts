/**
 * End-to-end, in a real browser: `consortia console` in front of a real 3-node sandbox, driven
 * in Debian's chromium by playwright-core (scripts/console-driver.ts). The browser sees the 3
 * nodes and one primary on the network page and the 3 members on the service page; member0
 * creates a proposal from a template, member0 and member1 vote for it with their own keys
 * opened in the page (signed by WebCrypto there) and the page shows it Accepted; the proposal's
 * transaction gets its JSON and COSE receipts verified in the browser; the ledger explorer shows
 * that seqno with its governance writes, and signature transactions. With the enclave registry
 * deployed, a chaincode policy typed in the proposal editor is voted through, an enclave
 * registers (the registry's CLI), and the registry page verifies it in the browser. Each page,
 * with that content and every <details> open, fits a phone's width (390 px): long hex digests,
 * ids, PEM and JSON wrap or scroll in their own box.
 *
 * The oracle is the network itself, read over HTTPS outside the browser (the proposal's state
 * from /gov), and the ledger files read by `consortia ledger show`. Chromium is installed with
 * apt-get by scripts/ensure-chromium.mjs when missing; when it cannot be, the test is skipped
 * with the reason. The console app is built afresh from console/ for this test.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { findOrInstallChromium } from "../../scripts/ensure-chromium.mjs";
import { buildConsole } from "../../scripts/build-console.mjs";
import {
  launch,
  phoneOverflow,
  propose,
  startSandboxAndConsole,
  useIdentity,
  voteFor,
  type Running,
} from "../../scripts/console-driver.js";
import { freePortBlock } from "../helpers/network.js";
import { httpsRequest } from "../helpers/https.js";
import { runCli } from "../helpers/cli.js";

test(
  "a member sees the network, votes proposals through, checks receipts, the ledger and an enclave",
  { timeout: 400_000 },
  async (t) => {
    const chromium = findOrInstallChromium();
    if (chromium.path === undefined) {
      t.skip(`no chromium: ${chromium.reason}`);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "consortia-console-"));
    let running: Running | undefined;
    const browser = await launch(chromium.path);
    try {
      const appDir = join(dir, "app");
      await buildConsole(appDir);
      const port = await freePortBlock(3);
      const workspace = join(dir, "ws");
      running = await startSandboxAndConsole({
        workspace,
        port,
        appDir,
        sandboxArgs: ["--js-app-bundle", "registry"],
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      // Each page's width at phone size (390 px), with its content, when wider than the phone.
      const tooWide: Record<string, number> = {};
      const checkPhoneWidth = async (name: string) => {
        const width = await phoneOverflow(page);
        if (width !== undefined) tooWide[name] = width;
      };

      // Network: three nodes, each answering, one of them the leader.
      await page.goto(`${running.url}/#/network`);
      const rows = page.locator('table[aria-label="Nodes"] tbody tr');
      await rows.nth(2).waitFor({ timeout: 30_000 });
      assert.equal(await rows.count(), 3);
      await page.getByText("ready").nth(2).waitFor();
      assert.equal(
        await page.locator('table[aria-label="Nodes"] .badge', { hasText: "Leader" }).count(),
        1,
      );

      // Keyboard: the first Tab reaches the skip link, the next the first page link; the page
      // heading has focus after a route change.
      await page.keyboard.press("Tab");
      assert.equal(await page.locator(":focus").textContent(), "Skip to content");
      await page.keyboard.press("Tab");
      assert.equal(await page.locator(":focus").getAttribute("href"), "#/network");
      await checkPhoneWidth("network");

      // Service: the sandbox's three members, all Active.
      await page.goto(`${running.url}/#/service`);
      assert.equal(await page.locator(":focus").textContent(), "Service");
      const members = page.locator('table[aria-label="Members"] tbody tr');
      await members.nth(2).waitFor();
      assert.equal(await members.filter({ hasText: "Active" }).count(), 3);
      await checkPhoneWidth("service");

      // Proposals: member0 proposes and votes, member1 votes: Accepted (3 members, majority 2).
      await page.goto(`${running.url}/#/proposals`);
      await useIdentity(page, running.common, "member0");
      const { proposalId, txId } = await propose(page, "set_member_data");
      assert.match(await voteFor(page, proposalId), /now Open/);
      await useIdentity(page, running.common, "member1");
      assert.match(await voteFor(page, proposalId), /now Accepted/);
      const row = page.locator('table[aria-label="Proposals"] tbody tr', {
        hasText: proposalId.slice(0, 12),
      });
      await row.getByText("Accepted").waitFor();
      await checkPhoneWidth("proposals");
      const ca = readFileSync(join(running.common, "service_cert.pem"), "utf8");
      const url = `https://127.0.0.1:${port}/gov/members/proposals/${proposalId}?api-version=2024-07-01`;
      const state = JSON.parse((await httpsRequest(url, { ca }, "GET")).body) as {
        proposalState: string;
      };
      assert.equal(state.proposalState, "Accepted", "the network agrees");

      // Transaction: the proposal's receipts, verified in the browser.
      await page.goto(`${running.url}/#/tx?id=${txId}`);
      await page.locator("#receipt-json-verified").waitFor({ timeout: 60_000 });
      await page.locator("#receipt-cose-verified").waitFor();
      assert.equal(await page.locator("#receipt .error").count(), 0);
      await checkPhoneWidth("transaction");

      // Ledger: the proposal's seqno, with its write to the proposals table; signatures.
      const seqno = Number(txId.split(".")[1]);
      await page.goto(`${running.url}/#/ledger?seqno=${seqno}`);
      const entry = page.locator(`article[data-seqno="${seqno}"]`);
      await entry.waitFor();
      assert.ok((await entry.textContent())?.includes("public:ccf.gov.proposals"));
      await checkPhoneWidth("ledger");
      const shown = runCli([
        "ledger",
        "show",
        "--dir",
        join(workspace, "sandbox_0", "0.ledger"),
        "--seqno",
        String(seqno),
        "--json",
      ]);
      const record = JSON.parse(shown.stdout) as { view: number };
      assert.equal(`${record.view}.${seqno}`, txId, "the page's seqno is the ledger's");
      await page.goto(`${running.url}/#/ledger?seqno=1&signatures=true`);
      await page.locator("article.entry").first().waitFor();
      const signatures = page.locator("article.entry");
      assert.equal(
        await signatures.count(),
        await signatures.filter({ hasText: "Signed by node" }).count(),
      );
      await checkPhoneWidth("ledger signatures");

      // Registry: a chaincode policy typed in the editor and voted through, an enclave registered
      // by the registry's CLI as user0; the page verifies it, its receipt included.
      await page.goto(`${running.url}/#/proposals`);
      const policy = {
        chaincode_id: "cc1",
        version: "m-1",
        sequence: 1,
        platforms: ["Insecure_Virtual"],
      };
      const body = { actions: [{ name: "set_registry_chaincode", args: policy }] };
      const registry = await propose(page, "set_registry_chaincode", body);
      await voteFor(page, registry.proposalId);
      await useIdentity(page, running.common, "member0");
      assert.match(await voteFor(page, registry.proposalId), /now Accepted/);
      const enclave = join(dir, "enclave");
      const simulate = [
        "registry",
        "simulate-enclave",
        "--chaincode-id",
        "cc1",
        "--version",
        "m-1",
      ];
      assert.equal(
        runCli([...simulate, "--peer-endpoint", "peer0:7051", "--out", enclave]).status,
        0,
      );
      const registered = runCli([
        ...["registry", "register", "--chaincode-id", "cc1", "--wait", "--workspace", workspace],
        ...[
          "--node",
          `https://127.0.0.1:${port}`,
          "--attested-data",
          join(enclave, "attested_data.json"),
        ],
        ...["--evidence", join(enclave, "evidence.json")],
      ]);
      assert.equal(registered.status, 0, registered.stderr);
      await page.goto(`${running.url}/#/registry?chaincode=cc1`);
      await page.locator('table[aria-label="Enclaves"] button').first().click();
      const checks = page.locator("ul.checks li");
      await checks.nth(3).waitFor({ timeout: 60_000 });
      assert.equal(await page.locator("ul.checks li.error").count(), 0);
      assert.equal(await page.locator("ul.checks li.ok").count(), 4);
      await checkPhoneWidth("registry");
      assert.deepEqual(errors, [], "no script error in the page");
      assert.deepEqual(tooWide, {}, "every page fits a phone's width (390 px)");
    } finally {
      await browser.close();
      await running?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
