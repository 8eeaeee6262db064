// Finds Debian's chromium for the browser tests (test/e2e/console.test.ts) and the console's
// screenshots (scripts/console-screenshots.ts), installing it with apt-get when it is missing, so
// a fresh machine needs nothing done by hand. Prints the executable's path on stdout and exits 0;
// when chromium is missing and cannot be installed (not root, no apt-get, no network) it prints
// one line saying why on stderr and exits 1, and the tests skip with that message.
//
// Run: `node scripts/ensure-chromium.mjs` (or import findOrInstallChromium).
import { pathToFileURL } from "node:url";
import { findOrInstall } from "./ensure-debian-package.mjs";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** { path } of a chromium executable, or { reason } why there is none. */
export function findOrInstallChromium() {
  return findOrInstall("chromium", CANDIDATES);
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
