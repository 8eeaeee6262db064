/**
 * The proposals page: every proposal with its proposer, state, ballots and votes, its actions
 * on demand, and buttons to vote for or against it (or withdraw one's own) as the member opened
 * in the signing identity panel; and a form to create a proposal from a template of the
 * constitution's actions. Requests are signed in the page (COSE_Sign1 through WebCrypto, by
 * @consortia/client) and sent through the console.
 */
import type { Proposal } from "@consortia/client/browser";
import { call, getJson, gov } from "../api.js";
import { client, currentSigner, onIdentityChange } from "../client.js";
import { badge, errorBox, h, replace, section, shortId, table, type Child } from "../dom.js";
import { identityPanel } from "../identity-panel.js";
import { announce, type Page } from "../page.js";
import { actionNames, proposalTemplate, type TemplateContext } from "../templates.js";

const TONES: Record<string, "good" | "warn" | "bad" | "neutral"> = {
  Open: "warn",
  Accepted: "good",
  Rejected: "bad",
  Failed: "bad",
  Withdrawn: "neutral",
  Dropped: "neutral",
};

/** Runs a signed action, reporting its outcome in `out` and to screen readers. */
async function act(out: HTMLElement, what: string, run: () => Promise<string>, after: () => void) {
  replace(out, h("p", {}, `${what}…`));
  try {
    const message = await run();
    replace(out, h("p", { class: "ok" }, message));
    announce(message);
    after();
  } catch (err: unknown) {
    replace(out, errorBox(err));
    announce(`${what} failed`);
  }
}

function votesOf(p: Proposal): Child {
  const votes = Object.entries(p.finalVotes ?? {});
  if (votes.length === 0) return `${p.ballotCount} ballot${p.ballotCount === 1 ? "" : "s"}`;
  return h(
    "ul",
    { class: "plain" },
    ...votes.map(([member, vote]) => h("li", {}, shortId(member), vote ? " for" : " against")),
  );
}

function actionsButton(p: Proposal, out: HTMLElement): HTMLButtonElement {
  return h(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-label": `Show the actions of proposal ${p.proposalId.slice(0, 8)}`,
      onclick: async () => {
        try {
          const actions = await call(gov(`/members/proposals/${p.proposalId}/actions`));
          const pretty = JSON.stringify(JSON.parse(actions.text), null, 2);
          replace(out, h("pre", { "aria-label": "Proposal actions" }, pretty));
        } catch (err: unknown) {
          replace(out, errorBox(err));
        }
      },
    },
    "Actions",
  );
}

function proposalRow(p: Proposal, out: HTMLElement, reload: () => void): Child[] {
  const signer = currentSigner();
  const label = p.proposalId.slice(0, 8);
  const buttons: Child[] = [actionsButton(p, out)];
  if (p.proposalState === "Open" && signer !== null) {
    const vote = (ballot: boolean) => () =>
      void act(
        out,
        `Voting ${ballot ? "for" : "against"} ${label}`,
        async () => {
          const result = await client.gov.vote(p.proposalId, ballot, signer);
          return `Voted ${ballot ? "for" : "against"} proposal ${label}: now ${result.body.proposalState}.`;
        },
        reload,
      );
    buttons.push(
      h(
        "button",
        { type: "button", onclick: vote(true), "aria-label": `Vote for proposal ${label}` },
        "Vote for",
      ),
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: vote(false),
          "aria-label": `Vote against proposal ${label}`,
        },
        "Vote against",
      ),
    );
    if (p.proposerId === signer.memberId) {
      const withdraw = () =>
        void act(
          out,
          `Withdrawing ${label}`,
          async () => {
            await client.gov.withdraw(p.proposalId, signer);
            return `Withdrew proposal ${label}.`;
          },
          reload,
        );
      buttons.push(
        h("button", { type: "button", class: "secondary", onclick: withdraw }, "Withdraw"),
      );
    }
  }
  return [
    shortId(p.proposalId),
    shortId(p.proposerId),
    badge(p.proposalState, TONES[p.proposalState] ?? "neutral"),
    votesOf(p),
    p.failure === undefined ? "" : p.failure.reason,
    h("div", { class: "actions" }, ...buttons),
  ];
}

async function context(signal: AbortSignal): Promise<TemplateContext> {
  const [users, nodes] = await Promise.all([
    getJson<{ value: { userId: string }[] }>(gov("/service/users"), signal),
    getJson<{ nodes: { node_id: string }[] }>("/node/network/nodes", signal),
  ]);
  const none = "0".repeat(64);
  return {
    memberId: currentSigner()?.memberId ?? none,
    userId: users.value[0]?.userId ?? none,
    nodeId: nodes.nodes[0]?.node_id ?? none,
  };
}

async function createForm(signal: AbortSignal, reload: () => void): Promise<HTMLElement> {
  const constitution = await call(gov("/service/constitution"), { signal });
  const names = actionNames(constitution.text);
  const select = h(
    "select",
    { id: "template", name: "template" },
    ...names.map((n) => h("option", { value: n }, n)),
  );
  const editor = h("textarea", { id: "proposal-body", name: "body", rows: 10, spellcheck: false });
  const out = h("div", { role: "status", "aria-live": "polite" });
  const fill = async () => {
    editor.value = proposalTemplate(select.value, await context(signal));
  };
  select.addEventListener("change", () => void fill());
  onIdentityChange(() => void fill(), signal);
  await fill();
  const submit = (event: Event) => {
    event.preventDefault();
    const signer = currentSigner();
    if (signer === null) {
      replace(out, errorBox("Open a member identity first."));
      return;
    }
    void act(
      out,
      "Submitting the proposal",
      async () => {
        const body = new TextEncoder().encode(editor.value);
        const result = await client.gov.proposeRaw(body, signer);
        const p = result.body;
        return `Proposal ${p.proposalId} created (${result.txId ?? "no tx id"}): ${p.proposalState}.`;
      },
      reload,
    );
  };
  return section(
    "create",
    "New proposal",
    h(
      "form",
      { class: "stack", onsubmit: submit, "aria-label": "New proposal" },
      h("label", { for: "template" }, "Template (an action of the constitution)"),
      select,
      h("label", { for: "proposal-body" }, "Proposal (JSON)"),
      editor,
      h("div", {}, h("button", { type: "submit" }, "Submit proposal")),
    ),
    out,
  );
}

async function listSection(view: HTMLElement, out: HTMLElement, signal: AbortSignal) {
  const reload = () => void listSection(view, out, signal);
  try {
    const proposals = await client.gov.listProposals();
    if (signal.aborted) return;
    const open = proposals.filter((p) => p.proposalState === "Open").length;
    replace(
      view,
      h("p", { class: "muted" }, `${proposals.length} proposals, ${open} open.`),
      h("button", { type: "button", class: "secondary", onclick: reload }, "Refresh"),
      h(
        "div",
        { class: "scroll" },
        table(
          "Proposals",
          ["Proposal", "Proposer", "State", "Votes", "Failure", "Actions"],
          proposals.reverse().map((p) => proposalRow(p, out, reload)),
        ),
      ),
    );
  } catch (err: unknown) {
    if (!signal.aborted) replace(view, errorBox(err));
  }
}

export const proposalsPage: Page = {
  title: "Proposals",
  async render(container, _params, signal) {
    const list = h("div", {}, h("p", {}, "Loading…"));
    const out = h("div", { role: "status", "aria-live": "polite", id: "proposal-outcome" });
    const reload = () => void listSection(list, out, signal);
    onIdentityChange(reload, signal);
    container.append(identityPanel(signal), section("proposals", "Proposals", out, list));
    reload();
    try {
      container.insertBefore(await createForm(signal, reload), container.children[1] ?? null);
    } catch (err: unknown) {
      if (!signal.aborted) container.append(errorBox(err));
    }
  },
};
