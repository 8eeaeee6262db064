/**
 * `npm run chaos -- --minutes N --seed S [--nodes 3] [--clients 4] [--keys 5] [--unsafe-reads] [--only KIND]`: one chaos run
 * (run.ts) with N minutes of faults, then its summary: operations by outcome, the faults
 * applied, lost committed writes, and the linearizability verdict. On an anomaly it prints the
 * history of each violating key (a table; docs/testing.md "Reading the output") and exits 1;
 * usage errors exit 2. --unsafe-reads sends reads to any node, unchecked: backups answer with
 * stale state, so that run must report an anomaly (a check of the checker and the runner).
 * --only KIND applies only faults of that kind (nemesis.ts FaultKind).
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAULT_KINDS, type FaultKind } from "./nemesis.js";
import { runChaos, type ChaosReport } from "./run.js";

interface Args {
  minutes: number;
  seed: number;
  nodes: number;
  clients: number;
  keys: number;
  unsafeReads: boolean;
  only: FaultKind | undefined;
}

function usage(message: string): never {
  console.error(
    `${message}\nusage: npm run chaos -- --minutes N --seed S [--nodes 3] [--clients 4] [--keys 5] [--unsafe-reads] [--only KIND]`,
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    minutes: 1,
    seed: 1,
    nodes: 3,
    clients: 4,
    keys: 5,
    unsafeReads: false,
    only: undefined,
  };
  const limits: Record<Exclude<keyof Args, "unsafeReads" | "only">, [number, number]> = {
    minutes: [0.1, 600],
    seed: [0, 2 ** 32 - 1],
    nodes: [3, 7],
    clients: [1, 32],
    keys: [1, 100],
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split("=", 2) as [string, string | undefined];
    if (flag === "--unsafe-reads") {
      args.unsafeReads = true;
      continue;
    }
    if (flag === "--only") {
      const kind = inline ?? argv[++i];
      if (!FAULT_KINDS.includes(kind as FaultKind))
        usage(`--only needs one of ${FAULT_KINDS.join(", ")}`);
      args.only = kind as FaultKind;
      continue;
    }
    const name = flag.replace(/^--/, "") as Exclude<keyof Args, "unsafeReads" | "only">;
    if (!(name in limits)) usage(`unknown argument ${flag}`);
    const text = inline ?? argv[++i];
    const value = Number(text);
    const [min, max] = limits[name];
    if (text === undefined || !Number.isFinite(value) || value < min || value > max) {
      usage(`--${name} needs a number in ${min}..${max}, got ${text ?? "nothing"}`);
    }
    if (name !== "minutes" && !Number.isSafeInteger(value)) usage(`--${name} needs an integer`);
    args[name] = value;
  }
  return args;
}

function log(line: string): void {
  console.log(`[${new Date().toISOString().slice(11, 23)}] ${line}`);
}

function summarise(args: Args, report: ChaosReport): string[] {
  const faults = new Map<string, number>();
  for (const f of report.faults) faults.set(f, (faults.get(f) ?? 0) + 1);
  const { total, ok, failed, indeterminate } = report.ops;
  const keys = report.check.keys.map((v) => `${v.key}:${v.kind}`).join(" ");
  return [
    `seed ${args.seed}, ${args.minutes} min of faults, ${args.nodes} nodes, ${args.clients} clients`,
    `ops: ${total} (ok ${ok}, failed ${failed}, indeterminate ${indeterminate})`,
    `faults: ${report.faults.length} (${[...faults].map(([k, n]) => `${k} ${n}`).join(", ")})`,
    `node-to-node connections through the proxies: ${report.links.accepted} ` +
      `(refused while cut: ${report.links.refused}, not attributed: ${report.links.unidentified})`,
    `lost or diverging committed writes: ${report.lost.length}`,
    ...report.lost.map((l) => `  ${l}`),
    `linearizability: ${report.check.kind} (${keys})`,
    `result: ${report.passed ? "PASS" : "ANOMALY"}`,
  ];
}

const args = parseArgs(process.argv.slice(2));
const report = await runChaos({
  faultsMs: args.minutes * 60_000,
  seed: args.seed,
  nodes: args.nodes,
  clients: args.clients,
  keys: args.keys,
  unsafeReads: args.unsafeReads,
  ...(args.only !== undefined && { schedule: new Array<FaultKind>(10_000).fill(args.only) }),
  log,
});
for (const anomaly of report.anomalies) console.log(`\n${anomaly}`);
if (!report.passed) {
  // JSON has no Infinity: a return of null is an operation of unknown outcome.
  const file = join(tmpdir(), `chaos-seed-${args.seed}-${Date.now()}.json`);
  const { originMs, history, recorded } = report;
  writeFileSync(file, JSON.stringify({ originMs, history, recorded }));
  console.log(`\nhistory written to ${file}`);
}
console.log("");
for (const line of summarise(args, report)) console.log(line);
process.exit(report.passed ? 0 : 1);
