/**
 * The one error class of @consortia/client. Every failure a caller can meet is a ClientError
 * whose `type.code` says what went wrong, so callers branch on codes, never on messages:
 * - the node answered with a non-2xx status (Http: `status`, CCF's `ccfCode` and `ccfMessage`
 *   from its `{"error":{"code","message"}}` body);
 * - no answer came back (Network, with the socket's code such as ECONNREFUSED in `ccfCode`;
 *   Timeout);
 * - the answer was not what the API promises (BadResponse);
 * - a transaction will never commit (TransactionInvalid);
 * - a receipt does not verify (ReceiptInvalid, with the reason in the message);
 * - a governance write without a signer, or a key the signer cannot use (Signer).
 */

export enum ClientErrorCode {
  Http = "Http",
  Network = "Network",
  Timeout = "Timeout",
  BadResponse = "BadResponse",
  TransactionInvalid = "TransactionInvalid",
  ReceiptInvalid = "ReceiptInvalid",
  /** Historical query: the node kept answering 202 (still loading) for longer than allowed. */
  HistoricalNotReady = "HistoricalNotReady",
  /** No signer was given for a governance write, or its key or certificate is unusable. */
  NoSigner = "NoSigner",
  BadKey = "BadKey",
}

export interface ClientErrorType {
  readonly code: ClientErrorCode;
  /** The HTTP status, when the node answered. */
  readonly status?: number;
  /** CCF's error code (e.g. ProposalNotOpen), or the socket error code of a Network error. */
  readonly ccfCode?: string;
  /** CCF's error message, when the body carried one. */
  readonly ccfMessage?: string;
}

export class ClientError extends Error {
  readonly type: ClientErrorType;

  constructor(type: ClientErrorType, message: string) {
    super(message);
    this.type = type;
    this.name = "ClientError";
  }

  get code(): ClientErrorCode {
    return this.type.code;
  }

  get status(): number | undefined {
    return this.type.status;
  }

  get ccfCode(): string | undefined {
    return this.type.ccfCode;
  }
}

/** What a node answered: status, lower-case header names, and the body as bytes. */
export interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

const DECODER = new TextDecoder();

/** The body as text (invalid UTF-8 is replaced, never thrown: this is for messages). */
export function answerText(answer: Answer): string {
  return DECODER.decode(answer.body);
}

/** The Http ClientError for a non-2xx answer; a CCF error body supplies code and message. */
export function errorFromAnswer(method: string, path: string, answer: Answer): ClientError {
  const text = answerText(answer);
  let ccfCode: string | undefined;
  let ccfMessage: string | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } } | null;
    if (typeof parsed?.error?.code === "string") ccfCode = parsed.error.code;
    if (typeof parsed?.error?.message === "string") ccfMessage = parsed.error.message;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    // Not JSON (a proxy's page, a plain-text 202): the raw text describes it best.
  }
  const detail = ccfMessage ?? text.trim();
  const what = ccfCode === undefined ? `HTTP ${answer.status}` : `${answer.status} ${ccfCode}`;
  return new ClientError(
    {
      code: ClientErrorCode.Http,
      status: answer.status,
      ...(ccfCode !== undefined && { ccfCode }),
      ...(ccfMessage !== undefined && { ccfMessage }),
    },
    `${method} ${path} failed: ${what}${detail === "" ? "" : `: ${detail}`}`,
  );
}
