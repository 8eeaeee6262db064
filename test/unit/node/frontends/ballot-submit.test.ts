// Ballot submission in phases (src/node/frontends/ballot-submit.ts) over a real Store, with the
// evaluator and constitution faked: the ballots are evaluated outside the recording tx, each
// once; a state change between the read and the write (another member's ballot) discards the
// write and redoes the evaluation from the new state; endless changes give up with 503; a
// ballot stopped by a limit is recorded as a vote failure and not counted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateIdentity } from "../../../../src/crypto/identity.js";
import type {
  ConstitutionRunner,
  JsCallOutcome,
  ResolveVote,
} from "../../../../src/gov/constitution-runner.js";
import { writeGenesis } from "../../../../src/gov/genesis.js";
import {
  createProposal,
  submitBallot,
  type SubmitBallotInput,
} from "../../../../src/gov/proposals.js";
import { GOV_MAPS, setById, type NodeInfo } from "../../../../src/gov/tables.js";
import { HttpError } from "../../../../src/http/errors.js";
import type { RpcOutcome, RpcResponse } from "../../../../src/http/router.js";
import type { BallotJob } from "../../../../src/js/ballot-pool.js";
import { OUT_OF_MEMORY_REASON } from "../../../../src/js/constitution.js";
import { Store } from "../../../../src/kv/store.js";
import type { Tx } from "../../../../src/kv/tx.js";
import {
  BALLOT_ATTEMPTS_MAX,
  type BallotEvaluator,
  submitBallotOffThread,
} from "../../../../src/node/frontends/ballot-submit.js";

const PROPOSAL_ID = "ab".repeat(32);
const NOW = new Date("2024-01-01T00:00:00Z");
const identities = await Promise.all(
  [0, 1, 2].map((i) => generateIdentity({ name: `member${i}`, now: NOW })),
);

/** Accepted once two ballots vote for; ballots must never run here. */
class Constitution implements ConstitutionRunner {
  validate(): JsCallOutcome<{ valid: boolean; description: string }> {
    return { kind: "ok", value: { valid: true, description: "" } };
  }
  resolve(_tx: Tx, _p: string, _id: string, votes: readonly ResolveVote[]): JsCallOutcome<string> {
    return { kind: "ok", value: votes.filter((v) => v.vote).length >= 2 ? "Accepted" : "Open" };
  }
  apply(): JsCallOutcome<void> {
    return { kind: "ok", value: undefined };
  }
  vote(): JsCallOutcome<boolean> {
    assert.fail("a ballot ran inside the transaction");
  }
}

const NODE_INFO: NodeInfo = {
  node_to_node_interface: { bind_address: "127.0.0.1:8081" },
  rpc_interfaces: { primary: { bind_address: "127.0.0.1:8080" } },
  quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
  encryption_pub_key: "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
  status: "Pending",
  node_data: null,
};

/** A store after genesis with three Active members and one Open proposal by the first. */
function setup(): { store: Store; members: string[] } {
  const store = new Store();
  const tx = store.begin();
  const { memberIds } = writeGenesis(tx, {
    members: identities.map((id) => ({ certPem: id.certPem })),
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
  const members = [...memberIds].sort();
  const body = JSON.stringify({ actions: [] });
  createProposal(tx, new Constitution(), {
    proposalId: PROPOSAL_ID,
    proposerId: members[0]!,
    body,
  });
  assert.equal(store.commit(tx).kind, "committed");
  return { store, members };
}

/** Ballot sources are "true", "false" or "oom"; the outcomes a worker would give. */
function outcomeOf(ballot: string): JsCallOutcome<boolean> {
  if (ballot === "oom") return { kind: "error", reason: OUT_OF_MEMORY_REASON };
  return { kind: "ok", value: ballot === "true" };
}

class FakeEvaluator implements BallotEvaluator {
  readonly jobs: BallotJob[] = [];
  constructor(private readonly meanwhile: (call: number) => void = () => {}) {}
  warm(): void {}
  async evaluate(job: BallotJob): Promise<JsCallOutcome<boolean>[]> {
    this.jobs.push(job);
    await new Promise((resolve) => setImmediate(resolve));
    this.meanwhile(this.jobs.length);
    return job.ballots.map(outcomeOf);
  }
}

/** The phases over `store`, as the node runs them through its pipeline. */
function submit(store: Store, evaluator: BallotEvaluator, input: SubmitBallotInput) {
  return submitBallotOffThread({
    runner: new Constitution(),
    evaluator,
    read: (handler) => {
      const tx = store.begin();
      handler(tx, input);
      assert.equal(store.commit(tx).kind, "read-only");
      return { status: 200 };
    },
    write: (handler) => {
      const tx = store.begin();
      const response = handler(tx, input);
      if (response.status === 200) assert.equal(store.commit(tx).kind, "committed");
      return response;
    },
  });
}

/** Another member's ballot recorded directly, as a concurrent request would. */
function otherBallot(store: Store, memberId: string, ballot: string): void {
  const tx = store.begin();
  const votes = new Map([[memberId, { ballot, outcome: outcomeOf(ballot) }]]);
  submitBallot(tx, new Constitution(), { proposalId: PROPOSAL_ID, memberId, ballot }, votes);
  assert.equal(store.commit(tx).kind, "committed");
}

function proposalOf(outcome: RpcOutcome): Record<string, unknown> {
  const response = outcome as RpcResponse;
  assert.equal(response.status, 200);
  return response.body as Record<string, unknown>;
}

test("a ballot is evaluated outside the tx and recorded with its outcome", async () => {
  const { store, members } = setup();
  const evaluator = new FakeEvaluator();
  const answer = await submit(store, evaluator, {
    proposalId: PROPOSAL_ID,
    memberId: members[1]!,
    ballot: "true",
  });
  assert.equal(proposalOf(answer).ballotCount, 1);
  assert.equal(proposalOf(answer).proposalState, "Open");
  assert.deepEqual(
    evaluator.jobs.map((j) => j.ballots),
    [["true"]],
  );
});

test("a state change while ballots are evaluated redoes the evaluation from the new state", async () => {
  const { store, members } = setup();
  // While member 2's ballot is evaluated the first time, member 1's "oom" ballot is recorded.
  const evaluator = new FakeEvaluator((call) => {
    if (call === 1) otherBallot(store, members[1]!, "oom");
  });
  const answer = await submit(store, evaluator, {
    proposalId: PROPOSAL_ID,
    memberId: members[2]!,
    ballot: "true",
  });
  // First from the old state (member 2 only), then again with member 1's ballot, each once.
  assert.deepEqual(
    evaluator.jobs.map((j) => j.ballots),
    [["true"], ["oom", "true"]],
  );
  const proposal = proposalOf(answer);
  assert.equal(proposal.ballotCount, 2);
  assert.equal(proposal.proposalState, "Open");
  // Member 0 votes for: accepted with two votes; the stopped ballot is a vote failure.
  const last = await submit(store, new FakeEvaluator(), {
    proposalId: PROPOSAL_ID,
    memberId: members[0]!,
    ballot: "true",
  });
  const accepted = proposalOf(last);
  assert.equal(accepted.proposalState, "Accepted");
  assert.deepEqual(accepted.finalVotes, { [members[0]!]: true, [members[2]!]: true });
  assert.deepEqual(accepted.voteFailures, { [members[1]!]: { reason: OUT_OF_MEMORY_REASON } });
});

test("a state that keeps changing gives up after BALLOT_ATTEMPTS_MAX evaluations with 503", async () => {
  const { store, members } = setup();
  const evaluator = new FakeEvaluator(() => {
    const tx = store.begin();
    setById(tx, GOV_MAPS.memberInfo, members[1]!, {
      status: "Active",
      recovery_role: "NonParticipant",
      member_data: { touched: Math.random() },
    });
    assert.equal(store.commit(tx).kind, "committed");
  });
  await assert.rejects(
    submit(store, evaluator, { proposalId: PROPOSAL_ID, memberId: members[2]!, ballot: "true" }),
    (e: unknown) =>
      e instanceof HttpError &&
      e.status === 503 &&
      e.code === "TransactionCommitAttemptsExceedLimit",
  );
  assert.equal(evaluator.jobs.length, BALLOT_ATTEMPTS_MAX);
  const tx = store.begin();
  assert.equal(Object.keys(readInfo(tx).ballots).length, 0, "nothing recorded");
});

function readInfo(tx: Tx) {
  const raw = tx.ro("public:ccf.gov.proposals_info").get(new TextEncoder().encode(PROPOSAL_ID));
  return JSON.parse(new TextDecoder().decode(raw)) as { ballots: Record<string, string> };
}
