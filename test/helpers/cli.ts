/** Runs the CLI from source (so tests never see a stale dist/) and captures its output. */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";

export interface CliRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ENTRY = join(import.meta.dirname, "..", "..", "src", "cli", "entry.ts");
// Resolved here, so the CLI can run with any working directory.
const TSX = import.meta.resolve("tsx");

/** `node --import tsx src/cli/entry.ts`: the argv prefix that runs the CLI from source. */
export const CLI_ARGV: readonly string[] = ["--import", TSX, ENTRY];

export interface CliOptions {
  readonly cwd?: string;
  /** The whole environment of the CLI (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
}

export function runCli(args: readonly string[], options: CliOptions = {}): CliRun {
  const result = spawnSync(process.execPath, ["--import", TSX, ENTRY, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: options.env ?? process.env,
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** runCli without blocking the event loop (servers in this process keep answering meanwhile). */
export function runCliAsync(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", TSX, ENTRY, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}
