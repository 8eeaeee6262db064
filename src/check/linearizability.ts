/**
 * A linearizability checker for histories of a key-value store seen as one register per key
 * (issue #15 item 4; docs/testing.md "npm run chaos"). The algorithm is Wing and Gong's search
 * with Lowe's memoisation, as Knossos and Porcupine run it:
 *
 * - A key's operations become a doubly linked list of call and return entries sorted by time
 *   (at equal times a call sorts before a return, so touching operations count as concurrent:
 *   the lenient reading, which never invents a violation).
 * - The search walks the list: at a call entry it tries to linearize that operation now (the
 *   register's step must accept its observed output), lifts its call and return out of the list
 *   and restarts from the head; at a return entry every operation still in the list that was
 *   called before it has been tried, so it backtracks: it pops the last linearized operation,
 *   puts it back and tries the next call after it.
 * - Lowe's cache holds each (set of linearized operations, register state) reached; a
 *   configuration seen before is not explored again, which makes the search practical.
 * - When every write of the key has its own value (the chaos clients write unique values), a
 *   value, once overwritten, never comes back: so while a read of the current value is still to
 *   be linearized, no write may be linearized. Without this the search tries every order of a
 *   burst of concurrent writes before it finds that a later read cannot be placed (a stale read
 *   after 17 concurrent operations took 2.5 million steps; with it, 38,000). Likewise a state
 *   no pending read can see is cached as "dead", whichever value it holds: such states have
 *   the same futures (29,000 steps for the same history).
 *
 * P-compositionality: a history is linearizable iff each key's sub-history is, so each key is
 * checked on its own (one register per key).
 *
 * An operation whose outcome is unknown (a timeout, a reset connection, a 503 after a forwarded
 * write) has return time +Infinity: it may take effect at any point after its call, or never,
 * which the search expresses by linearizing it after every completed operation. A read whose
 * outcome is unknown constrains nothing and is dropped. The search is bounded by a step budget
 * per key; a key that exhausts it is reported "unknown", never left running.
 *
 * Pure: no IO, no clock; times are whatever monotonic numbers the caller recorded.
 */
import { assert } from "../base/assert.js";

/** What a client asked: write `value`, or read the register. */
export type RegisterInput = { readonly kind: "write"; readonly value: string } | { kind: "read" };

/** One client operation on one key, as recorded. */
export interface HistoryOp {
  /** Which client ran it (for reports only). */
  readonly client: number;
  /** Which node it was sent to, if known (for reports only). */
  readonly node?: number;
  readonly key: string;
  readonly input: RegisterInput;
  /** A completed read's result: the value, or null when the key was absent. */
  readonly output: string | null;
  /** Monotonic time the request was sent. */
  readonly callMs: number;
  /** Monotonic time the answer arrived; +Infinity when the outcome is unknown. */
  readonly returnMs: number;
}

export type KeyVerdict =
  | { readonly kind: "linearizable"; readonly key: string; readonly steps: number }
  | { readonly kind: "unknown"; readonly key: string; readonly steps: number }
  | {
      readonly kind: "violation";
      readonly key: string;
      /** The key's operations in call order (indeterminate reads already dropped). */
      readonly ops: readonly HistoryOp[];
      /** Index in `ops` of the completed operation no linearization could get past. */
      readonly stuckAt: number;
    };

export interface CheckResult {
  readonly kind: "linearizable" | "unknown" | "violation";
  readonly keys: readonly KeyVerdict[];
}

/** Default search budget per key: about a second of work on a slow machine. */
export const STEPS_PER_KEY_MAX = 2_000_000;

interface Entry {
  /** Index of the operation in its key's list. */
  readonly op: number;
  readonly isCall: boolean;
  readonly timeMs: number;
  /** The call's return entry, or the return's call entry (set right after construction). */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

/** The register: null is "absent". A step answers the new state, or undefined if illegal. */
function step(state: string | null, op: HistoryOp): { state: string | null } | undefined {
  if (op.input.kind === "write") return { state: op.input.value };
  return op.output === state ? { state } : undefined;
}

function buildList(ops: readonly HistoryOp[]): Entry {
  const entries: Entry[] = [];
  ops.forEach((op, i) => {
    assert(op.returnMs >= op.callMs, `operation ${i} returns before its call`);
    const call: Entry = {
      op: i,
      isCall: true,
      timeMs: op.callMs,
      match: null,
      prev: null,
      next: null,
    };
    const ret: Entry = {
      op: i,
      isCall: false,
      timeMs: op.returnMs,
      match: call,
      prev: null,
      next: null,
    };
    call.match = ret;
    entries.push(call, ret);
  });
  entries.sort(
    (a, b) => a.timeMs - b.timeMs || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1),
  );
  const head: Entry = {
    op: -1,
    isCall: false,
    timeMs: -Infinity,
    match: null,
    prev: null,
    next: null,
  };
  let last = head;
  for (const e of entries) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

/** Takes a call entry and its return out of the list. */
function lift(call: Entry): void {
  const ret = call.match!;
  call.prev!.next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  ret.prev!.next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Puts them back, in the reverse order of lift. */
function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next !== null) call.next.prev = call;
}

class Bitset {
  readonly words: Uint32Array;
  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }
  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
  }
  count(): number {
    let n = 0;
    for (let w of this.words) {
      while (w !== 0) {
        w &= w - 1;
        n += 1;
      }
    }
    return n;
  }
  /**
   * A cache key for this set with the register state; `live` false when no read still to be
   * linearized can see the state (with unique values all such states are alike: only a write
   * can come next, and what follows does not depend on which value it overwrites).
   */
  keyWith(state: string | null, live: boolean): string {
    return `${this.words.join(",")}|${!live ? "~" : state === null ? "-" : `=${state}`}`;
  }
}

/**
 * How many reads of each value are still to be linearized, when every write has its own value;
 * null when values repeat (a value could then come back after an overwrite).
 */
function pendingReadsIfUnique(ops: readonly HistoryOp[]): Map<string | null, number> | null {
  const written = new Set<string>();
  const pending = new Map<string | null, number>();
  for (const op of ops) {
    if (op.input.kind === "read") {
      pending.set(op.output, (pending.get(op.output) ?? 0) + 1);
    } else {
      if (written.has(op.input.value)) return null;
      written.add(op.input.value);
    }
  }
  return pending;
}

/**
 * Whether `op` may be linearized now, in register state `state`: the register's step accepts
 * it and, with unique values, it is not a write that would hide a value some pending read needs.
 */
function tryStep(
  state: string | null,
  op: HistoryOp,
  pending: Map<string | null, number> | null,
): { state: string | null } | undefined {
  if (op.input.kind === "write" && pending !== null && (pending.get(state) ?? 0) > 0) {
    return undefined;
  }
  return step(state, op);
}

/** Counts a read in or out of the pending reads (no-op for writes or repeated values). */
function notePending(pending: Map<string | null, number> | null, op: HistoryOp, by: number): void {
  if (pending !== null && op.input.kind === "read") {
    pending.set(op.output, pending.get(op.output)! + by);
  }
}

type SearchResult =
  | { readonly kind: "linearizable" | "unknown"; readonly steps: number }
  | { readonly kind: "violation"; readonly steps: number; readonly deepestStuck: number };

/** The search itself, on one key's operations sorted by call time. */
function search(ops: readonly HistoryOp[], stepsMax: number): SearchResult {
  const head = buildList(ops);
  const linearized = new Bitset(ops.length);
  const pending = pendingReadsIfUnique(ops);
  const seen = new Set<string>();
  const stack: { call: Entry; state: string | null }[] = [];
  let state: string | null = null;
  let entry = head.next;
  let steps = 0;
  let deepest = { depth: -1, stuckAt: 0 };
  while (head.next !== null) {
    steps += 1;
    if (steps > stepsMax) return { kind: "unknown", steps };
    assert(entry !== null, "the search walked off the list");
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const next = tryStep(state, op, pending);
      let advanced = false;
      if (next !== undefined) {
        linearized.set(entry.op);
        notePending(pending, op, -1);
        const live = pending === null || (pending.get(next.state) ?? 0) > 0;
        const cacheKey = linearized.keyWith(next.state, live);
        if (!seen.has(cacheKey)) {
          seen.add(cacheKey);
          stack.push({ call: entry, state });
          state = next.state;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          linearized.clear(entry.op);
          notePending(pending, op, +1);
        }
      }
      if (!advanced) entry = entry.next;
      continue;
    }
    // A return entry: whatever was called before it could not be linearized here.
    if (stack.length > deepest.depth) deepest = { depth: stack.length, stuckAt: entry.op };
    const top = stack.pop();
    if (top === undefined) return { kind: "violation", steps, deepestStuck: deepest.stuckAt };
    state = top.state;
    linearized.clear(top.call.op);
    notePending(pending, ops[top.call.op]!, +1);
    unlift(top.call);
    entry = top.call.next;
  }
  assert(linearized.count() === ops.length, "every operation linearized");
  return { kind: "linearizable", steps };
}

/**
 * The history as it stood at time `t`: the operations called by then, those still running
 * treated as of unknown outcome (a write may or may not take effect; a read says nothing).
 */
function prefixAt(ops: readonly HistoryOp[], t: number): HistoryOp[] {
  const prefix: HistoryOp[] = [];
  for (const op of ops) {
    if (op.callMs > t) continue;
    if (op.returnMs <= t) prefix.push(op);
    else if (op.input.kind === "write") prefix.push({ ...op, returnMs: Infinity });
  }
  return prefix;
}

/**
 * The completed operation no linearization can get past: the first, in return order, whose
 * return makes the history so far not linearizable (a prefix of a linearizable history is
 * linearizable, so a binary search finds it). At equal return times a read is blamed before a
 * write. The searches share one budget of `stepsMax` steps (so a violation costs at most twice
 * the budget); past it, falls back to the search's deepest stuck point.
 */
function firstStuck(ops: readonly HistoryOp[], fallback: number, stepsMax: number): number {
  const completed = ops
    .map((_, i) => i)
    .filter((i) => ops[i]!.returnMs !== Infinity)
    .sort(
      (a, b) =>
        ops[a]!.returnMs - ops[b]!.returnMs ||
        Number(ops[a]!.input.kind === "write") - Number(ops[b]!.input.kind === "write") ||
        a - b,
    );
  // Invariant: the prefix at completed[hi]'s return is not linearizable; at lo - 1's it is.
  let lo = 0;
  let hi = completed.length - 1;
  let stepsLeft = stepsMax;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const result = search(prefixAt(ops, ops[completed[mid]!]!.returnMs), stepsLeft);
    if (result.kind === "unknown") return fallback;
    stepsLeft -= result.steps;
    if (result.kind === "violation") hi = mid;
    else lo = mid + 1;
  }
  return completed[lo] ?? fallback;
}

/**
 * Checks one key's operations (all on the same key). Completed reads, completed writes and
 * writes with returnMs = +Infinity; reads with unknown outcome must be dropped by the caller.
 */
export function checkKey(
  key: string,
  unordered: readonly HistoryOp[],
  stepsMax = STEPS_PER_KEY_MAX,
): KeyVerdict {
  const ops = [...unordered].sort((a, b) => a.callMs - b.callMs);
  const result = search(ops, stepsMax);
  if (result.kind !== "violation") return { kind: result.kind, key, steps: result.steps };
  return { kind: "violation", key, ops, stuckAt: firstStuck(ops, result.deepestStuck, stepsMax) };
}

/**
 * Narrows a key's writes of unknown outcome when every write of the key has its own value
 * (the chaos clients write unique values): such a write that no completed read saw can be
 * dropped (whether or not it took effect, no linearization can tell: place it last), and one
 * that a read saw took effect before the earliest such read returned, so that read's return
 * bounds it. Both keep the verdict and shrink the search, which otherwise treats every lost
 * write as concurrent with everything after it. Answers the ops unchanged if values repeat.
 */
export function narrowUnknownWrites(ops: readonly HistoryOp[]): HistoryOp[] {
  const written = new Set<string>();
  for (const op of ops) {
    if (op.input.kind !== "write") continue;
    if (written.has(op.input.value)) return [...ops];
    written.add(op.input.value);
  }
  const firstSeenMs = new Map<string, number>();
  for (const op of ops) {
    if (op.input.kind !== "read" || op.output === null) continue;
    firstSeenMs.set(op.output, Math.min(firstSeenMs.get(op.output) ?? Infinity, op.returnMs));
  }
  const narrowed: HistoryOp[] = [];
  for (const op of ops) {
    if (op.input.kind === "read" || op.returnMs !== Infinity) {
      narrowed.push(op);
      continue;
    }
    const seenMs = firstSeenMs.get(op.input.value);
    if (seenMs === undefined) continue;
    // Seen before it was called is a violation the search must find: leave it unbounded.
    narrowed.push(seenMs >= op.callMs ? { ...op, returnMs: seenMs } : op);
  }
  return narrowed;
}

/**
 * Checks a whole history: drops reads with unknown outcome, partitions by key, narrows each
 * key's writes of unknown outcome and checks each key. The result is a violation if any key
 * has one, else unknown if any key ran out of budget, else linearizable.
 */
export function checkHistory(
  history: readonly HistoryOp[],
  stepsMaxPerKey = STEPS_PER_KEY_MAX,
): CheckResult {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history) {
    if (op.input.kind === "read" && op.returnMs === Infinity) continue;
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  const keys = [...byKey.keys()]
    .sort()
    .map((k) => checkKey(k, narrowUnknownWrites(byKey.get(k)!), stepsMaxPerKey));
  const kind = keys.some((v) => v.kind === "violation")
    ? "violation"
    : keys.some((v) => v.kind === "unknown")
      ? "unknown"
      : "linearizable";
  return { kind, keys };
}

/** minimizeViolation tries at most this many removals. */
export const MINIMIZE_ATTEMPTS_MAX = 400;
const MINIMIZE_STEPS_MAX = 200_000;

/**
 * A smaller history of the same key that is still not linearizable, for people to read: first
 * the operations called before the stuck one returned, then, one at a time from the latest,
 * every operation whose removal leaves a violation. A write whose value a remaining read
 * returned is kept, so that the result shows stale reads as stale, not as reads of values
 * nobody wrote. Bounded by MINIMIZE_ATTEMPTS_MAX searches; answers the input if no smaller
 * violation is found.
 */
export function minimizeViolation(
  verdict: Extract<KeyVerdict, { kind: "violation" }>,
): Extract<KeyVerdict, { kind: "violation" }> {
  // The verdict alone (no blame search): verdict.ops and every subsequence are in call order.
  const isViolation = (ops: readonly HistoryOp[]) =>
    search(ops, MINIMIZE_STEPS_MAX).kind === "violation";
  const stuckReturnMs = verdict.ops[verdict.stuckAt]!.returnMs;
  const prefix = verdict.ops.filter((op) => op.callMs <= stuckReturnMs);
  let ops = isViolation(prefix) ? prefix : [...verdict.ops];
  let attempts = 0;
  for (let i = ops.length - 1; i >= 0 && attempts < MINIMIZE_ATTEMPTS_MAX; i--) {
    const op = ops[i]!;
    if (op.input.kind === "write") {
      const value = op.input.value;
      if (ops.some((r) => r.input.kind === "read" && r.output === value)) continue;
    }
    attempts += 1;
    const without = ops.filter((_, j) => j !== i);
    if (isViolation(without)) ops = without;
  }
  const result = checkKey(verdict.key, ops, MINIMIZE_STEPS_MAX);
  return result.kind === "violation" && ops.length < verdict.ops.length ? result : verdict;
}
