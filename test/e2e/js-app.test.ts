/**
 * End-to-end: a JS app deployed by governance on real node processes. `consortia sandbox
 * --js-app-bundle DIR` (two nodes) opens the service and deploys test/fixtures/js-apps/logging
 * (app.json + src/, modules importing each other); a user then writes private records (JSON) and
 * public records (text, path parameter) through the BACKUP, which forwards the writes to the
 * primary, and reads them back from both nodes; a missing id is 404 ResourceNotFound; the
 * historical endpoint reads the record as its transaction wrote it (with a receipt) once it is
 * committed; `ccf.crypto` signs and verifies; the member_cert endpoint answers 401 to the user
 * and 200 to a member; /app/api lists the app's endpoints; /gov/service/javascript-app and
 * javascript-modules show the app. Then `consortia app deploy --remove` (voted by two members
 * with `consortia gov vote`) removes the app, and its paths answer 404 on both nodes. The oracle
 * is the documented CCF behaviour of JS apps (ccf-compatibility.md §9) and the fixture app's own
 * logic.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { httpsRequest, type Reply, type Tls } from "../helpers/https.js";
import { freePortBlock, isAlive } from "../helpers/network.js";

const APP_DIR = join(import.meta.dirname, "..", "fixtures", "js-apps", "logging");

function https(url: string, tls: Tls, method: string, body?: string, type?: string) {
  return httpsRequest(url, tls, method, body, type === undefined ? {} : { "content-type": type });
}

function httpsWith(url: string, tls: Tls, headers: Record<string, string>) {
  return httpsRequest(url, tls, "GET", undefined, headers);
}

/** Repeats `call` until `done` holds for its reply (replication to the backup), up to ~5 s. */
async function until(call: () => Promise<Reply>, done: (r: Reply) => boolean): Promise<Reply> {
  let reply = await call();
  for (let i = 0; i < 50 && !done(reply); i++) {
    await new Promise((r) => setTimeout(r, 100));
    reply = await call();
  }
  return reply;
}

async function killNode(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

function pidsOf(workspace: string, nodes: number): number[] {
  const pids: number[] = [];
  for (let i = 0; i < nodes; i++) {
    try {
      const text = readFileSync(join(workspace, `sandbox_${i}`, "node.pid"), "utf8");
      if (/^\d+\s*$/.test(text)) pids.push(Number(text));
    } catch (err: unknown) {
      if ((err as { code?: string }).code !== "ENOENT") throw err;
    }
  }
  return pids;
}

/** member0 proposes remove_js_app with `app deploy`; member0 and member1 vote for it. */
function removeApp(workspace: string, node: string): void {
  const deploy = runCli(["app", "deploy", "--remove", "--workspace", workspace, "--node", node]);
  assert.equal(deploy.status, 0, deploy.stderr);
  const proposal = JSON.parse(deploy.stdout) as { proposalId: string; proposalState: string };
  assert.equal(proposal.proposalState, "Open");
  const common = join(workspace, "sandbox_common");
  for (const member of ["member0", "member1"]) {
    const vote = runCli([
      ...["gov", "vote", "--proposal-id", proposal.proposalId, "--accept"],
      ...["--workspace", workspace, "--node", node],
      ...[
        "--cert",
        join(common, `${member}_cert.pem`),
        "--key",
        join(common, `${member}_privk.pem`),
      ],
    ]);
    assert.equal(vote.status, 0, vote.stderr);
  }
}

test("a JS app deployed by governance serves through a backup and is removed", async () => {
  const workspace = mkdtempSync(join(tmpdir(), "consortia-jsapp-"));
  const port = await freePortBlock(2);
  let pids: number[] = [];
  try {
    const run = runCli([
      ...["sandbox", "--no-wait", "--nodes", "2", "--workspace", workspace],
      ...["--port", String(port), "--sig-ms-interval", "50", "--js-app-bundle", APP_DIR],
    ]);
    pids = pidsOf(workspace, 2);
    assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /Deployed the JS app/);
    const common = join(workspace, "sandbox_common");
    const read = (name: string) => readFileSync(join(common, name), "utf8");
    const ca = read("service_cert.pem");
    const user: Tls = { ca, cert: read("user0_cert.pem"), key: read("user0_privk.pem") };
    const member: Tls = { ca, cert: read("member0_cert.pem"), key: read("member0_privk.pem") };
    const primary = `https://127.0.0.1:${port}`;
    const backup = `https://127.0.0.1:${port + 1}`;

    // Writes through the backup are forwarded to the primary.
    const post = await until(
      () => https(`${backup}/app/log/private`, user, "POST", '{"id": 7, "msg": "hello"}'),
      (r) => r.status !== 404,
    );
    assert.deepEqual({ status: post.status, body: post.body }, { status: 200, body: "true" });
    assert.match(String(post.headers["content-type"]), /application\/json/);
    const writeTxId = String(post.headers["x-ms-ccf-transaction-id"]);
    assert.match(writeTxId, /^\d+\.\d+$/);
    const put = await https(
      `${backup}/app/log/public/abc`,
      user,
      "PUT",
      "plain text",
      "text/plain",
    );
    assert.equal(put.status, 204, put.body);

    for (const node of [primary, backup]) {
      const got = await until(
        () => https(`${node}/app/log/private?id=7`, user, "GET"),
        (r) => r.status === 200,
      );
      assert.deepEqual(JSON.parse(got.body), { msg: "hello" });
      const text = await until(
        () => https(`${node}/app/log/public/abc`, { ca }, "GET"),
        (r) => r.status === 200,
      );
      assert.equal(text.body, "plain text");
      assert.match(String(text.headers["content-type"]), /text\/plain/);
    }
    // Historical: the record as its transaction wrote it, once committed, with a receipt.
    const historical = await until(
      () =>
        httpsWith(`${backup}/app/log/private/historical?id=7`, user, {
          "x-ms-ccf-transaction-id": writeTxId,
        }),
      (r) => r.status === 200,
    );
    assert.equal(historical.status, 200, historical.body);
    const past = JSON.parse(historical.body) as Record<string, unknown>;
    assert.equal(past.msg, "hello");
    assert.equal(past.transactionId, writeTxId);
    assert.match(String(past.receiptNodeId), /^[0-9a-f]{64}$/);
    const noHeader = await https(`${primary}/app/log/private/historical?id=7`, user, "GET");
    assert.equal(noHeader.status, 400, noHeader.body);

    const missing = await https(`${primary}/app/log/private?id=8`, user, "GET");
    assert.equal(missing.status, 404);
    assert.equal(
      (JSON.parse(missing.body) as { error: { code: string } }).error.code,
      "ResourceNotFound",
    );

    const echo = await https(`${backup}/app/echo?a=1&b=x%20y`, { ca }, "GET");
    assert.equal(echo.status, 200);
    assert.equal(echo.headers["x-echo"], "1");
    assert.deepEqual(JSON.parse(echo.body), {
      query: "a=1&b=x%20y",
      path: "/app/echo",
      route: "/app/echo",
      method: "GET",
    });

    const signed = await https(`${backup}/app/signed`, { ca }, "POST", "to sign", "text/plain");
    assert.deepEqual(JSON.parse(signed.body), { verified: true, signatureBytes: 64 });

    const denied = await https(`${primary}/app/admin`, user, "GET");
    assert.equal(denied.status, 401);
    assert.equal(
      (JSON.parse(denied.body) as { error: { code: string } }).error.code,
      "InvalidAuthenticationInfo",
    );
    const allowed = await https(`${primary}/app/admin`, member, "GET");
    assert.equal(allowed.status, 200, allowed.body);

    const api = JSON.parse((await https(`${primary}/app/api`, { ca }, "GET")).body) as {
      paths: Record<string, Record<string, { summary?: string }>>;
    };
    assert.equal(api.paths["/app/log/private"]?.post?.summary, "Record a private message");
    assert.ok(api.paths["/app/log/public/{id}"]?.put !== undefined);
    assert.equal(api.paths["/app/echo"], undefined, "openapi_hidden endpoints are not listed");

    const view = await https(
      `${primary}/gov/service/javascript-app?api-version=2024-07-01`,
      { ca },
      "GET",
    );
    const endpoints = (
      JSON.parse(view.body) as { endpoints: Record<string, Record<string, unknown>> }
    ).endpoints;
    assert.deepEqual(endpoints["/admin"]?.GET, {
      jsModule: "/endpoints.js",
      jsFunction: "admin",
      forwardingRequired: "sometimes",
      redirectionStrategy: "none",
      authnPolicies: ["member_cert"],
      mode: "readonly",
      openApi: {},
    });

    const gov = (path: string) => https(`${primary}${path}?api-version=2024-07-01`, { ca }, "GET");
    const modules = JSON.parse((await gov("/gov/service/javascript-modules")).body) as {
      value: { moduleName: string }[];
    };
    assert.deepEqual(
      modules.value.map((m) => m.moduleName),
      ["/endpoints.js", "/lib/tables.js"],
    );
    const source = await gov(
      `/gov/service/javascript-modules/${encodeURIComponent("/lib/tables.js")}`,
    );
    assert.equal(source.status, 200);
    assert.equal(source.body, readFileSync(join(APP_DIR, "src", "lib", "tables.js"), "utf8"));

    removeApp(workspace, primary);
    for (const node of [primary, backup]) {
      const gone = await until(
        () => https(`${node}/app/log/public/abc`, { ca }, "GET"),
        (r) => r.status === 404,
      );
      assert.equal(gone.status, 404, gone.body);
      const admin = await https(`${node}/app/admin`, member, "GET");
      assert.equal(admin.status, 404, admin.body);
      assert.match(admin.body, /ResourceNotFound/);
    }
  } finally {
    for (const pid of pids) await killNode(pid);
    rmSync(workspace, { recursive: true, force: true });
  }
});
