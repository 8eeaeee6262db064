/**
 * Command-line arguments shared by the simulator's CLIs (main.ts: `npm run sim`, long.ts: `npm
 * run sim:long`): "--flag=value" is "--flag value", integers are checked, and a usage error
 * prints the usage and exits 2.
 */
import { SIM_MUTATIONS, type SimMutation } from "./mutations.js";

/** The arguments as flag/value tokens ("--seed=7" becomes "--seed", "7"). */
export function splitArgs(input: readonly string[]): string[] {
  return input.flatMap((a) => (/^--\w+=/.test(a) ? a.split(/=(.*)/s, 2) : [a]));
}

/** Prints `message` and `usageText`, and exits 2. */
export function usageError(message: string, usageText: string): never {
  console.error(`${message}\nusage: ${usageText}`);
  process.exit(2);
}

export function intArg(name: string, text: string | undefined, min: number, usage: string) {
  const n = Number(text);
  if (text === undefined || !Number.isSafeInteger(n) || n < min) {
    usageError(`${name} needs an integer >= ${min}, got ${text ?? "nothing"}`, usage);
  }
  return n;
}

export function mutationArg(text: string | undefined, usage: string): SimMutation {
  const found = SIM_MUTATIONS.find((m) => m === text);
  if (found === undefined) {
    usageError(`--mutation needs one of ${SIM_MUTATIONS.join(", ")}`, usage);
  }
  return found;
}
