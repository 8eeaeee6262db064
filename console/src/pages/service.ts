/**
 * The service page: the service's status and configuration (/gov/service/info), its members
 * with their states and recovery roles, its users, the constitution's source and the deployed
 * JS application's endpoints and modules.
 */
import { getJson, gov, call } from "../api.js";
import { badge, errorBox, facts, h, replace, section, shortId, table } from "../dom.js";
import type { Page } from "../page.js";

interface ServiceInfo {
  status: string;
  certificate: string;
  recoveryCount: number;
  creationTransactionId: string;
  configuration: Record<string, unknown>;
}
interface Member {
  memberId: string;
  status: string;
  recoveryRole?: string;
  publicEncryptionKey?: string;
  memberData?: unknown;
}
interface User {
  userId: string;
  userData?: unknown;
}
interface JsApp {
  endpoints: Record<
    string,
    Record<string, { jsModule: string; jsFunction: string; authnPolicies: string[]; mode: string }>
  >;
}

function infoSection(info: ServiceInfo): HTMLElement {
  return section(
    "service-info",
    "Status",
    facts([
      ["Status", badge(info.status, info.status === "Open" ? "good" : "warn")],
      ["Created at", info.creationTransactionId],
      ["Recoveries", String(info.recoveryCount)],
      ...Object.entries(info.configuration).map(([k, v]): [string, string] => [
        k,
        JSON.stringify(v),
      ]),
    ]),
    h("details", {}, h("summary", {}, "Service certificate"), h("pre", {}, info.certificate)),
  );
}

function membersSection(members: readonly Member[]): HTMLElement {
  return section(
    "members",
    `Members (${members.length})`,
    h(
      "div",
      { class: "scroll" },
      table(
        "Members",
        ["Member", "State", "Recovery role", "Encryption key", "Data"],
        members.map((m) => [
          shortId(m.memberId),
          badge(m.status, m.status === "Active" ? "good" : "warn"),
          m.recoveryRole ?? "–",
          m.publicEncryptionKey === undefined ? "no" : "yes",
          m.memberData === undefined || m.memberData === null ? "" : JSON.stringify(m.memberData),
        ]),
      ),
    ),
  );
}

function usersSection(users: readonly User[]): HTMLElement {
  return section(
    "users",
    `Users (${users.length})`,
    table(
      "Users",
      ["User", "Data"],
      users.map((u) => [
        shortId(u.userId),
        u.userData === undefined || u.userData === null ? "" : JSON.stringify(u.userData),
      ]),
    ),
  );
}

function appSection(app: JsApp, modules: readonly { moduleName: string }[]): HTMLElement {
  const rows = Object.entries(app.endpoints).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, e]) => [
      method.toUpperCase(),
      h("code", {}, `/app${path}`),
      `${e.jsModule} ${e.jsFunction}`,
      e.authnPolicies.join(", "),
      e.mode,
    ]),
  );
  return section(
    "js-app",
    "JavaScript application",
    rows.length === 0
      ? h("p", {}, "No JavaScript application is deployed.")
      : h(
          "div",
          { class: "scroll" },
          table(
            "Application endpoints",
            ["Method", "Path", "Function", "Authentication", "Mode"],
            rows,
          ),
        ),
    modules.length === 0
      ? null
      : h("p", {}, `Modules: ${modules.map((m) => m.moduleName).join(", ")}`),
  );
}

export const servicePage: Page = {
  title: "Service",
  async render(container, _params, signal) {
    const view = h("div", {}, h("p", {}, "Loading…"));
    container.append(view);
    try {
      const [info, members, users, constitution, app, modules] = await Promise.all([
        getJson<ServiceInfo>(gov("/service/info"), signal),
        getJson<{ value: Member[] }>(gov("/service/members"), signal),
        getJson<{ value: User[] }>(gov("/service/users"), signal),
        call(gov("/service/constitution"), { signal }),
        getJson<JsApp>(gov("/service/javascript-app"), signal),
        getJson<{ value: { moduleName: string }[] }>(gov("/service/javascript-modules"), signal),
      ]);
      replace(
        view,
        infoSection(info),
        membersSection(members.value),
        usersSection(users.value),
        section(
          "constitution",
          "Constitution",
          h(
            "details",
            {},
            h("summary", {}, `Source (${constitution.text.length} characters)`),
            h("pre", { class: "code" }, constitution.text),
          ),
        ),
        appSection(app, modules.value),
      );
    } catch (err: unknown) {
      if (!signal.aborted) replace(view, errorBox(err));
    }
  },
};
