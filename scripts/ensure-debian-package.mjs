// Installs a Debian package a test needs when it is missing, so a fresh machine needs nothing done
// by hand: the browser tests' chromium (ensure-chromium.mjs), the multi-host test's curl. Returns
// { path } of the first candidate executable found, installing `pkg` with apt-get if none is, or
// { reason } why there is none (not root, no apt-get, no network), for the test to skip with.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** apt-get waits this long for a lock another install holds (engineers share the machine). */
const LOCK_TIMEOUT_S = 600;

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

/** { path } of one of `candidates` (absolute paths), installing `pkg` first if none exists. */
export function findOrInstall(pkg, candidates) {
  const found = () => candidates.find((path) => existsSync(path)) ?? null;
  const existing = found();
  if (existing !== null) return { path: existing };
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { reason: `${pkg} is not installed and installing it needs root (apt-get)` };
  }
  try {
    execFileSync("apt-get", ["--version"], { stdio: "ignore" });
  } catch {
    return { reason: `${pkg} is not installed and this machine has no apt-get` };
  }
  const failure = aptGet(["update"]) ?? aptGet(["install", "--no-install-recommends", pkg]);
  if (failure !== null) return { reason: `cannot install ${pkg}: ${failure}` };
  const installed = found();
  return installed === null
    ? { reason: `apt-get installed ${pkg} but no executable was found` }
    : { path: installed };
}
