/**
 * The snapshot entry, laid out as CCF lays it out (ccf-compatibility.md §6.6), so that CCF's
 * snapshot reader reads every public map of it:
 *
 *   framing and encryption as any entry (entry-format.ts): entry type 1, IV of view 0 with the
 *   snapshot bit, the ledger secret in force at the seqno
 *   public domain (clear; the AAD of the private domain):
 *     u8 entry type (1) | i64 LE seqno | i64 LE max_conflict_version (0)    no digests
 *     u64 LE 32 | hash at snapshot[32]     the Merkle leaf of the transaction at the seqno
 *     u64 LE 8n | n x u64 LE               the view history: item i is the first seqno of view
 *                                          i + 1 (a view without transactions shares the next
 *                                          view's), up to the view of the seqno, so n is that view
 *     the public maps
 *   private domain (encrypted): the private maps
 *
 * Each map:
 *   u64 LE name length | name (UTF-8)
 *   u64 LE seqno of the last write to the map
 *   u64 LE size in bytes of the keys that follow
 *   per live key: u64 LE key length | key | zero padding to a multiple of 8 bytes
 *                 u64 LE 8 + value length | u64 LE seqno of the key's last write | value |
 *                 zero padding to a multiple of 8 bytes
 *
 * Maps are in name order in each domain, as CCF writes them. Ours: keys are in byte order (CCF
 * orders them by a hash of the key), so the same store always gives the same bytes; the decoder
 * insists on that order, on zero padding and on seqnos that fit (every key at or before its map,
 * every map at or before the snapshot).
 *
 * Pure: no IO. Snapshots of Consortia's earlier layout (write-set digests and map encoding) are
 * refused with UnsupportedFormat, never misread.
 */
import { assert } from "../base/assert.js";
import { compareBytes, fromUtf8, getU64LE, putU64LE, utf8 } from "../base/bytes.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import type { Seqno, View } from "../base/ids.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import type { SnapshotKey, SnapshotMap } from "../kv/snapshot-state.js";
import { compareNames, isPublicMap } from "../kv/write-set.js";
import {
  decodeSnapshotFrame,
  decryptFramed,
  EntryError,
  sealSnapshotInto,
  SNAPSHOT_BODY_OFFSET,
  snapshotEntrySize,
  type SnapshotFrame,
} from "./entry-format.js";
import type { LedgerSecrets } from "./ledger-secrets.js";

export enum SnapshotErrorCode {
  /** Not a snapshot entry (truncated, wrong type, bad framing, maps out of shape). */
  Malformed = "Malformed",
  /** A snapshot in Consortia's earlier layout, which this version does not read. */
  UnsupportedFormat = "UnsupportedFormat",
  /** The private domain does not authenticate: altered bytes or the wrong ledger secret. */
  Tampered = "Tampered",
  /** The bytes after the entry are not a UTF-8 JSON receipt. */
  BadReceipt = "BadReceipt",
}
export type SnapshotErrorType = { code: SnapshotErrorCode; offset?: number };
export class SnapshotError extends CcfError<SnapshotErrorType> {}

/** Where a snapshot stands: its seqno and the header CCF writes before the maps. */
export interface SnapshotHeader {
  readonly seqno: Seqno;
  /** The Merkle leaf of the transaction at `seqno` (32 bytes). */
  readonly hashAtSnapshot: Uint8Array;
  /** Invariant: non-empty, non-decreasing, every item in [1, seqno] (CCF's view history). */
  readonly viewHistory: readonly Seqno[];
}

/** What a snapshot holds: its header and every map, of both domains, in name order. */
export interface SnapshotContents extends SnapshotHeader {
  readonly maps: readonly SnapshotMap[];
}

/** A decoded snapshot entry whose private domain is still encrypted. */
export interface SnapshotEntry extends SnapshotHeader {
  /** The view of the transaction at `seqno`: the number of views in the view history. */
  readonly view: View;
  readonly publicMaps: readonly SnapshotMap[];
  readonly frame: SnapshotFrame;
}

const U64 = 8;
/** u64 length | hash at snapshot | u64 length of the view history (its items follow). */
const HEADER_FIXED_BYTES = U64 + SHA256_BYTES + U64;
/** Type, seqno, then 32 + 32 zero digest bytes and max_conflict_version: the earlier layout. */
const EARLIER_ZERO_FROM = 9;
const EARLIER_ZERO_TO = 9 + 2 * SHA256_BYTES + U64;

/** Bytes of `n` rounded up to a multiple of 8 (CCF pads keys and values so). */
function padded(n: number): number {
  return n + ((U64 - (n % U64)) % U64);
}

/** The view of the last seqno a view history covers. */
export function viewOfHistory(viewHistory: readonly Seqno[]): View {
  return viewHistory.length as View;
}

// ---- Encoding -----------------------------------------------------------------------------

interface MapsLayout {
  readonly maps: readonly SnapshotMap[];
  readonly names: readonly Uint8Array[];
  readonly keysBytes: readonly number[];
  readonly sizeBytes: number;
}

function layoutMaps(maps: readonly SnapshotMap[]): MapsLayout {
  const names = maps.map((m) => utf8(m.name));
  let size = 0;
  const keysBytes = maps.map((map, m) => {
    let bytes = 0;
    for (const k of map.keys) {
      bytes += U64 + padded(k.key.byteLength) + U64 + padded(U64 + k.value.byteLength);
    }
    size += U64 + names[m]!.byteLength + 2 * U64 + bytes;
    return bytes;
  });
  return { maps, names, keysBytes, sizeBytes: size };
}

/** Writes laid-out maps at `offset` of zeroed `target` (the padding stays zero). */
function writeMaps(layout: MapsLayout, target: Uint8Array, offset: number): number {
  let o = offset;
  layout.maps.forEach((map, m) => {
    const name = layout.names[m]!;
    putU64LE(target, o, name.byteLength);
    target.set(name, o + U64);
    o += U64 + name.byteLength;
    putU64LE(target, o, map.seqno);
    putU64LE(target, o + U64, layout.keysBytes[m]!);
    o += 2 * U64;
    for (const k of map.keys) {
      putU64LE(target, o, k.key.byteLength);
      target.set(k.key, o + U64);
      o += U64 + padded(k.key.byteLength);
      putU64LE(target, o, U64 + k.value.byteLength);
      putU64LE(target, o + U64, k.seqno);
      target.set(k.value, o + 2 * U64);
      o += U64 + padded(U64 + k.value.byteLength);
    }
  });
  assert(o - offset === layout.sizeBytes, "snapshot maps: written size matches the layout");
  return o;
}

/**
 * Serialises and encrypts a snapshot (canonical bytes: the same contents always give the same
 * entry). `contents.maps` must be in name order (asserted), with keys in byte order (the
 * callers sort them: Store.snapshotMaps, encodePackedSnapshot; our decoder refuses any other).
 */
export function encodeSnapshotEntry(
  contents: SnapshotContents,
  secrets: LedgerSecrets,
): Uint8Array {
  const { seqno, hashAtSnapshot, viewHistory } = contents;
  assert(hashAtSnapshot.byteLength === SHA256_BYTES, "hash at snapshot is 32 bytes");
  assert(viewHistory.length > 0 && viewHistory.at(-1)! <= seqno, "view history up to seqno");
  for (let i = 1; i < contents.maps.length; i++) {
    assert(compareNames(contents.maps[i - 1]!.name, contents.maps[i]!.name) < 0, "map order");
  }
  const publicLayout = layoutMaps(contents.maps.filter((m) => isPublicMap(m.name)));
  const privateLayout = layoutMaps(contents.maps.filter((m) => !isPublicMap(m.name)));
  const headerBytes = HEADER_FIXED_BYTES + U64 * viewHistory.length;
  const publicBodyBytes = headerBytes + publicLayout.sizeBytes;
  const out = new Uint8Array(snapshotEntrySize(publicBodyBytes, privateLayout.sizeBytes));
  let o = SNAPSHOT_BODY_OFFSET;
  putU64LE(out, o, SHA256_BYTES);
  out.set(hashAtSnapshot, o + U64);
  o += U64 + SHA256_BYTES;
  putU64LE(out, o, U64 * viewHistory.length);
  o += U64;
  for (const first of viewHistory) {
    putU64LE(out, o, first);
    o += U64;
  }
  writeMaps(publicLayout, out, o);
  const privatePlaintext = new Uint8Array(privateLayout.sizeBytes);
  writeMaps(privateLayout, privatePlaintext, 0);
  sealSnapshotInto({ seqno, publicBodyBytes, privatePlaintext }, secrets, out);
  return out;
}

// ---- Decoding -----------------------------------------------------------------------------

/** Reads one domain's bytes, failing with SnapshotError(Malformed) at the offending offset. */
class DomainReader {
  offset = 0;
  /** Reads stop here (the end of the current map while reading its keys). */
  private limit: number;

  constructor(
    private readonly bytes: Uint8Array,
    readonly domain: "public" | "private",
    /** Where `bytes` start in their domain, for error messages. */
    private readonly base: number,
  ) {
    this.limit = bytes.byteLength;
  }

  get remaining(): number {
    return this.limit - this.offset;
  }

  fail(what: string): never {
    const offset = this.base + this.offset;
    throw new SnapshotError(
      { code: SnapshotErrorCode.Malformed, offset },
      `snapshot: ${what} at ${this.domain} domain offset ${offset}`,
    );
  }

  u64(what: string): number {
    if (this.remaining < U64) this.fail(`truncated ${what}`);
    const n = getU64LE(this.bytes, this.offset);
    if (Number.isNaN(n)) this.fail(`${what} out of range`);
    this.offset += U64;
    return n;
  }

  take(length: number, what: string): Uint8Array {
    if (length > this.remaining) this.fail(`truncated ${what}`);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** The zero padding after an item of `length` bytes. */
  padding(length: number, what: string): void {
    const pad = padded(length) - length;
    for (const byte of this.take(pad, `${what} padding`)) {
      if (byte !== 0) this.fail(`non-zero ${what} padding`);
    }
  }

  /** Runs `read` with reads confined to the next `length` bytes (`length` <= remaining). */
  within<T>(length: number, read: () => T): T {
    const saved = this.limit;
    this.limit = this.offset + length;
    const result = read();
    this.limit = saved;
    return result;
  }
}

/** The hash at snapshot and the view history at the start of the public body. */
function readHeader(r: DomainReader, seqno: Seqno): SnapshotHeader {
  const hashBytes = r.u64("hash at snapshot length");
  if (hashBytes !== SHA256_BYTES) r.fail(`a hash at snapshot of ${hashBytes} bytes, not 32`);
  const hashAtSnapshot = r.take(SHA256_BYTES, "hash at snapshot");
  const historyBytes = r.u64("view history length");
  if (historyBytes % U64 !== 0 || historyBytes === 0 || historyBytes > r.remaining) {
    r.fail(`a view history of ${historyBytes} bytes`);
  }
  const viewHistory: Seqno[] = [];
  for (let i = 0; i < historyBytes / U64; i++) {
    const first = r.u64("view history item");
    if (!(first >= 1 && first <= seqno && first >= (viewHistory.at(-1) ?? 1))) {
      r.fail(`view ${i + 1} starting at ${first} in a snapshot at ${seqno}`);
    }
    viewHistory.push(first as Seqno);
  }
  return { seqno, hashAtSnapshot, viewHistory };
}

function readName(r: DomainReader, previous: string | undefined): string {
  const raw = r.take(r.u64("map name length"), "map name");
  let name: string;
  try {
    name = fromUtf8(raw);
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return r.fail("a map name that is not UTF-8");
  }
  if (name.length === 0) r.fail("an empty map name");
  if (previous !== undefined && compareNames(previous, name) >= 0) {
    r.fail(`map ${name} out of name order`);
  }
  return name;
}

/** The maps from the reader's offset to its end, in the reader's domain. */
function readMaps(r: DomainReader, seqno: Seqno): SnapshotMap[] {
  const maps: SnapshotMap[] = [];
  const publicDomain = r.domain === "public";
  while (r.remaining > 0) {
    const name = readName(r, maps.at(-1)?.name);
    if (isPublicMap(name) !== publicDomain) r.fail(`map ${name} in the wrong domain`);
    const mapSeqno = r.u64("map seqno");
    if (!(mapSeqno >= 1 && mapSeqno <= seqno)) r.fail(`map ${name} at seqno ${mapSeqno}`);
    const size = r.u64("map size");
    if (size > r.remaining) r.fail(`map ${name} of ${size} bytes`);
    // readKeys reads until the map's end: a key running past it is truncated.
    const keys = r.within(size, () => readKeys(r, mapSeqno as Seqno));
    maps.push({ name, seqno: mapSeqno as Seqno, keys });
  }
  return maps;
}

function readKeys(r: DomainReader, mapSeqno: Seqno): SnapshotKey[] {
  const keys: SnapshotKey[] = [];
  while (r.remaining > 0) {
    const keyBytes = r.u64("key length");
    const key = r.take(keyBytes, "key");
    r.padding(keyBytes, "key");
    const valueBytes = r.u64("value length");
    if (valueBytes < U64) r.fail(`a versioned value of ${valueBytes} bytes`);
    const keySeqno = r.u64("key seqno");
    if (!(keySeqno >= 1 && keySeqno <= mapSeqno)) r.fail(`a key at seqno ${keySeqno}`);
    const value = r.take(valueBytes - U64, "value");
    r.padding(valueBytes, "value");
    const previous = keys.at(-1);
    if (previous !== undefined && compareBytes(previous.key, key) >= 0) {
      r.fail("keys not in strict byte order");
    }
    keys.push({ key, value, seqno: keySeqno as Seqno });
  }
  return keys;
}

function malformed(what: string): never {
  throw new SnapshotError({ code: SnapshotErrorCode.Malformed }, `snapshot: ${what}`);
}

/** Whether a public domain has the zero digests of Consortia's earlier snapshot layout. */
function isEarlierLayout(publicDomain: Uint8Array): boolean {
  if (publicDomain.byteLength < EARLIER_ZERO_TO) return false;
  for (let i = EARLIER_ZERO_FROM; i < EARLIER_ZERO_TO; i++) if (publicDomain[i] !== 0) return false;
  return true;
}

/**
 * Parses a snapshot entry (the file's bytes before any receipt): its framing, header and public
 * maps; the private domain stays encrypted (decryptSnapshotMaps). Throws SnapshotError: Malformed,
 * or UnsupportedFormat for a snapshot of Consortia's earlier layout.
 */
export function decodeSnapshotEntry(bytes: Uint8Array): SnapshotEntry {
  let frame: SnapshotFrame;
  try {
    frame = decodeSnapshotFrame(bytes);
  } catch (e) {
    if (!(e instanceof EntryError)) throw e;
    return malformed(e.message);
  }
  // The earlier layout kept a write set's two zero digests where this one has the u64 32 of the
  // hash at snapshot: it cannot be taken for this layout, and is named rather than misread.
  if (isEarlierLayout(frame.publicDomain)) {
    throw new SnapshotError(
      { code: SnapshotErrorCode.UnsupportedFormat },
      `snapshot at seqno ${frame.seqno} is in Consortia's earlier snapshot format (write-set ` +
        "digests and map encoding, before CCF's snapshot layout), which this version does not " +
        "read: start from the ledger, or from a snapshot taken by this version",
    );
  }
  const base = frame.publicDomain.byteLength - frame.publicBody.byteLength;
  const r = new DomainReader(frame.publicBody, "public", base);
  const header = readHeader(r, frame.seqno);
  const publicMaps = readMaps(r, frame.seqno);
  return { ...header, view: viewOfHistory(header.viewHistory), publicMaps, frame };
}

/**
 * The private maps of a decoded snapshot entry, or null when its private domain does not
 * authenticate (altered bytes, or `secrets` without the secret in force at its seqno). Throws
 * SnapshotError(Malformed) when the authenticated plaintext is not private maps.
 */
export function decryptSnapshotMaps(
  entry: SnapshotEntry,
  secrets: LedgerSecrets,
): SnapshotMap[] | null {
  const plaintext = decryptFramed(entry.frame, secrets);
  if (plaintext === null) return null;
  return readMaps(new DomainReader(plaintext, "private", 0), entry.seqno);
}

/** Public and private maps as one list in name order (the two domains never share a name). */
export function joinSnapshotMaps(
  publicMaps: readonly SnapshotMap[],
  privateMaps: readonly SnapshotMap[],
): SnapshotMap[] {
  return [...publicMaps, ...privateMaps].sort((a, b) => compareNames(a.name, b.name));
}
