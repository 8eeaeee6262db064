/**
 * @consortia/client's governance signers: webCryptoSigner (browsers; SEC 1 keys re-wrapped as
 * PKCS#8) and nodeCoseSigner (node:crypto). The oracle is the node's own request parser and
 * signature check (src/gov/cose-request.ts), which decides whether a node accepts a request:
 * every message must parse with CCF's headers and verify with the member certificate, and a
 * request signed with another member's key must not.
 */
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { test } from "node:test";
import {
  ClientError,
  ClientErrorCode,
  CoseAlg,
  signGovRequest,
  webCryptoSigner,
  type CoseSigner,
} from "@consortia/client";
import { nodeCoseSigner } from "@consortia/client/node";
import { generateIdentity, memberIdFromCert } from "../../../src/crypto/identity.js";
import { checkGovCoseSignature, parseGovCoseRequest } from "../../../src/gov/cose-request.js";

const NOW = new Date();

async function checkSigner(signer: CoseSigner, certPem: string, alg: CoseAlg): Promise<void> {
  assert.equal(signer.memberId, memberIdFromCert(certPem));
  assert.equal(signer.alg, alg);
  const payload = new TextEncoder().encode(JSON.stringify({ ballot: "export function vote() {}" }));
  const createdAt = Math.floor(NOW.getTime() / 1000);
  const bytes = await signGovRequest(
    signer,
    { type: "ballot", createdAt, proposalId: "p1" },
    payload,
  );
  const request = parseGovCoseRequest(bytes);
  assert.equal(request.kid, signer.memberId);
  assert.equal(request.msgType, "ballot");
  assert.equal(request.createdAt, createdAt);
  assert.equal(request.proposalId, "p1");
  assert.deepEqual(request.payload, payload);
  assert.deepEqual(checkGovCoseSignature(request, certPem), { kind: "valid" });
}

for (const [curve, alg] of [
  ["secp384r1", CoseAlg.ES384],
  ["secp256r1", CoseAlg.ES256],
] as const) {
  test(`both signers make governance requests the node accepts (${curve})`, async () => {
    const member = await generateIdentity({ name: "member0", curve, now: NOW });
    assert.match(member.privateKeyPem, /BEGIN EC PRIVATE KEY/, "keygen writes SEC 1 keys");
    const pem = { certPem: member.certPem, keyPem: member.privateKeyPem };
    await checkSigner(await webCryptoSigner(pem), member.certPem, alg);
    await checkSigner(nodeCoseSigner(pem), member.certPem, alg);
    // The same key as PKCS#8 PEM ("PRIVATE KEY") signs the same way in the browser signer.
    const pkcs8 = createPrivateKey(member.privateKeyPem).export({ type: "pkcs8", format: "pem" });
    const fromPkcs8 = await webCryptoSigner({ certPem: member.certPem, keyPem: String(pkcs8) });
    await checkSigner(fromPkcs8, member.certPem, alg);
  });
}

test("a key that is not the certificate's is refused up front; a forged kid does not verify", async () => {
  const alice = await generateIdentity({ name: "alice", now: NOW });
  const mallory = await generateIdentity({ name: "mallory", now: NOW });
  const mismatched = { certPem: alice.certPem, keyPem: mallory.privateKeyPem };
  await assert.rejects(webCryptoSigner(mismatched), /not the member certificate's key/);
  assert.throws(() => nodeCoseSigner(mismatched), /not the member certificate's key/);
  // Mallory's signer claiming Alice's member id: the node must refuse the signature.
  const malloryPem = { certPem: mallory.certPem, keyPem: mallory.privateKeyPem };
  const forged = {
    ...(await webCryptoSigner(malloryPem)),
    memberId: memberIdFromCert(alice.certPem),
  };
  const bytes = await signGovRequest(forged, { type: "proposal", createdAt: 1 }, new Uint8Array(0));
  const check = checkGovCoseSignature(parseGovCoseRequest(bytes), alice.certPem);
  assert.equal(check.kind, "invalid");
});

test("the browser signer exposes no key material, and unusable PEM is a BadKey error", async () => {
  const member = await generateIdentity({ name: "m", now: NOW });
  const signer = await webCryptoSigner({ certPem: member.certPem, keyPem: member.privateKeyPem });
  assert.deepEqual(Object.keys(signer).sort(), ["alg", "memberId", "sign"]);
  const bad = [
    { certPem: member.certPem, keyPem: "not a key" },
    { certPem: "not a cert", keyPem: member.privateKeyPem },
    {
      certPem: member.certPem,
      keyPem: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
    },
  ];
  for (const pem of bad) {
    await assert.rejects(webCryptoSigner(pem), (err: unknown) => {
      assert.ok(err instanceof ClientError, String(err));
      assert.equal(err.code, ClientErrorCode.BadKey);
      return true;
    });
    assert.throws(
      () => nodeCoseSigner(pem),
      (err: unknown) => {
        assert.ok(err instanceof ClientError, String(err));
        assert.equal(err.code, ClientErrorCode.BadKey);
        return true;
      },
    );
  }
});
