// `consortia receipt verify` end to end, for JSON and COSE receipts: exit 0 with the root and the
// checks made for a good receipt, exit 1 with "receipt is invalid: <reason>" for forged,
// malformed or unreadable inputs, and never a stack trace. The receipts come from the PKI test
// helper (service CA, endorsed node, naive tree) and, for COSE, a root signature with CCF 6's
// headers (test/helpers/cose-receipts.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { endorseServiceCertificate } from "../../../src/crypto/cert-issuance.js";
import { coseProofOfReceipt, encodeCoseReceipt } from "../../../src/ledger/cose-receipt.js";
import { runCli } from "../../helpers/cli.js";
import { makeCoseReceiptParts } from "../../helpers/cose-receipts.js";
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
    const lines = good.stdout.split("\n");
    assert.equal(lines[0], `receipt is valid (root ${Buffer.from(root).toString("hex")})`);
    assert.match(good.stdout, /\n {2}checked: node_id is the SHA-256/);
    assert.match(good.stdout, /\n {2}checked: cert is issued by the service certificate\n/);

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

test("receipt verify tells COSE receipts from JSON and checks kid, vds, proof and claims", async () => {
  const pki = await makePki();
  const current = await makePki();
  const parts = makeCoseReceiptParts(pki, { leafCount: 6, index: 2, signature: { txid: "2.7" } });
  const proof = coseProofOfReceipt(parts.receipt)!;
  const good = encodeCoseReceipt(parts.coseSignature, proof);
  const tamperedDigest = new Uint8Array(proof.writeSetDigest);
  tamperedDigest[0] = tamperedDigest[0]! ^ 1;
  const endorsement = await endorseServiceCertificate({
    servicePrivateKey: current.serviceKeys.privateKey,
    serviceCertPem: current.serviceCertPem,
    endorsedPublicKey: pki.serviceKeys.publicKey,
    validityDays: 30,
    now: new Date(),
  });
  const { dir, cleanup } = tempDir("receipt-cli-cose-");
  try {
    const path = (name: string): string => join(dir, name);
    writeFileSync(path("service_cert.pem"), pki.serviceCertPem);
    writeFileSync(path("current_service.pem"), current.serviceCertPem);
    writeFileSync(path("endorsement.pem"), endorsement);
    writeFileSync(path("good.cose"), good);
    writeFileSync(
      path("forged.cose"),
      encodeCoseReceipt(parts.coseSignature, { ...proof, writeSetDigest: tamperedDigest }),
    );
    writeFileSync(path("signature.cose"), parts.coseSignature);
    writeFileSync(path("truncated.cose"), good.subarray(0, 40));
    const verify = (receiptFile: string, ...more: string[]) =>
      runCli(["receipt", "verify", "--receipt", path(receiptFile), ...more]);
    const cert = (name: string) => ["--service-cert", path(name)];
    const claims = Buffer.from(proof.claimsDigest).toString("hex");

    const ok = verify("good.cose", ...cert("service_cert.pem"), "--claims-digest", claims);
    assert.equal(ok.status, 0, ok.stderr);
    const root = Buffer.from(parts.root).toString("hex");
    assert.equal(ok.stdout.split("\n")[0], `COSE receipt is valid (root ${root})`);
    for (const expected of [
      /checked: kid [0-9a-f]{64} is the service certificate's key/,
      /checked: vds \(395\) is 2/,
      /checked: proof 0: the leaf of ce:2\.3:[0-9a-f]{64} folded with 3 steps gives root/,
      new RegExp(`checked: claims digest ${claims} as expected`),
      /not checked \(as signed\): signed at txid 2\.7, issuer service\.example\.com/,
    ]) {
      assert.match(ok.stdout, expected);
    }
    const noClaims = verify("good.cose", ...cert("service_cert.pem"));
    assert.equal(noClaims.status, 0, noClaims.stderr);
    assert.match(noClaims.stdout, new RegExp(`not checked: claims digest ${claims}`));
    const endorsed = verify(
      "good.cose",
      ...cert("current_service.pem"),
      "--service-endorsement",
      path("endorsement.pem"),
    );
    assert.equal(endorsed.status, 0, endorsed.stderr);
    assert.match(endorsed.stdout, /is the key of service endorsement 0, issued by the service/);

    const expectations: [string[], RegExp][] = [
      [["good.cose", ...cert("current_service.pem")], /invalid: kid .* not that of the service/],
      [["forged.cose", ...cert("service_cert.pem")], /invalid: inclusion proof 0: .*not verify/],
      [
        ["good.cose", ...cert("service_cert.pem"), "--claims-digest", "00".repeat(32)],
        /invalid: inclusion proof 0: claims digest [0-9a-f]{64} is not the expected 0{64}/,
      ],
      [["signature.cose", ...cert("service_cert.pem")], /invalid: unprotected\[396\]: missing/],
      [["truncated.cose", ...cert("service_cert.pem")], /invalid: COSE_Sign1: /],
      [
        ["good.cose", ...cert("service_cert.pem"), "--claims-digest", "xyz"],
        /cannot verify receipt: --claims-digest must be 64 hex/,
      ],
      [["good.cose", ...cert("good.cose")], /cannot verify receipt: .*good\.cose is not a PEM/],
    ];
    for (const [args, message] of expectations) {
      const run = verify(args[0]!, ...args.slice(1));
      assert.equal(run.status, 1, `${args.join(" ")}: ${run.stdout}`);
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
    "--service-endorsement",
    "--claims-digest",
    "COSE receipt",
    "vds (395) is 2",
    "Exit status",
  ]) {
    assert.ok(help.stdout.includes(text), text);
  }
});
