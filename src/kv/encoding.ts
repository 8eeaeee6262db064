/**
 * Typed access to byte maps: small codecs and a handle wrapper that encodes keys and decodes
 * values, the way CCF's kv::Map<K, V> pairs a map with serialisers. The formats are CCF's
 * (ccf-compatibility.md §5.2): service tables keep raw-byte keys (a string id's UTF-8, an
 * integer as u64 little-endian) and JSON values; singletons live under SINGLETON_KEY.
 *
 * Codecs throw KvError(EncodeFailed / DecodeFailed) for values they cannot represent or bytes
 * they cannot read: stored bytes may come from a ledger or an app, so a bad one is a boundary
 * error, not an assertion.
 */
import { getU64LE, putU64LE, utf8 } from "../base/bytes.js";
import { isForeignError, isTextDecodeError } from "../base/errors.js";
import type { Seqno } from "../base/ids.js";
import { KvError, KvErrorCode, type MapHandle, type ReadonlyMapHandle } from "./tx.js";

export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** The key of a CCF ServiceValue (a one-entry map): 8 zero bytes. Never mutate it. */
export const SINGLETON_KEY: Uint8Array = new Uint8Array(8);

function encodeFailed(codec: string, why: string): never {
  throw new KvError({ code: KvErrorCode.EncodeFailed, codec }, `${codec} codec: ${why}`);
}

function decodeFailed(codec: string, why: string): never {
  throw new KvError({ code: KvErrorCode.DecodeFailed, codec }, `${codec} codec: ${why}`);
}

// A BOM is content here, not a marker: the default decoder would strip a leading U+FEFF and so
// break decode(encode(s)) === s.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function decodeUtf8(codec: string, bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return decodeFailed(codec, "bytes are not UTF-8");
  }
}

const LONE_SURROGATE_RE = /\p{Cs}/u;

/** UTF-8 text. Strings with unpaired surrogates are refused: UTF-8 cannot hold them. */
export const stringCodec: Codec<string> = {
  encode(value) {
    if (LONE_SURROGATE_RE.test(value)) encodeFailed("string", "unpaired surrogate");
    return utf8(value);
  },
  decode(bytes) {
    return decodeUtf8("string", bytes);
  },
};

/** JSON text as UTF-8, as CCF stores service table values. */
export function jsonCodec<T>(): Codec<T> {
  return {
    encode(value) {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch (error) {
        // A cycle or a BigInt (TypeError), or a throwing toJSON of a foreign object; an error
        // of our own (an assertion in a toJSON) is a bug and propagates.
        if (!isForeignError(error)) throw error;
        return encodeFailed("json", error.message);
      }
      if (text === undefined) return encodeFailed("json", "value has no JSON form");
      return utf8(text);
    },
    decode(bytes) {
      const text = decodeUtf8("json", bytes);
      try {
        return JSON.parse(text) as T;
      } catch (err: unknown) {
        if (!isTextDecodeError(err)) throw err;
        return decodeFailed("json", "bytes are not JSON");
      }
    },
  };
}

const U64_BYTES = 8;

/** Unsigned integers as 8 bytes little-endian (CCF integer keys); limited to safe integers. */
export const u64Codec: Codec<number> = {
  encode(value) {
    if (!Number.isSafeInteger(value) || value < 0) encodeFailed("u64", `not a u64: ${value}`);
    const out = new Uint8Array(U64_BYTES);
    putU64LE(out, 0, value);
    return out;
  },
  decode(bytes) {
    if (bytes.byteLength !== U64_BYTES) decodeFailed("u64", `${bytes.byteLength} bytes, not 8`);
    const value = getU64LE(bytes, 0);
    if (!Number.isSafeInteger(value)) decodeFailed("u64", "value above 2^53 - 1");
    return value;
  },
};

/** Bytes as they are. */
export const rawCodec: Codec<Uint8Array> = {
  encode: (value) => value,
  decode: (bytes) => bytes,
};

export interface TypedReadonlyMapHandle<K, V> {
  readonly name: string;
  get(key: K): V | undefined;
  has(key: K): boolean;
  forEach(callback: (value: V, key: K) => void): void;
  readonly size: number;
  getVersionOfPreviousWrite(key: K): Seqno | undefined;
}

export interface TypedMapHandle<K, V> extends TypedReadonlyMapHandle<K, V> {
  set(key: K, value: V): void;
  delete(key: K): boolean;
  clear(): void;
}

class TypedMap<K, V> implements TypedMapHandle<K, V> {
  constructor(
    private readonly handle: MapHandle,
    private readonly keyCodec: Codec<K>,
    private readonly valueCodec: Codec<V>,
  ) {}

  get name(): string {
    return this.handle.name;
  }

  get(key: K): V | undefined {
    const bytes = this.handle.get(this.keyCodec.encode(key));
    return bytes === undefined ? undefined : this.valueCodec.decode(bytes);
  }

  has(key: K): boolean {
    return this.handle.has(this.keyCodec.encode(key));
  }

  set(key: K, value: V): void {
    this.handle.set(this.keyCodec.encode(key), this.valueCodec.encode(value));
  }

  delete(key: K): boolean {
    return this.handle.delete(this.keyCodec.encode(key));
  }

  clear(): void {
    this.handle.clear();
  }

  forEach(callback: (value: V, key: K) => void): void {
    this.handle.forEach((value, key) => {
      callback(this.valueCodec.decode(value), this.keyCodec.decode(key));
    });
  }

  get size(): number {
    return this.handle.size;
  }

  getVersionOfPreviousWrite(key: K): Seqno | undefined {
    return this.handle.getVersionOfPreviousWrite(this.keyCodec.encode(key));
  }
}

/** Wraps a byte handle so it reads and writes T values; a read-only handle stays read-only. */
export function typedMap<K, V>(
  handle: MapHandle,
  keyCodec: Codec<K>,
  valueCodec: Codec<V>,
): TypedMapHandle<K, V>;
export function typedMap<K, V>(
  handle: ReadonlyMapHandle,
  keyCodec: Codec<K>,
  valueCodec: Codec<V>,
): TypedReadonlyMapHandle<K, V>;
export function typedMap<K, V>(
  handle: ReadonlyMapHandle,
  keyCodec: Codec<K>,
  valueCodec: Codec<V>,
): TypedReadonlyMapHandle<K, V> {
  // Only the overload signatures are visible: a read-only handle gets the read-only type.
  return new TypedMap(handle as MapHandle, keyCodec, valueCodec);
}
