/**
 * A node's `quoteInfo` as `GET /gov/service/nodes` shows it (CCF 6's
 * src/node/gov/handlers/service_state.h): for virtual nodes the raw quote and the details of its
 * JSON report; for SEV-SNP nodes only the format and, when the node sent them, its UVM
 * endorsements (base64) and endorsed TCB (base64 of the hex's bytes), as CCF shows them.
 */
import { fromBase64, fromHex, fromUtf8, toBase64 } from "../base/bytes.js";
import { isTextDecodeError } from "../base/errors.js";
import type { QuoteInfo } from "./tables.js";

export type QuoteInfoView =
  | {
      format: "Insecure_Virtual";
      rawQuote: string;
      details: { measurement: string; reportData: string; hostData: string };
    }
  | { format: "AMD_SEV_SNP_v1"; uvmEndorsements?: string; endorsedTcb?: string }
  | { format: "OE_SGX_v1"; quote: string; endorsements: string };

/** The virtual report's fields; empty strings for a quote that is not such a report. */
function virtualDetails(quote: string): {
  measurement: string;
  reportData: string;
  hostData: string;
} {
  let report: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(fromUtf8(fromBase64(quote) ?? new Uint8Array()));
    if (typeof parsed === "object" && parsed !== null) report = parsed as Record<string, unknown>;
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
  }
  const text = (key: string) => (typeof report[key] === "string" ? (report[key] as string) : "");
  return {
    measurement: text("measurement"),
    reportData: text("report_data"),
    hostData: text("host_data"),
  };
}

export function quoteInfoView(info: QuoteInfo): QuoteInfoView {
  switch (info.format) {
    case "Insecure_Virtual":
      return { format: info.format, rawQuote: info.quote, details: virtualDetails(info.quote) };
    case "AMD_SEV_SNP_v1": {
      const tcb = info.endorsed_tcb === undefined ? null : fromHex(info.endorsed_tcb);
      return {
        format: info.format,
        ...(info.uvm_endorsements !== undefined ? { uvmEndorsements: info.uvm_endorsements } : {}),
        ...(tcb !== null ? { endorsedTcb: toBase64(tcb) } : {}),
      };
    }
    case "OE_SGX_v1":
      return { format: info.format, quote: info.quote, endorsements: info.endorsements };
  }
}
