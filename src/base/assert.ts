/**
 * Invariant checks. An assertion failure is a programmer error or corrupt state: nothing below
 * the process top level catches it (style.md §3.1). Assertions stay on in production.
 */

export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Exhaustiveness check for `switch` over a discriminated union. */
export function assertNever(value: never, what = "value"): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
