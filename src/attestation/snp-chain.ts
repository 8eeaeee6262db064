/**
 * The endorsements of an AMD SEV-SNP report (ccf-compatibility.md §2.4): a PEM chain of exactly
 * three certificates, chip certificate (VCEK, or a cloud provider's VLEK), then the AMD SEV
 * signing key (ASK, or ASVK for a VLEK), then the AMD root key (ARK). The ARK must be
 * self-signed and its public key must be AMD's published root key for the product (pinned
 * below, as CCF's `amd_root_signing_keys`); the ASK must be issued by the ARK and the chip
 * certificate by the ASK (RSASSA-PSS, SHA-384), and all three must be valid at the instant the
 * caller gives (this layer reads no clock).
 *
 * The chip certificate's private extensions (AMD's "VCEK Certificate and KDS Interface"
 * specification) certify what the key belongs to: 1.3.6.1.4.1.3704.1.3.1 blSPL, .3.2 teeSPL,
 * .3.3 snpSPL, .3.8 ucodeSPL, .3.9 fmcSPL (Turin), each a DER INTEGER; 1.3.6.1.4.1.3704.1.4
 * hwID, the raw chip id (64 bytes; 8 on Turin); 1.3.6.1.4.1.3704.1.2 the product name as an
 * IA5String ("Milan-B0", "Turin").
 *
 * No IO. Throws SnpVerificationError.
 */
import { X509Certificate, type KeyObject } from "node:crypto";
import { assert } from "../base/assert.js";
import { equalBytes, fromBase64 } from "../base/bytes.js";
import { isForeignError } from "../base/errors.js";
import { certificateExtensions, decodeSmallUint, DerError, DER_TAG, readDer } from "./der.js";
import {
  SNP_PRODUCTS,
  SnpErrorCode,
  snpFail,
  type SnpProduct,
  type SnpSigningKey,
} from "./snp-report.js";

/**
 * AMD's root signing keys (SubjectPublicKeyInfo DER, base64), one per product: the public keys
 * of ARK-Milan, ARK-Genoa and ARK-Turin as AMD's key distribution service publishes them
 * (`/vcek/v1/{product}/cert_chain`), equal to CCF's `amd_root_signing_keys` (Turin: CCF's
 * `amd_turin_root_signing_public_key`). test/unit/attestation/snp-roots.test.ts checks each
 * against the ARK of a real chain.
 */
const AMD_ROOT_KEYS_BASE64: Readonly<Record<SnpProduct, string>> = {
  Milan:
    "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA0Ld52RJOdeiJlqK2JdsVmD7FktuotWwX1fNgW41XY9Xz1HEh" +
    "SUmhLz9Cu9DHRlvgJSNxbeYYsnJfvyjx1MfU0V5tkKiU1EesNFta1kTA0szNisdYc9isqk7mXT5+KfGRbfc4V/9zRIcE" +
    "8jlHN61S1ju8X93+6dxDUrG2SzxqJ4BhqyYmUDruPXJSX4vUc01P7j98MpqOS95rORdGHeI52Naz5m2B+O+vjsC060d3" +
    "7jY9LFeuOP4Meri8qgfi2S5kKqg/aF6aPtuAZQVR7u3KFYXP59XmJgtcog05gmI0T/OitLhuzVvpZcLph0odh/1IPXqx" +
    "3+MnjD97A7fXpqGd/y8KxX7jksTEzAOgbKAeam3lm+3yKIcTYMlsRMXPcjNbIvmsBykD//xSniusuHBkgnlENEWx1Ucb" +
    "QQrs+gVDkuVPhsnzIRNgYvM48Y+7LGiJYnrmE8xcrexekBxrva2V9TJQqnN3Q53kt5viQi3+gCfmkwC0F0tirIZbLkXP" +
    "rPwzZ0M9eNxhIySb2npJfgnqz55I0u33wh4r0ZNQeTGfw03MBUtyuzGesGkcw+loqMaq1qR4tjGbPYxCvpCq7+OgpCCo" +
    "MNit2uLo9M18fHz10lOMT8nWAUvRZFzteXCm+7PHdYPlmQwUw3LvenJ/ILXoQPHfbkH0CyPfhl1jWhJFZasCAwEAAQ==",
  Genoa:
    "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEA3Cd95S/uFOuRIskW9vz9VDBF69NDQF79oRhL/L2PVQGhK3Yd" +
    "fEBgpF/JiwWFBsT/fXDhzA01p3LkcT/7LdjcRfKXjHl+0Qq/M4dZkh6QDoUeKzNBLDcBKDDGWo3v35NyrxbA1DnkYwUK" +
    "U5AAk4P94tKXLp80oxt84ahyHoLmc/LqsGsp+oq1Bz4PPsYLwTG4iMKVaaT90/oZ4I8oibSru92vJhlqWO27d/Rxc3iU" +
    "MyhNeGToOvgx/iUo4gGpG61NDpkEUvIzuKcaMx8IdTpWg2DF6SwF0IgVMffnvtJmA68BwJNWo1E4PLJdaPfBifcJpuBF" +
    "wNVQIPQEVX3aP89HJSp8YbY9lySS6PlVEqTBBtaQmi4ATGmMR+n2K/e+JAhU2Gj7jIpJhOkdH9firQDnmlA2SFfJ/Cc0" +
    "mGNzW9RmIhyOUnNFoclmkRhl3/AQU5Ys9Qsan1jT/EiyT+pCpmnA+y9edvhDCbOG8F2oxHGRdTBkylungrkXJGYiwGrR" +
    "8kaiqv7NN8QhOBMqYjcbrkEr0f8QMKklIS5ruOfqlLMCBw8JLB3LkjpWgtD7OpxkzSsohN47Uom86RY6lp72g8eXHP1q" +
    "YrnvhzaG1S70vw6OkbaaC9EjiH/uHgAJQGxon7u0Q7xgoREWA/e7JcBQwLg80Hq/sbRuqesxz7wBWSY254cCAwEAAQ==",
  Turin:
    "MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAwaAriB7EIuVc4ZB1wD3YfDxL+9eyS7+izm0Jj3W772NINCWl" +
    "8Bj3w/JD2ZjmbRxWdIq/4d9iarCKorXloJUB1jRdgxqccTx1aOoig4+2w1XhVVJT7K457wT5ZLNJgQaxqa9Etkwjd6+9" +
    "sOhlCDE9l43kQ0R2BikVJa/uyyVOSwEk5w5tXKOuG9jvq6QtAMJasW38wlqRDaKEGtZ9VUgGon27ZuL4sTJuC/azz9/i" +
    "QBw8kEilzOl95AiTkeY5jSEBDWbAqnZk5qlM7kISKG20kgQm14mhNKDI2p2oua+zuAG7i52epoRF2GfU0TYk/yf+vCNB" +
    "2tnechFQuP2e8bLk95ZdqPi9/UWw4JXjtdEA4u2JYplSSUPQVAXKt6LVqujtJcM59JKr2u0XQ75KwxcMp15gSXhBfInv" +
    "PAwuAY4dEwwGqT8oIg4esPHwEsmChhYeDIxPG9R4fx9O0q6p8Gb+HXlTiS47P9YNeOpidOUKzDl/S1OvyhDtSL8LJc24" +
    "QATFydo/iD/KUdvFTRlD0crkAMkZLoWQ8hLDGc6BZJXsdd7Zf2e4UW3tI/1oh/2t23Ot3zyhTcv5gDbABu0LjVe98uRn" +
    "S15SMwK//lJt9e5BqKvgABkSoABf+B4VFtPVEX0ygrYaFaI9i5ABrxnVBmzXpRb21iI1NlNCfOGUPIhVpWECAwEAAQ==",
};

/** Root public keys (SubjectPublicKeyInfo DER) by product. */
export type SnpRootKeys = Readonly<Record<SnpProduct, Uint8Array>>;

function decodeRoots(): SnpRootKeys {
  const decode = (product: SnpProduct): Uint8Array => {
    const der = fromBase64(AMD_ROOT_KEYS_BASE64[product]);
    assert(der !== null, `pinned ${product} root key is base64`);
    return der;
  };
  return { Milan: decode("Milan"), Genoa: decode("Genoa"), Turin: decode("Turin") };
}

/** AMD's pinned root keys: what production verification trusts. */
export const AMD_ROOT_KEYS: SnpRootKeys = decodeRoots();

export const SNP_ENDORSEMENT_COUNT = 3;
const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The three certificates of an SNP endorsement chain, leaf first. */
export interface SnpChain {
  leaf: X509Certificate;
  /** The ASK (or ASVK for a VLEK). */
  signer: X509Certificate;
  root: X509Certificate;
}

function parseCert(pem: string, index: number): X509Certificate {
  try {
    const cert = new X509Certificate(pem);
    // Node decodes the subject public key only when asked, and throws then if it is malformed:
    // ask here, so that every later use of `publicKey` on the chain is safe.
    void cert.publicKey;
    return cert;
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    snpFail(
      SnpErrorCode.MalformedEndorsements,
      `endorsement certificate ${index + 1} cannot be parsed: ${err.message}`,
    );
  }
}

/** Splits and parses the PEM endorsements; exactly three certificates. */
export function parseSnpChain(endorsementsPem: string): SnpChain {
  const pems = endorsementsPem.match(PEM_CERT_RE) ?? [];
  if (pems.length !== SNP_ENDORSEMENT_COUNT) {
    snpFail(
      SnpErrorCode.EndorsementCount,
      `the endorsements hold ${pems.length} certificate${pems.length === 1 ? "" : "s"}; ` +
        `expected 3 (VCEK, ASK, ARK)`,
    );
  }
  const [leaf, signer, root] = pems.map(parseCert) as [
    X509Certificate,
    X509Certificate,
    X509Certificate,
  ];
  return { leaf, signer, root };
}

function spkiDer(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: "spki", format: "der" }));
}

/**
 * The product whose root key the chain's ARK holds. With `expected` (from the report's CPUID),
 * the ARK must hold that product's key; without (a version 2 report), any pinned product's.
 */
export function matchRootProduct(
  root: X509Certificate,
  roots: SnpRootKeys,
  expected: SnpProduct | null,
): SnpProduct {
  const key = spkiDer(root.publicKey);
  if (expected !== null) {
    if (!equalBytes(key, roots[expected])) {
      snpFail(
        SnpErrorCode.RootKeyMismatch,
        `the root of trust public key for this attestation is not the expected one for AMD ` +
          expected,
      );
    }
    return expected;
  }
  const product = SNP_PRODUCTS.find((p) => equalBytes(key, roots[p]));
  if (product === undefined) {
    snpFail(
      SnpErrorCode.RootKeyMismatch,
      `the root of trust public key for this attestation is not AMD's root key for any of ` +
        SNP_PRODUCTS.join(", "),
    );
  }
  return product;
}

function isSignedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/** ARK self-signed and a CA, ASK issued by the ARK and a CA, leaf issued by the ASK. */
export function verifySnpChainSignatures(chain: SnpChain, leafName: SnpSigningKey): void {
  if (!chain.root.ca || !isSignedBy(chain.root, chain.root)) {
    snpFail(
      SnpErrorCode.RootNotSelfSigned,
      "the root of trust certificate (ARK) is not a self-signed CA certificate",
    );
  }
  if (!chain.signer.ca || !isSignedBy(chain.signer, chain.root)) {
    snpFail(
      SnpErrorCode.ChainBroken,
      "the AMD signing key certificate (ASK) is not issued by the root of trust (ARK)",
    );
  }
  if (!isSignedBy(chain.leaf, chain.signer)) {
    snpFail(
      SnpErrorCode.ChainBroken,
      `the chip certificate (${leafName}) is not issued by the AMD signing key (ASK)`,
    );
  }
}

/** Each certificate is valid at `now` (notBefore <= now <= notAfter). */
export function verifySnpChainValidity(chain: SnpChain, now: Date): void {
  const at = now.getTime();
  if (Number.isNaN(at)) snpFail(SnpErrorCode.CertificateNotValid, "the time to check is invalid");
  const named: [string, X509Certificate][] = [
    ["chip certificate", chain.leaf],
    ["ASK", chain.signer],
    ["ARK", chain.root],
  ];
  for (const [name, cert] of named) {
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    if (!(from <= at && at <= to)) {
      snpFail(
        SnpErrorCode.CertificateNotValid,
        `the ${name} is not valid at ${now.toISOString()} (valid from ${cert.validFrom} ` +
          `to ${cert.validTo})`,
      );
    }
  }
}

const AMD_OID = "1.3.6.1.4.1.3704.1";
export const SNP_OIDS = {
  productName: `${AMD_OID}.2`,
  blSpl: `${AMD_OID}.3.1`,
  teeSpl: `${AMD_OID}.3.2`,
  snpSpl: `${AMD_OID}.3.3`,
  ucodeSpl: `${AMD_OID}.3.8`,
  fmcSpl: `${AMD_OID}.3.9`,
  hwId: `${AMD_OID}.4`,
} as const;

/** What a chip certificate certifies, from its AMD extensions. */
export interface SnpLeafClaims {
  bootloader: number | null;
  tee: number | null;
  snp: number | null;
  microcode: number | null;
  fmc: number | null;
  hwId: Uint8Array | null;
  productName: string | null;
}

function splOf(extensions: Map<string, Uint8Array>, oid: string): number | null {
  const value = extensions.get(oid);
  if (value === undefined) return null;
  const node = readDer(value);
  if (node.tag !== DER_TAG.integer) {
    snpFail(SnpErrorCode.MalformedEndorsements, `extension ${oid} is not an INTEGER`);
  }
  return decodeSmallUint(node.value);
}

function productNameOf(extensions: Map<string, Uint8Array>): string | null {
  const value = extensions.get(SNP_OIDS.productName);
  if (value === undefined) return null;
  const node = readDer(value);
  return String.fromCharCode(...node.value);
}

/** Reads the chip certificate's AMD extensions; an absent one is null. */
export function readSnpLeafClaims(leaf: X509Certificate): SnpLeafClaims {
  try {
    const extensions = certificateExtensions(new Uint8Array(leaf.raw));
    return {
      bootloader: splOf(extensions, SNP_OIDS.blSpl),
      tee: splOf(extensions, SNP_OIDS.teeSpl),
      snp: splOf(extensions, SNP_OIDS.snpSpl),
      microcode: splOf(extensions, SNP_OIDS.ucodeSpl),
      fmc: splOf(extensions, SNP_OIDS.fmcSpl),
      hwId: extensions.get(SNP_OIDS.hwId)?.slice() ?? null,
      productName: productNameOf(extensions),
    };
  } catch (err: unknown) {
    if (!(err instanceof DerError)) throw err;
    snpFail(SnpErrorCode.MalformedEndorsements, `chip certificate extensions: ${err.message}`);
  }
}
