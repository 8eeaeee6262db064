/**
 * The hard state (view, vote) of a node's consensus, kept in a small JSON file next to the
 * ledger chunks. Each save writes a temporary file, syncs it, and renames it over the old one,
 * so a crash leaves either the old state or the new one, never a torn mix.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { utf8 } from "../../base/bytes.js";
import type { HardState } from "../../consensus/types.js";
import type { HardStateStore } from "./driver-io.js";

export class HardStateFile implements HardStateStore {
  constructor(readonly path: string) {}

  save(state: HardState): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, utf8(JSON.stringify(state)));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
