/**
 * Boundary errors: bad input, malformed bytes, IO failures. Each carries a code from a closed
 * set so callers branch on codes, never on message strings (style.md §3.3).
 */
import { AssertionError } from "./assert.js";

export interface ErrorType {
  readonly code: string;
}

export class CcfError<T extends ErrorType = ErrorType> extends Error {
  readonly type: T;

  constructor(type: T, message: string) {
    super(message);
    this.type = type;
    this.name = new.target.name;
  }

  get code(): T["code"] {
    return this.type.code;
  }

  toObject(): Record<string, unknown> {
    return { ...(this.type as object), message: this.message };
  }
}

/**
 * Whether `e` was thrown by code outside this project (node:crypto, a parser library): an
 * Error that is neither an AssertionError nor a CcfError. A catch around such a call converts
 * only these into an outcome, so an invariant failure or a typed error raised by our own code
 * still propagates (style.md §3.1: nothing below the top level swallows an assertion).
 */
export function isForeignError(e: unknown): e is Error {
  return e instanceof Error && !(e instanceof AssertionError) && !(e instanceof CcfError);
}

/**
 * Whether `e` is an error Node.js raised for a failed system call or API use: it carries a
 * string `code`, either an errno name (ENOENT, ECONNREFUSED, ENOSPC) or an "ERR_" code
 * (ERR_OSSL_..., ERR_TLS_...). Our own errors never match: AssertionError has no code and a
 * CcfError is excluded by class.
 */
export function isNodeError(e: unknown): e is Error & { readonly code: string } {
  if (!isForeignError(e)) return false;
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" && /^(E[A-Z0-9]+|ERR_[A-Z0-9_]+)$/.test(code);
}

/**
 * Whether `e` is what decoding untrusted text throws: the TypeError of a fatal TextDecoder
 * (bytes that are not UTF-8, as fromUtf8 throws) or the SyntaxError of JSON.parse. Meant for a
 * try block that only decodes, where a TypeError cannot come from anything else.
 */
export function isTextDecodeError(e: unknown): e is TypeError | SyntaxError {
  return e instanceof TypeError || e instanceof SyntaxError;
}
