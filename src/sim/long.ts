/**
 * Long simulation campaigns (issue #15 item 5):
 *   npm run sim:long -- --minutes N [--from S] [--steps 100000] [--nodes 5] [--jobs 1]
 *   npm run sim:long -- --seeds A..B [--steps 100000] [--nodes 5] [--jobs 1]
 * Runs seed after seed (A..B, or from S, or from a seed taken from the clock, until N minutes
 * have passed; with both, whichever ends first; a seed under way when time is up finishes),
 * printing a progress line per seed. A violation prints the seed, the invariant, the message
 * and the exact replay command; the campaign goes on, and exits 1 at the end if any seed
 * failed (0 otherwise; usage errors exit 2). `--jobs N` runs N seeds at once in worker threads;
 * `--mutation M` runs deliberately broken consensus (mutations.ts), so it should fail.
 */
import { startWorker } from "../platform/workers.js";
import { intArg, mutationArg, splitArgs, usageError } from "./cli-args.js";
import type { SimMutation } from "./mutations.js";
import { runSeed, type SeedJob, type SeedResult } from "./long-run.js";

const USAGE =
  "npm run sim:long -- (--minutes N [--from S] | --seeds A..B) [--steps 100000] [--nodes 5] " +
  "[--jobs 1] [--mutation M]";

const JOBS_MAX = 64;

interface LongArgs {
  minutes: number | null;
  seeds: { from: number; to: number } | null;
  from: number | null;
  steps: number;
  nodes: number;
  jobs: number;
  mutation: SimMutation | undefined;
}

function minutesArg(text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || !Number.isFinite(n) || n <= 0) {
    usageError(`--minutes needs a number > 0, got ${text ?? "nothing"}`, USAGE);
  }
  return n;
}

function seedsArg(text: string | undefined): { from: number; to: number } {
  const m = /^(-?\d+)\.\.(-?\d+)$/.exec(text ?? "");
  if (m === null) usageError(`--seeds needs A..B, got ${text ?? "nothing"}`, USAGE);
  const from = intArg("--seeds", m[1], Number.MIN_SAFE_INTEGER, USAGE);
  const to = intArg("--seeds", m[2], from, USAGE);
  return { from, to };
}

function parseArgs(input: readonly string[]): LongArgs {
  const args: LongArgs = {
    minutes: null,
    seeds: null,
    from: null,
    steps: 100_000,
    nodes: 5,
    jobs: 1,
    mutation: undefined,
  };
  const argv = splitArgs(input);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (flag === "--minutes") args.minutes = minutesArg(value);
    else if (flag === "--seeds") args.seeds = seedsArg(value);
    else if (flag === "--from") args.from = intArg(flag, value, Number.MIN_SAFE_INTEGER, USAGE);
    else if (flag === "--steps") args.steps = intArg(flag, value, 1, USAGE);
    else if (flag === "--nodes") args.nodes = intArg(flag, value, 3, USAGE);
    else if (flag === "--jobs") args.jobs = Math.min(intArg(flag, value, 1, USAGE), JOBS_MAX);
    else if (flag === "--mutation") args.mutation = mutationArg(value, USAGE);
    else usageError(`unknown argument ${flag}`, USAGE);
  }
  if (args.minutes === null && args.seeds === null) {
    usageError("give --minutes N or --seeds A..B (or both)", USAGE);
  }
  if (args.seeds !== null && args.from !== null) usageError("--from goes without --seeds", USAGE);
  return args;
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Which seed runs next, what has run, and the lines printed about it. */
class Campaign {
  private readonly started = performance.now();
  private next: number;
  private readonly last: number;
  private readonly deadlineMs: number;
  seedsRun = 0;
  stepsRun = 0;
  readonly failures: number[] = [];

  constructor(private readonly args: LongArgs) {
    // Without --seeds or --from, the clock picks where to start, so campaigns explore new
    // seeds; every line names its seed, and a seed replays exactly.
    this.next = args.seeds?.from ?? args.from ?? Date.now() % 1_000_000_000;
    this.last = args.seeds?.to ?? Number.MAX_SAFE_INTEGER;
    this.deadlineMs = args.minutes === null ? Infinity : args.minutes * 60_000;
    const what =
      args.seeds === null ? `from seed ${this.next}` : `seeds ${this.next}..${this.last}`;
    const until = args.minutes === null ? "" : `, for ${args.minutes} min`;
    const mutation = args.mutation === undefined ? "" : `, mutation ${args.mutation}`;
    console.log(
      `sim:long ${what}${until}: ${args.steps} steps each, ${args.nodes} nodes, ` +
        `${args.jobs} job(s)${mutation}`,
    );
  }

  get elapsedMs(): number {
    return performance.now() - this.started;
  }

  /** The next job, or null when the range is done or time is up. */
  nextJob(): SeedJob | null {
    if (this.next > this.last || this.elapsedMs >= this.deadlineMs) return null;
    const { steps, nodes, mutation } = this.args;
    const seed = this.next++;
    return mutation === undefined ? { seed, steps, nodes } : { seed, steps, nodes, mutation };
  }

  report(r: SeedResult): void {
    this.seedsRun++;
    const at = `[${clock(this.elapsedMs)}]`;
    const secs = (r.elapsedMs / 1000).toFixed(1);
    if (r.kind === "violation") {
      this.failures.push(r.seed);
      console.log(`${at} FAILED seed ${r.seed} (${r.invariant}) after ${secs} s\n${r.message}`);
      console.log(`replay: ${r.replay}`);
      return;
    }
    this.stepsRun += r.steps;
    const rate = Math.round((r.steps + r.livenessSteps) / Math.max(r.elapsedMs / 1000, 1e-3));
    console.log(
      `${at} seed ${r.seed} OK: ${r.steps} steps (+${r.livenessSteps} liveness), commit ` +
        `${r.maxCommit}, view ${r.maxView}, ${r.crashes} crashes, ${secs} s (${rate} steps/s)` +
        ` | ${this.seedsRun} seeds, ${this.stepsRun} steps, ${this.failures.length} failed`,
    );
  }

  summary(): string {
    const failed = this.failures.length;
    const tail =
      failed === 0 ? "no violation" : `${failed} FAILED: seeds ${this.failures.join(", ")}`;
    return (
      `sim:long done in ${clock(this.elapsedMs)}: ${this.seedsRun} seeds, ` +
      `${this.stepsRun} faulty steps of passing seeds; ${tail}`
    );
  }
}

/** Runs the campaign's jobs on `jobs` worker threads, each taking the next job when done. */
function runOnWorkers(campaign: Campaign, jobs: number): Promise<void> {
  // Written without "./" so that the build, which bundles the CLI's "./<name>-worker.ts"
  // entries into dist/, leaves it out: the simulator runs from source only.
  const url = new URL("long-worker.ts", import.meta.url);
  const runOne = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = startWorker(url, null);
      const feed = (): void => {
        const job = campaign.nextJob();
        if (job === null) {
          void worker.terminate().then(() => resolve(), reject);
          return;
        }
        worker.postMessage(job);
      };
      worker.on("message", (r: SeedResult) => {
        campaign.report(r);
        feed();
      });
      worker.on("error", reject);
      feed();
    });
  return Promise.all(Array.from({ length: jobs }, runOne)).then(() => undefined);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const campaign = new Campaign(args);
  if (args.jobs === 1) {
    for (let job = campaign.nextJob(); job !== null; job = campaign.nextJob()) {
      campaign.report(runSeed(job));
    }
  } else {
    await runOnWorkers(campaign, args.jobs);
  }
  console.log(campaign.summary());
  process.exitCode = campaign.failures.length > 0 ? 1 : 0;
}

await main();
