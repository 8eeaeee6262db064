/**
 * The proposal lifecycle over one transaction (ccf-compatibility.md §4.2), as CCF's
 * src/node/gov/handlers/proposals.h runs it, without HTTP and without an interpreter: the
 * constitution is a ConstitutionRunner. Authentication, the replay window and cose_history are
 * the HTTP layer's; this module owns `public:ccf.gov.proposals` and `proposals_info`.
 *
 * Resolution (on create and on every new ballot): every stored ballot is re-run with vote(),
 * in member id order; a throwing ballot is a vote failure and is not counted. A node evaluates
 * the ballots before the transaction, off its event loop (planBallot, then submitBallot with
 * their BallotVotes); vote() through the runner remains for callers that run them inline.
 * Then resolve() decides: "Open", "Accepted" or "Rejected"; any other string or an exception
 * is Failed. Once a proposal leaves Open, final_votes and vote_failures are written and every
 * OTHER non-Open proposal is deleted from both tables; an Accepted proposal then runs apply().
 *
 * Invariant (as CCF): a proposal never ends a successful call in state Failed. A Failed
 * resolve() or apply() throws GovError(InternalError) and the caller discards the whole tx, so
 * neither partial apply() writes nor the proposal itself are ever committed.
 */
import { toHex } from "../base/bytes.js";
import { sha256, sha256Concat } from "../crypto/hash.js";
import type { Tx } from "../kv/tx.js";
import { assert } from "../base/assert.js";
import type { ConstitutionRunner, JsCallOutcome, ResolveVote } from "./constitution-runner.js";
import { GovErrorCode, govError, internalError } from "./errors.js";
import {
  entriesById,
  type Failure,
  getById,
  getSingleton,
  GOV_MAPS,
  govMapRw,
  type ProposalInfo,
  type ProposalState,
  setById,
} from "./tables.js";

/** A proposal in the /gov API shape (camelCase), as convert_proposal_to_api_format builds it. */
export interface Proposal {
  proposalId: string;
  proposerId: string;
  proposalState: ProposalState;
  ballotCount: number;
  finalVotes?: Record<string, boolean>;
  voteFailures?: Record<string, Failure>;
  failure?: Failure;
}

/** The proposal id: hex SHA-256(root at the tx's read version || SHA-256(COSE signature)). */
export function proposalIdOf(root: Uint8Array, coseSignature: Uint8Array): string {
  return toHex(sha256Concat([root, sha256(coseSignature)]));
}

export function toApiProposal(proposalId: string, info: ProposalInfo): Proposal {
  const out: Proposal = {
    proposalId,
    proposerId: info.proposer_id,
    proposalState: info.state,
    ballotCount: Object.keys(info.ballots).length,
  };
  if (info.final_votes !== undefined) out.finalVotes = info.final_votes;
  if (info.vote_failures !== undefined) out.voteFailures = info.vote_failures;
  if (info.failure !== undefined) out.failure = info.failure;
  return out;
}

function requireConstitution(tx: Tx, what: string): void {
  if (getSingleton(tx, GOV_MAPS.constitution) === undefined) {
    throw internalError(`No constitution is set - ${what} cannot be evaluated`);
  }
}

function formatFailure(failure: Failure): string {
  return failure.trace === undefined ? failure.reason : `${failure.reason}\n${failure.trace}`;
}

function failureOf(reason: string, trace: string | undefined): Failure {
  return trace === undefined ? { reason } : { reason, trace };
}

export interface CreateProposalInput {
  readonly proposalId: string;
  readonly proposerId: string;
  /** The raw proposal body (JSON text), stored and handed to the constitution verbatim. */
  readonly body: string;
}

/**
 * How deeply a proposal's JSON may nest arrays and objects. The constitution parses it in
 * QuickJS, whose parser recurses per level: 10,000 levels exhausted its stack (a 500 for the
 * proposer). CCF's default actions need fewer than 10 levels.
 */
export const PROPOSAL_NESTING_MAX = 64;

/** The deepest nesting of arrays and objects in JSON text (strings skipped; not validated). */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/**
 * Validates, stores and resolves a new proposal. Throws GovError: ProposalFailedToValidate
 * when validate() says invalid, InternalError for a JS error, an id collision, or a proposal
 * that ends Failed.
 */
export function createProposal(
  tx: Tx,
  runner: ConstitutionRunner,
  input: CreateProposalInput,
): Proposal {
  const { proposalId, proposerId, body } = input;
  requireConstitution(tx, "proposals");
  const depth = jsonNestingDepth(body);
  if (depth > PROPOSAL_NESTING_MAX) {
    throw govError(
      GovErrorCode.ProposalFailedToValidate,
      `Proposal failed to validate: it nests ${depth} levels of arrays and objects; ` +
        `at most ${PROPOSAL_NESTING_MAX} are allowed`,
    );
  }
  const validated = runner.validate(tx, body);
  if (validated.kind === "error") {
    throw internalError(
      `Failed to execute validation: ${validated.reason} ${validated.trace ?? ""}`,
    );
  }
  if (!validated.value.valid) {
    throw govError(
      GovErrorCode.ProposalFailedToValidate,
      `Proposal failed to validate: ${validated.value.description}`,
    );
  }
  // Read before writing, as CCF does: concurrent identical creations then conflict, and an
  // existing id can only be a hash collision.
  const proposals = govMapRw(tx, GOV_MAPS.proposals);
  if (proposals.has(proposalId)) throw internalError("Proposal ID collision.");
  proposals.set(proposalId, body);
  const info: ProposalInfo = { proposer_id: proposerId, state: "Open", ballots: {} };
  setById(tx, GOV_MAPS.proposalsInfo, proposalId, info);
  return resolveAndReport(tx, runner, proposalId, body, info);
}

export interface SubmitBallotInput {
  readonly proposalId: string;
  readonly memberId: string;
  /** The ballot's JS source, exporting `vote(proposal, proposerId)`. */
  readonly ballot: string;
}

/**
 * The outcome of every ballot of a proposal, evaluated before the transaction that records the
 * new one (off the node's event loop: js/ballot-pool.ts), keyed by member id. Each entry names
 * the source it is the outcome of, so a ballot can only be counted with its own result.
 */
export type BallotVotes = ReadonlyMap<
  string,
  { readonly ballot: string; readonly outcome: JsCallOutcome<boolean> }
>;

/** What submitting a ballot needs evaluated, as planBallot finds it. */
export type BallotPlan =
  /** Resubmission of the member's identical ballot: nothing to evaluate, nothing to write. */
  | { readonly kind: "unchanged"; readonly proposal: Proposal }
  | {
      readonly kind: "evaluate";
      readonly body: string;
      readonly proposerId: string;
      /** Every ballot resolution will count, the new one included, in member id order. */
      readonly ballots: readonly { readonly memberId: string; readonly ballot: string }[];
    };

/**
 * The checks of submitBallot, without writing: the proposal exists and is Open, a constitution
 * is set, and the member has not voted differently (GovError as submitBallot). Read-only, so
 * the ballots can be evaluated outside the transaction that records the new one.
 */
export function planBallot(tx: Tx, input: SubmitBallotInput): BallotPlan {
  const { proposalId, memberId, ballot } = input;
  const { info, body } = requireOpen(tx, proposalId);
  if (alreadyVoted(info, input)) {
    return { kind: "unchanged", proposal: toApiProposal(proposalId, info) };
  }
  const all = { ...info.ballots, [memberId]: ballot };
  const ballots = Object.keys(all)
    .sort()
    .map((id) => ({ memberId: id, ballot: all[id]! }));
  return { kind: "evaluate", body, proposerId: info.proposer_id, ballots };
}

/** Whether the member already cast this very ballot; VoteAlreadyExists for a different one. */
function alreadyVoted(info: ProposalInfo, input: SubmitBallotInput): boolean {
  const previous = info.ballots[input.memberId];
  if (previous === undefined) return false;
  if (previous === input.ballot) return true;
  throw govError(
    GovErrorCode.VoteAlreadyExists,
    `Different ballot already submitted by ${input.memberId} for ${input.proposalId}.`,
  );
}

function requireOpen(tx: Tx, proposalId: string): { info: ProposalInfo; body: string } {
  const info = requireInfo(tx, proposalId);
  if (info.state !== "Open") {
    throw govError(
      GovErrorCode.ProposalNotOpen,
      `Proposal ${proposalId} is currently in state ${info.state} - only Open proposals can ` +
        `receive votes`,
    );
  }
  const body = getById(tx, GOV_MAPS.proposals, proposalId);
  if (body === undefined) throw notFound(proposalId);
  requireConstitution(tx, "ballots");
  return { info, body };
}

/**
 * Records a member's ballot and resolves the proposal. Resubmitting the identical ballot
 * returns the proposal unchanged; a different one is VoteAlreadyExists. With `votes`, the
 * ballots are not run: each one's outcome is taken from `votes`, which must hold every ballot
 * the proposal then has, with the same source (an assertion: the caller evaluated them from
 * the same state, see planBallot); without, each is run with `runner.vote`.
 */
export function submitBallot(
  tx: Tx,
  runner: ConstitutionRunner,
  input: SubmitBallotInput,
  votes?: BallotVotes,
): Proposal {
  const { proposalId, memberId, ballot } = input;
  const { info, body } = requireOpen(tx, proposalId);
  if (alreadyVoted(info, input)) return toApiProposal(proposalId, info);
  info.ballots[memberId] = ballot;
  setById(tx, GOV_MAPS.proposalsInfo, proposalId, info);
  return resolveAndReport(tx, runner, proposalId, body, info, votes);
}

export interface WithdrawInput {
  readonly proposalId: string;
  readonly memberId: string;
}

/**
 * Withdraws an Open proposal on behalf of its proposer. Returns null for an unknown proposal
 * (CCF answers 204: withdrawal is idempotent). Withdrawing an already Withdrawn proposal
 * returns it unchanged, as CCF does; any other closed state is ProposalNotOpen.
 */
export function withdrawProposal(tx: Tx, input: WithdrawInput): Proposal | null {
  const { proposalId, memberId } = input;
  const info = getById(tx, GOV_MAPS.proposalsInfo, proposalId);
  if (info === undefined) return null;
  if (memberId !== info.proposer_id) {
    throw govError(
      GovErrorCode.AuthorizationFailed,
      `Proposal ${proposalId} can only be withdrawn by proposer ${info.proposer_id}, not ` +
        `caller ${memberId}.`,
    );
  }
  if (info.state !== "Open" && info.state !== "Withdrawn") {
    throw govError(
      GovErrorCode.ProposalNotOpen,
      `Proposal ${proposalId} is currently in state ${info.state} and cannot be withdrawn.`,
    );
  }
  if (info.state === "Open") {
    info.state = "Withdrawn";
    setById(tx, GOV_MAPS.proposalsInfo, proposalId, info);
    removeOtherClosedProposals(tx, proposalId);
  }
  return toApiProposal(proposalId, info);
}

export function getProposal(tx: Tx, proposalId: string): Proposal {
  return toApiProposal(proposalId, requireInfo(tx, proposalId));
}

/** Every stored proposal, in proposal id order. */
export function listProposals(tx: Tx): Proposal[] {
  return entriesById(tx, GOV_MAPS.proposalsInfo).map(([id, info]) => toApiProposal(id, info));
}

/** The raw body the proposal was submitted with. */
export function getProposalActions(tx: Tx, proposalId: string): string {
  const body = getById(tx, GOV_MAPS.proposals, proposalId);
  if (body === undefined) throw notFound(proposalId);
  return body;
}

/** The JS source of a member's ballot. */
export function getBallot(tx: Tx, proposalId: string, memberId: string): string {
  const info = getById(tx, GOV_MAPS.proposalsInfo, proposalId);
  if (info === undefined) {
    throw govError(GovErrorCode.ProposalNotFound, `Proposal ${proposalId} does not exist.`);
  }
  const ballot = info.ballots[memberId];
  if (ballot === undefined) {
    throw govError(
      GovErrorCode.VoteNotFound,
      `Member ${memberId} has not voted for proposal ${proposalId}.`,
    );
  }
  return ballot;
}

function notFound(proposalId: string) {
  return govError(GovErrorCode.ProposalNotFound, `Could not find proposal ${proposalId}.`);
}

function requireInfo(tx: Tx, proposalId: string): ProposalInfo {
  const info = getById(tx, GOV_MAPS.proposalsInfo, proposalId);
  if (info === undefined) throw notFound(proposalId);
  return info;
}

/** Resolves, then refuses a Failed outcome: the caller must discard the tx (module doc). */
function resolveAndReport(
  tx: Tx,
  runner: ConstitutionRunner,
  proposalId: string,
  body: string,
  info: ProposalInfo,
  votes?: BallotVotes,
): Proposal {
  resolveProposal(tx, runner, proposalId, body, info, votes);
  if (info.state === "Failed") {
    const failure = info.failure ?? { reason: "proposal failed" };
    throw internalError(formatFailure(failure), failure);
  }
  return toApiProposal(proposalId, info);
}

const RESOLVE_STATES: ReadonlyMap<string, ProposalState> = new Map<string, ProposalState>([
  ["Open", "Open"],
  ["Accepted", "Accepted"],
  ["Rejected", "Rejected"],
]);

/** CCF's resolve_proposal: updates `info` in place and writes it back to proposals_info. */
function resolveProposal(
  tx: Tx,
  runner: ConstitutionRunner,
  proposalId: string,
  body: string,
  info: ProposalInfo,
  evaluated: BallotVotes | undefined,
): void {
  const votes: ResolveVote[] = [];
  const finalVotes: Record<string, boolean> = {};
  const voteFailures: Record<string, Failure> = {};
  // Member id order: CCF keeps ballots in a std::map, so resolve() sees votes in this order.
  const memberIds = Object.keys(info.ballots).sort();
  for (const memberId of memberIds) {
    const ballot = info.ballots[memberId]!;
    const outcome = voteOf(tx, runner, evaluated, memberId, ballot, body, info.proposer_id);
    if (outcome.kind === "ok") {
      votes.push({ member_id: memberId, vote: outcome.value });
      finalVotes[memberId] = outcome.value;
    } else {
      voteFailures[memberId] = failureOf(outcome.reason, outcome.trace);
    }
  }
  const resolved = runner.resolve(tx, body, info.proposer_id, votes, proposalId);
  if (resolved.kind === "error") {
    info.state = "Failed";
    info.failure = failureOf(`Failed to resolve(): ${resolved.reason}`, resolved.trace);
  } else {
    const state = RESOLVE_STATES.get(resolved.value);
    if (state !== undefined) info.state = state;
    else {
      info.state = "Failed";
      info.failure = { reason: `resolve() returned invalid status value: "${resolved.value}"` };
    }
  }
  setById(tx, GOV_MAPS.proposalsInfo, proposalId, info);
  if (info.state === "Open") return;

  removeOtherClosedProposals(tx, proposalId);
  info.final_votes = finalVotes;
  info.vote_failures = voteFailures;
  setById(tx, GOV_MAPS.proposalsInfo, proposalId, info);
  if (info.state !== "Accepted") return;

  const applied = runner.apply(tx, body, proposalId);
  if (applied.kind === "error") {
    info.state = "Failed";
    info.failure = failureOf(`Failed to apply(): ${applied.reason}`, applied.trace);
    setById(tx, GOV_MAPS.proposalsInfo, proposalId, info);
  }
}

/** A ballot's outcome: the one evaluated beforehand when there are some, else run now. */
function voteOf(
  tx: Tx,
  runner: ConstitutionRunner,
  evaluated: BallotVotes | undefined,
  memberId: string,
  ballot: string,
  body: string,
  proposerId: string,
): JsCallOutcome<boolean> {
  if (evaluated === undefined) return runner.vote(tx, ballot, body, proposerId);
  const known = evaluated.get(memberId);
  assert(
    known !== undefined && known.ballot === ballot,
    `the ballot of ${memberId} was not evaluated from this state`,
  );
  return known.outcome;
}

/** Deletes every proposal except `proposalId` that is no longer Open, from both tables. */
function removeOtherClosedProposals(tx: Tx, proposalId: string): void {
  const doomed: string[] = [];
  for (const [id, info] of entriesById(tx, GOV_MAPS.proposalsInfo)) {
    if (id !== proposalId && info.state !== "Open") doomed.push(id);
  }
  const proposals = govMapRw(tx, GOV_MAPS.proposals);
  const infos = govMapRw(tx, GOV_MAPS.proposalsInfo);
  for (const id of doomed) {
    proposals.delete(id);
    infos.delete(id);
  }
}

/** Records a member's latest signed governance request (`public:ccf.gov.cose_history`). */
export function recordCoseHistory(tx: Tx, memberId: string, coseSign1: Uint8Array): void {
  setById(tx, GOV_MAPS.coseHistory, memberId, coseSign1);
}
