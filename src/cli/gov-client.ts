/**
 * The CLI's connection to a node (`consortia gov`, `sandbox`, `recovery`, `node replace`,
 * `registry`): a thin face over @consortia/client, which does the work: HTTPS pinned to the
 * service certificate with keep-alive and timeouts, the bounded retries (ECONNREFUSED; 503
 * PrimaryNotFound on writes for primaryWaitMs), COSE_Sign1 governance signing with CCF's
 * headers, and ClientError for every failure (HTTP status with CCF's code and message, or a
 * network code). What this module adds is the CLI's habit of naming members by their PEM
 * certificate and key (MemberSigner): each becomes a node:crypto signer once and is reused.
 */
import {
  ConsortiaClient,
  type Action,
  type CallResult,
  type CoseSigner,
  type MemberPem,
  type Proposal,
  type StateDigest,
} from "@consortia/client";
import { connect, nodeCoseSigner } from "@consortia/client/node";

export type { Action, Proposal, StateDigest };

/** A member identity that signs governance requests: its PEM certificate and key. */
export type MemberSigner = MemberPem;

export interface GovClientOptions {
  /** e.g. https://127.0.0.1:8000 */
  readonly url: string;
  /** The service certificate: the only trust anchor for the node's TLS certificate. */
  readonly caPem: string;
  /** TLS client certificate and key (user_cert / member_cert auth); also the default signer. */
  readonly certPem?: string;
  readonly keyPem?: string;
  readonly timeoutMs?: number;
  /** Extra attempts after ECONNREFUSED, spaced retryDelayMs apart. */
  readonly connectRetries?: number;
  readonly retryDelayMs?: number;
  /** How long a write answered 503 PrimaryNotFound is retried (default 15 s; 0: never). */
  readonly primaryWaitMs?: number;
}

/** A parsed answer and the transaction id the node gave the request. */
export interface TxResult<T> {
  readonly value: T;
  /** `view.seqno` from x-ms-ccf-transaction-id; undefined when the node sent none. */
  readonly txId: string | undefined;
}

type Body = { bytes: Uint8Array; contentType: string };

function txResult<T>(result: CallResult<T>): TxResult<T> {
  return { value: result.body, txId: result.txId };
}

export class GovClient {
  /** The SDK client underneath, for calls this face does not name. */
  readonly client: ConsortiaClient;
  private readonly signers = new Map<string, CoseSigner>();

  constructor(private readonly options: GovClientOptions) {
    this.client = connect(options);
  }

  /** A client for another node of the same service: same trust anchor, identity and limits. */
  forNode(url: string): GovClient {
    return new GovClient({ ...this.options, url });
  }

  /** Closes the keep-alive sockets so the process can exit. */
  close(): void {
    this.client.close();
  }

  /** The signer of a member's PEM (made once), or undefined for the client's default. */
  private signer(member: MemberSigner | undefined): CoseSigner | undefined {
    if (member === undefined) return undefined;
    let signer = this.signers.get(member.certPem);
    if (signer === undefined) {
      signer = nodeCoseSigner(member);
      this.signers.set(member.certPem, signer);
    }
    return signer;
  }

  /** GET/POST returning parsed JSON (undefined for an empty answer); non-2xx throws. */
  async requestJson<T>(method: string, path: string, body?: Body): Promise<T | undefined> {
    return (await this.requestJsonWithTxId<T>(method, path, body)).value;
  }

  /** requestJson, with the transaction id of the answer (x-ms-ccf-transaction-id). */
  async requestJsonWithTxId<T>(
    method: string,
    path: string,
    body?: Body,
  ): Promise<TxResult<T | undefined>> {
    const options = body === undefined ? {} : { body: body.bytes, contentType: body.contentType };
    return txResult(await this.client.call<T | undefined>(method, path, options));
  }

  waitUntilReady(
    options: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal; state?: string } = {},
  ): Promise<void> {
    return this.client.waitUntilReady(options);
  }

  listProposals(): Promise<Proposal[]> {
    return this.client.gov.listProposals();
  }

  getProposal(proposalId: string): Promise<Proposal> {
    return this.client.gov.getProposal(proposalId);
  }

  serviceInfo(): Promise<{ status: string } & Record<string, unknown>> {
    return this.client.gov.serviceInfo();
  }

  updateStateDigest(member?: MemberSigner): Promise<StateDigest> {
    return this.client.gov.updateStateDigest(this.signer(member));
  }

  /** update then ack the returned digest: the member becomes Active (ccf-compatibility.md §4.4). */
  ackStateDigest(member?: MemberSigner): Promise<StateDigest> {
    return this.client.gov.ack(this.signer(member));
  }

  async propose(actions: readonly Action[], member?: MemberSigner): Promise<Proposal> {
    return (await this.client.gov.propose(actions, this.signer(member))).body;
  }

  /** propose, with the transaction id that recorded the proposal. */
  async proposeWithTxId(actions: readonly Action[], member?: MemberSigner) {
    return txResult(await this.client.gov.propose(actions, this.signer(member)));
  }

  /** Submits a proposal body exactly as given (e.g. a file's bytes). */
  async proposeRaw(body: Uint8Array, member?: MemberSigner): Promise<Proposal> {
    return (await this.client.gov.proposeRaw(body, this.signer(member))).body;
  }

  /** A ballot: true / false (constant ballots) or the JS source of `export function vote`. */
  async vote(proposalId: string, ballot: string | boolean, member?: MemberSigner) {
    return (await this.client.gov.vote(proposalId, ballot, this.signer(member))).body;
  }

  /** vote, with the transaction id that recorded the ballot (and any resolution). */
  async voteWithTxId(proposalId: string, ballot: string | boolean, member?: MemberSigner) {
    return txResult(await this.client.gov.vote(proposalId, ballot, this.signer(member)));
  }

  /** The withdrawn proposal, or undefined when the node did not know it (CCF answers 204). */
  async withdraw(proposalId: string, member?: MemberSigner): Promise<Proposal | undefined> {
    return (await this.client.gov.withdraw(proposalId, this.signer(member))).body;
  }

  /** A member's recovery share, RSA-OAEP encrypted to its key (ccf-compatibility.md §8.1). */
  encryptedRecoveryShare(memberId: string): Promise<Uint8Array> {
    return this.client.gov.encryptedRecoveryShare(memberId);
  }

  /** Submits the signer's decrypted share; returns the node's message (shares counted). */
  submitRecoveryShare(share: Uint8Array, member?: MemberSigner): Promise<string> {
    return this.client.gov.submitRecoveryShare(share, this.signer(member));
  }
}
