/**
 * End-to-end: the developer's path with @microsoft/ccf-app 6.0.1 on a real node process.
 * `consortia app new` scaffolds a TypeScript app, its own build (esbuild + ccf-build-bundle, run
 * with this repository's node_modules) writes dist/bundle.json, `consortia app deploy --bundle`
 * proposes it on a sandbox and two members vote it in; a user then PUTs and GETs an item (404
 * ResourceNotFound before). Then our fixture app written against ccf-app
 * (test/fixtures/js-apps/ccf-app) replaces it the same way and is called as a client would:
 * typedKv records, a historical read with its receipt once committed, a getStateRange over the
 * seqnos that wrote the record (202 until the range is committed), setApplyWrites(true) on a
 * 409 and setApplyWrites(false) on a 200,
 * ccf-app's crypto aliases, consensus, and snp_attestation refusing an empty report. The oracle
 * is ccf-app's documented API and CCF's JS receipt format (ccf-compatibility.md §9).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { buildTsApp } from "../helpers/js-app-build.js";
import { httpsRequest as https, type Reply, type Tls } from "../helpers/https.js";
import { freePortBlock, isAlive } from "../helpers/network.js";

const REPO = join(import.meta.dirname, "..", "..");
const FIXTURE = join(REPO, "test", "fixtures", "js-apps", "ccf-app");

/** Repeats `call` until `done` holds for its reply, up to ~5 s. */
async function until(call: () => Promise<Reply>, done: (r: Reply) => boolean): Promise<Reply> {
  let reply = await call();
  for (let i = 0; i < 50 && !done(reply); i++) {
    await new Promise((r) => setTimeout(r, 100));
    reply = await call();
  }
  return reply;
}

/** member0 proposes set_js_app with `app deploy --bundle`; member0 and member1 vote for it. */
function deploy(workspace: string, node: string, bundle: string): void {
  const proposed = runCli([
    ...["app", "deploy", "--bundle", bundle],
    ...["--workspace", workspace, "--node", node],
  ]);
  assert.equal(proposed.status, 0, proposed.stderr);
  const proposal = JSON.parse(proposed.stdout) as { proposalId: string };
  const common = join(workspace, "sandbox_common");
  for (const member of ["member0", "member1"]) {
    const vote = runCli([
      ...["gov", "vote", "--proposal-id", proposal.proposalId, "--accept"],
      ...["--workspace", workspace, "--node", node],
      ...["--cert", join(common, `${member}_cert.pem`)],
      ...["--key", join(common, `${member}_privk.pem`)],
    ]);
    assert.equal(vote.status, 0, vote.stderr);
  }
}

function scaffoldAndBuild(dir: string): string {
  const app = join(dir, "hello-ccf");
  const created = runCli(["app", "new", "hello-ccf", "--dir", app]);
  assert.equal(created.status, 0, created.stderr);
  symlinkSync(join(REPO, "node_modules"), join(app, "node_modules"));
  const build = spawnSync(process.execPath, ["build.mjs"], { cwd: app, encoding: "utf8" });
  assert.equal(build.status, 0, `${build.stdout}\n${build.stderr}`);
  return join(app, "dist", "bundle.json");
}

async function startSandbox(workspace: string, port: number): Promise<number> {
  const run = runCli([
    ...["sandbox", "--no-wait", "--nodes", "1", "--workspace", workspace],
    ...["--port", String(port), "--sig-ms-interval", "50"],
  ]);
  assert.equal(run.status, 0, `sandbox failed:\n${run.stdout}\n${run.stderr}`);
  return Number(readFileSync(join(workspace, "sandbox_0", "node.pid"), "utf8"));
}

test("an app scaffolded by app new, and one written against ccf-app, deploy and serve", async () => {
  const dir = mkdtempSync(join(tmpdir(), "consortia-ccf-app-"));
  const workspace = join(dir, "workspace");
  const port = await freePortBlock(1);
  let pid = 0;
  try {
    const scaffoldBundle = scaffoldAndBuild(dir);
    pid = await startSandbox(workspace, port);
    const common = join(workspace, "sandbox_common");
    const read = (name: string) => readFileSync(join(common, name), "utf8");
    const ca = read("service_cert.pem");
    const user: Tls = { ca, cert: read("user0_cert.pem"), key: read("user0_privk.pem") };
    const node = `https://127.0.0.1:${port}`;

    deploy(workspace, node, scaffoldBundle);
    const missing = await until(
      () => https(`${node}/app/items/1`, user, "GET"),
      (r) => r.status !== 404 || r.body.includes("ResourceNotFound"),
    );
    assert.equal(missing.status, 404, missing.body);
    assert.match(missing.body, /"code":"ResourceNotFound"/);
    const put = await https(`${node}/app/items/1`, user, "PUT", '{"text": "hi"}');
    assert.equal(put.status, 204, put.body);
    const item = await https(`${node}/app/items/1`, user, "GET");
    assert.equal(item.status, 200, item.body);
    assert.equal((JSON.parse(item.body) as { text: string }).text, "hi");
    assert.equal((await https(`${node}/app/items/1`, { ca }, "GET")).status, 401);

    const fixture = join(dir, "fixture-bundle.json");
    writeFileSync(fixture, JSON.stringify(await buildTsApp(FIXTURE)));
    deploy(workspace, node, fixture);
    await exerciseFixture(node, user);
  } finally {
    if (pid > 0 && isAlive(pid)) {
      process.kill(pid, "SIGTERM");
      for (let i = 0; i < 50 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

async function exerciseFixture(node: string, user: Tls): Promise<void> {
  const written = await until(
    () => https(`${node}/app/records/1?claim=1`, user, "PUT", '{"msg": "first"}'),
    (r) => r.status !== 404,
  );
  assert.equal(written.status, 200, written.body);
  const txId = String(written.headers["x-ms-ccf-transaction-id"]);
  const seqno = Number(txId.split(".")[1]);
  const second = await https(`${node}/app/records/1`, user, "PUT", '{"msg": "second"}');
  assert.equal(second.status, 200, second.body);
  const now = JSON.parse((await https(`${node}/app/records/1`, user, "GET")).body) as {
    msg: string;
  };
  assert.equal(now.msg, "second");

  const past = await until(
    () =>
      https(`${node}/app/records/1/historical`, user, "GET", undefined, {
        "x-ms-ccf-transaction-id": txId,
      }),
    (r) => r.status === 200,
  );
  assert.equal(past.status, 200, past.body);
  const state = JSON.parse(past.body) as {
    msg: string;
    transactionId: string;
    receipt: { leaf_components: { claims_digest: string }; node_id: string; proof: unknown[] };
  };
  assert.equal(state.msg, "first");
  assert.equal(state.transactionId, txId);
  assert.match(state.receipt.leaf_components.claims_digest, /^[0-9a-f]{64}$/);
  assert.ok(Array.isArray(state.receipt.proof));

  const secondSeqno = Number(String(second.headers["x-ms-ccf-transaction-id"]).split(".")[1]);
  const range = await until(
    () => https(`${node}/app/records/1/range?from=${seqno}&to=${secondSeqno}`, user, "GET"),
    (r) => r.status !== 202,
  );
  assert.equal(range.status, 200, range.body);
  assert.deepEqual(JSON.parse(range.body), {
    entries: [
      { seqno, msg: "first" },
      { seqno: secondSeqno, msg: "second" },
    ],
    count: secondSeqno - seqno + 1,
    dropped: true,
  });

  const refused = await https(`${node}/app/audited/9`, user, "POST");
  assert.equal(refused.status, 409, refused.body);
  assert.equal((await https(`${node}/app/audited/9`, user, "GET")).body, "true");
  const discarded = await https(`${node}/app/discarded/10`, user, "POST");
  assert.equal(discarded.status, 200, discarded.body);
  assert.equal((await https(`${node}/app/audited/10`, user, "GET")).body, "false");

  const crypto = JSON.parse((await https(`${node}/app/crypto`, user, "POST")).body) as Record<
    string,
    unknown
  >;
  for (const key of ["ecdsa", "eddsa", "rsaPss", "aesKwp", "rsaOaep", "rsaOaepAesKwp"]) {
    assert.equal(crypto[key], true, key);
  }
  assert.equal(crypto["callerCertIsBundle"], true);
  const consensus = JSON.parse((await https(`${node}/app/consensus`, user, "GET")).body) as {
    last: { view: number; seqno: number };
    status: string;
  };
  assert.ok(consensus.last.seqno >= secondSeqno);
  assert.equal(consensus.status, "Committed");
  const snp = await https(`${node}/app/snp`, user, "GET");
  assert.equal(snp.status, 501);
  assert.match(snp.body, /^SEV-SNP: .*1184/);
}
