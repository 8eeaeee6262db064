/**
 * The operator's guide (docs/operating.md) as the multi-host scenario runs it. Each shell block
 * the guide marks with `<!-- multi-host: HOST -->` runs as written, with bash, on that host
 * (inside its network namespace) and in that host's own directory, so a command that drifts
 * from the CLI, a flag renamed or a file the guide forgot to copy fails the test.
 *
 * `consortia` on the blocks' PATH is the CLI from source. One thing differs from a terminal:
 * `consortia node --config FILE`, which an operator leaves running in the foreground (or under
 * systemd), starts in the background, its output in FILE's directory (`out`) and its process
 * id in `shim.pid` there, so the block goes on.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI_ARGV } from "../../helpers/cli.js";
import type { Hosts } from "../../helpers/netns.js";

export const GUIDE_FILE = join(import.meta.dirname, "..", "..", "..", "docs", "operating.md");

/** A marked shell block: the host it runs on, its source, and its first line in the guide. */
export interface GuideBlock {
  readonly host: string;
  readonly code: string;
  readonly line: number;
}

const MARKER = /^<!-- multi-host: ([a-z0-9]+) -->$/;

/** The guide's marked blocks, in order; a marker not followed by a sh block is an error. */
export function guideBlocks(markdown: string): GuideBlock[] {
  const lines = markdown.split("\n");
  const blocks: GuideBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i]!);
    if (marker === null) continue;
    const end = lines.indexOf("```", i + 2);
    if (lines[i + 1] !== "```sh" || end < 0) {
      throw new Error(
        `operating.md:${i + 1}: a multi-host marker must come right before a sh block`,
      );
    }
    blocks.push({ host: marker[1]!, code: lines.slice(i + 2, end).join("\n"), line: i + 3 });
    i = end;
  }
  return blocks;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Writes the `consortia` the blocks run into `dir`; returns `dir`, for PATH. */
export function writeShim(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const cli = [process.execPath, ...CLI_ARGV].map(quote).join(" ");
  const shim = [
    "#!/bin/bash",
    "# consortia for the guide's blocks: the CLI from source; `consortia node --config F` runs",
    "# in the background, its output in F's directory.",
    'if [ "$#" -eq 3 ] && [ "$1" = node ] && [ "$2" = --config ]; then',
    '  dir=$(dirname "$3")',
    `  nohup ${cli} "$@" > "$dir/out" 2>&1 < /dev/null &`,
    '  echo $! > "$dir/shim.pid"',
    "  exit 0",
    "fi",
    `exec ${cli} "$@"`,
    "",
  ].join("\n");
  const file = join(dir, "consortia");
  writeFileSync(file, shim);
  chmodSync(file, 0o755);
  return dir;
}

/** Output of a block that ran to success. */
export interface BlockRun {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `block` on its host with `bash -euo pipefail`, in `cwd`, with `bin` first on PATH;
 * rejects with the block's place in the guide and its output if it fails or runs too long.
 */
export function runBlock(
  net: Hosts,
  block: GuideBlock,
  cwd: string,
  bin: string,
  timeoutMs = 120_000,
): Promise<BlockRun> {
  const env = { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` };
  const child = net.spawn(block.host, ["bash", "-euo", "pipefail", "-c", block.code], {
    cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: timeoutMs,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on("close", (code, signal) => {
      if (code === 0) return resolve({ stdout, stderr });
      const how = signal === null ? `exit ${code}` : `signal ${signal}`;
      reject(
        new Error(
          `operating.md:${block.line} on ${block.host} failed (${how})\n` +
            `--- stdout\n${stdout}--- stderr\n${stderr}`,
        ),
      );
    });
  });
}

/** The process ids of the nodes the shim started under `root` (each `shim.pid` found). */
export function shimPids(nodeDirs: readonly string[]): number[] {
  return nodeDirs
    .map((dir) => join(dir, "shim.pid"))
    .filter((file) => existsSync(file))
    .map((file) => Number(readFileSync(file, "utf8").trim()));
}

/** Copies `files` from directory `from` to directory `to`, as an operator copies them. */
export function copyFiles(from: string, to: string, files: readonly string[]): void {
  mkdirSync(to, { recursive: true });
  for (const file of files) writeFileSync(join(to, file), readFileSync(join(from, file)));
}
