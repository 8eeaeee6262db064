// The CLI's progress report (src/cli/progress.ts) off a terminal: one line per tenth of the
// work on stderr, each said once, nothing when disabled.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createProgress } from "../../../src/cli/progress.js";

function captureStderr(run: () => void): string {
  const original = process.stderr.write.bind(process.stderr);
  let captured = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    captured += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    run();
  } finally {
    process.stderr.write = original;
  }
  return captured;
}

test("off a terminal, progress is a line per tenth, each said once", () => {
  const mib = 2 ** 20;
  const out = captureStderr(() => {
    const progress = createProgress({ enabled: true, totalBytes: 100 * mib });
    progress.update(25 * mib);
    progress.update(25 * mib);
    progress.update(100 * mib);
    progress.stop();
  });
  const lines = out.trim().split("\n");
  assert.deepEqual(lines.slice(0, 3), [
    "verifying: 10% (25 MiB)",
    "verifying: 20% (25 MiB)",
    "verifying: 30% (100 MiB)",
  ]);
  assert.equal(lines.length, 10);
  assert.equal(lines[9], "verifying: 100% (100 MiB)");
});

test("a disabled progress says nothing", () => {
  const out = captureStderr(() => {
    const progress = createProgress({ enabled: false, totalBytes: 100 });
    progress.update(100);
    progress.stop();
  });
  assert.equal(out, "");
});
