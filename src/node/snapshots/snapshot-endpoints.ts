/**
 * The snapshot download endpoints a joiner fetches a recent snapshot from
 * (ccf-compatibility.md §2.3, "Join from a snapshot"; §3.3 `/node/snapshot`):
 *   - `GET|HEAD /node/snapshot[?since=<seqno>]`: 308 to `/node/snapshot/<name>`, the newest
 *     committed snapshot whose seqno is greater than `since` (default 0), or 404;
 *   - `GET|HEAD /node/snapshot/{snapshot_name}`: that file's bytes, whole or one byte range
 *     (`Range: bytes=a-b`, `a-` or `-n`: 206 with content-range; unsatisfiable: 416).
 *
 * Owns: nothing but reads of the snapshot directories. Invariants: only files whose name parses
 * as a committed snapshot name (snapshot.ts, digits and underscores only) are ever opened, so no
 * path separator or `..` can reach the file system; a range is read from disk without reading
 * the rest of the file.
 *
 * HEAD: server.ts always sets content-length to the length of the body it is given (it does not
 * special-case HEAD), and node:http never sends a body on a HEAD response. So HEAD gives the
 * file's bytes as the body, which sets the right content-length and never reaches the wire.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseSnapshotFileName, type SnapshotFileName } from "../../ledger/snapshot.js";
import { listCommittedSnapshots } from "./snapshot-files.js";
import { errorBody, HttpError, HttpErrorCode } from "../../http/errors.js";
import { CcfError, isNodeError } from "../../base/errors.js";
import { parseCanonicalInt } from "../../base/ids.js";
import type { Router, RpcRequest, RpcResponse } from "../../http/router.js";

export const SNAPSHOT_PATH = "/node/snapshot";

export interface SnapshotEndpointsContext {
  /** snapshots.directory, then snapshots.read_only_directory when set. */
  snapshotDirs(): readonly string[];
  log(line: string): void;
}

/** A committed snapshot file found in one of the directories. */
interface SnapshotFile {
  readonly name: string;
  readonly path: string;
  readonly parsed: SnapshotFileName;
}

export enum SnapshotServeErrorCode {
  /** The file ended before the size it had when the request was answered (it changed). */
  FileShrank = "FileShrank",
}
export type SnapshotServeErrorType = {
  code: SnapshotServeErrorCode.FileShrank;
  path: string;
  offset: number;
};
/** A snapshot file that cannot be served as found; the server answers 500 and logs it. */
export class SnapshotServeError extends CcfError<SnapshotServeErrorType> {}

/** An inclusive byte range of a file, `start <= end < size`. */
interface ByteRange {
  readonly start: number;
  readonly end: number;
}

const RANGE_RE = /^bytes=(\d{0,15})-(\d{0,15})$/;

function sinceOf(request: RpcRequest): number {
  const text = request.queryParams.get("since");
  if (text === null) return 0;
  const since = parseCanonicalInt(text);
  if (since === null) {
    throw new HttpError(
      HttpErrorCode.InvalidQueryParameterValue,
      `Invalid value for 'since': '${text}' is not a seqno.`,
    );
  }
  return since;
}

/** Every committed snapshot in the node's directories, newest first. */
function committedSnapshots(ctx: SnapshotEndpointsContext): SnapshotFile[] {
  return listCommittedSnapshots(ctx.snapshotDirs(), (line) => ctx.log(line));
}

function notFound(message: string): HttpError {
  return new HttpError(HttpErrorCode.ResourceNotFound, message);
}

function redirectToLatest(ctx: SnapshotEndpointsContext, request: RpcRequest): RpcResponse {
  const since = sinceOf(request);
  let best: SnapshotFile | null = null;
  for (const file of committedSnapshots(ctx)) {
    if (file.parsed.seqno <= since) continue;
    if (best === null || file.parsed.seqno > best.parsed.seqno) best = file;
  }
  if (best === null) throw notFound(`This node has no committed snapshot since ${since}.`);
  return {
    status: 308,
    headers: { location: `${SNAPSHOT_PATH}/${encodeURIComponent(best.name)}` },
  };
}

/** The path and size of committed snapshot `name`; 404 for any other name. */
function locate(ctx: SnapshotEndpointsContext, name: string): { path: string; sizeBytes: number } {
  const parsed = parseSnapshotFileName(name);
  if (parsed === null || !parsed.committed) {
    throw notFound(`'${name}' is not the name of a committed snapshot.`);
  }
  for (const dir of ctx.snapshotDirs()) {
    const path = join(dir, name);
    try {
      const stat = statSync(path);
      if (stat.isFile()) return { path, sizeBytes: stat.size };
    } catch (e) {
      // A directory that cannot be read is logged and skipped; a bug is not an IO error.
      if (!isNodeError(e)) throw e;
      if (e.code !== "ENOENT") ctx.log(`snapshots: cannot stat ${path}: ${String(e)}`);
    }
  }
  throw notFound(`This node has no snapshot named ${name}.`);
}

/**
 * The range asked by a `Range` header for a file of `sizeBytes`: null without a header,
 * "unsatisfiable" when no byte of it is in the file. A malformed or multi-range header is 400.
 */
function rangeOf(
  header: string | undefined,
  sizeBytes: number,
): ByteRange | null | "unsatisfiable" {
  if (header === undefined) return null;
  const m = RANGE_RE.exec(header.trim());
  if (m === null || (m[1] === "" && m[2] === "")) {
    throw new HttpError(
      HttpErrorCode.InvalidHeaderValue,
      `Invalid range header '${header}': expected bytes=<start>-<end>.`,
    );
  }
  if (m[1] === "") {
    // Suffix range: the last n bytes.
    const n = Number(m[2]);
    if (n === 0 || sizeBytes === 0) return "unsatisfiable";
    return { start: Math.max(0, sizeBytes - n), end: sizeBytes - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? sizeBytes - 1 : Math.min(Number(m[2]), sizeBytes - 1);
  if (m[2] !== "" && Number(m[2]) < start) {
    throw new HttpError(
      HttpErrorCode.InvalidHeaderValue,
      `Invalid range header '${header}': the end is before the start.`,
    );
  }
  if (start >= sizeBytes) return "unsatisfiable";
  return { start, end };
}

function readRange(path: string, range: ByteRange): Uint8Array {
  const out = new Uint8Array(range.end - range.start + 1);
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(fd, out, done, out.byteLength - done, range.start + done);
      if (n === 0) {
        const offset = range.start + done;
        throw new SnapshotServeError(
          { code: SnapshotServeErrorCode.FileShrank, path, offset },
          `${path} ended at byte ${offset}`,
        );
      }
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function serveSnapshot(ctx: SnapshotEndpointsContext, request: RpcRequest): RpcResponse {
  const name = request.params["snapshot_name"] ?? "";
  const { path, sizeBytes } = locate(ctx, name);
  const range = rangeOf(request.headers["range"], sizeBytes);
  if (range === "unsatisfiable") {
    // 416 has no code of its own in errors.ts's table, so the response is built here.
    return {
      status: 416,
      headers: { "content-range": `bytes */${sizeBytes}` },
      body: errorBody(
        HttpErrorCode.InvalidHeaderValue,
        `Requested range '${request.headers["range"]}' is not satisfiable: ` +
          `${name} has ${sizeBytes} bytes.`,
      ),
    };
  }
  const whole = range === null;
  const bytes = sizeBytes === 0 ? new Uint8Array(0) : readRange(path, range ?? wholeOf(sizeBytes));
  const headers: Record<string, string> = {
    "accept-ranges": "bytes",
    "content-type": "application/octet-stream",
    "content-length": String(bytes.byteLength),
  };
  if (!whole) headers["content-range"] = `bytes ${range.start}-${range.end}/${sizeBytes}`;
  // For HEAD the bytes only set content-length: node:http sends no body (module comment).
  return { status: whole ? 200 : 206, headers, body: bytes };
}

function wholeOf(sizeBytes: number): ByteRange {
  return { start: 0, end: sizeBytes - 1 };
}

/** Registers GET and HEAD on `/node/snapshot` and `/node/snapshot/{snapshot_name}`. */
export function registerSnapshotEndpoints(router: Router, ctx: SnapshotEndpointsContext): void {
  for (const method of ["GET", "HEAD"]) {
    router.add(method, SNAPSHOT_PATH, (request) => redirectToLatest(ctx, request));
    router.add(method, `${SNAPSHOT_PATH}/{snapshot_name}`, (request) =>
      serveSnapshot(ctx, request),
    );
  }
}
