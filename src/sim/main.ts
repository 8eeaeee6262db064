/**
 * CLI of the deterministic consensus simulation:
 *   npm run sim -- --seed S --steps N [--nodes 5] [--verbose]     (or --seed=S, ...)
 * Runs one simulation, prints a summary; on failure prints the violation, the seed and the exact
 * replay command, and exits 1. Usage errors exit 2.
 */
import { InvariantViolation } from "./invariants.js";
import { replayCommand, runSimulation, type SimStats } from "./simulation.js";

interface Args {
  seed: number;
  steps: number;
  nodes: number;
  verbose: boolean;
}

function usage(message: string): never {
  console.error(`${message}\nusage: npm run sim -- --seed S --steps N [--nodes 5] [--verbose]`);
  process.exit(2);
}

function intArg(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (text === undefined || !Number.isSafeInteger(n) || n < min) {
    usage(`${name} needs an integer >= ${min}, got ${text ?? "nothing"}`);
  }
  return n;
}

function parseArgs(input: readonly string[]): Args {
  const args: Args = { seed: 1, steps: 5000, nodes: 5, verbose: false };
  // "--seed=7" is "--seed 7".
  const argv = input.flatMap((a) => (/^--\w+=/.test(a) ? a.split(/=(.*)/s, 2) : [a]));
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--verbose") args.verbose = true;
    else if (flag === "--seed") args.seed = intArg(flag, argv[++i], Number.MIN_SAFE_INTEGER);
    else if (flag === "--steps") args.steps = intArg(flag, argv[++i], 0);
    else if (flag === "--nodes") args.nodes = intArg(flag, argv[++i], 3);
    else usage(`unknown argument ${flag}`);
  }
  return args;
}

function summary(stats: SimStats, elapsedMs: number): string {
  const rate = Math.round((stats.steps + stats.livenessSteps) / Math.max(elapsedMs / 1000, 1e-3));
  return [
    `steps              ${stats.steps} (+${stats.livenessSteps} liveness)`,
    `simulated time     ${stats.simulatedMs} ms`,
    `highest view       ${stats.maxView}`,
    `leaderships        ${stats.leaderships}`,
    `committed seqno    ${stats.maxCommit}`,
    `client writes      ${stats.clientWrites}`,
    `messages           ${stats.messagesSent} sent, ${stats.messagesDelivered} delivered, ` +
      `${stats.messagesDropped} dropped, ${stats.messagesDuplicated} duplicated`,
    `crashes            ${stats.crashes} (${stats.tornSyncs} torn syncs), ` +
      `${stats.restarts} restarts`,
    `partitions         ${stats.partitions}`,
    `reconfigurations   ${stats.reconfigurations}`,
    `retired leaders    ${stats.retiredLeaderships} (removal committed only on a crashed leader)`,
    `checks             ${stats.checks}`,
    `wall time          ${Math.round(elapsedMs)} ms (${rate} steps/s)`,
  ].join("\n");
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  try {
    const stats = runSimulation({
      seed: args.seed,
      steps: args.steps,
      nodes: args.nodes,
      ...(args.verbose ? { log: (line: string) => console.log(line) } : {}),
    });
    console.log(`seed ${args.seed}: OK`);
    console.log(summary(stats, performance.now() - started));
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    console.error(`FAILED seed ${args.seed}\n${error.message}`);
    console.error(`replay: ${replayCommand(args.seed, args.steps, args.nodes)} --verbose`);
    process.exit(1);
  }
}

main();
