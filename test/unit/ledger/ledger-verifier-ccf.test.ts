// LedgerVerifier (src/ledger/ledger-verifier.ts) on what CCF 6 adds to a ledger, over a real
// ledger built by TxPipeline (test/helpers/ledger-fixture.ts; its first transaction records the
// service certificate, as a genesis does): every signature's COSE signature and serialised tree
// are checked (coverage counts them), and a tampered one is an invalid step at that signature;
// a ledger of Consortia 0.1 (leaves numbered from seqno 1, test/helpers/reseal.ts) is
// refused with a LegacyFormatError at its first signature, while a merely wrong root is an
// invalid step; a partial check (ledger files missing at the front) takes the tree of the first
// signature that carries one, compares the entries before it with that tree's leaves, checks
// every later root, and reports exactly what it could not check. The oracle for "what must be
// caught" is the tampering itself: one altered field per case, at a known seqno.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromHex, utf8 } from "../../../src/base/bytes.js";
import type { Seqno } from "../../../src/base/ids.js";
import { signSign1Detached } from "../../../src/crypto/cose.js";
import { publicKeyId } from "../../../src/crypto/identity.js";
import {
  encodeCoseSignatureValue,
  rootSignatureHeader,
} from "../../../src/ledger/cose-signature.js";
import { decodeEntry } from "../../../src/ledger/entry-format.js";
import {
  LedgerVerifier,
  type LedgerVerifierOptions,
  type VerifyStep,
} from "../../../src/ledger/ledger-verifier.js";
import { LegacyFormatError, LegacyFormatErrorCode } from "../../../src/ledger/legacy-format.js";
import { findSignature } from "../../../src/ledger/signature.js";
import { createStartIdentities } from "../../../src/node/startup/start-identities.js";
import {
  buildLedgerFixture,
  publicValue,
  readEntries,
  type LedgerFixture,
} from "../../helpers/ledger-fixture.js";
import { resealEntries } from "../../helpers/reseal.js";
import { resignEntry, type SignatureChanges } from "../../helpers/resign.js";

const identitiesPromise = createStartIdentities({ now: new Date() });
const otherPromise = createStartIdentities({ now: new Date() });

/** 30 txs, a signature after every 6: signatures at 7, 14, 21, 28, 35. */
const cleanPromise = identitiesPromise.then(async (identities) => {
  const fixture = await buildLedgerFixture({ txCount: 30, sigTxInterval: 6, identities });
  return { fixture, entries: readEntries(fixture.dir) };
});

test.after(async () => {
  (await cleanPromise).fixture.cleanup();
});

function run(
  entries: readonly Uint8Array[],
  options: LedgerVerifierOptions = {},
  from = 1,
): { verifier: LedgerVerifier; steps: VerifyStep[] } {
  const verifier = new LedgerVerifier(options);
  const steps: VerifyStep[] = [];
  for (const entry of entries.slice(from - 1)) {
    const step = verifier.push(entry);
    steps.push(step);
    if (step.kind === "invalid") break;
  }
  return { verifier, steps };
}

function invalidAt(steps: readonly VerifyStep[]): { seqno: number; reason: string } {
  const bad = steps.find((s) => s.kind === "invalid");
  assert.ok(bad !== undefined && bad.kind === "invalid", "expected an invalid step");
  return bad;
}

function withSignature(
  f: LedgerFixture,
  entries: readonly Uint8Array[],
  seqno: number,
  changes: SignatureChanges,
): Uint8Array[] {
  return entries.map((e, i) => (i === seqno - 1 ? resignEntry(f.secrets, e, changes) : e));
}

function alterPublicValue(f: LedgerFixture, entries: readonly Uint8Array[], seqno: number) {
  return entries.map((e, i) => {
    if (i !== seqno - 1) return e;
    const copy = e.slice();
    const needle = Buffer.from(publicValue(f.txNumberBySeqno.get(seqno)!));
    copy[Buffer.from(copy).indexOf(needle) + 3]! ^= 0x20;
    return copy;
  });
}

function rootOf(entry: Uint8Array): Uint8Array {
  return fromHex(findSignature(decodeEntry(entry).publicMaps)!.root)!;
}

test("every signature's COSE signature and serialised tree are checked", async () => {
  const { entries } = await cleanPromise;
  const { verifier, steps } = run(entries);
  assert.ok(steps.every((s) => s.kind !== "invalid"));
  assert.deepEqual(verifier.coverage, {
    rootsCheckedFrom: 1,
    treeTakenAt: null,
    uncheckedEntries: null,
    signaturesOverClaimedRoots: 0,
    coseSignaturesChecked: 5,
    coseSignaturesUnchecked: 0,
    treesChecked: 5,
  });
});

test("a COSE signature by another key, for another txid or over another root is invalid", async () => {
  const { fixture, entries } = await cleanPromise;
  const other = await otherPromise;
  const service = fixture.identities.serviceKeys.privateKey;
  const root = rootOf(entries[34]!);
  const header = (keyId: string, seqno = 35) =>
    rootSignatureHeader({
      keyId,
      txId: { view: 2 as never, seqno: seqno as Seqno },
      issuedAtSeconds: 1,
      config: { issuer: "", subject: "" },
    });
  const cose = (key = service, h = header(publicKeyId(service)), over = root) =>
    encodeCoseSignatureValue(signSign1Detached(key, h, over));
  // Rebuilt with the right key, headers and root, it verifies: the cases below differ in one.
  assert.equal(
    invalidAtOrNull(withSignature(fixture, entries, 35, { coseSignature: cose() })),
    null,
  );
  const cases: [Uint8Array, RegExp][] = [
    [cose(other.serviceKeys.privateKey), /does not verify/],
    [cose(service, header(publicKeyId(other.serviceKeys.privateKey))), /kid is not/],
    [cose(service, header(publicKeyId(service), 34)), /txid 2\.34 is not the signature's 2\.35/],
    [cose(service, undefined, new Uint8Array(32)), /does not verify over the root/],
    [utf8('"not base64!"'), /not a JSON string of base64/],
  ];
  for (const [value, reason] of cases) {
    const bad = invalidAt(run(withSignature(fixture, entries, 35, { coseSignature: value })).steps);
    assert.equal(bad.seqno, 35);
    assert.match(bad.reason, reason);
  }
});

function invalidAtOrNull(entries: readonly Uint8Array[]): number | null {
  const bad = run(entries).steps.find((s) => s.kind === "invalid");
  return bad === undefined ? null : bad.seqno;
}

test("a serialised tree that is not the tree the root is the root of is invalid", async () => {
  const { fixture, entries } = await cleanPromise;
  // Signature 28's tree in signature 35: well-formed, but ends at leaf 27.
  const tree28 = decodeEntry(entries[27]!).publicMaps.find(
    (m) => m.name === "public:ccf.internal.tree",
  )!.writes[0]!.value!;
  const shorter = invalidAt(run(withSignature(fixture, entries, 35, { tree: tree28 })).steps);
  assert.deepEqual([shorter.seqno, /ends at leaf 27, not 34/.test(shorter.reason)], [35, true]);
  const own = decodeEntry(entries[34]!).publicMaps.find(
    (m) => m.name === "public:ccf.internal.tree",
  )!.writes[0]!.value!;
  const flipped = own.slice();
  flipped[20]! ^= 1; // a leaf
  const other = invalidAt(run(withSignature(fixture, entries, 35, { tree: flipped })).steps);
  assert.deepEqual([other.seqno, /has another root/.test(other.reason)], [35, true]);
  const cut = invalidAt(run(withSignature(fixture, entries, 35, { tree: own.subarray(1) })).steps);
  assert.match(cut.reason, /invalid serialised Merkle tree/);
  // Without the maps (a ledger CCF wrote before 6) the signature is checked as before.
  const none = withSignature(fixture, entries, 35, { tree: null, coseSignature: null });
  const { verifier, steps } = run(none);
  assert.ok(steps.every((s) => s.kind !== "invalid"));
  assert.deepEqual(
    [verifier.coverage.treesChecked, verifier.coverage.coseSignaturesChecked],
    [4, 4],
  );
});

test("a Consortia 0.1 ledger is refused at its first signature, naming the format", async () => {
  const { fixture, entries } = await cleanPromise;
  const legacy = resealEntries(entries, fixture, { legacyNumbering: true });
  assert.throws(
    () => run(legacy),
    (e: unknown) =>
      e instanceof LegacyFormatError &&
      e.code === LegacyFormatErrorCode.LegacyLeafNumbering &&
      e.type.seqno === 7 &&
      /numbers Merkle leaves from seqno 1 \(Consortia 0\.1 format\).*leaf 0 is 32 zero bytes/.test(
        e.message,
      ),
  );
  // A first signature over some other root is an ordinary invalid step, not the old format.
  const value = findSignature(decodeEntry(entries[6]!).publicMaps)!;
  const wrong = withSignature(fixture, entries, 7, { value: { ...value, root: "ab".repeat(32) } });
  const bad = invalidAt(run(wrong).steps);
  assert.deepEqual([bad.seqno, /!= recomputed root/.test(bad.reason)], [7, true]);
});

test("a partial check takes the first signature's tree and then checks every root", async () => {
  const { fixture, entries } = await cleanPromise;
  const partial = { start: { kind: "partial", seqno: 11 as Seqno } } as const;
  const { verifier, steps } = run(entries, partial, 11);
  assert.ok(steps.every((s) => s.kind !== "invalid"));
  assert.equal(verifier.lastVerifiedSeqno, 35);
  // Signature 14's tree starts at the commit point 7: entries 11..13 are compared with it.
  assert.deepEqual(verifier.coverage, {
    rootsCheckedFrom: 11,
    treeTakenAt: 14,
    uncheckedEntries: null,
    signaturesOverClaimedRoots: 0,
    coseSignaturesChecked: 0,
    coseSignaturesUnchecked: 4,
    treesChecked: 4,
  });
  const early = invalidAt(run(alterPublicValue(fixture, entries, 12), partial, 11).steps);
  assert.deepEqual(
    [early.seqno, /entry 12 is not the one the tree/.test(early.reason)],
    [14, true],
  );
  const late = invalidAt(run(alterPublicValue(fixture, entries, 16), partial, 11).steps);
  assert.deepEqual([late.seqno, /!= recomputed root/.test(late.reason)], [21, true]);
  // With the service certificate, the COSE signatures are checked too.
  const serviceCertPem = fixture.identities.serviceCertPem;
  const withCert = run(entries, { ...partial, serviceCertPem }, 11).verifier.coverage;
  assert.deepEqual([withCert.coseSignaturesChecked, withCert.coseSignaturesUnchecked], [4, 0]);
});

test("a partial check says which entries no root covered", async () => {
  const { fixture, entries } = await cleanPromise;
  const partial = { start: { kind: "partial", seqno: 11 as Seqno } } as const;
  // Signature 14 without its tree: checked over its claimed root; 21's tree starts at 14.
  const no14 = resealEntries(entries, fixture, { withTree: (seqno) => seqno !== 14 });
  const { verifier } = run(no14, partial, 11);
  assert.equal(verifier.lastVerifiedSeqno, 35);
  const c = verifier.coverage;
  assert.deepEqual(
    [c.rootsCheckedFrom, c.treeTakenAt, c.uncheckedEntries, c.signaturesOverClaimedRoots],
    [14, 21, { from: 11, to: 13 }, 1],
  );
  // What "not checked" means: an altered entry there goes unnoticed.
  const altered = alterPublicValue(fixture, no14, 12);
  assert.ok(run(altered, partial, 11).steps.every((s) => s.kind !== "invalid"));
  // No signature with a tree at all: nothing is covered by a recomputed root.
  const bare = resealEntries(entries, fixture, { withTree: () => false });
  const none = run(bare, partial, 11).verifier.coverage;
  assert.deepEqual(
    [
      none.rootsCheckedFrom,
      none.treeTakenAt,
      none.uncheckedEntries,
      none.signaturesOverClaimedRoots,
    ],
    [null, null, { from: 11, to: 35 }, 4],
  );
});
