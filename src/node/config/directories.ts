/** Directories a node reads, in the order it prefers them. */
import type { NodeConfig } from "./config.js";

/** snapshots.directory, then snapshots.read_only_directory when set. */
export function snapshotDirsOf(config: NodeConfig): string[] {
  const readOnly = config.snapshots.readOnlyDirectory;
  return [config.snapshots.directory, ...(readOnly !== undefined ? [readOnly] : [])];
}
