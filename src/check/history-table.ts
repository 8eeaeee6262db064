/**
 * Prints a key's history as a table for people (docs/testing.md "Reading the output"): one
 * line per operation in call order, with its client, the node it went to (if known), what it
 * did, what it saw, and its call
 * and return times relative to `originMs`. An operation with unknown outcome shows "?" as its
 * return. The operation no linearization could get past is marked.
 *
 * Pure: returns text; printing is the caller's.
 */
import type { HistoryOp, KeyVerdict } from "./linearizability.js";

/** Operations shown before the stuck one; earlier ones are summarised in one line. */
export const CONTEXT_OPS_BEFORE = 30;
/** Operations shown after the stuck one. */
export const CONTEXT_OPS_AFTER = 10;

function describe(op: HistoryOp): { what: string; value: string } {
  if (op.input.kind === "write") return { what: "write", value: JSON.stringify(op.input.value) };
  if (op.returnMs === Infinity) return { what: "read", value: "?" };
  return { what: "read", value: op.output === null ? "(absent)" : JSON.stringify(op.output) };
}

function ms(value: number, originMs: number): string {
  return value === Infinity ? "?" : (value - originMs).toFixed(1);
}

/** Rows [first, last] of `ops` as aligned text lines; `mark` gets an arrow. */
export function formatOps(
  ops: readonly HistoryOp[],
  range: { first: number; last: number; mark: number; originMs: number },
): string[] {
  const rows = [["#", "client", "node", "op", "value", "call ms", "return ms", ""]];
  for (let i = range.first; i <= range.last; i++) {
    const op = ops[i]!;
    const { what, value } = describe(op);
    rows.push([
      String(i),
      String(op.client),
      op.node === undefined ? "-" : String(op.node),
      what,
      value,
      ms(op.callMs, range.originMs),
      ms(op.returnMs, range.originMs),
      i === range.mark ? "<- no linearization gets past this operation" : "",
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === 4 || c === 7 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join("  ")
      .trimEnd(),
  );
}

/**
 * The report of one key's violation: a heading (with `label`, e.g. "minimized", if given), then
 * the window around the stuck operation.
 */
export function formatViolation(
  verdict: Extract<KeyVerdict, { kind: "violation" }>,
  originMs: number,
  label?: string,
): string {
  const { ops, stuckAt, key } = verdict;
  const first = Math.max(0, stuckAt - CONTEXT_OPS_BEFORE);
  const last = Math.min(ops.length - 1, stuckAt + CONTEXT_OPS_AFTER);
  const name = label === undefined ? `key ${key}` : `key ${key}, ${label}`;
  const lines = [
    `${name}: not linearizable (${ops.length} operations; ` +
      `showing ${first}..${last}, times in ms from the start of the run)`,
  ];
  if (first > 0) lines.push(`  ... ${first} earlier operations`);
  lines.push(...formatOps(ops, { first, last, mark: stuckAt, originMs }).map((l) => `  ${l}`));
  if (last < ops.length - 1) lines.push(`  ... ${ops.length - 1 - last} later operations`);
  return lines.join("\n");
}
