// Random and mutated bytes for the COSE_Sign1 decoder (src/crypto/cose.ts), the governance
// request parser on top of it (src/gov/cose-request.ts), the CBOR item decoder for COSE headers,
// COSE receipts (src/ledger/cose-receipt.ts) and the node-to-node message decoder's CBOR
// (src/node/replication/n2n/messages.ts). Inputs:
// random bytes, bit flips, truncations and insertions of valid signed envelopes, protected
// headers with values of the wrong type, absurd declared lengths and deep nesting. Properties:
// every failure is a typed CcfError (never a TypeError, RangeError or plain Error), every call
// returns promptly, a changed signed envelope never verifies as the original signer's, and a
// changed receipt that still verifies proves the same leaf under the same root.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import fc from "fast-check";
import { encode, Tagged } from "cborg";
import { CcfError } from "../../src/base/errors.js";
import { toHex } from "../../src/base/bytes.js";
import {
  COSE_HEADER_ALG,
  COSE_HEADER_KID,
  CoseError,
  decodeCborItem,
  decodeSign1,
  signSign1,
  verifySign1,
  type CoseLabel,
} from "../../src/crypto/cose.js";
import { memberIdFromCert, generateIdentity } from "../../src/crypto/identity.js";
import {
  checkGovCoseSignature,
  GovCoseError,
  HEADER_MSG_CREATED_AT,
  HEADER_MSG_PROPOSAL_ID,
  HEADER_MSG_TYPE,
  parseGovCoseRequest,
} from "../../src/gov/cose-request.js";
import { decodeN2n, N2nDecodeError } from "../../src/node/replication/n2n/messages.js";
import {
  coseProofOfReceipt,
  CoseReceiptError,
  decodeCoseReceipt,
  encodeCoseReceipt,
  inclusionProofRoot,
  verifyCoseReceipt,
  type CoseReceipt,
} from "../../src/ledger/cose-receipt.js";
import { makeCoseReceiptParts } from "../helpers/cose-receipts.js";
import { makePki } from "../helpers/pki.js";
import { mutate, mutationArb } from "../helpers/byte-mutations.js";

/** Longest any one decode may take: far above a normal one (ms), even on a loaded machine, far below a hang. */
const CASE_BOUND_MS = 1000;

const member = await generateIdentity({ name: "fuzz-member", now: new Date() });
const memberKey: KeyObject = createPrivateKey(member.privateKeyPem);
const memberPublic: KeyObject = createPublicKey(memberKey);
const memberId = memberIdFromCert(member.certPem);

/** Runs `f` and returns what it threw (null if nothing), failing on an untyped error or a slow call. */
function thrownBy(what: string, f: () => unknown): CcfError | null {
  const started = performance.now();
  try {
    f();
    return null;
  } catch (error) {
    if (!(error instanceof CcfError)) {
      assert.fail(`${what} threw an untyped ${String(error)}`);
    }
    return error;
  } finally {
    const took = performance.now() - started;
    assert.ok(took < CASE_BOUND_MS, `${what} took ${took.toFixed(0)} ms`);
  }
}

function governanceHeader(
  type: string,
  createdAt: unknown,
  proposalId?: unknown,
): Map<CoseLabel, unknown> {
  const header = new Map<CoseLabel, unknown>([
    [COSE_HEADER_KID, new TextEncoder().encode(memberId)],
    [HEADER_MSG_TYPE, type],
    [HEADER_MSG_CREATED_AT, createdAt],
  ]);
  if (proposalId !== undefined) header.set(HEADER_MSG_PROPOSAL_ID, proposalId);
  return header;
}

const validEnvelope = (payload: Uint8Array): Uint8Array =>
  signSign1(memberKey, governanceHeader("ballot", 1_700_000_000, "p1"), payload);

/** Parses as a governance request; if that succeeds, the signature is checked too. */
function parseAndCheck(bytes: Uint8Array): "valid" | "invalid" | "rejected" {
  let outcome: "valid" | "invalid" | "rejected" = "rejected";
  const error = thrownBy("parseGovCoseRequest", () => {
    const request = parseGovCoseRequest(bytes);
    outcome = checkGovCoseSignature(request, member.certPem).kind;
  });
  if (error !== null) assert.ok(error instanceof GovCoseError, `${error.name}: ${error.message}`);
  return outcome;
}

function decodeAll(bytes: Uint8Array): void {
  const sign1 = thrownBy("decodeSign1", () => {
    const message = decodeSign1(bytes);
    verifySign1(message, memberPublic);
  });
  if (sign1 !== null) assert.ok(sign1 instanceof CoseError, `${sign1.name}: ${sign1.message}`);
  const item = thrownBy("decodeCborItem", () => decodeCborItem(bytes));
  if (item !== null) assert.ok(item instanceof CoseError);
  const n2n = thrownBy("decodeN2n", () => decodeN2n(bytes));
  if (n2n !== null) assert.ok(n2n instanceof N2nDecodeError);
  parseAndCheck(bytes);
}

const payloadArb = fc.uint8Array({ maxLength: 64 });

const anyMutation = mutationArb({ maxRun: 9, maxOverwrite: 9 });

test("property: random bytes give typed errors only, promptly", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => decodeAll(bytes)),
    { numRuns: 3000 },
  );
});

test("property: a mutated signed envelope never verifies, and fails with typed errors", () => {
  fc.assert(
    fc.property(
      payloadArb,
      fc.array(anyMutation, { minLength: 1, maxLength: 3 }),
      (payload, ms) => {
        const envelope = validEnvelope(payload);
        let bytes = envelope;
        for (const m of ms) bytes = mutate(bytes, m);
        decodeAll(bytes);
        if (toHex(bytes) === toHex(envelope)) return;
        const outcome = parseAndCheck(bytes);
        if (outcome !== "valid") return;
        // Still valid: only a change outside what the signature covers (the unprotected header,
        // or an equivalent re-encoding of the same signed bytes) may pass.
        const original = decodeSign1(envelope);
        const changed = decodeSign1(bytes);
        assert.equal(toHex(changed.protectedBytes), toHex(original.protectedBytes));
        assert.equal(toHex(changed.payload), toHex(original.payload));
        assert.equal(toHex(changed.signature), toHex(original.signature));
      },
    ),
    { numRuns: 700 },
  );
});

/** Values of every CBOR type, for protected header fields that expect one type. */
const anyValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer(),
  fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 70 }),
  fc.uint8Array({ maxLength: 70 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc
    .dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 3 })
    .map((d) => new Map(Object.entries(d))),
);

test("property: wrong types in the protected header are typed errors, never accepted oddly", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(
        COSE_HEADER_KID,
        HEADER_MSG_TYPE,
        HEADER_MSG_CREATED_AT,
        HEADER_MSG_PROPOSAL_ID,
      ),
      anyValueArb,
      payloadArb,
      (label, value, payload) => {
        const header = governanceHeader("ballot", 1_700_000_000, "p1");
        header.set(label, value);
        const bytes = signSign1(memberKey, header, payload);
        const outcome = parseAndCheck(bytes);
        if (outcome === "rejected") return;
        // Accepted: the field must have had a type the parser takes.
        const request = parseGovCoseRequest(bytes);
        assert.ok(Number.isSafeInteger(request.createdAt));
        assert.equal(request.kid, memberId);
        assert.equal(typeof request.proposalId, "string");
      },
    ),
    { numRuns: 300 },
  );
});

/** CBOR heads with absurd lengths: byte and text strings, arrays, maps; 1, 2, 4 and 8-byte counts. */
const hugeHeadArb = fc
  .tuple(
    fc.constantFrom(2, 3, 4, 5),
    fc.constantFrom(26, 27),
    fc.uint8Array({ minLength: 8, maxLength: 8 }),
  )
  .map(
    ([major, info, count]) =>
      new Uint8Array([(major << 5) | info, ...count.subarray(0, info === 26 ? 4 : 8)]),
  );

test("property: huge declared lengths anywhere in an envelope fail fast with typed errors", () => {
  fc.assert(
    fc.property(payloadArb, fc.nat(), hugeHeadArb, fc.boolean(), (payload, at, head, replace) => {
      const envelope = validEnvelope(payload);
      const cut = at % envelope.byteLength;
      const rest = envelope.subarray(
        replace ? Math.min(envelope.byteLength, cut + head.byteLength) : cut,
      );
      decodeAll(new Uint8Array([...envelope.subarray(0, cut), ...head, ...rest]));
      decodeAll(head);
    }),
    { numRuns: 400 },
  );
});

test("property: deep nesting (arrays, maps, tags) gives typed errors or a value, never a crash", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200_000 }),
      fc.constantFrom(0x81, 0xa1, 0xd2, 0xd8),
      (depth, open) => {
        // A map needs a key before each nested value; a one-byte tag (0xd8) needs its number.
        const unit = open === 0xa1 ? [0xa1, 0x01] : open === 0xd8 ? [0xd8, 0x40] : [open];
        const bytes = new Uint8Array(depth * unit.length + 1);
        for (let i = 0; i < depth; i++) bytes.set(unit, i * unit.length);
        bytes[bytes.byteLength - 1] = 0x00;
        decodeAll(bytes);
        // The same nesting as the protected header of a signed-looking envelope.
        const sig = new Uint8Array(64);
        decodeAll(encode(new Tagged(18, [bytes, new Map(), new Uint8Array(1), sig])));
      },
    ),
    { numRuns: 30 },
  );
});

const pki = await makePki();

/** Decodes and verifies a COSE receipt: the decoded receipt if it verifies, else null. */
function verifiedReceipt(bytes: Uint8Array): CoseReceipt | null {
  let verified: CoseReceipt | null = null;
  const error = thrownBy("decodeCoseReceipt", () => {
    const receipt = decodeCoseReceipt(bytes);
    const result = verifyCoseReceipt(receipt, { serviceCertPem: pki.serviceCertPem });
    if (result.kind === "valid") verified = receipt;
  });
  if (error !== null)
    assert.ok(error instanceof CoseReceiptError, `${error.name}: ${error.message}`);
  return verified;
}

test("property: a mutated COSE receipt fails with CoseReceiptError or proves the same", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.nat(),
      fc.array(anyMutation, { minLength: 1, maxLength: 3 }),
      (leafCount, at, mutations) => {
        const parts = makeCoseReceiptParts(pki, { leafCount, index: at % leafCount });
        const proof = coseProofOfReceipt(parts.receipt);
        assert.ok(proof !== null);
        const bytes = encodeCoseReceipt(parts.coseSignature, proof);
        const original = verifiedReceipt(bytes);
        assert.ok(original !== null, "the unmutated receipt verifies");
        let mutated = bytes;
        for (const m of mutations) mutated = mutate(mutated, m);
        const receipt = verifiedReceipt(mutated);
        if (receipt === null) return;
        // Verified: it must sign the same root over the same leaf (only an equivalent encoding,
        // or the claims CCF leaves unchecked, such as an unused header, may differ).
        assert.equal(receipt.proofs.length, 1);
        const [got] = receipt.proofs;
        assert.equal(toHex(inclusionProofRoot(got!)), toHex(parts.root));
        assert.equal(toHex(got!.writeSetDigest), toHex(proof.writeSetDigest));
        assert.equal(got!.commitEvidence, proof.commitEvidence);
        assert.equal(toHex(got!.claimsDigest), toHex(proof.claimsDigest));
      },
    ),
    { numRuns: 300, includeErrorInReport: true },
  );
});
