// PEM <-> JWK conversions (src/js/app-crypto-jwk.ts) and X.509 bundle and chain checks
// (src/js/app-crypto-x509.ts) of ccf.crypto for JS apps (ccf-compatibility.md §9.1).
// Oracles: the key components `openssl pkey -text` prints (JWK values must be exactly those
// numbers, base64url-encoded), PEMs openssl wrote (a JWK converts back to the same PEM, as
// CCF's npm_tests expect), and `openssl verify -partial_chain -attime` for every chain case,
// whose verdict must equal ours.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AppCryptoError, AppCryptoErrorCode } from "../../../src/js/app-crypto.js";
import {
  eddsaJwkToPem,
  eddsaPemToJwk,
  jwkToPem,
  pemToJwk,
  pubEddsaJwkToPem,
  pubEddsaPemToJwk,
  pubJwkToPem,
  pubPemToJwk,
  pubRsaJwkToPem,
  pubRsaPemToJwk,
  rsaJwkToPem,
  rsaPemToJwk,
  type Jwk,
} from "../../../src/js/app-crypto-jwk.js";
import { isValidX509CertBundle, isValidX509CertChain } from "../../../src/js/app-crypto-x509.js";
import { openssl, tempDir } from "../../helpers/pki.js";

function ok(args: string[], input?: string): string {
  const result = openssl(args, input === undefined ? undefined : new TextEncoder().encode(input));
  assert.equal(result.status, 0, `openssl ${args.join(" ")}: ${result.out}`);
  return result.out;
}

/** The bytes of a hex block in `openssl pkey -text` output, under `label:`. */
function textField(text: string, label: string): Uint8Array {
  const lines = text.split("\n");
  const start = lines.findIndex((line) => line.trim() === `${label}:`);
  assert.ok(start >= 0, `no ${label} in ${text}`);
  const hexLines: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!/^\s+[0-9a-f]{2}(:[0-9a-f]{2})*:?$/.test(line)) break;
    hexLines.push(line.trim());
  }
  const hex = hexLines.join("").replaceAll(":", "");
  return Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16));
}

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");
const minimal = (bytes: Uint8Array): Uint8Array => {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
};
const padded = (bytes: Uint8Array, size: number): Uint8Array => {
  const m = minimal(bytes);
  const out = new Uint8Array(size);
  out.set(m, size - m.length);
  return out;
};

function assertInvalidKey(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AppCryptoError, String(err));
    assert.equal(err.code, AppCryptoErrorCode.InvalidKey);
    assert.match(err.message, message);
    return true;
  });
}

function sortedKeys(jwk: Jwk): void {
  const keys = Object.keys(jwk);
  assert.deepEqual(keys, [...keys].sort(), "fields come out in alphabetical order, as CCF's");
}

for (const [crv, size] of [
  ["P-256", 32],
  ["P-384", 48],
] as const) {
  test(`EC ${crv} keys convert to the JWK openssl's numbers give, and back to the same PEM`, () => {
    const priv = ok(["genpkey", "-algorithm", "EC", "-pkeyopt", `ec_paramgen_curve:${crv}`]);
    const pub = ok(["pkey", "-pubout"], priv);
    const text = ok(["pkey", "-noout", "-text"], priv);
    const point = textField(text, "pub");
    assert.equal(point[0], 4, "uncompressed point");
    const x = b64url(point.subarray(1, 1 + size));
    const y = b64url(point.subarray(1 + size));
    const d = b64url(padded(textField(text, "priv"), size));
    const jwk = pemToJwk(priv, "my-kid");
    assert.deepEqual(jwk, { crv, d, kid: "my-kid", kty: "EC", x, y });
    sortedKeys(jwk);
    assert.deepEqual(pubPemToJwk(pub), { crv, kty: "EC", x, y });
    assert.equal(jwkToPem(jwk), priv);
    assert.equal(pubJwkToPem(pubPemToJwk(pub, "k")), pub);
  });
}

test("RSA keys convert to the JWK of openssl's numbers, and the private JWK back to the PEM", () => {
  const priv = ok(["genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
  const pub = ok(["pkey", "-pubout"], priv);
  const text = ok(["pkey", "-noout", "-text"], priv);
  const field = (label: string): string => b64url(minimal(textField(text, label)));
  const jwk = rsaPemToJwk(priv, "r");
  assert.deepEqual(jwk, {
    d: field("privateExponent"),
    dp: field("exponent1"),
    dq: field("exponent2"),
    e: "AQAB",
    kid: "r",
    kty: "RSA",
    n: field("modulus"),
    p: field("prime1"),
    q: field("prime2"),
    qi: field("coefficient"),
  });
  sortedKeys(jwk);
  assert.deepEqual(pubRsaPemToJwk(pub), { e: "AQAB", kty: "RSA", n: field("modulus") });
  assert.equal(rsaJwkToPem(jwk), priv);
  assert.equal(pubRsaJwkToPem(pubRsaPemToJwk(pub)), pub);
});

for (const [algorithm, crv] of [
  ["ed25519", "Ed25519"],
  ["x25519", "X25519"],
] as const) {
  test(`${crv} keys convert to OKP JWKs of openssl's raw keys, and back to the same PEM`, () => {
    const priv = ok(["genpkey", "-algorithm", algorithm]);
    const pub = ok(["pkey", "-pubout"], priv);
    const text = ok(["pkey", "-noout", "-text"], priv);
    const x = b64url(textField(text, "pub"));
    const d = b64url(textField(text, "priv"));
    const jwk = eddsaPemToJwk(priv, "e");
    assert.deepEqual(jwk, { crv, d, kid: "e", kty: "OKP", x });
    sortedKeys(jwk);
    assert.deepEqual(pubEddsaPemToJwk(pub), { crv, kty: "OKP", x });
    assert.equal(eddsaJwkToPem(jwk), priv);
    assert.equal(pubEddsaJwkToPem(pubEddsaPemToJwk(pub)), pub);
  });
}

test("a PEM or JWK of the wrong kind is refused with a message that names the problem", () => {
  const ec = ok(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  const ecPub = ok(["pkey", "-pubout"], ec);
  const jwk = pubPemToJwk(ecPub);
  assertInvalidKey(() => pubPemToJwk("invalid_pem"), /is not a PEM/);
  assertInvalidKey(() => pubPemToJwk(ec), /must be a public key PEM, not PRIVATE KEY/);
  assertInvalidKey(() => pubRsaPemToJwk(ecPub), /is a ec key; expected rsa/);
  assertInvalidKey(() => pubEddsaPemToJwk(ecPub), /expected ed25519 or x25519/);
  assertInvalidKey(() => pubJwkToPem("{}"), /must be an object/);
  assertInvalidKey(() => pubRsaJwkToPem(jwk), /kty must be "RSA", not "EC"/);
  assertInvalidKey(() => pubJwkToPem({ ...jwk, y: undefined }), /field y is missing/);
  assertInvalidKey(() => pubJwkToPem({ ...jwk, crv: "P-521" }), /unsupported JWK crv "P-521"/);
  assertInvalidKey(() => pubJwkToPem({ ...jwk, x: "a+b/" }), /field x is not base64url/);
  const offCurve = { ...jwk, y: jwk["x"] };
  assertInvalidKey(() => pubJwkToPem(offCurve), /invalid public JWK/);
  assertInvalidKey(() => jwkToPem(jwk), /field d is missing/);
});

// ---------------------------------------------------------------------------------------------
// X.509

const EXTENSIONS = `[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
`;

interface Pki {
  readonly certs: Readonly<Record<string, string>>;
  readonly dir: string;
}

/** root (CA) -> int (CA) -> leaf (not a CA) -> under-leaf; and an unrelated self-signed CA. */
function makeChain(dir: string): Pki {
  const path = (name: string): string => join(dir, name);
  writeFileSync(path("ext.cnf"), EXTENSIONS);
  const make = (name: string, section: string, issuer?: string): void => {
    ok(
      ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
        "-keyout",
        path(`${name}.key`),
        "-out",
        path(`${name}.csr`),
        "-subj",
        `/CN=${name}`,
      ]),
    );
    const signer =
      issuer === undefined
        ? ["-signkey", path(`${name}.key`)]
        : ["-CA", path(`${issuer}.pem`), "-CAkey", path(`${issuer}.key`), "-set_serial", "7"];
    ok(
      ["x509", "-req", "-in", path(`${name}.csr`), "-days", "10", ...signer].concat([
        "-extfile",
        path("ext.cnf"),
        "-extensions",
        section,
        "-out",
        path(`${name}.pem`),
      ]),
    );
  };
  make("root", "ca");
  make("int", "ca", "root");
  make("leaf", "leaf", "int");
  make("under", "leaf", "leaf");
  make("other", "ca");
  const certs: Record<string, string> = {};
  for (const name of ["root", "int", "leaf", "under", "other"]) {
    certs[name] = readFileSync(path(`${name}.pem`), "utf8");
  }
  return { certs, dir };
}

/** openssl's verdict on the same question (target first in `chain`). */
function opensslVerdict(pki: Pki, chain: string[], trusted: string[], now: Date): boolean {
  const path = (name: string): string => join(pki.dir, name);
  writeFileSync(path("target.pem"), pki.certs[chain[0]!]!);
  writeFileSync(path("trusted.pem"), trusted.map((n) => pki.certs[n]).join(""));
  const untrusted = chain.slice(1);
  writeFileSync(path("untrusted.pem"), untrusted.map((n) => pki.certs[n]).join(""));
  const args = ["verify", "-partial_chain", "-attime", String(Math.floor(now.getTime() / 1000))]
    .concat(["-CAfile", path("trusted.pem")])
    .concat(untrusted.length > 0 ? ["-untrusted", path("untrusted.pem")] : [])
    .concat([path("target.pem")]);
  return openssl(args).status === 0;
}

test("isValidX509CertChain agrees with openssl verify -partial_chain on CCF's cases and more", () => {
  const { dir, cleanup } = tempDir("app-crypto-x509-");
  try {
    const pki = makeChain(dir);
    const now = new Date();
    const day = 24 * 3600 * 1000;
    const cases: [string[], string[], Date, boolean][] = [
      [["leaf"], ["leaf"], now, true], // the target itself is trusted
      [["int"], ["root"], now, true], // no intermediates
      [["leaf", "int"], ["root"], now, true], // with an intermediate
      [["leaf"], ["int"], now, true], // an intermediate as the trust anchor
      [["leaf"], ["root"], now, false], // the intermediate is missing
      [["leaf", "int"], ["other"], now, false], // an unrelated anchor
      [["under", "leaf", "int"], ["root"], now, false], // the leaf is not a CA
      [["leaf", "int"], ["root", "other"], now, true], // any anchor of several
      [["leaf", "int"], ["root"], new Date(now.getTime() + 30 * day), false], // expired
      [["leaf", "int"], ["root"], new Date(now.getTime() - 30 * day), false], // not yet valid
    ];
    for (const [chain, trusted, at, expected] of cases) {
      const input = {
        chain: chain.map((n) => pki.certs[n]).join("\n"),
        trusted: trusted.map((n) => pki.certs[n]).join("\n"),
        now: at,
      };
      const shown = `${chain.join("+")} / ${trusted.join("+")} at ${at.toISOString()}`;
      assert.equal(opensslVerdict(pki, chain, trusted, at), expected, `openssl: ${shown}`);
      assert.equal(isValidX509CertChain(input), expected, shown);
    }
    const leaf = pki.certs["leaf"]!;
    assert.equal(isValidX509CertChain({ chain: "garbage", trusted: leaf, now }), false);
    assert.equal(isValidX509CertChain({ chain: leaf, trusted: "", now }), false);
  } finally {
    cleanup();
  }
});

test("isValidX509CertBundle: one or more parseable certificates, nothing else", () => {
  const { dir, cleanup } = tempDir("app-crypto-bundle-");
  try {
    const { certs } = makeChain(dir);
    const root = certs["root"]!;
    assert.equal(isValidX509CertBundle(root), true);
    assert.equal(isValidX509CertBundle(`${root}\n${certs["leaf"]}`), true);
    assert.equal(isValidX509CertBundle("garbage"), false);
    assert.equal(isValidX509CertBundle(""), false);
    const broken = root.replace(/\n[A-Za-z0-9+/]{8}/, "\nAAAAAAAA");
    assert.equal(isValidX509CertBundle(`${root}${broken}`), false);
  } finally {
    cleanup();
  }
});
