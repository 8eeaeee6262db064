// Prehashed ECDSA (src/crypto/ecdsa.ts): CCF signs the 32-byte Merkle root as a digest, without
// hashing it again. openssl pkeyutl (which signs/verifies a raw digest) is the independent
// oracle in both directions, on P-256 and P-384; tampering, malformed DER, wrong keys and the
// precomputed fast path (after many verifications with one key) are checked too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { p256, p384 } from "@noble/curves/nist.js";
import { EcdsaError, ecdsaCurveOf, signDigest, verifyDigest } from "../../../src/crypto/ecdsa.js";
import { generateEcKeyPair, type EcCurveName } from "../../../src/crypto/identity.js";
import { openssl, tempDir } from "../../helpers/pki.js";

const CURVES: readonly EcCurveName[] = ["secp256r1", "secp384r1"];

function digestOf(text: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(text).digest());
}

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[index] = copy[index]! ^ 0x01;
  return copy;
}

function writePublicPem(path: string, key: KeyObject): void {
  writeFileSync(path, key.export({ type: "spki", format: "pem" }));
}

for (const curve of CURVES) {
  test(`a ${curve} digest signature verifies with verifyDigest and openssl pkeyutl`, () => {
    const keys = generateEcKeyPair(curve);
    const digest = digestOf(`root for ${curve}`);
    const signature = signDigest(keys.privateKey, digest);
    assert.equal(signature[0], 0x30, "DER SEQUENCE");
    assert.equal(verifyDigest(keys.publicKey, digest, signature), true);

    const { dir, cleanup } = tempDir("ecdsa-");
    try {
      writePublicPem(join(dir, "pub.pem"), keys.publicKey);
      writeFileSync(join(dir, "digest.bin"), digest);
      writeFileSync(join(dir, "sig.der"), signature);
      const args = [
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        join(dir, "pub.pem"),
        "-in",
        join(dir, "digest.bin"),
        "-sigfile",
        join(dir, "sig.der"),
      ];
      const ok = openssl(args);
      assert.equal(ok.status, 0, ok.out);
      assert.match(ok.out, /Signature Verified Successfully/);
      // The oracle must be able to say no: a different digest fails in openssl as well.
      writeFileSync(join(dir, "digest.bin"), flipBit(digest, 0));
      assert.notEqual(openssl(args).status, 0);
    } finally {
      cleanup();
    }
  });

  test(`an openssl ${curve} signature over a raw digest verifies with verifyDigest`, () => {
    const keys = generateEcKeyPair(curve);
    const { dir, cleanup } = tempDir("ecdsa-");
    try {
      writeFileSync(
        join(dir, "priv.pem"),
        keys.privateKey.export({ type: "pkcs8", format: "pem" }),
      );
      for (let i = 0; i < 3; i++) {
        const digest = digestOf(`openssl ${curve} ${i}`);
        writeFileSync(join(dir, "digest.bin"), digest);
        const r = openssl([
          "pkeyutl",
          "-sign",
          "-inkey",
          join(dir, "priv.pem"),
          "-in",
          join(dir, "digest.bin"),
          "-out",
          join(dir, "sig.der"),
        ]);
        assert.equal(r.status, 0, r.out);
        const signature = new Uint8Array(readFileSync(join(dir, "sig.der")));
        assert.equal(verifyDigest(keys.publicKey, digest, signature), true);
        assert.equal(verifyDigest(keys.publicKey, flipBit(digest, 31), signature), false);
      }
    } finally {
      cleanup();
    }
  });

  test(`a ${curve} signature fails after any flipped digest bit or signature byte`, () => {
    const keys = generateEcKeyPair(curve);
    const digest = digestOf("tamper");
    const signature = signDigest(keys.privateKey, digest);
    for (const i of [0, 15, 31]) {
      assert.equal(
        verifyDigest(keys.publicKey, flipBit(digest, i), signature),
        false,
        `digest ${i}`,
      );
    }
    // Every byte: header and length bytes make the DER malformed, value bytes make it wrong.
    for (let i = 0; i < signature.byteLength; i++) {
      assert.equal(verifyDigest(keys.publicKey, digest, flipBit(signature, i)), false, `sig ${i}`);
    }
  });

  test(`a ${curve} signature by another key does not verify`, () => {
    const signer = generateEcKeyPair(curve);
    const other = generateEcKeyPair(curve);
    const digest = digestOf("other key");
    assert.equal(
      verifyDigest(other.publicKey, digest, signDigest(signer.privateKey, digest)),
      false,
    );
  });
}

test("the digest is not hashed again: node's sign('sha256', m) verifies over SHA-256(m)", () => {
  // node:crypto always hashes its input; its signature over m is a prehashed signature over
  // SHA-256(m). verifyDigest must accept it for that digest only, and node must reject ours
  // when asked to hash our digest once more.
  const keys = generateEcKeyPair("secp384r1");
  const message = new TextEncoder().encode("hash me once");
  const nodeSignature = new Uint8Array(sign("sha256", message, keys.privateKey));
  assert.equal(verifyDigest(keys.publicKey, digestOf("hash me once"), nodeSignature), true);
  assert.equal(verifyDigest(keys.publicKey, message, nodeSignature), false);
  const digest = digestOf("no double hash");
  const ours = signDigest(keys.privateKey, digest);
  assert.equal(verify("sha256", digest, keys.publicKey, ours), false);
  assert.equal(
    verify(
      "sha256",
      message,
      keys.publicKey,
      signDigest(keys.privateKey, digestOf("hash me once")),
    ),
    true,
  );
});

test("high-S signatures (as OpenSSL may produce them) are accepted, like openssl does", () => {
  for (const [curveName, curve] of [
    ["secp256r1", p256],
    ["secp384r1", p384],
  ] as const) {
    const keys = generateEcKeyPair(curveName);
    const digest = digestOf("high s");
    const low = curve.Signature.fromBytes(signDigest(keys.privateKey, digest), "der");
    const high = new curve.Signature(low.r, curve.Point.Fn.ORDER - low.s).toBytes("der");
    assert.equal(verifyDigest(keys.publicKey, digest, high), true, curveName);
  }
});

test("malformed signatures return false instead of throwing", () => {
  const keys = generateEcKeyPair("secp256r1");
  const digest = digestOf("malformed");
  const good = signDigest(keys.privateKey, digest);
  const n = p256.Point.Fn.ORDER;
  const cases: Record<string, Uint8Array> = {
    empty: new Uint8Array(0),
    garbage: new Uint8Array([1, 2, 3, 4, 5]),
    truncated: good.subarray(0, good.byteLength - 1),
    "trailing byte": new Uint8Array([...good, 0]),
    "raw r||s instead of DER": p256.Signature.fromBytes(good, "der").toBytes("compact"),
    "r = 0": derOf(0n, 1n),
    "s = 0": derOf(1n, 0n),
    "s = n": derOf(1n, n),
  };
  for (const [name, signature] of Object.entries(cases)) {
    assert.equal(verifyDigest(keys.publicKey, digest, signature), false, name);
  }
});

/** A DER Ecdsa-Sig-Value with arbitrary (possibly out-of-range) integers. */
function derOf(r: bigint, s: bigint): Uint8Array {
  const int = (v: bigint): number[] => {
    let hex = v.toString(16);
    if (hex.length % 2 === 1) hex = "0" + hex;
    const bytes = [...Buffer.from(hex, "hex")];
    if (bytes[0]! >= 0x80) bytes.unshift(0);
    return [0x02, bytes.length, ...bytes];
  };
  const body = [...int(r), ...int(s)];
  return new Uint8Array([0x30, body.length, ...body]);
}

test("a key keeps verifying correctly after it switches to the precomputed fast path", () => {
  const keys = generateEcKeyPair("secp384r1");
  const digests = Array.from({ length: 40 }, (_, i) => digestOf(`many ${i}`));
  const signatures = digests.map((d) => signDigest(keys.privateKey, d));
  for (let i = 0; i < digests.length; i++) {
    assert.equal(verifyDigest(keys.publicKey, digests[i]!, signatures[i]!), true, `good ${i}`);
    const j = (i + 1) % digests.length;
    assert.equal(verifyDigest(keys.publicKey, digests[i]!, signatures[j]!), false, `swapped ${i}`);
  }
});

test("sign and verify agree on random digests and reject any other digest (property)", () => {
  const keys = generateEcKeyPair("secp256r1");
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.integer({ min: 0, max: 255 }),
      (digest, bit) => {
        const signature = signDigest(keys.privateKey, digest);
        if (!verifyDigest(keys.publicKey, digest, signature)) return false;
        const other = new Uint8Array(digest);
        other[bit >> 3] = other[bit >> 3]! ^ (1 << (bit & 7));
        return !verifyDigest(keys.publicKey, other, signature);
      },
    ),
    { numRuns: 25 },
  );
});

test("a private key can verify its own signatures (it stands for its public half)", () => {
  const keys = generateEcKeyPair("secp256r1");
  const digest = digestOf("private verifies");
  assert.equal(verifyDigest(keys.privateKey, digest, signDigest(keys.privateKey, digest)), true);
});

test("keys other than EC P-256/P-384 are rejected with EcdsaError", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const ed = generateKeyPairSync("ed25519");
  const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
  const digest = digestOf("unsupported");
  for (const pair of [rsa, ed, k1]) {
    assert.equal(ecdsaCurveOf(pair.publicKey), null);
    assert.throws(() => signDigest(pair.privateKey, digest), EcdsaError);
    assert.throws(() => verifyDigest(pair.publicKey, digest, new Uint8Array(8)), EcdsaError);
  }
  const p256Keys = generateEcKeyPair("secp256r1");
  assert.throws(() => signDigest(p256Keys.publicKey, digest), EcdsaError, "public key cannot sign");
});
