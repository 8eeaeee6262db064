/**
 * The logging app's COSE endpoints (ccf-compatibility.md §3.5, §6.5), as CCF's C++ sample
 * (samples/apps/logging/logging.cpp) serves them for the transaction named in the
 * x-ms-ccf-transaction-id header, from the historical state the node loads:
 *
 * - GET /log/public/cose_receipt: the transaction's COSE receipt as application/cose, whatever
 *   the transaction wrote (the sample reads no `id`); CCF's 404s as apps/cose-receipts.ts.
 * - GET /log/private/cose_receipt: the same. The C++ sample has none; issue #11 asks for it (§11).
 * - GET /log/public/cose_signature: `{"cose_signature": <base64>}`, the COSE signature of the
 *   signature transaction covering the transaction (its own, for a signature transaction).
 *
 * Kept apart from logging.ts, whose records these endpoints never read. A receipt that is no
 * longer held in memory is 404 "Receipt is no longer available.", as historical_receipt.
 */
import { toBase64 } from "../base/bytes.js";
import { HttpError, HttpErrorCode } from "../http/errors.js";
import type { RpcResponse } from "../http/router.js";
import type { Receipt } from "../ledger/receipt.js";
import type { AppEndpoint, AuthPolicy, EndpointContext, HistoricalState } from "./app.js";
import { NO_COSE_SIGNATURE, coseReceiptResponse } from "./cose-receipts.js";

/** The historical state of an endpoint in "historical" mode (the node always provides it). */
function historicalState(context: EndpointContext): HistoricalState {
  const state = context.historical;
  if (state === undefined) throw new HttpError(HttpErrorCode.InternalError, "No historical state.");
  return state;
}

/** The receipt of the historical transaction; 404 once it is no longer held in memory. */
function heldReceipt(state: HistoricalState): Receipt {
  if (state.receipt === null) {
    throw new HttpError(HttpErrorCode.ResourceNotFound, "Receipt is no longer available.");
  }
  return state.receipt;
}

function coseReceipt(context: EndpointContext): RpcResponse {
  const state = historicalState(context);
  return coseReceiptResponse(heldReceipt(state), state.coseSignature());
}

function coseSignature(context: EndpointContext): RpcResponse {
  const state = historicalState(context);
  heldReceipt(state);
  const signature = state.coseSignature();
  if (signature === null) throw new HttpError(HttpErrorCode.ResourceNotFound, NO_COSE_SIGNATURE);
  return { status: 200, body: { cose_signature: toBase64(signature) } };
}

/** The three endpoints, authenticated by `authPolicies` (the app's user policies). */
export function loggingCoseEndpoints(authPolicies: readonly AuthPolicy[]): AppEndpoint[] {
  const historical = (path: string, summary: string, handler: AppEndpoint["handler"]) => {
    const mode = "historical";
    return { method: "GET", path, authPolicies, mode, summary, handler } as const;
  };
  const receiptSummary = "The COSE receipt of the transaction in x-ms-ccf-transaction-id";
  return [
    historical("/log/public/cose_receipt", receiptSummary, coseReceipt),
    historical("/log/private/cose_receipt", receiptSummary, coseReceipt),
    historical(
      "/log/public/cose_signature",
      "The COSE signature of the signature transaction covering x-ms-ccf-transaction-id",
      coseSignature,
    ),
  ];
}
