/**
 * Checks a node makes before it writes anything (an empty ledger directory, a writable one), a
 * free port for tests, and the typed errors of a node's start-up. Its interfaces are bound
 * before these run (listening-sockets.ts).
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  unlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { createServer as createNetServer } from "node:net";
import { CcfError } from "../../base/errors.js";
import { StorageError, withStorageErrors } from "../../base/storage-error.js";

export enum StartupErrorCode {
  /** Start or Join found a ledger in the ledger directory. */
  LedgerNotEmpty = "LedgerNotEmpty",
  /** The service's answer to a join does not fit this node. */
  UnexpectedJoinAnswer = "UnexpectedJoinAnswer",
  /** A snapshot to start from lacks what a node needs. */
  UnusableSnapshot = "UnusableSnapshot",
  /** The node's own first transaction (genesis, recovery start) did not commit as expected. */
  FirstTransactionFailed = "FirstTransactionFailed",
  /** The ledger or snapshot directory cannot be created or written (EACCES, EROFS...). */
  DirectoryNotWritable = "DirectoryNotWritable",
  /** An interface cannot listen on its bind address (EADDRINUSE, EADDRNOTAVAIL, EACCES). */
  CannotListen = "CannotListen",
  /** A CONSORTIA_* environment variable the node reads has a value it cannot use. */
  InvalidEnvironment = "InvalidEnvironment",
}

export type StartupErrorType = { code: StartupErrorCode; path?: string };
export class StartupError extends CcfError<StartupErrorType> {}

export function checkEmptyLedger(directory: string): void {
  mkdirSync(directory, { recursive: true });
  const existing = readdirSync(directory).filter((f) => f.startsWith("ledger_"));
  if (existing.length > 0) {
    throw new StartupError(
      { code: StartupErrorCode.LedgerNotEmpty, path: directory },
      `ledger directory ${directory} already holds a ledger (${existing[0]}): Start and Join ` +
        "need an empty ledger directory (a node's identity is never reused; to restart a " +
        "service from its ledger, start a node with command Recover)",
    );
  }
}

/** The file checkWritableDirectory creates, syncs and deletes. */
const WRITE_CHECK_FILE = ".consortia-write-check";

/**
 * Before anything is written: `directory` (the ledger's, the snapshots') is created if missing
 * and takes a new file, synced and deleted. Otherwise a StartupError names the directory, the
 * call and the errno, so the operator reads "not writable (EROFS)" rather than a stack trace.
 */
export function checkWritableDirectory(role: string, directory: string): void {
  const probe = join(directory, WRITE_CHECK_FILE);
  try {
    makeDirectories(directory);
    const fd = withStorageErrors({ path: probe, operation: "create" }, () => openSync(probe, "w"));
    try {
      withStorageErrors({ path: probe, operation: "fsync" }, () => fsyncSync(fd));
    } finally {
      closeSync(fd);
    }
    withStorageErrors({ path: probe, operation: "unlink" }, () => unlinkSync(probe));
  } catch (e) {
    if (!(e instanceof StorageError)) throw e;
    throw new StartupError(
      { code: StartupErrorCode.DirectoryNotWritable, path: directory },
      `${role} ${directory} is not writable: ${e.message}`,
    );
  }
}

/**
 * mkdir -p, one level at a time: a recursive mkdirSync reports ENOENT where the file system
 * refused with EROFS or EACCES, and the operator needs the real reason.
 */
function makeDirectories(directory: string): void {
  if (existsSync(directory)) return;
  const parent = dirname(directory);
  if (parent !== directory) makeDirectories(parent);
  withStorageErrors({ path: directory, operation: "mkdir" }, () => mkdirSync(directory));
}

/** A port the OS says is free now (tests pick the ports of their nodes' configs with it). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
