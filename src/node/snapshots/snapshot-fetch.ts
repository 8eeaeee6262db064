/**
 * The joiner's snapshot fetch (ccf-compatibility.md §2.3, "Join from a snapshot"; CCF's
 * `fetch_recent_snapshot`): asks the target `GET /node/snapshot?since=<seqno>`, follows the 308 to
 * `/node/snapshot/<name>`, learns the size with HEAD, then downloads the file in byte ranges into
 * `<destinationDir>/<name>.partial` and renames it `<name>` once complete and synced.
 *
 * Guarantees:
 *  - TLS as join-client.ts: the node's self-signed certificate as client certificate, the server
 *    authenticated by its chain to the service certificate, never by host name;
 *  - only a name that parses as a committed snapshot name is ever written, so a server cannot
 *    make the joiner write outside `destinationDir`; the file appears under its final name only
 *    whole (every range checked against content-range and its length), never partially;
 *  - the fetched file is not trusted here: the join's snapshot selection
 *    (usableCommittedSnapshots in usable-snapshots.ts) verifies its framing and receipt like any
 *    other local file;
 *  - 404 (nothing newer than `since`) resolves null at once; network errors, timeouts, 5xx and
 *    malformed answers are retried up to maxAttempts; other 4xx answers fail at once.
 */
import { request as httpsRequest } from "node:https";
import type { IncomingMessage } from "node:http";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { assert } from "../../base/assert.js";
import { CcfError, isNodeError } from "../../base/errors.js";
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

/**
 * What one step of an attempt came to. A failure is data, not an exception: `retry` (the
 * network, a 5xx, a malformed or inconsistent answer, a local write) ends this attempt and the
 * next one starts over; `rejected` (a 4xx other than the 404 that means "nothing newer") ends
 * the whole fetch, since asking again cannot change the answer.
 */
type Step<T> =
  | { kind: "done"; value: T }
  | { kind: "retry"; reason: string }
  | { kind: "rejected"; status: number; reason: string };

/** A failed step: it stands for a step of any value type, since it carries no value. */
type Failed = Exclude<Step<never>, { kind: "done" }>;

function done<T>(value: T): Step<T> {
  return { kind: "done", value };
}

function retry(reason: string): Failed {
  return { kind: "retry", reason };
}

/** Resolves the reply, or a retry naming what went wrong on the way (never rejects for IO). */
function send(
  o: FetchSnapshotOptions,
  method: "GET" | "HEAD",
  url: URL,
  headers: Record<string, string>,
  maxBodyBytes: number,
): Promise<Step<Reply>> {
  return new Promise((resolve) => {
    // The first settlement wins: an abandoned request may still emit "error" after destroy().
    // An "error" event is always the network's (socket, TLS, reset), so it is a retry; a bad
    // argument throws synchronously instead and rejects, as the bug it is.
    const fail = (reason: string) => resolve(retry(reason));
    const onError = (e: Error) => fail(e.message);
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
            fail(`${method} ${url.pathname}: body over ${maxBodyBytes} B`);
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on("error", onError);
        res.on("end", () =>
          resolve(
            done({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          ),
        );
      },
    );
    req.on("timeout", () => {
      fail(`no answer within ${REQUEST_TIMEOUT_MS} ms`);
      req.destroy();
    });
    req.on("error", onError);
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

/** null for an answer with the `expected` status; else rejected on a 4xx, retry otherwise. */
function unexpectedStatus(reply: Reply, expected: number, what: string): Failed | null {
  if (reply.status === expected) return null;
  if (reply.status >= 400 && reply.status < 500) {
    return {
      kind: "rejected",
      status: reply.status,
      reason: `${what} rejected with ${describe(reply)}`,
    };
  }
  return retry(`${what} answered ${describe(reply)} (expected ${expected})`);
}

interface SnapshotTarget {
  readonly url: URL;
  readonly name: string;
}

/** `location` resolved against `base`, or null when it is not a usable URL. */
function resolveLocation(base: URL, location: string): URL | null {
  try {
    return new URL(location, base);
  } catch (e) {
    if (e instanceof TypeError) return null;
    throw e;
  }
}

/** The committed file name a redirect's resolved `url` points at. */
function snapshotTarget(url: URL, location: string): Step<SnapshotTarget> {
  const prefix = `${SNAPSHOT_FETCH_PATH}/`;
  const encoded = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : "";
  let name = "";
  try {
    name = decodeURIComponent(encoded);
  } catch (e) {
    if (!(e instanceof URIError)) throw e;
  }
  if (url.protocol !== "https:" || parseSnapshotFileName(name)?.committed !== true) {
    return retry(`Location '${location}' is not a committed snapshot on an https node`);
  }
  return done({ url, name });
}

/** The committed snapshot newer than `since` as a URL, following redirects; null on 404. */
async function findSnapshot(o: FetchSnapshotOptions): Promise<Step<SnapshotTarget | null>> {
  let url = new URL(`https://${o.targetAddress}${SNAPSHOT_FETCH_PATH}?since=${o.since}`);
  for (let hops = 0; hops <= MAX_REDIRECTS; hops++) {
    const sent = await send(o, "GET", url, {}, 64 * 1024);
    if (sent.kind !== "done") return sent;
    const reply = sent.value;
    if (reply.status === 404 && url.pathname === SNAPSHOT_FETCH_PATH) return done(null);
    if (reply.status !== 307 && reply.status !== 308) {
      const failed = unexpectedStatus(reply, 308, `GET ${url.pathname}`);
      if (failed !== null) return failed;
    }
    const location = reply.headers.location;
    if (location === undefined) return retry("snapshot redirect without a Location");
    const next = resolveLocation(url, location);
    if (next === null) return retry(`unusable Location '${location}'`);
    // Another node's /node/snapshot?since=... (a redirect to a peer) is followed as is.
    if (next.pathname !== SNAPSHOT_FETCH_PATH) return snapshotTarget(next, location);
    url = next;
  }
  return retry(`redirected more than ${MAX_REDIRECTS} times`);
}

async function sizeOf(o: FetchSnapshotOptions, url: URL): Promise<Step<number>> {
  const sent = await send(o, "HEAD", url, {}, 0);
  if (sent.kind !== "done") return sent;
  const failed = unexpectedStatus(sent.value, 200, `HEAD ${url.pathname}`);
  if (failed !== null) return failed;
  const text = sent.value.headers["content-length"];
  if (text === undefined || !/^\d{1,15}$/.test(text)) {
    return retry(`HEAD ${url.pathname} gave no usable content-length (${text ?? "none"})`);
  }
  return done(Number(text));
}

interface Range {
  readonly url: URL;
  /** The first and last byte asked, both inclusive: [start, end]. */
  readonly start: number;
  readonly end: number;
  /** Bytes of the whole file. */
  readonly total: number;
}

/** Downloads [start, end] and checks the answer is exactly that range of a `total`-byte file. */
async function getRange(o: FetchSnapshotOptions, range: Range): Promise<Step<Buffer>> {
  const { url, start, end, total } = range;
  const want = end - start + 1;
  const sent = await send(o, "GET", url, { range: `bytes=${start}-${end}` }, want);
  if (sent.kind !== "done") return sent;
  const reply = sent.value;
  const failed = unexpectedStatus(reply, 206, `GET ${url.pathname} bytes ${start}-${end}`);
  if (failed !== null) return failed;
  const expected = `bytes ${start}-${end}/${total}`;
  const got = reply.headers["content-range"];
  if (got !== expected || reply.body.length !== want) {
    return retry(
      `GET ${url.pathname} answered ${reply.body.length} bytes as '${got ?? "no range"}' ` +
        `for '${expected}' (did the file change?)`,
    );
  }
  return done(reply.body);
}

/** Downloads `url` (total bytes) into the open `fd`, synced; the caller closes it. */
async function download(
  o: FetchSnapshotOptions,
  target: { url: URL; total: number; fd: number },
): Promise<Step<null>> {
  const step = o.rangeBytes ?? DEFAULT_RANGE_BYTES;
  const { url, total, fd } = target;
  for (let start = 0; start < total; start += step) {
    const end = Math.min(start + step, total) - 1;
    const got = await getRange(o, { url, start, end, total });
    if (got.kind !== "done") return got;
    const bytes = got.value;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
  }
  fsyncSync(fd);
  return done(null);
}

/**
 * Downloads `target` into `partial` and renames it to `path` once whole; on any failure the
 * partial file is removed. A local write that fails (disk full, permissions) is retried like a
 * network failure, as before; only node's IO errors are, a bug still propagates.
 */
async function downloadInto(
  o: FetchSnapshotOptions,
  target: { url: URL; total: number },
  files: { partial: string; path: string },
): Promise<Step<null>> {
  let outcome: Step<null>;
  try {
    const fd = openSync(files.partial, "w");
    try {
      outcome = await download(o, { ...target, fd });
    } finally {
      closeSync(fd);
    }
    if (outcome.kind === "done") renameSync(files.partial, files.path);
  } catch (e) {
    rmSync(files.partial, { force: true });
    if (!isNodeError(e)) throw e;
    return retry(`writing ${files.partial}: ${e.message}`);
  }
  if (outcome.kind !== "done") rmSync(files.partial, { force: true });
  return outcome;
}

/** One attempt: the path of the fetched snapshot, or null when the target has nothing newer. */
async function attempt(o: FetchSnapshotOptions): Promise<Step<string | null>> {
  const found = await findSnapshot(o);
  if (found.kind !== "done") return found;
  if (found.value === null) return done(null);
  const { url, name } = found.value;
  const size = await sizeOf(o, url);
  if (size.kind !== "done") return size;
  const total = size.value;
  o.log(`snapshot fetch: downloading ${name} (${total} bytes) from ${url.host}`);
  const path = join(o.destinationDir, name);
  const partial = `${path}.partial`;
  const written = await downloadInto(o, { url, total }, { partial, path });
  if (written.kind !== "done") return written;
  o.log(`snapshot fetch: ${path} complete`);
  return done(path);
}

/**
 * Fetches the target's newest committed snapshot newer than `since` into `destinationDir`;
 * resolves its path, or null when the target has none. Rejects with SnapshotFetchError:
 * Rejected on a 4xx (at once), AttemptsExhausted when every attempt ended in a retry.
 */
export async function fetchSnapshot(o: FetchSnapshotOptions): Promise<string | null> {
  // Both come from validated config (fetch_snapshot_max_attempts >= 1) or from tests.
  assert(Number.isSafeInteger(o.maxAttempts) && o.maxAttempts >= 1, "maxAttempts >= 1");
  assert(o.rangeBytes === undefined || o.rangeBytes > 0, "rangeBytes > 0");
  let reason = "";
  for (let n = 1; n <= o.maxAttempts; n++) {
    const outcome = await attempt(o);
    switch (outcome.kind) {
      case "done":
        if (outcome.value === null) {
          o.log(`snapshot fetch: ${o.targetAddress} has none since ${o.since}`);
        }
        return outcome.value;
      case "rejected":
        throw new SnapshotFetchError(
          { code: SnapshotFetchErrorCode.Rejected, status: outcome.status },
          outcome.reason,
        );
      case "retry":
        reason = outcome.reason;
        break;
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
 * goes on with what is on disk. Rejects only for a bug (never for a failed fetch).
 */
export async function fetchRecentSnapshotForJoin(
  o: Omit<FetchSnapshotOptions, "since"> & { readonly dirs: readonly string[] },
): Promise<void> {
  const since = newestCommittedSeqno(o.dirs, o.log);
  try {
    await fetchSnapshot({ ...o, since });
  } catch (e) {
    // Only the fetch's own failures are survivable; a bug (AssertionError, ...) is not.
    if (!(e instanceof SnapshotFetchError)) throw e;
    o.log(`snapshot fetch failed, joining without it: ${e.message}`);
  }
}
