/**
 * CCF's own snapshot reader as a test oracle (ccf-compatibility.md §12): runs
 * `ccf.ledger.Snapshot(path).get_public_domain()` from CCF 6.0.17's Python package
 * (test/helpers/ccf-oracle-dir.ts) in a python3
 * subprocess and returns what it read: the seqno, the snapshot header and every public map.
 * Tests only; nothing of the oracle is imported into Consortia's code.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CCF_ORACLE_DIR } from "./ccf-oracle-dir.js";

const ORACLE = CCF_ORACLE_DIR;

/** What CCF's reader made of one snapshot file; keys and values in hex (null: a removal). */
export interface CcfSnapshotReading {
  readonly txid: string;
  readonly seqno: number;
  readonly hashAtSnapshot: string;
  readonly viewHistory: number[];
  readonly tables: Record<string, Record<string, string | null>>;
  readonly privateDomainBytes: number;
}

export type CcfSnapshotOutcome =
  | { readonly kind: "read"; readonly readings: CcfSnapshotReading[] }
  /** python3, the oracle or its `cryptography` dependency is missing: the test is skipped. */
  | { readonly kind: "unavailable"; readonly reason: string };

const SCRIPT = `
import json, sys
import ccf.ledger
out = []
for path in sys.argv[1:]:
    snapshot = ccf.ledger.Snapshot(path)
    domain = snapshot.get_public_domain()
    out.append({
        "txid": snapshot.get_txid(),
        "seqno": domain.get_seqno(),
        "hashAtSnapshot": domain._hash_at_snapshot,
        "viewHistory": domain._view_history,
        "tables": {
            name: {k.hex(): (None if v is None else v.hex()) for k, v in table.items()}
            for name, table in domain.get_tables().items()
        },
        "privateDomainBytes": snapshot.get_private_domain_size(),
    })
print(json.dumps(out))
`;

function python(args: readonly string[]) {
  return spawnSync("python3", args, {
    encoding: "utf8",
    env: { ...process.env, PYTHONPATH: `${ORACLE}:${join(ORACLE, "vendor")}` },
    timeout: 120_000,
    maxBuffer: 256 * 1024 * 1024,
  });
}

/** Whether the oracle can run here, or why not. */
export function ccfOracleProblem(): string | null {
  if (!existsSync(join(ORACLE, "ccf", "ledger.py"))) return `CCF's Python package not at ${ORACLE}`;
  const probe = python(["-c", "import cryptography, ccf.ledger"]);
  if (probe.error !== undefined) return `python3 cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `CCF's Python package does not load: ${probe.stderr.trim()}`;
  return null;
}

/**
 * Reads snapshot files with CCF's `ccf.ledger.Snapshot`. A committed file (`.committed`) has its
 * appended receipt verified by CCF's reader too. Fails the test when CCF's reader fails.
 */
export function readSnapshotsWithCcf(paths: readonly string[]): CcfSnapshotOutcome {
  const problem = ccfOracleProblem();
  if (problem !== null) return { kind: "unavailable", reason: problem };
  const run = python(["-c", SCRIPT, ...paths]);
  if (run.status !== 0) {
    assert.fail(`CCF's snapshot reader failed (status ${run.status}):\n${run.stderr}`);
  }
  return { kind: "read", readings: JSON.parse(run.stdout) as CcfSnapshotReading[] };
}
