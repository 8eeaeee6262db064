// `consortia console`'s flags (src/cli/console/console-settings.ts): a sandbox workspace gives
// the service certificate, every node's address in index order, node 0's ledger directory and
// user0's identity; bad flags and missing files are one-line CliErrors, and the command exits
// non-zero with that line. The oracle is the workspace files the test writes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makePki, tempDir } from "../../../helpers/pki.js";
import { runCli } from "../../../helpers/cli.js";
import { consoleSettings } from "../../../../src/cli/console/console-settings.js";
import { CliError } from "../../../../src/cli/cli-error.js";

function nodeConfig(dir: string, index: number, port: number): void {
  mkdirSync(dir, { recursive: true });
  const config = {
    network: { rpc_interfaces: { primary_rpc_interface: { bind_address: `127.0.0.1:${port}` } } },
    ledger: { directory: join(dir, `${index}.ledger`) },
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
}

test("a workspace gives the service certificate, the nodes in order, node 0's ledger and user0", async () => {
  const { dir, cleanup } = tempDir("console-ws-");
  try {
    const pki = await makePki();
    const common = join(dir, "sandbox_common");
    mkdirSync(common);
    writeFileSync(join(common, "service_cert.pem"), pki.serviceCertPem);
    writeFileSync(join(common, "user0_cert.pem"), pki.nodeCertPem);
    writeFileSync(join(common, "user0_privk.pem"), "KEY");
    for (const i of [10, 2, 0, 1]) nodeConfig(join(dir, `sandbox_${i}`), i, 8000 + i);
    const settings = consoleSettings({ workspace: dir, port: "0" });
    assert.deepEqual(
      settings.nodeUrls,
      [0, 1, 2, 10].map((i) => `https://127.0.0.1:${8000 + i}`),
    );
    assert.equal(settings.serviceCertPem, pki.serviceCertPem);
    assert.equal(settings.ledgerDir, join(dir, "sandbox_0", "0.ledger"));
    assert.deepEqual(settings.client, { certPem: pki.nodeCertPem, keyPem: "KEY" });
    assert.equal(settings.port, 0);
  } finally {
    cleanup();
  }
});

test("bad flags are one-line CliErrors that say what is wrong", async () => {
  const { dir, cleanup } = tempDir("console-flags-");
  try {
    const pki = await makePki();
    const cert = join(dir, "service_cert.pem");
    writeFileSync(cert, pki.serviceCertPem);
    writeFileSync(join(dir, "not-a-cert.pem"), "hello");
    const cases: [Parameters<typeof consoleSettings>[0], RegExp][] = [
      [{ port: "7000" }, /give --workspace W .* or --node URL --cacert FILE/],
      [{ port: "7000", workspace: dir, node: "https://x:1" }, /not both/],
      [{ port: "70000", node: "https://127.0.0.1:8000", cacert: cert }, /--port must be/],
      [{ port: "7000", node: "https://127.0.0.1:8000" }, /--node needs --cacert/],
      [{ port: "7000", node: "http://127.0.0.1:8000", cacert: cert }, /https:\/\/host:port/],
      [{ port: "7000", node: "nonsense", cacert: cert }, /must be a URL/],
      [{ port: "7000", node: "https://a:1", cacert: join(dir, "none.pem") }, /no such file/],
      [{ port: "7000", node: "https://a:1", cacert: join(dir, "not-a-cert.pem") }, /not a PEM/],
      [{ port: "7000", workspace: dir }, /not a sandbox workspace/],
      [
        { port: "7000", node: "https://a:1", cacert: cert, ledgerDir: join(dir, "no") },
        /--ledger-dir: no such directory/,
      ],
      [{ port: "7000", node: "https://a:1", cacert: cert, userCert: cert }, /go together/],
    ];
    for (const [flags, message] of cases) {
      assert.throws(
        () => consoleSettings(flags),
        (err: unknown) =>
          err instanceof CliError && message.test(err.message) && !err.message.includes("\n"),
        JSON.stringify(flags),
      );
    }
  } finally {
    cleanup();
  }
});

test("the command prints one line and exits non-zero on a bad flag", () => {
  const run = runCli(["console", "--port", "x", "--node", "https://127.0.0.1:1"]);
  assert.equal(run.status, 1);
  assert.equal(run.stderr.trim().split("\n").length, 1);
  assert.match(run.stderr, /^consortia: --port must be an integer/);
});
