/**
 * The boundary between the governance core and the constitution's JavaScript
 * (ccf-compatibility.md §4.2): the QuickJS implementation in src/js satisfies this
 * interface; the core (proposals.ts) never sees an interpreter, so it is tested with a fake.
 *
 * Contract for implementations, following CCF src/node/gov/handlers/proposals.h:
 * - validate, resolve and vote get read-only access to the gov and internal tables through
 *   `tx`; apply reads and writes gov tables (and may only write public app tables).
 * - A JS exception (or an interrupt for time/memory) is `{kind: "error", reason, trace?}`,
 *   never a thrown error; `reason` is the exception message as CCF's error_message() gives it.
 * - validate must return an object; a non-object result is an error ("Validation failed to
 *   return an object"). `valid` is true only for the JS value true; a non-string description
 *   becomes "".
 * - resolve's result is converted to a string the way JS's String() would; the core decides
 *   which strings are states.
 * - vote is `true` only for the JS value true: any other return value votes against.
 * - The constitution is the `public:ccf.gov.constitution` singleton read through `tx`.
 */
import type { Tx } from "../kv/tx.js";

export type JsCallOutcome<T> =
  | { readonly kind: "ok"; readonly value: T }
  | { readonly kind: "error"; readonly reason: string; readonly trace?: string };

export interface ValidateResult {
  readonly valid: boolean;
  readonly description: string;
}

/** One counted ballot, as resolve() receives it. */
export interface ResolveVote {
  readonly member_id: string;
  readonly vote: boolean;
}

export interface ConstitutionRunner {
  /** `validate(proposal)` from the constitution. */
  validate(tx: Tx, proposal: string): JsCallOutcome<ValidateResult>;
  /** `resolve(proposal, proposerId, votes, proposalId)` from the constitution. */
  resolve(
    tx: Tx,
    proposal: string,
    proposerId: string,
    votes: readonly ResolveVote[],
    proposalId: string,
  ): JsCallOutcome<string>;
  /** `apply(proposal, proposalId)` from the constitution, read-write. */
  apply(tx: Tx, proposal: string, proposalId: string): JsCallOutcome<void>;
  /** `vote(proposal, proposerId)` exported by a ballot's own source. */
  vote(tx: Tx, ballotSource: string, proposal: string, proposerId: string): JsCallOutcome<boolean>;
}
