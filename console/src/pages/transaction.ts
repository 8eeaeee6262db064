/**
 * The transaction page: a transaction's status (/app/tx), and once committed its receipt,
 * fetched through the console and verified in the page by @consortia/client against the
 * service certificate (the JSON receipt: leaf, Merkle path, the node's signature and its
 * endorsement; the COSE receipt: the service key's signature over the root), with both
 * receipts offered for download. #/tx?id=2.15 opens transaction 2.15.
 */
import { verifyCoseReceipt, verifyJsonReceipt } from "@consortia/client/browser";
import { getJson } from "../api.js";
import { client } from "../client.js";
import { badge, errorBox, facts, h, replace, section } from "../dom.js";
import type { Page } from "../page.js";

const TX_ID = /^\d{1,20}\.\d{1,20}$/;

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function download(name: string, bytes: Uint8Array<ArrayBuffer>, type: string): HTMLButtonElement {
  return h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: () => {
        const url = URL.createObjectURL(new Blob([bytes], { type }));
        const link = h("a", { href: url, download: name });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      },
    },
    `Download ${name}`,
  );
}

/** The outcome of one receipt check: a success line with the root, or the reason it failed. */
async function checked(
  id: string,
  kind: string,
  verify: () => Promise<{ root: Uint8Array }>,
): Promise<HTMLElement> {
  try {
    const { root } = await verify();
    return h("p", { class: "ok", id }, `${kind} receipt verified: root ${toHex(root)}.`);
  } catch (err: unknown) {
    return errorBox(err);
  }
}

async function receiptSection(txId: string, serviceCertPem: string): Promise<HTMLElement> {
  const json = await client.receipt(txId);
  const cose = await client.coseReceipt(txId);
  const checks = [
    await checked("receipt-json-verified", "JSON", () =>
      verifyJsonReceipt(json, { serviceCertPem }),
    ),
    await checked("receipt-cose-verified", "COSE", () =>
      verifyCoseReceipt(cose, { serviceCertPem }),
    ),
  ];
  const jsonBytes = new TextEncoder().encode(JSON.stringify(json, null, 2));
  return section(
    "receipt",
    "Receipt",
    ...checks,
    h(
      "div",
      { class: "actions" },
      download(`receipt-${txId}.json`, jsonBytes, "application/json"),
      download(`receipt-${txId}.cose`, new Uint8Array(cose), "application/cose"),
    ),
    h("details", {}, h("summary", {}, "JSON receipt"), h("pre", {}, JSON.stringify(json, null, 2))),
  );
}

async function show(view: HTMLElement, txId: string, signal: AbortSignal): Promise<void> {
  replace(view, h("p", {}, `Looking up ${txId}…`));
  try {
    const status = await client.txStatus(txId);
    const tone = status === "Committed" ? "good" : status === "Invalid" ? "bad" : "warn";
    const parts: HTMLElement[] = [
      section(
        "status",
        "Status",
        facts([
          ["Transaction", txId],
          ["Status", badge(status, tone)],
          [
            "In the ledger",
            h("a", { href: `#/ledger?seqno=${txId.split(".")[1]}` }, `seqno ${txId.split(".")[1]}`),
          ],
        ]),
      ),
    ];
    replace(view, ...parts);
    if (status !== "Committed") return;
    replace(view, ...parts, h("p", {}, "Fetching and verifying the receipt…"));
    const network = await getJson<{ service_certificate: string }>("/node/network", signal);
    const receipt = await receiptSection(txId, network.service_certificate);
    if (!signal.aborted) replace(view, ...parts, receipt);
  } catch (err: unknown) {
    if (!signal.aborted) replace(view, errorBox(err));
  }
}

export const transactionPage: Page = {
  title: "Transaction",
  async render(container, params, signal) {
    const id = params.get("id") ?? "";
    const view = h("div", { "aria-live": "polite" });
    const submit = (event: Event) => {
      event.preventDefault();
      const value = String(new FormData(event.target as HTMLFormElement).get("id")).trim();
      location.hash = `#/tx?id=${encodeURIComponent(value)}`;
    };
    container.append(
      h(
        "form",
        { class: "inline", onsubmit: submit, "aria-label": "Look up a transaction" },
        h("label", { for: "tx-id" }, "Transaction id (view.seqno)"),
        h("input", {
          id: "tx-id",
          name: "id",
          value: id,
          required: true,
          pattern: "\\d+\\.\\d+",
          placeholder: "2.15",
        }),
        h("button", { type: "submit" }, "Look up"),
      ),
      view,
    );
    if (id === "") return;
    if (!TX_ID.test(id)) {
      replace(view, errorBox(`"${id}" is not a transaction id (view.seqno, e.g. 2.15).`));
      return;
    }
    await show(view, id, signal);
  },
};
