/**
 * Identities (ccf-compatibility.md §2.2 and §10): how members, users and nodes are named, and how
 * their keys and certificates are made.
 *
 * - member / user id = lowercase hex SHA-256 of the certificate DER (the cert fingerprint);
 * - node id = lowercase hex SHA-256 of the node public key's DER SubjectPublicKeyInfo;
 * - an identity is an EC key (secp384r1 by default) plus a self-signed cert CN=<name>, signed
 *   with SHA-384 on secp384r1 and SHA-256 on secp256r1, as CCF's keygenerator.sh makes them;
 * - a member's encryption key (for recovery shares) is RSA-2048.
 *
 * Private keys are written as SEC 1 "EC PRIVATE KEY" PEM (what `openssl ecparam -genkey`
 * writes) and RSA keys as PKCS#8 / SPKI PEM (what OpenSSL 3 `genrsa` / `rsa -pubout` write).
 */
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from "node:crypto";
import { toHex } from "../base/bytes.js";
import type { MemberId, NodeId, UserId } from "../base/ids.js";
import { certificateDer, type EcKeyPair, type Instant, type PemOrDer } from "./certs.js";
import { sha256 } from "./hash.js";

// Chain and key helpers callers use next to the ids (e.g. the ledger verifier).
export { isIssuedBy, publicKeyOfCert } from "./certs.js";

/** Curves an identity may use (secp256k1 was removed in CCF 6.0). */
export type EcCurveName = "secp384r1" | "secp256r1";
export const EC_CURVE_NAMES: readonly EcCurveName[] = ["secp384r1", "secp256r1"];
export const DEFAULT_CURVE: EcCurveName = "secp384r1";

/** OpenSSL's name for secp256r1, which node's key generator expects. */
const NODE_CURVE: Readonly<Record<EcCurveName, string>> = {
  secp384r1: "secp384r1",
  secp256r1: "prime256v1",
};

/** Lowercase hex SHA-256 of the certificate DER; throws CertError for a non-certificate. */
export function certFingerprint(pemOrDer: PemOrDer): string {
  return toHex(sha256(certificateDer(pemOrDer)));
}

export function memberIdFromCert(pemOrDer: PemOrDer): MemberId {
  return certFingerprint(pemOrDer) as MemberId;
}

export function userIdFromCert(pemOrDer: PemOrDer): UserId {
  return certFingerprint(pemOrDer) as UserId;
}

/** Hex SHA-256 of the SPKI DER. A private key stands for its public half; PEM is accepted. */
export function nodeIdFromPublicKey(key: KeyObject | string): NodeId {
  const publicKey = typeof key === "string" || key.type === "private" ? createPublicKey(key) : key;
  const spki = publicKey.export({ type: "spki", format: "der" });
  return toHex(sha256(spki)) as NodeId;
}

/**
 * The key id CCF puts in a COSE signature's `kid` header for the service key: the hex SHA-256 of
 * the key's SPKI DER, the same digest a node id is (ccf-compatibility.md §6.4).
 */
export function publicKeyId(key: KeyObject | string): string {
  return nodeIdFromPublicKey(key);
}

/** A fresh EC key pair (node keys, service keys, identity keys). */
export function generateEcKeyPair(curve: EcCurveName = DEFAULT_CURVE): EcKeyPair {
  return generateKeyPairSync("ec", { namedCurve: NODE_CURVE[curve] });
}

/** SEC 1 PEM ("EC PRIVATE KEY"), loadable by OpenSSL and node's createPrivateKey. */
export function ecPrivateKeyPem(privateKey: KeyObject): string {
  return privateKey.export({ type: "sec1", format: "pem" }).toString();
}

export interface IdentityOptions {
  /** The subject common name; callers validate its character set (the CLI does). */
  readonly name: string;
  readonly curve?: EcCurveName;
  readonly validityDays?: number;
  readonly now: Instant;
}

export interface Identity {
  readonly privateKeyPem: string;
  readonly certPem: string;
}

/** Escapes the characters RFC 4514 reserves in a distinguished-name attribute value. */
function escapeDnValue(value: string): string {
  return value.replace(/[,+"\\<>;=]/g, (c) => "\\" + c).replace(/^[ #]|[ ]$/g, (c) => "\\" + c);
}

/** A member or user identity, as `keygenerator.sh --name <name> [--curve ...]` makes it. */
export async function generateIdentity(options: IdentityOptions): Promise<Identity> {
  const keys = generateEcKeyPair(options.curve ?? DEFAULT_CURVE);
  // Loaded here, not at the top: what only reads identities does not load the X.509 builder.
  const { createSelfSignedCertificate } = await import("./cert-issuance.js");
  const certPem = await createSelfSignedCertificate({
    keys,
    subject: `CN=${escapeDnValue(options.name)}`,
    validityDays: options.validityDays ?? 365,
    now: options.now,
  });
  return { privateKeyPem: ecPrivateKeyPem(keys.privateKey), certPem };
}

export interface EncryptionKey {
  /** PKCS#8 PEM ("PRIVATE KEY"). */
  readonly privateKeyPem: string;
  /** SPKI PEM ("PUBLIC KEY"). */
  readonly publicKeyPem: string;
}

/** A member's RSA-2048 encryption key (recovery shares are wrapped with RSA-OAEP to it). */
export function generateEncryptionKey(): EncryptionKey {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

const OAEP_SHA256 = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" } as const;

/**
 * RSA-OAEP (SHA-256, MGF1-SHA-256, as CCF) to an encryption key: recovery shares to members,
 * rekeyed ledger secrets to nodes.
 */
export function rsaOaepEncrypt(publicKeyPem: string, plaintext: Uint8Array): Uint8Array {
  return new Uint8Array(publicEncrypt({ key: publicKeyPem, ...OAEP_SHA256 }, plaintext));
}

/** Inverse of rsaOaepEncrypt; throws (node:crypto's error) when the key does not match. */
export function rsaOaepDecrypt(privateKeyPem: string, ciphertext: Uint8Array): Uint8Array {
  return new Uint8Array(privateDecrypt({ key: privateKeyPem, ...OAEP_SHA256 }, ciphertext));
}
