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
  /** A cache key for this set with the register state. */
  keyWith(state: string | null): string {
    return `${this.words.join(",")}|${state === null ? "-" : `=${state}`}`;
  }
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
  const head = buildList(ops);
  const linearized = new Bitset(ops.length);
  const seen = new Set<string>();
  const stack: { call: Entry; state: string | null }[] = [];
  let state: string | null = null;
  let entry = head.next;
  let steps = 0;
  let deepest = { depth: -1, stuckAt: 0 };
  while (head.next !== null) {
    steps += 1;
    if (steps > stepsMax) return { kind: "unknown", key, steps };
    assert(entry !== null, "the search walked off the list");
    if (entry.isCall) {
      const next = step(state, ops[entry.op]!);
      let advanced = false;
      if (next !== undefined) {
        linearized.set(entry.op);
        const cacheKey = linearized.keyWith(next.state);
        if (!seen.has(cacheKey)) {
          seen.add(cacheKey);
          stack.push({ call: entry, state });
          state = next.state;
          lift(entry);
          entry = head.next;
          advanced = true;
        } else {
          linearized.clear(entry.op);
        }
      }
      if (!advanced) entry = entry.next;
      continue;
    }
    // A return entry: whatever was called before it could not be linearized here.
    if (stack.length > deepest.depth) deepest = { depth: stack.length, stuckAt: entry.op };
    const top = stack.pop();
    if (top === undefined) return { kind: "violation", key, ops, stuckAt: deepest.stuckAt };
    state = top.state;
    linearized.clear(top.call.op);
    unlift(top.call);
    entry = top.call.next;
  }
  assert(linearized.count() === ops.length, "every operation linearized");
  return { kind: "linearizable", key, steps };
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
  const isViolation = (ops: readonly HistoryOp[]) =>
    checkKey(verdict.key, ops, MINIMIZE_STEPS_MAX).kind === "violation";
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
