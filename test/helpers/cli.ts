/** Runs the CLI from source (so tests never see a stale dist/) and captures its output. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export interface CliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ENTRY = join(import.meta.dirname, "..", "..", "src", "cli", "entry.ts");
// Resolved here, so the CLI can run with any working directory.
const TSX = import.meta.resolve("tsx");

export function runCli(args: readonly string[], options: { cwd?: string } = {}): CliRun {
  const result = spawnSync(process.execPath, ["--import", TSX, ENTRY, ...args], {
    cwd: options.cwd ?? process.cwd(),
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
