/**
 * The errors the console server (`consortia console`) answers with itself, in CCF's error body
 * `{"error":{"code","message"}}` (ccf-compatibility.md §3.6), so that the pages read its
 * refusals and the network's own errors the same way.
 *
 * Where a CCF code says it (an unknown path, a body too large, a verb not served) the CCF code
 * and its status are used; the console adds the few cases CCF has no code for: the network did
 * not answer, answered too slowly, or answered more than the console passes on. Invariant:
 * CONSOLE_STATUS is the one table from code to status.
 */
import { CcfError } from "../../base/errors.js";

export enum ConsoleErrorCode {
  /** CCF's: a path the console does not serve or does not pass on. */
  ResourceNotFound = "ResourceNotFound",
  /** CCF's: a method the path is not served with. */
  UnsupportedHttpVerb = "UnsupportedHttpVerb",
  /** CCF's: a request body over the console's limit. */
  RequestBodyTooLarge = "RequestBodyTooLarge",
  /** CCF's: a query string or header the console refuses (too long, not ASCII). */
  InvalidInput = "InvalidInput",
  /** CCF's: a request whose Host or Origin is not this console (DNS rebinding, CSRF). */
  AuthorizationFailed = "AuthorizationFailed",
  /** The console's: no node of the network could be reached (refused, reset, TLS failure). */
  NetworkUnreachable = "NetworkUnreachable",
  /** The console's: the network did not answer within the console's time limit. */
  NetworkTimeout = "NetworkTimeout",
  /** The console's: the network's answer was larger than the console passes on. */
  ResponseTooLarge = "ResponseTooLarge",
  /** The console's: ledger files were asked for but none are configured or they do not read. */
  LedgerUnavailable = "LedgerUnavailable",
  /** The console's: the ledger files do not read (corrupt, unreadable). */
  LedgerInvalid = "LedgerInvalid",
}

export const CONSOLE_STATUS: Readonly<Record<ConsoleErrorCode, number>> = {
  ResourceNotFound: 404,
  UnsupportedHttpVerb: 405,
  RequestBodyTooLarge: 413,
  InvalidInput: 400,
  AuthorizationFailed: 403,
  NetworkUnreachable: 502,
  NetworkTimeout: 504,
  ResponseTooLarge: 502,
  LedgerUnavailable: 404,
  LedgerInvalid: 500,
};

/** A refusal or failure of the console server, answered with CONSOLE_STATUS[code]. */
export class ConsoleError extends CcfError<{ code: ConsoleErrorCode; notSent?: boolean }> {
  /** `notSent`: NetworkUnreachable before the request left (connection refused). */
  constructor(code: ConsoleErrorCode, message: string, options: { notSent?: boolean } = {}) {
    super({ code, ...(options.notSent === true ? { notSent: true } : {}) }, message);
  }

  /** Whether the request never reached a server, so another node may take it. */
  get notSent(): boolean {
    return this.type.notSent === true;
  }

  get status(): number {
    return CONSOLE_STATUS[this.code];
  }

  get body(): { error: { code: ConsoleErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
