// COSE receipts (src/ledger/cose-receipt.ts; ccf-compatibility.md §6.5). Receipts are built from
// a JSON receipt over the naive Merkle tree of the PKI helper and a COSE root signature with CCF
// 6's headers made by the test helper. Oracles: the layout is read back with cborg directly (not
// through the decoder under test) against CCF's ccf-receipt.cddl, and the roots are the naive
// tree's. CCF's own verifier runs on the same receipts in cose-receipt-oracle.test.ts. Every
// forgery (tampered proof or leaf, wrong kid, vds, claims digest, signer) must be refused with a
// reason, and malformed receipts with a MalformedReceipt error naming the part.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tagged, decode, encode } from "cborg";
import { endorseServiceCertificate } from "../../../src/crypto/cert-issuance.js";
import { signSign1 } from "../../../src/crypto/cose.js";
import {
  CoseReceiptError,
  CoseReceiptErrorCode,
  coseProofOfReceipt,
  decodeCoseReceipt,
  encodeCoseReceipt,
  looksLikeCoseSign1,
  verifyCoseReceipt,
  type CoseInclusionProof,
  type CoseReceiptTrust,
  type VerifyCoseReceiptOptions,
} from "../../../src/ledger/cose-receipt.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../../src/kv/service-tables.js";
import {
  CoseSignatureError,
  decodeCoseSignatureValue,
  encodeCoseSignatureValue,
  findCoseSignature,
} from "../../../src/ledger/cose-signature.js";
import { makeCoseReceiptParts, makeCoseRootSignature } from "../../helpers/cose-receipts.js";
import { makePki, type TestPki } from "../../helpers/pki.js";

const pkiPromise = makePki();
const otherPkiPromise = makePki();

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

const DECODE = { useMaps: true, tags: Tagged.preserve(18) } as const;

/** A COSE receipt for leaf `index` of a `leafCount`-leaf tree, with its parts. */
function build(pki: TestPki, leafCount: number, index: number) {
  const parts = makeCoseReceiptParts(pki, { leafCount, index });
  const proof = coseProofOfReceipt(parts.receipt);
  assert.ok(proof !== null);
  return { ...parts, proof, bytes: encodeCoseReceipt(parts.coseSignature, proof) };
}

function assertValid(
  bytes: Uint8Array,
  trust: CoseReceiptTrust,
  root: Uint8Array,
  options: VerifyCoseReceiptOptions = {},
) {
  const result = verifyCoseReceipt(decodeCoseReceipt(bytes), trust, options);
  assert.equal(result.kind, "valid", result.kind === "invalid" ? result.reason : "");
  if (result.kind === "valid") assert.deepEqual(result.roots.map(hex), [hex(root)]);
  return result;
}

function assertInvalid(
  bytes: Uint8Array,
  trust: CoseReceiptTrust,
  reason: RegExp,
  options: VerifyCoseReceiptOptions = {},
): void {
  const result = verifyCoseReceipt(decodeCoseReceipt(bytes), trust, options);
  assert.equal(result.kind, "invalid");
  if (result.kind === "invalid") assert.match(result.reason, reason);
}

function assertMalformed(bytes: Uint8Array, path: RegExp): void {
  assert.throws(
    () => decodeCoseReceipt(bytes),
    (err: unknown) =>
      err instanceof CoseReceiptError &&
      err.type.code === CoseReceiptErrorCode.MalformedReceipt &&
      path.test(err.type.path),
  );
}

/** The receipt re-encoded with `proof` (any CBOR value) as its only inclusion proof. */
function withProofItem(bytes: Uint8Array, proof: unknown): Uint8Array {
  const tagged = decode(bytes, DECODE) as Tagged;
  const [phdr, , payload, signature] = tagged.value as unknown[];
  const uhdr = new Map([[396, new Map([[-1, [proof]]])]]);
  return encode(new Tagged(18, [phdr, uhdr, payload, signature]));
}

function withProof(bytes: Uint8Array, proof: CoseInclusionProof): Uint8Array {
  const leaf = [proof.writeSetDigest, proof.commitEvidence, proof.claimsDigest];
  const path = proof.path.map((s) => ("left" in s ? [true, s.left] : [false, s.right]));
  return withProofItem(
    bytes,
    encode(
      new Map<number, unknown>([
        [1, leaf],
        [2, path],
      ]),
    ),
  );
}

test("a COSE receipt has CCF's layout: the stored signature with the proof in header 396", async () => {
  const pki = await pkiPromise;
  const { bytes, coseSignature, proof, receipt } = build(pki, 7, 3);
  const tagged = decode(bytes, DECODE) as Tagged;
  assert.equal(tagged.tag, 18);
  const [phdr, uhdr, payload, signature] = tagged.value as [
    Uint8Array,
    Map<number, unknown>,
    null,
    Uint8Array,
  ];
  const stored = (decode(coseSignature, DECODE) as Tagged).value as unknown[];
  assert.equal(hex(phdr), hex(stored[0] as Uint8Array), "protected header bytes unchanged");
  assert.equal(payload, null, "payload detached");
  assert.equal(hex(signature), hex(stored[3] as Uint8Array), "signature unchanged");
  assert.deepEqual([...uhdr.keys()], [396]);
  const vdp = uhdr.get(396) as Map<number, unknown>;
  assert.deepEqual([...vdp.keys()], [-1]);
  const proofs = vdp.get(-1) as Uint8Array[];
  assert.equal(proofs.length, 1);
  const inner = decode(proofs[0]!, { useMaps: true }) as Map<number, unknown[]>;
  assert.deepEqual([...inner.keys()], [1, 2]);
  const [wsd, ce, cd] = inner.get(1)!;
  const components = receipt.leaf_components!;
  assert.equal(hex(wsd as Uint8Array), components.write_set_digest);
  assert.equal(ce, components.commit_evidence);
  assert.equal(hex(cd as Uint8Array), components.claims_digest);
  const path = inner.get(2) as [boolean, Uint8Array][];
  assert.deepEqual(
    path.map(([left, h]) => (left ? { left: hex(h) } : { right: hex(h) })),
    receipt.proof,
  );
  assert.equal(proof.path.length, receipt.proof.length);
});

test("COSE receipts verify against the service certificate, on P-384 and P-256", async () => {
  for (const pki of [await pkiPromise, await makePki({ curve: "secp256r1" })]) {
    for (const [leafCount, index] of [
      [1, 0],
      [2, 1],
      [7, 3],
      [7, 6],
      [16, 9],
    ] as const) {
      const { bytes, root, proof } = build(pki, leafCount, index);
      const trust = { serviceCertPem: pki.serviceCertPem };
      const result = assertValid(bytes, trust, root, { claimsDigest: proof.claimsDigest });
      assert.deepEqual(result.kind === "valid" && result.signer, { kind: "service" });
    }
  }
});

test("a tampered proof, leaf or signature does not verify", async () => {
  const pki = await pkiPromise;
  const trust = { serviceCertPem: pki.serviceCertPem };
  const { bytes, proof } = build(pki, 9, 4);
  const flip = (b: Uint8Array): Uint8Array => {
    const copy = new Uint8Array(b);
    copy[0] = copy[0]! ^ 1;
    return copy;
  };
  const firstStep = proof.path[0]!;
  const tamperedStep =
    "left" in firstStep ? { left: flip(firstStep.left) } : { right: flip(firstStep.right) };
  const forgeries: CoseInclusionProof[] = [
    { ...proof, path: [tamperedStep, ...proof.path.slice(1)] },
    { ...proof, path: proof.path.slice(1) },
    {
      ...proof,
      path: proof.path.map((s) => ("left" in s ? { right: s.left } : { left: s.right })),
    },
    { ...proof, writeSetDigest: flip(proof.writeSetDigest) },
    { ...proof, commitEvidence: proof.commitEvidence.replace("ce:2.", "ce:3.") },
    { ...proof, claimsDigest: flip(proof.claimsDigest) },
  ];
  for (const forged of forgeries) {
    assertInvalid(
      withProof(bytes, forged),
      trust,
      /inclusion proof 0: .*does not verify over root/,
    );
  }
  const tagged = decode(bytes, DECODE) as Tagged;
  const items = tagged.value as unknown[];
  const badSignature = encode(new Tagged(18, [...items.slice(0, 3), flip(items[3] as Uint8Array)]));
  assertInvalid(badSignature, trust, /does not verify/);
});

test("a wrong kid, a foreign service or a wrong vds is refused", async () => {
  const pki = await pkiPromise;
  const other = await otherPkiPromise;
  const { receipt, root } = build(pki, 5, 2);
  const proof = coseProofOfReceipt(receipt)!;
  const trust = { serviceCertPem: pki.serviceCertPem };
  const receiptWith = (options: Parameters<typeof makeCoseRootSignature>[2]) =>
    encodeCoseReceipt(makeCoseRootSignature(pki.serviceKeys, root, options), proof);

  assertInvalid(
    receiptWith({ kid: new TextEncoder().encode("ab".repeat(32)) }),
    trust,
    /kid "abab.*" is not that of the service key/,
  );
  assertInvalid(receiptWith({ kid: new Uint8Array([0, 1, 2]) }), trust, /kid h'000102'/);
  assertInvalid(receiptWith({}), { serviceCertPem: other.serviceCertPem }, /kid .* not that of/);
  assertInvalid(receiptWith({ vds: 1 }), trust, /vds \(395\) is 1, not 2/);
  assertMalformed(receiptWith({ vds: null }), /^protected\[395\]$/);
  // Signed by another key under the right kid: the signature itself fails.
  const forgedSigner = makeCoseRootSignature(other.serviceKeys, root, {
    kid: makeKid(pki),
  });
  assertInvalid(encodeCoseReceipt(forgedSigner, proof), trust, /does not verify/);
  assertInvalid(
    encodeCoseReceipt(makeCoseRootSignature(pki.serviceKeys, new Uint8Array(32)), proof),
    trust,
    /does not verify/,
  );
});

function makeKid(pki: TestPki): Uint8Array {
  const tagged = decode(
    makeCoseRootSignature(pki.serviceKeys, new Uint8Array(32)),
    DECODE,
  ) as Tagged;
  const phdr = decode((tagged.value as Uint8Array[])[0]!, { useMaps: true }) as Map<
    number,
    unknown
  >;
  return phdr.get(4) as Uint8Array;
}

test("an expected claims digest must match the proof's", async () => {
  const pki = await pkiPromise;
  const trust = { serviceCertPem: pki.serviceCertPem };
  const { bytes, root, proof } = build(pki, 6, 2); // leaf 3: a non-zero claims digest
  assert.notEqual(hex(proof.claimsDigest), "00".repeat(32));
  assertValid(bytes, trust, root, { claimsDigest: proof.claimsDigest });
  assertInvalid(bytes, trust, /claims digest [0-9a-f]{64} is not the expected 0{64}/, {
    claimsDigest: new Uint8Array(32),
  });
});

test("after a recovery, a previous identity verifies only as an endorsement the service issued", async () => {
  const previous = await pkiPromise;
  const current = await otherPkiPromise;
  const { bytes, root } = build(previous, 4, 1);
  const endorsement = await endorseServiceCertificate({
    servicePrivateKey: current.serviceKeys.privateKey,
    serviceCertPem: current.serviceCertPem,
    endorsedPublicKey: previous.serviceKeys.publicKey,
    validityDays: 30,
    now: new Date(),
  });
  const selfEndorsed = await endorseServiceCertificate({
    servicePrivateKey: previous.serviceKeys.privateKey,
    serviceCertPem: previous.serviceCertPem,
    endorsedPublicKey: previous.serviceKeys.publicKey,
    validityDays: 30,
    now: new Date(),
  });
  const result = assertValid(
    bytes,
    { serviceCertPem: current.serviceCertPem, serviceEndorsements: [endorsement] },
    root,
  );
  assert.deepEqual(result.kind === "valid" && result.signer, { kind: "endorsement", index: 0 });
  assertValid(bytes, { serviceCertPem: previous.serviceCertPem }, root);
  assertInvalid(bytes, { serviceCertPem: current.serviceCertPem }, /not that of the service key/);
  assertInvalid(
    bytes,
    { serviceCertPem: current.serviceCertPem, serviceEndorsements: [selfEndorsed] },
    /endorsement 0, which the service certificate did not issue/,
  );
});

test("malformed COSE receipts are refused with the part named", async () => {
  const pki = await pkiPromise;
  const { bytes, proof, coseSignature } = build(pki, 5, 1);
  const items = (decode(bytes, DECODE) as Tagged).value as unknown[];
  const leaf = [proof.writeSetDigest, proof.commitEvidence, proof.claimsDigest];
  const proofMap = (leafValue: unknown, pathValue: unknown) =>
    encode(
      new Map<number, unknown>([
        [1, leafValue],
        [2, pathValue],
      ]),
    );
  const step = [true, new Uint8Array(32)];
  const cases: [Uint8Array, RegExp][] = [
    [encode(items), /^COSE_Sign1$/], // untagged
    [coseSignature, /^unprotected\[396\]$/], // a signature is not a receipt
    [encode(new Tagged(18, [items[0], new Map(), new Uint8Array(32), items[3]])), /^COSE_Sign1$/],
    [
      encode(new Tagged(18, [items[0], new Map([[396, []]]), null, items[3]])),
      /^unprotected\[396\]$/,
    ],
    [encode(new Tagged(18, [items[0], new Map([[396, new Map()]]), null, items[3]])), /\[-1\]$/],
    [withProofItem(bytes, "not a bstr"), /\[-1\]\[0\]$/],
    [withProofItem(bytes, new Uint8Array([0xff])), /\[-1\]\[0\]$/],
    [withProofItem(bytes, encode([1, 2])), /\[-1\]\[0\]$/],
    [withProofItem(bytes, proofMap(leaf.slice(0, 2), [])), /\.leaf$/],
    [withProofItem(bytes, proofMap([new Uint8Array(31), leaf[1], leaf[2]], [])), /\.leaf\[0\]$/],
    [withProofItem(bytes, proofMap([leaf[0], "", leaf[2]], [])), /\.leaf\[1\]$/],
    [withProofItem(bytes, proofMap([leaf[0], "x".repeat(1025), leaf[2]], [])), /\.leaf\[1\]$/],
    [withProofItem(bytes, proofMap(leaf, [[1, new Uint8Array(32)]])), /\.path\[0\]$/],
    [withProofItem(bytes, proofMap(leaf, [[true, new Uint8Array(33)]])), /\.path\[0\]\[1\]$/],
    [withProofItem(bytes, proofMap(leaf, Array(65).fill(step))), /\.path$/],
    [withProofItem(bytes, encode(new Map([[1, leaf]]))), /\.path$/],
    [new Uint8Array([0xd2]), /^COSE_Sign1$/],
  ];
  for (const [input, path] of cases) assertMalformed(input, path);
  const tooMany = encode(
    new Tagged(18, [
      items[0],
      new Map([[396, new Map([[-1, Array(17).fill(proofMap(leaf, []))]])]]),
      null,
      items[3],
    ]),
  );
  assertMalformed(tooMany, /\[-1\]$/);
});

test("a signature transaction's receipt has no COSE proof; an attached signature is refused", async () => {
  const pki = await pkiPromise;
  const { receipt, root, coseSignature } = build(pki, 3, 0);
  const { leaf_components: _components, ...rest } = receipt;
  void _components;
  assert.equal(coseProofOfReceipt({ ...rest, proof: [], leaf: hex(root) }), null);
  const attached = signSign1(pki.serviceKeys.privateKey, new Map([[395, 2]]), root);
  assert.throws(
    () => encodeCoseReceipt(attached, coseProofOfReceipt(receipt)!),
    (err: unknown) =>
      err instanceof CoseReceiptError &&
      err.type.code === CoseReceiptErrorCode.MalformedCoseSignature,
  );
  assert.ok(looksLikeCoseSign1(coseSignature));
  assert.ok(!looksLikeCoseSign1(new TextEncoder().encode('{"cert": ""}')));
});

test("the cose_signatures value a receipt is built on is a JSON string of base64", async () => {
  const pki = await pkiPromise;
  const { coseSignature } = build(pki, 2, 0);
  const value = encodeCoseSignatureValue(coseSignature);
  assert.equal(
    new TextDecoder().decode(value),
    JSON.stringify(Buffer.from(coseSignature).toString("base64")),
  );
  assert.equal(hex(decodeCoseSignatureValue(value)), hex(coseSignature));
  const maps = [
    {
      name: SERVICE_TABLES.coseSignatures,
      writes: [{ key: SINGLETON_KEY_BYTES, value }],
    },
  ];
  assert.equal(hex(findCoseSignature(maps)!), hex(coseSignature));
  assert.equal(findCoseSignature([{ name: SERVICE_TABLES.signatures, writes: [] }]), null);
  for (const bad of ['{"a": 1}', "not json", '"%%%"']) {
    assert.throws(
      () => decodeCoseSignatureValue(new TextEncoder().encode(bad)),
      CoseSignatureError,
      bad,
    );
  }
  assert.throws(
    () => findCoseSignature([{ name: SERVICE_TABLES.coseSignatures, writes: [] }]),
    CoseSignatureError,
  );
});
