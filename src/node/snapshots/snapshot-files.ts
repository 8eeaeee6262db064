/**
 * The committed snapshot files in a node's snapshot directories (snapshots.directory and
 * read_only_directory), newest first. An unreadable directory is logged and skipped; files whose
 * names are not `snapshot_<seqno>_<evidence seqno>.committed` are not listed.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { isNodeError } from "../../base/errors.js";
import { parseSnapshotFileName, type SnapshotFileName } from "../../ledger/snapshot.js";

export interface CommittedSnapshotFile {
  readonly name: string;
  readonly path: string;
  readonly parsed: SnapshotFileName;
}

export function listCommittedSnapshots(
  dirs: readonly string[],
  log: (line: string) => void,
): CommittedSnapshotFile[] {
  const found: CommittedSnapshotFile[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      // A directory that cannot be listed is skipped (the others still count); a bug is not.
      if (!isNodeError(e)) throw e;
      log(`snapshots: cannot list ${dir}: ${String(e)}`);
      continue;
    }
    for (const name of names) {
      const parsed = parseSnapshotFileName(name);
      if (parsed?.committed === true) found.push({ name, path: join(dir, name), parsed });
    }
  }
  return found.sort((a, b) => b.parsed.seqno - a.parsed.seqno);
}
