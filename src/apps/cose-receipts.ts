/**
 * The HTTP answer that carries a COSE receipt (ccf-compatibility.md §3.2, §3.5, §6.5), shared by
 * the logging app's `cose_receipt` endpoints and the COSE form of `/app/receipt`: the receipt's
 * bytes as `application/cose`, or CCF's 404s when the covering signature transaction has no COSE
 * signature or the transaction has no Merkle proof (a signature transaction's own receipt).
 * Encoding is src/ledger/cose-receipt.ts's; this module only shapes the answer.
 */
import { HttpError, HttpErrorCode } from "../http/errors.js";
import type { RpcResponse } from "../http/router.js";
import { CoseReceiptError, coseProofOfReceipt, encodeCoseReceipt } from "../ledger/cose-receipt.js";
import type { Receipt } from "../ledger/receipt.js";

/** The media type of COSE messages (RFC 9052), as CCF answers COSE receipts. */
export const COSE_CONTENT_TYPE = "application/cose";
const JSON_CONTENT_TYPE = "application/json";

/** CCF's messages, word for word (its logging sample). */
export const NO_COSE_SIGNATURE = "No COSE signature available for this transaction";
export const NO_MERKLE_PROOF = "No merkle proof available for this transaction";

/**
 * The COSE receipt of the transaction `receipt` is for, from `coseSignature`: the COSE signature
 * of the signature transaction that covers it. 404 ResourceNotFound as CCF when there is no COSE
 * signature, or no proof (a signature transaction); 500 when the stored signature is malformed.
 */
export function coseReceiptResponse(
  receipt: Receipt,
  coseSignature: Uint8Array | null,
): RpcResponse {
  if (coseSignature === null) {
    throw new HttpError(HttpErrorCode.ResourceNotFound, NO_COSE_SIGNATURE);
  }
  const proof = coseProofOfReceipt(receipt);
  if (proof === null) throw new HttpError(HttpErrorCode.ResourceNotFound, NO_MERKLE_PROOF);
  let body: Uint8Array;
  try {
    body = encodeCoseReceipt(coseSignature, proof);
  } catch (err: unknown) {
    if (!(err instanceof CoseReceiptError)) throw err;
    throw new HttpError(
      HttpErrorCode.InternalError,
      `Cannot build the COSE receipt: ${err.message}`,
    );
  }
  return { status: 200, headers: { "content-type": COSE_CONTENT_TYPE }, body };
}

/**
 * Whether an Accept header asks for COSE rather than JSON: application/cose is listed, and
 * before application/json if both are (quality values are not weighed). Absent or wildcard
 * headers keep CCF's JSON.
 */
export function prefersCose(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  for (const range of accept.split(",")) {
    const mediaType = (range.split(";")[0] ?? "").trim().toLowerCase();
    if (mediaType === COSE_CONTENT_TYPE) return true;
    if (mediaType === JSON_CONTENT_TYPE) return false;
  }
  return false;
}
