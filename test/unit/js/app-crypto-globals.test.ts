// `ccf.crypto` inside QuickJS (src/js/app-crypto-globals.ts; ccf-compatibility.md §9.1): every
// function of CCF 6's CCFCrypto is called from guest code in the real sandbox, over the `ccf`
// of ccf-globals.ts. Oracles: published vectors (FIPS 180 "abc", RFC 5649), openssl (a
// signature made in the guest verifies there; keys it made are used in the guest), node:crypto
// (a generated private key yields the returned public key), and the host functions of
// app-crypto.ts, themselves tested against openssl, for what crossed the boundary. Errors must
// arrive as the classes CCF throws (TypeError, RangeError, InternalError) with clear messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromHex, utf8 } from "../../../src/base/bytes.js";
import { Store } from "../../../src/kv/store.js";
import { installCcfGlobals } from "../../../src/js/ccf-globals.js";
import { installAppCrypto, type AppCryptoOptions } from "../../../src/js/app-crypto-globals.js";
import { signingAlgorithm, verifySignature } from "../../../src/js/app-crypto.js";
import { JsSandbox, JsSandboxError, type JsonValue } from "../../../src/js/sandbox.js";
import { openssl, tempDir } from "../../helpers/pki.js";

const APP = String.raw`
const c = ccf.crypto, s = ccf.strToBuf;
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16))).buffer;
function failure(f) {
  try { f(); return "no error"; } catch (e) { return [e.constructor.name, e.message]; }
}
export function names() {
  return Object.keys(c).sort().map((n) => [n, typeof c[n]])
    .concat([["frozen", Object.isFrozen(c) && Object.isFrozen(ccf)],
             ["strToBuf", ccf.bufToStr(s("kept"))], ["kv", typeof ccf.kv]]);
}
export function digests() {
  return ["SHA-256", "SHA-384", "SHA-512"].map((a) => hex(c.digest(a, s("abc"))));
}
export function roundTrips() {
  const data = s("signed in the guest");
  const out = {};
  const pairs = {
    "ECDSA P-256": [{ name: "ECDSA", hash: "SHA-256" }, c.generateEcdsaKeyPair("secp256r1")],
    "ECDSA P-384": [{ name: "ECDSA", hash: "SHA-384" }, c.generateEcdsaKeyPair("secp384r1")],
    "EdDSA": [{ name: "EdDSA" }, c.generateEddsaKeyPair("curve25519")],
    "RSA-PSS": [{ name: "RSA-PSS", hash: "SHA-256", saltLength: 32 }, c.generateRsaKeyPair(2048)],
  };
  for (const [label, [algorithm, pair]] of Object.entries(pairs)) {
    const sig = c.sign(algorithm, pair.privateKey, data);
    out[label] = {
      signature: hex(sig), publicKey: pair.publicKey, algorithm,
      valid: c.verifySignature(algorithm, pair.publicKey, sig, data),
      other: c.verifySignature(algorithm, pair.publicKey, sig, s("other")),
    };
  }
  const hmac = { name: "HMAC", hash: "SHA-256" };
  const mac = c.sign(hmac, "Jefe", s("what do ya want for nothing?"));
  out.HMAC = [hex(mac), c.verifySignature(hmac, "Jefe", mac, s("what do ya want for nothing?"))];
  return out;
}
export function signWith(algorithm, pem, text) { return hex(c.sign(algorithm, pem, s(text))); }
export function generated() {
  return {
    aes: [128, 192, 256].map((n) => c.generateAesKey(n).byteLength),
    rsa: c.generateRsaKeyPair(2048, 65537), ec: c.generateEcdsaKeyPair("secp384r1"),
    ed: c.generateEddsaKeyPair("curve25519"), x: c.generateEddsaKeyPair("x25519"),
  };
}
export function wraps(kek, key) {
  const kwp = hex(c.wrapKey(unhex(key), unhex(kek), { name: "AES-KWP" }));
  const back = hex(c.unwrapKey(unhex(kwp), unhex(kek), { name: "AES-KWP" }));
  const rsa = c.generateRsaKeyPair(2048);
  const secret = c.generateAesKey(256);
  const results = [kwp, back];
  for (const algo of [{ name: "RSA-OAEP", label: s("label42") },
                      { name: "RSA-OAEP-AES-KWP", aesKeySize: 256, label: s("l") },
                      { name: "RSA-OAEP-AES-KWP", aesKeySize: 128 }]) {
    const wrapped = c.wrapKey(secret, s(rsa.publicKey), algo);
    results.push(hex(c.unwrapKey(wrapped, s(rsa.privateKey), algo)) === hex(secret));
  }
  return results;
}
export function jwks(ecPem, ecPub, rsaPem, rsaPub, edPem, edPub) {
  return {
    ec: [c.jwkToPem(c.pemToJwk(ecPem, "k1")), c.pubJwkToPem(c.pubPemToJwk(ecPub))],
    rsa: [c.rsaJwkToPem(c.rsaPemToJwk(rsaPem)), c.pubRsaJwkToPem(c.pubRsaPemToJwk(rsaPub))],
    ed: [c.eddsaJwkToPem(c.eddsaPemToJwk(edPem)), c.pubEddsaJwkToPem(c.pubEddsaPemToJwk(edPub))],
    jwk: c.pubPemToJwk(ecPub, "k2"), noKid: c.pubEddsaPemToJwk(edPub),
  };
}
export function certs(ca, other) {
  return [c.isValidX509CertBundle(ca), c.isValidX509CertBundle(ca + other),
          c.isValidX509CertBundle("garbage"), c.isValidX509CertChain(ca, ca),
          c.isValidX509CertChain(ca, other), c.isValidX509CertChain("garbage", ca)];
}
export function errors(ecPem) {
  const d = s("data");
  return [
    failure(() => c.digest("MD5", d)),
    failure(() => c.digest("SHA-256", "not a buffer")),
    failure(() => c.sign({ name: "DSA", hash: "SHA-256" }, ecPem, d)),
    failure(() => c.sign({ name: "ECDSA" }, ecPem, d)),
    failure(() => c.sign("ECDSA", ecPem, d)),
    failure(() => c.sign({ name: "RSA-PSS", hash: "SHA-256" }, ecPem, d)),
    failure(() => c.sign({ name: "ECDSA", hash: "SHA-256" }, "not a pem", d)),
    failure(() => c.verifySignature({ name: "ECDSA", hash: "SHA-256" }, ecPem, d, d)),
    failure(() => c.generateAesKey(100)),
    failure(() => c.generateRsaKeyPair(1024)),
    failure(() => c.generateEcdsaKeyPair("secp256k1")),
    failure(() => c.generateEddsaKeyPair("ed448")),
    failure(() => c.wrapKey(d, new ArrayBuffer(16), { name: "AES-GCM" })),
    failure(() => c.unwrapKey(new ArrayBuffer(24), new ArrayBuffer(16), { name: "AES-KWP" })),
    failure(() => c.wrapKey(d, d, { name: "RSA-OAEP", label: "text" })),
    failure(() => c.pubPemToJwk("invalid_pem")),
    failure(() => c.pubJwkToPem({ kty: "RSA", n: "AQAB", e: "AQAB" })),
    failure(() => c.pubJwkToPem(null)),
  ];
}
`;

async function box(): Promise<JsSandbox> {
  return JsSandbox.create({ "app.js": APP }, { limits: { deadlineMs: 20_000 } });
}

function call(
  sandbox: JsSandbox,
  exportName: string,
  args: JsonValue[] = [],
  options: AppCryptoOptions = {},
): JsonValue | undefined {
  const tx = new Store().begin();
  const outcome = sandbox.call({
    module: "app.js",
    exportName,
    args,
    setup: (ctx) => {
      installCcfGlobals(ctx, { tx, access: { mode: "read-only" } });
      installAppCrypto(ctx, options);
    },
  });
  assert.equal(outcome.kind, "ok", JSON.stringify(outcome));
  return (outcome as { value: JsonValue | undefined }).value;
}

function ok(args: string[], input?: string): string {
  const result = openssl(args, input === undefined ? undefined : utf8(input));
  assert.equal(result.status, 0, `openssl ${args.join(" ")}: ${result.out}`);
  return result.out;
}

const CCF_CRYPTO_NAMES = [
  "digest",
  "eddsaJwkToPem",
  "eddsaPemToJwk",
  "generateAesKey",
  "generateEcdsaKeyPair",
  "generateEddsaKeyPair",
  "generateRsaKeyPair",
  "isValidX509CertBundle",
  "isValidX509CertChain",
  "jwkToPem",
  "pemToJwk",
  "pubEddsaJwkToPem",
  "pubEddsaPemToJwk",
  "pubJwkToPem",
  "pubPemToJwk",
  "pubRsaJwkToPem",
  "pubRsaPemToJwk",
  "rsaJwkToPem",
  "rsaPemToJwk",
  "sign",
  "unwrapKey",
  "verifySignature",
  "wrapKey",
];

test("ccf.crypto has every function of CCF 6's CCFCrypto, frozen, and the rest of ccf stays", async () => {
  const value = call(await box(), "names") as [string, unknown][];
  const functions = value.filter(([, type]) => type === "function").map(([name]) => name);
  assert.deepEqual(functions, CCF_CRYPTO_NAMES);
  assert.deepEqual(value.slice(-3), [
    ["frozen", true],
    ["strToBuf", "kept"],
    ["kv", "object"],
  ]);
});

test('digest in the guest gives FIPS 180\'s SHA-256, SHA-384 and SHA-512 of "abc"', async () => {
  assert.deepEqual(call(await box(), "digests"), [
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
  ]);
});

test("keys generated in the guest sign and verify there, and the host verifies the signatures", async () => {
  const value = call(await box(), "roundTrips") as Record<string, JsonValue>;
  const data = utf8("signed in the guest");
  for (const label of ["ECDSA P-256", "ECDSA P-384", "EdDSA", "RSA-PSS"]) {
    const r = value[label] as {
      signature: string;
      publicKey: string;
      algorithm: { name: string; hash?: string; saltLength?: number };
      valid: boolean;
      other: boolean;
    };
    assert.equal(r.valid, true, label);
    assert.equal(r.other, false, label);
    const signature = fromHex(r.signature)!;
    const algorithm = signingAlgorithm(r.algorithm);
    assert.equal(verifySignature({ algorithm, key: r.publicKey, signature, data }), true, label);
  }
  assert.equal((value["ECDSA P-256"] as { signature: string }).signature.length, 128, "P1363");
  assert.deepEqual(value["HMAC"], [
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    true,
  ]);
});

test("a guest EdDSA signature with an openssl key verifies with openssl pkeyutl", async () => {
  const priv = ok(["genpkey", "-algorithm", "ed25519"]);
  const pub = ok(["pkey", "-pubout"], priv);
  const signature = call(await box(), "signWith", [{ name: "EdDSA" }, priv, "message"]) as string;
  const { dir, cleanup } = tempDir("app-crypto-globals-");
  try {
    writeFileSync(join(dir, "pub.pem"), pub);
    writeFileSync(join(dir, "sig"), fromHex(signature)!);
    writeFileSync(join(dir, "data"), "message");
    ok(
      ["pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", join(dir, "pub.pem")].concat([
        "-sigfile",
        join(dir, "sig"),
        "-in",
        join(dir, "data"),
      ]),
    );
  } finally {
    cleanup();
  }
});

test("generate* return CCF's {privateKey, publicKey} PEM pairs and AES keys of the asked size", async () => {
  const value = call(await box(), "generated") as Record<string, JsonValue>;
  assert.deepEqual(value["aes"], [16, 24, 32]);
  for (const name of ["rsa", "ec", "ed", "x"]) {
    const pair = value[name] as { privateKey: string; publicKey: string };
    assert.deepEqual(Object.keys(pair).sort(), ["privateKey", "publicKey"]);
    assert.match(pair.privateKey, /^-----BEGIN PRIVATE KEY-----\n/);
    const derived = createPublicKey(pair.privateKey).export({ type: "spki", format: "pem" });
    assert.equal(derived, pair.publicKey, name);
  }
});

test("wrapKey and unwrapKey in the guest: RFC 5649's AES-KWP vector, RSA-OAEP round trips", async () => {
  const value = call(await box(), "wraps", [
    "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
    "c37b7e6492584340bed12207808941155068f738",
  ]);
  assert.deepEqual(value, [
    "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    "c37b7e6492584340bed12207808941155068f738",
    true,
    true,
    true,
  ]);
});

test("PEM <-> JWK in the guest returns openssl's PEMs and plain JWK objects", async () => {
  const ec = ok(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  const rsa = ok(["genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
  const ed = ok(["genpkey", "-algorithm", "ed25519"]);
  const pems = [ec, ok(["pkey", "-pubout"], ec), rsa, ok(["pkey", "-pubout"], rsa)].concat([
    ed,
    ok(["pkey", "-pubout"], ed),
  ]);
  const value = call(await box(), "jwks", pems) as Record<string, JsonValue>;
  assert.deepEqual(value["ec"], pems.slice(0, 2));
  assert.deepEqual(value["rsa"], pems.slice(2, 4));
  assert.deepEqual(value["ed"], pems.slice(4, 6));
  const jwk = value["jwk"] as Record<string, string>;
  assert.deepEqual(Object.keys(jwk), ["crv", "kid", "kty", "x", "y"]);
  assert.equal(jwk["kid"], "k2");
  assert.deepEqual(Object.keys(value["noKid"] as object), ["crv", "kty", "x"]);
});

test("X.509 checks in the guest, with validity judged at the time the installer is given", async () => {
  const { dir, cleanup } = tempDir("app-crypto-globals-x509-");
  try {
    const make = (name: string): string => {
      ok(
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
          .concat(["-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.pem`)])
          .concat(["-subj", `/CN=${name}`, "-days", "10"]),
      );
      return ok(["x509", "-in", join(dir, `${name}.pem`)]);
    };
    const ca = make("ca");
    const other = make("other");
    const sandbox = await box();
    assert.deepEqual(call(sandbox, "certs", [ca, other]), [true, true, false, true, false, false]);
    const later = { now: () => new Date(Date.now() + 30 * 24 * 3600 * 1000) };
    const expired = call(sandbox, "certs", [ca, other], later) as boolean[];
    assert.equal(expired[3], false, "an expired certificate is no valid chain");
  } finally {
    cleanup();
  }
});

test("errors reach the guest as CCF's TypeError, RangeError and InternalError", async () => {
  const ec = ok(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  const value = call(await box(), "errors", [ec]) as [string, string][];
  const expected: [string, RegExp][] = [
    ["RangeError", /unsupported digest algorithm "MD5", supported: SHA-256, SHA-384, SHA-512/],
    ["TypeError", /data must be an ArrayBuffer/],
    ["RangeError", /unsupported signing algorithm "DSA", supported: RSA-PSS, ECDSA, EdDSA, HMAC/],
    ["RangeError", /signing algorithm ECDSA needs a hash/],
    ["TypeError", /algorithm must be an object/],
    ["InternalError", /^Failed to sign: signing key is a ec key; expected rsa or rsa-pss$/],
    ["InternalError", /^Failed to sign: signing key is not a PEM$/],
    ["InternalError", /^Failed to verify signature: verification key must be a public key or/],
    ["RangeError", /invalid key size \(not one of 128, 192, 256\)/],
    ["RangeError", /invalid RSA key size 1024/],
    ["RangeError", /unsupported curve id "secp256k1", supported: secp256r1, secp384r1/],
    ["RangeError", /unsupported curve id "ed448", supported: curve25519, x25519/],
    ["RangeError", /unsupported key wrapping algorithm "AES-GCM"/],
    ["InternalError", /^Failed to unwrap key: AES-KWP unwrap failed/],
    ["TypeError", /wrapAlgo.label must be an ArrayBuffer/],
    ["InternalError", /^Failed to convert pem to jwk: public key is not a PEM$/],
    ["InternalError", /^Failed to convert jwk to pem: JWK kty must be "EC", not "RSA"$/],
    ["TypeError", /jwk must be an object/],
  ];
  assert.equal(value.length, expected.length);
  value.forEach(([name, message], i) => {
    assert.equal(name, expected[i]![0], `${i}: ${message}`);
    assert.match(message, expected[i]![1], `${i}`);
  });
});

test("installing ccf.crypto without the ccf global fails setup with a clear error", async () => {
  const sandbox = await box();
  assert.throws(
    () => sandbox.call({ module: "app.js", exportName: "digests", setup: installAppCrypto }),
    (err: unknown) =>
      err instanceof JsSandboxError && /the ccf global is missing/.test(err.message),
  );
});
