/**
 * CLI of the deterministic consensus simulation:
 *   npm run sim -- --seed S --steps N [--nodes 5] [--mutation M] [--verbose]  (or --seed=S, ...)
 * Runs one simulation, prints a summary; on failure prints the violation, the seed and the exact
 * replay command, and exits 1. Usage errors exit 2. `--mutation` runs a deliberately broken
 * consensus (mutations.ts). Many seeds or long runs: long.ts (`npm run sim:long`).
 */
import { intArg, mutationArg, splitArgs, usageError } from "./cli-args.js";
import { InvariantViolation } from "./invariants.js";
import type { SimMutation } from "./mutations.js";
import { replayCommand, runSimulation, type SimOptions, type SimStats } from "./simulation.js";

interface Args {
  seed: number;
  steps: number;
  nodes: number;
  mutation: SimMutation | undefined;
  verbose: boolean;
}

const USAGE = "npm run sim -- --seed S --steps N [--nodes 5] [--mutation M] [--verbose]";

function parseArgs(input: readonly string[]): Args {
  const args: Args = { seed: 1, steps: 5000, nodes: 5, mutation: undefined, verbose: false };
  const argv = splitArgs(input);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === "--verbose") args.verbose = true;
    else if (flag === "--seed") args.seed = intArg(flag, argv[++i], Number.MIN_SAFE_INTEGER, USAGE);
    else if (flag === "--steps") args.steps = intArg(flag, argv[++i], 0, USAGE);
    else if (flag === "--nodes") args.nodes = intArg(flag, argv[++i], 3, USAGE);
    else if (flag === "--mutation") args.mutation = mutationArg(argv[++i], USAGE);
    else usageError(`unknown argument ${flag}`, USAGE);
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
    `crashes            ${stats.crashes} (${stats.tornSyncs} torn syncs, ` +
      `${stats.bounces} bounces), ${stats.restarts} restarts`,
    `partitions         ${stats.partitions}`,
    `reconfigurations   ${stats.reconfigurations}`,
    `retired leaders    ${stats.retiredLeaderships} (removal committed only on a crashed leader)`,
    `checks             ${stats.checks}`,
    `wall time          ${Math.round(elapsedMs)} ms (${rate} steps/s)`,
  ].join("\n");
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const options: SimOptions = {
    seed: args.seed,
    steps: args.steps,
    nodes: args.nodes,
    ...(args.mutation !== undefined ? { mutation: args.mutation } : {}),
    ...(args.verbose ? { log: (line: string) => console.log(line) } : {}),
  };
  const started = performance.now();
  try {
    const stats = runSimulation(options);
    console.log(`seed ${args.seed}: OK`);
    console.log(summary(stats, performance.now() - started));
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    console.error(`FAILED seed ${args.seed}\n${error.message}`);
    console.error(`replay: ${replayCommand(options)} --verbose`);
    process.exit(1);
  }
}

main();
