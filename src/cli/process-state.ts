/**
 * Whether a process runs, for tools that stop and look for node processes (sandbox recovery,
 * tests, benches). A killed node orphaned by its launcher stays a zombie until init reaps it,
 * and some container inits never do: a zombie has stopped, so it does not count as running.
 */
import { existsSync, readFileSync } from "node:fs";
import { isNodeError } from "../base/errors.js";

export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    return false; // ESRCH: gone (EPERM cannot happen for our own processes)
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    // Reaped since the signal check, or a platform without /proc (then trust the signal).
    return !existsSync("/proc/self");
  }
  // "pid (comm) S ...": the state follows the last ")" (comm may itself hold parentheses).
  return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
}
