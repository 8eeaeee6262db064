// The joiner's snapshot fetch (src/node/snapshot-fetch.ts) against the real snapshot endpoints
// (src/node/snapshot-endpoints.ts) behind a real HTTPS server on loopback, with the service's
// node certificate as server identity and a self-signed joiner certificate as client identity,
// as in a join. The server's files are the oracle: the fetched file must be byte-identical, and
// a middleware records the requests, so the ranges asked are checked too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { AssertionError } from "../../../../src/base/assert.js";
import { createSelfSignedCertificate } from "../../../../src/crypto/cert-issuance.js";
import { ecPrivateKeyPem, generateEcKeyPair } from "../../../../src/crypto/identity.js";
import { errorBody, HttpErrorCode } from "../../../../src/http/errors.js";
import { Router, type RpcRequest, type RpcResponse } from "../../../../src/http/router.js";
import { answerOf, createRpcServer, type RpcServer } from "../../../../src/http/server.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { registerSnapshotEndpoints } from "../../../../src/node/snapshots/snapshot-endpoints.js";
import {
  fetchRecentSnapshotForJoin,
  fetchSnapshot,
  SnapshotFetchError,
  SnapshotFetchErrorCode,
  type FetchSnapshotOptions,
} from "../../../../src/node/snapshots/snapshot-fetch.js";
import { tempDir } from "../../../helpers/pki.js";

const NOW = new Date(Date.now() - 60_000);
const service = await createStartIdentities({ now: NOW });
const joinerKeys = generateEcKeyPair();
const joinerCertPem = await createSelfSignedCertificate({
  keys: joinerKeys,
  subject: "CN=CCF Node",
  validityDays: 30,
  now: NOW,
});

const MIB = 1024 * 1024;
const BIG = "snapshot_100_101.committed";
const bigBytes = new Uint8Array(randomBytes(9 * MIB + 12345));

interface Served {
  readonly server: RpcServer;
  readonly serveDir: string;
  readonly destDir: string;
  /** "METHOD path[ range]" of every request, in order. */
  readonly seen: string[];
}

type Middleware = (request: RpcRequest, n: number) => RpcResponse | null;

/** A server over a snapshot dir holding BIG and an older snapshot; `fail` may answer first. */
async function serve(
  t: { after(f: () => unknown): void },
  fail: Middleware = () => null,
  router?: Router,
): Promise<Served> {
  const tmp = tempDir("consortia-snap-fetch-");
  t.after(tmp.cleanup);
  const serveDir = join(tmp.dir, "served");
  const destDir = join(tmp.dir, "dest");
  mkdirSync(serveDir);
  mkdirSync(destDir);
  writeFileSync(join(serveDir, BIG), bigBytes);
  writeFileSync(join(serveDir, "snapshot_50_51.committed"), "older");
  const seen: string[] = [];
  let routes = router;
  if (routes === undefined) {
    routes = new Router();
    registerSnapshotEndpoints(routes, { snapshotDirs: () => [serveDir], log: () => {} });
  }
  const server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: service.node.certPem,
    keyPem: ecPrivateKeyPem(service.node.privateKey),
    caPem: service.serviceCertPem,
    maxBodyBytes: 1 << 20,
    router: routes,
    closeGraceMs: 0,
    log: () => {},
    onRequest: async (request, next) => {
      const range = request.headers["range"];
      const query = request.query === "" ? "" : `?${request.query}`;
      seen.push(`${request.method} ${request.path}${query}${range ? ` ${range}` : ""}`);
      return fail(request, seen.length) ?? answerOf(await next(request));
    },
  });
  t.after(() => server.close());
  return { server, serveDir, destDir, seen };
}

function options(s: Served, over: Partial<FetchSnapshotOptions> = {}): FetchSnapshotOptions {
  return {
    targetAddress: `127.0.0.1:${s.server.port}`,
    serviceCertPem: service.serviceCertPem,
    nodeCertPem: joinerCertPem,
    nodeKeyPem: ecPrivateKeyPem(joinerKeys.privateKey),
    since: 0,
    destinationDir: s.destDir,
    maxAttempts: 3,
    retryIntervalMs: 10,
    log: () => {},
    ...over,
  };
}

function unavailable(): RpcResponse {
  return {
    status: 503,
    body: errorBody(HttpErrorCode.NodeCannotHandleRequest, "try later"),
  };
}

test("fetchSnapshot downloads the newest snapshot in 4 MiB ranges, byte-identical", async (t) => {
  const s = await serve(t);
  const path = await fetchSnapshot(options(s));
  assert.equal(path, join(s.destDir, BIG));
  assert.deepEqual(new Uint8Array(readFileSync(path)), bigBytes);
  assert.deepEqual(readdirSync(s.destDir), [BIG], "no .partial file is left");
  const total = bigBytes.byteLength;
  const url = `/node/snapshot/${BIG}`;
  assert.deepEqual(s.seen, [
    "GET /node/snapshot?since=0",
    `HEAD ${url}`,
    `GET ${url} bytes=0-${4 * MIB - 1}`,
    `GET ${url} bytes=${4 * MIB}-${8 * MIB - 1}`,
    `GET ${url} bytes=${8 * MIB}-${total - 1}`,
  ]);
});

test("on the wire HEAD carries the file's content-length and no body", async (t) => {
  const s = await serve(t);
  const answer = await new Promise<{ status: number; length: string; bodyBytes: number }>(
    (resolve, reject) => {
      const req = httpsRequest(
        `https://127.0.0.1:${s.server.port}/node/snapshot/${BIG}`,
        {
          method: "HEAD",
          agent: false,
          ca: service.serviceCertPem,
          checkServerIdentity: () => undefined,
        },
        (res) => {
          let bodyBytes = 0;
          res.on("data", (c: Buffer) => (bodyBytes += c.length));
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              length: res.headers["content-length"] ?? "",
              bodyBytes,
            }),
          );
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    },
  );
  assert.deepEqual(answer, {
    status: 200,
    length: String(bigBytes.byteLength),
    bodyBytes: 0,
  });
});

test("since at or past the newest snapshot gives null and writes nothing", async (t) => {
  const s = await serve(t);
  const logs: string[] = [];
  assert.equal(await fetchSnapshot(options(s, { since: 100, log: (l) => logs.push(l) })), null);
  assert.deepEqual(readdirSync(s.destDir), []);
  assert.deepEqual(s.seen, ["GET /node/snapshot?since=100"], "a 404 is not retried");
  assert.ok(
    logs.some((l) => l.includes("has none since 100")),
    logs.join("\n"),
  );
  // since between the two snapshots still fetches the newer one, with small ranges.
  const path = await fetchSnapshot(options(s, { since: 99, rangeBytes: 3 * MIB }));
  assert.deepEqual(new Uint8Array(readFileSync(path!)), bigBytes);
});

test("a server failing twice (redirect, then mid-download) is retried and succeeds", async (t) => {
  let failures = 0;
  const s = await serve(t, (request) => {
    const midDownload = request.headers["range"]?.startsWith(`bytes=${4 * MIB}-`) === true;
    const redirect = request.path === "/node/snapshot";
    if ((failures === 0 && redirect) || (failures === 1 && midDownload)) {
      failures++;
      return unavailable();
    }
    return null;
  });
  const logs: string[] = [];
  const path = await fetchSnapshot(options(s, { log: (l) => logs.push(l) }));
  assert.equal(failures, 2);
  assert.deepEqual(new Uint8Array(readFileSync(path!)), bigBytes);
  assert.deepEqual(readdirSync(s.destDir), [BIG]);
  assert.ok(
    logs.some((l) => l.includes("attempt 1 failed")),
    logs.join("\n"),
  );
  assert.ok(
    logs.some((l) => l.includes("attempt 2 failed")),
    logs.join("\n"),
  );
  assert.ok(!logs.some((l) => l.includes("attempt 3 failed")), logs.join("\n"));
});

test("a server that keeps failing exhausts maxAttempts and leaves no partial file", async (t) => {
  const s = await serve(t, (request) =>
    request.headers["range"]?.startsWith(`bytes=${4 * MIB}-`) === true ? unavailable() : null,
  );
  await assert.rejects(
    fetchSnapshot(options(s, { maxAttempts: 2 })),
    (e: unknown) =>
      e instanceof SnapshotFetchError &&
      e.code === SnapshotFetchErrorCode.AttemptsExhausted &&
      e.message.includes("NodeCannotHandleRequest"),
  );
  assert.equal(s.seen.filter((l) => l.startsWith("GET /node/snapshot?")).length, 2);
  assert.deepEqual(readdirSync(s.destDir), []);
});

test("a 4xx other than 404 is not retried", async (t) => {
  const s = await serve(t, (request) =>
    request.method === "HEAD"
      ? { status: 403, body: errorBody(HttpErrorCode.AuthorizationFailed, "no") }
      : null,
  );
  await assert.rejects(
    fetchSnapshot(options(s)),
    (e: unknown) =>
      e instanceof SnapshotFetchError &&
      e.code === SnapshotFetchErrorCode.Rejected &&
      e.type.status === 403,
  );
  assert.equal(s.seen.length, 2);
});

test("a redirect to anything but a committed snapshot name is never written", async (t) => {
  const router = new Router();
  let location = "";
  router.add("GET", "/node/snapshot", () => ({ status: 308, headers: { location } }));
  const s = await serve(t, () => null, router);
  for (const bad of [
    "/node/snapshot/..%2F..%2Fevil.committed",
    "/node/snapshot/..%2Fsnapshot_100_101.committed",
    "/node/snapshot/snapshot_100_101",
    "/other/snapshot_100_101.committed",
    "http://127.0.0.1:1/node/snapshot/snapshot_100_101.committed",
    "https://[not-a-host/node/snapshot/snapshot_100_101.committed",
  ]) {
    location = bad;
    await assert.rejects(
      fetchSnapshot(options(s, { maxAttempts: 1 })),
      (e: unknown) =>
        e instanceof SnapshotFetchError && e.code === SnapshotFetchErrorCode.AttemptsExhausted,
      bad,
    );
  }
  assert.ok(!s.seen.some((l) => l.startsWith("HEAD")), s.seen.join("\n"));
  assert.deepEqual(readdirSync(s.destDir), []);
  assert.ok(!existsSync(join(s.destDir, "..", "evil.committed")));
});

test("fetchRecentSnapshotForJoin asks since the newest local snapshot and never rejects", async (t) => {
  const s = await serve(t);
  writeFileSync(join(s.destDir, "snapshot_100_101.committed"), "local copy");
  const logs: string[] = [];
  const base = { ...options(s, { log: (l) => logs.push(l) }), dirs: [s.destDir] };
  await fetchRecentSnapshotForJoin(base);
  assert.deepEqual(s.seen, ["GET /node/snapshot?since=100"]);
  assert.equal(readFileSync(join(s.destDir, BIG), "utf8"), "local copy");
  // An unreachable target is logged, and the join goes on.
  const closed = await serve(t);
  await closed.server.close();
  await fetchRecentSnapshotForJoin({
    ...base,
    targetAddress: `127.0.0.1:${closed.server.port}`,
    maxAttempts: 2,
  });
  assert.ok(
    logs.some((l) => l.includes("snapshot fetch failed, joining without it")),
    logs.join("\n"),
  );
});

test("an oversized answer is a retry, and the next attempt succeeds", async (t) => {
  // The redirect's body is bounded (64 KiB): a bigger one ends the attempt, not the fetch.
  const s = await serve(t, (_request, n) =>
    n === 1
      ? {
          status: 308,
          headers: { location: `/node/snapshot/${BIG}` },
          body: new Uint8Array(100 * 1024),
        }
      : null,
  );
  const logs: string[] = [];
  const path = await fetchSnapshot(options(s, { log: (l) => logs.push(l) }));
  assert.deepEqual(new Uint8Array(readFileSync(path!)), bigBytes);
  assert.ok(
    logs.some((l) => l.includes("attempt 1 failed") && l.includes("body over 65536 B")),
    logs.join("\n"),
  );
});

test("a local write that fails is retried like the network, then AttemptsExhausted", async (t) => {
  const s = await serve(t);
  const missing = join(s.destDir, "no-such-dir");
  await assert.rejects(
    fetchSnapshot(options(s, { destinationDir: missing, maxAttempts: 2 })),
    (e: unknown) =>
      e instanceof SnapshotFetchError &&
      e.code === SnapshotFetchErrorCode.AttemptsExhausted &&
      e.message.includes("ENOENT"),
  );
  assert.equal(s.seen.filter((l) => l.startsWith("HEAD")).length, 2);
});

test("fetchRecentSnapshotForJoin swallows fetch failures but never an AssertionError", async (t) => {
  const s = await serve(t);
  const logs: string[] = [];
  const base = { ...options(s, { log: (l) => logs.push(l) }), dirs: [s.destDir] };
  // maxAttempts comes from validated config; 0 is a bug, and the join must not go on past it.
  await assert.rejects(fetchRecentSnapshotForJoin({ ...base, maxAttempts: 0 }), AssertionError);
  assert.deepEqual(s.seen, [], "nothing was asked");
  assert.ok(!logs.some((l) => l.includes("joining without it")), logs.join("\n"));
});
