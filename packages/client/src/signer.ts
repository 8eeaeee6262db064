/**
 * Who signs governance requests. A CoseSigner holds a member's private key and knows the member
 * id (the hex SHA-256 of its certificate's DER, CCF's kid for governance); the client hands it
 * the COSE Sig_structure bytes and gets back an IEEE P1363 (r||s) ECDSA signature.
 *
 * webCryptoSigner builds one from PEM text with WebCrypto, for browsers (and Node 20): the key
 * is imported non-extractable, so it can sign but never be exported or sent anywhere. Members'
 * keys from `consortia keygen` are SEC 1 "EC PRIVATE KEY" PEM, which WebCrypto cannot import;
 * sec1ToPkcs8 re-wraps them as PKCS#8 (RFC 5208 PrivateKeyInfo with the id-ecPublicKey
 * algorithm and the curve as its parameter, RFC 5915 section 3).
 */
import { concatBytes, owned, pemBlocks, utf8 } from "./bytes.js";
import { ClientError, ClientErrorCode } from "./errors.js";
import { ecCurveOf, memberIdOf, parseCertificate, spkiDer, type EcCurve } from "./x509.js";

/** COSE algorithms (RFC 9053): ECDSA with the hash that matches the curve. */
export enum CoseAlg {
  ES256 = -7,
  ES384 = -35,
  ES512 = -36,
}

export interface CoseSigner {
  /** Hex SHA-256 of the member certificate's DER: the kid of every request it signs. */
  readonly memberId: string;
  readonly alg: CoseAlg;
  /** Signs `toBeSigned` (hashing it with the alg's hash); returns r||s. */
  sign(toBeSigned: Uint8Array): Promise<Uint8Array>;
}

/** The PEM a member signs with: its certificate and private key. */
export interface MemberPem {
  readonly certPem: string;
  readonly keyPem: string;
}

export const CURVE_ALG: Readonly<Record<EcCurve, CoseAlg>> = {
  "P-256": CoseAlg.ES256,
  "P-384": CoseAlg.ES384,
  "P-521": CoseAlg.ES512,
};

export const ALG_HASH: Readonly<Record<CoseAlg, string>> = {
  [CoseAlg.ES256]: "SHA-256",
  [CoseAlg.ES384]: "SHA-384",
  [CoseAlg.ES512]: "SHA-512",
};

function badKey(message: string): never {
  throw new ClientError({ code: ClientErrorCode.BadKey }, message);
}

// DER OIDs (content bytes only) for the curves and id-ecPublicKey.
const OID_EC_PUBLIC_KEY = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const CURVE_OIDS: Readonly<Record<EcCurve, number[]>> = {
  "P-256": [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
  "P-384": [0x2b, 0x81, 0x04, 0x00, 0x22],
  "P-521": [0x2b, 0x81, 0x04, 0x00, 0x23],
};

function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

function derTlv(tag: number, content: Uint8Array): Uint8Array {
  return concatBytes([new Uint8Array([tag, ...derLength(content.byteLength)]), content]);
}

/** One DER element at `offset`: its tag, content start and end. */
function readTlv(der: Uint8Array, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset];
  let length = der[offset + 1];
  let start = offset + 2;
  if (tag === undefined || length === undefined) return badKey("truncated EC PRIVATE KEY");
  if (length >= 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] ?? 0);
    start += count;
  }
  if (start + length > der.byteLength) return badKey("truncated EC PRIVATE KEY");
  return { tag, start, end: start + length };
}

/** The curve named by a SEC 1 ECPrivateKey's [0] parameters. */
function sec1Curve(sec1: Uint8Array): EcCurve {
  const outer = readTlv(sec1, 0);
  if (outer.tag !== 0x30) return badKey("EC PRIVATE KEY is not a DER SEQUENCE");
  for (let at = outer.start; at < outer.end;) {
    const item = readTlv(sec1, at);
    if (item.tag === 0xa0) {
      const oid = readTlv(sec1, item.start);
      const bytes = Array.from(sec1.subarray(oid.start, oid.end)).join(",");
      for (const [curve, known] of Object.entries(CURVE_OIDS)) {
        if (known.join(",") === bytes) return curve as EcCurve;
      }
      return badKey("EC PRIVATE KEY is not on P-256, P-384 or P-521");
    }
    at = item.end;
  }
  return badKey("EC PRIVATE KEY does not name its curve");
}

/** PKCS#8 PrivateKeyInfo DER for a SEC 1 ECPrivateKey DER, and its curve. */
export function sec1ToPkcs8(sec1: Uint8Array): { pkcs8: Uint8Array; curve: EcCurve } {
  const curve = sec1Curve(sec1);
  const algorithm = derTlv(
    0x30,
    concatBytes([
      derTlv(0x06, new Uint8Array(OID_EC_PUBLIC_KEY)),
      derTlv(0x06, new Uint8Array(CURVE_OIDS[curve])),
    ]),
  );
  const version = new Uint8Array([0x02, 0x01, 0x00]);
  const pkcs8 = derTlv(0x30, concatBytes([version, algorithm, derTlv(0x04, sec1)]));
  return { pkcs8, curve };
}

/** PKCS#8 DER of a private key PEM, SEC 1 ("EC PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). */
function pkcs8Of(keyPem: string): Uint8Array {
  const [sec1] = pemBlocks(keyPem, "EC PRIVATE KEY");
  if (sec1 !== undefined) return sec1ToPkcs8(sec1).pkcs8;
  const [pkcs8] = pemBlocks(keyPem, "PRIVATE KEY");
  if (pkcs8 !== undefined) return pkcs8;
  return badKey('the key is not PEM "EC PRIVATE KEY" or "PRIVATE KEY"');
}

/**
 * A signer over WebCrypto from a member's PEM key and certificate. The key is imported
 * non-extractable: the page can sign with it but never read it back. Throws ClientError(BadKey)
 * for a certificate or key it cannot use (not EC P-256/384/521, or not the certificate's key).
 */
export async function webCryptoSigner(member: MemberPem): Promise<CoseSigner> {
  const cert = parseCertificate(member.certPem);
  if (cert === null) return badKey("the member certificate is not a PEM X.509 certificate");
  const curve = ecCurveOf(cert);
  if (curve === null) return badKey("the member certificate's key is not EC P-256/384/521");
  const subtle = globalThis.crypto.subtle;
  let key: CryptoKey;
  try {
    key = await subtle.importKey(
      "pkcs8",
      owned(pkcs8Of(member.keyPem)),
      { name: "ECDSA", namedCurve: curve },
      false,
      ["sign"],
    );
  } catch (err: unknown) {
    if (err instanceof ClientError) throw err;
    return badKey(`the private key cannot be imported for ${curve} ECDSA: ${String(err)}`);
  }
  const alg = CURVE_ALG[curve];
  const hash = ALG_HASH[alg];
  const sign = async (toBeSigned: Uint8Array) =>
    new Uint8Array(await subtle.sign({ name: "ECDSA", hash }, key, owned(toBeSigned)));
  // A key file that is not the certificate's would only be refused by the node (401); say so now.
  const probe = utf8("consortia: does this key belong to the certificate?");
  const certKey = await subtle.importKey(
    "spki",
    owned(spkiDer(cert)),
    { name: "ECDSA", namedCurve: curve },
    false,
    ["verify"],
  );
  if (
    !(await subtle.verify({ name: "ECDSA", hash }, certKey, owned(await sign(probe)), owned(probe)))
  ) {
    return badKey("the private key is not the member certificate's key");
  }
  return { memberId: await memberIdOf(cert), alg, sign };
}
