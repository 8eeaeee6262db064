/**
 * The default constitution's files (constitution/*.js) in the order they are concatenated into
 * one module: CCF's four fragments first, then any other file, sorted by name. Extra files add
 * actions to the `actions` map that actions.js defines (e.g. `actions.set(...)`), so they come
 * after it; the sandbox and the tests load the same list.
 */
import { readdirSync } from "node:fs";

/** CCF's fragments, in CCF's order. */
const CCF_ORDER = ["actions.js", "validate.js", "resolve.js", "apply.js"];

/** The .js file names of constitution directory `dir`, in concatenation order. */
export function constitutionFileNames(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => n.endsWith(".js"));
  const rank = (n: string) => {
    const i = CCF_ORDER.indexOf(n);
    return i < 0 ? CCF_ORDER.length : i;
  };
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}
