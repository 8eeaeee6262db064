/**
 * The COSE signature of a signature transaction, as CCF 6 writes it into
 * `public:ccf.internal.cose_signatures` (ccf-compatibility.md §6.4): besides the node's ECDSA
 * signature in `public:ccf.internal.signatures`, the SERVICE key signs the same Merkle root as
 * a COSE_Sign1 with a detached payload (the 32-byte root), tagged 18, an empty unprotected
 * header, and this protected header, in this order (CCF's, kept byte for byte):
 *
 *   1 (alg)        -7 / -35 / -36, from the service key's curve
 *   4 (kid)        bstr: the hex SHA-256 of the service public key's SPKI DER, as ASCII
 *   395 (vds)      2 (CCF_LEDGER_SHA256)
 *   15 (CWT)       {6 (iat): seconds since the epoch, 1 (iss): issuer, 2 (sub): subject}
 *   "ccf.v1"       {"txid": "<view>.<seqno>" of the signature transaction}
 *
 * The map's value is the JSON string of the COSE_Sign1's base64, under the singleton key.
 * Issuer and subject are CCF's `cose_signatures` configuration (empty strings unless set).
 * COSE receipts are built on this signature, and CCF's ledger validator checks it against the
 * service certificate in service.info.
 *
 * Pure: signing is the caller's (it holds the service key; crypto/cose.ts signSign1Detached).
 */
import { equalBytes, fromBase64, fromUtf8, toBase64, utf8 } from "../base/bytes.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import type { TxId } from "../base/ids.js";
import { CertError, publicKeyOfCert } from "../crypto/certs.js";
import {
  CoseError,
  decodeSign1,
  verifySign1,
  COSE_HEADER_KID,
  type CoseLabel,
  type Sign1Message,
} from "../crypto/cose.js";
import { publicKeyId } from "../crypto/identity.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../kv/service-tables.js";
import type { MapWrites } from "../kv/write-set.js";

/** CCF's `cose_signatures` configuration: the CWT issuer and subject of ledger signatures. */
export interface CoseSignaturesConfig {
  readonly issuer: string;
  readonly subject: string;
}

/** CCF's defaults (COSESignaturesConfig): both empty. */
export const DEFAULT_COSE_SIGNATURES_CONFIG: CoseSignaturesConfig = { issuer: "", subject: "" };

export const COSE_HEADER_CWT = 15;
export const CWT_ISS = 1;
export const CWT_SUB = 2;
export const CWT_IAT = 6;
export const COSE_HEADER_VDS = 395;
/** vds value of CCF's ledger tree (COSE receipts' CCF_LEDGER_SHA256). */
export const VDS_CCF_LEDGER_SHA256 = 2;
export const CCF_HEADER = "ccf.v1";
export const CCF_HEADER_TXID = "txid";

export enum CoseSignatureErrorCode {
  /** The map's value is not a JSON string of base64, or its COSE_Sign1 cannot be parsed. */
  Malformed = "Malformed",
}
export type CoseSignatureErrorType = { code: CoseSignatureErrorCode };
export class CoseSignatureError extends CcfError<CoseSignatureErrorType> {}

function malformed(why: string): never {
  throw new CoseSignatureError(
    { code: CoseSignatureErrorCode.Malformed },
    `COSE signature: ${why}`,
  );
}

export interface RootSignatureHeaderInput {
  /** publicKeyId of the service key. */
  readonly keyId: string;
  readonly txId: TxId;
  /** Wall-clock seconds since the epoch, read once by the signing node. */
  readonly issuedAtSeconds: number;
  readonly config: CoseSignaturesConfig;
}

/** The protected header after alg, in CCF's order (signSign1Detached puts alg first). */
export function rootSignatureHeader(input: RootSignatureHeaderInput): [CoseLabel, unknown][] {
  const cwt = new Map<number, unknown>([
    [CWT_IAT, input.issuedAtSeconds],
    [CWT_ISS, input.config.issuer],
    [CWT_SUB, input.config.subject],
  ]);
  const ccf = new Map([[CCF_HEADER_TXID, `${input.txId.view}.${input.txId.seqno}`]]);
  return [
    [COSE_HEADER_KID, utf8(input.keyId)],
    [COSE_HEADER_VDS, VDS_CCF_LEDGER_SHA256],
    [COSE_HEADER_CWT, cwt],
    [CCF_HEADER, ccf],
  ];
}

/** The map value: the JSON string of the COSE_Sign1's base64, as CCF serialises a byte vector. */
export function encodeCoseSignatureValue(sign1: Uint8Array): Uint8Array {
  return utf8(JSON.stringify(toBase64(sign1)));
}

/** The COSE_Sign1 bytes of a map value; throws CoseSignatureError. */
export function decodeCoseSignatureValue(value: Uint8Array): Uint8Array {
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(value));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    malformed("the value is not JSON");
  }
  const bytes = typeof json === "string" ? fromBase64(json) : null;
  if (bytes === null) malformed("the value is not a JSON string of base64");
  return bytes;
}

/**
 * The COSE_Sign1 a transaction writes to the cose_signatures map, or null when it writes none.
 * Throws CoseSignatureError for a removal or a malformed value.
 */
export function findCoseSignature(publicMaps: readonly MapWrites[]): Uint8Array | null {
  const map = publicMaps.find((m) => m.name === SERVICE_TABLES.coseSignatures);
  if (map === undefined) return null;
  const write = map.writes.find((w) => equalBytes(w.key, SINGLETON_KEY_BYTES));
  if (write === undefined || write.value === null) malformed("the map holds no value");
  return decodeCoseSignatureValue(write.value);
}

/** The COSE_Sign1 with the root as its detached payload; throws CoseSignatureError. */
function decodeRootSignature(sign1: Uint8Array, root: Uint8Array): Sign1Message {
  try {
    return decodeSign1(sign1, { requireTag: true, detachedPayload: root });
  } catch (err: unknown) {
    if (!(err instanceof CoseError)) throw err;
    return malformed(err.message);
  }
}

/** Issuer and subject of a COSE signature (a recovered service keeps its predecessor's). */
export function coseSignaturesConfigOf(sign1: Uint8Array): CoseSignaturesConfig {
  const message = decodeRootSignature(sign1, new Uint8Array(0));
  const cwt = message.protectedHeader.get(COSE_HEADER_CWT);
  const issuer = cwt instanceof Map ? (cwt.get(CWT_ISS) as unknown) : undefined;
  const subject = cwt instanceof Map ? (cwt.get(CWT_SUB) as unknown) : undefined;
  if (typeof issuer !== "string" || typeof subject !== "string") {
    malformed("its CWT claims hold no issuer and subject strings");
  }
  return { issuer, subject };
}

/** What a COSE signature must be: over `root`, for `txId`, by the service of `serviceCertPem`. */
export interface CoseSignatureExpectation {
  readonly serviceCertPem: string;
  readonly root: Uint8Array;
  readonly txId: TxId;
}

/**
 * Checks COSE signatures against service certificates, remembering each certificate's key and
 * key id (a ledger has one service certificate per recovery, and many signatures under each).
 */
export class CoseSignatureChecker {
  private readonly keys = new Map<
    string,
    { key: ReturnType<typeof publicKeyOfCert>; id: string }
  >();

  /** What is wrong with `sign1`, or null when it verifies as `expect` says. */
  check(sign1: Uint8Array, expect: CoseSignatureExpectation): string | null {
    let message: Sign1Message;
    try {
      message = decodeRootSignature(sign1, expect.root);
    } catch (err: unknown) {
      if (!(err instanceof CoseSignatureError)) throw err;
      return err.message;
    }
    const service = this.serviceKey(expect.serviceCertPem);
    if (service === null) return "the service certificate is not a valid certificate";
    const problem = headerProblem(message.protectedHeader, service.id, expect.txId);
    if (problem !== null) return `COSE signature: ${problem}`;
    const verdict = verifySign1(message, service.key);
    if (verdict.kind === "invalid") {
      return `COSE signature by the service does not verify over the root (${verdict.message})`;
    }
    return null;
  }

  private serviceKey(
    certPem: string,
  ): { key: ReturnType<typeof publicKeyOfCert>; id: string } | null {
    const known = this.keys.get(certPem);
    if (known !== undefined) return known;
    try {
      const key = publicKeyOfCert(certPem);
      const entry = { key, id: publicKeyId(key) };
      this.keys.set(certPem, entry);
      return entry;
    } catch (err: unknown) {
      if (!(err instanceof CertError)) throw err;
      return null;
    }
  }
}

/** What is wrong with the protected header of a root signature, or null. */
function headerProblem(
  header: ReadonlyMap<CoseLabel, unknown>,
  keyId: string,
  txId: TxId,
): string | null {
  const kid = header.get(COSE_HEADER_KID);
  if (!(kid instanceof Uint8Array) || !equalBytes(kid, utf8(keyId))) {
    return "kid is not the hex SHA-256 of the service key";
  }
  if (header.get(COSE_HEADER_VDS) !== VDS_CCF_LEDGER_SHA256) return "vds (395) is not 2";
  const ccf = header.get(CCF_HEADER);
  const txid = ccf instanceof Map ? (ccf.get(CCF_HEADER_TXID) as unknown) : undefined;
  if (txid !== `${txId.view}.${txId.seqno}`) {
    return `ccf.v1 txid ${String(txid)} is not the signature's ${txId.view}.${txId.seqno}`;
  }
  return null;
}
