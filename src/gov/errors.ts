/**
 * Governance errors: the CCF error codes the /gov handlers answer with
 * (ccf-compatibility.md §3.4, CCF src/node/gov/handlers/*.h). Each code's string equals
 * the CCF OData code, so the HTTP layer maps `error.code` through its one status table
 * (src/http/errors.ts) without a second table here.
 *
 * A GovError means the request fails and its transaction must be discarded: the gov core may
 * already have written to the tx (an apply() that threw half-way, as CCF's does).
 */
import { CcfError } from "../base/errors.js";
import type { Failure } from "./tables.js";

export enum GovErrorCode {
  /** 404: no such proposal. */
  ProposalNotFound = "ProposalNotFound",
  /** 400: ballot or withdrawal for a proposal that is no longer Open. */
  ProposalNotOpen = "ProposalNotOpen",
  /** 400: the constitution's validate() returned valid: false. */
  ProposalFailedToValidate = "ProposalFailedToValidate",
  /** 400: the member already submitted a different ballot. */
  VoteAlreadyExists = "VoteAlreadyExists",
  /** 404: the member has no ballot on the proposal. */
  VoteNotFound = "VoteNotFound",
  /** 403: withdrawal by a non-proposer; ack without an ack record. */
  AuthorizationFailed = "AuthorizationFailed",
  /** 400: the acked digest is not the one stored by :update. */
  StateDigestMismatch = "StateDigestMismatch",
  /** 404: no such member, user or ack record. */
  ResourceNotFound = "ResourceNotFound",
  /** 400: request content the handler cannot use (e.g. a recovery member acking in recovery). */
  InvalidInput = "InvalidInput",
  /** 500: a JS exception in validate/resolve/apply, or state the service cannot work from. */
  InternalError = "InternalError",
}

export type GovErrorType =
  | { code: Exclude<GovErrorCode, GovErrorCode.InternalError> }
  /** `failure` is set when a proposal ended Failed (resolve() or apply() went wrong). */
  | { code: GovErrorCode.InternalError; failure?: Failure };

export class GovError extends CcfError<GovErrorType> {}

export function govError(
  code: Exclude<GovErrorCode, GovErrorCode.InternalError>,
  message: string,
): GovError {
  return new GovError({ code }, message);
}

export function internalError(message: string, failure?: Failure): GovError {
  const type: GovErrorType =
    failure === undefined
      ? { code: GovErrorCode.InternalError }
      : { code: GovErrorCode.InternalError, failure };
  return new GovError(type, message);
}
