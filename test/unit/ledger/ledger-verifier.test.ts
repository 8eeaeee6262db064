// LedgerVerifier (src/ledger/ledger-verifier.ts) on real ledgers built by TxPipeline
// (test/helpers/ledger-fixture.ts): a clean ledger verifies up to its last signature, entries
// after it count as unsigned, and every kind of tampering is reported as an `invalid` step (never
// an exception) at the right seqno: the altered signature itself, or the first signature after
// an altered ordinary entry (whose bytes its root covers; the verifier has no ledger secret).
// Signatures by the wrong node, certs that do not match, and certs not issued by the expected
// service are rejected; a signature transaction that writes anything but its own maps is
// refused at that signature (its own bytes are covered only by the next signature's root, so
// the last one's would go unchecked); a property test flips random bits anywhere before the
// last signature.
// A ledger starting after a snapshot: from the snapshot's serialised tree roots are checked as
// usual. (ledger-verifier-ccf.test.ts covers COSE signatures, serialised trees, Consortia 0.1
// ledgers and partial checks.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { fromUtf8, toBase64, toHex, utf8 } from "../../../src/base/bytes.js";
import type { NodeId, Seqno } from "../../../src/base/ids.js";
import { endorseNodeCertificate } from "../../../src/crypto/cert-issuance.js";
import {
  generateEcKeyPair,
  nodeIdFromPublicKey,
  publicKeyOfCert,
} from "../../../src/crypto/identity.js";
import { signDigest } from "../../../src/crypto/ecdsa.js";
import { decodeEntry, decodeEntryHeadAndMaps } from "../../../src/ledger/entry-format.js";
import { SERVICE_TABLES } from "../../../src/kv/service-tables.js";
import type { MapWrites } from "../../../src/kv/write-set.js";
import { txLeaf } from "../../../src/ledger/tx-leaf.js";
import { newHistoryTree } from "../../../src/ledger/history.js";
import {
  encodeSerialisedTree,
  SerialisedTreeError,
} from "../../../src/ledger/merkle/serialised-tree.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { LedgerVerifier, type VerifyStep } from "../../../src/ledger/ledger-verifier.js";
import { verifyReceipt } from "../../../src/ledger/receipt.js";
import { resignEntry, withExtraWrites } from "../../helpers/resign.js";
import {
  checkSignatureTxWrites,
  findSignature,
  SignatureError,
  SignatureErrorCode,
  type SignatureValue,
} from "../../../src/ledger/signature.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";
import {
  buildLedgerFixture,
  publicValue,
  readEntries,
  type LedgerFixture,
} from "../../helpers/ledger-fixture.js";
import { tempDir } from "../../helpers/pki.js";

const identitiesPromise = createStartIdentities({ now: new Date() });
const otherServicePromise = createStartIdentities({ now: new Date() });

interface Loaded {
  readonly fixture: LedgerFixture;
  readonly entries: readonly Uint8Array[];
}

/** 30 txs, a signature after every 6 (seqnos 7, 14, 21, 28, 35), 8 KiB chunks. */
const cleanPromise: Promise<Loaded> = identitiesPromise.then(async (identities) => {
  const fixture = await buildLedgerFixture({
    txCount: 30,
    sigTxInterval: 6,
    identities,
    receiptSeqnos: [1, 7, 20, 35],
  });
  return { fixture, entries: readEntries(fixture.dir) };
});

test.after(async () => {
  (await cleanPromise).fixture.cleanup();
});

function verifyAll(
  entries: readonly Uint8Array[],
  serviceCertPem?: string,
): {
  verifier: LedgerVerifier;
  steps: VerifyStep[];
} {
  const verifier = new LedgerVerifier(serviceCertPem === undefined ? {} : { serviceCertPem });
  const steps: VerifyStep[] = [];
  for (const entry of entries) {
    const step = verifier.push(entry);
    steps.push(step);
    if (step.kind === "invalid") break;
  }
  return { verifier, steps };
}

function firstInvalid(steps: readonly VerifyStep[]): Extract<VerifyStep, { kind: "invalid" }> {
  const bad = steps.find((s) => s.kind === "invalid");
  assert.ok(bad !== undefined && bad.kind === "invalid", "expected an invalid step");
  return bad;
}

/** Copies of `entries` with `mutate` applied to a copy of the entry at `seqno`. */
function tampered(
  entries: readonly Uint8Array[],
  seqno: number,
  mutate: (bytes: Uint8Array) => Uint8Array | void,
): Uint8Array[] {
  return entries.map((e, i) => {
    if (i !== seqno - 1) return e;
    const copy = e.slice();
    return mutate(copy) ?? copy;
  });
}

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array): number {
  const at = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(
    Buffer.from(needle),
  );
  assert.ok(at >= 0, `pattern ${fromUtf8(needle)} not found`);
  return at;
}

/** Replaces the character `skip` characters into the JSON string value of `field`. */
function alterJsonField(entry: Uint8Array, field: string, skip: number): void {
  const at = indexOfBytes(entry, utf8(`"${field}":"`)) + field.length + 4 + skip;
  const c = String.fromCharCode(entry[at]!);
  // Stay within the alphabet (hex and base64 both contain a, b), so only the value changes.
  entry[at] = (c === "a" ? "b" : "a").charCodeAt(0);
}

function signatureOf(entry: Uint8Array): SignatureValue {
  const sig = findSignature(decodeEntry(entry).publicMaps);
  assert.ok(sig !== null, "expected a signature entry");
  return sig;
}

/** A signature entry re-encoded with a different value, validly framed and encrypted. */
function resign(f: LedgerFixture, entry: Uint8Array, value: SignatureValue): Uint8Array {
  return resignEntry(f.secrets, entry, { value });
}

test("a clean ledger verifies to its last signature with every signature by the node", async () => {
  const { fixture, entries } = await cleanPromise;
  assert.deepEqual(fixture.signatureSeqnos, [7, 14, 21, 28, 35]);
  const { verifier, steps } = verifyAll(entries, fixture.identities.serviceCertPem);
  assert.equal(steps.length, 35);
  steps.forEach((step, i) => {
    const seqno = i + 1;
    if (fixture.signatureSeqnos.includes(seqno)) {
      assert.deepEqual(step, { kind: "signature", seqno, node: fixture.identities.node.nodeId });
    } else {
      assert.deepEqual(step, { kind: "entry", seqno });
    }
  });
  assert.equal(verifier.lastVerifiedSeqno, 35);
  assert.equal(verifier.lastSeqno, 35);
  assert.equal(verifier.signatureCount, 5);
});

test("the pipeline's receipts prove the entries on disk under the roots their signatures signed", async () => {
  const { fixture, entries } = await cleanPromise;
  assert.deepEqual([...fixture.receipts.keys()], [1, 7, 20, 35]);
  for (const [seqno, receipt] of fixture.receipts) {
    const result = verifyReceipt(receipt, fixture.identities.serviceCertPem);
    assert.equal(result.kind, "valid", `seqno ${seqno}: ${JSON.stringify(result)}`);
    if (result.kind !== "valid") continue;
    // A signature's receipt is proven by itself, any other by the first signature after it.
    const signedBy = fixture.signatureSeqnos.find((s) => s >= seqno)!;
    assert.equal(toHex(result.root), signatureOf(entries[signedBy - 1]!).root, `seqno ${seqno}`);
    if (receipt.leaf_components !== undefined) {
      const digest = createHash("sha256")
        .update(entries[seqno - 1]!)
        .digest("hex");
      assert.equal(receipt.leaf_components.write_set_digest, digest);
    }
  }
});

test("entries after the last signature are counted but not verified", async () => {
  const identities = await identitiesPromise;
  const f = await buildLedgerFixture({
    txCount: 10,
    sigTxInterval: 4,
    unsignedTailCount: 3,
    identities,
  });
  try {
    const { verifier, steps } = verifyAll(readEntries(f.dir), identities.serviceCertPem);
    assert.equal(f.lastSignedSeqno, 13);
    assert.equal(f.lastSeqno, 16);
    assert.deepEqual(
      steps.slice(-3),
      [14, 15, 16].map((seqno) => ({ kind: "entry", seqno })),
    );
    assert.equal(verifier.lastVerifiedSeqno, 13);
    assert.equal(verifier.lastSeqno, 16);
  } finally {
    f.cleanup();
  }
});

test("a flipped byte in a private ciphertext is reported at the next signature", async () => {
  const { fixture, entries } = await cleanPromise;
  const bad = tampered(entries, 9, (e) => {
    const ciphertextBytes = decodeEntry(e).privateCiphertext.byteLength;
    assert.ok(ciphertextBytes > 0, "tx entries have a private domain");
    e[e.byteLength - ciphertextBytes + 5]! ^= 0x01;
  });
  const { verifier, steps } = verifyAll(bad, fixture.identities.serviceCertPem);
  const invalid = firstInvalid(steps);
  assert.equal(invalid.seqno, 14);
  assert.match(invalid.reason, /signed root [0-9a-f]{64} != recomputed root .*seqnos 8\.\.13/);
  assert.equal(verifier.lastVerifiedSeqno, 7);
});

test("a flipped byte in a public value is reported at the next signature", async () => {
  const { fixture, entries } = await cleanPromise;
  const seqno = 16;
  const txNumber = fixture.txNumberBySeqno.get(seqno)!;
  const bad = tampered(entries, seqno, (e) => {
    e[indexOfBytes(e, publicValue(txNumber)) + 3]! ^= 0x20;
  });
  const invalid = firstInvalid(verifyAll(bad).steps);
  assert.equal(invalid.seqno, 21);
  assert.match(invalid.reason, /recomputed root/);
});

test("an altered sig in a signature is reported at that signature", async () => {
  const { entries } = await cleanPromise;
  const bad = tampered(entries, 21, (e) => alterJsonField(e, "sig", 30));
  const invalid = firstInvalid(verifyAll(bad).steps);
  assert.equal(invalid.seqno, 21);
  assert.match(invalid.reason, /signature by node [0-9a-f]{64} does not verify over root/);
});

test("an altered root in a signature is reported at that signature", async () => {
  const { entries } = await cleanPromise;
  const bad = tampered(entries, 14, (e) => alterJsonField(e, "root", 10));
  const { verifier, steps } = verifyAll(bad);
  const invalid = firstInvalid(steps);
  assert.equal(invalid.seqno, 14);
  assert.match(invalid.reason, /signed root .* != recomputed root/);
  assert.equal(verifier.lastVerifiedSeqno, 7);
});

test("an altered field the signature does not cover is caught by the next signature's root", async () => {
  const { entries } = await cleanPromise;
  const bad = tampered(entries, 14, (e) => alterJsonField(e, "hashed_nonce", 3));
  const invalid = firstInvalid(verifyAll(bad).steps);
  assert.equal(invalid.seqno, 21);
});

test("a signature transaction that writes any other map, even privately, is refused at that signature (ccf-compatibility.md §6.4)", async () => {
  const { fixture, entries } = await cleanPromise;
  const forged = { key: utf8("evil"), value: utf8("x") };
  for (const [name, reason] of [
    [
      SERVICE_TABLES.userCerts,
      /^signature transaction 14 writes map public:ccf\.gov\.users\.certs;/,
    ],
    ["records", /^signature transaction 14 has a private domain of \d+ bytes;/],
  ] as const) {
    const bad = tampered(entries, 14, (e) =>
      withExtraWrites(fixture.secrets, e, [{ name, writes: [forged] }]),
    );
    const { verifier, steps } = verifyAll(bad, fixture.identities.serviceCertPem);
    // At the signature itself: the next root would cover its bytes, but the last one has none.
    const invalid = firstInvalid(steps);
    assert.equal(invalid.seqno, 14);
    assert.match(invalid.reason, reason);
    assert.equal(verifier.lastVerifiedSeqno, 7);
  }
});

test("checkSignatureTxWrites throws a typed error naming the seqno and the map", async () => {
  const { entries } = await cleanPromise;
  const own = decodeEntryHeadAndMaps(entries[13]!);
  assert.equal(own.privateDomainBytes, 0);
  checkSignatureTxWrites(own, own.privateDomainBytes);
  const only = own.publicMaps.filter((m) => m.name === SERVICE_TABLES.signatures);
  checkSignatureTxWrites({ ...own, publicMaps: only }, 0); // as CCF before COSE signatures
  const replace = (name: string, writes: MapWrites["writes"]) =>
    own.publicMaps.map((m) => (m.name === name ? { name, writes } : m));
  const tree = own.publicMaps.find((m) => m.name === SERVICE_TABLES.tree)!.writes[0]!;
  for (const [change, map] of [
    [
      { publicMaps: replace(SERVICE_TABLES.tree, [tree, { key: utf8("k"), value: utf8("v") }]) },
      SERVICE_TABLES.tree,
    ],
    [
      { publicMaps: replace(SERVICE_TABLES.tree, [{ key: utf8("k"), value: tree.value }]) },
      SERVICE_TABLES.tree,
    ],
    [
      { publicMaps: replace(SERVICE_TABLES.coseSignatures, [{ key: tree.key, value: null }]) },
      SERVICE_TABLES.coseSignatures,
    ],
    [
      { publicMaps: [...own.publicMaps, { name: "public:records", writes: [tree] }] },
      "public:records",
    ],
    [{ privateDomainBytes: 1 }, null],
  ] as const) {
    assert.throws(
      () => {
        const tx = { ...own, ...change };
        checkSignatureTxWrites(tx, tx.privateDomainBytes);
      },
      (err: unknown) =>
        err instanceof SignatureError &&
        err.type.code === SignatureErrorCode.UnexpectedWrite &&
        err.type.seqno === 14 &&
        err.type.map === map &&
        err.message.startsWith("signature transaction 14 "),
    );
  }
});

test("a signature claiming another seqno or view than its entry is rejected", async () => {
  const { fixture, entries } = await cleanPromise;
  const sig = signatureOf(entries[34]!);
  for (const [change, reason] of [
    [{ seqno: 34 }, /signature claims seqno 34/],
    [{ view: sig.view + 1 }, new RegExp(`signature claims view ${sig.view + 1}`)],
  ] as const) {
    const bad = tampered(entries, 35, (e) => resign(fixture, e, { ...sig, ...change }));
    const invalid = firstInvalid(verifyAll(bad).steps);
    assert.equal(invalid.seqno, 35);
    assert.match(invalid.reason, reason);
  }
});

test("a signature carrying another node's certificate is rejected", async () => {
  const { fixture, entries } = await cleanPromise;
  const other = await otherServicePromise;
  const sig = signatureOf(entries[20]!);
  const bad = tampered(entries, 21, (e) =>
    resign(fixture, e, { ...sig, cert: other.node.certPem }),
  );
  const invalid = firstInvalid(verifyAll(bad).steps);
  assert.equal(invalid.seqno, 21);
  assert.match(
    invalid.reason,
    new RegExp(`cert key hashes to ${other.node.nodeId}, not signing node ${sig.node}`),
  );
});

test("a certificate first seen for one node cannot sign for another", async () => {
  const { fixture, entries } = await cleanPromise;
  const sig = signatureOf(entries[13]!);
  const bad = tampered(entries, 14, (e) =>
    resign(fixture, e, { ...sig, node: "ab".repeat(32) as NodeId }),
  );
  const invalid = firstInvalid(verifyAll(bad).steps);
  assert.equal(invalid.seqno, 14);
  assert.match(invalid.reason, /cert does not belong to node abab/);
});

test("a well-signed signature by a node of another service is rejected only with --service-cert", async () => {
  const { fixture, entries } = await cleanPromise;
  const other = await otherServicePromise;
  // An attacker re-signs the last signature's root with a node key of its own service (the
  // last one, so no later root covers the altered signature entry).
  const sig = signatureOf(entries[34]!);
  const root = new Uint8Array(Buffer.from(sig.root, "hex"));
  const forged: SignatureValue = {
    ...sig,
    node: other.node.nodeId,
    cert: other.node.certPem,
    sig: toBase64(signDigest(other.node.privateKey, root)),
  };
  const bad = tampered(entries, 35, (e) => resign(fixture, e, forged));
  const unchecked = verifyAll(bad);
  assert.equal(
    unchecked.steps.some((s) => s.kind === "invalid"),
    false,
  );
  assert.deepEqual(unchecked.steps[34], { kind: "signature", seqno: 35, node: other.node.nodeId });
  const invalid = firstInvalid(verifyAll(bad, fixture.identities.serviceCertPem).steps);
  assert.equal(invalid.seqno, 35);
  assert.match(invalid.reason, /not issued by the service certificate/);
});

test("a second node endorsed by the same service may sign", async () => {
  const { fixture, entries } = await cleanPromise;
  const ids = fixture.identities;
  const keys = generateEcKeyPair();
  const certPem = await endorseNodeCertificate({
    servicePrivateKey: ids.serviceKeys.privateKey,
    serviceCertPem: ids.serviceCertPem,
    nodePublicKey: keys.publicKey,
    validityDays: 1,
    now: new Date(),
  });
  const sig = signatureOf(entries[34]!);
  const root = new Uint8Array(Buffer.from(sig.root, "hex"));
  const byNode2: SignatureValue = {
    ...sig,
    node: nodeIdFromPublicKey(keys.publicKey),
    cert: certPem,
    sig: toBase64(signDigest(keys.privateKey, root)),
  };
  const { verifier, steps } = verifyAll(
    tampered(entries, 35, (e) => resign(fixture, e, byNode2)),
    ids.serviceCertPem,
  );
  assert.deepEqual(steps[34], { kind: "signature", seqno: 35, node: byNode2.node });
  assert.equal(verifier.lastVerifiedSeqno, 35);
});

test("with the certificate of another service every signature is rejected", async () => {
  const { entries } = await cleanPromise;
  const other = await otherServicePromise;
  const { verifier, steps } = verifyAll(entries, other.serviceCertPem);
  const invalid = firstInvalid(steps);
  assert.equal(invalid.seqno, 7);
  assert.match(invalid.reason, /not issued by the service certificate/);
  assert.equal(verifier.lastVerifiedSeqno, 0);
});

test("a signing certificate with a non-ECDSA key is reported invalid, not thrown", async (t) => {
  const { fixture, entries } = await cleanPromise;
  const { dir, cleanup } = tempDir("consortia-ed25519-");
  try {
    const made = spawnSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ed25519",
      "-nodes",
      "-subj",
      "/CN=ed",
      "-days",
      "1",
      "-keyout",
      join(dir, "k.pem"),
      "-out",
      join(dir, "c.pem"),
    ]);
    if (made.status !== 0) {
      t.skip("openssl cannot make an Ed25519 certificate here");
      return;
    }
    const certPem = readFileSync(join(dir, "c.pem"), "utf8");
    const sig = signatureOf(entries[6]!);
    const value: SignatureValue = {
      ...sig,
      node: nodeIdFromPublicKey(publicKeyOfCert(certPem)),
      cert: certPem,
    };
    const bad = tampered(entries, 7, (e) => resign(fixture, e, value));
    let steps: VerifyStep[] = [];
    assert.doesNotThrow(() => {
      steps = verifyAll(bad).steps;
    });
    const invalid = firstInvalid(steps);
    assert.equal(invalid.seqno, 7);
    assert.match(invalid.reason, /not an EC P-256 or P-384 key/);
  } finally {
    cleanup();
  }
});

test("a missing, repeated or malformed entry is an invalid step, not an exception", async () => {
  const { entries } = await cleanPromise;
  const skipped = [...entries.slice(0, 4), ...entries.slice(5)];
  const gap = firstInvalid(verifyAll(skipped).steps);
  assert.deepEqual([gap.seqno, /entry says seqno 6/.test(gap.reason)], [5, true]);

  const verifier = new LedgerVerifier();
  verifier.push(entries[0]!);
  assert.equal(verifier.push(entries[0]!).kind, "invalid");
  for (const junk of [new Uint8Array(0), new Uint8Array(10), utf8("x".repeat(200))]) {
    const step = verifier.push(junk);
    assert.equal(step.kind, "invalid");
    assert.equal(step.seqno, 2);
  }
  // A signature whose value is not the expected JSON shape.
  const malformed = tampered(entries, 7, (e) => {
    e[indexOfBytes(e, utf8('"sig":')) + 2] = "z".charCodeAt(0);
  });
  const bad = firstInvalid(verifyAll(malformed).steps);
  assert.equal(bad.seqno, 7);
  assert.match(bad.reason, /signature sig/);
});

test("any flipped bit before the last signature is reported at or before its covering signature", async () => {
  const { fixture, entries } = await cleanPromise;
  const lastSig = fixture.lastSignedSeqno;
  const signedEntries = entries.slice(0, lastSig - 1); // everything the last root covers
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: lastSig - 1 }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      fc.integer({ min: 0, max: 7 }),
      (seqno, where, bit) => {
        const size = signedEntries[seqno - 1]!.byteLength;
        const offset = Math.floor(where * size);
        const bad = tampered(entries, seqno, (e) => {
          e[offset]! ^= 1 << bit;
        });
        // The first root covering the entry's bytes is signed by the first signature after it
        // (an altered signature may also be caught at itself).
        const covering = fixture.signatureSeqnos.find((s) => s > seqno)!;
        const invalid = firstInvalid(verifyAll(bad).steps);
        assert.ok(
          invalid.seqno >= seqno && invalid.seqno <= covering,
          `bit ${bit} at ${offset} of seqno ${seqno}: reported at ${invalid.seqno} (${invalid.reason})`,
        );
      },
    ),
    { numRuns: 60 },
  );
  // Sanity of the oracle: the unaltered ledger has no invalid step.
  assert.equal(
    verifyAll(entries).steps.every((s) => s.kind !== "invalid"),
    true,
  );
});

/** The serialised tree over leaf 0 and entries 1..n, as a snapshot at n carries it. */
function treeOf(entries: readonly Uint8Array[], n: number): Uint8Array {
  const tree = newHistoryTree();
  for (const bytes of entries.slice(0, n)) {
    const entry = decodeEntry(bytes);
    tree.append(txLeaf(sha256(bytes), entry.commitEvidenceDigest, entry.claimsDigest));
  }
  return encodeSerialisedTree(tree, { fromIndex: n, toIndex: n });
}

/** A verifier starting after a snapshot at `seqno` with the tree `tree`. */
function fromSnapshot(seqno: number, tree: Uint8Array, serviceCertPem?: string): LedgerVerifier {
  return new LedgerVerifier({
    start: { kind: "snapshot", at: { seqno: seqno as Seqno, tree }, serviceCertPem: null },
    serviceCertPem,
  });
}

/** Pushes entries[from - 1..] into `verifier`, stopping at the first invalid step. */
function pushFrom(verifier: LedgerVerifier, entries: readonly Uint8Array[], from: number) {
  const steps: VerifyStep[] = [];
  for (const entry of entries.slice(from - 1)) {
    const step = verifier.push(entry);
    steps.push(step);
    if (step.kind === "invalid") break;
  }
  return steps;
}

test("a ledger starting after a snapshot checks roots from the snapshot's serialised tree", async () => {
  const { fixture, entries } = await cleanPromise;
  const service = fixture.identities.serviceCertPem;
  const verifier = fromSnapshot(10, treeOf(entries, 10), service);
  assert.deepEqual([verifier.startSeqno, verifier.lastSeqno], [11, 10]);
  const steps = pushFrom(verifier, entries, 11);
  const node = fixture.identities.node.nodeId;
  assert.deepEqual(
    steps.filter((s) => s.kind !== "entry"),
    [14, 21, 28, 35].map((seqno) => ({ kind: "signature", seqno, node })),
  );
  assert.deepEqual(
    [verifier.lastVerifiedSeqno, verifier.entryCount, verifier.signatureCount],
    [35, 25, 4],
  );
  const coverage = verifier.coverage;
  assert.deepEqual(
    [coverage.rootsCheckedFrom, coverage.uncheckedEntries, coverage.coseSignaturesChecked],
    [11, null, 4],
  );

  // A tree that disagrees with entries 1..10 fails at the first signature.
  const wrongTree = treeOf(
    tampered(entries, 7, (e) => alterJsonField(e, "sig", 0)),
    10,
  );
  const invalid = firstInvalid(pushFrom(fromSnapshot(10, wrongTree, service), entries, 11));
  assert.equal(invalid.seqno, 14);
  assert.match(invalid.reason, /signed root .* != recomputed root .*seqnos 11\.\.13/);

  // An altered entry after the start is still caught by the next root.
  const bad = tampered(entries, 16, (e) => {
    e[indexOfBytes(e, publicValue(fixture.txNumberBySeqno.get(16)!)) + 3]! ^= 0x20;
  });
  const late = firstInvalid(pushFrom(fromSnapshot(10, treeOf(entries, 10), service), bad, 11));
  assert.equal(late.seqno, 21);

  // The tree must end at the snapshot's seqno and be well-formed.
  assert.throws(
    () => fromSnapshot(11, treeOf(entries, 10)),
    /ends at leaf 10, not at its seqno 11/,
  );
  const malformed = treeOf(entries, 10).subarray(0, 40);
  assert.throws(() => fromSnapshot(10, malformed), SerialisedTreeError);

  // Snapshots are taken at signatures: starting right after one works the same.
  const after = pushFrom(fromSnapshot(14, treeOf(entries, 14), service), entries, 15);
  assert.deepEqual(
    after.filter((s) => s.kind !== "entry").map((s) => s.seqno),
    [21, 28, 35],
  );
  assert.ok(after.every((s) => s.kind !== "invalid"));
});
