/**
 * The 8-byte header that frames every ledger entry, and the entry's seqno field, as CCF lays
 * them out (ccf-compatibility.md §6.3; CCF `LedgerEntryHeader` in
 * src/kv/serialised_entry_format.h):
 *
 *   u8 version (= 1) | u8 flags | u48 LE size      // size = number of bytes after these 8
 *   tag[16] | iv[12] | u64 LE public_domain_size | u8 entry_type | i64 LE version (= seqno) | ...
 *
 * So the seqno of an entry is the i64 LE at byte 45 (8 + 28 + 8 + 1). This module owns only the
 * framing: the entry contents (GCM, domains, encryption) belong to entry-format.ts.
 *
 * Pure: no IO. Hot path (every append and every read), so no allocation: fields are read byte
 * by byte rather than through a DataView.
 */

export const ENTRY_HEADER_SIZE_BYTES = 8;
/** The only header version CCF writes (and the only one we accept). */
export const ENTRY_FORMAT_VERSION = 1;

/** The chunk containing this entry is completed right after it. */
export const FORCE_LEDGER_CHUNK_AFTER = 0x01;
/** A new chunk starts with this entry (the current one is completed before it). */
export const FORCE_LEDGER_CHUNK_BEFORE = 0x02;
/** Flags we understand. An unknown bit is treated as corruption rather than silently ignored. */
export const KNOWN_ENTRY_FLAGS = FORCE_LEDGER_CHUNK_AFTER | FORCE_LEDGER_CHUNK_BEFORE;

/** Offset of the i64 seqno in an entry: header 8 + tag 16 + iv 12 + u64 pd size 8 + type 1. */
export const ENTRY_SEQNO_OFFSET = 45;
/**
 * Smallest `size` (bytes after the header) that still holds the GCM header, the public domain
 * size, the entry type and the seqno. Anything smaller cannot be an entry.
 */
export const ENTRY_SIZE_MIN_BYTES = ENTRY_SEQNO_OFFSET + 8 - ENTRY_HEADER_SIZE_BYTES;
/** The size field is 48 bits wide. */
export const ENTRY_SIZE_MAX_BYTES = 2 ** 48 - 1;

const TWO_POW_32 = 0x1_0000_0000;

export interface EntryHeader {
  readonly version: number;
  readonly flags: number;
  /** Bytes after the 8-byte header. Invariant: in [ENTRY_SIZE_MIN_BYTES, ENTRY_SIZE_MAX_BYTES]. */
  readonly sizeBytes: number;
}

/**
 * Reading a header at some offset. `truncated` means the bytes available are a plausible prefix
 * of a header (version and flags, when present, are valid) but fewer than 8: the signature of a
 * torn write. Anything implausible is reported as such even when short.
 */
export type EntryHeaderRead =
  | ({ kind: "header" } & EntryHeader)
  | { kind: "truncated"; bytesAvailable: number }
  | { kind: "bad-version"; version: number }
  | { kind: "bad-flags"; flags: number }
  | { kind: "bad-size"; sizeBytes: number };

/** Reads the entry header at `offset`; `bytes` ends where the readable region ends. */
export function readEntryHeader(bytes: Uint8Array, offset: number): EntryHeaderRead {
  const available = bytes.byteLength - offset;
  if (available <= 0) return { kind: "truncated", bytesAvailable: 0 };
  const version = bytes[offset]!;
  if (version !== ENTRY_FORMAT_VERSION) return { kind: "bad-version", version };
  if (available < 2) return { kind: "truncated", bytesAvailable: available };
  const flags = bytes[offset + 1]!;
  if ((flags & ~KNOWN_ENTRY_FLAGS) !== 0) return { kind: "bad-flags", flags };
  if (available < ENTRY_HEADER_SIZE_BYTES) return { kind: "truncated", bytesAvailable: available };
  const low = readU32(bytes, offset + 2);
  const high = bytes[offset + 6]! | (bytes[offset + 7]! << 8);
  const sizeBytes = high * TWO_POW_32 + low;
  if (sizeBytes < ENTRY_SIZE_MIN_BYTES) return { kind: "bad-size", sizeBytes };
  return { kind: "header", version, flags, sizeBytes };
}

/** Writes a version-1 header at `offset` of `target`. */
export function writeEntryHeader(
  target: Uint8Array,
  offset: number,
  header: { readonly flags: number; readonly sizeBytes: number },
): void {
  const { flags, sizeBytes } = header;
  if (!Number.isInteger(flags) || (flags & ~KNOWN_ENTRY_FLAGS) !== 0 || flags > 0xff) {
    throw new RangeError(`entry header: unknown flags ${flags}`);
  }
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < ENTRY_SIZE_MIN_BYTES) {
    throw new RangeError(`entry header: size ${sizeBytes} below ${ENTRY_SIZE_MIN_BYTES}`);
  }
  if (sizeBytes > ENTRY_SIZE_MAX_BYTES) {
    throw new RangeError(`entry header: size ${sizeBytes} does not fit in 48 bits`);
  }
  if (target.byteLength - offset < ENTRY_HEADER_SIZE_BYTES) {
    throw new RangeError("entry header: target too small");
  }
  const low = sizeBytes % TWO_POW_32;
  const high = Math.floor(sizeBytes / TWO_POW_32);
  target[offset] = ENTRY_FORMAT_VERSION;
  target[offset + 1] = flags;
  target[offset + 2] = low & 0xff;
  target[offset + 3] = (low >>> 8) & 0xff;
  target[offset + 4] = (low >>> 16) & 0xff;
  target[offset + 5] = (low >>> 24) & 0xff;
  target[offset + 6] = high & 0xff;
  target[offset + 7] = (high >>> 8) & 0xff;
}

/** The flags byte of a framed entry (no validation; callers have read the header). */
export function entryFlags(entry: Uint8Array): number {
  return entry[1] ?? 0;
}

/**
 * The seqno an entry carries in its public domain (i64 LE at byte 45), or null when the entry
 * is too short or the value is negative or beyond 2^53 (no valid seqno is).
 */
export function entrySeqno(entry: Uint8Array): number | null {
  return entrySeqnoAt(entry, 0, entry.byteLength);
}

/** entrySeqno of the entry of `length` bytes at `bytes[offset..]`, read in place. */
export function entrySeqnoAt(bytes: Uint8Array, offset: number, length: number): number | null {
  if (length < ENTRY_SEQNO_OFFSET + 8) return null;
  const low = readU32(bytes, offset + ENTRY_SEQNO_OFFSET);
  const high = readU32(bytes, offset + ENTRY_SEQNO_OFFSET + 4);
  // Seqnos are safe integers: high word below 2^21 (this also rejects negative i64 values).
  if (high >= 0x20_0000) return null;
  return high * TWO_POW_32 + low;
}

/** u32 LE at `at`; the caller has checked the bounds. */
function readU32(bytes: Uint8Array, at: number): number {
  const low16 = bytes[at]! | (bytes[at + 1]! << 8);
  return (low16 | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}
