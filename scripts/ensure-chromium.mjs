// Finds Debian's chromium for the browser tests (test/e2e/console.test.ts) and the console's
// screenshots (scripts/console-screenshots.ts), installing it with apt-get when it is missing, so
// a fresh machine needs nothing done by hand. Prints the executable's path on stdout and exits 0;
// when chromium is missing and cannot be installed (not root, no apt-get, no network) it prints
// one line saying why on stderr and exits 1, and the tests skip with that message.
//
// Run: `node scripts/ensure-chromium.mjs` (or import findOrInstallChromium).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
/** apt-get waits this long for a lock another install holds (engineers share the machine). */
const LOCK_TIMEOUT_S = 600;

function found() {
  return CANDIDATES.find((path) => existsSync(path)) ?? null;
}

function aptGet(args) {
  const result = spawnSync(
    "apt-get",
    ["-o", `DPkg::Lock::Timeout=${LOCK_TIMEOUT_S}`, "-y", "-q", ...args],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    },
  );
  if (result.error !== undefined) return `apt-get ${args[0]}: ${result.error.message}`;
  if (result.status !== 0) {
    const last = result.stderr.toString().trim().split("\n").at(-1) ?? "";
    return `apt-get ${args[0]} exited ${result.status}: ${last}`;
  }
  return null;
}

/** { path } of a chromium executable, or { reason } why there is none. */
export function findOrInstallChromium() {
  const existing = found();
  if (existing !== null) return { path: existing };
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { reason: "chromium is not installed and installing it needs root (apt-get)" };
  }
  try {
    execFileSync("apt-get", ["--version"], { stdio: "ignore" });
  } catch {
    return { reason: "chromium is not installed and this machine has no apt-get" };
  }
  const failure = aptGet(["update"]) ?? aptGet(["install", "--no-install-recommends", "chromium"]);
  if (failure !== null) return { reason: `cannot install chromium: ${failure}` };
  const installed = found();
  return installed === null
    ? { reason: "apt-get installed chromium but no executable was found" }
    : { path: installed };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = findOrInstallChromium();
  if (result.path !== undefined) {
    process.stdout.write(`${result.path}\n`);
  } else {
    process.stderr.write(`ensure-chromium: ${result.reason}\n`);
    process.exitCode = 1;
  }
}
