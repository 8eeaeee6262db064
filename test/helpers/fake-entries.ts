/**
 * Framing-valid ledger entries and chunk files for ledger IO tests. An entry follows CCF's
 * layout up to the seqno (header, tag, iv, public domain size, entry type, seqno, max conflict
 * version) and then carries `payloadSizeBytes` filler bytes as its public domain tables: the
 * framing layer never looks inside, so the contents need not decode (entry-format.ts does that).
 * Also: the assertion all ledger framing tests use for LedgerError.
 */
import assert from "node:assert/strict";
import {
  ENTRY_HEADER_SIZE_BYTES,
  ENTRY_SEQNO_OFFSET,
  writeEntryHeader,
} from "../../src/ledger/entry-header.js";
import {
  LedgerError,
  type LedgerErrorCode,
  CHUNK_HEADER_SIZE_BYTES,
  encodeChunkHeader,
  encodePositionsTable,
} from "../../src/ledger/chunk-format.js";
import { concatBytes } from "../../src/base/bytes.js";

/** Filler byte of payloads: not 0x01, so a parse that lands inside a payload is a bad header. */
export const PAYLOAD_FILL = 0xab;

export interface FakeEntryOptions {
  readonly seqno: number;
  readonly flags?: number;
  readonly payloadSizeBytes?: number;
}

/** Bytes from the GCM header to the end of max_conflict_version. */
const FIXED_BODY_BYTES = 16 + 12 + 8 + 1 + 8 + 8;

export function fakeEntry(options: FakeEntryOptions): Uint8Array {
  const payloadSizeBytes = options.payloadSizeBytes ?? 16;
  const sizeBytes = FIXED_BODY_BYTES + payloadSizeBytes;
  const entry = new Uint8Array(ENTRY_HEADER_SIZE_BYTES + sizeBytes);
  const view = new DataView(entry.buffer);
  writeEntryHeader(entry, 0, { flags: options.flags ?? 0, sizeBytes });
  entry.fill(0x11, 8, 24); // GCM tag
  entry.fill(0x22, 24, 36); // GCM iv
  view.setBigUint64(36, BigInt(1 + 8 + 8 + payloadSizeBytes), true); // public domain size
  entry[44] = 0; // entry type: WriteSet
  view.setBigInt64(ENTRY_SEQNO_OFFSET, BigInt(options.seqno), true);
  view.setBigInt64(ENTRY_SEQNO_OFFSET + 8, 0n, true); // max_conflict_version
  entry.fill(PAYLOAD_FILL, ENTRY_HEADER_SIZE_BYTES + FIXED_BODY_BYTES);
  return entry;
}

/** Entries firstSeqno, firstSeqno + 1, ... each with the same payload size. */
export function fakeEntries(
  firstSeqno: number,
  count: number,
  payloadSizeBytes = 16,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(fakeEntry({ seqno: firstSeqno + i, payloadSizeBytes }));
  return out;
}

/**
 * The bytes of a chunk file holding `entries`: in progress (header 0, no table) or completed
 * (positions table appended, header pointing at it).
 */
export function fakeChunk(
  entries: readonly Uint8Array[],
  options: { readonly complete: boolean },
): Uint8Array {
  const positions: number[] = [];
  let offset = CHUNK_HEADER_SIZE_BYTES;
  for (const entry of entries) {
    positions.push(offset);
    offset += entry.byteLength;
  }
  if (!options.complete) return concatBytes([encodeChunkHeader(0), ...entries]);
  return concatBytes([encodeChunkHeader(offset), ...entries, encodePositionsTable(positions)]);
}

/** Asserts that `fn` throws a LedgerError with this code, naming this file and offset. */
export function expectLedgerError(
  fn: () => unknown,
  expected: { readonly code: LedgerErrorCode; readonly file: string; readonly offset: number },
): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LedgerError, `expected a LedgerError, got ${String(err)}`);
    assert.equal(err.code, expected.code, err.message);
    assert.equal(err.file, expected.file, err.message);
    assert.equal(err.offset, expected.offset, err.message);
    const prefix = `${expected.file} at offset ${expected.offset}: `;
    assert.ok(err.message.startsWith(prefix), err.message);
    return true;
  });
}
