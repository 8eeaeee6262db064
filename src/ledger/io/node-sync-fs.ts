/**
 * node:fs as the SyncFileSystem of base/io.ts, the default file calls of the ledger writer
 * (tests inject their own to fail a call with EIO or ENOSPC).
 */
import * as nodeFs from "node:fs";
import type { SyncFileSystem } from "../../base/io.js";

/** node:fs as a SyncFileSystem (bytes read back as Uint8Array views). */
export const NODE_SYNC_FS: SyncFileSystem = {
  openSync: (path, flags) => nodeFs.openSync(path, flags),
  writeSync: (fd, bytes, offset, length, position) =>
    nodeFs.writeSync(fd, bytes, offset, length, position),
  fdatasyncSync: (fd) => nodeFs.fdatasyncSync(fd),
  fsyncSync: (fd) => nodeFs.fsyncSync(fd),
  ftruncateSync: (fd, length) => nodeFs.ftruncateSync(fd, length),
  closeSync: (fd) => nodeFs.closeSync(fd),
  renameSync: (from, to) => nodeFs.renameSync(from, to),
  unlinkSync: (path) => nodeFs.unlinkSync(path),
  readFileSync: (path) => {
    const raw = nodeFs.readFileSync(path);
    return new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  },
};
