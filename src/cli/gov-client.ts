/**
 * A small client for a node's governance API (ccf-compatibility.md §3.4, §4.1, §4.4), used by
 * `consortia gov` and `consortia sandbox`. It speaks HTTPS through node:https with one keep-alive
 * agent, trusts only the service certificate (`caPem`), optionally presents a TLS client
 * certificate, and signs every governance write as a COSE_Sign1 with CCF's gov headers
 * (src/crypto/cose.ts signSign1).
 *
 * Every call returns the parsed JSON body or throws a GovClientError whose type carries the HTTP
 * status and CCF's error code/message from the `{"error":{"code","message"}}` body, or a network
 * code (ECONNREFUSED, timeout) when no answer came back.
 *
 * Invariants:
 * - every request has a timeout (timeoutMs), so no call hangs on a wedged node;
 * - only ECONNREFUSED is retried, a bounded number of times: the request never reached a server,
 *   so resending a signed write cannot apply it twice;
 * - every /gov request carries `?api-version=2024-07-01`.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { Agent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { CcfError } from "../base/errors.js";
import { fromBase64, toBase64, utf8 } from "../base/bytes.js";
import { COSE_HEADER_KID, signSign1, type CoseLabel } from "../crypto/cose.js";
import { memberIdFromCert } from "../crypto/identity.js";
import {
  HEADER_MSG_CREATED_AT,
  HEADER_MSG_PROPOSAL_ID,
  HEADER_MSG_TYPE,
  type GovMsgType,
} from "../gov/cose-request.js";
import { TXID_HEADER } from "../http/ccf-headers.js";

export const GOV_API_VERSION = "2024-07-01";

/** Idle pooled connections are closed after this, before the node's SERVER_IDLE_MS. */
const CLIENT_IDLE_MS = 20_000;

export enum GovClientErrorCode {
  /** The node answered with a non-2xx status; `status` and `ccfCode` say what. */
  Http = "Http",
  /** No answer: connection refused or reset, TLS failure, DNS. `ccfCode` holds node's code. */
  Network = "Network",
  /** No answer within timeoutMs (or the node never became ready in waitUntilReady). */
  Timeout = "Timeout",
  /** A 2xx answer whose body is not the JSON we expected. */
  BadResponse = "BadResponse",
  /** The client was asked to sign without a member key and certificate. */
  NoSigner = "NoSigner",
}
export type GovClientErrorType = {
  code: GovClientErrorCode;
  /** The HTTP status, when the node answered. */
  status?: number;
  /** CCF's error code (e.g. ProposalNotOpen), or the socket error code for Network errors. */
  ccfCode?: string;
};
export class GovClientError extends CcfError<GovClientErrorType> {}

export interface Action {
  readonly name: string;
  readonly args?: unknown;
}

/** CCF's Proposal object (ccf-compatibility.md §3.4). */
export interface Proposal {
  readonly proposalId: string;
  readonly proposerId: string;
  readonly proposalState: "Open" | "Accepted" | "Withdrawn" | "Rejected" | "Failed" | "Dropped";
  readonly ballotCount: number;
  readonly finalVotes?: Record<string, boolean>;
  readonly voteFailures?: Record<string, { reason: string; trace?: string }>;
  readonly failure?: { reason: string; trace?: string };
}

export interface StateDigest {
  readonly memberId: string;
  readonly stateDigest: string;
}

/** A member identity that signs governance requests. */
export interface MemberSigner {
  readonly certPem: string;
  readonly keyPem: string;
}

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

export interface HttpResult {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

const BALLOT_ACCEPT = "export function vote (proposal, proposerId) { return true }";
const BALLOT_REJECT = "export function vote (proposal, proposerId) { return false }";

/** Maps a non-2xx answer to a GovClientError; a CCF error body supplies code and message. */
export function errorFromResponse(
  method: string,
  path: string,
  result: HttpResult,
): GovClientError {
  let ccfCode: string | undefined;
  let detail = result.body.trim();
  try {
    const parsed = JSON.parse(result.body) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === "string") ccfCode = parsed.error.code;
    if (typeof parsed.error?.message === "string") detail = parsed.error.message;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    // Not JSON (a proxy, a plain-text 202...): the raw text is the best description.
  }
  const what = ccfCode === undefined ? `HTTP ${result.status}` : `${result.status} ${ccfCode}`;
  const message = `${method} ${path} failed: ${what}${detail === "" ? "" : `: ${detail}`}`;
  return new GovClientError(
    {
      code: GovClientErrorCode.Http,
      status: result.status,
      ...(ccfCode !== undefined && { ccfCode }),
    },
    message,
  );
}

export class GovClient {
  private readonly base: URL;
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private readonly connectRetries: number;
  private readonly retryDelayMs: number;
  private readonly primaryWaitMs: number;
  private readonly defaultSigner: MemberSigner | undefined;
  private readonly keys = new Map<string, { key: KeyObject; memberId: string }>();
  private readonly options: GovClientOptions;

  constructor(options: GovClientOptions) {
    this.options = options;
    this.base = new URL(options.url);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.connectRetries = options.connectRetries ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.primaryWaitMs = options.primaryWaitMs ?? 15_000;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 8,
      ca: options.caPem,
      ...(options.certPem !== undefined && { cert: options.certPem }),
      ...(options.keyPem !== undefined && { key: options.keyPem }),
    });
    // An idle pooled socket is closed before the node would close it (SERVER_IDLE_MS), so a
    // request is never sent on a socket the node is closing (ECONNRESET, "socket hang up").
    const watched = new WeakSet<Socket>();
    this.agent.on("free", (socket: Socket) => {
      socket.setTimeout(CLIENT_IDLE_MS);
      if (watched.has(socket)) return;
      watched.add(socket);
      // Also fires when a request on it times out, which abandons the socket anyway.
      socket.on("timeout", () => socket.destroy());
    });
    this.defaultSigner =
      options.certPem !== undefined && options.keyPem !== undefined
        ? { certPem: options.certPem, keyPem: options.keyPem }
        : undefined;
  }

  /** A client for another node of the same service: same trust anchor, identity and limits. */
  forNode(url: string): GovClient {
    return new GovClient({ ...this.options, url });
  }

  /** Closes the keep-alive sockets so the process can exit. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * One HTTPS exchange; no status check. ECONNREFUSED is retried (connectRetries times), and so
   * is a write answered 503 PrimaryNotFound (the node knows no primary: nothing ran; an election
   * is under way), for up to primaryWaitMs.
   */
  async send(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<HttpResult> {
    const waitUntil = Date.now() + this.primaryWaitMs;
    for (;;) {
      const result = await this.sendRetryingRefusals(method, path, body);
      if (!isNoPrimaryForWrite(method, result) || Date.now() >= waitUntil) return result;
      await delay(PRIMARY_RETRY_MS);
    }
  }

  private async sendRetryingRefusals(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<HttpResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.sendOnce(method, path, body);
      } catch (err: unknown) {
        const refused = err instanceof GovClientError && err.type.ccfCode === "ECONNREFUSED";
        if (!refused || attempt >= this.connectRetries) throw err;
        await delay(this.retryDelayMs);
      }
    }
  }

  private sendOnce(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<HttpResult> {
    const url = new URL(path, this.base);
    return new Promise<HttpResult>((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: "application/json" };
      if (body !== undefined) {
        headers["content-type"] = body.contentType;
        headers["content-length"] = body.bytes.length;
      }
      const req = httpsRequest(url, { method, agent: this.agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (err) => reject(networkError(method, path, err)));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      });
      req.setTimeout(this.timeoutMs, () => {
        req.destroy();
        const message =
          `${method} ${path} failed: no answer from ${this.base.origin} ` +
          `within ${this.timeoutMs} ms`;
        reject(new GovClientError({ code: GovClientErrorCode.Timeout }, message));
      });
      req.on("error", (err) => reject(networkError(method, path, err)));
      req.end(body === undefined ? undefined : body.bytes);
    });
  }

  /** GET/POST returning parsed JSON (undefined for 204); non-2xx throws GovClientError. */
  async requestJson<T>(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<T | undefined> {
    return (await this.requestJsonWithTxId<T>(method, path, body)).value;
  }

  /** requestJson, with the transaction id of the answer (x-ms-ccf-transaction-id). */
  async requestJsonWithTxId<T>(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<TxResult<T | undefined>> {
    const result = await this.send(method, path, body);
    if (result.status < 200 || result.status >= 300) {
      throw errorFromResponse(method, path, result);
    }
    const header = result.headers[TXID_HEADER];
    const txId = typeof header === "string" ? header : undefined;
    if (result.status === 204 || result.body === "") return { value: undefined, txId };
    try {
      return { value: JSON.parse(result.body) as T, txId };
    } catch (err: unknown) {
      if (!(err instanceof SyntaxError)) throw err;
      const excerpt = JSON.stringify(result.body.slice(0, 200));
      const message = `${method} ${path}: expected JSON, got ${excerpt}`;
      throw new GovClientError(
        { code: GovClientErrorCode.BadResponse, status: result.status },
        message,
      );
    }
  }

  /** Like requestJson, but an empty answer is a BadResponse. */
  private async requireJson<T>(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<T> {
    return (await this.requireJsonWithTxId<T>(method, path, body)).value;
  }

  private async requireJsonWithTxId<T>(
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<TxResult<T>> {
    const { value, txId } = await this.requestJsonWithTxId<T>(method, path, body);
    if (value === undefined) {
      const message = `${method} ${path}: expected a JSON body, got none`;
      throw new GovClientError({ code: GovClientErrorCode.BadResponse }, message);
    }
    return { value, txId };
  }

  /** GET /node/state until it says PartOfNetwork; refused connections count as "not yet". */
  async waitUntilReady(
    options: {
      timeoutMs?: number;
      intervalMs?: number;
      signal?: AbortSignal;
      /** The /node/state to wait for (default PartOfNetwork; recovering: PartOfPublicNetwork). */
      state?: string;
    } = {},
  ): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last = "no answer";
    while (Date.now() < deadline) {
      if (options.signal?.aborted === true) {
        throw new GovClientError({ code: GovClientErrorCode.Timeout }, "waitUntilReady aborted");
      }
      try {
        const state = await this.requestJson<{ state?: unknown }>("GET", "/node/state");
        if (state?.state === (options.state ?? "PartOfNetwork")) return;
        last = `state ${String(state?.state)}`;
      } catch (err: unknown) {
        if (!(err instanceof GovClientError)) throw err;
        last = err.message;
      }
      await delay(options.intervalMs ?? 100);
    }
    const message = `node ${this.base.origin} not ready after ${timeoutMs} ms (last: ${last})`;
    throw new GovClientError({ code: GovClientErrorCode.Timeout }, message);
  }

  // ---- governance reads (no auth) ----------------------------------------------------------

  async listProposals(): Promise<Proposal[]> {
    const list = await this.requireJson<{ value?: Proposal[] }>("GET", gov("/members/proposals"));
    return list.value ?? [];
  }

  async getProposal(proposalId: string): Promise<Proposal> {
    return this.requireJson("GET", gov(`/members/proposals/${encodeURIComponent(proposalId)}`));
  }

  async serviceInfo(): Promise<{ status: string } & Record<string, unknown>> {
    return this.requireJson("GET", gov("/service/info"));
  }

  // ---- governance writes (COSE_Sign1 signed by a member) -------------------------------------

  /** POST :update (msg.type state_digest): the digest the member must ack. */
  async updateStateDigest(signer?: MemberSigner): Promise<StateDigest> {
    const { memberId, sign } = this.signerFor(signer);
    const path = gov(`/members/state-digests/${memberId}:update`);
    return this.requireJson("POST", path, sign("state_digest", new Uint8Array(0)));
  }

  /** update then ack the returned digest: the member becomes Active (ccf-compatibility.md §4.4). */
  async ackStateDigest(signer?: MemberSigner): Promise<StateDigest> {
    const digest = await this.updateStateDigest(signer);
    const { memberId, sign } = this.signerFor(signer);
    const payload = utf8(JSON.stringify({ stateDigest: digest.stateDigest }));
    await this.requestJson(
      "POST",
      gov(`/members/state-digests/${memberId}:ack`),
      sign("ack", payload),
    );
    return digest;
  }

  async propose(actions: readonly Action[], signer?: MemberSigner): Promise<Proposal> {
    return this.proposeRaw(utf8(JSON.stringify({ actions })), signer);
  }

  /** propose, with the transaction id that recorded the proposal. */
  async proposeWithTxId(
    actions: readonly Action[],
    signer?: MemberSigner,
  ): Promise<TxResult<Proposal>> {
    return this.submitProposal(utf8(JSON.stringify({ actions })), signer);
  }

  /** Submits a proposal body exactly as given (e.g. a file's bytes). */
  async proposeRaw(body: Uint8Array, signer?: MemberSigner): Promise<Proposal> {
    return (await this.submitProposal(body, signer)).value;
  }

  private async submitProposal(
    body: Uint8Array,
    signer: MemberSigner | undefined,
  ): Promise<TxResult<Proposal>> {
    const { sign } = this.signerFor(signer);
    const path = gov("/members/proposals:create");
    return this.requireJsonWithTxId("POST", path, sign("proposal", body));
  }

  /** A ballot: true / false (constant ballots) or the JS source of `export function vote`. */
  async vote(
    proposalId: string,
    ballot: string | boolean,
    signer?: MemberSigner,
  ): Promise<Proposal> {
    return (await this.voteWithTxId(proposalId, ballot, signer)).value;
  }

  /** vote, with the transaction id that recorded the ballot (and any resolution). */
  async voteWithTxId(
    proposalId: string,
    ballot: string | boolean,
    signer?: MemberSigner,
  ): Promise<TxResult<Proposal>> {
    const source = ballot === true ? BALLOT_ACCEPT : ballot === false ? BALLOT_REJECT : ballot;
    const { memberId, sign } = this.signerFor(signer);
    const id = encodeURIComponent(proposalId);
    const path = gov(`/members/proposals/${id}/ballots/${memberId}:submit`);
    const payload = utf8(JSON.stringify({ ballot: source }));
    return this.requireJsonWithTxId("POST", path, sign("ballot", payload, proposalId));
  }

  /** A member's recovery share, RSA-OAEP encrypted to its key (ccf-compatibility.md §8.1). */
  async encryptedRecoveryShare(memberId: string): Promise<Uint8Array> {
    const path = gov(`/recovery/encrypted-shares/${encodeURIComponent(memberId)}`);
    const answer = await this.requireJson<{ encryptedShare?: unknown }>("GET", path);
    const share =
      typeof answer.encryptedShare === "string" ? fromBase64(answer.encryptedShare) : null;
    if (share === null || share.byteLength === 0) {
      throw new GovClientError(
        { code: GovClientErrorCode.BadResponse },
        `the node's answer for member ${memberId}'s share holds no base64 encryptedShare`,
      );
    }
    return share;
  }

  /** Submits the signer's decrypted share; returns the node's message (shares counted). */
  async submitRecoveryShare(share: Uint8Array, signer?: MemberSigner): Promise<string> {
    const { memberId, sign } = this.signerFor(signer);
    const path = gov(`/recovery/members/${memberId}:recover`);
    const payload = utf8(JSON.stringify({ share: toBase64(share) }));
    const answer = await this.requireJson<{ message?: unknown }>(
      "POST",
      path,
      sign("recovery_share", payload),
    );
    return typeof answer.message === "string" ? answer.message : JSON.stringify(answer);
  }

  /** The withdrawn proposal, or undefined when the node did not know it (CCF answers 204). */
  async withdraw(proposalId: string, signer?: MemberSigner): Promise<Proposal | undefined> {
    const { sign } = this.signerFor(signer);
    const path = gov(`/members/proposals/${encodeURIComponent(proposalId)}:withdraw`);
    return this.requestJson("POST", path, sign("withdrawal", new Uint8Array(0), proposalId));
  }

  private signerFor(signer: MemberSigner | undefined): {
    memberId: string;
    sign: (
      type: GovMsgType,
      payload: Uint8Array,
      proposalId?: string,
    ) => { bytes: Uint8Array; contentType: string };
  } {
    const who = signer ?? this.defaultSigner;
    if (who === undefined) {
      const message = "signing a governance request needs a member certificate and key";
      throw new GovClientError({ code: GovClientErrorCode.NoSigner }, message);
    }
    let entry = this.keys.get(who.certPem);
    if (entry === undefined) {
      entry = { key: createPrivateKey(who.keyPem), memberId: memberIdFromCert(who.certPem) };
      this.keys.set(who.certPem, entry);
    }
    const { key, memberId } = entry;
    const sign = (type: GovMsgType, payload: Uint8Array, proposalId?: string) => {
      const header = new Map<CoseLabel, unknown>([
        [COSE_HEADER_KID, utf8(memberId)],
        [HEADER_MSG_TYPE, type],
        [HEADER_MSG_CREATED_AT, Math.floor(Date.now() / 1000)],
      ]);
      if (proposalId !== undefined) header.set(HEADER_MSG_PROPOSAL_ID, proposalId);
      return { bytes: signSign1(key, header, payload), contentType: "application/cose" };
    };
    return { memberId, sign };
  }
}

function gov(path: string): string {
  return `/gov${path}?api-version=${GOV_API_VERSION}`;
}

function networkError(method: string, path: string, err: Error): GovClientError {
  const socketCode = (err as NodeJS.ErrnoException).code;
  const message = `${method} ${path} failed: ${err.message}`;
  return new GovClientError(
    { code: GovClientErrorCode.Network, ...(socketCode !== undefined && { ccfCode: socketCode }) },
    message,
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Spacing of the retries of a write answered 503 PrimaryNotFound. */
const PRIMARY_RETRY_MS = 250;

/**
 * Whether `result` answers a write with 503 PrimaryNotFound: the node had no primary to run or
 * forward it to, so nothing ran and the same request may be sent again once one is elected.
 */
export function isNoPrimaryForWrite(method: string, result: HttpResult): boolean {
  if (method === "GET" || result.status !== 503) return false;
  try {
    const body = JSON.parse(result.body) as { error?: { code?: unknown } } | null;
    return body?.error?.code === "PrimaryNotFound";
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    return false;
  }
}
