// COSE receipts checked by CCF itself (ccf-compatibility.md §6.5, §12): receipts encoded by
// src/ledger/cose-receipt.ts, over COSE root signatures with CCF 6's headers, are fed to
// `ccf.cose.verify_receipt` from CCF 6.0.17's Python package (the oracle; python3 subprocess).
// It must accept them with the right claims digest and refuse a tampered proof and a wrong
// claims digest, so the test fails if CCF's verifier and ours disagree. Skipped, with the reason,
// when python3, `cryptography` or the oracle is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { coseProofOfReceipt, encodeCoseReceipt } from "../../../src/ledger/cose-receipt.js";
import {
  makeCoseReceiptParts,
  oracleUnavailable,
  oracleVerifyCoseReceipt,
} from "../../helpers/cose-receipts.js";
import { makePki } from "../../helpers/pki.js";

const skip = oracleUnavailable();
if (skip !== null) console.log(`# skipping CCF oracle tests: ${skip}`);

test("CCF's verify_receipt accepts our COSE receipts", { skip: skip ?? false }, async () => {
  for (const curve of ["secp384r1", "secp256r1"] as const) {
    const pki = await makePki({ curve });
    for (const [leafCount, index] of [
      [1, 0],
      [6, 2],
      [11, 10],
    ] as const) {
      const parts = makeCoseReceiptParts(pki, {
        leafCount,
        index,
        signature: { txid: `2.${leafCount + 1}` },
      });
      const proof = coseProofOfReceipt(parts.receipt)!;
      const receipt = encodeCoseReceipt(parts.coseSignature, proof);
      const run = oracleVerifyCoseReceipt(receipt, pki.serviceCertPem, proof.claimsDigest);
      assert.ok(run.ok, `${curve} ${leafCount}/${index}: ${run.output}`);
      assert.equal(run.output, `ok service.example.com ledger.signature 2.${leafCount + 1}`);
    }
  }
});

test("CCF's verify_receipt refuses what ours refuses", { skip: skip ?? false }, async () => {
  const pki = await makePki();
  const other = await makePki();
  const parts = makeCoseReceiptParts(pki, { leafCount: 6, index: 3 });
  const proof = coseProofOfReceipt(parts.receipt)!;
  const good = encodeCoseReceipt(parts.coseSignature, proof);

  const wrongClaims = oracleVerifyCoseReceipt(good, pki.serviceCertPem, new Uint8Array(32).fill(7));
  assert.ok(!wrongClaims.ok);
  assert.match(wrongClaims.output, /Claim digest mismatch/);

  const tampered = new Uint8Array(proof.writeSetDigest);
  tampered[5] = tampered[5]! ^ 0x80;
  const forged = encodeCoseReceipt(parts.coseSignature, { ...proof, writeSetDigest: tampered });
  const run = oracleVerifyCoseReceipt(forged, pki.serviceCertPem, proof.claimsDigest);
  assert.ok(!run.ok);
  assert.match(run.output, /Signature verification failed/);

  // The kid names the signing key: another service's certificate fails CCF's kid check.
  const foreign = oracleVerifyCoseReceipt(good, other.serviceCertPem, proof.claimsDigest);
  assert.ok(!foreign.ok, foreign.output);
});
