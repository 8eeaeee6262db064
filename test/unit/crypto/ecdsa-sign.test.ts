// Native prehashed ECDSA signing (src/crypto/ecdsa.ts signDigest, src/crypto/rfc6979.ts): the
// nonce point comes from node:crypto's ECDH and the nonce from RFC 6979 on node's HMAC. The
// signatures must stay byte-identical to @noble/curves' deterministic low-S ones (which the
// ledger had before), match RFC 6979's published examples, and verify in node:crypto.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createECDH,
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  verify,
  type KeyObject,
} from "node:crypto";
import fc from "fast-check";
import { p256, p384 } from "@noble/curves/nist.js";
import { signDigest, verifyDigest } from "../../../src/crypto/ecdsa.js";
import {
  bits2int,
  invertMod,
  rfc6979Nonces,
  type Rfc6979Params,
} from "../../../src/crypto/rfc6979.js";

const NOBLE = { prime256v1: p256, secp384r1: p384 } as const;
type NodeCurve = keyof typeof NOBLE;

function scalarOf(key: KeyObject): Uint8Array {
  return new Uint8Array(Buffer.from(key.export({ format: "jwk" }).d!, "base64url"));
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function sha(name: string, text: string): Uint8Array {
  return new Uint8Array(createHash(name).update(text).digest());
}

for (const curve of ["prime256v1", "secp384r1"] as NodeCurve[]) {
  test(`${curve}: signatures are byte-identical to @noble/curves (RFC 6979, low-S), DER and compact`, () => {
    const noble = NOBLE[curve];
    const keys = Array.from(
      { length: 12 },
      () => generateKeyPairSync("ec", { namedCurve: curve }).privateKey,
    );
    const scalars = keys.map(scalarOf);
    fc.assert(
      fc.property(
        fc.nat({ max: keys.length - 1 }),
        fc.uint8Array({ minLength: 0, maxLength: 80 }),
        fc.constantFrom("der" as const, "compact" as const),
        (index, digest, format) => {
          const ours = signDigest(keys[index]!, digest, format);
          const theirs = noble.sign(digest, scalars[index]!, {
            prehash: false,
            lowS: true,
            format,
          });
          assert.equal(hex(ours), hex(theirs));
        },
      ),
      { numRuns: curve === "secp384r1" ? 150 : 400 },
    );
  });

  test(`${curve}: node:crypto verifies the DER signatures over the digest it hashes itself`, () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
    const hashes = curve === "secp384r1" ? ["sha256", "sha384", "sha512"] : ["sha256", "sha384"];
    for (const hashName of hashes) {
      for (let i = 0; i < 20; i++) {
        const message = new TextEncoder().encode(`message ${hashName} ${i}`);
        const der = signDigest(privateKey, sha(hashName, `message ${hashName} ${i}`));
        assert.equal(verify(hashName, message, publicKey, der), true, `${hashName} ${i}`);
        assert.equal(verifyDigest(publicKey, sha(hashName, `message ${hashName} ${i}`), der), true);
        const other = new TextEncoder().encode(`other ${i}`);
        assert.equal(verify(hashName, other, publicKey, der), false, "the oracle can say no");
        // Low-S: s <= n / 2.
        const s = NOBLE[curve].Signature.fromBytes(der, "der").s;
        assert.ok(s <= NOBLE[curve].Point.Fn.ORDER >> 1n);
      }
    }
  });
}

/** A private KeyObject from a raw scalar (hex), its public point computed by node's ECDH. */
function keyFromScalar(curve: NodeCurve, scalarHex: string): KeyObject {
  const ecdh = createECDH(curve);
  ecdh.setPrivateKey(Buffer.from(scalarHex, "hex"));
  const point = ecdh.getPublicKey();
  const size = (point.byteLength - 1) / 2;
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64url");
  return createPrivateKey({
    format: "jwk",
    key: {
      kty: "EC",
      crv: curve === "prime256v1" ? "P-256" : "P-384",
      d: b64(Buffer.from(scalarHex, "hex")),
      x: b64(point.subarray(1, 1 + size)),
      y: b64(point.subarray(1 + size)),
    },
  });
}

// RFC 6979 appendix A.2.5 (P-256) and A.2.6 (P-384), message "sample" with the curve's hash.
// signDigest normalises to low S, so the expected s is the RFC's s or n - s.
const RFC_VECTORS = [
  {
    curve: "prime256v1" as const,
    hash: "sha256",
    x: "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721",
    r: "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716",
    s: "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
  },
  {
    curve: "secp384r1" as const,
    hash: "sha384",
    x:
      "6b9d3dad2e1b8c1c05b19875b6659f4de23c3b667bf297ba9aa47740787137d8" +
      "96d5724e4c70a825f872c9ea60d2edf5",
    r:
      "94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c" +
      "81a648152e44acf96e36dd1e80fabe46",
    s:
      "99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94f" +
      "a329c145786e679e7b82c71a38628ac8",
  },
];

for (const vector of RFC_VECTORS) {
  test(`RFC 6979 example: ${vector.curve} with ${vector.hash} over "sample"`, () => {
    const key = keyFromScalar(vector.curve, vector.x);
    const size = vector.r.length / 2;
    const compact = signDigest(key, sha(vector.hash, "sample"), "compact");
    const n = NOBLE[vector.curve].Point.Fn.ORDER;
    const s = BigInt("0x" + vector.s);
    const lowS = s > n >> 1n ? n - s : s;
    assert.equal(hex(compact.subarray(0, size)), vector.r);
    assert.equal(hex(compact.subarray(size)), lowS.toString(16).padStart(size * 2, "0"));
  });
}

test("RFC 6979 A.1.2: a candidate k >= q is rejected and the DRBG moves on (step h.3)", () => {
  // The 163-bit example of RFC 6979 A.1: its first two candidates are not below q, the third is k.
  const params: Rfc6979Params = {
    order: 0x4000000000000000000020108a2e0cc0d99f8a5efn,
    bits: 163,
    bytes: 21,
    hash: "sha256",
    hashBytes: 32,
  };
  const x = Buffer.from("009a4d6792295a7f730fc3f2b49cbc0f62e862272f", "hex");
  const h1 = bits2int(params, sha("sha256", "sample")) % params.order;
  const nonces = rfc6979Nonces(params, new Uint8Array(x), h1);
  const candidates: string[] = [];
  for (let k = nonces.next().value; ; k = nonces.next().value) {
    candidates.push(k.toString(16));
    if (k < params.order || candidates.length > 10) break;
  }
  assert.deepEqual(candidates, [
    "4982d236f3ffc758838ca6f5e9fea455106af3b2b",
    "63863c30451dadf4944df4877b740d4f160a8b6ab",
    "23af4074c90a02b3fe61d286d5c87f425e6bdd81b",
  ]);
});

test("invertMod agrees with @noble/curves and rejects out-of-range input", () => {
  // Small primes: every value, so the double-precision path is checked exhaustively there.
  for (const m of [2n, 3n, 7n, 251n, 65_537n]) {
    for (let a = 1n; a < m && a < 2_000n; a++) assert.equal((a * invertMod(a, m)) % m, 1n);
  }
  assert.throws(() => invertMod(6n, 9n), /not invertible/);
  for (const noble of [p256, p384]) {
    const n = noble.Point.Fn.ORDER;
    // Around 2^50, where the Lehmer steps hand over to the exact small Euclid.
    const edges = [1n, 2n, 3n, n - 1n, n - 2n, n >> 1n, 1n << 49n, (1n << 50n) - 1n, 1n << 50n];
    for (const a of [...edges, (1n << 50n) + 1n, 1n << 51n, (1n << 200n) + 7n]) {
      assert.equal(invertMod(a, n), noble.Point.Fn.inv(a));
    }
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: n - 1n }), (a) => {
        const inverse = invertMod(a, n);
        assert.equal((a * inverse) % n, 1n);
        assert.ok(inverse > 0n && inverse < n);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: (1n << 60n) - 1n }), (a) => {
        assert.equal(invertMod(a, n), noble.Point.Fn.inv(a));
      }),
      { numRuns: 200 },
    );
    assert.throws(() => invertMod(0n, n));
    assert.throws(() => invertMod(n, n));
  }
});
