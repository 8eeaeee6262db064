/**
 * The hard state (view, vote) of a node's consensus, kept in a small JSON file next to the
 * ledger chunks. Each save writes a temporary file, syncs it, and renames it over the old one,
 * so a crash leaves either the old state or the new one, never a torn mix.
 *
 * A failed call (ENOSPC, EIO...) throws a StorageError naming the file: the consensus driver
 * stops before it sends anything that relies on the new state, and the node shuts down
 * (SECURITY.md, "Disk faults").
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { utf8 } from "../../base/bytes.js";
import { withStorageErrors } from "../../base/storage-error.js";
import type { HardState } from "../../consensus/types.js";
import type { HardStateStore } from "./driver-io.js";

export class HardStateFile implements HardStateStore {
  constructor(readonly path: string) {}

  save(state: HardState): void {
    const tmp = `${this.path}.tmp`;
    const fd = withStorageErrors({ path: tmp, operation: "open" }, () => openSync(tmp, "w"));
    try {
      const bytes = utf8(JSON.stringify(state));
      withStorageErrors({ path: tmp, operation: "write" }, () => {
        let done = 0;
        while (done < bytes.byteLength) done += writeSync(fd, bytes, done);
      });
      withStorageErrors({ path: tmp, operation: "fsync" }, () => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
    withStorageErrors({ path: this.path, operation: "rename" }, () => renameSync(tmp, this.path));
  }
}
