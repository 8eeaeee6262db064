// TxHistory (src/ledger/history.ts): the Merkle tree over ledger entries, signature bookkeeping
// and CCF receipts. Roots are checked against an independent level-by-level Merkle computation
// (test/helpers/pki.ts, node's createHash) over CCF's leaves: leaf 0 is 32 zero bytes, seqno s
// is leaf s (as CCF's ledger validator builds its tree); receipts with verifyReceipt against the
// service certificate; then the lifecycle operations a node performs on the history: compaction
// (old receipts become unavailable, newer ones still verify), retraction on rollback (signatures
// and leaves dropped, re-appending reproduces a fresh history's roots) and the follower path
// (appendEntry on the leader's bytes reproduces its roots, receipts and write sets); the tree a
// signature carries (serialisedTreeForSignature, from the commit point); finally a history
// started from a snapshot (TxHistory.fromSnapshot with the serialised tree at seqno N, in our
// form and in CCF's, tree up to N - 1 plus hash_at_snapshot) kept in step with the original:
// same roots and receipts after N, nothing at or below N.
import { test } from "node:test";
import assert from "node:assert/strict";
import { toHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno, TxId, View } from "../../../src/base/ids.js";
import { sha256 as hashUnderTest } from "../../../src/crypto/hash.js";
import { signDigest } from "../../../src/crypto/ecdsa.js";
import type { WriteSet } from "../../../src/kv/write-set.js";
import { decodeEntry, decodeWriteSet } from "../../../src/ledger/entry-format.js";
import { TxHistory, type ReceiptOutcome } from "../../../src/ledger/history.js";
import { LedgerSecrets } from "../../../src/ledger/ledger-secrets.js";
import {
  decodeSerialisedTree,
  SerialisedTreeError,
  SerialisedTreeErrorCode,
} from "../../../src/ledger/merkle/serialised-tree.js";
import { parseReceipt, verifyReceipt, type Receipt } from "../../../src/ledger/receipt.js";
import { makeSignatureValue, signatureWriteSet } from "../../../src/ledger/signature.js";
import {
  createStartIdentities,
  type StartIdentities,
} from "../../../src/node/startup/start-identities.js";
import { merkleLevels, sha256 } from "../../helpers/pki.js";

const VIEW = 3 as View;
const SECRET_KEY = new Uint8Array(32).fill(0x5a);
const identitiesPromise = createStartIdentities({ now: new Date() });
const otherServicePromise = createStartIdentities({ now: new Date() });

function secrets(key: Uint8Array = SECRET_KEY): LedgerSecrets {
  return new LedgerSecrets(key);
}

function txWriteSet(i: number): WriteSet {
  const key = utf8(`key-${String(i).padStart(4, "0")}`);
  return {
    maps: [
      { name: "public:app.log", writes: [{ key, value: utf8(`public ${i}`) }] },
      { name: "secrets", writes: [{ key, value: utf8(`private ${i}`) }] },
    ],
  };
}

/** A claims digest for some transactions (every third), none for the rest. */
function claimsFor(i: number): Uint8Array | undefined {
  return i % 3 === 0 ? sha256(utf8(`claims ${i}`)) : undefined;
}

/**
 * A write set with every key and value copied into a plain Uint8Array, so deepEqual compares
 * bytes only.
 */
function plain(writeSet: WriteSet | null): WriteSet | null {
  if (writeSet === null) return null;
  return {
    maps: writeSet.maps.map((m) => ({
      name: m.name,
      writes: m.writes.map((w) => ({
        key: new Uint8Array(w.key),
        value: w.value === null ? null : new Uint8Array(w.value),
      })),
    })),
  };
}

/** What a test recorded while building a history, indexed by seqno - 1. */
interface Built {
  readonly history: TxHistory;
  readonly entries: Uint8Array[];
  readonly writeSets: WriteSet[];
  readonly claims: Uint8Array[];
  readonly views: View[];
  readonly signatureSeqnos: number[];
  /** The view of the next transaction (plan step "v" starts a new one). */
  view: View;
}

function newBuilt(s: LedgerSecrets = secrets()): Built {
  const history = new TxHistory(s);
  return {
    history,
    entries: [],
    writeSets: [],
    claims: [],
    views: [],
    signatureSeqnos: [],
    view: VIEW,
  };
}

function nextTxId(b: Built): TxId {
  return { view: b.view, seqno: (b.history.lastSeqno + 1) as Seqno };
}

/** Forgets what `b` recorded after `seqno`, as history.retract(seqno) does. */
function truncateBuilt(b: Built, seqno: number): void {
  for (const list of [b.entries, b.writeSets, b.claims, b.views]) list.length = seqno;
  const firstDropped = b.signatureSeqnos.findIndex((s) => s > seqno);
  if (firstDropped >= 0) b.signatureSeqnos.length = firstDropped;
}

function appendTx(b: Built, i: number): void {
  const writeSet = txWriteSet(i);
  const claimsDigest = claimsFor(i);
  const entry = b.history.appendWriteSet({ txId: nextTxId(b), writeSet, claimsDigest });
  b.entries.push(entry);
  b.views.push(b.view);
  b.writeSets.push(writeSet);
  b.claims.push(claimsDigest ?? new Uint8Array(32));
}

/** Appends a signature over everything recorded so far, signed by the node identity. */
function appendSignature(b: Built, ids: StartIdentities): void {
  const { history } = b;
  const txId = nextTxId(b);
  const root = history.rootForNextSignature();
  const value = makeSignatureValue({
    txId,
    commitTxId: { view: b.view, seqno: (b.signatureSeqnos.at(-1) ?? 0) as Seqno },
    root,
    signature: signDigest(ids.node.privateKey, root),
    nodeId: ids.node.nodeId,
    certPem: ids.node.certPem,
    hashedNonce: hashUnderTest(history.secrets.commitEvidence(txId)),
  });
  const tree = history.serialisedTreeForSignature(value.commit_seqno as Seqno);
  const writeSet = signatureWriteSet(value, { tree });
  b.entries.push(history.appendWriteSet({ txId, writeSet }));
  b.writeSets.push(writeSet);
  b.claims.push(new Uint8Array(32));
  b.views.push(b.view);
  b.signatureSeqnos.push(txId.seqno);
}

/**
 * Runs a plan: "t" appends the next ordinary transaction, "S" a signature, "v" moves to the
 * next view. Transaction numbers continue from what `b` already holds.
 */
function run(b: Built, plan: string, ids: StartIdentities): Built {
  for (const step of plan.replace(/\s/g, "")) {
    if (step === "t") appendTx(b, b.entries.length + 1);
    else if (step === "S") appendSignature(b, ids);
    else if (step === "v") b.view = (b.view + 1) as View;
    else throw new Error(`bad plan step ${step}`);
  }
  return b;
}

/** The leaf of seqno index + 1 (ccf-compatibility.md §6.4's leaf formula, createHash). */
function naiveLeaf(b: Built, index: number): Uint8Array {
  const view = b.views[index]!;
  const ce = b.history.secrets.commitEvidence({ view, seqno: (index + 1) as Seqno });
  return sha256(sha256(b.entries[index]!), sha256(utf8(ce)), b.claims[index]!);
}

/** Independent root over CCF's leaf 0 (32 zero bytes, not hashed) and entries 1..size. */
function naiveRoot(b: Built, size: number): Uint8Array {
  const leaves = b.entries.slice(0, size).map((_, index) => naiveLeaf(b, index));
  const levels = merkleLevels([new Uint8Array(32), ...leaves]);
  return levels[levels.length - 1]![0]!;
}

function expectReceipt(outcome: ReceiptOutcome, seqno: number): Receipt & { sigSeqno: number } {
  assert.equal(outcome.kind, "receipt", `seqno ${seqno}: expected a receipt, got ${outcome.kind}`);
  if (outcome.kind !== "receipt") throw new Error("unreachable");
  return { ...outcome.receipt, sigSeqno: outcome.signatureSeqno };
}

/** Verifies a receipt as a client would: after a JSON round trip, with the service cert. */
function assertVerifies(b: Built, seqno: number, serviceCertPem: string): number {
  const got = expectReceipt(b.history.receipt(seqno as Seqno), seqno);
  const { sigSeqno, ...receipt } = got;
  const parsed = parseReceipt(JSON.parse(JSON.stringify(receipt)));
  const result = verifyReceipt(parsed, serviceCertPem);
  assert.equal(
    result.kind,
    "valid",
    `seqno ${seqno}: ${result.kind === "invalid" ? result.reason : ""}`,
  );
  if (result.kind === "valid") {
    // The root the receipt proves is the one the covering signature signed, over seqnos before it.
    assert.equal(toHex(result.root), toHex(naiveRoot(b, sigSeqno - 1)), `seqno ${seqno} root`);
  }
  return sigSeqno;
}

/** The first signature seqno strictly after `seqno`, or the seqno itself if it is one. */
function coveringSignature(b: Built, seqno: number): number | undefined {
  if (b.signatureSeqnos.includes(seqno)) return seqno;
  return b.signatureSeqnos.find((s) => s > seqno);
}

test("the root a signature signs is the left-balanced Merkle root over every earlier entry", async () => {
  const ids = await identitiesPromise;
  const b = newBuilt();
  for (let size = 1; size <= 19; size++) {
    if (size % 7 === 0) appendSignature(b, ids);
    else appendTx(b, size);
    assert.equal(b.history.lastSeqno, size);
    assert.equal(
      toHex(b.history.rootForNextSignature()),
      toHex(naiveRoot(b, size)),
      `size ${size}`,
    );
  }
  for (const s of b.signatureSeqnos) {
    assert.equal(b.history.signatureAt(s as Seqno)?.root, toHex(naiveRoot(b, s - 1)));
  }
});

test("leaf 0 is 32 zero bytes: an empty history signs zeros, then H(zeros | leaf 1)", async () => {
  const ids = await identitiesPromise;
  const b = newBuilt();
  assert.equal(b.history.lastSeqno, 0);
  assert.equal(toHex(b.history.rootForNextSignature()), "00".repeat(32));
  appendTx(b, 1);
  const leaf1 = naiveLeaf(b, 0);
  assert.equal(toHex(b.history.leafAt(1 as Seqno)), toHex(leaf1));
  assert.equal(toHex(b.history.rootForNextSignature()), toHex(sha256(new Uint8Array(32), leaf1)));
  // The receipt of seqno 1 proves leaf 1 with leaf 0 as its left sibling.
  appendSignature(b, ids);
  const receipt = expectReceipt(b.history.receipt(1 as Seqno), 1);
  assert.deepEqual(receipt.proof, [{ left: "00".repeat(32) }]);
});

test("a signature carries the tree as CCF serialises it, from the commit point to the seqno before it", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS ttttS tt", ids); // signatures at 4 and 9
  for (const [seqno, commit] of [
    [4, 0],
    [9, 4],
  ] as const) {
    const sig = decodeEntry(b.entries[seqno - 1]!);
    const treeBytes = sig.publicMaps.find((m) => m.name === "public:ccf.internal.tree");
    const tree = decodeSerialisedTree(treeBytes!.writes[0]!.value!);
    assert.equal(tree.size, seqno, "leaves 0..seqno - 1");
    assert.equal(tree.minIndex, commit, "from the commit point known when signing");
    assert.equal(toHex(tree.root()), b.history.signatureAt(seqno as Seqno)!.root);
  }
  // Compacted past the commit point, the tree starts where the history still holds leaves.
  b.history.compact(6 as Seqno);
  const late = decodeSerialisedTree(b.history.serialisedTreeForSignature(4 as Seqno));
  assert.equal(late.minIndex, 6);
  assert.equal(toHex(late.root()), toHex(naiveRoot(b, 11)));
});

test("every transaction 1..N gets a receipt from the first signature after it that verifies against the service cert", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttttS ttttttttS tS tttS ttttt ttttS", ids);
  const n = b.history.lastSeqno;
  assert.equal(n, b.signatureSeqnos.at(-1));
  for (let seqno = 1; seqno <= n; seqno++) {
    const sigSeqno = assertVerifies(b, seqno, ids.serviceCertPem);
    assert.equal(sigSeqno, coveringSignature(b, seqno), `seqno ${seqno} covered by`);
  }
});

test("an ordinary receipt carries the entry's digest, commit evidence and claims digest", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "ttttttS", ids);
  for (const seqno of [1, 3, 6]) {
    const receipt = expectReceipt(b.history.receipt(seqno as Seqno), seqno);
    assert.equal(receipt.leaf, undefined);
    assert.deepEqual(receipt.leaf_components, {
      write_set_digest: toHex(sha256(b.entries[seqno - 1]!)),
      commit_evidence: b.history.secrets.commitEvidence({ view: VIEW, seqno: seqno as Seqno }),
      claims_digest: toHex(b.claims[seqno - 1]!),
    });
    assert.equal(receipt.node_id, ids.node.nodeId);
    assert.equal(receipt.cert, ids.node.certPem);
  }
  // Seqno 3 and 6 carry claims (claimsFor); 1 does not: the receipt must not invent them.
  const r3 = expectReceipt(b.history.receipt(3 as Seqno), 3);
  assert.notEqual(r3.leaf_components?.claims_digest, "0".repeat(64));
});

test("a signature transaction's receipt has its signed root as leaf, an empty proof, and verifies", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS tttttS", ids);
  for (const s of b.signatureSeqnos) {
    const receipt = expectReceipt(b.history.receipt(s as Seqno), s);
    assert.equal(receipt.sigSeqno, s);
    assert.deepEqual(receipt.proof, []);
    assert.equal(receipt.leaf_components, undefined);
    assert.equal(receipt.leaf, toHex(naiveRoot(b, s - 1)));
    assertVerifies(b, s, ids.serviceCertPem);
  }
});

test("receipts do not verify against another service's certificate", async () => {
  const ids = await identitiesPromise;
  const other = await otherServicePromise;
  const b = run(newBuilt(), "ttS", ids);
  const { sigSeqno: _, ...receipt } = expectReceipt(b.history.receipt(1 as Seqno), 1);
  const result = verifyReceipt(receipt, other.serviceCertPem);
  assert.equal(result.kind, "invalid");
});

test("transactions after the last signature are not-signed; seqno 0 and beyond the end are unavailable", async () => {
  const ids = await identitiesPromise;
  const unsignedOnly = run(newBuilt(), "ttt", ids);
  for (const seqno of [1, 2, 3]) {
    assert.deepEqual(unsignedOnly.history.receipt(seqno as Seqno), { kind: "not-signed" });
  }
  const b = run(newBuilt(), "ttS ttt", ids);
  assert.equal(b.history.receipt(2 as Seqno).kind, "receipt");
  for (const seqno of [4, 5, 6])
    assert.deepEqual(b.history.receipt(seqno as Seqno), { kind: "not-signed" });
  assert.deepEqual(b.history.receipt(0 as Seqno), { kind: "unavailable" });
  assert.deepEqual(b.history.receipt(7 as Seqno), { kind: "unavailable" });
  // Once a signature lands, the waiting transactions get receipts from it.
  run(b, "S", ids);
  for (const seqno of [4, 5, 6, 7]) assert.equal(assertVerifies(b, seqno, ids.serviceCertPem), 7);
});

test("signatureAt returns the recorded signature value only at signature seqnos", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "ttS tS", ids);
  assert.equal(b.history.signatureAt(1 as Seqno), null);
  assert.equal(b.history.signatureAt(4 as Seqno), null);
  const sig = b.history.signatureAt(5 as Seqno);
  assert.ok(sig !== null);
  assert.equal(sig.seqno, 5);
  assert.equal(sig.view, VIEW);
  assert.equal(sig.commit_seqno, 3);
  assert.equal(sig.node, ids.node.nodeId);
});

test("after compact(s) earlier seqnos are unavailable and later ones still verify, also past new signatures", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttttS tttttttS tttS", ids); // signatures at 6, 14, 18
  b.history.compact(10 as Seqno);
  assert.equal(b.history.firstRetained, 10);
  for (let seqno = 1; seqno < 10; seqno++) {
    assert.deepEqual(b.history.receipt(seqno as Seqno), { kind: "unavailable" }, `seqno ${seqno}`);
  }
  assert.equal(b.history.signatureAt(6 as Seqno), null);
  for (let seqno = 10; seqno <= 18; seqno++) assertVerifies(b, seqno, ids.serviceCertPem);
  // Compacting lower is a no-op; the history keeps growing and signing correctly.
  b.history.compact(4 as Seqno);
  assert.equal(b.history.firstRetained, 10);
  run(b, "tttttttt tttS", ids);
  assert.equal(toHex(b.history.rootForNextSignature()), toHex(naiveRoot(b, b.entries.length)));
  for (let seqno = 10; seqno <= b.history.lastSeqno; seqno++) {
    assertVerifies(b, seqno, ids.serviceCertPem);
  }
});

test("compacting exactly at a signature keeps that signature's own receipt", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS ttS", ids); // signatures at 4 and 7
  b.history.compact(4 as Seqno);
  assert.deepEqual(b.history.receipt(3 as Seqno), { kind: "unavailable" });
  assert.equal(assertVerifies(b, 4, ids.serviceCertPem), 4);
  assert.equal(assertVerifies(b, 5, ids.serviceCertPem), 7);
});

test("each receipt's commit evidence carries its own view, across view changes, compaction and retraction", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS v ttS tv tS vv ttttS", ids);
  assert.deepEqual(new Set(b.views).size, 4);
  const checkAll = (from: number): void => {
    for (let seqno = from; seqno <= b.history.lastSeqno; seqno++) {
      const receipt = expectReceipt(b.history.receipt(seqno as Seqno), seqno);
      if (receipt.leaf_components !== undefined) {
        assert.match(
          receipt.leaf_components.commit_evidence,
          new RegExp(`^ce:${b.views[seqno - 1]}\\.${seqno}:`),
        );
      }
      assertVerifies(b, seqno, ids.serviceCertPem);
    }
  };
  checkAll(1);
  b.history.compact(6 as Seqno);
  checkAll(6);
  b.history.retract(9 as Seqno);
  truncateBuilt(b, 9);
  run(b, "v tS", ids);
  checkAll(6);
  b.history.compact(10 as Seqno);
  checkAll(10);
});

test("retract drops later leaves and signatures; receipts they backed become not-signed or unavailable", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS tttS ttt", ids); // signatures at 4 and 8, 9..11 unsigned
  b.history.retract(6 as Seqno);
  assert.equal(b.history.lastSeqno, 6);
  assert.equal(b.history.signatureAt(8 as Seqno), null);
  assert.equal(toHex(b.history.rootForNextSignature()), toHex(naiveRoot(b, 6)));
  for (const seqno of [7, 8, 9, 11]) {
    assert.deepEqual(b.history.receipt(seqno as Seqno), { kind: "unavailable" }, `seqno ${seqno}`);
  }
  // 5 and 6 were covered by the dropped signature at 8 only.
  assert.deepEqual(b.history.receipt(5 as Seqno), { kind: "not-signed" });
  assert.deepEqual(b.history.receipt(6 as Seqno), { kind: "not-signed" });
  // Up to the retained signature nothing changed.
  for (const seqno of [1, 2, 3, 4]) assert.equal(assertVerifies(b, seqno, ids.serviceCertPem), 4);
});

test("re-appending after retract gives the same roots and receipts as a fresh history fed the same entries", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS tttS ttt", ids);
  b.history.retract(5 as Seqno);
  // Replace the suffix with different transactions (numbers 100+) and new signatures.
  truncateBuilt(b, 5);
  for (let i = 100; i < 104; i++) appendTx(b, i);
  appendSignature(b, ids);
  appendTx(b, 104);
  appendSignature(b, ids);

  const fresh = new TxHistory(secrets());
  for (const entry of b.entries) fresh.appendEntry(entry);
  assert.equal(fresh.lastSeqno, b.history.lastSeqno);
  assert.equal(toHex(fresh.rootForNextSignature()), toHex(b.history.rootForNextSignature()));
  assert.equal(toHex(b.history.rootForNextSignature()), toHex(naiveRoot(b, b.entries.length)));
  for (let seqno = 1; seqno <= b.history.lastSeqno; seqno++) {
    assert.deepEqual(
      b.history.receipt(seqno as Seqno),
      fresh.receipt(seqno as Seqno),
      `seqno ${seqno}`,
    );
    assertVerifies(b, seqno, ids.serviceCertPem);
  }
});

test("retract after compact works down to the first retained seqno and not below", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS ttttS tt", ids);
  b.history.compact(6 as Seqno);
  assert.throws(() => b.history.retract(4 as Seqno), /retract below the retained history/);
  b.history.retract(5 as Seqno);
  assert.equal(b.history.lastSeqno, 5);
  truncateBuilt(b, 5);
  appendTx(b, 200);
  appendTx(b, 201);
  appendSignature(b, ids);
  assert.equal(toHex(b.history.rootForNextSignature()), toHex(naiveRoot(b, 8)));
  for (let seqno = 6; seqno <= 8; seqno++) assertVerifies(b, seqno, ids.serviceCertPem);
});

test("a follower fed the leader's entry bytes has identical roots, signatures and receipts", async () => {
  const ids = await identitiesPromise;
  const leader = newBuilt();
  const leaderRoots: string[] = [];
  for (const step of "ttttS tttttttS ttS ttt".replace(/\s/g, "")) {
    run(leader, step, ids);
    leaderRoots.push(toHex(leader.history.rootForNextSignature()));
  }
  const follower = new TxHistory(secrets());
  leader.entries.forEach((bytes, index) => {
    const entry = follower.appendEntry(bytes);
    assert.equal(entry.seqno, index + 1);
    assert.equal(entry.view, VIEW);
    assert.equal(
      toHex(follower.rootForNextSignature()),
      leaderRoots[index],
      `root at ${index + 1}`,
    );
  });
  for (const s of leader.signatureSeqnos) {
    assert.deepEqual(follower.signatureAt(s as Seqno), leader.history.signatureAt(s as Seqno));
  }
  for (let seqno = 1; seqno <= follower.lastSeqno; seqno++) {
    assert.deepEqual(follower.receipt(seqno as Seqno), leader.history.receipt(seqno as Seqno));
  }
});

test("decodeWriteSet of the leader's entries reproduces the write sets only with the same ledger secrets", async () => {
  const ids = await identitiesPromise;
  const leader = run(newBuilt(), "tttS tt", ids);
  const wrongSecrets = secrets(new Uint8Array(32).fill(0x33));
  leader.entries.forEach((bytes, index) => {
    const entry = decodeEntry(bytes);
    const decoded = decodeWriteSet(entry, secrets());
    assert.deepEqual(plain(decoded), leader.writeSets[index], `seqno ${index + 1}`);
    assert.equal(decodeWriteSet(entry, wrongSecrets), null, `seqno ${index + 1} with another key`);
  });
  // The private domain is not in the clear: the private value's bytes do not appear.
  const private1 = utf8("private 1");
  assert.equal(Buffer.from(leader.entries[0]!).indexOf(Buffer.from(private1)), -1);
  assert.notEqual(Buffer.from(leader.entries[0]!).indexOf(Buffer.from(utf8("public 1"))), -1);
});

test("decoded private values are plain Uint8Arrays, not Buffers", async () => {
  const ids = await identitiesPromise;
  const leader = run(newBuilt(), "t", ids);
  const decoded = decodeWriteSet(decodeEntry(leader.entries[0]!), secrets());
  for (const map of decoded?.maps ?? []) {
    for (const w of map.writes) {
      assert.equal(Buffer.isBuffer(w.key), false, `${map.name} key`);
      assert.equal(Buffer.isBuffer(w.value), false, `${map.name} value`);
    }
  }
});

test("encodeWriteSet changes nothing until recordEncoded, which matches appendWriteSet", async () => {
  const ids = await identitiesPromise;
  const viaAppend = run(newBuilt(), "ttS", ids);
  const history = new TxHistory(secrets());
  for (const bytes of viaAppend.entries.slice(0, 3)) history.appendEntry(bytes);
  const rootBefore = toHex(history.rootForNextSignature());
  const txId: TxId = { view: VIEW, seqno: 4 as Seqno };
  const encoded = history.encodeWriteSet({
    txId,
    writeSet: txWriteSet(4),
    claimsDigest: claimsFor(4),
  });
  assert.equal(history.lastSeqno, 3);
  assert.equal(toHex(history.rootForNextSignature()), rootBefore);
  assert.deepEqual(history.receipt(4 as Seqno), { kind: "unavailable" });
  history.recordEncoded(encoded);

  appendTx(viaAppend, 4);
  assert.deepEqual(encoded.entry, viaAppend.entries[3]);
  assert.equal(encoded.signature, null);
  assert.equal(
    toHex(history.rootForNextSignature()),
    toHex(viaAppend.history.rootForNextSignature()),
  );
});

test("write sets must be recorded in seqno order", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tt", ids);
  const skip = { txId: { view: VIEW, seqno: 4 as Seqno }, writeSet: txWriteSet(4) };
  assert.throws(() => b.history.appendWriteSet(skip), /seqno order/);
  const fresh = new TxHistory(secrets());
  assert.throws(() => fresh.appendEntry(b.entries[1]!), /seqno order/);
  assert.equal(fresh.lastSeqno, 0);
});

// ---------------------------------------------------------------------------------------------
// Starting from a snapshot (TxHistory.fromSnapshot with the serialised tree at its seqno)

/** A history resuming after a snapshot at `b`'s current end, from its serialised tree. */
function restoreAtEnd(b: Built): TxHistory {
  const seqno = b.history.lastSeqno;
  return TxHistory.fromSnapshot(secrets(), { seqno, tree: b.history.serialisedTreeForSnapshot() });
}

/**
 * A Built view of `restored` that shares b's recorded arrays (entries, views, claims...), so the
 * naive root and receipt checks of `b` apply to it while runMirrored keeps both in step.
 */
function sharing(b: Built, restored: TxHistory): Built {
  return { ...b, history: restored };
}

/**
 * Runs `plan` on `b` and records every new transaction's write set in `restored` as well,
 * checking that both produce the same entry bytes and sign the same roots.
 */
function runMirrored(b: Built, restored: TxHistory, plan: string, ids: StartIdentities): void {
  for (const step of plan.replace(/\s/g, "")) {
    const before = b.entries.length;
    run(b, step, ids);
    for (let index = before; index < b.entries.length; index++) {
      const claims = b.claims[index]!;
      const entry = restored.appendWriteSet({
        txId: { view: b.views[index]!, seqno: (index + 1) as Seqno },
        writeSet: b.writeSets[index]!,
        claimsDigest: claims.some((byte) => byte !== 0) ? claims : undefined,
      });
      assert.deepEqual(entry, b.entries[index], `entry ${index + 1}`);
      assert.equal(
        toHex(restored.rootForNextSignature()),
        toHex(b.history.rootForNextSignature()),
        `root after ${index + 1}`,
      );
    }
  }
}

test("a history restored from the tree at N continues with the same roots and receipts after N", async () => {
  const ids = await identitiesPromise;
  const prefix = "tttSttttStttttt"; // no view changes, so any cut is a plain prefix of steps
  for (const cut of [0, 1, 4, 5, 9, 10, 15]) {
    const b = run(newBuilt(), prefix.slice(0, cut), ids);
    const restored = restoreAtEnd(b);
    assert.equal(restored.lastSeqno, cut);
    assert.equal(restored.firstRetained, cut + 1);
    if (cut > 0) {
      assert.equal(toHex(restored.rootForNextSignature()), toHex(b.history.rootForNextSignature()));
    }
    runMirrored(b, restored, "tt S t v ttt S tt", ids);
    const r = sharing(b, restored);
    for (let seqno = 1; seqno <= b.history.lastSeqno; seqno++) {
      const got = restored.receipt(seqno as Seqno);
      if (seqno <= cut) {
        assert.deepEqual(got, { kind: "unavailable" }, `cut ${cut} seqno ${seqno}`);
        assert.notEqual(b.history.receipt(seqno as Seqno).kind, "unavailable");
      } else {
        assert.deepEqual(got, b.history.receipt(seqno as Seqno), `cut ${cut} seqno ${seqno}`);
        if (got.kind === "receipt") assertVerifies(r, seqno, ids.serviceCertPem);
      }
    }
    // The last two are after the last signature in both histories.
    const last = b.history.lastSeqno;
    for (const seqno of [last - 1, last]) {
      assert.deepEqual(restored.receipt(seqno as Seqno), { kind: "not-signed" });
    }
    for (let seqno = cut + 1; seqno <= last - 2; seqno++) {
      assert.equal(assertVerifies(r, seqno, ids.serviceCertPem), coveringSignature(b, seqno));
    }
    assert.deepEqual(restored.receipt((last + 1) as Seqno), { kind: "unavailable" });
  }
});

test("a restored history retracts down to its snapshot seqno, not below, and compacts above it", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS ttt", ids); // snapshot at 7
  const restored = restoreAtEnd(b);
  assert.throws(() => restored.retract(6 as Seqno), /retract below the retained history/);
  runMirrored(b, restored, "ttS t", ids); // 8..11, signature at 10
  restored.retract(7 as Seqno);
  b.history.retract(7 as Seqno);
  truncateBuilt(b, 7);
  assert.equal(restored.lastSeqno, 7);
  assert.equal(restored.signatureAt(10 as Seqno), null);
  assert.deepEqual(restored.receipt(8 as Seqno), { kind: "unavailable" });
  assert.equal(toHex(restored.rootForNextSignature()), toHex(naiveRoot(b, 7)));
  // Different transactions after the rollback (numbers continue from the entries kept).
  runMirrored(b, restored, "v tttS ttS", ids);
  const r = sharing(b, restored);
  for (let seqno = 8; seqno <= 14; seqno++) assertVerifies(r, seqno, ids.serviceCertPem);
  restored.compact(9 as Seqno);
  assert.equal(restored.firstRetained, 9);
  assert.deepEqual(restored.receipt(8 as Seqno), { kind: "unavailable" });
  runMirrored(b, restored, "ttS", ids);
  for (let seqno = 9; seqno <= b.history.lastSeqno; seqno++) {
    assertVerifies(r, seqno, ids.serviceCertPem);
  }
  assert.equal(toHex(restored.rootForNextSignature()), toHex(naiveRoot(b, b.entries.length)));
});

test("a history can be restored from a compacted history's tree, and a follower continues it", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "ttttS ttttttt", ids);
  b.history.compact(8 as Seqno);
  const restored = restoreAtEnd(b);
  const follower = restoreAtEnd(b);
  runMirrored(b, restored, "tt S", ids);
  // The follower path: the leader's entry bytes after the snapshot, through appendEntry.
  for (const bytes of b.entries.slice(12)) follower.appendEntry(bytes);
  assert.equal(toHex(follower.rootForNextSignature()), toHex(b.history.rootForNextSignature()));
  for (let seqno = 13; seqno <= 15; seqno++) {
    assert.deepEqual(follower.receipt(seqno as Seqno), b.history.receipt(seqno as Seqno));
    assertVerifies(sharing(b, follower), seqno, ids.serviceCertPem);
  }
});

test("CCF's snapshot form, the signature's tree plus hash_at_snapshot, restores the same history", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS ttttS", ids); // a snapshot at the signature 9
  const sig = decodeEntry(b.entries[8]!);
  const tree = sig.publicMaps.find((m) => m.name === "public:ccf.internal.tree")!.writes[0]!.value!;
  const hashAtSnapshot = b.history.leafAt(9 as Seqno);
  const restored = TxHistory.fromSnapshot(secrets(), { seqno: 9 as Seqno, tree, hashAtSnapshot });
  assert.equal(restored.lastSeqno, 9);
  runMirrored(b, restored, "tt S t", ids);
  for (let seqno = 10; seqno <= 12; seqno++) {
    assertVerifies(sharing(b, restored), seqno, ids.serviceCertPem);
  }
  // Our form (the tree up to the seqno) must agree with a hash_at_snapshot given beside it.
  const ours = b.history.serialisedTreeForSnapshot();
  const seqno = b.history.lastSeqno;
  const leaf = b.history.leafAt(seqno);
  assert.equal(
    TxHistory.fromSnapshot(secrets(), { seqno, tree: ours, hashAtSnapshot: leaf }).lastSeqno,
    seqno,
  );
  assert.throws(
    () =>
      TxHistory.fromSnapshot(secrets(), { seqno, tree: ours, hashAtSnapshot: new Uint8Array(32) }),
    /disagrees with its hash_at_snapshot/,
  );
});

test("fromSnapshot rejects a malformed tree or one that does not end at the snapshot seqno", async () => {
  const ids = await identitiesPromise;
  const b = run(newBuilt(), "tttS tt", ids);
  const tree = b.history.serialisedTreeForSnapshot();
  const invalid = (error: unknown): boolean =>
    error instanceof SerialisedTreeError && error.code === SerialisedTreeErrorCode.Malformed;
  const start = (seqno: number, bytes: Uint8Array, hashAtSnapshot?: Uint8Array) => () =>
    TxHistory.fromSnapshot(secrets(), { seqno: seqno as Seqno, tree: bytes, hashAtSnapshot });
  assert.throws(start(5, tree), invalid);
  assert.throws(start(7, tree), invalid);
  assert.throws(start(7, tree, new Uint8Array(31)), invalid);
  assert.throws(start(6, tree.subarray(0, tree.byteLength - 1)), invalid);
  assert.throws(start(6, new Uint8Array([...tree, 0])), invalid);
  assert.equal(start(6, tree)().lastSeqno, 6);
  assert.equal(start(7, tree, new Uint8Array(32))().lastSeqno, 7, "a tree to N - 1 and a leaf");
});
