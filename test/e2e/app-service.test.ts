/**
 * End-to-end smoke test of app services (issue #14, ADR 0005) with real processes: a one-node
 * sandbox, an app server started in this process with startAppServer (its own certificate from
 * openssl, self-signed and passed as ca_cert; node clients must present certificates issued by
 * the service certificate), and set_app_service proposed and voted through with `consortia gov`.
 * A user then writes a record through the node, reads it back, counts the map; the write's
 * answer names its transaction, which commits and has an ordinary receipt whose claims digest
 * is the one the handler set. The oracle is the test bundle's own logic, the receipt endpoint
 * and the service's tx status, and the server's view of the caller (user_cert, as in-node).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { packageIdOf, startAppServer, type AppServer } from "../../src/appservice/server.js";
import { runCli } from "../helpers/cli.js";
import { httpsRequest, type Reply, type Tls } from "../helpers/https.js";
import { freePortBlock, isAlive } from "../helpers/network.js";

const APP_SOURCE = `
const records = () => ccf.kv["public:records"];
export function put(request) {
  const body = request.body.json();
  records().set(ccf.strToBuf(String(body.id)), ccf.strToBuf(body.msg));
  ccf.rpc.setClaimsDigest(ccf.crypto.digest("SHA-256", ccf.strToBuf(body.msg)));
  return { body: { ok: true, policy: request.caller.policy } };
}
export function get(request) {
  const value = records().get(ccf.strToBuf(request.params.id));
  if (value === undefined) return { statusCode: 404, body: { error: { code: "ResourceNotFound", message: "no record" } } };
  return { body: ccf.bufToStr(value) };
}
export function count() {
  return { body: { count: records().size } };
}
`;

function endpoint(fn: string, mode: string) {
  return {
    js_module: "app.js",
    js_function: fn,
    forwarding_required: "sometimes",
    authn_policies: ["user_cert"],
    mode,
    openapi: {},
  };
}

/** The bundle file's bytes, as `consortia app serve --bundle FILE` would read them. */
export function testBundle(): Uint8Array {
  const bundle = {
    metadata: {
      endpoints: {
        "/records": { post: endpoint("put", "readwrite") },
        "/records/{id}": { get: endpoint("get", "readonly") },
        "/records-count": { get: endpoint("count", "readonly") },
      },
    },
    modules: [{ name: "app.js", module: APP_SOURCE }],
  };
  return new TextEncoder().encode(JSON.stringify(bundle));
}

async function until(call: () => Promise<Reply>, done: (r: Reply) => boolean): Promise<Reply> {
  let reply = await call();
  for (let i = 0; i < 50 && !done(reply); i++) {
    if (process.env.APP_SERVICE_LOG) console.log(reply.status, reply.body);
    await new Promise((r) => setTimeout(r, 100));
    reply = await call();
  }
  return reply;
}

function serverIdentity(dir: string): { cert: string; key: string } {
  const key = join(dir, "server_privk.pem");
  const cert = join(dir, "server_cert.pem");
  execFileSync("openssl", [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    ...["-subj", "/CN=app server", "-days", "1", "-keyout", key, "-out", cert],
  ]);
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
}

function passProposal(workspace: string, node: string, action: string, args: object): void {
  const run = runCli([
    ...["gov", "propose", "--workspace", workspace, "--node", node],
    ...["--action", action, "--args", JSON.stringify(args)],
  ]);
  assert.equal(run.status, 0, run.stderr);
  const proposal = JSON.parse(run.stdout) as { proposalId: string; proposalState: string };
  if (proposal.proposalState === "Accepted") return;
  const vote = runCli([
    ...["gov", "vote", "--proposal-id", proposal.proposalId, "--accept"],
    ...["--workspace", workspace, "--node", node],
  ]);
  assert.equal(vote.status, 0, vote.stderr);
  assert.match(vote.stdout, /Accepted/);
}

function sandboxPid(workspace: string): number | null {
  try {
    const text = readFileSync(join(workspace, "sandbox_0", "node.pid"), "utf8");
    return /^\d+\s*$/.test(text) ? Number(text) : null;
  } catch (err: unknown) {
    if ((err as { code?: string }).code === "ENOENT") return null;
    throw err;
  }
}

async function killNode(pid: number | null): Promise<void> {
  if (pid === null || !isAlive(pid)) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) process.kill(pid, "SIGKILL");
}

test("an app served by its own process writes and reads through the node, in whole, receipted transactions", async () => {
  const workspace = mkdtempSync(join(tmpdir(), "consortia-appsvc-"));
  const port = await freePortBlock(1);
  let server: AppServer | undefined;
  let pid: number | null = null;
  try {
    const run = runCli([
      ...["sandbox", "--no-wait", "--nodes", "1", "--members", "1", "--workspace", workspace],
      ...["--port", String(port), "--sig-ms-interval", "50"],
    ]);
    pid = sandboxPid(workspace);
    assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
    const common = join(workspace, "sandbox_common");
    const read = (name: string) => readFileSync(join(common, name), "utf8");
    const serviceCert = read("service_cert.pem");
    const user: Tls = {
      ca: serviceCert,
      cert: read("user0_cert.pem"),
      key: read("user0_privk.pem"),
    };
    const node = `https://127.0.0.1:${port}`;

    const bundle = testBundle();
    const packageId = packageIdOf(bundle);
    assert.equal(packageId, createHash("sha256").update(bundle).digest("hex"));
    const identity = serverIdentity(workspace);
    server = await startAppServer({
      bundle,
      packageId,
      host: "127.0.0.1",
      port: port + 200,
      tlsCert: identity.cert,
      tlsKey: identity.key,
      serviceCert,
      log: (line) => process.env.APP_SERVICE_LOG && console.log(`[server] ${line}`),
    });
    const address = `127.0.0.1:${server.port}`;
    passProposal(workspace, node, "set_app_service", {
      package_id: packageId,
      address,
      ca_cert: identity.cert,
    });
    const listed = await httpsRequest(
      `${node}/gov/service/app-services?api-version=2024-07-01`,
      user,
      "GET",
    );
    assert.equal(listed.status, 200, listed.body);
    const services = JSON.parse(listed.body) as { appServices: unknown[] };
    assert.deepEqual(services.appServices, [
      { packageId, address, caCert: identity.cert, timeoutMs: 5000 },
    ]);

    // The node connects and checks the bundle; GET /node/app-services shows it ready.
    const states = await until(
      () => httpsRequest(`${node}/node/app-services`, user, "GET"),
      (r) => r.status === 200 && r.body.includes('"ready"'),
    );
    assert.deepEqual(JSON.parse(states.body), {
      appServices: [{ packageId, address, state: "ready", reason: null }],
    });
    const post = await until(
      () => httpsRequest(`${node}/app/records`, user, "POST", '{"id": 7, "msg": "hello"}'),
      (r) => r.status !== 404 && r.status !== 503,
    );
    assert.equal(post.status, 200, post.body);
    assert.deepEqual(JSON.parse(post.body), { ok: true, policy: "user_cert" });
    const txId = String(post.headers["x-ms-ccf-transaction-id"]);
    assert.match(txId, /^\d+\.\d+$/);

    const got = await httpsRequest(`${node}/app/records/7`, user, "GET");
    assert.deepEqual({ status: got.status, body: got.body }, { status: 200, body: "hello" });
    assert.match(String(got.headers["x-ms-ccf-transaction-id"]), /^\d+\.\d+$/);
    const missing = await httpsRequest(`${node}/app/records/8`, user, "GET");
    assert.equal(missing.status, 404);
    const count = await httpsRequest(`${node}/app/records-count`, user, "GET");
    assert.deepEqual(JSON.parse(count.body), { count: 1 });
    // Authentication happens at the node: no client certificate, no call.
    const anonymous = await httpsRequest(`${node}/app/records/7`, { ca: serviceCert }, "GET");
    assert.equal(anonymous.status, 401);

    const status = await until(
      () => httpsRequest(`${node}/node/tx?transaction_id=${txId}`, user, "GET"),
      (r) => r.status === 200 && JSON.parse(r.body).status === "Committed",
    );
    assert.equal(JSON.parse(status.body).status, "Committed", status.body);
    const receipt = await until(
      () => httpsRequest(`${node}/app/receipt?transaction_id=${txId}`, user, "GET"),
      (r) => r.status === 200,
    );
    assert.equal(receipt.status, 200, receipt.body);
    // The handler's claims digest (SHA-256 of the message) is the receipt's.
    const leaf = (JSON.parse(receipt.body) as { leaf_components: { claims_digest: string } })
      .leaf_components;
    assert.equal(leaf.claims_digest, createHash("sha256").update("hello").digest("hex"));
  } finally {
    await server?.close();
    await killNode(pid);
    rmSync(workspace, { recursive: true, force: true });
  }
});
