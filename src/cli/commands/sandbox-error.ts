/**
 * What can make a sandbox start or recovery fail (`consortia sandbox`, `--recover`): a node that
 * exits or never gets ready, a service or proposal that does not reach the state the sandbox
 * drives it to, a workspace without what it needs. The sandbox stops its nodes and reports the
 * message with their logs as a CliError; failureMessage decides what is reportable.
 */
import { CcfError } from "../../base/errors.js";
import { isReportable } from "../cli-error.js";

export enum SandboxErrorCode {
  /** A node process exited while the sandbox was bringing the service up. */
  NodeExited = "NodeExited",
  /** A phase did not finish in time (a file, a state, a snapshot, joiners). */
  Timeout = "Timeout",
  /** The service is in another state than the step just driven it to. */
  UnexpectedStatus = "UnexpectedStatus",
  /** A governance proposal ended other than Accepted. */
  ProposalFailed = "ProposalFailed",
  /** The workspace lacks a file or directory the sandbox needs (ledger, member certificates). */
  MissingState = "MissingState",
  /** Every recovery member submitted its share and the node did not start the recovery's end. */
  RecoveryNotStarted = "RecoveryNotStarted",
  /**
   * The step was abandoned because the race it belongs to was decided elsewhere (a node exited,
   * a signal arrived): this only ends a polling loop whose result nobody waits for any more.
   */
  Aborted = "Aborted",
}
export type SandboxErrorType =
  | { code: SandboxErrorCode.UnexpectedStatus; status: string }
  | { code: SandboxErrorCode.ProposalFailed; proposalId: string; state: string }
  | {
      code: Exclude<
        SandboxErrorCode,
        SandboxErrorCode.UnexpectedStatus | SandboxErrorCode.ProposalFailed
      >;
    };
export class SandboxError extends CcfError<SandboxErrorType> {}

/**
 * The message to report for a failed sandbox step: a typed error (SandboxError, ClientError,
 * ...), a CliError, a node IO error or an already formatted reason. Null for anything else: a
 * bug, which the caller rethrows (once the nodes are stopped) instead of reporting it as a
 * failure of the service.
 */
export function failureMessage(failure: unknown): string | null {
  if (typeof failure === "string") return failure;
  return isReportable(failure) ? failure.message : null;
}
