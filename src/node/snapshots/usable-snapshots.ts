/**
 * Which committed snapshots on disk a node may start from (a joiner, or a recovery): checked as
 * far as possible without the ledger secret, newest first.
 */
import { readFileSync } from "node:fs";
import { fromUtf8, toHex } from "../../base/bytes.js";
import { CcfError, isForeignError } from "../../base/errors.js";
import type { Seqno } from "../../base/ids.js";
import { parseReceipt, verifyReceipt } from "../../ledger/receipt.js";
import { snapshotDigest, splitSnapshotFile } from "../../ledger/snapshot.js";
import { decodeSnapshotEntry } from "../../ledger/snapshot-format.js";
import { listCommittedSnapshots } from "./snapshot-files.js";

/** A committed snapshot found on disk, checked as far as possible without the ledger secret. */
export interface FoundSnapshot {
  readonly path: string;
  readonly seqno: Seqno;
  readonly evidenceSeqno: Seqno;
  readonly bytes: Uint8Array;
}

/**
 * The committed snapshots in `dirs` (snapshots.directory, then read_only_directory), newest
 * first, whose framing is sound, whose entry is at the seqno its name says and whose appended
 * receipt verifies against the service certificate. A corrupt, truncated or foreign file is
 * skipped with a log line, not fatal. The private domain is checked once the join brings the
 * ledger secret (the caller then takes the first that decrypts).
 */
export function usableCommittedSnapshots(
  dirs: readonly string[],
  serviceCertPem: string,
  log: (line: string) => void,
): FoundSnapshot[] {
  const candidates = listCommittedSnapshots(dirs, log).map((f) => ({
    path: f.path,
    seqno: f.parsed.seqno,
    evidenceSeqno: f.parsed.evidenceSeqno,
  }));
  const usable: FoundSnapshot[] = [];
  for (const c of candidates) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(c.path));
    } catch (e) {
      log(`snapshots: ignoring ${c.path}: ${String(e)}`);
      continue;
    }
    const problem = checkSnapshotFile(bytes, c.seqno, serviceCertPem);
    if (problem === null) usable.push({ ...c, bytes });
    else log(`snapshots: ignoring ${c.path}: ${problem}`);
  }
  return usable;
}

/** Why a committed snapshot file cannot be used (framing, receipt), or null. */
function checkSnapshotFile(
  bytes: Uint8Array,
  seqno: number,
  serviceCertPem: string,
): string | null {
  try {
    const split = splitSnapshotFile(bytes);
    if (split === null) return "truncated";
    const entry = decodeSnapshotEntry(split.entry);
    if (entry.seqno !== seqno) return `its entry is at seqno ${entry.seqno}, not ${seqno}`;
    const receipt = parseReceipt(JSON.parse(fromUtf8(split.receipt)));
    const digest = toHex(snapshotDigest(split.entry));
    if (receipt.leaf_components?.claims_digest !== digest) {
      return `its receipt does not cover this snapshot (digest ${digest})`;
    }
    const verdict = verifyReceipt(receipt, serviceCertPem);
    return verdict.kind === "valid" ? null : `its receipt does not verify (${verdict.reason})`;
  } catch (e) {
    // A damaged file is skipped whatever part of it fails to parse; a broken invariant is not.
    if (!(e instanceof CcfError) && !isForeignError(e)) throw e;
    return e.message;
  }
}
