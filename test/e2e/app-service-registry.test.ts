/**
 * End-to-end: the enclave registry in service mode and in normal mode, from the same bundle, on
 * one sandbox of two real node processes (issue #14 item 5), with the commands of the README's
 * "Apps as a service" section:
 *  1. `consortia sandbox --no-wait --app-service registry` (what `npm start -- --app-service
 *     registry` runs): the shipped registry bundle served by `consortia app serve`, registered
 *     by set_app_service; its package id is what `consortia app package-id --bundle registry`
 *     prints;
 *  2. set_registry_chaincode by proposal; an enclave simulated and registered with the CLI
 *     (`registry simulate-enclave`, `registry register --wait`), a second one registered over
 *     HTTPS through the backup (test/helpers/registry-enclave.ts; the backup forwards the write),
 *     one claiming another measurement refused (403 MeasurementMismatch); `registry verify`
 *     checks the registering transaction's receipt (claims digest included) on the backup;
 *  3. every query of the registry API is recorded on both nodes (status and body);
 *  4. remove_app_service: the routes are gone (404);
 *  5. `consortia app deploy --bundle registry` voted through: the same registry now runs inside
 *     the nodes over the same state, and every recorded query and the refused registration get
 *     exactly the same answers.
 * Oracles: the in-node registry (the previous issue's app, run by the node itself) for every
 * answer; the files simulate-enclave wrote; the receipt verifier in `registry verify`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  APP_SERVER_PORT_OFFSET,
  govern,
  ok,
  sandboxPids,
  startServiceSandbox,
  stopPids,
  voteThrough,
  type ServiceSandbox,
} from "../helpers/app-service.js";
import { runCli } from "../helpers/cli.js";
import { httpsRequest, type Reply } from "../helpers/https.js";
import { freePortBlock, waitFor } from "../helpers/network.js";
import { simulateEnclave } from "../helpers/registry-enclave.js";

const NODES = 2;
const POLICY = {
  chaincode_id: "cc1",
  version: "mrenclave-1",
  sequence: 1,
  channel_id: "mychannel",
  platforms: ["Insecure_Virtual"],
};

const nodeUrl = (s: ServiceSandbox, node: number) => `https://127.0.0.1:${s.port + node}`;

/** The registry's read API for chaincode cc1 and the given enclaves, plus an unknown chaincode. */
function queries(enclaveIds: readonly string[]): string[] {
  const base = "/app/registry/chaincodes";
  return [
    `${base}/cc1`,
    `${base}/cc1/enclaves`,
    ...enclaveIds.map((id) => `${base}/cc1/enclaves/${id}`),
    `${base}/cc1/provisioned`,
    `${base}/cc1/encryption-key`,
    `${base}/cc1/endpoints`,
    `${base}/nope/enclaves`,
  ];
}

type Answers = Record<string, { status: number; body: string }>;

const strip = (r: Reply) => ({ status: r.status, body: r.body });

/** Every query on every node, once the backup has caught up (same answer as the primary). */
async function answers(s: ServiceSandbox, paths: readonly string[]): Promise<Answers> {
  const out: Answers = {};
  for (const path of paths) {
    const primary = strip(await httpsRequest(nodeUrl(s, 0) + path, s.tls, "GET"));
    out[`0 ${path}`] = primary;
    out[`1 ${path}`] = await waitFor(`the backup's ${path}`, 10_000, async () => {
      const backup = strip(await httpsRequest(nodeUrl(s, 1) + path, s.tls, "GET"));
      return backup.body === primary.body && backup.status === primary.status ? backup : undefined;
    });
  }
  return out;
}

/** A registration that the policy refuses (another measurement): nothing is written. */
async function refusedRegistration(s: ServiceSandbox, body: string) {
  return strip(await httpsRequest(`${nodeUrl(s, 0)}/app/registry/enclaves`, s.tls, "POST", body));
}

/** Steps 1 and 2: the policy, three registrations (one refused), and verify. */
function registerWithCli(s: ServiceSandbox, dir: string): string {
  govern(s, "set_registry_chaincode", POLICY);
  const where = ["--workspace", s.workspace, "--node", s.url];
  const out = join(dir, "enclave1");
  const simulated = ok(
    runCli([
      ...["registry", "simulate-enclave", "--chaincode-id", "cc1", "--version", "mrenclave-1"],
      ...["--channel-id", "mychannel", "--peer-endpoint", "peer0.org1:7051", "--out", out],
    ]),
    "simulate-enclave",
  );
  const enclaveId = /^enclave_id ([0-9A-F]{64})$/m.exec(simulated)?.[1] ?? "";
  const registered = JSON.parse(
    ok(
      runCli([
        ...["registry", "register", "--chaincode-id", "cc1", "--wait", ...where],
        ...["--attested-data", join(out, "attested_data.json")],
        ...["--evidence", join(out, "evidence.json")],
      ]),
      "register",
    ),
  ) as Record<string, unknown>;
  assert.equal(registered.enclave_id, enclaveId);
  assert.equal(registered.committed, true);
  const listed = ok(runCli(["registry", "list", "--chaincode-id", "cc1", ...where]), "list");
  assert.match(listed, new RegExp(`${enclaveId}  Active  ${String(registered.transaction_id)}`));
  const verified = ok(
    runCli([
      ...["registry", "verify", "--chaincode-id", "cc1", "--enclave-id", enclaveId],
      ...["--workspace", s.workspace, "--node", nodeUrl(s, 1), "--measurement", "mrenclave-1"],
      ...["--service-cert", join(s.workspace, "sandbox_common", "service_cert.pem")],
    ]),
    "verify",
  );
  assert.match(verified, new RegExp(`^enclave ${enclaveId} of chaincode cc1 is verified`));
  assert.match(verified, /checked: its claims digest is SHA-256 of the registration record/);
  return enclaveId;
}

test(
  "the registry answers the same served by an app server and deployed in the nodes",
  {
    timeout: 300_000,
  },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "consortia-app-service-registry-"));
    const workspace = join(dir, "workspace");
    const port = await freePortBlock(NODES, [APP_SERVER_PORT_OFFSET]);
    try {
      const s = startServiceSandbox({ workspace, port, nodes: NODES, bundle: "registry" });
      const packageId = ok(runCli(["app", "package-id", "--bundle", "registry"]), "package-id");
      assert.equal(packageId, `${s.packageId}\n`);
      const listing = await httpsRequest(
        `${s.url}/gov/service/app-services?api-version=2024-07-01`,
        { ca: s.tls.ca },
        "GET",
      );
      assert.match(listing.body, new RegExp(`"packageId":"${s.packageId}"`));

      const first = registerWithCli(s, dir);
      const second = simulateEnclave({ version: "mrenclave-1", channelId: "mychannel" });
      const viaBackup = await httpsRequest(
        `${nodeUrl(s, 1)}/app/registry/enclaves`,
        s.tls,
        "POST",
        second.body,
      );
      assert.equal(viaBackup.status, 200, viaBackup.body);
      assert.deepEqual(JSON.parse(viaBackup.body), { enclave_id: second.enclaveId });
      const mismatch = simulateEnclave({
        version: "mrenclave-1",
        channelId: "mychannel",
        measurement: "other",
      }).body;
      const refusedServed = await refusedRegistration(s, mismatch);
      assert.equal(refusedServed.status, 403, refusedServed.body);
      assert.match(refusedServed.body, /MeasurementMismatch/);

      const paths = queries([first, second.enclaveId]);
      const served = await answers(s, paths);
      assert.equal(served[`0 ${paths[1]}`]?.status, 200);
      assert.match(served[`0 ${paths[1]}`]?.body ?? "", new RegExp(second.enclaveId));

      govern(s, "remove_app_service", { package_id: s.packageId });
      const removed = await httpsRequest(`${s.url}${paths[0]}`, s.tls, "GET");
      assert.equal(removed.status, 404, removed.body);

      const proposed = ok(
        runCli([
          "app",
          "deploy",
          "--bundle",
          "registry",
          "--workspace",
          workspace,
          "--node",
          s.url,
        ]),
        "app deploy",
      );
      voteThrough(s, (JSON.parse(proposed) as { proposalId: string }).proposalId);
      assert.deepEqual(await answers(s, paths), served);
      assert.deepEqual(await refusedRegistration(s, mismatch), refusedServed);
    } finally {
      await stopPids(sandboxPids(workspace, NODES));
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
