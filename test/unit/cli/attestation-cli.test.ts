// `consortia attestation verify` end to end (spawned CLI): CCF's Milan SEV-SNP vector verifies
// from a raw, hex or base64 quote file and a PEM or base64 chain, printing its fields (with
// --json: measurement, report_data, host_data as hex, reported_tcb and product, compared with
// the values of reliability-and-attestation.md §3.4); a foreign chain, an expired chain, a key
// the report does not bind and unusable input each exit 1 with one line and no stack trace.
// Virtual quotes (JSON or base64) are decoded, and --public-key checks their binding.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { makeVirtualQuote } from "../../../src/attestation/virtual.js";
import { runCli, type CliRun } from "../../helpers/cli.js";
import { tempDir } from "../../helpers/pki.js";

const FIXTURES = "test/fixtures/snp/";
const MILAN_MEASUREMENT =
  "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f" +
  "98189887920ab2fa0096903a0c23fca1";
const MILAN_HOST_DATA = "4f4448c67f3c8dfc8de8a5e37125d807dadcc41f06cf23f615dbd52eec777d10";

function assertFails(run: CliRun, pattern: RegExp): void {
  assert.equal(run.status, 1, run.stdout + run.stderr);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
  assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
}

function newKey(): { pem: string; der: Uint8Array } {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "secp384r1" });
  return {
    pem: publicKey.export({ type: "spki", format: "pem" }) as string,
    der: new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
  };
}

test("attestation verify: SNP evidence verifies in every file encoding, and fails with reasons", () => {
  const { dir, cleanup } = tempDir("attestation-cli-");
  try {
    const path = (name: string): string => join(dir, name);
    const report = readFileSync(FIXTURES + "milan-report.bin");
    const chain = readFileSync(FIXTURES + "milan-endorsements.pem", "utf8");
    copyFileSync(FIXTURES + "milan-report.bin", path("report.bin"));
    writeFileSync(path("report.hex"), report.toString("hex").replace(/(.{64})/g, "$1\n"));
    writeFileSync(path("report.b64"), report.toString("base64") + "\n");
    writeFileSync(path("chain.pem"), chain);
    writeFileSync(path("chain.b64"), Buffer.from(chain).toString("base64"));
    copyFileSync(FIXTURES + "genoa-endorsements.pem", path("genoa.pem"));
    writeFileSync(path("key.pem"), newKey().pem);
    writeFileSync(path("garbage"), "this is neither hex nor base64!");
    const verify = (quote: string, ...more: string[]): CliRun =>
      runCli([
        "attestation",
        "verify",
        "--format",
        "AMD_SEV_SNP_v1",
        "--quote",
        path(quote),
        ...more,
      ]);

    const text = verify("report.bin", "--endorsements", path("chain.pem"));
    assert.equal(text.status, 0, text.stderr);
    assert.match(
      text.stdout,
      /^SEV-SNP attestation report verified \(AMD Milan, signed by the VCEK\)/,
    );
    assert.match(text.stdout, new RegExp(`\\n {2}measurement: +${MILAN_MEASUREMENT}\\n`));
    assert.match(
      text.stdout,
      /\n {2}reported_tcb: db18000000000004 \(bootloader 4, tee 0, snp 24, microcode 219\)/,
    );
    assert.match(text.stdout, /\n {2}policy: +0x3001f\n/);

    for (const [quote, endorsements] of [
      ["report.hex", "chain.pem"],
      ["report.b64", "chain.b64"],
    ]) {
      const run = verify(quote!, "--endorsements", path(endorsements!), "--json");
      assert.equal(run.status, 0, run.stderr);
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(out.measurement, MILAN_MEASUREMENT);
      assert.equal(out.host_data, MILAN_HOST_DATA);
      assert.equal(out.report_data, "00".repeat(64));
      assert.equal(out.product, "Milan");
      assert.deepEqual(out.reported_tcb, {
        bootloader: 4,
        tee: 0,
        snp: 24,
        microcode: 219,
        hex: "db18000000000004",
      });
      assert.equal(out.chip_id, (out.chip_id as string).toLowerCase());
      assert.match(out.chip_id as string, /^4ffb5cb4[0-9a-f]{120}$/);
    }

    assertFails(
      verify("report.bin", "--endorsements", path("genoa.pem")),
      /^consortia: attestation is invalid: the root of trust public key for this attestation is not the expected one for AMD Milan\n$/,
    );
    assertFails(
      verify("report.bin", "--endorsements", path("chain.pem"), "--now", "2050-01-01T00:00:00Z"),
      /attestation is invalid: the chip certificate is not valid at 2050/,
    );
    assertFails(
      verify("report.bin", "--endorsements", path("chain.pem"), "--public-key", path("key.pem")),
      /attestation is invalid: The first 32 bytes of the report data are not the SHA-256/,
    );
    assertFails(verify("report.bin"), /cannot verify attestation: --endorsements is required/);
    assertFails(
      verify("garbage", "--endorsements", path("chain.pem")),
      /cannot verify attestation: .*garbage is neither a raw 1184-byte report nor its hex or base64/,
    );
    assertFails(
      verify("missing.bin", "--endorsements", path("chain.pem")),
      /cannot verify attestation: cannot read quote .*missing\.bin \(ENOENT\)/,
    );
    assertFails(
      verify("report.bin", "--endorsements", path("report.bin")),
      /cannot verify attestation: .* is neither a PEM chain nor base64 of one/,
    );
  } finally {
    cleanup();
  }
});

test("attestation verify: virtual quotes are decoded, --public-key checks their binding", () => {
  const { dir, cleanup } = tempDir("attestation-cli-");
  try {
    const path = (name: string): string => join(dir, name);
    const key = newKey();
    const hostData = "ab".repeat(32);
    const quote = makeVirtualQuote(key.der, hostData);
    writeFileSync(path("quote.b64"), quote.quote);
    writeFileSync(path("quote.json"), Buffer.from(quote.quote, "base64"));
    writeFileSync(path("key.pem"), key.pem);
    writeFileSync(path("other.pem"), newKey().pem);
    const verify = (file: string, ...more: string[]): CliRun =>
      runCli([
        "attestation",
        "verify",
        "--format",
        "Insecure_Virtual",
        "--quote",
        path(file),
        ...more,
      ]);

    const json = verify("quote.json", "--json", "--public-key", path("key.pem"));
    assert.equal(json.status, 0, json.stderr);
    const out = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(out.measurement, "Insecure hard-coded virtual measurement v1");
    assert.equal(out.host_data, hostData);
    assert.equal(
      out.report_data,
      Buffer.from(
        JSON.parse(Buffer.from(quote.quote, "base64").toString()).report_data,
        "base64",
      ).toString("hex"),
    );
    assert.equal(out.key_bound, true);

    const text = verify("quote.b64");
    assert.equal(text.status, 0, text.stderr);
    assert.match(
      text.stdout,
      /^virtual attestation decoded \(Insecure_Virtual: nothing in it is signed\)\n/,
    );
    assert.match(text.stdout, new RegExp(`\\n {2}host_data: +${hostData}\\n`));

    assertFails(
      verify("quote.b64", "--public-key", path("other.pem")),
      /attestation is invalid: Quote report data does not match the SHA-256 of the node public key/,
    );
    assertFails(verify("quote.b64", "--public-key", path("quote.b64")), /is not a PEM public key/);
    const unknown = runCli([
      "attestation",
      "verify",
      "--format",
      "OE_SGX_v1",
      "--quote",
      path("quote.b64"),
    ]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /OE_SGX_v1.*is invalid.*AMD_SEV_SNP_v1, Insecure_Virtual/s);
  } finally {
    cleanup();
  }
});
