/**
 * Snapshot files (ccf-compatibility.md §6.6): the whole store at a signature seqno, so a node can
 * start there instead of replaying the ledger from seqno 1 (issue #5).
 *
 * A snapshot is one entry of type Snapshot (entry-format.ts: type 1, the snapshot bit in the
 * IV's view word, zero commit evidence and claims digests) whose maps hold every live key of
 * every map as a write, public maps in clear and private maps AES-256-GCM encrypted with the
 * ledger secret in force at its seqno. The Merkle tree's state at that seqno travels in the
 * public map `public:ccf.internal.tree`, as in CCF. Once the snapshot's evidence
 * (`public:ccf.internal.snapshot_evidence`: its SHA-256 and seqno) is committed, the JSON
 * receipt of the evidence transaction is appended to the file as UTF-8, and the file is renamed
 * `snapshot_<seqno>_<evidence seqno>.committed`.
 *
 * Pure: encoding, decoding and naming; writing and renaming files is the node's.
 * Invariants: the snapshot bytes (before the receipt) are canonical, so the same store at the
 * same seqno gives the same bytes (and digest) on every node.
 */
import { CcfError, isTextDecodeError } from "../base/errors.js";
import { fromUtf8 } from "../base/bytes.js";
import type { Seqno, View } from "../base/ids.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import { encodeMaps, layoutMaps, writeMaps } from "../kv/codec.js";
import { SERVICE_TABLES } from "../kv/service-tables.js";
import { compareNames, splitDomains, type MapWrites, type WriteSet } from "../kv/write-set.js";
import { ENTRY_HEADER_SIZE_BYTES, readEntryHeader } from "./entry-header.js";
import { decodeEntry, decodeWriteSet, EntryError, sealEntry } from "./entry-format.js";
import type { LedgerSecrets } from "./ledger-secrets.js";

export enum SnapshotErrorCode {
  /** Not a snapshot entry (truncated, wrong type, bad framing). */
  Malformed = "Malformed",
  /** The private domain does not authenticate: altered bytes or the wrong ledger secret. */
  Tampered = "Tampered",
  /** The bytes after the entry are not a UTF-8 JSON receipt. */
  BadReceipt = "BadReceipt",
}
export type SnapshotErrorType = { code: SnapshotErrorCode };
export class SnapshotError extends CcfError<SnapshotErrorType> {}

export interface SnapshotContents {
  readonly seqno: Seqno;
  readonly view: View;
  /** Every map's live keys as writes, maps and keys in canonical order. */
  readonly writeSet: WriteSet;
}

export interface DecodedSnapshot extends SnapshotContents {
  /** The snapshot entry's bytes (what the evidence hashes), without any receipt. */
  readonly entryBytes: Uint8Array;
  /** The receipt appended once the evidence committed, parsed; null before. */
  readonly receipt: unknown;
}

/** Serialises and encrypts a snapshot of `contents` (canonical bytes). */
export function encodeSnapshot(contents: SnapshotContents, secrets: LedgerSecrets): Uint8Array {
  const { publicMaps, privateMaps } = splitDomains(contents.writeSet);
  const layout = layoutMaps(privateMaps);
  const privateTables = new Uint8Array(layout.sizeBytes);
  writeMaps(layout, privateTables, 0);
  return sealEntry(
    {
      txId: { view: contents.view, seqno: contents.seqno },
      publicTables: encodeMaps(publicMaps),
      privateTables,
      commitEvidenceDigest: new Uint8Array(SHA256_BYTES),
      kind: "snapshot",
    },
    secrets,
  );
}

// ---- Off-thread encoding ------------------------------------------------------------------

/**
 * A snapshot's state packed into one buffer on the node thread, unsorted, so that sorting,
 * serialising and encrypting (encodePackedSnapshot) can happen on another thread:
 * u32 LE map count, then per map u32 name length, name (UTF-8), u32 entry count, and per entry
 * u32 key length, key, u32 value length, value.
 */
export function packSnapshotState(
  maps: readonly { name: string; entries: Iterable<[Uint8Array, Uint8Array]> }[],
): Uint8Array {
  const encoder = new TextEncoder();
  const parts: Uint8Array[] = [];
  let total = 4;
  const lengths: number[] = [];
  for (const map of maps) {
    const name = encoder.encode(map.name);
    const start = parts.length;
    parts.push(name);
    let count = 0;
    for (const [key, value] of map.entries) {
      parts.push(key, value);
      total += 8 + key.byteLength + value.byteLength;
      count++;
    }
    lengths.push(start, count);
    total += 8 + name.byteLength;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, maps.length, true);
  let at = 4;
  const put = (bytes: Uint8Array) => {
    view.setUint32(at, bytes.byteLength, true);
    out.set(bytes, at + 4);
    at += 4 + bytes.byteLength;
  };
  for (let m = 0; m < maps.length; m++) {
    const start = lengths[2 * m]!;
    const count = lengths[2 * m + 1]!;
    put(parts[start]!);
    view.setUint32(at, count, true);
    at += 4;
    for (let i = 0; i < 2 * count; i++) put(parts[start + 1 + i]!);
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.byteLength - b.byteLength;
}

/**
 * The snapshot entry of packed state (packSnapshotState): maps by name and keys by bytes in
 * canonical order, then encodeSnapshot. The same bytes as encodeSnapshot of the sorted state.
 */
export function encodePackedSnapshot(
  packed: Uint8Array,
  at: { seqno: Seqno; view: View },
  secrets: LedgerSecrets,
): Uint8Array {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  let offset = 4;
  const take = () => {
    const length = view.getUint32(offset, true);
    const bytes = packed.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return bytes;
  };
  const maps: { name: string; writes: { key: Uint8Array; value: Uint8Array }[] }[] = [];
  const mapCount = view.getUint32(0, true);
  for (let m = 0; m < mapCount; m++) {
    const name = fromUtf8(take());
    const count = view.getUint32(offset, true);
    offset += 4;
    const writes: { key: Uint8Array; value: Uint8Array }[] = new Array(count);
    for (let i = 0; i < count; i++) writes[i] = { key: take(), value: take() };
    writes.sort((a, b) => compareBytes(a.key, b.key));
    if (count > 0) maps.push({ name, writes });
  }
  maps.sort((a, b) => compareNames(a.name, b.name));
  return encodeSnapshot({ seqno: at.seqno, view: at.view, writeSet: { maps } }, secrets);
}

/** The evidence record of the snapshot at `seqno` (SERVICE_TABLES.snapshotEvidence). */
export function encodeSnapshotEvidence(hash: string, seqno: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ hash, version: seqno }));
}

/**
 * Whether a transaction's writes record the evidence of the snapshot at `seqno` whose digest is
 * `hash` (hex); false for no evidence, another snapshot's, or a malformed record.
 */
export function recordsSnapshotEvidence(
  maps: readonly MapWrites[],
  hash: string,
  seqno: number,
): boolean {
  const value = maps.find((m) => m.name === SERVICE_TABLES.snapshotEvidence)?.writes[0]?.value;
  if (value == null) return false;
  try {
    const evidence = JSON.parse(fromUtf8(value)) as { hash?: unknown; version?: unknown };
    return evidence.hash === hash && evidence.version === seqno;
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return false;
  }
}

/** The digest recorded as the snapshot's evidence: SHA-256 of the snapshot entry bytes. */
export function snapshotDigest(entryBytes: Uint8Array): Uint8Array {
  return sha256(entryBytes);
}

function fail(code: SnapshotErrorCode, message: string): never {
  throw new SnapshotError({ code }, `snapshot: ${message}`);
}

/** Length of the entry at the start of `bytes` (from its header), or null if too short. */
function entryLength(bytes: Uint8Array): number | null {
  const header = readEntryHeader(bytes, 0);
  return header.kind === "header" ? ENTRY_HEADER_SIZE_BYTES + header.sizeBytes : null;
}

/** A snapshot file's entry and the receipt bytes after it (empty before commit), or null. */
export function splitSnapshotFile(
  bytes: Uint8Array,
): { entry: Uint8Array; receipt: Uint8Array } | null {
  const length = entryLength(bytes);
  if (length === null || length > bytes.byteLength) return null;
  return { entry: bytes.subarray(0, length), receipt: bytes.subarray(length) };
}

/**
 * Parses a snapshot file's bytes: the snapshot entry, decrypted with `secrets`, and the receipt
 * appended after it, if any. Throws SnapshotError.
 */
export function decodeSnapshot(bytes: Uint8Array, secrets: LedgerSecrets): DecodedSnapshot {
  const length = entryLength(bytes);
  if (length === null || length > bytes.byteLength) {
    fail(SnapshotErrorCode.Malformed, `${bytes.byteLength} bytes cannot hold the entry`);
  }
  const entryBytes = bytes.subarray(0, length);
  let entry;
  try {
    entry = decodeEntry(entryBytes, "snapshot");
  } catch (e) {
    if (e instanceof EntryError || e instanceof CcfError) {
      fail(SnapshotErrorCode.Malformed, e.message);
    }
    throw e;
  }
  const writeSet = decodeWriteSet(entry, secrets);
  if (writeSet === null) {
    fail(SnapshotErrorCode.Tampered, `seqno ${entry.seqno} does not authenticate`);
  }
  const tail = bytes.subarray(length);
  let receipt: unknown = null;
  if (tail.byteLength > 0) {
    try {
      receipt = JSON.parse(fromUtf8(tail));
    } catch (e) {
      if (!isTextDecodeError(e)) throw e;
      fail(SnapshotErrorCode.BadReceipt, `trailing bytes are not a JSON receipt (${String(e)})`);
    }
  }
  return { seqno: entry.seqno, view: entry.view, writeSet, entryBytes, receipt };
}

// ---- File names ---------------------------------------------------------------------------

export interface SnapshotFileName {
  readonly seqno: Seqno;
  readonly evidenceSeqno: Seqno;
  readonly committed: boolean;
}

const NAME_RE = /^snapshot_(\d{1,15})_(\d{1,15})(\.committed)?$/;

export function snapshotFileName(name: SnapshotFileName): string {
  const base = `snapshot_${name.seqno}_${name.evidenceSeqno}`;
  return name.committed ? `${base}.committed` : base;
}

/** Parses `snapshot_<seqno>_<evidence seqno>[.committed]`; null for any other name. */
export function parseSnapshotFileName(name: string): SnapshotFileName | null {
  const m = NAME_RE.exec(name);
  if (m === null) return null;
  const seqno = Number(m[1]);
  const evidenceSeqno = Number(m[2]);
  if (!(seqno >= 1 && evidenceSeqno > seqno)) return null;
  return {
    seqno: seqno as Seqno,
    evidenceSeqno: evidenceSeqno as Seqno,
    committed: m[3] !== undefined,
  };
}
