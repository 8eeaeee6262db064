/**
 * Storage faults: a write, sync, rename or delete that the operating system refused (ENOSPC,
 * EIO, EROFS, EACCES, EDQUOT...) while a node wrote its ledger, its hard state or a snapshot
 * (SECURITY.md, "Disk faults"). A node never retries such a call: after a failed fsync the
 * kernel may have dropped the dirty pages, so a later success would prove nothing. The node
 * stops taking writes and shuts down instead, and restarts from what its files hold.
 *
 * `faultReportingFs` turns the errors of a SyncFileSystem into StorageErrors that name the file
 * (a call on a descriptor is reported with the path it was opened with). No IO of its own.
 */
import { CcfError, isNodeError } from "./errors.js";
import type { SyncFileSystem } from "./io.js";

export type StorageErrorType = {
  readonly code: "StorageFault";
  /** The file or directory the failed call was about. */
  readonly path: string;
  /** The operating system's error name: ENOSPC, EIO, EROFS... */
  readonly errno: string;
  /** The call that failed: write, fdatasync, rename... */
  readonly operation: string;
};

export class StorageError extends CcfError<StorageErrorType> {}

/** A StorageError for `cause` (an error Node raised for a system call) about `path`. */
export function storageError(
  cause: Error & { code: string },
  { path, operation }: StorageCall,
): StorageError {
  return new StorageError(
    { code: "StorageFault", path, errno: cause.code, operation },
    `${operation} ${path} failed: ${cause.code} (${describeErrno(cause.code, cause.message)})`,
  );
}

/** The file a call is about and what the call does ("write", "fdatasync"...). */
export interface StorageCall {
  readonly path: string;
  readonly operation: string;
}

/** Runs `call`; an error Node raised for it becomes a StorageError about `about.path`. */
export function withStorageErrors<T>(about: StorageCall, call: () => T): T {
  try {
    return call();
  } catch (e) {
    if (!isNodeError(e)) throw e;
    throw storageError(e, about);
  }
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EIO: "input/output error",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "a component of the path is not a directory",
  ENOENT: "no such file or directory",
};

function describeErrno(errno: string, message: string): string {
  return ERRNO_TEXT[errno] ?? message;
}

/**
 * `fs` with every failure reported as a StorageError naming the file. Descriptors are mapped to
 * the paths they were opened with until they are closed.
 */
export function faultReportingFs(fs: SyncFileSystem): SyncFileSystem {
  const paths = new Map<number, string>();
  const pathOf = (fd: number) => paths.get(fd) ?? `file descriptor ${fd}`;
  return {
    openSync: (path, flags) => {
      const fd = withStorageErrors({ path, operation: "open" }, () => fs.openSync(path, flags));
      paths.set(fd, path);
      return fd;
    },
    writeSync: (fd, bytes, offset, length, position) =>
      withStorageErrors({ path: pathOf(fd), operation: "write" }, () =>
        fs.writeSync(fd, bytes, offset, length, position),
      ),
    fdatasyncSync: (fd) =>
      withStorageErrors({ path: pathOf(fd), operation: "fdatasync" }, () => fs.fdatasyncSync(fd)),
    fsyncSync: (fd) =>
      withStorageErrors({ path: pathOf(fd), operation: "fsync" }, () => fs.fsyncSync(fd)),
    ftruncateSync: (fd, length) =>
      withStorageErrors({ path: pathOf(fd), operation: "truncate" }, () =>
        fs.ftruncateSync(fd, length),
      ),
    closeSync: (fd) => {
      const path = pathOf(fd);
      paths.delete(fd);
      withStorageErrors({ path, operation: "close" }, () => fs.closeSync(fd));
    },
    renameSync: (from, to) =>
      withStorageErrors({ path: to, operation: "rename" }, () => fs.renameSync(from, to)),
    unlinkSync: (path) =>
      withStorageErrors({ path, operation: "unlink" }, () => fs.unlinkSync(path)),
    readFileSync: (path) =>
      withStorageErrors({ path, operation: "read" }, () => fs.readFileSync(path)),
  };
}
