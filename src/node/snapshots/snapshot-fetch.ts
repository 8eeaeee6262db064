/**
 * The joiner's snapshot fetch (ccf-api.md 2.3, "Join from snapshot", `fetch_recent_snapshot`):
 * asks the target `GET /node/snapshot?since=<seqno>`, follows the 308 to
 * `/node/snapshot/<name>`, learns the size with HEAD, then downloads the file in byte ranges
 * into `<destinationDir>/<name>.partial` and renames it `<name>` once complete and synced.
 *
 * Guarantees:
 *  - TLS as join-client.ts: the node's self-signed certificate as client certificate, the server
 *    authenticated by its chain to the service certificate, never by host name;
 *  - only a name that parses as a committed snapshot name is ever written, so a server cannot
 *    make the joiner write outside `destinationDir`; the file appears under its final name only
 *    whole (every range checked against content-range and its length), never partially;
 *  - the fetched file is not trusted here: the join's snapshot selection (node-startup.ts
 *    latestCommittedSnapshot) verifies its framing and receipt like any other local file;
 *  - 404 (nothing newer than `since`) resolves null at once; network errors, timeouts, 5xx and
 *    malformed answers are retried up to maxAttempts; other 4xx answers fail at once.
 */
import { request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CcfError } from "../../base/errors.js";
import { parseSnapshotFileName } from "../../ledger/snapshot.js";
import { listCommittedSnapshots } from "./snapshot-files.js";
import { nodeClientTls } from "../../http/client-tls.js";

export const SNAPSHOT_FETCH_PATH = "/node/snapshot";
/** Bytes asked per ranged GET. */
export const DEFAULT_RANGE_BYTES = 4 * 1024 * 1024;
/** A request that takes longer is abandoned (and the attempt retried). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Redirects followed in one attempt before the server is considered looping. */
const MAX_REDIRECTS = 4;

export enum SnapshotFetchErrorCode {
  /** The target answered a 4xx other than 404: retrying cannot help. */
  Rejected = "Rejected",
  /** Every attempt failed (unreachable, 5xx, malformed or inconsistent answers). */
  AttemptsExhausted = "AttemptsExhausted",
}
export type SnapshotFetchErrorType = { code: SnapshotFetchErrorCode; status?: number };
export class SnapshotFetchError extends CcfError<SnapshotFetchErrorType> {}

export interface FetchSnapshotOptions {
  /** "host:port" of the node to fetch from (command.join.target_rpc_address). */
  readonly targetAddress: string;
  readonly serviceCertPem: string;
  /** The node's self-signed certificate and its key (TLS client identity). */
  readonly nodeCertPem: string;
  readonly nodeKeyPem: string;
  /** Only a snapshot with a greater seqno is fetched. */
  readonly since: number;
  readonly destinationDir: string;
  /** Invariant: >= 1. */
  readonly maxAttempts: number;
  readonly retryIntervalMs: number;
  log(line: string): void;
  /** Bytes per ranged GET (default DEFAULT_RANGE_BYTES). Invariant: > 0. */
  readonly rangeBytes?: number;
}

interface Reply {
  readonly status: number;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

/** One failed attempt, worth retrying. */
class Retryable extends Error {}

function send(
  o: FetchSnapshotOptions,
  method: "GET" | "HEAD",
  url: URL,
  headers: Record<string, string>,
  maxBodyBytes: number,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        agent: false,
        ...nodeClientTls(o),
        headers,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let sizeBytes = 0;
        res.on("data", (chunk: Buffer) => {
          sizeBytes += chunk.length;
          if (sizeBytes > maxBodyBytes) {
            req.destroy(new Retryable(`${method} ${url.pathname}: body over ${maxBodyBytes} B`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", reject);
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/** "CODE: message" of a CCF error body, or the start of the raw text. */
function describe(reply: Reply): string {
  const text = reply.body.toString("utf8");
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === "string" && typeof body.error.message === "string") {
      return `${reply.status} ${body.error.code}: ${body.error.message}`;
    }
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
  }
  return `${reply.status} ${text.slice(0, 200)}`;
}

/** Throws for an answer that is not `expected`: Rejected on a 4xx, Retryable otherwise. */
function expectStatus(reply: Reply, expected: number, what: string): void {
  if (reply.status === expected) return;
  if (reply.status >= 400 && reply.status < 500) {
    throw new SnapshotFetchError(
      { code: SnapshotFetchErrorCode.Rejected, status: reply.status },
      `${what} rejected with ${describe(reply)}`,
    );
  }
  throw new Retryable(`${what} answered ${describe(reply)} (expected ${expected})`);
}

/** The snapshot URL and committed file name a redirect points at. */
function snapshotTarget(base: URL, location: string | undefined): { url: URL; name: string } {
  if (location === undefined) throw new Retryable("snapshot redirect without a Location");
  let url: URL;
  try {
    url = new URL(location, base);
  } catch (e) {
    if (e instanceof TypeError) throw new Retryable(`unusable Location '${location}'`);
    throw e;
  }
  const prefix = `${SNAPSHOT_FETCH_PATH}/`;
  const encoded = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : "";
  let name = "";
  try {
    name = decodeURIComponent(encoded);
  } catch (e) {
    if (!(e instanceof URIError)) throw e;
  }
  if (url.protocol !== "https:" || parseSnapshotFileName(name)?.committed !== true) {
    throw new Retryable(`Location '${location}' is not a committed snapshot on an https node`);
  }
  return { url, name };
}

/** The committed snapshot newer than `since` as a URL, following redirects; null on 404. */
async function findSnapshot(o: FetchSnapshotOptions): Promise<{ url: URL; name: string } | null> {
  let url = new URL(`https://${o.targetAddress}${SNAPSHOT_FETCH_PATH}?since=${o.since}`);
  for (let hops = 0; hops <= MAX_REDIRECTS; hops++) {
    const reply = await send(o, "GET", url, {}, 64 * 1024);
    if (reply.status === 404 && url.pathname === SNAPSHOT_FETCH_PATH) return null;
    if (reply.status !== 307 && reply.status !== 308) {
      expectStatus(reply, 308, `GET ${url.pathname}`);
    }
    const location = reply.headers.location;
    const next = location === undefined ? null : new URL(location, url);
    // Another node's /node/snapshot?since=... (a redirect to a peer) is followed as is.
    if (next !== null && next.pathname === SNAPSHOT_FETCH_PATH) {
      url = next;
      continue;
    }
    return snapshotTarget(url, location);
  }
  throw new Retryable(`redirected more than ${MAX_REDIRECTS} times`);
}

async function sizeOf(o: FetchSnapshotOptions, url: URL): Promise<number> {
  const reply = await send(o, "HEAD", url, {}, 0);
  expectStatus(reply, 200, `HEAD ${url.pathname}`);
  const text = reply.headers["content-length"];
  if (text === undefined || !/^\d{1,15}$/.test(text)) {
    throw new Retryable(`HEAD ${url.pathname} gave no usable content-length (${text ?? "none"})`);
  }
  return Number(text);
}

/** Downloads [start, end] and checks the answer is exactly that range of a `total`-byte file. */
async function getRange(
  o: FetchSnapshotOptions,
  url: URL,
  start: number,
  end: number,
  total: number,
): Promise<Buffer> {
  const want = end - start + 1;
  const reply = await send(o, "GET", url, { range: `bytes=${start}-${end}` }, want);
  expectStatus(reply, 206, `GET ${url.pathname} bytes ${start}-${end}`);
  const expected = `bytes ${start}-${end}/${total}`;
  const got = reply.headers["content-range"];
  if (got !== expected || reply.body.length !== want) {
    throw new Retryable(
      `GET ${url.pathname} answered ${reply.body.length} bytes as '${got ?? "no range"}' ` +
        `for '${expected}' (did the file change?)`,
    );
  }
  return reply.body;
}

/** Downloads `url` (total bytes) into `partial`, synced; the caller renames or removes it. */
async function download(o: FetchSnapshotOptions, url: URL, total: number, partial: string) {
  const step = o.rangeBytes ?? DEFAULT_RANGE_BYTES;
  const fd = openSync(partial, "w");
  try {
    for (let start = 0; start < total; start += step) {
      const end = Math.min(start + step, total) - 1;
      const bytes = await getRange(o, url, start, end, total);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** One attempt: the path of the fetched snapshot, or null when the target has nothing newer. */
async function attempt(o: FetchSnapshotOptions): Promise<string | null> {
  const found = await findSnapshot(o);
  if (found === null) return null;
  const total = await sizeOf(o, found.url);
  o.log(`snapshot fetch: downloading ${found.name} (${total} bytes) from ${found.url.host}`);
  const partial = join(o.destinationDir, `${found.name}.partial`);
  const path = join(o.destinationDir, found.name);
  try {
    await download(o, found.url, total, partial);
    renameSync(partial, path);
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  }
  o.log(`snapshot fetch: ${path} complete`);
  return path;
}

/**
 * Fetches the target's newest committed snapshot newer than `since` into `destinationDir`;
 * resolves its path, or null when the target has none. Rejects with SnapshotFetchError.
 */
export async function fetchSnapshot(o: FetchSnapshotOptions): Promise<string | null> {
  if (!(o.maxAttempts >= 1)) throw new RangeError("maxAttempts must be at least 1");
  if (o.rangeBytes !== undefined && !(o.rangeBytes > 0)) {
    throw new RangeError("rangeBytes must be positive");
  }
  let reason = "";
  for (let n = 1; n <= o.maxAttempts; n++) {
    try {
      const path = await attempt(o);
      if (path === null) o.log(`snapshot fetch: ${o.targetAddress} has none since ${o.since}`);
      return path;
    } catch (e) {
      if (e instanceof SnapshotFetchError) throw e;
      reason = e instanceof Error ? e.message : String(e);
    }
    if (n < o.maxAttempts) {
      o.log(`snapshot fetch: attempt ${n} failed (${reason}); retrying in ${o.retryIntervalMs} ms`);
      await sleep(o.retryIntervalMs);
    }
  }
  throw new SnapshotFetchError(
    { code: SnapshotFetchErrorCode.AttemptsExhausted },
    `snapshot fetch from ${o.targetAddress} failed ${o.maxAttempts} times; last: ${reason}`,
  );
}

/** The seqno of the newest committed snapshot named in `dirs` (0 when none): the `since`. */
export function newestCommittedSeqno(dirs: readonly string[], log: (line: string) => void) {
  return listCommittedSnapshots(dirs, log)[0]?.parsed.seqno ?? 0;
}

/**
 * fetch_recent_snapshot before a join: fetches into `destinationDir` anything newer than the
 * newest local committed snapshot in `dirs`. Never rejects: a failure is logged and the join
 * goes on with what is on disk.
 */
export async function fetchRecentSnapshotForJoin(
  o: Omit<FetchSnapshotOptions, "since"> & { readonly dirs: readonly string[] },
): Promise<void> {
  const since = newestCommittedSeqno(o.dirs, o.log);
  try {
    await fetchSnapshot({ ...o, since });
  } catch (e) {
    o.log(
      `snapshot fetch failed, joining without it: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
