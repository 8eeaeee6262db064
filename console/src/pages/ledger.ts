/**
 * The ledger explorer: entries by seqno, read by the console server from the ledger files
 * (GET /api/ledger/entries; `consortia ledger show --json` records), with every public map's
 * writes and removals decoded (text, pretty-printed when it is JSON, else hex), the size of the
 * encrypted private domain, and signature transactions with the node, root and commit they
 * sign. #/ledger?seqno=N opens at seqno N; "Signatures" lists only signature transactions.
 */
import { getJson } from "../api.js";
import { badge, errorBox, facts, h, replace, section, shortId, table, type Child } from "../dom.js";
import type { Page } from "../page.js";

type Rendered = string | { hex: string };

interface LedgerRecord {
  seqno: number;
  view: number;
  size: number;
  file: string;
  offset: number;
  public: Record<string, { set: { key: Rendered; value: Rendered }[]; del: Rendered[] }>;
  privateBytes: number;
  signature?: { node: string; root: string; txId: string; commit: string } | { malformed: string };
}

interface LedgerSummary {
  dir: string;
  lastSeqno: number;
  files: { name: string; firstSeqno: number; lastSeqno: number | null; committed: boolean }[];
}

const PAGE_ENTRIES = 20;

/** Values longer than this are folded into a <details>. */
const FOLD_CHARS = 240;

/** A key or value: hex when binary, else its text, pretty-printed when it is JSON. */
function shown(value: Rendered): Child {
  if (typeof value !== "string") {
    const code = h("code", { class: "hex" }, `0x${value.hex}`);
    if (value.hex.length <= FOLD_CHARS) return code;
    return h("details", {}, h("summary", {}, `${value.hex.length / 2} bytes (hex)`), code);
  }
  let text = value;
  try {
    const parsed: unknown = JSON.parse(value);
    text = typeof parsed === "string" ? parsed : JSON.stringify(parsed, null, 2);
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  const body = text.includes("\n") || text.length > 60 ? h("pre", {}, text) : h("code", {}, text);
  if (text.length <= FOLD_CHARS) return body;
  return h(
    "details",
    {},
    h("summary", {}, `${text.slice(0, 60)}… (${text.length} characters)`),
    body,
  );
}

function signatureFacts(sig: NonNullable<LedgerRecord["signature"]>): HTMLElement {
  if ("malformed" in sig)
    return h("p", { class: "error" }, `Malformed signature: ${sig.malformed}`);
  return facts([
    ["Signed by node", shortId(sig.node)],
    ["Merkle root", h("code", { class: "hex" }, sig.root)],
    ["Commit at signing", sig.commit],
  ]);
}

function entryArticle(e: LedgerRecord): HTMLElement {
  const txId = `${e.view}.${e.seqno}`;
  const maps = Object.entries(e.public).map(([name, writes]) =>
    h(
      "div",
      { class: "scroll" },
      table(
        name,
        ["Key", "Value"],
        [
          ...writes.set.map((w) => [shown(w.key), shown(w.value)]),
          ...writes.del.map((k) => [shown(k), h("em", {}, "removed")]),
        ],
      ),
    ),
  );
  return h(
    "article",
    { class: "entry", "aria-labelledby": `entry-${e.seqno}`, "data-seqno": e.seqno },
    h(
      "h3",
      { id: `entry-${e.seqno}` },
      `Seqno ${e.seqno} `,
      e.signature === undefined ? null : badge("signature", "good"),
    ),
    facts([
      ["Transaction", h("a", { href: `#/tx?id=${txId}` }, txId)],
      ["Size", `${e.size} bytes (${e.file} at ${e.offset})`],
      ["Private domain", `${e.privateBytes} bytes, encrypted`],
    ]),
    e.signature === undefined ? null : signatureFacts(e.signature),
    ...maps,
  );
}

function form(seqno: number, signatures: boolean): HTMLFormElement {
  const go = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.target as HTMLFormElement);
    const sigs = data.get("signatures") === "on" ? "&signatures=true" : "";
    location.hash = `#/ledger?seqno=${String(data.get("seqno"))}${sigs}`;
  };
  return h(
    "form",
    { class: "inline", onsubmit: go, "aria-label": "Go to a seqno" },
    h("label", { for: "ledger-seqno" }, "Seqno"),
    h("input", {
      id: "ledger-seqno",
      name: "seqno",
      type: "number",
      min: 1,
      value: seqno,
      required: true,
    }),
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "signatures", checked: signatures }),
      " signatures only",
    ),
    h("button", { type: "submit" }, "Show"),
  );
}

export const ledgerPage: Page = {
  title: "Ledger",
  async render(container, params, signal) {
    const seqno = Math.max(1, Number(params.get("seqno") ?? "1") || 1);
    const signatures = params.get("signatures") === "true";
    const view = h("div", { "aria-live": "polite" }, h("p", {}, "Loading…"));
    container.append(form(seqno, signatures), view);
    try {
      const query = `from=${seqno}&count=${PAGE_ENTRIES}${signatures ? "&signatures=true" : ""}`;
      const [summary, page] = await Promise.all([
        getJson<LedgerSummary>("/ledger", signal),
        getJson<{ entries: LedgerRecord[]; next: number | null }>(
          `/ledger/entries?${query}`,
          signal,
        ),
      ]);
      const sigs = signatures ? "&signatures=true" : "";
      const prev = Math.max(1, seqno - PAGE_ENTRIES);
      replace(
        view,
        h(
          "p",
          { class: "muted" },
          `${summary.files.length} ledger files in ${summary.dir}; last seqno ${summary.lastSeqno}.`,
        ),
        page.entries.length === 0 ? h("p", {}, `No entries from seqno ${seqno}.`) : null,
        section("entries", `Entries from seqno ${seqno}`, ...page.entries.map(entryArticle)),
        h(
          "nav",
          { "aria-label": "Ledger pages", class: "pager" },
          seqno > 1 ? h("a", { href: `#/ledger?seqno=${prev}${sigs}` }, "Previous") : null,
          page.next === null
            ? null
            : h("a", { href: `#/ledger?seqno=${page.next}${sigs}` }, "Next"),
        ),
      );
    } catch (err: unknown) {
      if (!signal.aborted) replace(view, errorBox(err));
    }
  },
};
