/**
 * End-to-end faults of an app service (issue #14 item 4, docs/adr/0005-app-services.md), on one
 * sandbox of real processes: `consortia sandbox --no-wait --app-service BUNDLE` with a tiny
 * bundle (records PUT/GET, and a POST /slow that busy-waits before it writes). In order:
 *  - a write through the server answers with a transaction id and is read back;
 *  - slower than its timeout: set_app_service again with timeout_ms 300 (`consortia app
 *    set-service --timeout-ms 300`), a handler that takes 1,200 ms gets 504 AppServiceTimeout, and its write is never
 *    applied (not even once the late result arrives); the node keeps answering meanwhile;
 *  - server down (SIGTERM to the PID the sandbox wrote): 503 AppServiceUnavailable, node healthy;
 *  - a handler that throws: 500 InternalError, as in the nodes;
 *  - restarting: `consortia app serve` started again by hand, and the node answers through it
 *    again with no governance action;
 *  - a server whose certificate the registered ca_cert did not issue: TLS refused, 503
 *    AppServiceUnavailable;
 *  - wrong package: a server for another bundle on that address: 503 AppServicePackageMismatch;
 *  - remove_app_service (`consortia app remove-service`): the routes are gone (404).
 * A second test starts a waiting sandbox (no --no-wait) with an app server for an app
 * directory (app.json + src/; the sandbox writes and serves its bundle file), calls it, and
 * checks that Ctrl+C (SIGINT) stops the server with the nodes. Oracles: the error codes and statuses of the
 * design, the records the app wrote (read back through the node), the PIDs. Bounded: every
 * wait has a deadline; every process is stopped by PID in `finally`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  APP_SERVER_PORT_OFFSET,
  appServerPid,
  govern,
  ok,
  sandboxPids,
  serveByHand,
  sha256Hex,
  startServiceSandbox,
  stopPids,
  type ServerRun,
  voteThrough,
  type ServiceSandbox,
} from "../helpers/app-service.js";
import { CLI_ARGV, runCli } from "../helpers/cli.js";
import { makePki } from "../helpers/pki.js";
import { ecPrivateKeyPem } from "../../src/crypto/identity.js";
import { httpsRequest, type Reply } from "../helpers/https.js";
import { freePortBlock, isAlive, waitFor } from "../helpers/network.js";

const MODULE = `
function q(request, name) {
  const m = new RegExp("(?:^|&)" + name + "=([^&]*)").exec(request.query);
  return m === null ? undefined : decodeURIComponent(m[1]);
}
export function put(request) {
  ccf.kv["records"].set(ccf.strToBuf(request.params.id), ccf.strToBuf(request.body.text()));
  return { body: { written: request.params.id } };
}
export function get(request) {
  const value = ccf.kv["records"].get(ccf.strToBuf(request.params.id));
  if (value === undefined) {
    return { statusCode: 404, body: { error: { code: "NoSuchRecord", message: "none" } } };
  }
  return { body: { value: ccf.bufToStr(value) } };
}
export function fail(request) {
  throw new Error("the handler failed");
}
export function slow(request) {
  ccf.enableUntrustedDateTime(true);
  const end = Date.now() + Number(q(request, "ms"));
  while (Date.now() < end) {}
  ccf.kv["records"].set(ccf.strToBuf(request.params.id), ccf.strToBuf("slow"));
  return { body: { written: request.params.id } };
}
`;

function endpoint(fn: string, mode: "readwrite" | "readonly") {
  return {
    js_module: "records.js",
    js_function: fn,
    forwarding_required: "sometimes",
    authn_policies: ["user_cert"],
    mode,
    openapi: {},
  };
}

/** The fault bundle; `variant` changes its bytes (and so its package id), not its behaviour. */
function writeBundle(file: string, variant = ""): void {
  const bundle = {
    metadata: {
      endpoints: {
        "/records/{id}": { put: endpoint("put", "readwrite"), get: endpoint("get", "readonly") },
        "/slow/{id}": { post: endpoint("slow", "readwrite") },
        "/fail": { post: endpoint("fail", "readwrite") },
      },
    },
    modules: [{ name: "records.js", module: MODULE + variant }],
  };
  writeFileSync(file, JSON.stringify(bundle));
}

const call = (s: ServiceSandbox, method: string, path: string, body?: string): Promise<Reply> =>
  httpsRequest(
    `${s.url}${path}`,
    s.tls,
    method,
    body,
    body === undefined
      ? {}
      : {
          "content-type": "text/plain",
        },
  );

function errorCode(reply: Reply): string | undefined {
  try {
    return (JSON.parse(reply.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** Polls GET `path` until its status and error code are the ones expected. */
async function until(s: ServiceSandbox, path: string, status: number, code?: string) {
  return waitFor(`GET ${path} -> ${status} ${code ?? ""}`, 20_000, async () => {
    const reply = await call(s, "GET", path);
    const match = reply.status === status && (code === undefined || errorCode(reply) === code);
    return match ? reply : undefined;
  });
}

async function nodeIsHealthy(s: ServiceSandbox): Promise<void> {
  const started = Date.now();
  const commit = await httpsRequest(`${s.url}/node/commit`, { ca: s.tls.ca }, "GET");
  assert.equal(commit.status, 200, commit.body);
  assert.ok(Date.now() - started < 1_000, "the node answered /node/commit slowly");
}

test(
  "app service faults: timeout, server down, restart, wrong package, removal",
  {
    timeout: 240_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "consortia-app-service-faults-"));
    const workspace = join(dir, "workspace");
    const bundle = join(dir, "bundle.json");
    const other = join(dir, "other-bundle.json");
    writeBundle(bundle);
    writeBundle(other, "// another package\n");
    const port = await freePortBlock(1, [APP_SERVER_PORT_OFFSET]);
    const servers: ServerRun[] = [];
    try {
      const s = startServiceSandbox({ workspace, port, nodes: 1, bundle });

      // Through the server: a write with a transaction id, read back.
      const written = await call(s, "PUT", "/app/records/a", "alpha");
      assert.equal(written.status, 200, written.body);
      assert.match(String(written.headers["x-ms-ccf-transaction-id"]), /^\d+\.\d+$/);
      const read = await call(s, "GET", "/app/records/a");
      assert.equal(read.status, 200, read.body);
      assert.deepEqual(JSON.parse(read.body), { value: "alpha" });

      // A handler that throws: 500 InternalError, as in the nodes.
      const failed = await call(s, "POST", "/app/fail", "");
      assert.equal(failed.status, 500, failed.body);
      assert.equal(errorCode(failed), "InternalError");

      // Slower than its timeout: 504, nothing applied, the node answers meanwhile.
      const caCert = readFileSync(join(s.serverDir, "ca_cert.pem"), "utf8");
      const registration = { package_id: s.packageId, address: s.address, ca_cert: caCert };
      const where = ["--workspace", workspace, "--node", s.url];
      const setShort = ok(
        runCli([
          ...["app", "set-service", "--bundle", bundle, "--address", s.address, ...where],
          ...["--ca-cert", join(s.serverDir, "ca_cert.pem"), "--timeout-ms", "300"],
        ]),
        "app set-service",
      );
      voteThrough(s, (JSON.parse(setShort) as { proposalId: string }).proposalId);
      // A changed row makes the node connect again and fetch the bundle before it routes.
      await until(s, "/app/records/a", 200);
      const slow = call(s, "POST", "/app/slow/s1?ms=1200", "");
      await new Promise((r) => setTimeout(r, 100));
      await nodeIsHealthy(s);
      const timedOut = await slow;
      assert.equal(timedOut.status, 504, timedOut.body);
      assert.equal(errorCode(timedOut), "AppServiceTimeout");
      await new Promise((r) => setTimeout(r, 1_500)); // the late result has arrived by now
      const none = await until(s, "/app/records/s1", 404, "NoSuchRecord");
      assert.equal(errorCode(none), "NoSuchRecord");
      govern(s, "set_app_service", registration);
      await until(s, "/app/records/a", 200);

      // Server down: 503 AppServiceUnavailable; the node stays healthy.
      const serverPid = appServerPid(workspace);
      assert.ok(serverPid !== undefined && isAlive(serverPid));
      await stopPids([serverPid]);
      const down = await until(s, "/app/records/a", 503, "AppServiceUnavailable");
      assert.equal(errorCode(down), "AppServiceUnavailable");
      await nodeIsHealthy(s);

      // Restarting: the same server again, used with no governance action.
      const again = await serveByHand(s, bundle);
      servers.push(again);
      const back = await until(s, "/app/records/a", 200);
      assert.deepEqual(JSON.parse(back.body), { value: "alpha" });
      const afterRestart = await call(s, "PUT", "/app/records/b", "beta");
      assert.equal(afterRestart.status, 200, afterRestart.body);
      assert.equal(await again.stop(), 0);

      // A server whose certificate does not chain to the registered ca_cert: TLS refused, 503.
      const stranger = await makePki({ subject: "CN=Another CA" });
      const strangerFiles = {
        cert: join(dir, "stranger_cert.pem"),
        key: join(dir, "stranger.pem"),
      };
      writeFileSync(strangerFiles.cert, stranger.nodeCertPem);
      writeFileSync(strangerFiles.key, ecPrivateKeyPem(stranger.nodeKeys.privateKey));
      const untrusted = await serveByHand(s, bundle, strangerFiles);
      servers.push(untrusted);
      await until(s, "/app/records/a", 503, "AppServiceUnavailable");
      assert.equal(await untrusted.stop(), 0);

      // Wrong package on the registered address.
      const wrong = await serveByHand(s, other);
      servers.push(wrong);
      await until(s, "/app/records/a", 503, "AppServicePackageMismatch");
      await nodeIsHealthy(s);

      // Removal: the routes are gone.
      const remove = ["app", "remove-service", "--bundle", bundle, ...where];
      const removal = ok(runCli(remove), "app remove-service");
      voteThrough(s, (JSON.parse(removal) as { proposalId: string }).proposalId);
      const gone = await call(s, "GET", "/app/records/a");
      assert.equal(gone.status, 404, gone.body);
      assert.notEqual(errorCode(gone), "NoSuchRecord");
    } finally {
      for (const server of servers) await server.stop();
      await stopPids(sandboxPids(workspace, 1));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

function userTls(workspace: string) {
  const common = join(workspace, "sandbox_common");
  const read = (name: string) => readFileSync(join(common, name), "utf8");
  return {
    ca: read("service_cert.pem"),
    cert: read("user0_cert.pem"),
    key: read("user0_privk.pem"),
  };
}

test(
  "a waiting sandbox serves an app directory and stops its app server on SIGINT",
  {
    timeout: 120_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "consortia-app-service-sigint-"));
    // An app directory (app.json + src/): the sandbox writes its bundle file and serves that.
    const appDir = join(dir, "app");
    mkdirSync(join(appDir, "src"), { recursive: true });
    writeBundle(join(dir, "bundle.json"));
    const { metadata, modules } = JSON.parse(readFileSync(join(dir, "bundle.json"), "utf8")) as {
      metadata: unknown;
      modules: { name: string; module: string }[];
    };
    writeFileSync(join(appDir, "app.json"), JSON.stringify(metadata));
    writeFileSync(join(appDir, "src", modules[0]!.name), modules[0]!.module);
    const port = await freePortBlock(1, [APP_SERVER_PORT_OFFSET]);
    const workspace = join(dir, "workspace");
    const args = ["sandbox", "--nodes", "1", "--workspace", workspace];
    args.push("--port", String(port), "--app-service", appDir);
    const sandbox = spawn(process.execPath, [...CLI_ARGV, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    sandbox.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    sandbox.stderr.on("data", (c: Buffer) => (out += c.toString("utf8")));
    const exited = new Promise<number | null>((r) => sandbox.once("exit", (code) => r(code)));
    let serverPid: number | undefined;
    try {
      await waitFor("the sandbox to be ready", 90_000, async () =>
        out.includes("Press Ctrl+C") ? true : undefined,
      );
      serverPid = Number(/is serving at \S+ \(PID (\d+)\)/.exec(out)?.[1]);
      assert.ok(isAlive(serverPid), out);
      const served = readFileSync(join(workspace, "sandbox_app_service", "bundle.json"));
      assert.match(out, new RegExp(`package id ${sha256Hex(served)}, registered`));
      const url = `https://127.0.0.1:${port}/app/records/none`;
      const reply = await httpsRequest(url, userTls(workspace), "GET");
      assert.equal(reply.status, 404, reply.body);
      assert.equal(errorCode(reply), "NoSuchRecord");
      sandbox.kill("SIGINT");
      assert.equal(await exited, 0, out);
      assert.match(out, /App server stopped/);
      assert.equal(isAlive(serverPid), false);
    } finally {
      if (sandbox.exitCode === null) sandbox.kill("SIGKILL");
      if (serverPid !== undefined && isAlive(serverPid)) process.kill(serverPid, "SIGKILL");
      await stopPids(sandboxPids(workspace, 1)); // the node writes its node.pid itself
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
