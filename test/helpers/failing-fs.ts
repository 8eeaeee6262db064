/**
 * A SyncFileSystem (src/base/io.ts) over the real node:fs that fails chosen calls the way the
 * kernel does (an Error with an errno `code`, as Node raises it), for unit tests of disk faults
 * (SECURITY.md, "Disk faults") where a real EIO cannot be produced. Every call is counted, so a
 * test can check that nothing reaches the disk after a fault.
 */
import type { SyncFileSystem } from "../../src/base/io.js";
import { NODE_SYNC_FS } from "../../src/ledger/io/node-sync-fs.js";

type Operation = keyof SyncFileSystem;

export class FailingFs implements SyncFileSystem {
  /** Calls that reached this file system, by operation (failed ones included). */
  readonly calls = new Map<Operation, number>();
  private failing: { operation: Operation; errno: string } | null = null;
  /** Bytes writeSync still writes for real before it fails (null: not armed). */
  private writeBudgetBytes: number | null = null;

  /** The next call of `operation` fails with `errno`, and so does every later one. */
  fail(operation: Operation, errno: string): void {
    this.failing = { operation, errno };
  }

  /**
   * writeSync writes `bytes` more bytes for real (short writes, as on a filling disk), then
   * fails with `errno`, as does every later writeSync.
   */
  failWritesAfter(bytes: number, errno: string): void {
    this.writeBudgetBytes = bytes;
    this.failing = { operation: "writeSync", errno };
  }

  get totalCalls(): number {
    let total = 0;
    for (const n of this.calls.values()) total += n;
    return total;
  }

  private enter(operation: Operation): void {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const f = this.failing;
    if (f === null || f.operation !== operation) return;
    if (operation === "writeSync" && this.writeBudgetBytes !== null && this.writeBudgetBytes > 0) {
      return;
    }
    throw Object.assign(new Error(`${f.errno}: injected failure, ${operation}`), {
      code: f.errno,
      syscall: operation.replace(/Sync$/, ""),
    });
  }

  openSync(path: string, flags: string): number {
    this.enter("openSync");
    return NODE_SYNC_FS.openSync(path, flags);
  }
  writeSync(fd: number, bytes: Uint8Array, offset: number, length: number, position: number) {
    this.enter("writeSync");
    let n = length;
    if (this.writeBudgetBytes !== null) {
      n = Math.min(length, this.writeBudgetBytes);
      this.writeBudgetBytes -= n;
    }
    return NODE_SYNC_FS.writeSync(fd, bytes, offset, n, position);
  }
  fdatasyncSync(fd: number): void {
    this.enter("fdatasyncSync");
    NODE_SYNC_FS.fdatasyncSync(fd);
  }
  fsyncSync(fd: number): void {
    this.enter("fsyncSync");
    NODE_SYNC_FS.fsyncSync(fd);
  }
  ftruncateSync(fd: number, length: number): void {
    this.enter("ftruncateSync");
    NODE_SYNC_FS.ftruncateSync(fd, length);
  }
  closeSync(fd: number): void {
    this.enter("closeSync");
    NODE_SYNC_FS.closeSync(fd);
  }
  renameSync(from: string, to: string): void {
    this.enter("renameSync");
    NODE_SYNC_FS.renameSync(from, to);
  }
  unlinkSync(path: string): void {
    this.enter("unlinkSync");
    NODE_SYNC_FS.unlinkSync(path);
  }
  readFileSync(path: string): Uint8Array {
    this.enter("readFileSync");
    return NODE_SYNC_FS.readFileSync(path);
  }
}
