/**
 * Certificate facts the client checks, through @peculiar/x509 over WebCrypto (browser-safe):
 * the public key (SPKI DER and WebCrypto algorithm), whether one certificate issued another,
 * and the identifiers CCF derives from certificates (member id, node id, COSE kid).
 */
import "reflect-metadata";
import { X509Certificate } from "@peculiar/x509";
import { owned, pemBlocks, sha256, toHex } from "./bytes.js";

export type EcCurve = "P-256" | "P-384" | "P-521";

/** The parsed certificate of a PEM (its first CERTIFICATE block), or null. */
export function parseCertificate(pem: string): X509Certificate | null {
  const [der] = pemBlocks(pem, "CERTIFICATE");
  if (der === undefined) return null;
  try {
    return new X509Certificate(owned(der));
  } catch (err: unknown) {
    // @peculiar/x509 throws plain Errors for DER it cannot parse: not a certificate.
    if (err instanceof Error) return null;
    throw err;
  }
}

export function certificateDer(cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.rawData);
}

export function spkiDer(cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.publicKey.rawData);
}

/** The EC curve of the certificate's key, or null for any other key. */
export function ecCurveOf(cert: X509Certificate): EcCurve | null {
  const algorithm = cert.publicKey.algorithm as { name?: string; namedCurve?: string };
  const curve = algorithm.namedCurve;
  if (algorithm.name !== "ECDSA" && algorithm.name !== "ECDH") return null;
  return curve === "P-256" || curve === "P-384" || curve === "P-521" ? curve : null;
}

/** Whether `issuer` signed `child` (issuer name and signature; validity dates are not checked). */
export async function isIssuedBy(
  child: X509Certificate,
  issuer: X509Certificate,
): Promise<boolean> {
  if (child.issuer !== issuer.subject) return false;
  try {
    return await child.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch (err: unknown) {
    // An issuer key the library cannot use (RSA with odd parameters, unknown curve): not issued.
    if (err instanceof Error) return false;
    throw err;
  }
}

/** CCF's member (and user) id: the hex SHA-256 of the certificate's DER. */
export async function memberIdOf(cert: X509Certificate): Promise<string> {
  return toHex(await sha256(certificateDer(cert)));
}

/** CCF's node id, and the COSE kid of a service key: the hex SHA-256 of the SPKI DER. */
export async function keyIdOf(cert: X509Certificate): Promise<string> {
  return toHex(await sha256(spkiDer(cert)));
}
