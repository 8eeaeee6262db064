import { ClientError } from "@consortia/client";
import { CcfError, isNodeError } from "../base/errors.js";

/** A failure to report to the CLI user as one line, with the process exit code. */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/**
 * Whether `err` is a failure to report to the user as one line: a CliError, a typed error
 * (CcfError: an invalid ledger, a configuration error; ClientError: a node's error answer, no
 * answer, a receipt that does not verify) or an error Node.js
 * raised for a system call or an API given bad input (ENOENT, EADDRINUSE, ERR_OSSL_...).
 * Anything else, an AssertionError above all, is a bug: commands let it propagate with its
 * stack instead of turning it into a tidy message (style.md §3.4).
 */
export function isReportable(err: unknown): err is Error {
  return (
    err instanceof CliError ||
    err instanceof CcfError ||
    err instanceof ClientError ||
    isNodeError(err)
  );
}
