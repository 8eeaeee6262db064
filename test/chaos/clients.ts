/**
 * The clients of a chaos run and the history they record (docs/testing.md "npm run chaos").
 * Each client loops: pick a key (a record id of the logging app), write a unique value
 * (POST /app/log/private) or read it (GET /app/log/private?id=), over mTLS with keep-alive
 * connections, and record the call and return times on the monotonic clock.
 *
 * What an answer means for the history:
 * - a write answered 200 names its transaction; the write counts as done (returned at that
 *   time) once the transaction is Committed, as not having happened if it becomes Invalid, and
 *   as of unknown outcome otherwise;
 * - a write answered anything else, or not at all (timeout, reset), has an unknown outcome
 *   (return +Infinity): a forwarded write may have been applied even if its answer was lost;
 * - reads go to the node believed to be the primary; a read counts only if that node still says
 *   it is the primary right after answering (GET /node/primary = 200) and the transaction the
 *   read names becomes Committed (a read of state that is later rolled back saw nothing real);
 *   a 404 for a record means absent. Every other read failed and is dropped.
 */
import { Agent, request } from "node:https";
import { performance } from "node:perf_hooks";
import type { Prng } from "../../src/base/prng.js";
import type { HistoryOp } from "../../src/check/linearizability.js";

export const REQUEST_TIMEOUT_MS = 3_000;

export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly txId: string | undefined;
}

/** One recorded operation; `txId` is checked against /app/tx before the history is judged. */
export interface RecordedOp {
  readonly client: number;
  /** The index of the node the request went to. */
  readonly node: number;
  readonly key: string;
  readonly kind: "write" | "read";
  readonly value: string | null;
  readonly callMs: number;
  returnMs: number;
  txId: string | undefined;
  /** What the answer said (or why there was none), for the summary. */
  outcome: "ok" | "failed" | "indeterminate";
  /** Set by the final check: the transaction's status as the primary reported it. */
  status?: string;
}

export interface Target {
  readonly index: number;
  readonly port: number;
}

export interface Tls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** HTTPS to the nodes with one keep-alive agent per node port. */
export class NodeHttp {
  readonly #agents = new Map<number, Agent>();

  constructor(readonly tls: Tls) {}

  #agent(port: number): Agent {
    let agent = this.#agents.get(port);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, maxSockets: 4, ...this.tls });
      this.#agents.set(port, agent);
    }
    return agent;
  }

  call(port: number, method: string, path: string, body?: unknown): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers = text === undefined ? {} : { "content-type": "application/json" };
      const url = `https://127.0.0.1:${port}${path}`;
      const req = request(url, { method, headers, agent: this.#agent(port) }, (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (data += chunk));
        res.on("end", () => {
          const tx = res.headers["x-ms-ccf-transaction-id"];
          resolve({ status: res.statusCode ?? 0, body: data, txId: tx as string | undefined });
        });
        res.on("error", reject);
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end(text);
    });
  }

  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
  }
}

export interface ClientWorld {
  readonly http: NodeHttp;
  readonly keys: readonly number[];
  /** The node believed to be the primary, if any. */
  primary(): Target | undefined;
  /** Every node that should be running. */
  live(): readonly Target[];
  stopped(): boolean;
  record(op: RecordedOp): void;
  /**
   * Reads go to any live node and are not checked with /node/primary: a backup may answer with
   * stale state, so this must make the checker report anomalies (it checks the checker).
   */
  readonly unsafeReads: boolean;
}

let uniqueValue = 0;

async function write(world: ClientWorld, client: number, rng: Prng): Promise<void> {
  const primary = world.primary();
  const live = world.live();
  // Mostly the primary; sometimes a backup, which forwards the write.
  const target = primary !== undefined && rng.chance(0.7) ? primary : rng.pick(live);
  const id = rng.pick(world.keys);
  const value = `c${client}-${++uniqueValue}`;
  const op: RecordedOp = {
    client,
    node: target.index,
    key: String(id),
    kind: "write",
    value,
    callMs: performance.now(),
    returnMs: Infinity,
    txId: undefined,
    outcome: "indeterminate",
  };
  world.record(op);
  const answer = await world.http
    .call(target.port, "POST", "/app/log/private", { id, msg: value })
    .catch(() => undefined);
  if (answer?.status === 200 && answer.txId !== undefined) {
    op.returnMs = performance.now();
    op.txId = answer.txId;
    op.outcome = "ok";
  }
}

async function read(world: ClientWorld, client: number, rng: Prng): Promise<void> {
  const target = world.unsafeReads ? rng.pick(world.live()) : world.primary();
  if (target === undefined) return;
  const id = rng.pick(world.keys);
  const callMs = performance.now();
  const answer = await world.http
    .call(target.port, "GET", `/app/log/private?id=${id}`)
    .catch(() => undefined);
  const returnMs = performance.now();
  const still = world.unsafeReads
    ? { status: 200 }
    : await world.http.call(target.port, "GET", "/node/primary").catch(() => undefined);
  const absent = answer?.status === 404 && /ResourceNotFound/.test(answer.body);
  const ok = still?.status === 200 && (answer?.status === 200 || absent);
  const value = ok && !absent ? (JSON.parse(answer!.body) as { msg: string }).msg : null;
  world.record({
    client,
    node: target.index,
    key: String(id),
    kind: "read",
    value,
    callMs,
    returnMs: ok ? returnMs : Infinity,
    txId: ok && !absent ? answer!.txId : undefined,
    outcome: ok ? "ok" : "failed",
  });
}

/** One client's loop until the world says stop. */
export async function runClient(world: ClientWorld, client: number, rng: Prng): Promise<void> {
  while (!world.stopped()) {
    if (world.live().length === 0) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    if (rng.chance(0.5)) await write(world, client, rng);
    else await read(world, client, rng);
    await new Promise((r) => setTimeout(r, rng.intBelow(20)));
  }
}

/**
 * The history the checker judges, once every transaction's status is known: committed writes
 * (done at their answer), writes of unknown outcome (+Infinity), reads whose state committed.
 */
export function toHistory(ops: readonly RecordedOp[]): HistoryOp[] {
  const history: HistoryOp[] = [];
  for (const op of ops) {
    const base = { client: op.client, node: op.node, key: op.key, callMs: op.callMs };
    if (op.kind === "write") {
      if (op.status === "Invalid") continue;
      const returnMs = op.outcome === "ok" && op.status === "Committed" ? op.returnMs : Infinity;
      history.push({ ...base, input: { kind: "write", value: op.value! }, output: null, returnMs });
    } else if (op.outcome === "ok" && (op.txId === undefined || op.status === "Committed")) {
      history.push({ ...base, input: { kind: "read" }, output: op.value, returnMs: op.returnMs });
    }
  }
  return history;
}
