// AMD's pinned root keys and the chain checks against real AMD chains (src/attestation/
// snp-chain.ts): each pinned key is the public key of the ARK in a real chain of its product
// (Milan and Genoa from CCF's vectors, Turin from virtee/sev's; the oracle is openssl's
// extraction of the ARK's public key), a real Turin chain passes the chain checks, and its
// VCEK's AMD extensions read as openssl shows them (fmcSPL 0, ucodeSPL 9, an 8-byte hwID).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import {
  AMD_ROOT_KEYS,
  matchRootProduct,
  parseSnpChain,
  readSnpLeafClaims,
  verifySnpChainSignatures,
  verifySnpChainValidity,
} from "../../../src/attestation/snp-chain.js";
import { SnpErrorCode, SnpVerificationError } from "../../../src/attestation/snp-report.js";

const chainOf = (product: string): string =>
  readFileSync(`test/fixtures/snp/${product}-endorsements.pem`, "utf8");
const NOW = new Date("2026-06-01T00:00:00Z");

/** The ARK's SubjectPublicKeyInfo DER, as openssl extracts it. */
function opensslArkSpki(chainPem: string): Uint8Array {
  const ark = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)![2]!;
  const pubPem = execFileSync("openssl", ["x509", "-noout", "-pubkey"], {
    input: ark,
    encoding: "utf8",
  });
  const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "der"], { input: pubPem });
  return new Uint8Array(der);
}

for (const [file, product] of [
  ["milan", "Milan"],
  ["genoa", "Genoa"],
  ["turin", "Turin"],
] as const) {
  test(`the pinned ${product} root key is the public key of the real ARK-${product}`, () => {
    assert.deepEqual(AMD_ROOT_KEYS[product], opensslArkSpki(chainOf(file)));
    const chain = parseSnpChain(chainOf(file));
    assert.match(chain.root.subject, new RegExp(`CN=ARK-${product}`));
    assert.equal(matchRootProduct(chain.root, AMD_ROOT_KEYS, product), product);
    assert.equal(matchRootProduct(chain.root, AMD_ROOT_KEYS, null), product);
  });
}

test("a real Turin chain passes the chain checks and its VCEK's extensions read as openssl's", () => {
  const chain = parseSnpChain(chainOf("turin"));
  verifySnpChainSignatures(chain, "VCEK");
  verifySnpChainValidity(chain, NOW);
  const claims = readSnpLeafClaims(chain.leaf);
  assert.deepEqual(
    {
      fmc: claims.fmc,
      bootloader: claims.bootloader,
      tee: claims.tee,
      snp: claims.snp,
      microcode: claims.microcode,
    },
    { fmc: 0, bootloader: 0, tee: 0, snp: 0, microcode: 9 },
  );
  assert.equal(Buffer.from(claims.hwId!).toString("hex"), "1e550a8ee5cf9f4d");
  assert.equal(claims.productName, "Turin");
});

test("the Milan VCEK's extensions read as its report's TCB and product name Milan-B0", () => {
  const claims = readSnpLeafClaims(parseSnpChain(chainOf("milan")).leaf);
  assert.deepEqual(
    [claims.bootloader, claims.tee, claims.snp, claims.microcode, claims.fmc],
    [4, 0, 24, 219, null],
  );
  assert.equal(claims.hwId!.length, 64);
  assert.equal(claims.productName, "Milan-B0");
});

test("a Turin chain is not taken for a Milan one", () => {
  const chain = parseSnpChain(chainOf("turin"));
  assert.throws(
    () => matchRootProduct(chain.root, AMD_ROOT_KEYS, "Milan"),
    (err: unknown) =>
      err instanceof SnpVerificationError &&
      err.code === SnpErrorCode.RootKeyMismatch &&
      /not the expected one for AMD Milan/.test(err.message),
  );
});
