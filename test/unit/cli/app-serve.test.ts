// `consortia app serve` decides its mode from the environment before it reads anything
// (src/cli/commands/app-serve.ts): both CONSORTIA_APP_PACKAGE_ID and CONSORTIA_APP_SERVER_ADDRESS
// (or CHAINCODE_PKG_ID / CHAINCODE_SERVER_ADDRESS) set is service mode; one set exits 1 naming
// the missing one; neither exits 1 explaining that normal mode is deployment by governance. A
// package id that is not the bundle file's SHA-256 is refused before anything listens, and
// `consortia app package-id` prints that digest; `app set-service` and `remove-service` build
// their proposals from it; `sandbox --app-service` refuses what it cannot serve before it starts
// a node. The CLI runs as a real process (no network is
// needed for any refusal); the oracle for the digest is `openssl dgst -sha256`, and the exit
// codes and messages are the contract.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  appServiceMode,
  parseServerAddress,
  planServe,
} from "../../../src/cli/commands/app-serve.js";
import {
  removeAppServiceAction,
  setAppServiceAction,
} from "../../../src/cli/commands/app-service-gov.js";
import { resolveBundlePath } from "../../../src/cli/builtin-apps.js";
import { CliError } from "../../../src/cli/cli-error.js";
import { runCli } from "../../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "consortia-app-serve-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const BUNDLE = join(dir, "bundle.json");
writeFileSync(
  BUNDLE,
  JSON.stringify({
    metadata: { endpoints: {} },
    modules: [{ name: "m.js", module: "export function f() { return {}; }" }],
  }),
);

function opensslSha256(file: string): string {
  const out = execFileSync("openssl", ["dgst", "-sha256", "-r", file], { encoding: "utf8" });
  return out.split(" ")[0]!;
}
const BUNDLE_ID = opensslSha256(BUNDLE);

/** This process's environment without any of the four mode variables, plus `vars`. */
function envWith(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of [
    "CONSORTIA_APP_PACKAGE_ID",
    "CONSORTIA_APP_SERVER_ADDRESS",
    "CHAINCODE_PKG_ID",
    "CHAINCODE_SERVER_ADDRESS",
  ]) {
    delete env[name];
  }
  return { ...env, ...vars };
}

function serve(vars: Record<string, string>, extra: string[] = []) {
  return runCli(["app", "serve", "--bundle", BUNDLE, ...extra], { env: envWith(vars) });
}

test("app package-id prints the bundle file's SHA-256, as openssl computes it", () => {
  const run = runCli(["app", "package-id", "--bundle", BUNDLE]);
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, `${BUNDLE_ID}\n`);
  const registry = runCli(["app", "package-id", "--bundle", "registry"]);
  assert.equal(registry.status, 0, registry.stderr);
  assert.equal(registry.stdout, `${opensslSha256(resolveBundlePath("registry"))}\n`);
  const missing = runCli(["app", "package-id", "--bundle", join(dir, "nope.json")]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read the bundle .*nope\.json: ENOENT/);
  const folder = runCli(["app", "package-id", "--bundle", dir]);
  assert.equal(folder.status, 1);
  assert.match(folder.stderr, /EISDIR \(a bundle file is needed: consortia app bundle DIR/);
});

test("neither variable set: exit 1, normal mode is deployment by governance", () => {
  const run = serve({});
  assert.equal(run.status, 1);
  assert.match(run.stderr, /^consortia: not in service mode: CONSORTIA_APP_PACKAGE_ID and /);
  assert.match(run.stderr, /deployed into the nodes by governance \(consortia app deploy/);
  assert.equal(run.stdout, "");
});

test("only the package id set: exit 1 naming CONSORTIA_APP_SERVER_ADDRESS", () => {
  for (const name of ["CONSORTIA_APP_PACKAGE_ID", "CHAINCODE_PKG_ID"]) {
    const run = serve({ [name]: BUNDLE_ID });
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`${name} is set but CONSORTIA_APP_SERVER_ADDRESS is not`));
  }
});

test("only the address set: exit 1 naming CONSORTIA_APP_PACKAGE_ID", () => {
  for (const name of ["CONSORTIA_APP_SERVER_ADDRESS", "CHAINCODE_SERVER_ADDRESS"]) {
    const run = serve({ [name]: "127.0.0.1:9999" });
    assert.equal(run.status, 1);
    assert.match(run.stderr, new RegExp(`${name} is set but CONSORTIA_APP_PACKAGE_ID is not`));
  }
});

test("a package id that is not the bundle's digest is refused before anything listens", () => {
  const other = "0".repeat(64);
  const run = serve({ CHAINCODE_PKG_ID: other, CHAINCODE_SERVER_ADDRESS: "127.0.0.1:0" });
  assert.equal(run.status, 1);
  assert.match(run.stderr, new RegExp(`its package id is ${BUNDLE_ID}, not ${other}`));
  assert.doesNotMatch(run.stdout, /Serving/);
  const upper = serve({
    CONSORTIA_APP_PACKAGE_ID: BUNDLE_ID.toUpperCase(),
    CONSORTIA_APP_SERVER_ADDRESS: "127.0.0.1:0",
  });
  assert.equal(upper.status, 1);
  assert.match(upper.stderr, /is not 64 lower-case hex digits/);
});

test("service mode without the TLS files names the missing options", () => {
  const run = serve(
    { CONSORTIA_APP_PACKAGE_ID: BUNDLE_ID, CONSORTIA_APP_SERVER_ADDRESS: "127.0.0.1:0" },
    ["--tls-cert", join(dir, "cert.pem")],
  );
  assert.equal(run.status, 1);
  assert.match(run.stderr, /service mode needs --tls-key, --service-cert/);
});

test("the mode: both (either spelling) is service mode; a conflict between spellings is refused", () => {
  const id = BUNDLE_ID;
  assert.deepEqual(appServiceMode({ CHAINCODE_PKG_ID: id, CONSORTIA_APP_SERVER_ADDRESS: "h:1" }), {
    kind: "service",
    packageId: id,
    address: "h:1",
  });
  assert.deepEqual(appServiceMode({ CONSORTIA_APP_PACKAGE_ID: "", CHAINCODE_PKG_ID: "" }), {
    kind: "normal",
  });
  assert.deepEqual(
    appServiceMode({
      CONSORTIA_APP_PACKAGE_ID: id,
      CHAINCODE_PKG_ID: id,
      CHAINCODE_SERVER_ADDRESS: "h:1",
    }),
    { kind: "service", packageId: id, address: "h:1" },
  );
  assert.equal(
    appServiceMode({ CONSORTIA_APP_PACKAGE_ID: id, CHAINCODE_PKG_ID: "x" }).kind,
    "conflict",
  );
  assert.throws(
    () => planServe({ bundle: BUNDLE }, { CONSORTIA_APP_PACKAGE_ID: id, CHAINCODE_PKG_ID: "x" }),
    (e: unknown) => e instanceof CliError && /both set, to different values/.test(e.message),
  );
});

test("the server address is host:port or [ipv6]:port", () => {
  assert.deepEqual(parseServerAddress("127.0.0.1:8200"), { host: "127.0.0.1", port: 8200 });
  assert.deepEqual(parseServerAddress("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseServerAddress("app.example:443"), { host: "app.example", port: 443 });
  for (const bad of ["127.0.0.1", ":80", "h:65536", "h:x", "::1:80", "h :1"]) {
    assert.throws(() => parseServerAddress(bad), CliError, bad);
  }
});

test("app set-service and remove-service build set_app_service / remove_app_service", () => {
  const ca = join(dir, "ca.pem");
  writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
  assert.deepEqual(
    setAppServiceAction({
      bundle: BUNDLE,
      address: "127.0.0.1:8200",
      caCert: ca,
      timeoutMs: "300",
    }),
    {
      name: "set_app_service",
      args: {
        package_id: BUNDLE_ID,
        address: "127.0.0.1:8200",
        ca_cert: readFileSync(ca, "utf8"),
        timeout_ms: 300,
      },
    },
  );
  assert.deepEqual(setAppServiceAction({ bundle: BUNDLE, address: "h:1" }).args, {
    package_id: BUNDLE_ID,
    address: "h:1",
  });
  for (const bad of [
    { address: "h:0" },
    { address: "h" },
    { address: "h:1", timeoutMs: "0" },
    { address: "h:1", timeoutMs: "600001" },
    { address: "h:1", timeoutMs: "5s" },
    { address: "h:1", caCert: join(dir, "missing.pem") },
  ]) {
    assert.throws(
      () => setAppServiceAction({ bundle: BUNDLE, ...bad }),
      CliError,
      JSON.stringify(bad),
    );
  }
  assert.deepEqual(removeAppServiceAction({ bundle: BUNDLE }), {
    name: "remove_app_service",
    args: { package_id: BUNDLE_ID },
  });
  assert.deepEqual(removeAppServiceAction({ packageId: BUNDLE_ID }).args, {
    package_id: BUNDLE_ID,
  });
  assert.throws(() => removeAppServiceAction({}), CliError);
  assert.throws(() => removeAppServiceAction({ bundle: BUNDLE, packageId: BUNDLE_ID }), CliError);
  assert.throws(() => removeAppServiceAction({ packageId: "ABC" }), CliError);
});

test("sandbox --app-service refuses a missing bundle before it starts anything", () => {
  const workspace = join(dir, "workspace");
  const run = runCli(["sandbox", "--workspace", workspace, "--app-service", join(dir, "nope")]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /cannot read the --app-service bundle .*nope: ENOENT/);
  assert.equal(existsSync(workspace), false);
  const recover = runCli([
    "sandbox",
    "--recover",
    "--app-service",
    BUNDLE,
    "--workspace",
    workspace,
  ]);
  assert.equal(recover.status, 1);
  assert.match(recover.stderr, /--app-service starts a new sandbox/);
  const port = runCli(["sandbox", "--port", "65400", "--app-service", BUNDLE]);
  assert.equal(port.status, 1);
  assert.match(port.stderr, /--port must be an integer in 1\.\.65335/);
});
