// The COSE signature of a signature transaction (src/ledger/cose-signature.ts, signSign1Detached
// in src/crypto/cose.ts), as CCF 6 writes it into public:ccf.internal.cose_signatures. Oracles: a
// value recorded from a ledger CCF 6.0.17 wrote (its tests/testdata/cose_flipflop_service,
// signature 2.16, with that service's certificate) must verify with our checker, and the bytes
// we sign must have the same layout as CCF's, header for header (the CBOR below is decoded by
// hand from CCF's value); openssl-free: the signature itself is checked with node:crypto, a
// different ECDSA implementation from the one that signs (@noble/curves). Then each way a COSE
// signature can be wrong is reported: another root, key, kid, txid or vds, and malformed values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { fromBase64, fromHex, toHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno, View } from "../../../src/base/ids.js";
import { decodeSign1, sign1ToBeSigned, signSign1Detached } from "../../../src/crypto/cose.js";
import { publicKeyId } from "../../../src/crypto/identity.js";
import {
  CoseSignatureChecker,
  CoseSignatureError,
  coseSignaturesConfigOf,
  decodeCoseSignatureValue,
  encodeCoseSignatureValue,
  rootSignatureHeader,
  type RootSignatureHeaderInput,
} from "../../../src/ledger/cose-signature.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";

const identitiesPromise = createStartIdentities({ now: new Date() });
const otherPromise = createStartIdentities({ now: new Date() });

/** CCF 6.0.17's test service (cose_flipflop_service/common/service_cert.pem). */
const CCF_SERVICE_CERT = `-----BEGIN CERTIFICATE-----
MIIBxzCCAU6gAwIBAgIRANl2+C0zZDIT2lMUKTXnYYEwCgYIKoZIzj0EAwMwGzEZ
MBcGA1UEAwwQQ0NGIFRlc3QgU2VydmljZTAeFw0yNTA1MTQwOTM4MjlaFw0yNTA4
MTIwOTM4MjhaMBsxGTAXBgNVBAMMEENDRiBUZXN0IFNlcnZpY2UwdjAQBgcqhkjO
PQIBBgUrgQQAIgNiAAS0OZpyTj4YkNdKkdb2oyWQyWl+3t4CW8GoDZV2wAwCT4qY
qHvFlUV6/x9Po1vSO3jhZGSalh7Xt5g+/n/27oeJ3hwUuCFSHul5h83iz0/ic1cR
PUZfb2q3w9BkxH0KDOyjVjBUMBIGA1UdEwEB/wQIMAYBAf8CAQEwHQYDVR0OBBYE
FGOM7cxAKjqDINga++n9fP/VYD3/MB8GA1UdIwQYMBaAFGOM7cxAKjqDINga++n9
fP/VYD3/MAoGCCqGSM49BAMDA2cAMGQCMFwMjw+TrzJdDX6TwzTDxEZ1lbeMBoQZ
ggP6dDyixzMM5fpf8IcVzIEmFLxhcHIxwQIwf0Er1e/V4liei8BrmDMVSoZ49ET9
XTYUeiwfi4L9bH5AeZE3s7nl9YeZTYx7TqGO
-----END CERTIFICATE-----
`;

/** The cose_signatures value of CCF's signature 2.16 in that ledger, and the root it signs. */
const CCF_VALUE =
  '"0oRYjKUBOCIEWEBkZjc3ODc1ZGE1NDUyZDVkNGViY2EyZTkwYzY0NGZiZGU5ZmY5NmI5MmJjNjU1YTg5OWZkYzkxNzE2' +
  "NDFmZmRiGQGLAg+jBhpoJGSXAXNzZXJ2aWNlLmV4YW1wbGUuY29tAnBsZWRnZXIuc2lnbmF0dXJlZmNjZi52MaFkdHhp" +
  "ZGQyLjE2oPZYYETvlfLkiGjzvFfO+PKcEvOMap3SyErD9pp8Z+7/NIulfOWByQYYkIjTFr14UVxVWA0jDC+l4F620/yy" +
  'afUC5YqzQDsEOFITGrsnrCu1fy+AdocIEOxc7+XP5ZDTGD4nGg=="';
const CCF_ROOT = fromHex("e05d50857029a0ae4f86b9563239b5b1f2097b76108e692034b16358221cea97")!;
const CCF_TXID = { view: 2 as View, seqno: 16 as Seqno };

/**
 * CCF's protected header of that signature, by hand: a5 (map of 5), 01 38 22 (alg -35),
 * 04 58 40 <64 ASCII hex> (kid), 19 01 8b 02 (395: 2), 0f a3 (15: map of 3) 06 1a <u32 iat>
 * 01 73 <19-char issuer> 02 70 <16-char subject>, 66 "ccf.v1" a1 64 "txid" 64 "2.16".
 */
function expectedHeader(input: {
  kid: string;
  iat: number;
  iss: string;
  sub: string;
  txid: string;
}) {
  const text = (s: string) => {
    assert.ok(s.length < 24, "short text in the test");
    return (0x60 + s.length).toString(16).padStart(2, "0") + toHex(utf8(s));
  };
  return (
    "a5" +
    "013822" +
    "045840" +
    toHex(utf8(input.kid)) +
    "19018b02" +
    "0fa3" +
    "061a" +
    input.iat.toString(16).padStart(8, "0") +
    "01" +
    text(input.iss) +
    "02" +
    text(input.sub) +
    text("ccf.v1") +
    "a1" +
    text("txid") +
    text(input.txid)
  );
}

function headerInput(kid: string, overrides: Partial<RootSignatureHeaderInput> = {}) {
  return {
    keyId: kid,
    txId: { view: 3 as View, seqno: 41 as Seqno },
    issuedAtSeconds: 1_747_215_511,
    config: { issuer: "service.example.com", subject: "ledger.signature" },
    ...overrides,
  };
}

test("a COSE signature CCF 6 wrote verifies with our checker against CCF's service cert", () => {
  const sign1 = decodeCoseSignatureValue(utf8(CCF_VALUE));
  const checker = new CoseSignatureChecker();
  const expect = { serviceCertPem: CCF_SERVICE_CERT, root: CCF_ROOT, txId: CCF_TXID };
  assert.equal(checker.check(sign1, expect), null);
  assert.deepEqual(coseSignaturesConfigOf(sign1), {
    issuer: "service.example.com",
    subject: "ledger.signature",
  });
  // Its protected header is the layout we write.
  const message = decodeSign1(sign1, { detachedPayload: CCF_ROOT });
  const kid = publicKeyId(createPublicKey(CCF_SERVICE_CERT));
  assert.equal(
    toHex(message.protectedBytes),
    expectedHeader({
      kid,
      iat: 0x68246497,
      iss: "service.example.com",
      sub: "ledger.signature",
      txid: "2.16",
    }),
  );
  // Another root, or another txid, does not pass.
  assert.match(checker.check(sign1, { ...expect, root: new Uint8Array(32) })!, /does not verify/);
  const txId = { view: 2 as View, seqno: 17 as Seqno };
  assert.match(checker.check(sign1, { ...expect, txId })!, /txid 2\.16 is not .* 2\.17/);
});

test("we sign CCF's header layout, tagged, unprotected empty, payload nil, verifiable by node", async () => {
  const ids = await identitiesPromise;
  const key = ids.serviceKeys.privateKey;
  const kid = publicKeyId(key);
  const root = fromHex("11".repeat(32))!;
  const sign1 = signSign1Detached(key, rootSignatureHeader(headerInput(kid)), root);
  // d2 = tag 18, 84 = array of 4, then the protected bstr.
  assert.equal(toHex(sign1.subarray(0, 2)), "d284");
  const message = decodeSign1(sign1, { requireTag: true, detachedPayload: root });
  assert.equal(
    toHex(message.protectedBytes),
    expectedHeader({
      kid,
      iat: 1_747_215_511,
      iss: "service.example.com",
      sub: "ledger.signature",
      txid: "3.41",
    }),
  );
  assert.equal(message.unprotectedHeader.size, 0);
  assert.equal(message.signature.byteLength, 96, "ES384: r || s");
  const ok = verify(
    "sha384",
    sign1ToBeSigned(message.protectedBytes, root),
    { key: createPublicKey(ids.serviceCertPem), dsaEncoding: "ieee-p1363" },
    message.signature,
  );
  assert.ok(ok, "node:crypto verifies the signature over the Sig_structure");
  // Deterministic: the same inputs sign the same bytes.
  assert.equal(
    toHex(signSign1Detached(key, rootSignatureHeader(headerInput(kid)), root)),
    toHex(sign1),
  );
  // The map value is CCF's: a JSON string of the base64.
  const value = encodeCoseSignatureValue(sign1);
  assert.equal(
    new TextDecoder().decode(value),
    JSON.stringify(Buffer.from(sign1).toString("base64")),
  );
  assert.equal(toHex(decodeCoseSignatureValue(value)), toHex(sign1));
});

test("a COSE signature by another key, or with another kid, txid or vds, is reported", async () => {
  const ids = await identitiesPromise;
  const other = await otherPromise;
  const key = ids.serviceKeys.privateKey;
  const kid = publicKeyId(key);
  const root = fromHex("22".repeat(32))!;
  const txId = { view: 3 as View, seqno: 41 as Seqno };
  const checker = new CoseSignatureChecker();
  const expect = { serviceCertPem: ids.serviceCertPem, root, txId };
  const sign = (k = key, header = rootSignatureHeader(headerInput(kid))) =>
    signSign1Detached(k, header, root);
  assert.equal(checker.check(sign(), expect), null);
  assert.match(checker.check(sign(other.serviceKeys.privateKey), expect)!, /does not verify/);
  const otherKid = rootSignatureHeader(headerInput(publicKeyId(other.serviceKeys.privateKey)));
  assert.match(checker.check(sign(key, otherKid), expect)!, /kid is not/);
  const otherTx = rootSignatureHeader(headerInput(kid, { txId: { ...txId, seqno: 40 as Seqno } }));
  assert.match(
    checker.check(sign(key, otherTx), expect)!,
    /txid 3\.40 is not the signature's 3\.41/,
  );
  const vds3 = rootSignatureHeader(headerInput(kid)).map(([l, v]) =>
    l === 395 ? ([l, 3] as [number, unknown]) : [l, v],
  ) as ReturnType<typeof rootSignatureHeader>;
  assert.match(checker.check(sign(key, vds3), expect)!, /vds \(395\) is not 2/);
  const flipped = sign();
  flipped[flipped.byteLength - 5]! ^= 1;
  assert.match(checker.check(flipped, expect)!, /does not verify/);
  assert.match(checker.check(utf8("not cbor"), expect)!, /COSE signature/);
});

test("malformed cose_signatures values are CoseSignatureErrors", () => {
  for (const value of ["{}", "not json", "42", JSON.stringify("!!not base64!!")]) {
    assert.throws(() => decodeCoseSignatureValue(utf8(value)), CoseSignatureError, value);
  }
  assert.ok(fromBase64(JSON.parse(CCF_VALUE) as string) !== null);
});
