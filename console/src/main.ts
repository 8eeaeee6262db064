/**
 * The console's single-page app: one page per hash route (#/network, #/service, #/proposals,
 * #/ledger, #/tx, #/registry), each in pages/. A route change aborts the previous page (its
 * refresh timers and calls), renders the new one into <main>, marks its link as current, sets
 * the document title and moves focus to the page heading, so keyboard and screen-reader users
 * land on the new content.
 */
import { h, replace } from "./dom.js";
import type { Page } from "./page.js";
import { networkPage } from "./pages/network.js";
import { servicePage } from "./pages/service.js";
import { ledgerPage } from "./pages/ledger.js";
import { proposalsPage } from "./pages/proposals.js";
import { transactionPage } from "./pages/transaction.js";
import { registryPage } from "./pages/registry.js";

const PAGES: Readonly<Record<string, Page>> = {
  network: networkPage,
  service: servicePage,
  proposals: proposalsPage,
  ledger: ledgerPage,
  tx: transactionPage,
  registry: registryPage,
};

let current: AbortController | null = null;

function route(): void {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name = "", query = ""] = hash.split("?", 2);
  const page = PAGES[name] ?? PAGES["network"]!;
  const key = PAGES[name] === undefined ? "network" : name;
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const main = document.getElementById("main")!;
  const heading = h("h1", { tabindex: "-1" }, page.title);
  const body = h("div", { class: "page" });
  replace(main, heading, body);
  document.title = `${page.title} · Consortia console`;
  for (const link of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    if (link.getAttribute("href") === `#/${key}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  heading.focus();
  void Promise.resolve(page.render(body, new URLSearchParams(query), controller.signal));
}

window.addEventListener("hashchange", route);
route();
