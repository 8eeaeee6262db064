/**
 * Where CCF 6.0.17's Python package (the oracle our formats are checked against) is: the
 * CONSORTIA_CCF_ORACLE environment variable, else ../shared/oracles/ccf-python beside the
 * repository, else /work/shared/oracles/ccf-python (where a clone made elsewhere, such as CI's,
 * finds it on the development machines). Tests that need it skip, saying why, when it is absent.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "..", "..");
const CANDIDATES = [
  resolve(REPO, "..", "shared", "oracles", "ccf-python"),
  "/work/shared/oracles/ccf-python",
];

export const CCF_ORACLE_DIR: string =
  process.env["CONSORTIA_CCF_ORACLE"] ??
  CANDIDATES.find((dir) => existsSync(join(dir, "ccf", "ledger.py"))) ??
  CANDIDATES[0]!;
