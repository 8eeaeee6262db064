/**
 * One seed of a long simulation campaign (long.ts), as a plain result: what the CLI prints and
 * what a worker thread posts back. Runs in the main thread or in a worker (long-worker.ts).
 */
import { InvariantViolation } from "./invariants.js";
import type { SimMutation } from "./mutations.js";
import { replayCommand, runSimulation, type SimOptions } from "./simulation.js";

export interface SeedJob {
  readonly seed: number;
  readonly steps: number;
  readonly nodes: number;
  readonly mutation?: SimMutation;
}

export type SeedResult =
  | {
      readonly kind: "ok";
      readonly seed: number;
      readonly steps: number;
      readonly livenessSteps: number;
      readonly maxCommit: number;
      readonly maxView: number;
      readonly crashes: number;
      readonly elapsedMs: number;
    }
  | {
      readonly kind: "violation";
      readonly seed: number;
      readonly invariant: string;
      readonly message: string;
      readonly replay: string;
      readonly elapsedMs: number;
    };

export function optionsOf(job: SeedJob): SimOptions {
  const { seed, steps, nodes, mutation } = job;
  return mutation === undefined ? { seed, steps, nodes } : { seed, steps, nodes, mutation };
}

/** Runs one seed; a violation (or a crash, which runSimulation reports as one) is a result. */
export function runSeed(job: SeedJob): SeedResult {
  const started = performance.now();
  try {
    const stats = runSimulation(optionsOf(job));
    return {
      kind: "ok",
      seed: job.seed,
      steps: stats.steps,
      livenessSteps: stats.livenessSteps,
      maxCommit: stats.maxCommit,
      maxView: stats.maxView,
      crashes: stats.crashes,
      elapsedMs: performance.now() - started,
    };
  } catch (error) {
    if (!(error instanceof InvariantViolation)) throw error;
    return {
      kind: "violation",
      seed: job.seed,
      invariant: error.invariant,
      // runSimulation appends the replay line; the CLI prints its own, with --verbose.
      message: error.message.replace(/\nreplay: .*$/s, ""),
      replay: `${replayCommand(optionsOf(job))} --verbose`,
      elapsedMs: performance.now() - started,
    };
  }
}
