/**
 * ConsortiaClient: calls to one node of a Consortia (or CCF) service over a Transport.
 *
 * - app calls (`get`, `post`, `put`, `delete`, or `call`) send and receive JSON and return the
 *   status, the parsed body and the transaction id of `x-ms-ccf-transaction-id`;
 * - `txStatus` and `waitForCommit` poll `GET /app/tx` until the transaction is Committed;
 *   Invalid (it can never commit) is ClientError(TransactionInvalid);
 * - `historical` runs a historical query: CCF answers 202 with `retry-after` while it loads
 *   the ledger, and the client asks again, a bounded number of times;
 * - `receipt` and `coseReceipt` fetch a transaction's receipt (JSON, or COSE with
 *   `Accept: application/cose`) through that loop; receipts.ts verifies them;
 * - `gov` (governance.ts) signs and sends governance requests.
 *
 * Retry rules, all bounded: a request refused at connect (ECONNREFUSED: it never reached a
 * server, so even a signed write cannot apply twice) is sent again up to `connectRetries`
 * times; a write answered 503 PrimaryNotFound (no primary, so nothing ran) is sent again for
 * up to `primaryWaitMs` while an election completes. Nothing else is retried.
 */
import { fromUtf8, utf8 } from "./bytes.js";
import { ClientError, ClientErrorCode, errorFromAnswer, type Answer } from "./errors.js";
import { Governance } from "./governance.js";
import type { CoseSigner } from "./signer.js";
import type { Transport } from "./transport.js";

export const TXID_HEADER = "x-ms-ccf-transaction-id";
/** Spacing of the retries of a write answered 503 PrimaryNotFound. */
const PRIMARY_RETRY_MS = 250;
/** The longest wait between two historical-query attempts, whatever retry-after says. */
const HISTORICAL_RETRY_MS_MAX = 3_000;

export interface ClientOptions {
  readonly transport: Transport;
  /** Signs governance writes unless a call names its own signer. */
  readonly signer?: CoseSigner;
  /** Extra attempts after ECONNREFUSED, spaced retryDelayMs apart (default 5, 200 ms). */
  readonly connectRetries?: number;
  readonly retryDelayMs?: number;
  /** How long a write answered 503 PrimaryNotFound is retried (default 15 s; 0: never). */
  readonly primaryWaitMs?: number;
}

export interface RequestOptions {
  readonly body?: Uint8Array;
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** An answered call: status, JSON body (undefined when empty) and transaction id. */
export interface CallResult<T = unknown> {
  readonly status: number;
  readonly body: T;
  /** `view.seqno` from x-ms-ccf-transaction-id; undefined when the node sent none. */
  readonly txId: string | undefined;
}

export type TxStatus = "Unknown" | "Pending" | "Committed" | "Invalid";

export interface WaitOptions {
  /** Give up after this long (default 30 s): ClientError(Timeout). */
  readonly timeoutMs?: number;
  /** Poll interval (default 100 ms). */
  readonly intervalMs?: number;
  readonly signal?: AbortSignal;
}

export interface HistoricalOptions {
  /** Attempts in all (default 20); each 202 waits retry-after (capped at 3 s) before the next. */
  readonly attemptsMax?: number;
  /** Overrides retry-after (tests, impatient callers). */
  readonly retryMs?: number;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isWrite(method: string): boolean {
  return method !== "GET" && method !== "HEAD";
}

/** Whether a write was answered 503 PrimaryNotFound: nothing ran, it may be sent again. */
export function isNoPrimaryForWrite(method: string, answer: Answer): boolean {
  if (!isWrite(method) || answer.status !== 503) return false;
  try {
    const body = JSON.parse(fromUtf8(answer.body)) as { error?: { code?: unknown } } | null;
    return body?.error?.code === "PrimaryNotFound";
  } catch (err: unknown) {
    if (err instanceof SyntaxError || err instanceof TypeError) return false;
    throw err;
  }
}

function parseJsonBody(method: string, path: string, answer: Answer): unknown {
  if (answer.status === 204 || answer.body.byteLength === 0) return undefined;
  try {
    return JSON.parse(fromUtf8(answer.body)) as unknown;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError || err instanceof TypeError)) throw err;
    const excerpt = JSON.stringify(new TextDecoder().decode(answer.body.subarray(0, 200)));
    throw new ClientError(
      { code: ClientErrorCode.BadResponse, status: answer.status },
      `${method} ${path}: expected JSON, got ${excerpt}`,
    );
  }
}

export class ConsortiaClient {
  readonly transport: Transport;
  readonly signer: CoseSigner | undefined;
  /** Governance: propose, vote, withdraw, ack, list and show proposals, members. */
  readonly gov: Governance;
  private readonly connectRetries: number;
  private readonly retryDelayMs: number;
  private readonly primaryWaitMs: number;

  constructor(options: ClientOptions) {
    this.transport = options.transport;
    this.signer = options.signer;
    this.connectRetries = options.connectRetries ?? 5;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.primaryWaitMs = options.primaryWaitMs ?? 15_000;
    this.gov = new Governance(this);
  }

  /** Releases the transport's pooled connections. */
  close(): void {
    this.transport.close?.();
  }

  /** One exchange with the retry rules above; any status is returned, none is thrown. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Answer> {
    const waitUntil = Date.now() + this.primaryWaitMs;
    for (;;) {
      const answer = await this.sendRetryingRefusals(method, path, options);
      if (!isNoPrimaryForWrite(method, answer) || Date.now() >= waitUntil) return answer;
      await sleep(PRIMARY_RETRY_MS);
    }
  }

  private async sendRetryingRefusals(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<Answer> {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (options.body !== undefined) {
      headers["content-type"] = options.contentType ?? "application/json";
    }
    const request = {
      method,
      path,
      headers,
      ...(options.body !== undefined && { body: options.body }),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.transport.send(request);
      } catch (err: unknown) {
        const refused = err instanceof ClientError && err.type.ccfCode === "ECONNREFUSED";
        if (!refused || attempt >= this.connectRetries) throw err;
        await sleep(this.retryDelayMs);
      }
    }
  }

  /** A call whose non-2xx answer is thrown as ClientError(Http); the body is parsed JSON. */
  async call<T = unknown>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<CallResult<T>> {
    const answer = await this.request(method, path, options);
    if (answer.status < 200 || answer.status >= 300) throw errorFromAnswer(method, path, answer);
    return {
      status: answer.status,
      body: parseJsonBody(method, path, answer) as T,
      txId: answer.headers[TXID_HEADER],
    };
  }

  /** `call` with a JSON body (omitted when `json` is undefined). */
  callJson<T = unknown>(method: string, path: string, json?: unknown): Promise<CallResult<T>> {
    if (json === undefined) return this.call<T>(method, path);
    return this.call<T>(method, path, { body: utf8(JSON.stringify(json)) });
  }

  get<T = unknown>(path: string): Promise<CallResult<T>> {
    return this.callJson<T>("GET", path);
  }
  post<T = unknown>(path: string, json?: unknown): Promise<CallResult<T>> {
    return this.callJson<T>("POST", path, json);
  }
  put<T = unknown>(path: string, json?: unknown): Promise<CallResult<T>> {
    return this.callJson<T>("PUT", path, json);
  }
  delete<T = unknown>(path: string): Promise<CallResult<T>> {
    return this.callJson<T>("DELETE", path);
  }

  /** A call whose answer must be a JSON body; an empty one is ClientError(BadResponse). */
  async require<T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<CallResult<T>> {
    const result = await this.call<T | undefined>(method, path, options);
    if (result.body === undefined) {
      throw new ClientError(
        { code: ClientErrorCode.BadResponse, status: result.status },
        `${method} ${path}: expected a JSON body, got none`,
      );
    }
    return result as CallResult<T>;
  }

  /** The status of a transaction (`GET /app/tx`). */
  async txStatus(txId: string): Promise<TxStatus> {
    const path = `/app/tx?transaction_id=${encodeURIComponent(txId)}`;
    const { body } = await this.require<{ status?: unknown }>("GET", path);
    const status = body.status;
    if (
      status === "Unknown" ||
      status === "Pending" ||
      status === "Committed" ||
      status === "Invalid"
    ) {
      return status;
    }
    throw new ClientError(
      { code: ClientErrorCode.BadResponse },
      `GET ${path}: unexpected status ${JSON.stringify(status)}`,
    );
  }

  /**
   * Polls the transaction's status until it is Committed. Invalid (a view change dropped it)
   * is ClientError(TransactionInvalid); no commit within timeoutMs is ClientError(Timeout).
   */
  async waitForCommit(txId: string, options: WaitOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last: TxStatus = "Unknown";
    for (;;) {
      last = await this.txStatus(txId);
      if (last === "Committed") return;
      if (last === "Invalid") {
        throw new ClientError(
          { code: ClientErrorCode.TransactionInvalid },
          `transaction ${txId} is Invalid: it will never commit`,
        );
      }
      if (Date.now() >= deadline || options.signal?.aborted === true) break;
      await sleep(options.intervalMs ?? 100);
    }
    throw new ClientError(
      { code: ClientErrorCode.Timeout },
      `transaction ${txId} not committed after ${timeoutMs} ms (last status ${last})`,
    );
  }

  /**
   * A historical query: `path` asked about transaction `txId` (sent as the
   * x-ms-ccf-transaction-id request header). While the node answers 202 (loading the ledger)
   * it is asked again after retry-after, at most attemptsMax times in all.
   */
  async historical<T = unknown>(
    path: string,
    txId: string,
    options: HistoricalOptions = {},
  ): Promise<CallResult<T>> {
    const answer = await this.historicalAnswer("GET", path, { [TXID_HEADER]: txId }, options);
    const body = parseJsonBody("GET", path, answer) as T;
    return { status: answer.status, body, txId: answer.headers[TXID_HEADER] ?? txId };
  }

  /** GET until the answer is not 202, bounded; a non-2xx final answer is thrown. */
  async historicalAnswer(
    method: string,
    path: string,
    headers: Readonly<Record<string, string>>,
    options: HistoricalOptions = {},
  ): Promise<Answer> {
    const attemptsMax = options.attemptsMax ?? 20;
    for (let attempt = 1; ; attempt++) {
      const answer = await this.request(method, path, { headers });
      if (answer.status !== 202) {
        if (answer.status < 200 || answer.status >= 300) {
          throw errorFromAnswer(method, path, answer);
        }
        return answer;
      }
      if (attempt >= attemptsMax) {
        throw new ClientError(
          { code: ClientErrorCode.HistoricalNotReady, status: 202 },
          `${method} ${path}: still loading after ${attemptsMax} attempts`,
        );
      }
      const retryAfterS = Number(answer.headers["retry-after"] ?? "1");
      const fromHeader = Number.isFinite(retryAfterS) ? retryAfterS * 1000 : 1000;
      await sleep(options.retryMs ?? Math.min(fromHeader, HISTORICAL_RETRY_MS_MAX));
    }
  }

  /** The JSON receipt of a committed transaction (`GET /app/receipt`), not yet verified. */
  async receipt(txId: string, options: HistoricalOptions = {}): Promise<unknown> {
    const path = `/app/receipt?transaction_id=${encodeURIComponent(txId)}`;
    const answer = await this.historicalAnswer("GET", path, {}, options);
    return parseJsonBody("GET", path, answer);
  }

  /** A committed transaction's COSE receipt (`/app/receipt`, Accept: application/cose). */
  async coseReceipt(txId: string, options: HistoricalOptions = {}): Promise<Uint8Array> {
    const path = `/app/receipt?transaction_id=${encodeURIComponent(txId)}`;
    const headers = { accept: "application/cose" };
    const answer = await this.historicalAnswer("GET", path, headers, options);
    if (answer.body.byteLength === 0) {
      throw new ClientError({ code: ClientErrorCode.BadResponse }, `GET ${path}: empty receipt`);
    }
    return answer.body;
  }

  /** GET /node/state until it reports `state` (default PartOfNetwork); refusals are "not yet". */
  async waitUntilReady(options: WaitOptions & { state?: string } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let last = "no answer";
    while (Date.now() < deadline) {
      if (options.signal?.aborted === true) {
        throw new ClientError({ code: ClientErrorCode.Timeout }, "waitUntilReady aborted");
      }
      try {
        const { body } = await this.call<{ state?: unknown } | undefined>("GET", "/node/state");
        if (body?.state === (options.state ?? "PartOfNetwork")) return;
        last = `state ${String(body?.state)}`;
      } catch (err: unknown) {
        if (!(err instanceof ClientError)) throw err;
        last = err.message;
      }
      await sleep(options.intervalMs ?? 100);
    }
    throw new ClientError(
      { code: ClientErrorCode.Timeout },
      `node ${this.transport.origin ?? ""} not ready after ${timeoutMs} ms (last: ${last})`,
    );
  }
}
