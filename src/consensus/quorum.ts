/**
 * Quorum arithmetic over one or several configurations (one-transaction reconfiguration: while
 * a configuration change is pending, a decision needs a majority in every active one).
 */
import type { Configuration } from "./raft-log.js";
import type { NodeId } from "./types.js";

/** Whether the nodes satisfying `yes` form a majority of `nodes`. */
export function isMajority(nodes: readonly NodeId[], yes: (id: NodeId) => boolean): boolean {
  let count = 0;
  for (const id of nodes) if (yes(id)) count++;
  return count * 2 > nodes.length;
}

/** Whether `yes` holds for a majority of every non-empty configuration (there must be one). */
export function hasQuorumInEvery(
  configs: readonly Configuration[],
  yes: (id: NodeId) => boolean,
): boolean {
  // An empty configuration (before genesis, or a joiner's base) constrains nothing.
  const real = configs.filter((c) => c.nodes.length > 0);
  if (real.length === 0) return false;
  return real.every((c) => isMajority(c.nodes, yes));
}

/** Every node of any of the configurations, sorted, without duplicates. */
export function nodesOf(configs: readonly Configuration[]): NodeId[] {
  const all = new Set<NodeId>();
  for (const c of configs) for (const id of c.nodes) all.add(id);
  return [...all].sort();
}
