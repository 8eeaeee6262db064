/**
 * CCF's error vocabulary for HTTP responses: the closed set of OData error codes
 * (include/ccf/odata_error.h, ccf-compatibility.md §3.6), the one HTTP status each code is
 * answered with, and the error body `{"error":{"code","message","details"?}}`.
 *
 * Invariant: HTTP_STATUS_OF_CODE is the single table from code to status. Handlers never pick a
 * status for an error themselves; they throw HttpError(code, message) and the status follows, so
 * the same condition always gets the same status on every endpoint. The statuses are the ones
 * CCF's frontends use for each code.
 */
import { CcfError } from "../base/errors.js";

export enum HttpErrorCode {
  AuthorizationFailed = "AuthorizationFailed",
  InternalError = "InternalError",
  NotImplemented = "NotImplemented",
  InvalidAuthenticationInfo = "InvalidAuthenticationInfo",
  InvalidHeaderValue = "InvalidHeaderValue",
  InvalidInput = "InvalidInput",
  InvalidQueryParameterValue = "InvalidQueryParameterValue",
  InvalidResourceName = "InvalidResourceName",
  MissingRequiredHeader = "MissingRequiredHeader",
  ResourceNotFound = "ResourceNotFound",
  RequestNotSigned = "RequestNotSigned",
  UnsupportedHttpVerb = "UnsupportedHttpVerb",
  UnsupportedContentType = "UnsupportedContentType",
  RequestBodyTooLarge = "RequestBodyTooLarge",
  RequestHeaderTooLarge = "RequestHeaderTooLarge",
  PreconditionFailed = "PreconditionFailed",
  SessionCapExhausted = "SessionCapExhausted",
  FrontendNotOpen = "FrontendNotOpen",
  KeyNotFound = "KeyNotFound",
  NodeAlreadyRecovering = "NodeAlreadyRecovering",
  ProposalNotOpen = "ProposalNotOpen",
  ProposalNotFound = "ProposalNotFound",
  ProposalFailedToValidate = "ProposalFailedToValidate",
  ServiceNotWaitingForRecoveryShares = "ServiceNotWaitingForRecoveryShares",
  StateDigestMismatch = "StateDigestMismatch",
  TransactionNotFound = "TransactionNotFound",
  TransactionCommitAttemptsExceedLimit = "TransactionCommitAttemptsExceedLimit",
  TransactionReplicationFailed = "TransactionReplicationFailed",
  UnknownCertificate = "UnknownCertificate",
  VoteNotFound = "VoteNotFound",
  VoteAlreadyExists = "VoteAlreadyExists",
  NodeCannotHandleRequest = "NodeCannotHandleRequest",
  TransactionPendingOrUnknown = "TransactionPendingOrUnknown",
  TransactionInvalid = "TransactionInvalid",
  PrimaryNotFound = "PrimaryNotFound",
  BackupNotFound = "BackupNotFound",
  RequestAlreadyForwarded = "RequestAlreadyForwarded",
  NodeNotRetiredCommitted = "NodeNotRetiredCommitted",
  SessionConsistencyLost = "SessionConsistencyLost",
  ExecutorDispatchFailed = "ExecutorDispatchFailed",
  ProposalReplay = "ProposalReplay",
  ProposalCreatedTooLongAgo = "ProposalCreatedTooLongAgo",
  InvalidCreatedAt = "InvalidCreatedAt",
  JSException = "JSException",
  TooManyPendingTransactions = "TooManyPendingTransactions",
  MissingApiVersionParameter = "MissingApiVersionParameter",
  UnsupportedApiVersionValue = "UnsupportedApiVersionValue",
  ConsensusTypeMismatch = "ConsensusTypeMismatch",
  InvalidQuote = "InvalidQuote",
  InvalidNodeState = "InvalidNodeState",
  NodeAlreadyExists = "NodeAlreadyExists",
  StartupSeqnoIsOld = "StartupSeqnoIsOld",
  CSRPublicKeyInvalid = "CSRPublicKeyInvalid",
  // Consortia's own: a request head or body that missed its time limit (CCF has none).
  RequestTimeout = "RequestTimeout",
  // Consortia's own (ADR 0005): an app service that cannot answer.
  AppServiceUnavailable = "AppServiceUnavailable",
  AppServiceTimeout = "AppServiceTimeout",
  AppServicePackageMismatch = "AppServicePackageMismatch",
}

/** Every code's HTTP status, as CCF's frontends answer it (`Record` makes the table total). */
export const HTTP_STATUS_OF_CODE: Readonly<Record<HttpErrorCode, number>> = {
  AuthorizationFailed: 403,
  InternalError: 500,
  NotImplemented: 501,
  InvalidAuthenticationInfo: 401,
  InvalidHeaderValue: 400,
  InvalidInput: 400,
  InvalidQueryParameterValue: 400,
  InvalidResourceName: 400,
  MissingRequiredHeader: 400,
  ResourceNotFound: 404,
  RequestNotSigned: 401,
  UnsupportedHttpVerb: 405,
  UnsupportedContentType: 415,
  RequestBodyTooLarge: 413,
  RequestHeaderTooLarge: 431,
  PreconditionFailed: 412,
  SessionCapExhausted: 503,
  // CCF answers /app requests before the service opens with 404, not 503.
  FrontendNotOpen: 404,
  KeyNotFound: 404,
  NodeAlreadyRecovering: 403,
  ProposalNotOpen: 400,
  ProposalNotFound: 404,
  ProposalFailedToValidate: 400,
  ServiceNotWaitingForRecoveryShares: 403,
  StateDigestMismatch: 400,
  TransactionNotFound: 404,
  TransactionCommitAttemptsExceedLimit: 409,
  TransactionReplicationFailed: 503,
  // CCF's /caller_id style endpoints answer an unregistered certificate with 400.
  UnknownCertificate: 400,
  VoteNotFound: 404,
  VoteAlreadyExists: 400,
  NodeCannotHandleRequest: 503,
  TransactionPendingOrUnknown: 404,
  TransactionInvalid: 404,
  PrimaryNotFound: 503,
  BackupNotFound: 503,
  RequestAlreadyForwarded: 503,
  NodeNotRetiredCommitted: 400,
  SessionConsistencyLost: 500,
  ExecutorDispatchFailed: 502,
  ProposalReplay: 400,
  ProposalCreatedTooLongAgo: 400,
  InvalidCreatedAt: 400,
  JSException: 500,
  TooManyPendingTransactions: 503,
  MissingApiVersionParameter: 400,
  UnsupportedApiVersionValue: 400,
  ConsensusTypeMismatch: 400,
  InvalidQuote: 401,
  InvalidNodeState: 400,
  NodeAlreadyExists: 400,
  StartupSeqnoIsOld: 400,
  CSRPublicKeyInvalid: 400,
  RequestTimeout: 408,
  AppServiceUnavailable: 503,
  AppServiceTimeout: 504,
  AppServicePackageMismatch: 503,
};

export function httpStatusOf(code: HttpErrorCode): number {
  return HTTP_STATUS_OF_CODE[code];
}

/** A JSON document as handlers produce it (objects may be interfaces, hence `object`). */
export type JsonBody = object | string | number | boolean | null;

/** The OData error body CCF sends; `details` is present only when non-empty was given. */
export interface ErrorBody {
  readonly error: {
    readonly code: HttpErrorCode;
    readonly message: string;
    readonly details?: readonly JsonBody[];
  };
}

export function errorBody(
  code: HttpErrorCode,
  message: string,
  details?: readonly JsonBody[],
): ErrorBody {
  return {
    error: details === undefined ? { code, message } : { code, message, details },
  };
}

export interface HttpErrorOptions {
  /** Per-failure entries, e.g. CCF's `{auth_policy, code, message}` per auth policy tried. */
  readonly details?: readonly JsonBody[];
  /** Extra response headers, e.g. `www-authenticate` for COSE auth failures. */
  readonly headers?: Readonly<Record<string, string>>;
}

export type HttpErrorType = {
  code: HttpErrorCode;
  /** Invariant: always HTTP_STATUS_OF_CODE[code]. */
  status: number;
  details?: readonly JsonBody[];
  headers?: Readonly<Record<string, string>>;
};

/**
 * A request that ends in a CCF error response. Thrown by handlers (and by the server itself);
 * the server turns it into `status` + `headers` + errorBody(code, message, details).
 */
export class HttpError extends CcfError<HttpErrorType> {
  constructor(code: HttpErrorCode, message: string, options: HttpErrorOptions = {}) {
    super(
      {
        code,
        status: HTTP_STATUS_OF_CODE[code],
        ...(options.details !== undefined ? { details: options.details } : {}),
        ...(options.headers !== undefined ? { headers: options.headers } : {}),
      },
      message,
    );
  }

  get status(): number {
    return this.type.status;
  }

  get details(): readonly JsonBody[] | undefined {
    return this.type.details;
  }

  get headers(): Readonly<Record<string, string>> {
    return this.type.headers ?? {};
  }

  get body(): ErrorBody {
    return errorBody(this.code, this.message, this.type.details);
  }
}
