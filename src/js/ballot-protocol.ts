/**
 * The messages between the ballot pool (ballot-pool.ts, on the node's thread) and its worker
 * (ballot-worker.ts); the protocol itself is described in ballot-worker.ts.
 */
import type { JsCallOutcome } from "../gov/constitution-runner.js";
import type { WriteSet } from "../kv/write-set.js";
import { type JsLimits, STACK_OVERFLOW_MESSAGE } from "./sandbox.js";

export interface BallotWorkerData {
  readonly limits: JsLimits;
  /** Past this much WASM memory after a ballot, the thread asks to be replaced. */
  readonly recycleBytes: number;
}

export interface BallotJobMessage {
  readonly kind: "job";
  readonly id: number;
  readonly view: WriteSet;
  readonly proposal: string;
  readonly proposerId: string;
  readonly ballots: readonly string[];
  /** The index of the first ballot to run (earlier ones ran on a thread since replaced). */
  readonly start: number;
}

export type BallotWorkerMessage =
  | { readonly kind: "ready" }
  | {
      readonly kind: "vote";
      readonly id: number;
      readonly index: number;
      readonly outcome: JsCallOutcome<boolean>;
      /**
       * "unsound": the module may be broken; this was the thread's last vote of the job, and it
       * must be replaced before the rest runs. "retire": the module is sound but large (a limit
       * was hit, or it grew): it keeps serving until its replacement is ready, then goes.
       */
      readonly spent: "unsound" | "retire" | null;
    };

/** The reason of a guest stopped by its stack limit (as QuickJsConstitution reports it). */
export const STACK_OVERFLOW_REASON = `Exception thrown: ${STACK_OVERFLOW_MESSAGE}`;
