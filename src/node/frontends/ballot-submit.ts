/**
 * Submitting a ballot without running any ballot on the node's thread (issue #15): the request
 * is split around an await, since a transaction is never held across one.
 *
 * 1. A read-only transaction authenticates the member, checks the ballot (gov planBallot) and
 *    copies what ballots may read (js/ballot-view.ts), with the stamp of its version.
 * 2. Every ballot the proposal will then have, the new one included, is evaluated once, off the
 *    thread (js/ballot-pool.ts): a ballot stopped by time, memory or its stack is a vote
 *    failure, as any other failing ballot.
 * 3. An ordinary synchronous transaction (authentication again, cose_history) checks that the
 *    stamp is unchanged, then records the ballot and resolves the proposal with those outcomes
 *    (gov submitBallot with BallotVotes), applying it if accepted. If the state changed
 *    meanwhile (another ballot, a proposal closed, a member added), the outcomes may be stale:
 *    the transaction is discarded and the request starts again from 1, at most
 *    BALLOT_ATTEMPTS_MAX times, then answers as CCF does a transaction that kept conflicting
 *    (503 TransactionCommitAttemptsExceedLimit, Retry-After: 3).
 */
import { assert } from "../../base/assert.js";
import type { ConstitutionRunner, JsCallOutcome } from "../../gov/constitution-runner.js";
import {
  type BallotPlan,
  type BallotVotes,
  planBallot,
  submitBallot,
  type SubmitBallotInput,
} from "../../gov/proposals.js";
import type { Tx } from "../../kv/tx.js";
import type { BallotJob } from "../../js/ballot-pool.js";
import { type BallotView, ballotViewStamp, readBallotView } from "../../js/ballot-view.js";
import { HttpError, HttpErrorCode, type JsonBody } from "../../http/errors.js";
import { isForward, type RpcOutcome, type RpcResponse } from "../../http/router.js";
import { json } from "./rpc-context.js";

export const BALLOT_ATTEMPTS_MAX = 3;

/** Evaluates ballots off the node's thread (js/ballot-pool.ts's BallotPool). */
export interface BallotEvaluator {
  evaluate(job: BallotJob): Promise<readonly JsCallOutcome<boolean>[]>;
  /** Gets ready for ballots ahead of the first (starts the pool's workers). */
  warm(): void;
}

export interface BallotSubmission {
  readonly runner: ConstitutionRunner;
  readonly evaluator: BallotEvaluator;
  /**
   * Phase 1: runs `handler` in a read-only transaction, after authenticating the caller, with
   * the ballot the request submits; answers 200 unless the handler throws (or forwards).
   */
  readonly read: (handler: (tx: Tx, input: SubmitBallotInput) => void) => RpcOutcome;
  /** Phase 3: runs `handler` in the member's write transaction (authenticated again). */
  readonly write: (handler: (tx: Tx, input: SubmitBallotInput) => RpcResponse) => RpcOutcome;
}

/** The answer to a ballot submission: the proposal, as CCF answers it. */
export async function submitBallotOffThread(submission: BallotSubmission): Promise<RpcOutcome> {
  for (let attempt = 1; attempt <= BALLOT_ATTEMPTS_MAX; attempt++) {
    let read: { plan: BallotPlan; view: BallotView } | null = null;
    const readOutcome = submission.read((tx, input) => {
      read = { plan: planBallot(tx, input), view: readBallotView(tx) };
    });
    // Typed through a cast: TypeScript does not see the callback's assignment.
    const phase1 = read as { plan: BallotPlan; view: BallotView } | null;
    if (phase1 === null || isForward(readOutcome)) return readOutcome;
    const votes = await evaluate(submission.evaluator, phase1.plan, phase1.view);
    let stale = false;
    const outcome = submission.write((tx, input) => {
      if (ballotViewStamp(tx) !== phase1.view.stamp) {
        stale = true;
        return { status: 409 }; // discarded: not 2xx
      }
      const proposal = submitBallot(tx, submission.runner, input, votes);
      return json(proposal as unknown as JsonBody);
    });
    if (!stale) return outcome;
  }
  // As CCF answers a transaction that kept conflicting: 503, with Retry-After.
  throw new HttpError(
    HttpErrorCode.TransactionCommitAttemptsExceedLimit,
    `Transaction continued to conflict after ${BALLOT_ATTEMPTS_MAX} attempts: the proposal's ` +
      `state kept changing while its ballots were evaluated. Retry later.`,
    { headers: { "retry-after": "3" } },
  );
}

/** Every ballot of `plan` evaluated once, off the thread, keyed by member id. */
async function evaluate(
  evaluator: BallotEvaluator,
  plan: BallotPlan,
  view: BallotView,
): Promise<BallotVotes> {
  const votes = new Map<string, { ballot: string; outcome: JsCallOutcome<boolean> }>();
  if (plan.kind !== "evaluate") return votes;
  const outcomes = await evaluator.evaluate({
    view: view.writeSet,
    proposal: plan.body,
    proposerId: plan.proposerId,
    ballots: plan.ballots.map((b) => b.ballot),
  });
  assert(outcomes.length === plan.ballots.length, "every ballot has exactly one outcome");
  plan.ballots.forEach((b, i) =>
    votes.set(b.memberId, { ballot: b.ballot, outcome: outcomes[i]! }),
  );
  return votes;
}
