/**
 * Drives `consortia console` in Debian's chromium through playwright-core, for the browser test
 * (test/e2e/console.test.ts) and the screenshots (scripts/console-screenshots.ts): start a
 * sandbox and a console from the sources, open a member identity in the page, create a
 * proposal from a template and vote on it, as a member would with the keyboard and mouse.
 * Every process it starts is stopped by its pid in `stop()`.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { isProcessRunning } from "../src/cli/process-state.js";

const ROOT = join(import.meta.dirname, "..");
const ENTRY = join(ROOT, "src", "cli", "entry.ts");
const TSX = import.meta.resolve("tsx");

export interface Running {
  /** The console's address, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  readonly common: string;
  stop(): Promise<void>;
}

async function kill(pid: number): Promise<void> {
  if (!isProcessRunning(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isProcessRunning(pid); i++)
    await new Promise((r) => setTimeout(r, 100));
  if (isProcessRunning(pid)) process.kill(pid, "SIGKILL");
}

/** `consortia sandbox --no-wait` in `workspace`; the pids of its nodes. */
function startSandbox(workspace: string, port: number, nodes: number, extra: string[]): number[] {
  const args = ["sandbox", "--no-wait", "--workspace", workspace, "--port", String(port), ...extra];
  const run = spawnSync(
    process.execPath,
    ["--import", TSX, ENTRY, ...args, "--nodes", String(nodes), "--sig-ms-interval", "50"],
    { encoding: "utf8", timeout: 180_000 },
  );
  const pids = Array.from({ length: nodes }, (_, i) => join(workspace, `sandbox_${i}`, "node.pid"))
    .filter((file) => existsSync(file))
    .map((file) => Number(readFileSync(file, "utf8").trim()));
  if (run.status !== 0) {
    for (const pid of pids) process.kill(pid, "SIGKILL");
    throw new Error(`sandbox failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  return pids;
}

/** `consortia console --workspace W --port 0 --app-dir D`; resolves once it listens. */
function startConsole(workspace: string, appDir: string) {
  const args = ["console", "--workspace", workspace, "--port", "0", "--app-dir", appDir];
  const child = spawn(process.execPath, ["--import", TSX, ENTRY, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise<{ pid: number; url: string }>((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /Console: (http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
      if (match !== null) resolve({ pid: child.pid!, url: match[1]! });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`console exited ${code}: ${output}`)));
  });
}

/** A sandbox of `nodes` nodes and a console serving `appDir` in front of it. */
export async function startSandboxAndConsole(o: {
  workspace: string;
  port: number;
  appDir: string;
  nodes?: number;
  /** More `consortia sandbox` flags, e.g. ["--js-app-bundle", "registry"]. */
  sandboxArgs?: string[];
}): Promise<Running> {
  const pids = startSandbox(o.workspace, o.port, o.nodes ?? 3, o.sandboxArgs ?? []);
  try {
    const console = await startConsole(o.workspace, o.appDir);
    pids.unshift(console.pid);
    return {
      url: console.url,
      common: join(o.workspace, "sandbox_common"),
      stop: async () => {
        for (const pid of pids) await kill(pid);
      },
    };
  } catch (err: unknown) {
    for (const pid of pids) await kill(pid);
    throw err;
  }
}

export function launch(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
}

/** Opens member `name`'s certificate and key (from the workspace) in the identity panel. */
export async function useIdentity(page: Page, common: string, name: string): Promise<void> {
  await page.setInputFiles("#member-cert", join(common, `${name}_cert.pem`));
  await page.setInputFiles("#member-key", join(common, `${name}_privk.pem`));
  await page.getByRole("button", { name: "Use identity" }).click();
  await page.locator("#identity .ok").waitFor();
}

/**
 * Submits the template of `action` from the proposals page, or `body` in its place when given;
 * the new proposal and its tx.
 */
export async function propose(page: Page, action: string, body?: unknown) {
  await page.selectOption("#template", action);
  // The editor is filled with the template once the page has the context it needs.
  const editor = page.locator("#proposal-body");
  for (let i = 0; !(await editor.inputValue()).includes(action); i++) {
    if (i >= 100) throw new Error(`the editor never showed the ${action} template`);
    await new Promise((r) => setTimeout(r, 100));
  }
  if (body !== undefined) await editor.fill(JSON.stringify(body, null, 2));
  const created = page.locator("#create .ok");
  await page.locator("#create [role=status]").evaluate((el) => el.replaceChildren());
  await page.getByRole("button", { name: "Submit proposal" }).click();
  await created.waitFor({ timeout: 30_000 });
  const text = (await created.textContent()) ?? "";
  const match = /Proposal ([0-9a-f]{64}) created \((\d+\.\d+)\)/.exec(text);
  if (match === null) throw new Error(`unexpected outcome: ${text}`);
  return { proposalId: match[1]!, txId: match[2]! };
}

/** Votes for `proposalId` as the opened member; the outcome line ("... now Accepted."). */
export async function voteFor(page: Page, proposalId: string): Promise<string> {
  const outcome = page.locator("#proposal-outcome");
  await outcome.evaluate((el) => el.replaceChildren());
  await page.getByRole("button", { name: `Vote for proposal ${proposalId.slice(0, 8)}` }).click();
  await outcome.locator(".ok, .error").waitFor({ timeout: 30_000 });
  return (await outcome.textContent()) ?? "";
}

/**
 * How wide the page is at phone size (390x844), with every <details> open, when that is wider
 * than the viewport (something does not wrap or scroll in its own box); undefined when it fits.
 * The viewport is 1280x800 again afterwards.
 */
export async function phoneOverflow(page: Page): Promise<number | undefined> {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })");
  const [scroll, client] = (await page.evaluate(
    "[document.documentElement.scrollWidth, document.documentElement.clientWidth]",
  )) as [number, number];
  await page.setViewportSize({ width: 1280, height: 800 });
  return scroll > client ? scroll : undefined;
}
