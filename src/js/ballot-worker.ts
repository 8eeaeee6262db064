/**
 * Ballot worker thread (ballot-pool.ts): evaluates members' ballots with a QuickJS module of its
 * own, so that whatever a ballot does happens off the node's event loop and in WASM memory that
 * is freed when the pool terminates this thread.
 *
 * Protocol: once its module is loaded it posts `ready`; for each job it applies the job's view
 * (ballot-view.ts) to a store of its own, then runs the ballots from `start` in order, each in a
 * fresh runtime under the sandbox's limits (QuickJsConstitution.vote), posting one `vote` per
 * ballot. A vote says whether the module is spent (BallotWorkerMessage): "unsound" (a host
 * failure, a discarded module) is the thread's last word on the job, the pool replaces it
 * before the job's remaining ballots run; "retire" (a limit was hit or the memory grew: large
 * but sound) lets it go on until its replacement is ready. The pool's watchdog covers what the
 * limits cannot stop. The pool starts the thread at a lower priority than the node's (nice 5,
 * where the OS allows it), so a ballot spinning until its deadline does not take the CPU from
 * heartbeats and requests.
 */
import { parentPort, workerData } from "node:worker_threads";
import { assert } from "../base/assert.js";
import { isForeignError } from "../base/errors.js";
import type { JsCallOutcome } from "../gov/constitution-runner.js";
import type { Store } from "../kv/store.js";
import { storeOfView } from "./ballot-view.js";
import { OUT_OF_MEMORY_REASON, QuickJsConstitution, TIMEOUT_REASON } from "./constitution.js";
import type { GovHost } from "./gov-globals.js";
import { getQuickJS, isDiscarded, wasmBytes } from "./quickjs.js";
import {
  type BallotJobMessage,
  type BallotWorkerData,
  type BallotWorkerMessage,
  STACK_OVERFLOW_REASON,
} from "./ballot-protocol.js";

/** Limits hit: the module is sound but may have grown to its cap, so it is retired. */
const SPENDING_REASONS: ReadonlySet<string> = new Set([
  TIMEOUT_REASON,
  OUT_OF_MEMORY_REASON,
  STACK_OVERFLOW_REASON,
]);

/** Ballots never reach ccf.node or ccf.network: those exist in apply only. */
const NO_GOV_HOST: GovHost = new Proxy({} as GovHost, {
  get: () => () => assert(false, "a ballot reached the governance host"),
});

const data = workerData as BallotWorkerData;
const quickjs = await getQuickJS();
const runner = new QuickJsConstitution(quickjs, null, { host: NO_GOV_HOST, limits: data.limits });

type Spent = "unsound" | "retire" | null;

/** One ballot's outcome, and whether the module is spent after it (module comment). */
function vote(
  job: BallotJobMessage,
  store: Store,
  ballot: string,
): { outcome: JsCallOutcome<boolean>; spent: Spent } {
  let outcome: JsCallOutcome<boolean>;
  try {
    outcome = runner.vote(store.begin(), ballot, job.proposal, job.proposerId);
  } catch (err: unknown) {
    // QuickJS failing in a way the sandbox does not classify (e.g. an abort while freeing the
    // runtime): the ballot's failure, and this module is not used again. Our own errors
    // (assertions, typed errors) still propagate and end the thread.
    if (!isForeignError(err)) throw err;
    const reason = `Exception thrown: ${err.message}`;
    return { outcome: { kind: "error", reason }, spent: "unsound" };
  }
  if (isDiscarded(quickjs)) return { outcome, spent: "unsound" };
  const limitHit = outcome.kind === "error" && SPENDING_REASONS.has(outcome.reason);
  const retire = limitHit || wasmBytes(quickjs) > data.recycleBytes;
  return { outcome, spent: retire ? "retire" : null };
}

parentPort!.on("message", (job: BallotJobMessage) => {
  // One store for the job: each ballot reads it through a transaction of its own.
  const store = storeOfView(job.view);
  for (let index = job.start; index < job.ballots.length; index++) {
    const { outcome, spent } = vote(job, store, job.ballots[index]!);
    const message: BallotWorkerMessage = { kind: "vote", id: job.id, index, outcome, spent };
    parentPort!.postMessage(message);
    if (spent === "unsound") return;
  }
});
parentPort!.postMessage({ kind: "ready" } satisfies BallotWorkerMessage);
