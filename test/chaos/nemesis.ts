/**
 * The nemesis of a chaos run (docs/testing.md "npm run chaos"): faults applied to a live
 * network of real node processes, chosen by a seeded generator, one at a time, each undone
 * (healed, resumed, replaced) before the next after a calm interval:
 *
 * - kill: SIGKILL a node (the primary half the time); a node's identity is never reused, so it
 *   is replaced: a new node joins, and one proposal trusts it and removes the dead one;
 * - pause: SIGSTOP a node for a few seconds, then SIGCONT;
 * - isolate-primary / isolate-backup: cut every node-to-node link of one node at the proxies;
 * - delay: every node-to-node link holds its bytes for tens of milliseconds;
 * - reconfigure: add a node (join, trust) when the service has its base size, else retire a
 *   backup (remove_node, then stop its process once its removal committed).
 *
 * Clock jumps would need faketime under each node; they are skipped and reported as such.
 * Every step is logged with its time; a governance step that fails (a primary lost mid-vote) is
 * logged and the run goes on: the service must stay correct whatever the nemesis manages to do.
 */
import type { Prng } from "../../src/base/prng.js";
import { asn1Now } from "../../src/cli/commands/node-replace.js";
import { Network, sleep, waitFor, type NetNode } from "../helpers/network.js";
import type { LinkProxies } from "./link-proxy.js";

/** Proposals lost to an election are proposed again, this many times in all. */
const PROPOSAL_ATTEMPTS_MAX = 3;

export const CLOCK_JUMPS_SKIPPED = "clock jumps: skipped (no faketime)";

export type FaultKind =
  "kill" | "pause" | "isolate-primary" | "isolate-backup" | "delay" | "reconfigure";

export const FAULT_KINDS: readonly FaultKind[] = [
  "kill",
  "pause",
  "isolate-primary",
  "isolate-backup",
  "delay",
  "reconfigure",
];

/** Relative weights: governance-heavy faults are slower, so they are rarer. */
const WEIGHTS: readonly [FaultKind, number][] = [
  ["kill", 2],
  ["pause", 3],
  ["isolate-primary", 3],
  ["isolate-backup", 2],
  ["delay", 1],
  ["reconfigure", 1],
];

export interface NemesisWorld {
  readonly net: Network;
  readonly proxies: LinkProxies;
  readonly rng: Prng;
  /** The service's base size: reconfigurations keep it between this and this + 1. */
  readonly baseNodes: number;
  log(line: string): void;
  /** Refreshes and answers the believed primary. */
  findPrimary(): Promise<NetNode | undefined>;
}

/** Faults that wait for a node to start and for governance: they take up to this long. */
export const SLOW_FAULT_MS = 25_000;
const SLOW_FAULTS: readonly FaultKind[] = ["kill", "reconfigure"];

export function isSlowFault(kind: FaultKind): boolean {
  return SLOW_FAULTS.includes(kind);
}

/** A fault by weight; only fast ones when `fastOnly` (too little time left for a slow one). */
export function pickFault(rng: Prng, fastOnly: boolean): FaultKind {
  const weights = WEIGHTS.filter(([kind]) => !fastOnly || !SLOW_FAULTS.includes(kind));
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  let roll = rng.intBelow(total);
  for (const [kind, weight] of weights) {
    if (roll < weight) return kind;
    roll -= weight;
  }
  return "pause";
}

/** Nodes that run and have not been retired by the nemesis. */
export function members(net: Network): NetNode[] {
  return net.alive().filter((n) => n.id !== "");
}

/** Starts a node joining through the primary and answers it once it is Pending. */
async function joinNewNode(w: NemesisWorld, primary: NetNode): Promise<NetNode> {
  const known = new Set(w.net.nodes.map((n) => n.id));
  const joiner = w.net.spawnJoiner(primary);
  joiner.id = "";
  const pendingId = await waitFor("a Pending node", 60_000, async () => {
    const reply = await w.net.get(primary, "/node/network/nodes?status=Pending");
    const nodes = (JSON.parse(reply.body) as { nodes: { node_id: string }[] }).nodes;
    return nodes.map((n) => n.node_id).find((id) => !known.has(id));
  }).catch((e: unknown) => {
    w.net.kill(joiner);
    throw e;
  });
  return Object.assign(joiner, { id: pendingId });
}

async function governance(w: NemesisWorld, what: string, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (e) {
    w.log(`  ${what} did not complete: ${e instanceof Error ? e.message : String(e)}`);
    for (const node of members(w.net)) w.log(`  node ${node.index}: ${await consensusOf(w, node)}`);
  }
}

/** A node's view of consensus in one line, for the log when something did not complete. */
async function consensusOf(w: NemesisWorld, node: NetNode): Promise<string> {
  const reply = await w.net.get(node, "/node/consensus").catch((e: unknown) => String(e));
  if (typeof reply === "string") return reply;
  const details = (JSON.parse(reply.body) as { details?: Record<string, unknown> }).details ?? {};
  const { leadership_state, current_view, primary_id, configs } = details as {
    leadership_state?: string;
    current_view?: number;
    primary_id?: string;
    configs?: { nodes: object }[];
  };
  const sets = (configs ?? []).map((c) => Object.keys(c.nodes).map((id) => id.slice(0, 6)));
  const primaryId = primary_id?.slice(0, 6) ?? "none";
  return `${leadership_state} view ${current_view} primary ${primaryId} configs ${JSON.stringify(sets)}`;
}

/** A node's status in the primary's nodes table ("Pending", "Trusted", "Retired", or "absent"). */
async function statusOf(w: NemesisWorld, node: NetNode): Promise<string> {
  const primary = await w.net.primary(30_000);
  const reply = await w.net.get(primary, `/node/network/nodes/${node.id}`);
  if (reply.status === 404) return "absent";
  return (JSON.parse(reply.body) as { status: string }).status;
}

/**
 * Passes a proposal that trusts `joiner` (and removes `old`, if given), retrying on a new
 * primary when an election loses it; a joiner left untrusted is stopped, so that only members
 * of the service keep running.
 */
async function trust(w: NemesisWorld, joiner: NetNode, old?: NetNode): Promise<void> {
  const actions = [
    { name: "transition_node_to_trusted", args: { node_id: joiner.id, valid_from: asn1Now() } },
    ...(old === undefined ? [] : [{ name: "remove_node", args: { node_id: old.id } }]),
  ];
  for (let attempt = 1; attempt <= PROPOSAL_ATTEMPTS_MAX; attempt++) {
    if ((await statusOf(w, joiner).catch(() => "unknown")) === "Trusted") return;
    try {
      await w.net.pass(await w.net.primary(30_000), actions);
      return;
    } catch (e) {
      w.log(`  proposal attempt ${attempt} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if ((await statusOf(w, joiner).catch(() => "unknown")) === "Trusted") return;
  w.net.kill(joiner);
  throw new Error(`node ${joiner.index} could not be trusted; stopped it`);
}

async function killAndReplace(w: NemesisWorld): Promise<boolean> {
  // Only a service with a primary loses a node: a second node of three killed while the first
  // is being replaced would leave no majority, and nothing could replace either.
  const primary = await w.findPrimary();
  if (primary === undefined) {
    w.log("no primary: not killing a node now; skipped");
    return false;
  }
  const all = members(w.net);
  const victim = primary !== undefined && w.rng.chance(0.5) ? primary : w.rng.pick(all);
  const role = victim === primary ? "primary" : "backup";
  w.log(`kill -9 node ${victim.index} (${role}, ${victim.id.slice(0, 6)})`);
  w.net.kill(victim);
  await sleep(500 + w.rng.intBelow(1500));
  await governance(w, `replacing node ${victim.index}`, async () => {
    const joiner = await joinNewNode(w, await w.net.primary(30_000));
    w.log(
      `  node ${joiner.index} (${joiner.id.slice(0, 6)}) joined (Pending); ` +
        `trusting it and removing node ${victim.index}`,
    );
    await trust(w, joiner, victim);
    w.log(`  node ${victim.index} replaced by node ${joiner.index}`);
  });
  return true;
}

async function pause(w: NemesisWorld): Promise<void> {
  const victim = w.rng.pick(members(w.net));
  const ms = 1000 + w.rng.intBelow(3000);
  w.log(`SIGSTOP node ${victim.index} for ${ms} ms`);
  process.kill(victim.pid, "SIGSTOP");
  try {
    await sleep(ms);
  } finally {
    process.kill(victim.pid, "SIGCONT");
  }
}

async function isolate(w: NemesisWorld, wantPrimary: boolean): Promise<boolean> {
  const primary = await w.findPrimary();
  const backups = members(w.net).filter((n) => n !== primary);
  const victim = wantPrimary ? primary : backups.length > 0 ? w.rng.pick(backups) : undefined;
  if (victim === undefined) {
    w.log(`no ${wantPrimary ? "primary" : "backup"} to isolate; skipped`);
    return false;
  }
  const ms = 2000 + w.rng.intBelow(4000);
  w.log(`isolate node ${victim.index}${victim === primary ? " (primary)" : ""} for ${ms} ms`);
  w.proxies.isolate(victim.index);
  await sleep(ms);
  w.proxies.heal();
  w.log("  healed");
  return true;
}

async function delay(w: NemesisWorld): Promise<void> {
  const ms = 20 + w.rng.intBelow(130);
  w.log(`delay every node-to-node link by ${ms} ms for 3 s`);
  w.proxies.delay(ms);
  await sleep(3000);
  w.proxies.heal();
}

async function changeMembership(w: NemesisWorld): Promise<boolean> {
  const primary = await w.findPrimary();
  if (primary === undefined) {
    w.log("no primary to reconfigure through; skipped");
    return false;
  }
  const all = members(w.net);
  if (all.length <= w.baseNodes) {
    w.log("add a node");
    await governance(w, "adding a node", async () => {
      const joiner = await joinNewNode(w, primary);
      await trust(w, joiner);
      w.log(`  node ${joiner.index} trusted`);
    });
    return true;
  }
  const victim = w.rng.pick(all.filter((n) => n !== primary));
  w.log(`retire node ${victim.index}`);
  await governance(w, `retiring node ${victim.index}`, async () => {
    await w.net.pass(primary, [{ name: "remove_node", args: { node_id: victim.id } }]);
    await waitFor("its retirement", 20_000, async () => {
      const reply = await w.net.get(primary, `/node/network/nodes/${victim.id}`);
      return (JSON.parse(reply.body) as { status: string }).status === "Retired" ? true : undefined;
    });
    w.net.kill(victim);
    w.log(`  node ${victim.index} retired and stopped`);
  });
  return true;
}

/**
 * Applies one fault of `kind` and undoes it before returning; false when there was nothing to
 * apply it to (no primary known, say).
 */
export async function applyFault(w: NemesisWorld, kind: FaultKind): Promise<boolean> {
  switch (kind) {
    case "kill":
      return killAndReplace(w);
    case "pause":
      await pause(w);
      return true;
    case "isolate-primary":
      return isolate(w, true);
    case "isolate-backup":
      return isolate(w, false);
    case "delay":
      await delay(w);
      return true;
    case "reconfigure":
      return changeMembership(w);
  }
}
