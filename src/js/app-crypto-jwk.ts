/**
 * PEM <-> JSON Web Key conversions of `ccf.crypto` for JS apps (CCF 6's global.ts CCFCrypto:
 * pubPemToJwk ... eddsaJwkToPem; ccf-compatibility.md §9.1), over node:crypto. No QuickJS types.
 *
 * As CCF writes them (ccf-compatibility.md §9.1): EC keys are kty "EC" with crv "P-256" or
 * "P-384"; RSA keys kty "RSA"; EdDSA keys kty "OKP" with crv "Ed25519" or "X25519". Values are
 * unpadded base64url; `kid` appears only when given. Fields come out in alphabetical order, as
 * CCF's JSON serialiser writes them. PEMs come out as SPKI ("BEGIN PUBLIC KEY") and PKCS#8
 * ("BEGIN PRIVATE KEY"), as OpenSSL's PEM_write_bio_PUBKEY / PEM_write_bio_PrivateKey write them.
 *
 * A JWK whose kty or crv does not fit the function, or that lacks a field, is refused with an
 * AppCryptoError(InvalidKey) naming what is wrong. An undefined or null kid means no kid.
 */
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import {
  AppCryptoError,
  AppCryptoErrorCode,
  privateKeyFromPem,
  publicKeyFromPem,
} from "./app-crypto.js";
import { isForeignError } from "../base/errors.js";

export type Jwk = Readonly<Record<string, string>>;

/** Which family a conversion handles; the key types node reports for it and the JWK fields. */
interface JwkFamily {
  readonly kty: "EC" | "RSA" | "OKP";
  readonly keyTypes: readonly string[];
  readonly publicFields: readonly string[];
  readonly privateFields: readonly string[];
  readonly curves?: readonly string[];
}

const EC: JwkFamily = {
  kty: "EC",
  keyTypes: ["ec"],
  publicFields: ["crv", "x", "y"],
  privateFields: ["crv", "x", "y", "d"],
  curves: ["P-256", "P-384"],
};
const RSA: JwkFamily = {
  kty: "RSA",
  keyTypes: ["rsa"],
  publicFields: ["n", "e"],
  privateFields: ["n", "e", "d", "p", "q", "dp", "dq", "qi"],
};
const EDDSA: JwkFamily = {
  kty: "OKP",
  keyTypes: ["ed25519", "x25519"],
  publicFields: ["crv", "x"],
  privateFields: ["crv", "x", "d"],
  curves: ["Ed25519", "X25519"],
};

function invalid(message: string): never {
  throw new AppCryptoError({ code: AppCryptoErrorCode.InvalidKey }, message);
}

/** The JWK of `key` with exactly `fields` (plus kty and kid), sorted by name. */
function toJwk(key: KeyObject, family: JwkFamily, fields: readonly string[], kid?: string): Jwk {
  const exported = key.export({ format: "jwk" }) as Record<string, unknown>;
  const out: Record<string, string> = { kty: family.kty };
  for (const field of fields) {
    const value = exported[field];
    if (typeof value !== "string") invalid(`the key has no JWK field ${field}`);
    out[field] = value;
  }
  if (kid !== undefined) out["kid"] = kid;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Checks `value` is a JWK of `family` with every field in `fields`; returns node's JsonWebKey. */
function fromJwk(value: unknown, family: JwkFamily, fields: readonly string[]): JsonWebKey {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    invalid("a JWK must be an object");
  }
  const jwk = value as Record<string, unknown>;
  if (jwk["kty"] !== family.kty) {
    invalid(`JWK kty must be ${JSON.stringify(family.kty)}, not ${JSON.stringify(jwk["kty"])}`);
  }
  const out: Record<string, string> = { kty: family.kty };
  for (const field of fields) {
    const v = jwk[field];
    if (typeof v !== "string") invalid(`JWK field ${field} is missing or not a string`);
    if (field !== "crv" && (v === "" || !BASE64URL.test(v))) {
      invalid(`JWK field ${field} is not base64url`);
    }
    out[field] = v;
  }
  const crv = out["crv"];
  if (family.curves !== undefined && !family.curves.includes(crv ?? "")) {
    invalid(`unsupported JWK crv ${JSON.stringify(crv)}, supported: ${family.curves.join(", ")}`);
  }
  return out;
}

function importKey(what: string, body: () => KeyObject): KeyObject {
  try {
    return body();
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    return invalid(`${what}: ${err.message}`);
  }
}

function publicPemToJwk(family: JwkFamily, pem: string, kid?: string): Jwk {
  const key = publicKeyFromPem(pem, family.keyTypes, "public key");
  return toJwk(key, family, family.publicFields, kid);
}

function privatePemToJwk(family: JwkFamily, pem: string, kid?: string): Jwk {
  const key = privateKeyFromPem(pem, family.keyTypes, "private key");
  return toJwk(key, family, family.privateFields, kid);
}

function publicJwkToPem(family: JwkFamily, jwk: unknown): string {
  const checked = fromJwk(jwk, family, family.publicFields);
  const key = importKey("invalid public JWK", () =>
    createPublicKey({ key: checked, format: "jwk" }),
  );
  return key.export({ type: "spki", format: "pem" }).toString();
}

function privateJwkToPem(family: JwkFamily, jwk: unknown): string {
  const checked = fromJwk(jwk, family, family.privateFields);
  const key = importKey("invalid private JWK", () =>
    createPrivateKey({ key: checked, format: "jwk" }),
  );
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

export const pubPemToJwk = (pem: string, kid?: string): Jwk => publicPemToJwk(EC, pem, kid);
export const pemToJwk = (pem: string, kid?: string): Jwk => privatePemToJwk(EC, pem, kid);
export const pubRsaPemToJwk = (pem: string, kid?: string): Jwk => publicPemToJwk(RSA, pem, kid);
export const rsaPemToJwk = (pem: string, kid?: string): Jwk => privatePemToJwk(RSA, pem, kid);
export const pubEddsaPemToJwk = (pem: string, kid?: string): Jwk => publicPemToJwk(EDDSA, pem, kid);
export const eddsaPemToJwk = (pem: string, kid?: string): Jwk => privatePemToJwk(EDDSA, pem, kid);

export const pubJwkToPem = (jwk: unknown): string => publicJwkToPem(EC, jwk);
export const jwkToPem = (jwk: unknown): string => privateJwkToPem(EC, jwk);
export const pubRsaJwkToPem = (jwk: unknown): string => publicJwkToPem(RSA, jwk);
export const rsaJwkToPem = (jwk: unknown): string => privateJwkToPem(RSA, jwk);
export const pubEddsaJwkToPem = (jwk: unknown): string => publicJwkToPem(EDDSA, jwk);
export const eddsaJwkToPem = (jwk: unknown): string => privateJwkToPem(EDDSA, jwk);

/** The conversions by their `ccf.crypto` names, for the installer. */
export const PEM_TO_JWK: Readonly<Record<string, (pem: string, kid?: string) => Jwk>> = {
  pubPemToJwk,
  pemToJwk,
  pubRsaPemToJwk,
  rsaPemToJwk,
  pubEddsaPemToJwk,
  eddsaPemToJwk,
};
export const JWK_TO_PEM: Readonly<Record<string, (jwk: unknown) => string>> = {
  pubJwkToPem,
  jwkToPem,
  pubRsaJwkToPem,
  rsaJwkToPem,
  pubEddsaJwkToPem,
  eddsaJwkToPem,
};
