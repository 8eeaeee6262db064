/**
 * The end of a chaos run, once the network has converged (run.ts): every transaction a client
 * holds is looked up, committed writes must be committed on every live node, and each record's
 * final value is read on every node and compared with its last committed write. The final
 * reads on the primary join the history, so the linearizability check covers them too.
 */
import { performance } from "node:perf_hooks";
import { sleep } from "../helpers/network.js";
import type { RecordedOp } from "./clients.js";
import { members } from "./nemesis.js";
import type { Run } from "./run.js";

/** Lookups run this many at a time. */
const LOOKUPS_IN_FLIGHT_MAX = 16;
const STATUS_WAIT_MS = 30_000;

async function inBatches<T>(items: readonly T[], each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += LOOKUPS_IN_FLIGHT_MAX) {
    await Promise.all(items.slice(i, i + LOOKUPS_IN_FLIGHT_MAX).map(each));
  }
}

async function statusOn(run: Run, port: number, txId: string): Promise<string> {
  const answer = await run.http.call(port, "GET", `/app/tx?transaction_id=${txId}`);
  if (answer.status !== 200) return `HTTP ${answer.status}`;
  return (JSON.parse(answer.body) as { status: string }).status;
}

/** Sets `status` on every op with a transaction: Committed, Invalid, or what it still was. */
async function resolveStatuses(run: Run): Promise<void> {
  const primary = run.primary!;
  const deadline = performance.now() + STATUS_WAIT_MS;
  let open = run.ops.filter((op) => op.txId !== undefined);
  while (open.length > 0) {
    await inBatches(open, async (op) => {
      op.status = await statusOn(run, primary.port, op.txId!).catch((e: unknown) => String(e));
    });
    open = open.filter((op) => op.status !== "Committed" && op.status !== "Invalid");
    if (open.length === 0 || performance.now() > deadline) return;
    await sleep(500);
  }
}

function seqnoOf(txId: string): number {
  return Number(txId.split(".")[1]);
}

/** The value of each key's committed write with the highest seqno. */
function lastCommitted(ops: readonly RecordedOp[]): Map<string, RecordedOp> {
  const last = new Map<string, RecordedOp>();
  for (const op of ops) {
    if (op.kind !== "write" || op.status !== "Committed") continue;
    const seen = last.get(op.key);
    if (seen === undefined || seqnoOf(seen.txId!) < seqnoOf(op.txId!)) last.set(op.key, op);
  }
  return last;
}

async function checkCommittedEverywhere(run: Run, lost: string[]): Promise<void> {
  const committed = run.ops.filter((op) => op.kind === "write" && op.status === "Committed");
  for (const node of members(run.net)) {
    await inBatches(committed, async (op) => {
      const status = await statusOn(run, node.port, op.txId!).catch((e: unknown) => String(e));
      if (status !== "Committed") {
        lost.push(
          `write ${op.value} of key ${op.key} (${op.txId}) is ${status} on node ${node.index}`,
        );
      }
    });
  }
}

/** Reads every key on the primary (recorded) and on every other live node (compared). */
async function finalReads(run: Run, keys: readonly number[], lost: string[]): Promise<void> {
  const last = lastCommitted(run.ops);
  const unknownValues = new Set(
    run.ops
      .filter((op) => op.kind === "write" && op.status !== "Committed" && op.status !== "Invalid")
      .map((op) => op.value),
  );
  for (const id of keys) {
    const key = String(id);
    const callMs = performance.now();
    const answer = await run.http.call(run.primary!.port, "GET", `/app/log/private?id=${id}`);
    const returnMs = performance.now();
    const value = answer.status === 200 ? (JSON.parse(answer.body) as { msg: string }).msg : null;
    run.ops.push({
      client: -2,
      node: run.primary!.index,
      key,
      kind: "read",
      value,
      callMs,
      returnMs,
      txId: undefined,
      outcome: "ok",
    });
    const expected = last.get(key)?.value;
    if (value !== expected && !unknownValues.has(value)) {
      lost.push(
        `key ${key} ends as ${JSON.stringify(value)}, not its last committed write ${JSON.stringify(expected)} (${last.get(key)?.txId})`,
      );
    }
    for (const node of members(run.net)) {
      const other = await run.http.call(node.port, "GET", `/app/log/private?id=${id}`);
      const seen = other.status === 200 ? (JSON.parse(other.body) as { msg: string }).msg : null;
      if (seen !== value) {
        lost.push(
          `key ${key} is ${JSON.stringify(seen)} on node ${node.index} but ${JSON.stringify(value)} on the primary`,
        );
      }
    }
  }
}

/** Runs the checks; answers what was lost or diverged, one sentence each. */
export async function finalChecks(run: Run, keys: readonly number[]): Promise<string[]> {
  const lost: string[] = [];
  await resolveStatuses(run);
  await checkCommittedEverywhere(run, lost);
  await finalReads(run, keys, lost);
  return lost;
}
