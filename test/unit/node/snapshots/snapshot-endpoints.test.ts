// The snapshot download endpoints (src/node/snapshot-endpoints.ts) through a Router with fake
// RpcRequests, dispatched as the server does (dispatchRequest turns HttpErrors into responses),
// on real files in a temporary directory: which snapshot the 308 points at (newest by seqno, not
// by name, across both directories, after `since`), byte ranges checked against the file's
// bytes, and that no request reaches a file that is not a committed snapshot of those dirs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  Router,
  NO_PARAMS,
  type RpcRequest,
  type RpcResponse,
} from "../../../../src/http/router.js";
import { answerOf, dispatchRequest } from "../../../../src/http/server.js";
import { registerSnapshotEndpoints } from "../../../../src/node/snapshots/snapshot-endpoints.js";
import { tempDir } from "../../../helpers/pki.js";

interface Rig {
  readonly router: Router;
  readonly root: string;
  readonly dir: string;
  readonly readOnlyDir: string;
  readonly files: Map<string, Uint8Array>;
  readonly logs: string[];
}

function put(rig: Rig, dir: string, name: string, size: number): Uint8Array {
  const bytes = new Uint8Array(randomBytes(size));
  writeFileSync(join(dir, name), bytes);
  rig.files.set(name, bytes);
  return bytes;
}

function makeRig(t: { after(f: () => void): void }, dirs?: (rig: Rig) => string[]): Rig {
  const tmp = tempDir("consortia-snap-ep-");
  t.after(tmp.cleanup);
  const dir = join(tmp.dir, "snapshots");
  const readOnlyDir = join(tmp.dir, "read-only");
  mkdirSync(dir);
  mkdirSync(readOnlyDir);
  const router = new Router();
  const rig: Rig = { router, root: tmp.dir, dir, readOnlyDir, files: new Map(), logs: [] };
  registerSnapshotEndpoints(router, {
    snapshotDirs: () => (dirs ?? (() => [dir, readOnlyDir]))(rig),
    log: (line) => rig.logs.push(line),
  });
  put(rig, dir, "snapshot_5_6.committed", 100);
  put(rig, dir, "snapshot_9_10.committed", 100);
  put(rig, dir, "snapshot_12_13.committed", 1000);
  // Never served: not committed, or not a snapshot name.
  put(rig, dir, "snapshot_40_41", 10);
  put(rig, dir, "snapshot_50_51.committed.partial", 10);
  put(rig, dir, "ledger_1-10.committed", 10);
  writeFileSync(join(tmp.dir, "secret.txt"), "do not serve");
  return rig;
}

async function call(
  rig: Rig,
  method: string,
  target: string,
  headers: Record<string, string> = {},
): Promise<RpcResponse> {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  const request: RpcRequest = {
    method,
    path,
    query,
    queryParams: new URLSearchParams(query),
    headers,
    body: new Uint8Array(0),
    params: NO_PARAMS,
    callerCertDer: null,
  };
  const log = (m: string, e?: unknown) => assert.fail(`${m}: ${String(e)}`);
  return answerOf(await dispatchRequest(request, rig.router, log));
}

function errorCode(response: RpcResponse): string {
  return (response.body as { error: { code: string } }).error.code;
}

function errorMessage(response: RpcResponse): string {
  return (response.body as { error: { message: string } }).error.message;
}

test("GET and HEAD /node/snapshot redirect to the newest committed snapshot by seqno", async (t) => {
  const rig = makeRig(t);
  for (const method of ["GET", "HEAD"]) {
    const r = await call(rig, method, "/node/snapshot");
    assert.equal(r.status, 308, method);
    // 12 > 9 although "snapshot_9..." sorts after "snapshot_12..." as text.
    assert.equal(r.headers?.["location"], "/node/snapshot/snapshot_12_13.committed");
  }
  // The read-only directory counts too.
  put(rig, rig.readOnlyDir, "snapshot_15_17.committed", 50);
  const r = await call(rig, "GET", "/node/snapshot");
  assert.equal(r.headers?.["location"], "/node/snapshot/snapshot_15_17.committed");
});

test("since selects only newer snapshots; none newer is 404, a bad since is 400", async (t) => {
  const rig = makeRig(t);
  const cases: [string, string][] = [
    ["0", "snapshot_12_13.committed"],
    ["8", "snapshot_12_13.committed"],
    ["11", "snapshot_12_13.committed"],
  ];
  for (const [since, name] of cases) {
    const r = await call(rig, "GET", `/node/snapshot?since=${since}`);
    assert.equal(r.status, 308, since);
    assert.equal(r.headers?.["location"], `/node/snapshot/${name}`);
  }
  for (const since of ["12", "13", "1000"]) {
    const r = await call(rig, "GET", `/node/snapshot?since=${since}`);
    assert.equal(r.status, 404, since);
    assert.equal(errorCode(r), "ResourceNotFound");
    assert.equal(errorMessage(r), `This node has no committed snapshot since ${since}.`);
  }
  for (const since of ["abc", "-1", "1.5", "", "1e3", "9".repeat(16)]) {
    const r = await call(rig, "GET", `/node/snapshot?since=${encodeURIComponent(since)}`);
    assert.equal(r.status, 400, `since=${since}`);
    assert.equal(errorCode(r), "InvalidQueryParameterValue");
  }
});

test("a node without committed snapshots answers 404; a missing directory is logged", async (t) => {
  const rig = makeRig(t, (r) => [join(r.root, "absent"), r.readOnlyDir]);
  const r = await call(rig, "GET", "/node/snapshot");
  assert.equal(r.status, 404);
  assert.equal(errorMessage(r), "This node has no committed snapshot since 0.");
  assert.ok(
    rig.logs.some((l) => l.includes("absent")),
    rig.logs.join("\n"),
  );
});

test("GET a snapshot serves the whole file with accept-ranges and content-length", async (t) => {
  const rig = makeRig(t);
  const r = await call(rig, "GET", "/node/snapshot/snapshot_12_13.committed");
  assert.equal(r.status, 200);
  assert.equal(r.headers?.["accept-ranges"], "bytes");
  assert.equal(r.headers?.["content-length"], "1000");
  assert.equal(r.headers?.["content-range"], undefined);
  assert.deepEqual(r.body, rig.files.get("snapshot_12_13.committed"));
  // A file in the read-only directory is served as well.
  const bytes = put(rig, rig.readOnlyDir, "snapshot_2_3.committed", 7);
  const ro = await call(rig, "GET", "/node/snapshot/snapshot_2_3.committed");
  assert.equal(ro.status, 200);
  assert.deepEqual(ro.body, bytes);
});

test("Range requests answer 206 with exactly the asked bytes", async (t) => {
  const rig = makeRig(t);
  const file = rig.files.get("snapshot_12_13.committed")!;
  const cases: [string, number, number][] = [
    ["bytes=0-0", 0, 0],
    ["bytes=10-19", 10, 19],
    ["bytes=990-", 990, 999],
    ["bytes=0-", 0, 999],
    ["bytes=999-999", 999, 999],
    ["bytes=500-5000", 500, 999], // an end past the file is clamped
    ["bytes=-5", 995, 999], // the last 5 bytes
    ["bytes=-5000", 0, 999],
  ];
  for (const [range, start, end] of cases) {
    const r = await call(rig, "GET", "/node/snapshot/snapshot_12_13.committed", { range });
    assert.equal(r.status, 206, range);
    assert.equal(r.headers?.["content-range"], `bytes ${start}-${end}/1000`, range);
    assert.equal(r.headers?.["content-length"], String(end - start + 1), range);
    assert.equal(r.headers?.["accept-ranges"], "bytes");
    assert.deepEqual(r.body, file.subarray(start, end + 1), range);
  }
});

test("an unsatisfiable range is 416 with content-range */total; a malformed one is 400", async (t) => {
  const rig = makeRig(t);
  for (const range of ["bytes=1000-", "bytes=1000-2000", "bytes=5000-5001", "bytes=-0"]) {
    const r = await call(rig, "GET", "/node/snapshot/snapshot_12_13.committed", { range });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers?.["content-range"], "bytes */1000", range);
    assert.equal(errorCode(r), "InvalidHeaderValue");
  }
  for (const range of ["bytes=a-b", "items=0-1", "bytes=0-1,3-4", "bytes=5-2", "bytes=-", "0-1"]) {
    const r = await call(rig, "GET", "/node/snapshot/snapshot_12_13.committed", { range });
    assert.equal(r.status, 400, range);
    assert.equal(errorCode(r), "InvalidHeaderValue", range);
  }
});

test("HEAD gives the headers of GET, with content-length of the whole file or range", async (t) => {
  const rig = makeRig(t);
  const head = await call(rig, "HEAD", "/node/snapshot/snapshot_12_13.committed");
  assert.equal(head.status, 200);
  assert.equal(head.headers?.["content-length"], "1000");
  assert.equal(head.headers?.["accept-ranges"], "bytes");
  const ranged = await call(rig, "HEAD", "/node/snapshot/snapshot_12_13.committed", {
    range: "bytes=100-199",
  });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers?.["content-range"], "bytes 100-199/1000");
  assert.equal(ranged.headers?.["content-length"], "100");
});

test("only committed snapshot names of the snapshot dirs are served: no traversal", async (t) => {
  const rig = makeRig(t);
  // A directory with a committed name is not a file.
  mkdirSync(join(rig.dir, "snapshot_70_71.committed"));
  // The same name as a served file, one level up: must not be reachable.
  writeFileSync(join(rig.root, "snapshot_80_81.committed"), "outside");
  const paths = [
    "/node/snapshot/snapshot_12_13.committed/../../secret.txt",
    "/node/snapshot/snapshot_1_2.committed/../../etc",
    "/node/snapshot/..%2Fsecret.txt",
    "/node/snapshot/..%2F..%2Fetc%2Fpasswd",
    "/node/snapshot/%2E%2E%2Fsecret.txt",
    "/node/snapshot/..%2Fsnapshot_80_81.committed",
    "/node/snapshot/snapshot_12_13.committed%2F..%2F..%2Fsecret.txt",
    "/node/snapshot/snapshot_80_81.committed",
    "/node/snapshot/snapshot_70_71.committed",
    "/node/snapshot/..",
    "/node/snapshot/%2Fetc%2Fpasswd",
    "/node/snapshot/snapshot_40_41",
    "/node/snapshot/snapshot_50_51.committed.partial",
    "/node/snapshot/ledger_1-10.committed",
    "/node/snapshot/snapshot_12_13.committed%00",
    "/node/snapshot/snapshot_99_100.committed",
  ];
  for (const path of paths) {
    for (const method of ["GET", "HEAD"]) {
      const r = await call(rig, method, path);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(errorCode(r), "ResourceNotFound", `${method} ${path}`);
    }
  }
});
