// `consortia receipt verify` end to end: exit 0 with the root for a good receipt, exit 1 with
// "receipt is invalid: <reason>" for forged, malformed or unreadable inputs, and never a stack
// trace. The receipt comes from the PKI test helper (service CA, endorsed node, naive tree).
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../../helpers/cli.js";
import { makePki, makeReceipt, tempDir } from "../../helpers/pki.js";

function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
}

test("receipt verify exits 0 when valid, 1 when forged, malformed or unreadable", async () => {
  const pki = await makePki();
  const other = await makePki();
  const { receipt, root } = makeReceipt(pki, { leafCount: 5, index: 3 });
  const { dir, cleanup } = tempDir("receipt-cli-");
  try {
    const path = (name: string): string => join(dir, name);
    writeFileSync(path("service_cert.pem"), pki.serviceCertPem);
    writeFileSync(path("other_service.pem"), other.serviceCertPem);
    writeFileSync(path("good.json"), JSON.stringify(receipt, null, 2));
    const forged = {
      ...receipt,
      leaf_components: { ...receipt.leaf_components!, claims_digest: "ab".repeat(32) },
    };
    writeFileSync(path("forged.json"), JSON.stringify(forged));
    writeFileSync(path("not-json.json"), "{ this is not json");
    writeFileSync(path("bad-shape.json"), JSON.stringify({ ...receipt, proof: [{ left: "xyz" }] }));

    const verify = (receiptFile: string, certFile = "service_cert.pem") =>
      runCli([
        "receipt",
        "verify",
        "--receipt",
        path(receiptFile),
        "--service-cert",
        path(certFile),
      ]);

    const good = verify("good.json");
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stdout, `receipt is valid (root ${Buffer.from(root).toString("hex")})\n`);

    const expectations: [string, string, RegExp][] = [
      ["forged.json", "service_cert.pem", /receipt is invalid: signature does not verify/],
      [
        "good.json",
        "other_service.pem",
        /receipt is invalid: node certificate is not issued by the service/,
      ],
      ["not-json.json", "service_cert.pem", /receipt is invalid: .*not-json\.json is not JSON/],
      [
        "bad-shape.json",
        "service_cert.pem",
        /receipt is invalid: proof\[0\]\.left: expected 64 hex/,
      ],
      [
        "missing.json",
        "service_cert.pem",
        /receipt is invalid: cannot read receipt file .*missing\.json \(ENOENT\)/,
      ],
      [
        "good.json",
        "missing.pem",
        /cannot verify receipt: cannot read service certificate .*missing\.pem \(ENOENT\)/,
      ],
      ["good.json", "good.json", /cannot verify receipt: .*good\.json is not a PEM certificate/],
    ];
    for (const [receiptFile, certFile, message] of expectations) {
      const run = verify(receiptFile, certFile);
      assert.equal(run.status, 1, `${receiptFile} / ${certFile}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stdout, "");
      assertNoStack(run.stderr);
    }
  } finally {
    cleanup();
  }
});

test("receipt verify --help lists what is checked", () => {
  const help = runCli(["receipt", "verify", "--help"]);
  assert.equal(help.status, 0);
  for (const text of [
    "--receipt",
    "--service-cert",
    "node_id",
    "proof",
    "service_endorsements",
    "Exit status",
  ]) {
    assert.ok(help.stdout.includes(text), text);
  }
});
