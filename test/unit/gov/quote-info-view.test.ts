// A node's quoteInfo in GET /gov/service/nodes (src/gov/quote-info-view.ts), per format as CCF 6
// shows it: the virtual report's details, and for SEV-SNP only the UVM endorsements and the
// endorsed TCB (base64 of the hex's bytes) when the node sent them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { makeVirtualQuote } from "../../../src/attestation/virtual.js";
import { quoteInfoView } from "../../../src/gov/quote-info-view.js";

test("a virtual quote shows its raw quote and its report's fields", () => {
  const key = new Uint8Array([1, 2, 3]);
  const quote = makeVirtualQuote(key, "cd".repeat(32));
  const view = quoteInfoView({ format: "Insecure_Virtual", quote: quote.quote, endorsements: "" });
  assert.deepEqual(view, {
    format: "Insecure_Virtual",
    rawQuote: quote.quote,
    details: {
      measurement: "Insecure hard-coded virtual measurement v1",
      reportData: "A5BYxvLAy0ksUzsKTRTvd8wPeKvMztUofYShogEc+4E=",
      hostData: "cd".repeat(32),
    },
  });
  const garbage = quoteInfoView({ format: "Insecure_Virtual", quote: "%%%", endorsements: "" });
  assert.deepEqual(garbage, {
    format: "Insecure_Virtual",
    rawQuote: "%%%",
    details: { measurement: "", reportData: "", hostData: "" },
  });
});

test("an SEV-SNP quote shows only its UVM endorsements and endorsed TCB, as CCF does", () => {
  const base = { format: "AMD_SEV_SNP_v1" as const, quote: "AAAA", endorsements: "BBBB" };
  assert.deepEqual(quoteInfoView(base), { format: "AMD_SEV_SNP_v1" });
  assert.deepEqual(
    quoteInfoView({ ...base, uvm_endorsements: "Q09TRQ==", endorsed_tcb: "db18000000000004" }),
    { format: "AMD_SEV_SNP_v1", uvmEndorsements: "Q09TRQ==", endorsedTcb: "2xgAAAAAAAQ=" },
  );
});
