// UVM endorsements and did:x509 (src/crypto/uvm-endorsements.ts, did-x509.ts) on CCF's real
// vectors (test/fixtures/snp/uvm: Microsoft-signed RSA-PSS endorsements of the AKS and ACI UVMs,
// with the measurements and DIDs CCF's own tests use), and on a synthetic ECDSA P-384 chain made
// here for the cases no vector covers. The oracle is CCF's endorsements.cpp: the descriptor each
// vector yields, the roots of trust it matches, and its error text for an untrusted feed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash, createPrivateKey, sign, webcrypto } from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { decode, encode, Tagged } from "cborg";
import { CcfError } from "../../../src/base/errors.js";
import { DidX509ErrorCode, resolveDidX509 } from "../../../src/crypto/did-x509.js";
import {
  matchUvmRootsOfTrust,
  UvmEndorsementErrorCode,
  verifyUvmEndorsements,
  type UvmRootOfTrust,
} from "../../../src/crypto/uvm-endorsements.js";
import { sign1ToBeSigned } from "../../../src/crypto/cose.js";

x509.cryptoProvider.set(webcrypto);

function assertCode(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CcfError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

const DIR = "test/fixtures/snp/uvm";
const rsa = new Uint8Array(readFileSync(`${DIR}/rsa_test1.cose`));
const ecdsaNamed = new Uint8Array(readFileSync(`${DIR}/ecdsa_test1.cose`));
const intSvn = new Uint8Array(readFileSync(`${DIR}/int_svn.cose`));
const MS_CA = "did:x509:0:sha256:I__iuL25oXEVFdTP_aBLx_eT1RPHbCQ_ECBQfYZpt9s";
/** CCF's default_uvm_roots_of_trust (src/node/uvm_endorsements.h). */
const DEFAULT_ROOTS: UvmRootOfTrust[] = [
  { did: `${MS_CA}::eku:1.3.6.1.4.1.311.76.59.1.2`, feed: "ContainerPlat-AMD-UVM", svn: "100" },
  { did: `${MS_CA}::eku:1.3.6.1.4.1.311.76.59.1.5`, feed: "ConfAKS-AMD-UVM", svn: "1" },
];
const RSA_MEASUREMENT =
  "02c3b0d5bf1d256fa4e3b5deefc07b55ff2f7029085ed350f60959140a1a51f1310753ba5ab2c03a0536b1c0c193af47";
const ECDSA_MEASUREMENT =
  "1b66347ceafca663690ff17ed2144b8acdee661edc5d28e69a7c85dde7ba0c3a6f9862096e8b38da7aa622ddeed75c37";

function chainOf(raw: Uint8Array): Uint8Array[] {
  const msg = decode(raw, { useMaps: true, tags: Tagged.preserve(0, 1, 18) }) as Tagged;
  const header = decode((msg.value as Uint8Array[])[0]!, {
    useMaps: true,
    tags: Tagged.preserve(0, 1),
  }) as Map<unknown, unknown>;
  return header.get(33) as Uint8Array[];
}

test("CCF's vectors verify and match CCF's default roots of trust as CCF's tests expect", () => {
  const e = verifyUvmEndorsements(rsa);
  assert.deepEqual(e, { ...DEFAULT_ROOTS[0], measurement: RSA_MEASUREMENT });
  assert.deepEqual(matchUvmRootsOfTrust(e, RSA_MEASUREMENT, DEFAULT_ROOTS), DEFAULT_ROOTS[0]);
  const aks = verifyUvmEndorsements(ecdsaNamed);
  assert.deepEqual(matchUvmRootsOfTrust(aks, ECDSA_MEASUREMENT, DEFAULT_ROOTS), DEFAULT_ROOTS[1]);
  // An integer guestsvn is kept as its decimal string.
  assert.equal(verifyUvmEndorsements(intSvn).svn, "102");
});

test("roots of trust: feed, DID and minimum svn must all match; the measurement must be the report's", () => {
  const e = verifyUvmEndorsements(ecdsaNamed);
  const malicious = [{ ...DEFAULT_ROOTS[1]!, feed: "Malicious-ConfAKS-AMD-UVM" }];
  assertCode(
    () => matchUvmRootsOfTrust(e, ECDSA_MEASUREMENT, malicious),
    UvmEndorsementErrorCode.NotTrusted,
    new RegExp(
      `^UVM endorsements did ${MS_CA}::eku:1.3.6.1.4.1.311.76.59.1.5, feed ConfAKS-AMD-UVM, ` +
        "svn 1 do not match any of the known UVM roots of trust$",
    ),
  );
  const higher = [{ ...DEFAULT_ROOTS[1]!, svn: "2" }];
  assertCode(
    () => matchUvmRootsOfTrust(e, ECDSA_MEASUREMENT, higher),
    UvmEndorsementErrorCode.NotTrusted,
    /svn 1/,
  );
  const otherDid = [{ ...DEFAULT_ROOTS[1]!, did: DEFAULT_ROOTS[0]!.did }];
  assertCode(
    () => matchUvmRootsOfTrust(e, ECDSA_MEASUREMENT, otherDid),
    UvmEndorsementErrorCode.NotTrusted,
    /do not match/,
  );
  assertCode(
    () => matchUvmRootsOfTrust(e, RSA_MEASUREMENT, DEFAULT_ROOTS),
    UvmEndorsementErrorCode.MeasurementMismatch,
    /endorsed launch measurement 1b66.* is not the report's 02c3/,
  );
});

test("a changed byte in the signature or the payload fails the signature", () => {
  const sig = rsa.slice();
  sig[sig.length - 1] = sig.at(-1)! ^ 1;
  assertCode(
    () => verifyUvmEndorsements(sig),
    UvmEndorsementErrorCode.SignatureInvalid,
    /does not verify/,
  );
  const payload = rsa.slice();
  const at = Buffer.from(payload).indexOf("02c3b0d5");
  payload[at] = "1".charCodeAt(0);
  assertCode(
    () => verifyUvmEndorsements(payload),
    UvmEndorsementErrorCode.SignatureInvalid,
    /does not verify/,
  );
  assertCode(
    () => verifyUvmEndorsements(rsa.subarray(0, 100)),
    UvmEndorsementErrorCode.Malformed,
    /not CBOR/,
  );
  assertCode(
    () => verifyUvmEndorsements(encode([1, 2])),
    UvmEndorsementErrorCode.Malformed,
    /tagged COSE_Sign1/,
  );
});

test("did:x509 resolution: fingerprint, eku, subject and san policies over the vector's chain", () => {
  const chain = chainOf(rsa);
  const leafKey = resolveDidX509(chain, DEFAULT_ROOTS[0]!.did);
  assert.equal(leafKey.asymmetricKeyType, "rsa");
  assert.ok(resolveDidX509(chain, `${MS_CA}::subject:CN:ContainerPlat:O:Microsoft%20Corporation`));
  const cases: [string, DidX509ErrorCode, RegExp][] = [
    [
      `${MS_CA}::eku:1.3.6.1.4.1.311.76.59.1.5`,
      DidX509ErrorCode.PolicyFailed,
      /no extended key usage 1.3.6.1.4.1.311.76.59.1.5/,
    ],
    [
      `did:x509:0:sha256:${"A".repeat(43)}::eku:1.3.6.1.4.1.311.76.59.1.2`,
      DidX509ErrorCode.FingerprintMismatch,
      /fingerprint/,
    ],
    [`${MS_CA}::subject:CN:Evil`, DidX509ErrorCode.PolicyFailed, /no CN=Evil/],
    [`${MS_CA}::subject:CN`, DidX509ErrorCode.MalformedDid, /key-value pairs/],
    [`${MS_CA}::eku`, DidX509ErrorCode.MalformedDid, /invalid policy "eku"/],
    [
      `${MS_CA}::san:dns:example.com`,
      DidX509ErrorCode.PolicyFailed,
      /no subject alternative name DNS:example.com/,
    ],
    [
      `${MS_CA}::fulcio-issuer:accounts.google.com`,
      DidX509ErrorCode.UnsupportedPolicy,
      /fulcio-issuer/,
    ],
    [MS_CA, DidX509ErrorCode.MalformedDid, /no policy/],
    ["did:web:example.com::eku:1", DidX509ErrorCode.MalformedDid, /not a did:x509 DID/],
    [`did:x509:1:sha256:x::eku:1`, DidX509ErrorCode.MalformedDid, /version 1/],
    [`did:x509:0:md5:x::eku:1`, DidX509ErrorCode.MalformedDid, /fingerprint algorithm md5/],
  ];
  for (const [did, code, pattern] of cases)
    assertCode(() => resolveDidX509(chain, did), code, pattern);
  const did = DEFAULT_ROOTS[0]!.did;
  assertCode(() => resolveDidX509(chain.slice(0, 1), did), DidX509ErrorCode.BadChain, /too short/);
  assertCode(
    () => resolveDidX509([chain[0]!, chain[2]!], did),
    DidX509ErrorCode.BadChain,
    /not signed by certificate 1/,
  );
  assertCode(
    () => resolveDidX509(chain.slice(0, 2), did),
    DidX509ErrorCode.BadChain,
    /itself \(the root\)/,
  );
});

// ---- A synthetic ECDSA P-384 endorsement --------------------------------------------------

const EC = { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" } as const;
const EKU = "1.3.6.1.4.1.311.76.59.1.2";

async function ecEndorsement(payload: unknown, contentType = "application/json") {
  const gen = async () =>
    (await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const [root, leaf] = [await gen(), await gen()];
  const common = {
    notBefore: new Date("2024-01-01"),
    notAfter: new Date("2030-01-01"),
    signingAlgorithm: EC,
  };
  const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
    ...common,
    serialNumber: "01",
    name: "CN=Test UVM Root",
    keys: root,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  const leafCert = await x509.X509CertificateGenerator.create({
    ...common,
    serialNumber: "02",
    subject: "CN=Test UVM Signer",
    issuer: rootCert.subject,
    publicKey: leaf.publicKey,
    signingKey: root.privateKey,
    extensions: [new x509.ExtendedKeyUsageExtension([EKU])],
  });
  const fp = createHash("sha256").update(new Uint8Array(rootCert.rawData)).digest("base64url");
  const did = `did:x509:0:sha256:${fp}::eku:${EKU}`;
  const header = new Map<unknown, unknown>([
    [1, -35],
    [3, contentType],
    [33, [new Uint8Array(leafCert.rawData), new Uint8Array(rootCert.rawData)]],
    ["iss", did],
    ["feed", "test-feed"],
  ]);
  const protectedBytes = encode(header);
  const body = new TextEncoder().encode(JSON.stringify(payload));
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", leaf.privateKey);
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
  const signature = sign("sha384", sign1ToBeSigned(protectedBytes, body), {
    key,
    dsaEncoding: "ieee-p1363",
  });
  return {
    did,
    raw: encode(new Tagged(18, [protectedBytes, new Map(), body, new Uint8Array(signature)])),
  };
}

test("an ES384 endorsement over a generated chain verifies; bad payloads and content types fail", async () => {
  const m = "ab".repeat(48);
  const good = await ecEndorsement({
    "x-ms-sevsnpvm-launchmeasurement": m,
    "x-ms-sevsnpvm-guestsvn": 7,
  });
  assert.deepEqual(verifyUvmEndorsements(good.raw), {
    did: good.did,
    feed: "test-feed",
    svn: "7",
    measurement: m,
  });
  const text = await ecEndorsement(
    { "x-ms-sevsnpvm-launchmeasurement": m, "x-ms-sevsnpvm-guestsvn": "7" },
    "text/plain",
  );
  assertCode(
    () => verifyUvmEndorsements(text.raw),
    UvmEndorsementErrorCode.Malformed,
    /content type text\/plain/,
  );
  const badSvn = await ecEndorsement({
    "x-ms-sevsnpvm-launchmeasurement": m,
    "x-ms-sevsnpvm-guestsvn": "-1",
  });
  assertCode(
    () => verifyUvmEndorsements(badSvn.raw),
    UvmEndorsementErrorCode.Malformed,
    /guestsvn is not/,
  );
  const noMeasurement = await ecEndorsement({ "x-ms-sevsnpvm-guestsvn": 1 });
  assertCode(
    () => verifyUvmEndorsements(noMeasurement.raw),
    UvmEndorsementErrorCode.Malformed,
    /launchmeasurement/,
  );
});
