/**
 * Test fixtures for COSE receipts: the service key's COSE signature over a Merkle root with CCF
 * 6's protected headers (alg, kid = bytes of the hex SHA-256 of the service key's SPKI DER,
 * CWT {iss, sub, iat}, vds = 2, "ccf.v1" {txid}), payload detached, as a CCF 6 signature
 * transaction stores it; and the oracle, CCF's own `ccf.cose.verify_receipt` run with python3.
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tagged, encode } from "cborg";
import type { EcKeyPair } from "../../src/crypto/certs.js";
import { makeReceipt, tempDir, type TestPki, type TestReceipt } from "./pki.js";
import { CCF_ORACLE_DIR } from "./ccf-oracle-dir.js";

export interface CoseSignatureOptions {
  /** The txId of the signature transaction, "view.seqno". */
  readonly txid?: string;
  /** Overrides the kid (default: that of `keys.publicKey`). */
  readonly kid?: Uint8Array;
  /** Overrides vds (default 2); null leaves it out. */
  readonly vds?: number | null;
  readonly issuedAt?: number;
}

/** The kid CCF puts in its root signatures: the bytes of the hex SHA-256 of the SPKI DER. */
export function kidOf(publicKey: KeyObject): Uint8Array {
  const spki = publicKey.export({ type: "spki", format: "der" });
  return new TextEncoder().encode(createHash("sha256").update(spki).digest("hex"));
}

/**
 * A COSE_Sign1 over `root` (detached) with CCF 6's root-signature headers, assembled here from
 * cborg and node:crypto (the Sig_structure of RFC 9052 over the root, ECDSA r||s), not by
 * src/crypto/cose.ts, so the code under test does not check itself.
 */
export function makeCoseRootSignature(
  keys: EcKeyPair,
  root: Uint8Array,
  options: CoseSignatureOptions = {},
): Uint8Array {
  const curve = keys.privateKey.asymmetricKeyDetails?.namedCurve;
  const [alg, hash] = curve === "prime256v1" ? [-7, "sha256"] : [-35, "sha384"];
  const header = new Map<number | string, unknown>([
    [1, alg],
    [4, options.kid ?? kidOf(keys.publicKey)],
    [
      15,
      new Map<number, unknown>([
        [1, "service.example.com"],
        [2, "ledger.signature"],
        [6, options.issuedAt ?? 1_700_000_000],
      ]),
    ],
    ["ccf.v1", new Map([["txid", options.txid ?? "2.10"]])],
  ]);
  if (options.vds !== null) header.set(395, options.vds ?? 2);
  const protectedBytes = encode(header);
  const toBeSigned = encode(["Signature1", protectedBytes, new Uint8Array(0), root]);
  const signature = sign(hash, toBeSigned, { key: keys.privateKey, dsaEncoding: "ieee-p1363" });
  return encode(new Tagged(18, [protectedBytes, new Map(), null, new Uint8Array(signature)]));
}

export interface TestCoseReceipt extends TestReceipt {
  /** The service's COSE signature over `root`. */
  readonly coseSignature: Uint8Array;
}

/** makeReceipt (a JSON receipt over a naive tree) plus the service's COSE signature of its root. */
export function makeCoseReceiptParts(
  pki: TestPki,
  options: { leafCount: number; index: number; signature?: CoseSignatureOptions },
): TestCoseReceipt {
  const parts = makeReceipt(pki, { leafCount: options.leafCount, index: options.index });
  const coseSignature = makeCoseRootSignature(pki.serviceKeys, parts.root, options.signature);
  return { ...parts, coseSignature };
}

/** CCF 6.0.17's Python package (test/helpers/ccf-oracle-dir.ts). */
const ORACLE = CCF_ORACLE_DIR;

const VERIFY_SCRIPT = `
import sys
from cryptography.x509 import load_pem_x509_certificate
import ccf.cose
receipt = open(sys.argv[1], "rb").read()
cert = load_pem_x509_certificate(open(sys.argv[2], "rb").read())
phdr = ccf.cose.verify_receipt(receipt, cert.public_key(), bytes.fromhex(sys.argv[3]))
print("ok", phdr[15][1], phdr[15][2], phdr["ccf.v1"]["txid"])
`;

/** Why CCF's verifier cannot run here (no python3, no `cryptography`, no oracle), or null. */
export function oracleUnavailable(): string | null {
  const probe = spawnSync("python3", ["-c", "import cryptography, cbor2, ccf.cose"], {
    encoding: "utf8",
    env: { ...process.env, PYTHONPATH: `${ORACLE}:${ORACLE}/vendor` },
  });
  if (probe.error !== undefined) return `python3 cannot run (${probe.error.message})`;
  if (probe.status !== 0) {
    const reason = probe.stderr.trim().split("\n").at(-1) ?? "";
    return `CCF's Python oracle cannot load from ${ORACLE} (${reason})`;
  }
  return null;
}

/**
 * Runs `ccf.cose.verify_receipt(receipt, service key, claims digest)` from CCF 6.0.17's Python
 * package. Returns ok with what it printed, or the failure's last line (the exception).
 */
export function oracleVerifyCoseReceipt(
  receipt: Uint8Array,
  serviceCertPem: string,
  claimsDigest: Uint8Array,
): { ok: boolean; output: string } {
  const { dir, cleanup } = tempDir("cose-oracle-");
  try {
    writeFileSync(join(dir, "receipt.cose"), receipt);
    writeFileSync(join(dir, "service_cert.pem"), serviceCertPem);
    const args = [
      "-c",
      VERIFY_SCRIPT,
      join(dir, "receipt.cose"),
      join(dir, "service_cert.pem"),
      Buffer.from(claimsDigest).toString("hex"),
    ];
    const run = spawnSync("python3", args, {
      encoding: "utf8",
      env: { ...process.env, PYTHONPATH: `${ORACLE}:${ORACLE}/vendor` },
    });
    const ok = run.status === 0 && run.stdout.startsWith("ok ");
    // A failure's last line is the Python exception, which names what CCF's verifier refused.
    const lines = `${run.stdout}${run.stderr}`.trim().split("\n");
    return { ok, output: ok ? run.stdout.trim() : (lines.at(-1) ?? "") };
  } finally {
    cleanup();
  }
}
