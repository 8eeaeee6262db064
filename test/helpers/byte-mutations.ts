/**
 * Mutations of a byte string for the fuzzers in test/property: flip bits, cut, insert, delete or
 * overwrite a run; `mutate` applies one (positions wrap around the string's length).
 */
import fc from "fast-check";

export type Mutation =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; count: number }
  | { kind: "overwrite"; at: number; bytes: Uint8Array };

export interface MutationSizes {
  /** The longest run inserted or deleted. */
  readonly maxRun: number;
  /** The longest run overwritten. */
  readonly maxOverwrite: number;
  /** Whether overwrites also write runs of 0xff (lengths read as huge). */
  readonly ffRuns?: boolean;
}

export function mutationArb(sizes: MutationSizes): fc.Arbitrary<Mutation> {
  const overwrite = fc.uint8Array({ minLength: 1, maxLength: sizes.maxOverwrite });
  return fc.oneof(
    fc.record({
      kind: fc.constant("flip" as const),
      at: fc.nat(),
      mask: fc.integer({ min: 1, max: 255 }),
    }),
    fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant("insert" as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: sizes.maxRun }),
    }),
    fc.record({
      kind: fc.constant("delete" as const),
      at: fc.nat(),
      count: fc.integer({ min: 1, max: sizes.maxRun }),
    }),
    fc.record({
      kind: fc.constant("overwrite" as const),
      at: fc.nat(),
      bytes:
        sizes.ffRuns === true
          ? fc.oneof(
              overwrite,
              fc
                .integer({ min: 1, max: sizes.maxOverwrite })
                .map((n) => new Uint8Array(n).fill(0xff)),
            )
          : overwrite,
    }),
  );
}

/** `bytes` with `m` applied (a new array; `bytes` is unchanged). */
export function mutate(bytes: Uint8Array, m: Mutation): Uint8Array {
  const at = bytes.byteLength === 0 ? 0 : m.at % bytes.byteLength;
  switch (m.kind) {
    case "flip": {
      const out = bytes.slice();
      if (out.byteLength > 0) out[at] = out[at]! ^ m.mask;
      return out;
    }
    case "cut":
      return bytes.slice(0, at);
    case "insert":
      return new Uint8Array([...bytes.subarray(0, at), ...m.bytes, ...bytes.subarray(at)]);
    case "delete":
      return new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + m.count)]);
    case "overwrite": {
      const out = bytes.slice();
      out.set(m.bytes.subarray(0, Math.max(0, out.byteLength - at)), at);
      return out;
    }
  }
}
