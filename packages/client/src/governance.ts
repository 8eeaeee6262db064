/**
 * Governance over CCF's modern API (api-version 2024-07-01): every write is a COSE_Sign1 signed
 * by a member (cose.ts) with the message type its endpoint expects, sent as application/cose.
 *
 *   propose   POST /gov/members/proposals:create                          proposal
 *   vote      POST /gov/members/proposals/{id}/ballots/{member}:submit    ballot, proposal_id
 *   withdraw  POST /gov/members/proposals/{id}:withdraw                   withdrawal, proposal_id
 *   ack       POST /gov/members/state-digests/{member}:update, then :ack  state_digest, ack
 *   recover   POST /gov/recovery/members/{member}:recover                 recovery_share
 * and the unsigned reads: proposals, one proposal, its actions and ballots, members, service info.
 */
import { fromBase64, toBase64, utf8 } from "./bytes.js";
import { signGovRequest, type GovMsgType } from "./cose.js";
import { ClientError, ClientErrorCode, errorFromAnswer } from "./errors.js";
import type { CallResult, ConsortiaClient } from "./client.js";
import type { CoseSigner } from "./signer.js";

export const GOV_API_VERSION = "2024-07-01";

export interface Action {
  readonly name: string;
  readonly args?: unknown;
}

export type ProposalState = "Open" | "Accepted" | "Withdrawn" | "Rejected" | "Failed" | "Dropped";

/** CCF's Proposal object. */
export interface Proposal {
  readonly proposalId: string;
  readonly proposerId: string;
  readonly proposalState: ProposalState;
  readonly ballotCount: number;
  readonly finalVotes?: Record<string, boolean>;
  readonly voteFailures?: Record<string, { reason: string; trace?: string }>;
  readonly failure?: { reason: string; trace?: string };
}

export interface StateDigest {
  readonly memberId: string;
  readonly stateDigest: string;
}

/** CCF's Member object (`GET /gov/service/members`). */
export interface Member {
  readonly memberId: string;
  readonly status: string;
  readonly certificate: string;
  readonly memberData?: unknown;
  readonly publicEncryptionKey?: string;
  readonly recoveryRole?: string;
}

/** A ballot: true / false (constant ballots) or the JS source of `export function vote`. */
export type Ballot = boolean | string;

const BALLOT_ACCEPT = "export function vote (proposal, proposerId) { return true }";
const BALLOT_REJECT = "export function vote (proposal, proposerId) { return false }";

export function ballotSource(ballot: Ballot): string {
  if (ballot === true) return BALLOT_ACCEPT;
  if (ballot === false) return BALLOT_REJECT;
  return ballot;
}

/** `/gov<path>?api-version=...`. */
export function govPath(path: string): string {
  return `/gov${path}?api-version=${GOV_API_VERSION}`;
}

const id = encodeURIComponent;

export class Governance {
  constructor(private readonly client: ConsortiaClient) {}

  private signerOf(signer: CoseSigner | undefined): CoseSigner {
    const chosen = signer ?? this.client.signer;
    if (chosen === undefined) {
      throw new ClientError(
        { code: ClientErrorCode.NoSigner },
        "signing a governance request needs a member certificate and key",
      );
    }
    return chosen;
  }

  /** Signs `payload` as `type` and POSTs it to the gov path. */
  private async signed<T>(
    path: string,
    type: GovMsgType,
    payload: Uint8Array,
    options: { signer: CoseSigner; proposalId?: string },
  ): Promise<CallResult<T>> {
    const body = await signGovRequest(
      options.signer,
      {
        type,
        createdAt: Math.floor(Date.now() / 1000),
        ...(options.proposalId !== undefined && { proposalId: options.proposalId }),
      },
      payload,
    );
    return this.client.call<T>("POST", govPath(path), { body, contentType: "application/cose" });
  }

  private async required<T>(
    result: Promise<CallResult<T | undefined>>,
    what: string,
  ): Promise<CallResult<T>> {
    const answer = await result;
    if (answer.body === undefined) {
      throw new ClientError(
        { code: ClientErrorCode.BadResponse, status: answer.status },
        `${what}: expected a JSON body, got none`,
      );
    }
    return answer as CallResult<T>;
  }

  // ---- reads (no signature) ------------------------------------------------------------------

  async listProposals(): Promise<Proposal[]> {
    const { body } = await this.client.require<{ value?: Proposal[] }>(
      "GET",
      govPath("/members/proposals"),
    );
    return body.value ?? [];
  }

  async getProposal(proposalId: string): Promise<Proposal> {
    const path = govPath(`/members/proposals/${id(proposalId)}`);
    return (await this.client.require<Proposal>("GET", path)).body;
  }

  /** The proposal's body as submitted: `{actions: [...]}`. */
  async getActions(proposalId: string): Promise<{ actions: Action[] }> {
    const path = govPath(`/members/proposals/${id(proposalId)}/actions`);
    return (await this.client.require<{ actions: Action[] }>("GET", path)).body;
  }

  /** A member's ballot on a proposal: its JS source. */
  async getBallot(proposalId: string, memberId: string): Promise<string> {
    const path = govPath(`/members/proposals/${id(proposalId)}/ballots/${id(memberId)}`);
    const answer = await this.client.request("GET", path);
    if (answer.status !== 200) throw errorFromAnswer("GET", path, answer);
    return new TextDecoder().decode(answer.body);
  }

  /** The proposal, its actions, and the ballot of every member who voted (by member id). */
  async showProposal(
    proposalId: string,
  ): Promise<{ proposal: Proposal; actions: Action[]; ballots: Record<string, string> }> {
    const proposal = await this.getProposal(proposalId);
    const { actions } = await this.getActions(proposalId);
    const ballots: Record<string, string> = {};
    const voters = Object.keys(proposal.finalVotes ?? {});
    if (proposal.ballotCount > voters.length) {
      for (const member of await this.members()) voters.push(member.memberId);
    }
    for (const memberId of new Set(voters)) {
      try {
        ballots[memberId] = await this.getBallot(proposalId, memberId);
      } catch (err: unknown) {
        const notVoted = err instanceof ClientError && err.type.status === 404;
        if (!notVoted) throw err;
      }
    }
    return { proposal, actions, ballots };
  }

  async members(): Promise<Member[]> {
    const { body } = await this.client.require<{ value?: Member[] }>(
      "GET",
      govPath("/service/members"),
    );
    return body.value ?? [];
  }

  async serviceInfo(): Promise<{ status: string } & Record<string, unknown>> {
    return (
      await this.client.require<{ status: string } & Record<string, unknown>>(
        "GET",
        govPath("/service/info"),
      )
    ).body;
  }

  // ---- writes (signed) -----------------------------------------------------------------------

  /** Submits a proposal of `actions`; the result's txId recorded it. */
  async propose(actions: readonly Action[], signer?: CoseSigner): Promise<CallResult<Proposal>> {
    return this.proposeRaw(utf8(JSON.stringify({ actions })), signer);
  }

  /** Submits a proposal body exactly as given (e.g. a file's bytes). */
  async proposeRaw(body: Uint8Array, signer?: CoseSigner): Promise<CallResult<Proposal>> {
    const path = "/members/proposals:create";
    const result = this.signed<Proposal | undefined>(path, "proposal", body, {
      signer: this.signerOf(signer),
    });
    return this.required(result, `POST ${path}`);
  }

  /** Votes on an open proposal; answers the proposal as it stands after the ballot. */
  async vote(
    proposalId: string,
    ballot: Ballot,
    signer?: CoseSigner,
  ): Promise<CallResult<Proposal>> {
    const who = this.signerOf(signer);
    const path = `/members/proposals/${id(proposalId)}/ballots/${id(who.memberId)}:submit`;
    const payload = utf8(JSON.stringify({ ballot: ballotSource(ballot) }));
    const result = this.signed<Proposal | undefined>(path, "ballot", payload, {
      signer: who,
      proposalId,
    });
    return this.required(result, `POST ${path}`);
  }

  /** Withdraws the signer's open proposal; body undefined when the node did not know it (204). */
  async withdraw(
    proposalId: string,
    signer?: CoseSigner,
  ): Promise<CallResult<Proposal | undefined>> {
    const path = `/members/proposals/${id(proposalId)}:withdraw`;
    return this.signed(path, "withdrawal", new Uint8Array(0), {
      signer: this.signerOf(signer),
      proposalId,
    });
  }

  /** The state digest the member must acknowledge (msg.type state_digest). */
  async updateStateDigest(signer?: CoseSigner): Promise<StateDigest> {
    const who = this.signerOf(signer);
    const path = `/members/state-digests/${id(who.memberId)}:update`;
    const result = this.signed<StateDigest | undefined>(path, "state_digest", new Uint8Array(0), {
      signer: who,
    });
    return (await this.required(result, `POST ${path}`)).body;
  }

  /** Updates, then acknowledges the state digest: the member becomes Active. */
  async ack(signer?: CoseSigner): Promise<StateDigest> {
    const who = this.signerOf(signer);
    const digest = await this.updateStateDigest(who);
    const payload = utf8(JSON.stringify({ stateDigest: digest.stateDigest }));
    await this.signed(`/members/state-digests/${id(who.memberId)}:ack`, "ack", payload, {
      signer: who,
    });
    return digest;
  }

  /** A member's recovery share, encrypted to its key. */
  async encryptedRecoveryShare(memberId: string): Promise<Uint8Array> {
    const path = govPath(`/recovery/encrypted-shares/${id(memberId)}`);
    const { body } = await this.client.require<{ encryptedShare?: unknown }>("GET", path);
    const share = typeof body.encryptedShare === "string" ? fromBase64(body.encryptedShare) : null;
    if (share === null || share.byteLength === 0) {
      throw new ClientError(
        { code: ClientErrorCode.BadResponse },
        `the node's answer for member ${memberId}'s share holds no base64 encryptedShare`,
      );
    }
    return share;
  }

  /** Submits the signer's decrypted recovery share; answers the node's message. */
  async submitRecoveryShare(share: Uint8Array, signer?: CoseSigner): Promise<string> {
    const who = this.signerOf(signer);
    const path = `/recovery/members/${id(who.memberId)}:recover`;
    const payload = utf8(JSON.stringify({ share: toBase64(share) }));
    const result = this.signed<{ message?: unknown } | undefined>(path, "recovery_share", payload, {
      signer: who,
    });
    const { body } = await this.required(result, `POST ${path}`);
    return typeof body.message === "string" ? body.message : JSON.stringify(body);
  }
}
