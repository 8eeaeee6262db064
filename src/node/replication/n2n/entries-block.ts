/**
 * The entries of one AppendEntries as one binary block (issue 16 item 3): a fixed header per
 * entry, then its configuration and payload bytes, instead of one CBOR item per entry. The
 * block follows the message's CBOR envelope in the same frame (messages.ts), so neither side
 * copies it: the sender writes it after the envelope, the receiver reads it where it lies.
 *
 * Our own format (ccf-compatibility.md §7.2). All integers little-endian:
 *
 *   block  = count:u32, entry * count
 *   entry  = seqno:u64, view:u64, flags:u8, payloadLength:u32, [configuration], payload
 *   flags  = bit 0: isSignature, bit 1: a configuration follows; the other bits are zero
 *   configuration = idCount:u16, (idLength:u16, id:UTF-8) * idCount
 *
 * Invariants:
 * - decodeEntriesBlock reads nothing outside the block and accepts only what encodeEntriesBlock
 *   writes: a u64 above Number.MAX_SAFE_INTEGER, an unknown flag, invalid UTF-8, a length past
 *   the end and trailing bytes are all "malformed" outcomes, never exceptions.
 * - Decoded payloads are views (subarray) of the block, not copies: the block must not be
 *   mutated afterwards (the frame decoder hands over a fresh buffer per frame).
 * - The count is checked against the bytes present before any entry is decoded, so a forged
 *   count cannot make the decoder allocate.
 */
import { assert } from "../../../base/assert.js";
import { fromUtf8, getU64LE, putU64LE, utf8 } from "../../../base/bytes.js";
import type { NodeId, Seqno, View } from "../../../base/ids.js";
import type { RaftEntry } from "../../../consensus/types.js";

const COUNT_BYTES = 4;
/** seqno:u64, view:u64, flags:u8, payloadLength:u32. */
const ENTRY_HEADER_BYTES = 8 + 8 + 1 + 4;
const FLAG_SIGNATURE = 1;
const FLAG_CONFIGURATION = 2;
const KNOWN_FLAGS = FLAG_SIGNATURE | FLAG_CONFIGURATION;
const U16_MAX = 0xffff;

function encodedConfiguration(ids: readonly NodeId[] | undefined): Uint8Array[] | null {
  if (ids === undefined) return null;
  // The sender chose the configuration: one that does not fit the format is a programmer error.
  assert(ids.length <= U16_MAX, `configuration of ${ids.length} node ids`);
  return ids.map((id) => {
    const bytes = utf8(id);
    assert(bytes.byteLength <= U16_MAX, `node id of ${bytes.byteLength} bytes`);
    return bytes;
  });
}

function putU64(block: Uint8Array, at: number, value: number): void {
  // Hot path: the message is built only on failure.
  if (!Number.isSafeInteger(value) || value < 0) assert(false, `${value} is not a safe u64`);
  putU64LE(block, at, value);
}

/**
 * Encodes `entries` as one block (see the module comment), after `prefix` in the same buffer
 * (a message's envelope: the block is then written once, never copied into a message).
 */
export function encodeEntriesBlock(
  entries: readonly RaftEntry[],
  prefix: Uint8Array = new Uint8Array(0),
): Uint8Array {
  let size = prefix.byteLength + COUNT_BYTES;
  const configs: (Uint8Array[] | null)[] = new Array<Uint8Array[] | null>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const config = encodedConfiguration(e.configuration);
    configs[i] = config;
    size += ENTRY_HEADER_BYTES + e.payload.byteLength;
    if (config !== null) {
      size += 2;
      for (const id of config) size += 2 + id.byteLength;
    }
  }
  const block = new Uint8Array(size);
  block.set(prefix, 0);
  const view = new DataView(block.buffer);
  view.setUint32(prefix.byteLength, entries.length, true);
  let at = prefix.byteLength + COUNT_BYTES;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const config = configs[i]!;
    putU64(block, at, e.seqno);
    putU64(block, at + 8, e.view);
    const flags = (e.isSignature ? FLAG_SIGNATURE : 0) | (config !== null ? FLAG_CONFIGURATION : 0);
    view.setUint8(at + 16, flags);
    view.setUint32(at + 17, e.payload.byteLength, true);
    at += ENTRY_HEADER_BYTES;
    if (config !== null) {
      view.setUint16(at, config.length, true);
      at += 2;
      for (const id of config) {
        view.setUint16(at, id.byteLength, true);
        block.set(id, at + 2);
        at += 2 + id.byteLength;
      }
    }
    block.set(e.payload, at);
    at += e.payload.byteLength;
  }
  return block;
}

/** A cursor over a block; every read is bounds-checked by its caller through `has`. */
class BlockReader {
  readonly block: Uint8Array;
  readonly #view: DataView;
  at = 0;

  constructor(block: Uint8Array) {
    this.block = block;
    this.#view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  }

  get remaining(): number {
    return this.block.byteLength - this.at;
  }

  has(bytes: number): boolean {
    return bytes <= this.remaining;
  }

  u8(): number {
    return this.#view.getUint8(this.at++);
  }

  u16(): number {
    const v = this.#view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }

  u32(): number {
    const v = this.#view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }

  /** A u64, or NaN when it is beyond Number.MAX_SAFE_INTEGER. */
  u64(): number {
    const v = getU64LE(this.block, this.at);
    this.at += 8;
    return v;
  }

  /** A view of the next `length` bytes (the caller checked `has(length)`). */
  bytes(length: number): Uint8Array {
    const v = this.block.subarray(this.at, this.at + length);
    this.at += length;
    return v;
  }
}

export type BlockOutcome =
  | { readonly kind: "ok"; readonly entries: RaftEntry[] }
  | { readonly kind: "malformed"; readonly reason: string };

function readConfiguration(r: BlockReader): NodeId[] | string {
  if (!r.has(2)) return "configuration past the end";
  const count = r.u16();
  if (!r.has(2 * count)) return "configuration past the end";
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) {
    if (!r.has(2)) return "node id past the end";
    const length = r.u16();
    if (!r.has(length)) return "node id past the end";
    try {
      ids.push(fromUtf8(r.bytes(length)) as NodeId);
    } catch {
      return "node id not UTF-8";
    }
  }
  return ids;
}

/** One entry, or why it does not decode. */
function readEntry(r: BlockReader): RaftEntry | string {
  if (!r.has(ENTRY_HEADER_BYTES)) return "entry header past the end";
  const seqno = r.u64();
  const view = r.u64();
  const flags = r.u8();
  const payloadLength = r.u32();
  if (Number.isNaN(seqno) || Number.isNaN(view)) return "seqno or view beyond a safe integer";
  if ((flags & ~KNOWN_FLAGS) !== 0) return `unknown entry flags ${flags}`;
  let configuration: NodeId[] | undefined;
  if ((flags & FLAG_CONFIGURATION) !== 0) {
    const read = readConfiguration(r);
    if (typeof read === "string") return read;
    configuration = read;
  }
  if (!r.has(payloadLength)) return "payload past the end";
  return {
    seqno: seqno as Seqno,
    view: view as View,
    isSignature: (flags & FLAG_SIGNATURE) !== 0,
    configuration,
    payload: r.bytes(payloadLength),
  };
}

/** Decodes a block; "malformed" for anything encodeEntriesBlock does not write. */
export function decodeEntriesBlock(block: Uint8Array): BlockOutcome {
  const r = new BlockReader(block);
  if (!r.has(COUNT_BYTES)) return { kind: "malformed", reason: "no entry count" };
  const count = r.u32();
  // Every entry takes at least its header: a count the bytes cannot hold is refused up front.
  if (count > Math.floor(r.remaining / ENTRY_HEADER_BYTES)) {
    return { kind: "malformed", reason: `${count} entries in ${r.remaining} bytes` };
  }
  const entries = new Array<RaftEntry>(count);
  for (let i = 0; i < count; i++) {
    const entry = readEntry(r);
    if (typeof entry === "string") return { kind: "malformed", reason: `entry ${i}: ${entry}` };
    entries[i] = entry;
  }
  if (r.remaining !== 0) return { kind: "malformed", reason: `${r.remaining} trailing bytes` };
  return { kind: "ok", entries };
}
