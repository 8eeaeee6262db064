// The proposal lifecycle (src/gov/proposals.ts) over a real Store with a fake constitution written
// in TS: the proposal id formula, validation failures, resolution on creation and on ballots
// (accepted, rejected, failed), throwing ballots, idempotent and conflicting ballots, withdrawal
// rules, deletion of other closed proposals and the apply-error path. These are the rules CCF's
// gov handlers apply; a difference would make a proposal pass here and fail there (or the
// reverse), so each rule is pinned by a test that fails if the rule is dropped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { utf8 } from "../../../src/base/bytes.js";
import { generateIdentity } from "../../../src/crypto/identity.js";
import { Store } from "../../../src/kv/store.js";
import { type Tx } from "../../../src/kv/tx.js";
import {
  type ConstitutionRunner,
  type JsCallOutcome,
  type ResolveVote,
} from "../../../src/gov/constitution-runner.js";
import {
  createProposal,
  jsonNestingDepth,
  PROPOSAL_NESTING_MAX,
  getBallot,
  getProposal,
  getProposalActions,
  listProposals,
  planBallot,
  proposalIdOf,
  submitBallot,
  type BallotVotes,
  withdrawProposal,
} from "../../../src/gov/proposals.js";
import { entriesById, getById, GOV_MAPS, type NodeInfo, setById } from "../../../src/gov/tables.js";
import { GovError, GovErrorCode } from "../../../src/gov/errors.js";
import { writeGenesis } from "../../../src/gov/genesis.js";

const MARKER_TABLE = "public:test.applied";

/** Proposal bodies steer the fake: {resolve?: fixed result, invalid?, validateThrows?, ...}. */
interface FakeBody {
  readonly resolve?: string;
  readonly invalid?: string;
  readonly validateThrows?: boolean;
  readonly resolveThrows?: boolean;
  readonly applyThrows?: boolean;
  readonly n?: number;
}

/**
 * A constitution in TS. resolve: the proposer counts as a vote for; Accepted when the votes for
 * are a strict majority of Active members, Rejected when the votes against are, else Open.
 * apply writes the body into MARKER_TABLE under the proposal id. Ballots are "true", "false" or
 * "throw".
 */
class FakeRunner implements ConstitutionRunner {
  readonly resolveCalls: ResolveVote[][] = [];
  voteCalls = 0;

  validate(_tx: Tx, proposal: string): JsCallOutcome<{ valid: boolean; description: string }> {
    const body = JSON.parse(proposal) as FakeBody;
    if (body.validateThrows === true) return { kind: "error", reason: "validate blew up" };
    if (body.invalid !== undefined) {
      return { kind: "ok", value: { valid: false, description: body.invalid } };
    }
    return { kind: "ok", value: { valid: true, description: "" } };
  }

  resolve(
    tx: Tx,
    proposal: string,
    proposerId: string,
    votes: readonly ResolveVote[],
  ): JsCallOutcome<string> {
    this.resolveCalls.push([...votes]);
    const body = JSON.parse(proposal) as FakeBody;
    if (body.resolveThrows === true) {
      return { kind: "error", reason: "resolve blew up", trace: "at resolve (constitution)" };
    }
    if (body.resolve !== undefined) return { kind: "ok", value: body.resolve };
    let active = 0;
    for (const [, info] of entriesById(tx, GOV_MAPS.memberInfo)) {
      if (info.status === "Active") active++;
    }
    const voters = votes.filter((v) => v.member_id !== proposerId);
    const votesFor = 1 + voters.filter((v) => v.vote).length;
    const votesAgainst = voters.filter((v) => !v.vote).length;
    const majority = Math.floor(active / 2);
    if (votesFor > majority) return { kind: "ok", value: "Accepted" };
    if (votesAgainst > majority) return { kind: "ok", value: "Rejected" };
    return { kind: "ok", value: "Open" };
  }

  apply(tx: Tx, proposal: string, proposalId: string): JsCallOutcome<void> {
    // Write first, then fail: the caller must discard these partial writes.
    tx.rw(MARKER_TABLE).set(utf8(proposalId), utf8(proposal));
    const body = JSON.parse(proposal) as FakeBody;
    if (body.applyThrows === true) {
      return { kind: "error", reason: "apply blew up", trace: "at apply (constitution)" };
    }
    return { kind: "ok", value: undefined };
  }

  vote(_tx: Tx, ballotSource: string): JsCallOutcome<boolean> {
    this.voteCalls++;
    if (ballotSource === "throw") {
      return { kind: "error", reason: "ballot threw", trace: "at vote (ballot)" };
    }
    return { kind: "ok", value: ballotSource === "true" };
  }
}

const NOW = new Date("2024-01-01T00:00:00Z");
const identities = await Promise.all(
  [0, 1, 2, 3, 4].map((i) => generateIdentity({ name: `member${i}`, now: NOW })),
);

const NODE_INFO: NodeInfo = {
  node_to_node_interface: { bind_address: "127.0.0.1:8081" },
  rpc_interfaces: { primary: { bind_address: "127.0.0.1:8080" } },
  quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
  encryption_pub_key: "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
  status: "Pending",
  node_data: null,
};

/** A store after genesis with `count` members, all Active; member ids are sorted. */
function setup(count: number): { store: Store; members: string[] } {
  const store = new Store();
  const tx = store.begin();
  const { memberIds } = writeGenesis(tx, {
    members: identities.slice(0, count).map((id) => ({ certPem: id.certPem })),
    constitution: "export function resolve() {}",
    serviceCertPem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    serviceData: null,
    configuration: {
      recovery_threshold: 0,
      maximum_node_certificate_validity_days: 365,
      maximum_service_certificate_validity_days: 365,
      reconfiguration_type: "OneTransaction",
      recent_cose_proposals_window_size: 100,
    },
    node: { nodeId: "a".repeat(64), info: NODE_INFO },
    virtualMeasurement: "m",
    virtualHostData: "0".repeat(64),
  });
  for (const id of memberIds) {
    setById(tx, GOV_MAPS.memberInfo, id, { status: "Active", recovery_role: "NonParticipant" });
  }
  assert.equal(store.commit(tx).kind, "committed");
  return { store, members: [...memberIds].sort() };
}

/** Runs `fn` in a fresh tx and commits it; a throw leaves the store untouched. */
function inTx<T>(store: Store, fn: (tx: Tx) => T): T {
  const tx = store.begin();
  const result = fn(tx);
  const outcome = store.commit(tx);
  assert.notEqual(outcome.kind, "conflict");
  return result;
}

function govCode(error: unknown): string {
  assert.ok(error instanceof GovError, `expected a GovError, got ${String(error)}`);
  return error.code;
}

function pid(n: number): string {
  return n.toString(16).padStart(64, "0");
}

function body(extra: FakeBody = {}): string {
  return JSON.stringify({ actions: [], ...extra });
}

function applied(store: Store, proposalId: string): string | undefined {
  const value = store.begin().ro(MARKER_TABLE).get(utf8(proposalId));
  return value === undefined ? undefined : new TextDecoder().decode(value);
}

test("the proposal id is hex SHA-256 of the root followed by SHA-256 of the signature", () => {
  const root = new Uint8Array(32).fill(7);
  const signature = utf8("a COSE signature");
  const inner = createHash("sha256").update(signature).digest();
  const expected = createHash("sha256").update(root).update(inner).digest("hex");
  assert.equal(proposalIdOf(root, signature), expected);
  const otherRoot = new Uint8Array(32).fill(8);
  assert.notEqual(proposalIdOf(otherRoot, signature), expected);
  assert.match(expected, /^[0-9a-f]{64}$/);
});

test("an invalid proposal is refused with the constitution's description and not stored", () => {
  const { store, members } = setup(3);
  const runner = new FakeRunner();
  const tx = store.begin();
  assert.throws(
    () =>
      createProposal(tx, runner, {
        proposalId: pid(1),
        proposerId: members[0]!,
        body: body({ invalid: "no such action" }),
      }),
    (e: unknown) =>
      govCode(e) === GovErrorCode.ProposalFailedToValidate &&
      (e as Error).message === "Proposal failed to validate: no such action",
  );
  assert.equal(getById(tx, GOV_MAPS.proposals, pid(1)), undefined);
  assert.equal(getById(tx, GOV_MAPS.proposalsInfo, pid(1)), undefined);
});

test("a proposal nested deeper than PROPOSAL_NESTING_MAX is refused before the constitution runs", () => {
  const { store, members } = setup(1);
  const runner = new FakeRunner();
  const tx = store.begin();
  const nested = (n: number) => "[".repeat(n) + "]".repeat(n);
  const deep = `{"actions":[{"name":"x","args":{"a":${nested(10_000)}}}]}`;
  assert.throws(
    () => createProposal(tx, runner, { proposalId: pid(1), proposerId: members[0]!, body: deep }),
    (e: unknown) =>
      govCode(e) === GovErrorCode.ProposalFailedToValidate &&
      /nests 10004 levels of arrays and objects; at most 64 are allowed/.test((e as Error).message),
  );
  assert.equal(getById(tx, GOV_MAPS.proposals, pid(1)), undefined);
  // Brackets inside strings do not count; the limit itself is allowed.
  assert.equal(jsonNestingDepth(`{"s":"[[[[\\\"{{{"}`), 1);
  assert.equal(jsonNestingDepth(nested(PROPOSAL_NESTING_MAX)), PROPOSAL_NESTING_MAX);
});

test("an exception in validate is an InternalError", () => {
  const { store, members } = setup(1);
  const tx = store.begin();
  assert.throws(
    () =>
      createProposal(tx, new FakeRunner(), {
        proposalId: pid(1),
        proposerId: members[0]!,
        body: body({ validateThrows: true }),
      }),
    (e: unknown) =>
      govCode(e) === GovErrorCode.InternalError && /validate blew up/.test((e as Error).message),
  );
});

test("with a single active member a proposal is accepted and applied on creation", () => {
  const { store, members } = setup(1);
  const runner = new FakeRunner();
  const text = body({ n: 1 });
  const proposal = inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: members[0]!, body: text }),
  );
  assert.deepEqual(proposal, {
    proposalId: pid(1),
    proposerId: members[0],
    proposalState: "Accepted",
    ballotCount: 0,
    finalVotes: {},
    voteFailures: {},
  });
  assert.equal(applied(store, pid(1)), text);
  assert.equal(
    inTx(store, (tx) => getProposalActions(tx, pid(1))),
    text,
  );
});

test("ballots are counted until a majority accepts, and apply runs once then", () => {
  const { store, members } = setup(5);
  const runner = new FakeRunner();
  const [proposer, a, b] = members as [string, string, string];
  const created = inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  assert.equal(created.proposalState, "Open");
  assert.equal(created.finalVotes, undefined);
  const afterA = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "true" }),
  );
  assert.equal(afterA.proposalState, "Open");
  assert.equal(afterA.ballotCount, 1);
  assert.equal(applied(store, pid(1)), undefined);
  const afterB = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: b, ballot: "true" }),
  );
  assert.equal(afterB.proposalState, "Accepted");
  assert.deepEqual(afterB.finalVotes, { [a]: true, [b]: true });
  assert.equal(applied(store, pid(1)), body());
  assert.deepEqual(
    inTx(store, (tx) => getProposal(tx, pid(1))),
    afterB,
  );
  assert.equal(
    inTx(store, (tx) => getBallot(tx, pid(1), a)),
    "true",
  );
});

test("a majority of votes against rejects the proposal without applying it", () => {
  const { store, members } = setup(3);
  const runner = new FakeRunner();
  const [proposer, a, b] = members as [string, string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "false" }),
  );
  const rejected = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: b, ballot: "false" }),
  );
  assert.equal(rejected.proposalState, "Rejected");
  assert.deepEqual(rejected.finalVotes, { [a]: false, [b]: false });
  assert.equal(applied(store, pid(1)), undefined);
});

test("a resolve returning an unknown state or throwing fails the request (InternalError)", () => {
  const { store, members } = setup(3);
  const tx = store.begin();
  assert.throws(
    () =>
      createProposal(tx, new FakeRunner(), {
        proposalId: pid(1),
        proposerId: members[0]!,
        body: body({ resolve: "Maybe" }),
      }),
    (e: unknown) =>
      govCode(e) === GovErrorCode.InternalError &&
      (e as GovError).type.code === GovErrorCode.InternalError &&
      JSON.stringify((e as GovError).toObject()).includes(
        'resolve() returned invalid status value: \\"Maybe\\"',
      ),
  );
  // The info written before the failure shows the Failed state; the caller discards the tx.
  assert.equal(getById(tx, GOV_MAPS.proposalsInfo, pid(1))?.state, "Failed");
  const tx2 = store.begin();
  assert.throws(
    () =>
      createProposal(tx2, new FakeRunner(), {
        proposalId: pid(2),
        proposerId: members[0]!,
        body: body({ resolveThrows: true }),
      }),
    (e: unknown) => {
      const type = (e as GovError).type;
      return (
        govCode(e) === GovErrorCode.InternalError &&
        type.code === GovErrorCode.InternalError &&
        type.failure?.reason === "Failed to resolve(): resolve blew up" &&
        type.failure.trace === "at resolve (constitution)"
      );
    },
  );
});

test("a throwing ballot is recorded as a vote failure and not counted", () => {
  const { store, members } = setup(5);
  const runner = new FakeRunner();
  const [proposer, a, b, c] = members as [string, string, string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  const open = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "throw" }),
  );
  // While Open, failures are not written (CCF writes them only once the proposal closes).
  assert.equal(open.proposalState, "Open");
  assert.equal(open.voteFailures, undefined);
  inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: b, ballot: "true" }),
  );
  const done = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: c, ballot: "true" }),
  );
  assert.equal(done.proposalState, "Accepted");
  assert.deepEqual(done.voteFailures, {
    [a]: { reason: "ballot threw", trace: "at vote (ballot)" },
  });
  assert.deepEqual(done.finalVotes, { [b]: true, [c]: true });
  const lastVotes = runner.resolveCalls.at(-1)!;
  assert.deepEqual(lastVotes, [
    { member_id: b, vote: true },
    { member_id: c, vote: true },
  ]);
});

test("every stored ballot is re-run on each resolution, in member id order", () => {
  const { store, members } = setup(5);
  const runner = new FakeRunner();
  const [proposer, a, b] = members as [string, string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: b, ballot: "false" }),
  );
  inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "false" }),
  );
  assert.equal(runner.voteCalls, 3);
  assert.deepEqual(runner.resolveCalls.at(-1), [
    { member_id: a, vote: false },
    { member_id: b, vote: false },
  ]);
});

/** The outcomes the fake runner would give, evaluated ahead as a node does (planBallot). */
function evaluateAhead(store: Store, memberId: string, ballot: string): BallotVotes {
  const plan = store.begin();
  const planned = planBallot(plan, { proposalId: pid(1), memberId, ballot });
  assert.equal(planned.kind, "evaluate");
  const fake = new FakeRunner();
  const votes = new Map<string, { ballot: string; outcome: JsCallOutcome<boolean> }>();
  for (const b of planned.kind === "evaluate" ? planned.ballots : []) {
    votes.set(b.memberId, { ballot: b.ballot, outcome: fake.vote(plan, b.ballot) });
  }
  return votes;
}

test("ballots evaluated ahead (planBallot) are counted without running any vote in the tx", () => {
  const { store, members } = setup(5);
  const runner = new FakeRunner();
  const [proposer, a, b, c] = members as [string, string, string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  const submit = (memberId: string, ballot: string, votes: BallotVotes) =>
    inTx(store, (tx) => submitBallot(tx, runner, { proposalId: pid(1), memberId, ballot }, votes));
  // planBallot lists every ballot resolution will count, the new one included, by member id.
  const plan = planBallot(store.begin(), { proposalId: pid(1), memberId: c, ballot: "true" });
  assert.deepEqual(plan.kind === "evaluate" ? plan.ballots : null, [
    { memberId: c, ballot: "true" },
  ]);
  submit(c, "throw", evaluateAhead(store, c, "throw"));
  submit(a, "true", evaluateAhead(store, a, "true"));
  // An identical resubmission is "unchanged"; a different one is refused before evaluation.
  const again = planBallot(store.begin(), { proposalId: pid(1), memberId: a, ballot: "true" });
  assert.equal(again.kind, "unchanged");
  const done = submit(b, "true", evaluateAhead(store, b, "true"));
  assert.equal(runner.voteCalls, 0, "no ballot ran inside the transactions");
  assert.equal(done.proposalState, "Accepted");
  assert.deepEqual(done.finalVotes, { [a]: true, [b]: true });
  assert.deepEqual(done.voteFailures, {
    [c]: { reason: "ballot threw", trace: "at vote (ballot)" },
  });
});

test("votes evaluated from another state (a ballot missing or changed) are refused", () => {
  const { store, members } = setup(5);
  const runner = new FakeRunner();
  const [proposer, a, b] = members as [string, string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  const early = evaluateAhead(store, b, "false");
  inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "false" }),
  );
  // `early` does not know a's ballot, stored since: counting without it would be wrong.
  assert.throws(
    () =>
      submitBallot(
        store.begin(),
        runner,
        { proposalId: pid(1), memberId: b, ballot: "false" },
        early,
      ),
    /was not evaluated from this state/,
  );
});

test("an identical ballot is idempotent and a different one is VoteAlreadyExists", () => {
  const { store, members } = setup(5);
  const runner = new FakeRunner();
  const [proposer, a] = members as [string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  const first = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "false" }),
  );
  const calls = runner.resolveCalls.length;
  const again = inTx(store, (tx) =>
    submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "false" }),
  );
  assert.deepEqual(again, first);
  assert.equal(runner.resolveCalls.length, calls, "an identical ballot does not re-resolve");
  const tx = store.begin();
  assert.throws(
    () => submitBallot(tx, runner, { proposalId: pid(1), memberId: a, ballot: "true" }),
    (e: unknown) => govCode(e) === GovErrorCode.VoteAlreadyExists,
  );
  assert.throws(
    () => submitBallot(tx, runner, { proposalId: pid(9), memberId: a, ballot: "true" }),
    (e: unknown) => govCode(e) === GovErrorCode.ProposalNotFound,
  );
  assert.throws(
    () => getBallot(tx, pid(1), members[2]!),
    (e: unknown) => govCode(e) === GovErrorCode.VoteNotFound,
  );
});

test("a ballot on a proposal that is no longer Open is ProposalNotOpen", () => {
  const { store, members } = setup(1);
  const runner = new FakeRunner();
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: members[0]!, body: body() }),
  );
  assert.throws(
    () =>
      submitBallot(store.begin(), runner, {
        proposalId: pid(1),
        memberId: members[0]!,
        ballot: "true",
      }),
    (e: unknown) => govCode(e) === GovErrorCode.ProposalNotOpen,
  );
});

test("only the proposer may withdraw, only while Open, and unknown proposals give null", () => {
  const { store, members } = setup(3);
  const runner = new FakeRunner();
  const [proposer, other] = members as [string, string];
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  assert.throws(
    () => withdrawProposal(store.begin(), { proposalId: pid(1), memberId: other }),
    (e: unknown) => govCode(e) === GovErrorCode.AuthorizationFailed,
  );
  assert.equal(withdrawProposal(store.begin(), { proposalId: pid(9), memberId: proposer }), null);
  const withdrawn = inTx(store, (tx) =>
    withdrawProposal(tx, { proposalId: pid(1), memberId: proposer }),
  );
  assert.equal(withdrawn?.proposalState, "Withdrawn");
  // Withdrawing again is idempotent, as CCF.
  const again = inTx(store, (tx) =>
    withdrawProposal(tx, { proposalId: pid(1), memberId: proposer }),
  );
  assert.equal(again?.proposalState, "Withdrawn");
  assert.throws(
    () =>
      submitBallot(store.begin(), runner, { proposalId: pid(1), memberId: other, ballot: "true" }),
    (e: unknown) => govCode(e) === GovErrorCode.ProposalNotOpen,
  );
  // A proposal that was accepted cannot be withdrawn.
  inTx(store, (tx) =>
    createProposal(tx, runner, {
      proposalId: pid(2),
      proposerId: proposer,
      body: body({ resolve: "Accepted" }),
    }),
  );
  assert.throws(
    () => withdrawProposal(store.begin(), { proposalId: pid(2), memberId: proposer }),
    (e: unknown) => govCode(e) === GovErrorCode.ProposalNotOpen,
  );
});

test("closing a proposal deletes every other closed proposal but keeps open ones", () => {
  const { store, members } = setup(3);
  const runner = new FakeRunner();
  const proposer = members[0]!;
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: proposer, body: body() }),
  );
  inTx(store, (tx) => withdrawProposal(tx, { proposalId: pid(1), memberId: proposer }));
  inTx(store, (tx) =>
    createProposal(tx, runner, {
      proposalId: pid(2),
      proposerId: proposer,
      body: body({ resolve: "Rejected" }),
    }),
  );
  assert.deepEqual(
    inTx(store, (tx) => listProposals(tx)).map((p) => [p.proposalId, p.proposalState]),
    [[pid(2), "Rejected"]],
  );
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(3), proposerId: proposer, body: body() }),
  );
  inTx(store, (tx) =>
    createProposal(tx, runner, {
      proposalId: pid(4),
      proposerId: proposer,
      body: body({ resolve: "Accepted" }),
    }),
  );
  const left = inTx(store, (tx) => listProposals(tx)).map((p) => [p.proposalId, p.proposalState]);
  assert.deepEqual(left, [
    [pid(3), "Open"],
    [pid(4), "Accepted"],
  ]);
  const tx = store.begin();
  assert.equal(getById(tx, GOV_MAPS.proposals, pid(2)), undefined);
  assert.equal(getById(tx, GOV_MAPS.proposals, pid(1)), undefined);
  assert.equal(getById(tx, GOV_MAPS.proposals, pid(3)), body());
});

test("an apply error is an InternalError and the discarded tx leaves no trace", () => {
  const { store, members } = setup(1);
  const runner = new FakeRunner();
  const tx = store.begin();
  assert.throws(
    () =>
      createProposal(tx, runner, {
        proposalId: pid(1),
        proposerId: members[0]!,
        body: body({ applyThrows: true }),
      }),
    (e: unknown) => {
      const type = (e as GovError).type;
      return (
        govCode(e) === GovErrorCode.InternalError &&
        type.code === GovErrorCode.InternalError &&
        type.failure?.reason === "Failed to apply(): apply blew up"
      );
    },
  );
  // The caller does not commit: nothing of the proposal or of apply's writes exists.
  const fresh = store.begin();
  assert.equal(getById(fresh, GOV_MAPS.proposalsInfo, pid(1)), undefined);
  assert.equal(applied(store, pid(1)), undefined);
});

test("creating a proposal without a constitution or with a taken id is an InternalError", () => {
  const { store, members } = setup(3);
  const runner = new FakeRunner();
  inTx(store, (tx) =>
    createProposal(tx, runner, { proposalId: pid(1), proposerId: members[0]!, body: body() }),
  );
  assert.throws(
    () =>
      createProposal(store.begin(), runner, {
        proposalId: pid(1),
        proposerId: members[0]!,
        body: body(),
      }),
    (e: unknown) =>
      govCode(e) === GovErrorCode.InternalError && /collision/.test((e as Error).message),
  );
  const bare = new Store();
  assert.throws(
    () =>
      createProposal(bare.begin(), runner, {
        proposalId: pid(1),
        proposerId: members[0]!,
        body: body(),
      }),
    (e: unknown) =>
      govCode(e) === GovErrorCode.InternalError && /No constitution/.test((e as Error).message),
  );
});
