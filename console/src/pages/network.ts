/**
 * The network page: the service's status, view and primary, then one row per node with its
 * status, role (from the node's own consensus view), view, commit, start-up state and health
 * (/node/ready/app and /node/ready/gov), each asked of that node through the console. Refreshes
 * itself every REFRESH_MS; what changed is announced to screen readers.
 */
import { ApiError, call, getJson } from "../api.js";
import { badge, errorBox, facts, h, replace, section, shortId, table, type Child } from "../dom.js";
import { announce, every, type Page } from "../page.js";

const REFRESH_MS = 2_000;

interface NetworkInfo {
  service_status: string;
  current_view: number;
  primary_id: string | null;
  recovery_count: number;
  current_service_create_txid: string;
}

interface NodeInfo {
  node_id: string;
  status: string;
  primary: boolean;
  rpc_interfaces: Record<string, { bind_address?: string; published_address?: string }>;
}

interface NodeHealth {
  state: string;
  role: string;
  view: string;
  commit: string;
  readyApp: boolean;
  readyGov: boolean;
}

async function ready(nodeId: string, frontend: string, signal: AbortSignal): Promise<boolean> {
  try {
    await call(`/nodes/${nodeId}/node/ready/${frontend}`, { signal });
    return true;
  } catch (err: unknown) {
    if (err instanceof ApiError) return false;
    throw err;
  }
}

/** One node's own view of itself, or null when it does not answer. */
async function healthOf(nodeId: string, signal: AbortSignal): Promise<NodeHealth | null> {
  const path = `/nodes/${nodeId}/node`;
  try {
    const [state, commit, consensus, readyApp, readyGov] = await Promise.all([
      getJson<{ state: string }>(`${path}/state`, signal),
      getJson<{ transaction_id: string }>(`${path}/commit`, signal),
      getJson<{ details: { leadership_state: string; current_view: number } }>(
        `${path}/consensus`,
        signal,
      ),
      ready(nodeId, "app", signal),
      ready(nodeId, "gov", signal),
    ]);
    return {
      state: state.state,
      role: consensus.details.leadership_state,
      view: String(consensus.details.current_view),
      commit: commit.transaction_id,
      readyApp,
      readyGov,
    };
  } catch (err: unknown) {
    if (err instanceof ApiError) return null;
    throw err;
  }
}

function addressOf(node: NodeInfo): string {
  const first = Object.values(node.rpc_interfaces)[0];
  return first?.published_address ?? first?.bind_address ?? "";
}

function nodeRow(node: NodeInfo, health: NodeHealth | null): Child[] {
  const statusTone =
    node.status === "Trusted" ? "good" : node.status === "Pending" ? "warn" : "neutral";
  const role =
    health === null
      ? badge("unreachable", "bad")
      : badge(health.role, health.role === "Leader" ? "good" : "neutral");
  const healthText =
    health === null
      ? badge("down", "bad")
      : health.readyApp && health.readyGov
        ? badge("ready", "good")
        : badge(
            `app ${health.readyApp ? "ready" : "not ready"}, gov ${health.readyGov ? "ready" : "not ready"}`,
            "warn",
          );
  return [
    shortId(node.node_id),
    addressOf(node),
    badge(node.status, statusTone),
    node.primary ? "primary" : "backup",
    role,
    health?.view ?? "–",
    health?.commit ?? "–",
    health?.state ?? "–",
    healthText,
  ];
}

async function refresh(view: HTMLElement, signal: AbortSignal, last: { summary: string }) {
  try {
    const [network, { nodes }] = await Promise.all([
      getJson<NetworkInfo>("/node/network", signal),
      getJson<{ nodes: NodeInfo[] }>("/node/network/nodes", signal),
    ]);
    const healths = await Promise.all(nodes.map((n) => healthOf(n.node_id, signal)));
    if (signal.aborted) return;
    const primary = nodes.find((n) => n.primary);
    replace(
      view,
      section(
        "service-summary",
        "Service",
        facts([
          [
            "Status",
            badge(network.service_status, network.service_status === "Open" ? "good" : "warn"),
          ],
          ["View", String(network.current_view)],
          ["Primary", network.primary_id === null ? "none known" : shortId(network.primary_id)],
          ["Recoveries", String(network.recovery_count)],
          ["Created at", network.current_service_create_txid],
        ]),
      ),
      section(
        "nodes",
        `Nodes (${nodes.length})`,
        h(
          "div",
          { class: "scroll" },
          table(
            "Nodes",
            ["Node", "Address", "Status", "Primary", "Role", "View", "Commit", "State", "Health"],
            nodes.map((n, i) => nodeRow(n, healths[i] ?? null)),
          ),
        ),
      ),
      h("p", { class: "muted" }, `Updated ${new Date().toLocaleTimeString()}`),
    );
    const down = healths.filter((x) => x === null).length;
    const summary =
      `${nodes.length} nodes, primary ${primary?.node_id.slice(0, 8) ?? "none"}, ` +
      `${down} unreachable, service ${network.service_status}`;
    if (summary !== last.summary) announce(summary);
    last.summary = summary;
  } catch (err: unknown) {
    if (signal.aborted) return;
    replace(view, errorBox(err));
  }
}

export const networkPage: Page = {
  title: "Network",
  render(container, _params, signal) {
    const view = h("div", {}, h("p", {}, "Loading…"));
    container.append(view);
    const last = { summary: "" };
    every(REFRESH_MS, signal, () => refresh(view, signal, last));
  },
};
