// CCF JSON receipts (src/ledger/receipt.ts): receipts built over a naive Merkle tree from the
// test helper verify, and the same receipt is verified again with openssl and createHash only
// (CCF's published algorithm), so the implementation is not checked against itself. Each kind
// of forgery must be rejected with a reason naming what is wrong, and malformed JSON fields must
// be rejected by parseReceipt with the field's path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EcKeyPair } from "../../../src/crypto/certs.js";
import {
  createSelfSignedCertificate,
  endorseServiceCertificate,
} from "../../../src/crypto/cert-issuance.js";
import { generateEcKeyPair, nodeIdFromPublicKey } from "../../../src/crypto/identity.js";
import { signDigest } from "../../../src/crypto/ecdsa.js";
import {
  ReceiptError,
  ReceiptErrorCode,
  buildReceipt,
  parseReceipt,
  receiptLeaf,
  receiptRoot,
  verifyReceipt,
  type Receipt,
} from "../../../src/ledger/receipt.js";
import { txLeaf } from "../../../src/ledger/tx-leaf.js";
import {
  leafHash,
  makePki,
  makeReceipt,
  openssl,
  sha256,
  tempDir,
  testLeaf,
  type TestPki,
} from "../../helpers/pki.js";

const pkiPromise = makePki();
const otherPkiPromise = makePki();

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** A JSON round trip: what a client reads back from /app/receipt. */
function roundTrip(receipt: Receipt): Receipt {
  return parseReceipt(JSON.parse(JSON.stringify(receipt)));
}

function assertValid(receipt: Receipt, servicePem: string, root?: Uint8Array): void {
  const result = verifyReceipt(receipt, servicePem);
  assert.equal(result.kind, "valid", result.kind === "invalid" ? result.reason : "");
  if (root !== undefined && result.kind === "valid") assert.equal(hex(result.root), hex(root));
}

function assertInvalid(receipt: Receipt, servicePem: string, reason: RegExp): void {
  const result = verifyReceipt(receipt, servicePem);
  assert.equal(result.kind, "invalid");
  if (result.kind === "invalid") assert.match(result.reason, reason);
}

test("txLeaf is H(write_set_digest || H(commit_evidence) || claims_digest)", () => {
  const leaf = testLeaf(5);
  const evidenceDigest = sha256(new TextEncoder().encode(leaf.commitEvidence));
  assert.equal(
    hex(txLeaf(leaf.writeSetDigest, evidenceDigest, leaf.claimsDigest)),
    hex(leafHash(leaf)),
  );
  assert.notEqual(
    hex(txLeaf(leaf.writeSetDigest, new Uint8Array(32), leaf.claimsDigest)),
    hex(leafHash(leaf)),
  );
});

test("receiptLeaf hashes a receipt's leaf components, or takes its signed root as is", async () => {
  const pki = await pkiPromise;
  const { receipt, leaf } = makeReceipt(pki, { leafCount: 3, index: 1 });
  assert.equal(hex(receiptLeaf(receipt)), hex(leaf));
  const root = new Uint8Array(32).fill(7);
  const { leaf_components: _components, ...signed } = receipt;
  assert.equal(hex(receiptLeaf({ ...signed, leaf: hex(root) })), hex(root));
});

test("receipts for every leaf of 1- to 7-leaf trees verify and yield the signed root", async () => {
  const pki = await pkiPromise;
  for (let leafCount = 1; leafCount <= 7; leafCount++) {
    for (let index = 0; index < leafCount; index++) {
      const { receipt, root } = makeReceipt(pki, { leafCount, index });
      assert.equal(hex(receiptRoot(receipt)), hex(root), `${leafCount}/${index}`);
      assertValid(roundTrip(receipt), pki.serviceCertPem, root);
    }
  }
});

test("a signature-transaction receipt (leaf = signed root, empty proof) verifies", async () => {
  const pki = await pkiPromise;
  const root = sha256(new TextEncoder().encode("some root"));
  const receipt = buildReceipt({
    certPem: pki.nodeCertPem,
    nodeId: pki.nodeId,
    signature: signDigest(pki.nodeKeys.privateKey, root),
    proof: [],
    leaf: root,
  });
  assert.equal(receipt.leaf, hex(root));
  assert.equal(receipt.leaf_components, undefined);
  assertValid(roundTrip(receipt), pki.serviceCertPem, root);
});

test("a receipt verifies with openssl and createHash alone (CCF's algorithm)", async () => {
  const pki = await pkiPromise;
  const { receipt } = makeReceipt(pki, { leafCount: 6, index: 4 });
  const json = JSON.parse(JSON.stringify(receipt)) as {
    cert: string;
    signature: string;
    proof: ({ left: string } | { right: string })[];
    leaf_components: { write_set_digest: string; commit_evidence: string; claims_digest: string };
  };
  const h = (...parts: Buffer[]): Buffer => {
    const hash = createHash("sha256");
    for (const part of parts) hash.update(part);
    return hash.digest();
  };
  const c = json.leaf_components;
  let current = h(
    Buffer.from(c.write_set_digest, "hex"),
    h(Buffer.from(c.commit_evidence, "utf8")),
    Buffer.from(c.claims_digest, "hex"),
  );
  for (const step of json.proof) {
    current =
      "left" in step
        ? h(Buffer.from(step.left, "hex"), current)
        : h(current, Buffer.from(step.right, "hex"));
  }
  const { dir, cleanup } = tempDir("receipt-");
  try {
    const path = (name: string): string => join(dir, name);
    writeFileSync(path("node_cert.pem"), json.cert);
    writeFileSync(path("service_cert.pem"), pki.serviceCertPem);
    writeFileSync(path("root.bin"), current);
    writeFileSync(path("sig.der"), Buffer.from(json.signature, "base64"));
    const pub = openssl([
      "x509",
      "-in",
      path("node_cert.pem"),
      "-noout",
      "-pubkey",
      "-out",
      path("pub.pem"),
    ]);
    assert.equal(pub.status, 0, pub.out);
    const sig = openssl([
      "pkeyutl",
      "-verify",
      "-pubin",
      "-inkey",
      path("pub.pem"),
      "-in",
      path("root.bin"),
      "-sigfile",
      path("sig.der"),
    ]);
    assert.equal(sig.status, 0, sig.out);
    const chain = openssl(["verify", "-CAfile", path("service_cert.pem"), path("node_cert.pem")]);
    assert.equal(chain.status, 0, chain.out);
    // The same oracle rejects a receipt whose root was changed.
    writeFileSync(path("root.bin"), h(current));
    const forged = openssl([
      "pkeyutl",
      "-verify",
      "-pubin",
      "-inkey",
      path("pub.pem"),
      "-in",
      path("root.bin"),
      "-sigfile",
      path("sig.der"),
    ]);
    assert.notEqual(forged.status, 0);
  } finally {
    cleanup();
  }
  assertValid(receipt, pki.serviceCertPem, current);
});

test("changing any leaf component breaks the signature check", async () => {
  const pki = await pkiPromise;
  const { receipt } = makeReceipt(pki, { leafCount: 5, index: 2 });
  const c = receipt.leaf_components!;
  const other = hex(sha256(new TextEncoder().encode("other")));
  const forgeries: Record<string, Receipt> = {
    write_set_digest: { ...receipt, leaf_components: { ...c, write_set_digest: other } },
    commit_evidence: {
      ...receipt,
      leaf_components: { ...c, commit_evidence: c.commit_evidence.replace("ce:2.3:", "ce:2.4:") },
    },
    claims_digest: { ...receipt, leaf_components: { ...c, claims_digest: other } },
  };
  for (const [field, forged] of Object.entries(forgeries)) {
    assert.notDeepEqual(forged, receipt, field);
    assertInvalid(forged, pki.serviceCertPem, /signature does not verify over root/);
  }
});

test("a proof with a swapped side, dropped, extra or changed step is rejected", async () => {
  const pki = await pkiPromise;
  const { receipt } = makeReceipt(pki, { leafCount: 7, index: 3 });
  assert.equal(receipt.proof.length, 3);
  const swap = (step: Receipt["proof"][number]) =>
    "left" in step ? { right: step.left } : { left: step.right };
  const first = receipt.proof[0]!;
  const forgeries: Record<string, Receipt> = {
    "swapped side": { ...receipt, proof: [swap(first), ...receipt.proof.slice(1)] },
    "dropped step": { ...receipt, proof: receipt.proof.slice(0, -1) },
    "extra step": { ...receipt, proof: [...receipt.proof, { right: "00".repeat(32) }] },
    "changed hash": { ...receipt, proof: [{ left: "11".repeat(32) }, ...receipt.proof.slice(1)] },
    "reordered steps": { ...receipt, proof: [...receipt.proof].reverse() },
  };
  for (const [name, forged] of Object.entries(forgeries)) {
    const result = verifyReceipt(forged, pki.serviceCertPem);
    assert.equal(result.kind, "invalid", name);
    if (result.kind === "invalid") assert.match(result.reason, /signature does not verify/, name);
  }
});

test("a wrong signature or a signature by another key is rejected", async () => {
  const pki = await pkiPromise;
  const { receipt, root } = makeReceipt(pki, { leafCount: 4, index: 1 });
  const otherRoot = sha256(root);
  const stranger = generateEcKeyPair("secp384r1");
  const forgeries: Record<string, Receipt> = {
    "signature over another root": {
      ...receipt,
      signature: Buffer.from(signDigest(pki.nodeKeys.privateKey, otherRoot)).toString("base64"),
    },
    "signature by another key": makeReceipt(pki, {
      leafCount: 4,
      index: 1,
      signer: stranger.privateKey,
    }).receipt,
    "signature by the service key": makeReceipt(pki, {
      leafCount: 4,
      index: 1,
      signer: pki.serviceKeys.privateKey,
    }).receipt,
    "signature bytes not DER": {
      ...receipt,
      signature: Buffer.from("not a signature").toString("base64"),
    },
  };
  for (const [name, forged] of Object.entries(forgeries)) {
    const result = verifyReceipt(forged, pki.serviceCertPem);
    assert.equal(result.kind, "invalid", name);
    if (result.kind === "invalid") assert.match(result.reason, /signature does not verify/, name);
  }
});

/** A correctly signed receipt whose node cert is `certPem` (for `keys`), whoever issued it. */
function receiptWithCert(pki: TestPki, certPem: string, keys: EcKeyPair): Receipt {
  const node = {
    ...pki,
    nodeCertPem: certPem,
    nodeKeys: keys,
    nodeId: nodeIdFromPublicKey(keys.publicKey),
  };
  return makeReceipt(node, { leafCount: 3, index: 0 }).receipt;
}

test("a cert not issued by the service (self-signed, or by another CA) is rejected", async () => {
  const pki = await pkiPromise;
  const other = await otherPkiPromise;
  // Signed correctly by a node of another service: everything but the chain holds.
  const foreign = receiptWithCert(pki, other.nodeCertPem, other.nodeKeys);
  assertInvalid(foreign, pki.serviceCertPem, /not issued by the service certificate/);
  assertValid(foreign, other.serviceCertPem);
  // A self-signed cert for the node's own key.
  const selfSigned = await createSelfSignedCertificate({
    keys: pki.nodeKeys,
    subject: "CN=CCF Node",
    validityDays: 1,
    now: new Date(),
  });
  const selfReceipt = receiptWithCert(pki, selfSigned, pki.nodeKeys);
  assertInvalid(selfReceipt, pki.serviceCertPem, /not issued by the service certificate/);
});

test("a node_id that does not match the cert's key is rejected", async () => {
  const pki = await pkiPromise;
  const { receipt } = makeReceipt(pki, { leafCount: 2, index: 1 });
  const other = await otherPkiPromise;
  assertInvalid(
    { ...receipt, node_id: other.nodeId },
    pki.serviceCertPem,
    /node_id .* does not match/,
  );
});

test("a receipt checked against the wrong or a malformed service cert is invalid", async () => {
  const pki = await pkiPromise;
  const other = await otherPkiPromise;
  const { receipt } = makeReceipt(pki, { leafCount: 2, index: 0 });
  assertInvalid(receipt, other.serviceCertPem, /not issued by the service certificate/);
  assertInvalid(receipt, "not a cert", /service certificate is not a valid X.509 certificate/);
  const brokenCert = receipt.cert.replace(/\n[A-Za-z0-9+/]{8}/, "\nAAAAAAAA");
  assertInvalid({ ...receipt, cert: brokenCert }, pki.serviceCertPem, /cert is not a valid X.509/);
});

test("a receipt of a previous service identity verifies through an endorsement", async () => {
  const previous = await pkiPromise;
  const current = await otherPkiPromise;
  const endorsement = await endorseServiceCertificate({
    servicePrivateKey: current.serviceKeys.privateKey,
    serviceCertPem: current.serviceCertPem,
    endorsedPublicKey: previous.serviceKeys.publicKey,
    validityDays: 30,
    now: new Date(),
  });
  const { receipt, root } = makeReceipt(previous, {
    leafCount: 3,
    index: 2,
    serviceEndorsements: [endorsement],
  });
  assertValid(roundTrip(receipt), current.serviceCertPem, root);
  // Without the endorsement, or with one the current service did not issue, it fails.
  const { service_endorsements: _dropped, ...bare } = receipt;
  assertInvalid(bare, current.serviceCertPem, /not issued by the service certificate/);
  const selfEndorsed = await endorseServiceCertificate({
    servicePrivateKey: previous.serviceKeys.privateKey,
    serviceCertPem: previous.serviceCertPem,
    endorsedPublicKey: previous.serviceKeys.publicKey,
    validityDays: 30,
    now: new Date(),
  });
  assertInvalid(
    { ...receipt, service_endorsements: [selfEndorsed] },
    current.serviceCertPem,
    /nor by any service endorsement/,
  );
});

test("malformed fields are rejected by parseReceipt with the field's path", async () => {
  const pki = await pkiPromise;
  const good = JSON.parse(
    JSON.stringify(makeReceipt(pki, { leafCount: 3, index: 1 }).receipt),
  ) as Record<string, unknown>;
  const lc = good.leaf_components as Record<string, unknown>;
  const cases: [string, unknown][] = [
    ["receipt", null],
    ["receipt", [good]],
    ["cert", { ...good, cert: undefined }],
    ["cert", { ...good, cert: "MIIB..." }],
    ["node_id", { ...good, node_id: "ABC" }],
    ["node_id", { ...good, node_id: (good.node_id as string).toUpperCase() }],
    ["signature", { ...good, signature: "not base64!" }],
    ["signature", { ...good, signature: "" }],
    ["signature", { ...good, signature: 42 }],
    ["proof", { ...good, proof: {} }],
    ["proof[0]", { ...good, proof: [{ up: "00".repeat(32) }] }],
    ["proof[0]", { ...good, proof: [{ left: "00".repeat(32), right: "00".repeat(32) }] }],
    ["proof[0].left", { ...good, proof: [{ left: "00".repeat(31) }] }],
    ["proof[1].right", { ...good, proof: [{ left: "00".repeat(32) }, { right: "zz".repeat(32) }] }],
    ["leaf_components", { ...good, leaf_components: "x" }],
    [
      "leaf_components.write_set_digest",
      { ...good, leaf_components: { ...lc, write_set_digest: "00" } },
    ],
    [
      "leaf_components.claims_digest",
      { ...good, leaf_components: { ...lc, claims_digest: undefined } },
    ],
    [
      "leaf_components.commit_evidence",
      { ...good, leaf_components: { ...lc, commit_evidence: "ce:2:abc" } },
    ],
    [
      "leaf_components.commit_evidence",
      { ...good, leaf_components: { ...lc, commit_evidence: "2.3:" + "a".repeat(64) } },
    ],
    ["receipt", { ...good, leaf: "00".repeat(32) }],
    ["receipt", { ...good, leaf_components: undefined }],
    ["leaf", { ...good, leaf_components: undefined, leaf: "00" }],
    ["service_endorsements", { ...good, service_endorsements: "pem" }],
    ["service_endorsements[0]", { ...good, service_endorsements: ["not pem"] }],
  ];
  for (const [path, json] of cases) {
    assert.throws(
      () => parseReceipt(JSON.parse(JSON.stringify(json) ?? "null")),
      (err: unknown) =>
        err instanceof ReceiptError &&
        err.code === ReceiptErrorCode.InvalidReceipt &&
        err.type.path === path &&
        err.message.startsWith(`${path}: `),
      `expected a failure at ${path}`,
    );
  }
  // Unknown fields are ignored; the parsed copy equals the original.
  assert.deepEqual(parseReceipt({ ...good, future_field: 1 }), parseReceipt(good));
});

test("a malformed digest in an unparsed receipt is reported as invalid, not thrown", async () => {
  const pki = await pkiPromise;
  const { receipt } = makeReceipt(pki, { leafCount: 2, index: 0 });
  const broken: Receipt = { ...receipt, proof: [{ right: "not hex" }] };
  assertInvalid(broken, pki.serviceCertPem, /not a 32-byte hex digest/);
});
