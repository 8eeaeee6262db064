/**
 * Receipts verified by @consortia/client (WebCrypto, @noble/curves, @peculiar/x509), against
 * receipts built by the test helpers: JSON receipts over a naive Merkle tree signed with the
 * node key (test/helpers/pki.ts), COSE receipts from a COSE root signature assembled with cborg
 * and node:crypto (test/helpers/cose-receipts.ts). CCF's own `ccf.cose.verify_receipt` (Python,
 * CCF 6.0.17) is the oracle that the COSE receipts accepted here are ones CCF accepts. Every
 * tampered receipt must be refused with ClientError(ReceiptInvalid) naming the failed check.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ClientError,
  ClientErrorCode,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "@consortia/client";
import { endorseServiceCertificate } from "../../../src/crypto/cert-issuance.js";
import { coseProofOfReceipt, encodeCoseReceipt } from "../../../src/ledger/cose-receipt.js";
import {
  makeCoseReceiptParts,
  oracleUnavailable,
  oracleVerifyCoseReceipt,
  type CoseSignatureOptions,
} from "../../helpers/cose-receipts.js";
import { makePki, makeReceipt, type TestPki } from "../../helpers/pki.js";

const pkiPromise = makePki();
const otherPkiPromise = makePki();
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

async function rejects(promise: Promise<unknown>, reason: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ClientError, String(err));
    assert.equal(err.code, ClientErrorCode.ReceiptInvalid);
    assert.match(err.message, reason);
    return true;
  });
}

/** What a client reads back from GET /app/receipt. */
function jsonReceipt(pki: TestPki, leafCount: number, index: number) {
  const made = makeReceipt(pki, { leafCount, index });
  return { json: JSON.parse(JSON.stringify(made.receipt)) as Record<string, any>, root: made.root };
}

test("JSON receipts of every leaf of small trees verify, on P-384 and P-256", async () => {
  for (const pki of [await pkiPromise, await makePki({ curve: "secp256r1" })]) {
    for (const leafCount of [1, 2, 5, 8]) {
      for (let index = 0; index < leafCount; index++) {
        const { json, root } = jsonReceipt(pki, leafCount, index);
        const proven = await verifyJsonReceipt(json, { serviceCertPem: pki.serviceCertPem });
        assert.equal(hex(proven.root), hex(root));
        assert.equal(proven.commitEvidence, json.leaf_components.commit_evidence);
      }
    }
  }
});

test("a signature transaction's JSON receipt (leaf = the signed root) verifies", async () => {
  const pki = await pkiPromise;
  const { json, root } = jsonReceipt(pki, 4, 1);
  const { leaf_components: _dropped, ...rest } = json;
  const signed = { ...rest, leaf: hex(root), proof: [] };
  const proven = await verifyJsonReceipt(signed, { serviceCertPem: pki.serviceCertPem });
  assert.equal(hex(proven.root), hex(root));
});

test("a tampered JSON receipt is refused, saying which check failed", async () => {
  const pki = await pkiPromise;
  const other = await otherPkiPromise;
  const trust = { serviceCertPem: pki.serviceCertPem };
  const { json } = jsonReceipt(pki, 6, 3);
  const flip = (h: string) => (h[0] === "0" ? "1" : "0") + h.slice(1);
  const components = json.leaf_components;
  await rejects(
    verifyJsonReceipt(
      {
        ...json,
        leaf_components: { ...components, write_set_digest: flip(components.write_set_digest) },
      },
      trust,
    ),
    /signature does not verify over root/,
  );
  await rejects(
    verifyJsonReceipt(
      {
        ...json,
        leaf_components: { ...components, claims_digest: flip(components.claims_digest) },
      },
      trust,
    ),
    /signature does not verify/,
  );
  const step = json.proof[0];
  const swapped = "left" in step ? { right: step.left } : { left: step.right };
  await rejects(
    verifyJsonReceipt({ ...json, proof: [swapped, ...json.proof.slice(1)] }, trust),
    /signature does not verify/,
  );
  await rejects(
    verifyJsonReceipt({ ...json, proof: json.proof.slice(1) }, trust),
    /signature does not verify/,
  );
  const otherSignature = makeReceipt(pki, {
    leafCount: 6,
    index: 3,
    signer: other.nodeKeys.privateKey,
  });
  await rejects(
    verifyJsonReceipt({ ...json, signature: otherSignature.receipt.signature }, trust),
    /signature does not verify/,
  );
  await rejects(
    verifyJsonReceipt({ ...json, node_id: other.nodeId }, trust),
    /node_id .* is not the SHA-256 of the cert's key/,
  );
  await rejects(
    verifyJsonReceipt(json, { serviceCertPem: other.serviceCertPem }),
    /not issued by the service certificate/,
  );
  await rejects(
    verifyJsonReceipt({ ...json, cert: "junk" }, trust),
    /cert is not a PEM X.509 certificate/,
  );
  await rejects(verifyJsonReceipt({ ...json, proof: [{ up: "00" }] }, trust), /proof\[0\] is not/);
  const zeros = new Uint8Array(32).fill(7);
  await rejects(
    verifyJsonReceipt(json, { ...trust, claimsDigest: zeros }),
    /claims digest .* is not the expected/,
  );
});

test("a JSON receipt of a previous service identity verifies only through an endorsement", async () => {
  const previous = await pkiPromise;
  const current = await otherPkiPromise;
  const endorse = (issuer: TestPki) =>
    endorseServiceCertificate({
      servicePrivateKey: issuer.serviceKeys.privateKey,
      serviceCertPem: issuer.serviceCertPem,
      endorsedPublicKey: previous.serviceKeys.publicKey,
      validityDays: 30,
      now: new Date(),
    });
  const made = makeReceipt(previous, {
    leafCount: 3,
    index: 2,
    serviceEndorsements: [await endorse(current)],
  });
  const json = JSON.parse(JSON.stringify(made.receipt)) as Record<string, unknown>;
  const proven = await verifyJsonReceipt(json, { serviceCertPem: current.serviceCertPem });
  assert.equal(hex(proven.root), hex(made.root));
  const selfEndorsed = { ...json, service_endorsements: [await endorse(previous)] };
  await rejects(
    verifyJsonReceipt(selfEndorsed, { serviceCertPem: current.serviceCertPem }),
    /not issued by the service/,
  );
});

function coseReceipt(
  pki: TestPki,
  leafCount: number,
  index: number,
  signature?: CoseSignatureOptions,
) {
  const parts = makeCoseReceiptParts(pki, { leafCount, index, ...(signature && { signature }) });
  const proof = coseProofOfReceipt(parts.receipt)!;
  return {
    bytes: encodeCoseReceipt(parts.coseSignature, proof),
    root: parts.root,
    claims: proof.claimsDigest,
  };
}

const oracleSkip = oracleUnavailable();

test("COSE receipts verify, and CCF's own verifier agrees", async () => {
  for (const pki of [await pkiPromise, await makePki({ curve: "secp256r1" })]) {
    for (const [leafCount, index] of [
      [1, 0],
      [6, 2],
      [11, 10],
    ] as const) {
      const { bytes, root, claims } = coseReceipt(pki, leafCount, index);
      const proven = await verifyCoseReceipt(bytes, {
        serviceCertPem: pki.serviceCertPem,
        claimsDigest: claims,
      });
      assert.equal(hex(proven.root), hex(root));
      if (oracleSkip === null) {
        const run = oracleVerifyCoseReceipt(bytes, pki.serviceCertPem, claims);
        assert.ok(run.ok, run.output);
      }
    }
  }
  if (oracleSkip !== null) console.log(`# CCF oracle not run: ${oracleSkip}`);
});

test("a tampered COSE receipt is refused, saying which check failed", async () => {
  const pki = await pkiPromise;
  const other = await otherPkiPromise;
  const trust = { serviceCertPem: pki.serviceCertPem };
  const { bytes } = coseReceipt(pki, 6, 2);
  // The last bytes are the signature's: flip one.
  const badSignature = new Uint8Array(bytes);
  badSignature[badSignature.length - 1]! ^= 1;
  await rejects(verifyCoseReceipt(badSignature, trust), /does not verify over root/);
  // A byte inside the proof (header 396) changes the leaf or path, so the root.
  const proofAt = Buffer.from(bytes).indexOf(Buffer.from("ce:"));
  const badProof = new Uint8Array(bytes);
  badProof[proofAt + 10]! ^= 1;
  await rejects(verifyCoseReceipt(badProof, trust), /does not verify over root/);
  await rejects(
    verifyCoseReceipt(bytes, { serviceCertPem: other.serviceCertPem }),
    /kid .* is not the service key's/,
  );
  await rejects(
    verifyCoseReceipt(coseReceipt(pki, 4, 1, { vds: 1 }).bytes, trust),
    /vds \(395\) is not 2/,
  );
  await rejects(
    verifyCoseReceipt(bytes, { ...trust, claimsDigest: new Uint8Array(32).fill(9) }),
    /claims digest/,
  );
  await rejects(verifyCoseReceipt(new Uint8Array([0xd2, 0x01]), trust), /malformed COSE/);
});
