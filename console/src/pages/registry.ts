/**
 * The enclave registry page (docs/registry.md), when the registry app is deployed: chaincodes
 * (found in the ledger's writes to public:registry.chaincodes, or looked up by id), each with
 * its policy and enclaves, and for an enclave a verification run in the page: the attested data
 * hashes to the evidence's report_data, the measurement is the policy's version, the platform
 * is allowed, and the registration record is in the ledger (its receipt, verified against the
 * service certificate, proves the claims digest SHA-256(record)). Queries go through the
 * console, which presents the workspace's user certificate to the app.
 */
import { verifyJsonReceipt } from "@consortia/client/browser";
import { getJson, gov } from "../api.js";
import { client } from "../client.js";
import { badge, errorBox, facts, h, replace, section, table, type Child } from "../dom.js";
import type { Page } from "../page.js";

const CHAINCODES = "public:registry.chaincodes";
const REGISTRY = "/app/registry/chaincodes";

interface Policy {
  chaincode_id: string;
  version: string;
  sequence: number;
  platforms: string[];
  channel_id?: string;
}
interface EnclaveRow {
  enclave_id: string;
  status: string;
  transaction_id: string;
  peer_endpoint: string;
}
interface Enclave extends EnclaveRow {
  registration: string;
  reason?: string;
  verified: { format: string; measurement: string; report_data: string };
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const base64Bytes = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

/** Chaincode ids whose policy the ledger shows written and not removed since. */
async function chaincodesInLedger(signal: AbortSignal): Promise<string[]> {
  const ids = new Set<string>();
  let from: number | null = 1;
  for (let pages = 0; from !== null && pages < 20; pages++) {
    const q = `from=${from}&count=100&table=${encodeURIComponent(CHAINCODES)}`;
    const page: {
      entries: { public: Record<string, { set: { key: unknown }[]; del: unknown[] }> }[];
      next: number | null;
    } = await getJson(`/ledger/entries?${q}`, signal);
    for (const entry of page.entries) {
      const writes = entry.public[CHAINCODES];
      for (const w of writes?.set ?? []) if (typeof w.key === "string") ids.add(w.key);
      for (const k of writes?.del ?? []) if (typeof k === "string") ids.delete(k);
    }
    from = page.next;
  }
  return [...ids];
}

type Check = [string, boolean, string];

async function verifyEnclave(policy: Policy, e: Enclave, serviceCertPem: string): Promise<Check[]> {
  const record = base64Bytes(e.registration);
  const parsed = JSON.parse(new TextDecoder().decode(record)) as { attested_data: string };
  const bound = hex(await sha256(base64Bytes(parsed.attested_data)));
  const reportData = e.verified.report_data.toLowerCase().slice(0, 64);
  const checks: Check[] = [
    ["report_data binds the attested data", bound === reportData, `SHA-256 ${bound}`],
    [
      "measurement is the policy's version",
      e.verified.measurement.toLowerCase() === policy.version.toLowerCase(),
      e.verified.measurement,
    ],
    ["platform is allowed", policy.platforms.includes(e.verified.format), e.verified.format],
  ];
  try {
    const receipt = await client.receipt(e.transaction_id);
    await verifyJsonReceipt(receipt, { serviceCertPem, claimsDigest: await sha256(record) });
    checks.push([
      "registration is in the ledger",
      true,
      `receipt of ${e.transaction_id} proves SHA-256(record)`,
    ]);
  } catch (err: unknown) {
    checks.push([
      "registration is in the ledger",
      false,
      err instanceof Error ? err.message : String(err),
    ]);
  }
  return checks;
}

function checksList(checks: readonly Check[]): HTMLElement {
  return h(
    "ul",
    { class: "checks", "aria-label": "Verification" },
    ...checks.map(([what, ok, detail]) =>
      h("li", { class: ok ? "ok" : "error" }, `${ok ? "✓" : "✗"} ${what}: `, h("code", {}, detail)),
    ),
  );
}

async function chaincodeView(id: string, signal: AbortSignal): Promise<HTMLElement> {
  const base = `${REGISTRY}/${encodeURIComponent(id)}`;
  const [policy, { enclaves }, network] = await Promise.all([
    getJson<Policy>(base, signal),
    getJson<{ enclaves: EnclaveRow[] }>(`${base}/enclaves`, signal),
    getJson<{ service_certificate: string }>("/node/network", signal),
  ]);
  const out = h("div", { role: "status", "aria-live": "polite" });
  const verify = (row: EnclaveRow) => async () => {
    replace(out, h("p", {}, `Verifying ${row.enclave_id.slice(0, 12)}…`));
    try {
      const e = await getJson<Enclave>(`${base}/enclaves/${row.enclave_id}`, signal);
      replace(
        out,
        h("h3", {}, `Enclave ${e.enclave_id.slice(0, 12)}…`),
        checksList(await verifyEnclave(policy, e, network.service_certificate)),
      );
    } catch (err: unknown) {
      replace(out, errorBox(err));
    }
  };
  const rows: Child[][] = enclaves.map((row) => [
    h("code", { title: row.enclave_id }, `${row.enclave_id.slice(0, 12)}…`),
    badge(row.status, row.status === "Active" ? "good" : "bad"),
    h("a", { href: `#/tx?id=${row.transaction_id}` }, row.transaction_id),
    row.peer_endpoint,
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        onclick: () => void verify(row)(),
        "aria-label": `Verify enclave ${row.enclave_id.slice(0, 12)}`,
      },
      "Verify",
    ),
  ]);
  return section(
    "chaincode",
    `Chaincode ${id}`,
    facts([
      ["Version (measurement)", h("code", {}, policy.version)],
      ["Sequence", String(policy.sequence)],
      ["Platforms", policy.platforms.join(", ")],
      ["Channel", policy.channel_id ?? "any"],
    ]),
    rows.length === 0
      ? h("p", {}, "No enclave is registered.")
      : h(
          "div",
          { class: "scroll" },
          table("Enclaves", ["Enclave", "Status", "Registered in", "Peer endpoint", ""], rows),
        ),
    out,
  );
}

export const registryPage: Page = {
  title: "Enclave registry",
  async render(container, params, signal) {
    const view = h("div", {}, h("p", {}, "Loading…"));
    container.append(view);
    try {
      const app = await getJson<{ endpoints: Record<string, unknown> }>(
        gov("/service/javascript-app"),
        signal,
      );
      if (!Object.keys(app.endpoints).some((path) => path.startsWith("/registry/"))) {
        replace(view, h("p", {}, "The enclave registry app is not deployed on this service."));
        return;
      }
      const chosen = params.get("chaincode");
      const known = await chaincodesInLedger(signal).catch(() => [] as string[]);
      const go = (event: Event) => {
        event.preventDefault();
        const id = String(new FormData(event.target as HTMLFormElement).get("chaincode")).trim();
        location.hash = `#/registry?chaincode=${encodeURIComponent(id)}`;
      };
      replace(
        view,
        h(
          "form",
          { class: "inline", onsubmit: go, "aria-label": "Look up a chaincode" },
          h("label", { for: "chaincode" }, "Chaincode id"),
          h("input", {
            id: "chaincode",
            name: "chaincode",
            value: chosen ?? "",
            required: true,
            pattern: "[A-Za-z0-9._\\-]{1,128}",
          }),
          h("button", { type: "submit" }, "Show"),
        ),
        section(
          "chaincodes",
          "Chaincodes in the ledger",
          known.length === 0
            ? h("p", { class: "muted" }, "None found in the ledger files.")
            : h(
                "ul",
                {},
                ...known.map((id) =>
                  h(
                    "li",
                    {},
                    h("a", { href: `#/registry?chaincode=${encodeURIComponent(id)}` }, id),
                  ),
                ),
              ),
        ),
        chosen === null ? null : await chaincodeView(chosen, signal),
      );
    } catch (err: unknown) {
      if (!signal.aborted) replace(view, errorBox(err));
    }
  },
};
