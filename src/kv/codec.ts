/**
 * Deterministic write-set codec, laid out as CCF lays out a domain of a ledger entry
 * (ccf-compatibility.md §6.3), repeated per map:
 *
 *   u64 name_len | name (UTF-8)
 *   u64 read_version (Consortia writes 0) | u64 read_count (always 0 in the ledger)
 *   u64 write_count  | write_count x (u64 key_len | key | u64 value_len | value)
 *   u64 remove_count | remove_count x (u64 key_len | key)
 *
 * All integers little-endian. Writes and removals of one map are each in key order. The decoder
 * accepts only canonical encodings (see write-set.ts) and throws CodecError on anything else.
 */
import { assert } from "../base/assert.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import { compareBytes, fromUtf8, putU64LE, utf8 } from "../base/bytes.js";
import { compareNames, type KeyWrite, type MapWrites } from "./write-set.js";

export enum CodecErrorCode {
  /** The input ended before a length-prefixed field did. */
  Truncated = "Truncated",
  /** A length or count is larger than any valid input could hold. */
  LengthOutOfRange = "LengthOutOfRange",
  /** A map name is not valid UTF-8 or is empty. */
  InvalidName = "InvalidName",
  /** Maps or keys are out of order or duplicated. */
  NotCanonical = "NotCanonical",
  /** A field that must be zero in the ledger (read version, read count) is not. */
  UnexpectedField = "UnexpectedField",
}

export type CodecErrorType = { code: CodecErrorCode; offset: number };
export class CodecError extends CcfError<CodecErrorType> {}

const U64 = 8;
const TWO_POW_32 = 0x1_0000_0000;

/** Map names are few and repeat on every transaction: cache their UTF-8 bytes. */
const NAME_CACHE_MAX = 4096;
const nameCache = new Map<string, Uint8Array>();

function nameBytes(name: string): Uint8Array {
  let bytes = nameCache.get(name);
  if (bytes === undefined) {
    bytes = utf8(name);
    if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
    nameCache.set(name, bytes);
  }
  return bytes;
}

/** Maps ready to be written: their UTF-8 names and encoded size, computed once. */
export interface MapsLayout {
  readonly maps: readonly MapWrites[];
  readonly names: readonly Uint8Array[];
  readonly sizeBytes: number;
}

export function layoutMaps(maps: readonly MapWrites[]): MapsLayout {
  const names: Uint8Array[] = new Array(maps.length);
  let size = 0;
  for (let m = 0; m < maps.length; m++) {
    const name = nameBytes(maps[m]!.name);
    names[m] = name;
    size += U64 + name.byteLength + 4 * U64;
    for (const w of maps[m]!.writes) {
      size += U64 + w.key.byteLength;
      if (w.value !== null) size += U64 + w.value.byteLength;
    }
  }
  return { maps, names, sizeBytes: size };
}

function putBlob(target: Uint8Array, offset: number, blob: Uint8Array): number {
  putU64LE(target, offset, blob.byteLength);
  target.set(blob, offset + U64);
  return offset + U64 + blob.byteLength;
}

/**
 * Writes laid-out maps into `target` at `offset` (which must have `layout.sizeBytes` bytes
 * free) and returns the end offset. Callers produce canonical input (Store.commit does).
 */
export function writeMaps(layout: MapsLayout, target: Uint8Array, offset: number): number {
  let o = offset;
  const { maps, names } = layout;
  for (let m = 0; m < maps.length; m++) {
    const writes = maps[m]!.writes;
    o = putBlob(target, o, names[m]!);
    putU64LE(target, o, 0); // read version
    putU64LE(target, o + U64, 0); // read count
    o += 2 * U64;
    let updates = 0;
    for (const kw of writes) if (kw.value !== null) updates++;
    putU64LE(target, o, updates);
    o += U64;
    for (const kw of writes) {
      if (kw.value === null) continue;
      o = putBlob(target, o, kw.key);
      o = putBlob(target, o, kw.value);
    }
    putU64LE(target, o, writes.length - updates);
    o += U64;
    for (const kw of writes) if (kw.value === null) o = putBlob(target, o, kw.key);
  }
  assert(o - offset === layout.sizeBytes, "codec: written size matches the layout");
  return o;
}

/** Encodes canonical map writes into fresh bytes. */
export function encodeMaps(maps: readonly MapWrites[]): Uint8Array {
  const layout = layoutMaps(maps);
  const out = new Uint8Array(layout.sizeBytes);
  writeMaps(layout, out, 0);
  return out;
}

class Reader {
  private readonly view: DataView;
  offset = 0;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  fail(code: CodecErrorCode, what: string): never {
    const message = `write set: ${what} at offset ${this.offset}`;
    throw new CodecError({ code, offset: this.offset }, message);
  }

  u64(what: string): number {
    if (this.remaining < U64) this.fail(CodecErrorCode.Truncated, `truncated ${what}`);
    const lo = this.view.getUint32(this.offset, true);
    const hi = this.view.getUint32(this.offset + 4, true);
    if (hi >= 0x20_0000) this.fail(CodecErrorCode.LengthOutOfRange, `${what} out of range`);
    this.offset += U64;
    return hi * TWO_POW_32 + lo;
  }

  blob(what: string): Uint8Array {
    const length = this.u64(`${what} length`);
    if (length > this.remaining) this.fail(CodecErrorCode.Truncated, `truncated ${what}`);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** A count of items each at least `minItemBytes` long must fit in what is left. */
  count(what: string, minItemBytes: number): number {
    const n = this.u64(what);
    if (n * minItemBytes > this.remaining) {
      this.fail(CodecErrorCode.LengthOutOfRange, `${what} too large`);
    }
    return n;
  }
}

function decodeName(r: Reader): string {
  const raw = r.blob("map name");
  if (raw.byteLength === 0) r.fail(CodecErrorCode.InvalidName, "empty map name");
  try {
    return fromUtf8(raw); // keeps a leading U+FEFF, so names round-trip byte for byte
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return r.fail(CodecErrorCode.InvalidName, "map name is not UTF-8");
  }
}

function decodeMap(r: Reader, name: string): MapWrites {
  // Only 0 re-encodes to the same bytes: anything else is not a canonical encoding.
  if (r.u64("read version") !== 0) r.fail(CodecErrorCode.UnexpectedField, "non-zero read version");
  if (r.u64("read count") !== 0) r.fail(CodecErrorCode.UnexpectedField, "non-zero read count");
  const updates: KeyWrite[] = [];
  const updateCount = r.count("write count", 2 * U64);
  for (let i = 0; i < updateCount; i++) {
    const key = r.blob("key");
    const value = r.blob("value");
    const prev = updates[i - 1];
    if (prev !== undefined && compareBytes(prev.key, key) >= 0) {
      r.fail(CodecErrorCode.NotCanonical, "writes not in strict key order");
    }
    updates.push({ key, value });
  }
  const removeCount = r.count("remove count", U64);
  const removals: KeyWrite[] = [];
  for (let i = 0; i < removeCount; i++) {
    const key = r.blob("removed key");
    const prev = removals[i - 1];
    if (prev !== undefined && compareBytes(prev.key, key) >= 0) {
      r.fail(CodecErrorCode.NotCanonical, "removals not in strict key order");
    }
    removals.push({ key, value: null });
  }
  return { name, writes: mergeWrites(r, updates, removals) };
}

/** Merges two key-sorted lists; a key both written and removed is not canonical. */
function mergeWrites(r: Reader, updates: KeyWrite[], removals: KeyWrite[]): KeyWrite[] {
  if (removals.length === 0) return updates;
  if (updates.length === 0) return removals;
  const out: KeyWrite[] = [];
  let i = 0;
  let j = 0;
  while (i < updates.length || j < removals.length) {
    const a = updates[i];
    const b = removals[j];
    if (b === undefined || (a !== undefined && compareBytes(a.key, b.key) < 0)) {
      out.push(a!);
      i++;
    } else if (a === undefined || compareBytes(a.key, b.key) > 0) {
      out.push(b);
      j++;
    } else {
      r.fail(CodecErrorCode.NotCanonical, "key both written and removed");
    }
  }
  return out;
}

/**
 * Decodes a domain. Returned keys and values are views into `bytes` (no copies): callers that
 * keep them beyond the life of `bytes` must copy.
 */
export function decodeMaps(bytes: Uint8Array): MapWrites[] {
  const r = new Reader(bytes);
  const maps: MapWrites[] = [];
  while (r.remaining > 0) {
    const name = decodeName(r);
    const prev = maps[maps.length - 1];
    if (prev !== undefined && compareNames(prev.name, name) >= 0) {
      r.fail(CodecErrorCode.NotCanonical, "maps not in strict name order");
    }
    maps.push(decodeMap(r, name));
  }
  return maps;
}
