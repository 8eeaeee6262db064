/**
 * Boundary errors: bad input, malformed bytes, IO failures. Each carries a code from a closed
 * set so callers branch on codes, never on message strings (house style 6.5, kind 3).
 */

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
