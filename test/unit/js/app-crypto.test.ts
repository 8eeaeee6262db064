// The host side of ccf.crypto for JS apps (src/js/app-crypto.ts; ccf-compatibility.md §9.1):
// digests, signatures, key generation and key wrapping. Oracles that share no code with it:
// the `openssl` command line (signatures made here verify there and the reverse; keys it
// generates are used here; what is wrapped here unwraps there), published test vectors (FIPS
// 180 digests of "abc", RFC 4231 HMAC case 2, RFC 5649 AES-KWP vectors), and an ASN.1 encoder
// for ECDSA signatures written in this file. Errors are checked by class and code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromHex, toHex, utf8 } from "../../../src/base/bytes.js";
import {
  AppCryptoError,
  AppCryptoErrorCode,
  aesKwpUnwrap,
  aesKwpWrap,
  digest,
  generateAesKey,
  generateEcdsaKeyPair,
  generateEddsaKeyPair,
  generateRsaKeyPair,
  sign,
  signingAlgorithm,
  unwrapKey,
  verifySignature,
  wrapAlgorithm,
  wrapKey,
} from "../../../src/js/app-crypto.js";
import { openssl, tempDir } from "../../helpers/pki.js";

const hex = (h: string): Uint8Array => fromHex(h.replace(/\s+/g, ""))!;

function assertCode(fn: () => unknown, code: AppCryptoErrorCode, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AppCryptoError, `expected AppCryptoError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

/** Runs openssl in a temporary directory holding `files`; returns the directory's reader. */
function withFiles<T>(
  files: Record<string, string | Uint8Array>,
  body: (path: (name: string) => string) => T,
): T {
  const { dir, cleanup } = tempDir("app-crypto-");
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return body((name) => join(dir, name));
  } finally {
    cleanup();
  }
}

function ok(args: string[]): string {
  const result = openssl(args);
  assert.equal(result.status, 0, `openssl ${args.join(" ")}: ${result.out}`);
  return result.out;
}

function opensslKey(args: string[]): string {
  return ok(["genpkey", ...args]);
}

// ECDSA signatures: DER <-> P1363, written here from X9.62's SEQUENCE { INTEGER r, INTEGER s }.
function derInteger(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  const body = trimmed[0]! & 0x80 ? Uint8Array.of(0, ...trimmed) : trimmed;
  return Uint8Array.of(0x02, body.length, ...body);
}

function p1363ToDer(sig: Uint8Array): Uint8Array {
  const half = sig.length / 2;
  const body = [...derInteger(sig.subarray(0, half)), ...derInteger(sig.subarray(half))];
  const length = body.length < 128 ? [body.length] : [0x81, body.length];
  return Uint8Array.of(0x30, ...length, ...body);
}

function derToP1363(der: Uint8Array, size: number): Uint8Array {
  let pos = der[1]! & 0x80 ? 3 : 2;
  const out = new Uint8Array(size * 2);
  for (const half of [0, 1]) {
    assert.equal(der[pos], 0x02);
    const len = der[pos + 1]!;
    const value = der.subarray(pos + 2, pos + 2 + len);
    const trimmed = value.length > size ? value.subarray(value.length - size) : value;
    out.set(trimmed, half * size + size - trimmed.length);
    pos += 2 + len;
  }
  return out;
}

const DATA = utf8("the quick brown fox signs a message");

test("digest matches FIPS 180 vectors for SHA-256, SHA-384 and SHA-512, and CCF's sample", () => {
  const abc = utf8("abc");
  assert.equal(
    toHex(digest("SHA-256", abc)),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(
    toHex(digest("SHA-384", abc)),
    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed" +
      "8086072ba1e7cc2358baeca134c825a7",
  );
  assert.equal(
    toHex(digest("SHA-512", abc)),
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
  );
  assert.equal(
    toHex(digest("SHA-256", utf8("Hello world!"))),
    "c0535e4be2b79ffd93291305436bf889314e4a3faec05ecffcbb7df31ad9e51a",
  );
  assertCode(() => digest("MD5", abc), AppCryptoErrorCode.UnsupportedAlgorithm, /"MD5"/);
  assertCode(() => digest("constructor", abc), AppCryptoErrorCode.UnsupportedAlgorithm);
});

for (const [curve, size] of [
  ["P-256", 32],
  ["P-384", 48],
] as const) {
  test(`ECDSA ${curve}: IEEE P1363 signatures made here verify with openssl and back`, () => {
    const priv = opensslKey(["-algorithm", "EC", "-pkeyopt", `ec_paramgen_curve:${curve}`]);
    withFiles({ "priv.pem": priv, data: DATA }, (path) => {
      const pubPem = ok(["pkey", "-in", path("priv.pem"), "-pubout"]);
      const algorithm = signingAlgorithm({ name: "ECDSA", hash: "SHA-256" });
      const sig = sign(algorithm, priv, DATA);
      assert.equal(sig.length, 2 * size, "P1363: r || s, each the curve's size");
      writeFileSync(path("sig.der"), p1363ToDer(sig));
      writeFileSync(path("pub.pem"), pubPem);
      ok([
        "dgst",
        "-sha256",
        "-verify",
        path("pub.pem"),
        "-signature",
        path("sig.der"),
        path("data"),
      ]);
      ok(["dgst", "-sha256", "-sign", path("priv.pem"), "-out", path("theirs.der"), path("data")]);
      const theirs = derToP1363(new Uint8Array(readFileSync(path("theirs.der"))), size);
      assert.equal(
        verifySignature({ algorithm, key: pubPem, signature: theirs, data: DATA }),
        true,
      );
      assert.equal(verifySignature({ algorithm, key: pubPem, signature: sig, data: DATA }), true);
      const other = utf8("another message");
      assert.equal(verifySignature({ algorithm, key: pubPem, signature: sig, data: other }), false);
      const short = sig.subarray(1);
      assert.equal(
        verifySignature({ algorithm, key: pubPem, signature: short, data: DATA }),
        false,
      );
      assertCode(
        () => verifySignature({ algorithm, key: priv, signature: sig, data: DATA }),
        AppCryptoErrorCode.InvalidKey,
        /must be a public key or certificate PEM, not PRIVATE KEY/,
      );
    });
  });
}

test("ECDSA verifies against a certificate PEM and signs with SHA-384 and SHA-512", () => {
  withFiles({}, (path) => {
    ok(
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
        "-keyout",
        path("k.pem"),
        "-out",
        path("c.pem"),
        "-subj",
        "/CN=signer",
      ]),
    );
    const priv = readFileSync(path("k.pem"), "utf8");
    const cert = readFileSync(path("c.pem"), "utf8");
    for (const hash of ["SHA-256", "SHA-384", "SHA-512"]) {
      const algorithm = signingAlgorithm({ name: "ECDSA", hash });
      const signature = sign(algorithm, priv, DATA);
      assert.equal(verifySignature({ algorithm, key: cert, signature, data: DATA }), true);
      writeFileSync(path("sig.der"), p1363ToDer(signature));
      writeFileSync(path("data"), DATA);
      const dgst = `-${hash.replace("-", "").toLowerCase()}`;
      ok(["dgst", dgst, "-prverify", path("k.pem"), "-signature", path("sig.der"), path("data")]);
    }
  });
});

test("EdDSA (Ed25519) signatures interoperate with openssl pkeyutl -rawin both ways", () => {
  const priv = opensslKey(["-algorithm", "ed25519"]);
  withFiles({ "priv.pem": priv, data: DATA }, (path) => {
    const pub = ok(["pkey", "-in", path("priv.pem"), "-pubout"]);
    writeFileSync(path("pub.pem"), pub);
    const algorithm = signingAlgorithm({ name: "EdDSA" });
    const sig = sign(algorithm, priv, DATA);
    assert.equal(sig.length, 64);
    writeFileSync(path("sig"), sig);
    ok(
      ["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", path("pub.pem")].concat([
        "-sigfile",
        path("sig"),
        "-in",
        path("data"),
      ]),
    );
    ok(
      ["pkeyutl", "-sign", "-rawin", "-inkey", path("priv.pem"), "-in", path("data")].concat([
        "-out",
        path("theirs"),
      ]),
    );
    const theirs = new Uint8Array(readFileSync(path("theirs")));
    assert.equal(verifySignature({ algorithm, key: pub, signature: theirs, data: DATA }), true);
    const flipped = Uint8Array.from(theirs, (b, i) => (i === 0 ? b ^ 1 : b));
    assert.equal(verifySignature({ algorithm, key: pub, signature: flipped, data: DATA }), false);
  });
});

test("RSA-PSS signatures (salt length as given, 0 when absent) interoperate with openssl", () => {
  const priv = opensslKey(["-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
  withFiles({ "priv.pem": priv, data: DATA }, (path) => {
    const pub = ok(["pkey", "-in", path("priv.pem"), "-pubout"]);
    writeFileSync(path("pub.pem"), pub);
    for (const saltLength of [32, undefined]) {
      const algorithm = signingAlgorithm({ name: "RSA-PSS", hash: "SHA-256", saltLength });
      const sig = sign(algorithm, priv, DATA);
      writeFileSync(path("sig"), sig);
      const pss = ["-sigopt", "rsa_padding_mode:pss", "-sigopt"];
      const salt = `rsa_pss_saltlen:${saltLength ?? 0}`;
      ok(
        ["dgst", "-sha256", ...pss, salt, "-verify", path("pub.pem")].concat([
          "-signature",
          path("sig"),
          path("data"),
        ]),
      );
      ok(
        ["dgst", "-sha256", ...pss, salt, "-sign", path("priv.pem")].concat([
          "-out",
          path("theirs"),
          path("data"),
        ]),
      );
      const theirs = new Uint8Array(readFileSync(path("theirs")));
      assert.equal(verifySignature({ algorithm, key: pub, signature: theirs, data: DATA }), true);
      const other = utf8("bar");
      assert.equal(verifySignature({ algorithm, key: pub, signature: theirs, data: other }), false);
    }
    const wrongSalt = signingAlgorithm({ name: "RSA-PSS", hash: "SHA-256", saltLength: -1 });
    assertCode(() => sign(wrongSalt, priv, DATA), AppCryptoErrorCode.InvalidParameter);
  });
});

test("HMAC matches RFC 4231 test case 2 for SHA-256, SHA-384 and SHA-512, and verifies", () => {
  const data = utf8("what do ya want for nothing?");
  const expected: Record<string, string> = {
    "SHA-256": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    "SHA-384":
      "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e" +
      "8e2240ca5e69e2c78b3239ecfab21649",
    "SHA-512":
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554" +
      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
  };
  for (const [hash, mac] of Object.entries(expected)) {
    const algorithm = signingAlgorithm({ name: "HMAC", hash });
    assert.equal(toHex(sign(algorithm, "Jefe", data)), mac);
    const signature = hex(mac);
    assert.equal(verifySignature({ algorithm, key: "Jefe", signature, data }), true);
    assert.equal(verifySignature({ algorithm, key: "jefe", signature, data }), false);
    const truncated = signature.subarray(0, 16);
    assert.equal(verifySignature({ algorithm, key: "Jefe", signature: truncated, data }), false);
  }
});

test("bad algorithms and keys are typed errors that say what is wrong", () => {
  const unsupported = AppCryptoErrorCode.UnsupportedAlgorithm;
  assertCode(() => signingAlgorithm({ name: "DSA", hash: "SHA-256" }), unsupported, /"DSA"/);
  assertCode(() => signingAlgorithm({ name: "ECDSA" }), unsupported, /needs a hash/);
  assertCode(() => signingAlgorithm({ name: "HMAC", hash: "SHA-1" }), unsupported, /"SHA-1"/);
  const ecdsa = signingAlgorithm({ name: "ECDSA", hash: "SHA-256" });
  const rsa = signingAlgorithm({ name: "RSA-PSS", hash: "SHA-256" });
  const ec = generateEcdsaKeyPair("secp256r1");
  const invalid = AppCryptoErrorCode.InvalidKey;
  assertCode(() => sign(rsa, ec.privateKey, DATA), invalid, /is a ec key; expected rsa/);
  assertCode(() => sign(ecdsa, "not a pem", DATA), invalid, /is not a PEM/);
  assertCode(() => sign(ecdsa, ec.publicKey, DATA), invalid, /must be a private key PEM/);
  const garbled = ec.privateKey.replace(/\n[A-Za-z0-9+/]{10}/, "\n!!!!!!!!!!");
  assertCode(() => sign(ecdsa, garbled, DATA), invalid, /not a valid private key/);
  const k1 = opensslKey(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"]);
  assertCode(() => sign(ecdsa, k1, DATA), invalid, /curve secp256k1; supported: P-256/);
});

test("generated keys: AES sizes, and RSA, ECDSA and EdDSA pairs that openssl accepts", () => {
  for (const bits of [128, 192, 256]) assert.equal(generateAesKey(bits).length, bits / 8);
  assert.notDeepEqual(generateAesKey(256), generateAesKey(256));
  assertCode(() => generateAesKey(100), AppCryptoErrorCode.InvalidParameter, /128, 192, 256/);
  const rsa = generateRsaKeyPair(2048, 3);
  const ec = generateEcdsaKeyPair("secp384r1");
  const ed = generateEddsaKeyPair("curve25519");
  const x = generateEddsaKeyPair("x25519");
  for (const [pair, marker] of [
    [rsa, /Private-Key: \(2048 bit, 2 primes\)[\s\S]*publicExponent: 3 /],
    [ec, /NIST CURVE: P-384/],
    [ed, /ED25519 Private-Key/],
    [x, /X25519 Private-Key/],
  ] as const) {
    assert.match(pair.privateKey, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.match(pair.publicKey, /^-----BEGIN PUBLIC KEY-----\n/);
    withFiles({ "priv.pem": pair.privateKey }, (path) => {
      assert.match(ok(["pkey", "-in", path("priv.pem"), "-noout", "-text"]), marker);
      assert.equal(ok(["pkey", "-in", path("priv.pem"), "-pubout"]), pair.publicKey);
    });
  }
  const rangeError = AppCryptoErrorCode.InvalidParameter;
  assertCode(() => generateRsaKeyPair(1024), rangeError, /from 2048 to 4096/);
  assertCode(() => generateRsaKeyPair(2048, 4), rangeError, /exponent 4/);
  const unsupported = AppCryptoErrorCode.UnsupportedAlgorithm;
  assertCode(() => generateEcdsaKeyPair("secp256k1"), unsupported, /secp256r1, secp384r1/);
  assertCode(() => generateEddsaKeyPair("ed448"), unsupported, /curve25519, x25519/);
});

test("AES-KWP matches RFC 5649's test vectors, and a damaged or wrongly keyed input fails", () => {
  const kek = hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8");
  const vectors = [
    [
      "c37b7e6492584340bed12207808941155068f738",
      "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    ],
    ["466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"],
  ];
  const algo = wrapAlgorithm({ name: "AES-KWP" });
  for (const [key, wrapped] of vectors) {
    assert.equal(toHex(aesKwpWrap(kek, hex(key!))), wrapped);
    assert.equal(toHex(wrapKey(hex(key!), kek, algo)), wrapped);
    assert.equal(toHex(unwrapKey(hex(wrapped!), kek, algo)), key);
  }
  const damaged = hex(vectors[0]![1]!);
  damaged[5] = damaged[5]! ^ 1;
  assertCode(() => aesKwpUnwrap(kek, damaged), AppCryptoErrorCode.OperationFailed, /unwrap failed/);
  const otherKek = generateAesKey(192);
  assertCode(
    () => aesKwpUnwrap(otherKek, hex(vectors[1]![1]!)),
    AppCryptoErrorCode.OperationFailed,
  );
  assertCode(
    () => aesKwpUnwrap(kek, new Uint8Array(3)),
    AppCryptoErrorCode.OperationFailed,
    /not 3/,
  );
  assertCode(() => aesKwpWrap(new Uint8Array(20), DATA), AppCryptoErrorCode.InvalidKey, /not 20/);
});

test("RSA-OAEP (SHA-256, label) wraps for openssl pkeyutl and unwraps what it wraps", () => {
  const pair = generateRsaKeyPair(2048);
  const secret = generateAesKey(256);
  const label = utf8("label42");
  const algo = wrapAlgorithm({ name: "RSA-OAEP", label });
  withFiles({ "priv.pem": pair.privateKey, "pub.pem": pair.publicKey, secret: secret }, (path) => {
    const oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256"].concat([
      "-pkeyopt",
      "rsa_mgf1_md:sha256",
      "-pkeyopt",
      `rsa_oaep_label:${toHex(label)}`,
    ]);
    writeFileSync(path("wrapped"), wrapKey(secret, utf8(pair.publicKey), algo));
    ok(
      ["pkeyutl", "-decrypt", "-inkey", path("priv.pem"), ...oaep].concat([
        "-in",
        path("wrapped"),
        "-out",
        path("plain"),
      ]),
    );
    assert.deepEqual(new Uint8Array(readFileSync(path("plain"))), secret);
    ok(
      ["pkeyutl", "-encrypt", "-pubin", "-inkey", path("pub.pem"), ...oaep].concat([
        "-in",
        path("secret"),
        "-out",
        path("theirs"),
      ]),
    );
    const theirs = new Uint8Array(readFileSync(path("theirs")));
    assert.deepEqual(unwrapKey(theirs, utf8(pair.privateKey), algo), secret);
    const noLabel = wrapAlgorithm({ name: "RSA-OAEP" });
    const failed = AppCryptoErrorCode.OperationFailed;
    assertCode(() => unwrapKey(theirs, utf8(pair.privateKey), noLabel), failed, /RSA-OAEP/);
  });
  assertCode(
    () => wrapKey(secret, utf8(pair.privateKey), algo),
    AppCryptoErrorCode.InvalidKey,
    /wrapping key must be a public key PEM/,
  );
});

test("RSA-OAEP-AES-KWP is RSA-OAEP(AES key) || AES-KWP(key), as openssl takes it apart", () => {
  const pair = generateRsaKeyPair(2048);
  const secret = utf8("a key of any length, here 37 bytes..");
  const algo = wrapAlgorithm({ name: "RSA-OAEP-AES-KWP", aesKeySize: 256, label: utf8("l44") });
  const wrapped = wrapKey(secret, utf8(pair.publicKey), algo);
  assert.deepEqual(unwrapKey(wrapped, utf8(pair.privateKey), algo), secret);
  withFiles({ "priv.pem": pair.privateKey, head: wrapped.subarray(0, 256) }, (path) => {
    ok(
      ["pkeyutl", "-decrypt", "-inkey", path("priv.pem"), "-pkeyopt", "rsa_padding_mode:oaep"]
        .concat(["-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"])
        .concat(["-pkeyopt", `rsa_oaep_label:${toHex(utf8("l44"))}`, "-in", path("head")])
        .concat(["-out", path("aes")]),
    );
    const aesKey = new Uint8Array(readFileSync(path("aes")));
    assert.equal(aesKey.length, 32);
    writeFileSync(path("tail"), wrapped.subarray(256));
    ok(
      ["enc", "-d", "-id-aes256-wrap-pad", "-K", toHex(aesKey), "-iv", "A65959A6"].concat([
        "-in",
        path("tail"),
        "-out",
        path("key"),
      ]),
    );
    assert.deepEqual(new Uint8Array(readFileSync(path("key"))), secret);
  });
  const failed = AppCryptoErrorCode.OperationFailed;
  const short = wrapped.subarray(0, 256);
  assertCode(() => unwrapKey(short, utf8(pair.privateKey), algo), failed, /too short/);
  assertCode(
    () => wrapAlgorithm({ name: "RSA-OAEP-AES-KWP", aesKeySize: 64 }),
    AppCryptoErrorCode.InvalidParameter,
    /aesKeySize of 128, 192 or 256/,
  );
  assertCode(() => wrapAlgorithm({ name: "AES-GCM" }), AppCryptoErrorCode.UnsupportedAlgorithm);
});
