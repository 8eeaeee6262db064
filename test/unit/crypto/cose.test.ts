// COSE_Sign1 (src/crypto/cose.ts): sign/verify round trips on P-256, P-384 and P-521; interop
// with a message hand-assembled from cborg + node:crypto (so the verifier is checked against an
// independent construction of the Sig_structure, not against its own signer); and every kind of
// malformed envelope, each of which must give its own CoseErrorCode, because governance maps
// these failures to 401s and a permissive parser would accept requests CCF refuses.
// Re-encoding with a new unprotected header (COSE receipts) is checked on a hand-assembled
// detached message too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from "node:crypto";
import { Tagged, encode } from "cborg";
import fc from "fast-check";
import {
  CborFloat,
  CoseAlg,
  CoseError,
  CoseErrorCode,
  coseAlgForKey,
  decodeAndVerifySign1,
  decodeCborItem,
  decodeSign1,
  encodeCborItem,
  encodeSign1WithUnprotected,
  sign1ToBeSigned,
  signSign1,
  verifySign1,
} from "../../../src/crypto/cose.js";

const KEYS = {
  p256: generateKeyPairSync("ec", { namedCurve: "prime256v1" }),
  p384: generateKeyPairSync("ec", { namedCurve: "secp384r1" }),
  p521: generateKeyPairSync("ec", { namedCurve: "secp521r1" }),
};
const HASH_OF = { [CoseAlg.ES256]: "sha256", [CoseAlg.ES384]: "sha384", [CoseAlg.ES512]: "sha512" };
const PAYLOAD = new TextEncoder().encode('{"actions":[]}');

function header(entries: [number | string, unknown][]): Map<number | string, unknown> {
  return new Map(entries);
}

/** A COSE_Sign1 built without src/crypto/cose.ts: explicit Sig_structure, node:crypto, cborg. */
function handAssemble(
  key: KeyObject,
  alg: CoseAlg,
  protectedBytes: Uint8Array,
  payload: Uint8Array,
  tag: number | null = 18,
): Uint8Array {
  const tbs = encode(["Signature1", protectedBytes, new Uint8Array(0), payload]);
  const signature = nodeSign(HASH_OF[alg], tbs, { key, dsaEncoding: "ieee-p1363" });
  const body = [protectedBytes, new Map(), payload, new Uint8Array(signature)];
  return encode(tag === null ? body : new Tagged(tag, body));
}

/** Encodes an arbitrary COSE_Sign1-shaped array (for malformed cases). */
function envelope(items: unknown[], tag: number | null = 18): Uint8Array {
  return encode(tag === null ? items : new Tagged(tag, items));
}

function codeOf(fn: () => unknown): CoseErrorCode {
  try {
    fn();
  } catch (err: unknown) {
    assert.ok(err instanceof CoseError, `expected CoseError, got ${String(err)}`);
    return err.code;
  }
  assert.fail("expected a CoseError");
}

const P384_PROTECTED = encode(header([[1, CoseAlg.ES384]]));
const SIG96 = new Uint8Array(96);

test("signSign1 and decodeAndVerifySign1 round-trip on P-256, P-384 and P-521", () => {
  const cases = [
    [KEYS.p256, CoseAlg.ES256, 64],
    [KEYS.p384, CoseAlg.ES384, 96],
    [KEYS.p521, CoseAlg.ES512, 132],
  ] as const;
  for (const [keys, alg, sigBytes] of cases) {
    const bytes = signSign1(keys.privateKey, header([["ccf.gov.msg.type", "proposal"]]), PAYLOAD);
    assert.equal(bytes[0], 0xd2, "tag 18 is the first byte");
    const message = decodeAndVerifySign1(bytes, keys.publicKey);
    assert.equal(message.alg, alg);
    assert.equal(message.tagged, true);
    assert.equal(message.signature.byteLength, sigBytes);
    assert.deepEqual(message.payload, PAYLOAD);
    assert.equal(message.protectedHeader.get(1), alg);
    assert.equal(message.protectedHeader.get("ccf.gov.msg.type"), "proposal");
    assert.equal(message.unprotectedHeader.size, 0);
  }
});

test("an untagged message round-trips and is refused only when the tag is required", () => {
  const bytes = signSign1(KEYS.p256.privateKey, header([]), PAYLOAD, { tagged: false });
  assert.equal(bytes[0], 0x84, "a bare 4-element array");
  const message = decodeAndVerifySign1(bytes, KEYS.p256.publicKey);
  assert.equal(message.tagged, false);
  assert.equal(
    codeOf(() => decodeSign1(bytes, { requireTag: true })),
    CoseErrorCode.NotTagged,
  );
});

test("an empty payload can be signed and verified", () => {
  const bytes = signSign1(KEYS.p384.privateKey, header([]), new Uint8Array(0));
  assert.equal(decodeAndVerifySign1(bytes, KEYS.p384.publicKey).payload.byteLength, 0);
});

test("a hand-assembled COSE_Sign1 (cborg + node:crypto) verifies with our verifier", () => {
  for (const [keys, alg] of [
    [KEYS.p256, CoseAlg.ES256],
    [KEYS.p384, CoseAlg.ES384],
  ] as const) {
    const protectedBytes = encode(
      header([
        [1, alg],
        [4, new TextEncoder().encode("kid")],
      ]),
    );
    const bytes = handAssemble(keys.privateKey, alg, protectedBytes, PAYLOAD);
    const message = decodeAndVerifySign1(bytes, keys.publicKey);
    assert.deepEqual(message.protectedBytes, protectedBytes);
    assert.deepEqual(message.payload, PAYLOAD);
  }
});

test("the signature covers the protected bytes as sent, even in non-canonical label order", () => {
  // Text label before the int labels: cborg's canonical order would put 1 first, so a verifier
  // that re-encoded the header would compute a different Sig_structure.
  const protectedBytes = Uint8Array.from([
    0xa2,
    0x61,
    0x78,
    0x01, // "x": 1
    0x01,
    0x38,
    0x22, // 1: -35
  ]);
  const bytes = handAssemble(KEYS.p384.privateKey, CoseAlg.ES384, protectedBytes, PAYLOAD);
  const message = decodeAndVerifySign1(bytes, KEYS.p384.publicKey);
  assert.deepEqual(message.protectedBytes, protectedBytes);
  assert.equal(message.protectedHeader.get("x"), 1);
});

test("sign1ToBeSigned is the RFC 9052 Sig_structure with empty external AAD", () => {
  const tbs = sign1ToBeSigned(Uint8Array.from([0xa0]), Uint8Array.from([1, 2]));
  // 84 | 6a "Signature1" | 41 a0 | 40 | 42 01 02
  const expected = Uint8Array.from([
    0x84,
    0x6a,
    ...new TextEncoder().encode("Signature1"),
    0x41,
    0xa0,
    0x40,
    0x42,
    1,
    2,
  ]);
  assert.deepEqual(tbs, expected);
});

test("bytes that are not one CBOR item are NotCbor", () => {
  const good = signSign1(KEYS.p256.privateKey, header([]), PAYLOAD);
  assert.equal(
    codeOf(() => decodeSign1(new Uint8Array(0))),
    CoseErrorCode.NotCbor,
  );
  assert.equal(
    codeOf(() => decodeSign1(Uint8Array.from([0xff]))),
    CoseErrorCode.NotCbor,
  );
  assert.equal(
    codeOf(() => decodeSign1(good.subarray(0, good.length - 1))),
    CoseErrorCode.NotCbor,
  );
  const trailing = Uint8Array.from([...good, 0x00]);
  assert.equal(
    codeOf(() => decodeSign1(trailing)),
    CoseErrorCode.NotCbor,
  );
  const json = new TextEncoder().encode('{"not":"cbor"}');
  assert.equal(
    codeOf(() => decodeSign1(json)),
    CoseErrorCode.NotCbor,
  );
  // Well-formed CBOR that is not an array is a structural error, not a CBOR one.
  assert.equal(
    codeOf(() => decodeSign1(encode("hello"))),
    CoseErrorCode.NotSign1Array,
  );
});

test("a tag other than 18 is WrongTag, including COSE_Sign (98) and COSE_Mac0 (17)", () => {
  const items = [P384_PROTECTED, new Map(), PAYLOAD, SIG96];
  for (const tag of [17, 98, 61, 1000]) {
    assert.equal(
      codeOf(() => decodeSign1(envelope(items, tag))),
      CoseErrorCode.WrongTag,
    );
  }
});

test("an array of 3 or 5 elements, or a map, is NotSign1Array", () => {
  const items = [P384_PROTECTED, new Map(), PAYLOAD, SIG96];
  assert.equal(
    codeOf(() => decodeSign1(envelope(items.slice(0, 3)))),
    CoseErrorCode.NotSign1Array,
  );
  assert.equal(
    codeOf(() => decodeSign1(envelope([...items, 0]))),
    CoseErrorCode.NotSign1Array,
  );
  const map = envelope([]).slice(0, 1); // just the tag byte
  const asMap = Uint8Array.from([...map, ...encode(new Map([[1, 2]]))]);
  assert.equal(
    codeOf(() => decodeSign1(asMap)),
    CoseErrorCode.NotSign1Array,
  );
});

test("each element of the wrong type gets its own code", () => {
  const ok = [P384_PROTECTED, new Map(), PAYLOAD, SIG96];
  const withItem = (i: number, v: unknown): Uint8Array =>
    envelope(ok.map((x, j) => (j === i ? v : x)));
  assert.equal(
    codeOf(() => decodeSign1(withItem(0, "a1"))),
    CoseErrorCode.ProtectedNotBstr,
  );
  assert.equal(
    codeOf(() => decodeSign1(withItem(0, new Map()))),
    CoseErrorCode.ProtectedNotBstr,
  );
  assert.equal(
    codeOf(() => decodeSign1(withItem(1, []))),
    CoseErrorCode.UnprotectedNotMap,
  );
  assert.equal(
    codeOf(() => decodeSign1(withItem(2, null))),
    CoseErrorCode.PayloadNotBstr,
  );
  assert.equal(
    codeOf(() => decodeSign1(withItem(2, "text"))),
    CoseErrorCode.PayloadNotBstr,
  );
  assert.equal(
    codeOf(() => decodeSign1(withItem(3, "sig"))),
    CoseErrorCode.SignatureNotBstr,
  );
});

test("a protected bstr that does not hold exactly one CBOR map is ProtectedNotMap", () => {
  const rest = [new Map(), PAYLOAD, SIG96];
  for (const inner of [
    encode([1, -35]), // an array
    encode(-35), // an int
    Uint8Array.from([0xa1, 0x01]), // truncated map
    Uint8Array.from([...P384_PROTECTED, 0x00]), // a map followed by trailing bytes
  ]) {
    assert.equal(
      codeOf(() => decodeSign1(envelope([inner, ...rest]))),
      CoseErrorCode.ProtectedNotMap,
    );
  }
});

test("header labels must be ints or text and must not repeat", () => {
  const rest = [new Map(), PAYLOAD, SIG96];
  const bstrLabel = Uint8Array.from([0xa2, 0x01, 0x38, 0x22, 0x41, 0x00, 0x01]); // h'00': 1
  const repeated = Uint8Array.from([0xa2, 0x01, 0x38, 0x22, 0x01, 0x38, 0x22]); // 1: -35 twice
  for (const inner of [bstrLabel, repeated]) {
    assert.equal(
      codeOf(() => decodeSign1(envelope([inner, ...rest]))),
      CoseErrorCode.InvalidHeaderLabel,
    );
  }
});

test("a missing or non-ECDSA alg is refused before the signature is looked at", () => {
  const rest = [new Map(), PAYLOAD, SIG96];
  const missing = encode(header([[4, new Uint8Array(1)]]));
  assert.equal(
    codeOf(() => decodeSign1(envelope([missing, ...rest]))),
    CoseErrorCode.MissingAlg,
  );
  const empty = new Uint8Array(0); // RFC 9052: a zero-length protected bstr is an empty map
  assert.equal(
    codeOf(() => decodeSign1(envelope([empty, ...rest]))),
    CoseErrorCode.MissingAlg,
  );
  for (const alg of [-37, -8, 1, "ES384"]) {
    const p = encode(header([[1, alg]]));
    assert.equal(
      codeOf(() => decodeSign1(envelope([p, ...rest]))),
      CoseErrorCode.UnsupportedAlg,
    );
  }
  // alg only counts in the protected header.
  const unprotectedAlg = envelope([encode(new Map()), header([[1, -35]]), PAYLOAD, SIG96]);
  assert.equal(
    codeOf(() => decodeSign1(unprotectedAlg)),
    CoseErrorCode.MissingAlg,
  );
});

test("a signature whose length is not twice the curve size is BadSignatureLength", () => {
  for (const length of [0, 64, 95, 97, 132]) {
    const bytes = envelope([P384_PROTECTED, new Map(), PAYLOAD, new Uint8Array(length)]);
    assert.equal(
      codeOf(() => decodeSign1(bytes)),
      CoseErrorCode.BadSignatureLength,
      `${length}`,
    );
  }
  const es256 = encode(header([[1, CoseAlg.ES256]]));
  const long = envelope([es256, new Map(), PAYLOAD, SIG96]);
  assert.equal(
    codeOf(() => decodeSign1(long)),
    CoseErrorCode.BadSignatureLength,
  );
});

test("a key on another curve than alg names is AlgKeyMismatch, not a plain bad signature", () => {
  const bytes = signSign1(KEYS.p256.privateKey, header([]), PAYLOAD);
  const result = verifySign1(decodeSign1(bytes), KEYS.p384.publicKey);
  assert.equal(result.kind, "invalid");
  assert.equal(result.kind === "invalid" && result.code, CoseErrorCode.AlgKeyMismatch);
  assert.equal(
    codeOf(() => decodeAndVerifySign1(bytes, KEYS.p384.publicKey)),
    CoseErrorCode.AlgKeyMismatch,
  );
  assert.equal(
    codeOf(() => signSign1(KEYS.p384.privateKey, header([[1, CoseAlg.ES256]]), PAYLOAD)),
    CoseErrorCode.AlgKeyMismatch,
  );
});

test("a flipped byte in the signature, payload or protected header is SignatureMismatch", () => {
  const protectedBytes = encode(
    header([
      [1, CoseAlg.ES384],
      ["t", 1700000000],
    ]),
  );
  const good = decodeSign1(
    handAssemble(KEYS.p384.privateKey, CoseAlg.ES384, protectedBytes, PAYLOAD),
  );
  assert.equal(verifySign1(good, KEYS.p384.publicKey).kind, "valid");
  const flip = (bytes: Uint8Array, at: number): Uint8Array => {
    const copy = Uint8Array.from(bytes);
    copy[at] = copy[at]! ^ 0x01;
    return copy;
  };
  const variants = [
    { ...good, signature: flip(good.signature, 10) },
    { ...good, signature: flip(good.signature, 95) },
    { ...good, payload: flip(good.payload, 0) },
    { ...good, protectedBytes: flip(protectedBytes, protectedBytes.length - 1) },
  ];
  for (const variant of variants) {
    const result = verifySign1(variant, KEYS.p384.publicKey);
    assert.equal(result.kind === "invalid" && result.code, CoseErrorCode.SignatureMismatch);
  }
  // The same through the byte-level API: flip the last byte of the encoded signature.
  const bytes = handAssemble(KEYS.p384.privateKey, CoseAlg.ES384, protectedBytes, PAYLOAD);
  assert.equal(
    codeOf(() => decodeAndVerifySign1(flip(bytes, bytes.length - 1), KEYS.p384.publicKey)),
    CoseErrorCode.SignatureMismatch,
  );
});

test("float header values decode as CborFloat, so 1.0 is distinguishable from 1", () => {
  // {1: -7, "f": 1.0 as float64, "i": 1}
  const protectedBytes = Uint8Array.from([
    0xa3, 0x01, 0x26, 0x61, 0x66, 0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x61, 0x69, 0x01,
  ]);
  const message = decodeSign1(
    handAssemble(KEYS.p256.privateKey, CoseAlg.ES256, protectedBytes, PAYLOAD),
  );
  assert.deepEqual(message.protectedHeader.get("f"), new CborFloat(1));
  assert.equal(message.protectedHeader.get("i"), 1);
});

test("keys other than EC P-256/P-384/P-521 private keys are UnsupportedKey", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const ed = generateKeyPairSync("ed25519");
  const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
  for (const key of [rsa.privateKey, ed.privateKey, k1.privateKey, KEYS.p256.publicKey]) {
    assert.equal(
      codeOf(() => signSign1(key, header([]), PAYLOAD)),
      CoseErrorCode.UnsupportedKey,
    );
  }
  const message = decodeSign1(signSign1(KEYS.p256.privateKey, header([]), PAYLOAD));
  assert.equal(
    codeOf(() => verifySign1(message, rsa.publicKey)),
    CoseErrorCode.UnsupportedKey,
  );
  assert.equal(coseAlgForKey(KEYS.p521.publicKey), CoseAlg.ES512);
});

test("arbitrary bytes either decode or fail with a CoseError, never another exception", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeSign1(bytes);
      } catch (err: unknown) {
        assert.ok(err instanceof CoseError, String(err));
      }
    }),
    { numRuns: 500 },
  );
});

test("no single-byte change to a signed message still verifies", () => {
  const bytes = signSign1(KEYS.p256.privateKey, header([["ccf.gov.msg.type", "ack"]]), PAYLOAD);
  fc.assert(
    fc.property(fc.nat({ max: bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
      const copy = Uint8Array.from(bytes);
      copy[at] = copy[at]! ^ mask;
      let verified = false;
      try {
        verified = verifySign1(decodeSign1(copy), KEYS.p256.publicKey).kind === "valid";
      } catch (err: unknown) {
        assert.ok(err instanceof CoseError, String(err));
      }
      assert.equal(verified, false, `byte ${at} ^ ${mask}`);
    }),
    { numRuns: 300 },
  );
});

test("a new unprotected header leaves the protected bytes, payload and signature verifying", () => {
  const root = new Uint8Array(32).fill(3);
  // A detached message assembled by hand: nil in the payload slot, the root signed.
  const attached = handAssemble(KEYS.p384.privateKey, CoseAlg.ES384, P384_PROTECTED, root);
  const parts = decodeSign1(attached);
  const signed = envelope([parts.protectedBytes, new Map(), null, parts.signature]);
  const message = decodeSign1(signed, { detachedPayload: root });
  const proof = encodeCborItem(new Map([[1, [true, new Uint8Array(32)]]]));
  const unprotected = new Map([[396, new Map([[-1, [proof]]])]]);
  const edited = encodeSign1WithUnprotected(message, unprotected, { detached: true });
  const again = decodeSign1(edited, { requireTag: true, detachedPayload: root });
  assert.deepEqual(again.protectedBytes, message.protectedBytes);
  assert.deepEqual(again.signature, message.signature);
  assert.equal(verifySign1(again, KEYS.p384.publicKey).kind, "valid");
  const vdp = again.unprotectedHeader.get(396) as Map<number, Uint8Array[]>;
  const inner = decodeCborItem(vdp.get(-1)![0]!) as Map<number, [boolean, Uint8Array]>;
  assert.deepEqual([...inner.keys()], [1]);
  assert.equal(inner.get(1)![0], true);
  assert.deepEqual(new Uint8Array(inner.get(1)![1]), new Uint8Array(32));
  // Detached stays detached (nil); an attached message keeps its payload.
  assert.equal(
    codeOf(() => decodeSign1(edited)),
    CoseErrorCode.PayloadNotBstr,
  );
  const withPayload = decodeSign1(signSign1(KEYS.p256.privateKey, header([]), PAYLOAD));
  const reencoded = encodeSign1WithUnprotected(withPayload, new Map([[7, "x"]]), {
    detached: false,
  });
  const decoded = decodeSign1(reencoded);
  assert.deepEqual(decoded.payload, PAYLOAD);
  assert.equal(decoded.unprotectedHeader.get(7), "x");
  assert.equal(verifySign1(decoded, KEYS.p256.publicKey).kind, "valid");
});

test("decodeCborItem is strict: one item, no duplicate keys, floats boxed", () => {
  assert.deepEqual(decodeCborItem(encode(new Map([[1, "a"]]))), new Map([[1, "a"]]));
  const duplicate = new Uint8Array([0xa2, 0x01, 0x01, 0x01, 0x02]); // {1: 1, 1: 2}
  assert.equal(
    codeOf(() => decodeCborItem(duplicate)),
    CoseErrorCode.InvalidHeaderLabel,
  );
  assert.equal(
    codeOf(() => decodeCborItem(new Uint8Array([0x01, 0x02]))),
    CoseErrorCode.NotCbor,
  );
  assert.equal(
    codeOf(() => decodeCborItem(new Uint8Array([0x9f, 0xff]))),
    CoseErrorCode.NotCbor,
  );
  assert.ok(decodeCborItem(new Uint8Array([0xf9, 0x3c, 0x00])) instanceof CborFloat);
});
