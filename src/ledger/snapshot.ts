/**
 * Snapshot files (ccf-compatibility.md §6.6): the whole store at a signature seqno, so a node can
 * start there instead of replaying the ledger from seqno 1 (issue #5).
 *
 * A snapshot file holds one snapshot entry in CCF's layout (snapshot-format.ts): the hash at
 * snapshot and the view history, then every map written so far with its live keys and their
 * seqnos, public maps in clear and private maps AES-256-GCM encrypted with the ledger secret in
 * force at its seqno. The Merkle tree's state at that seqno travels in the public map
 * `public:ccf.internal.tree`, as in CCF (its value is opaque here). Once the snapshot's evidence
 * (`public:ccf.internal.snapshot_evidence`: its SHA-256 and seqno) is committed, the JSON receipt
 * of the evidence transaction is appended to the file as UTF-8, and the file is renamed
 * `snapshot_<seqno>_<evidence seqno>.committed`.
 *
 * Pure: encoding, decoding and naming; writing and renaming files is the node's.
 * Invariants: the snapshot bytes (before the receipt) are canonical, so the same store at the
 * same seqno gives the same bytes (and digest) on every node, whether encoded on the node thread
 * (encodeSnapshot) or from packed state on a worker (encodePackedSnapshot).
 */
import { isTextDecodeError } from "../base/errors.js";
import { fromUtf8, getU32LE, getU64LE, putU32LE, putU64LE } from "../base/bytes.js";
import type { Seqno, View } from "../base/ids.js";
import { sha256 } from "../crypto/hash.js";
import type { SnapshotKey, SnapshotMap } from "../kv/snapshot-state.js";
import { compareNames, type MapWrites } from "../kv/write-set.js";
import { SERVICE_TABLES } from "../kv/service-tables.js";
import { ENTRY_HEADER_SIZE_BYTES, readEntryHeader } from "./entry-header.js";
import type { LedgerSecrets } from "./ledger-secrets.js";
import {
  decodeSnapshotEntry,
  decryptSnapshotMaps,
  encodeSnapshotEntry,
  joinSnapshotMaps,
  SnapshotError,
  SnapshotErrorCode,
  type SnapshotContents,
  type SnapshotHeader,
} from "./snapshot-format.js";

export interface DecodedSnapshot extends SnapshotContents {
  /** The view of the transaction at the snapshot's seqno (from its view history). */
  readonly view: View;
  /** The snapshot entry's bytes (what the evidence hashes), without any receipt. */
  readonly entryBytes: Uint8Array;
  /** The receipt appended once the evidence committed, parsed; null before. */
  readonly receipt: unknown;
}

/** Serialises and encrypts a snapshot of `contents` (canonical bytes). */
export function encodeSnapshot(contents: SnapshotContents, secrets: LedgerSecrets): Uint8Array {
  return encodeSnapshotEntry(contents, secrets);
}

// ---- Off-thread encoding ------------------------------------------------------------------

/** A map as the node thread captures it: its live keys in no particular order. */
export interface CapturedMap {
  readonly name: string;
  readonly seqno: Seqno;
  readonly keys: Iterable<SnapshotKey>;
}

const U32 = 4;
const U64 = 8;

/**
 * A snapshot's state packed into one buffer on the node thread, unsorted, so that sorting,
 * serialising and encrypting (encodePackedSnapshot) can happen on another thread:
 * u32 LE map count, then per map u32 name length, name (UTF-8), u64 LE map seqno, u32 key count,
 * and per key u32 key length, key, u32 value length, value, u64 LE key seqno. Keys are consumed
 * at once: the store may change after this returns.
 */
export function packSnapshotState(maps: readonly CapturedMap[]): Uint8Array {
  const encoder = new TextEncoder();
  const names = maps.map((m) => encoder.encode(m.name));
  const keyLists = maps.map((m) => [...m.keys]);
  let total = U32;
  keyLists.forEach((keys, m) => {
    total += U32 + names[m]!.byteLength + U64 + U32;
    for (const k of keys) total += 2 * U32 + k.key.byteLength + k.value.byteLength + U64;
  });
  const out = new Uint8Array(total);
  putU32LE(out, 0, maps.length);
  let at = U32;
  const put = (bytes: Uint8Array) => {
    putU32LE(out, at, bytes.byteLength);
    out.set(bytes, at + U32);
    at += U32 + bytes.byteLength;
  };
  keyLists.forEach((keys, m) => {
    put(names[m]!);
    putU64LE(out, at, maps[m]!.seqno);
    putU32LE(out, at + U64, keys.length);
    at += U64 + U32;
    for (const k of keys) {
      put(k.key);
      put(k.value);
      putU64LE(out, at, k.seqno);
      at += U64;
    }
  });
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.byteLength - b.byteLength;
}

/** The maps of packed state (packSnapshotState), in canonical order: names, then key bytes. */
function unpackSnapshotState(packed: Uint8Array): SnapshotMap[] {
  let offset = U32;
  const take = () => {
    const length = getU32LE(packed, offset);
    const bytes = packed.subarray(offset + U32, offset + U32 + length);
    offset += U32 + length;
    return bytes;
  };
  const maps: SnapshotMap[] = [];
  const mapCount = getU32LE(packed, 0);
  for (let m = 0; m < mapCount; m++) {
    const name = fromUtf8(take());
    const seqno = getU64LE(packed, offset) as Seqno;
    const count = getU32LE(packed, offset + U64);
    offset += U64 + U32;
    const keys: SnapshotKey[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const key = take();
      const value = take();
      keys[i] = { key, value, seqno: getU64LE(packed, offset) as Seqno };
      offset += U64;
    }
    keys.sort((a, b) => compareBytes(a.key, b.key));
    maps.push({ name, seqno, keys });
  }
  return maps.sort((a, b) => compareNames(a.name, b.name));
}

/**
 * The snapshot entry of packed state (packSnapshotState) at `header`: maps by name and keys by
 * bytes in canonical order, then encodeSnapshot. The same bytes as encodeSnapshot of the sorted
 * state.
 */
export function encodePackedSnapshot(
  packed: Uint8Array,
  header: SnapshotHeader,
  secrets: LedgerSecrets,
): Uint8Array {
  return encodeSnapshot({ ...header, maps: unpackSnapshotState(packed) }, secrets);
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
 * Parses a snapshot file's bytes: the snapshot entry, its private maps decrypted with `secrets`,
 * and the receipt appended after it, if any. Throws SnapshotError (UnsupportedFormat for a
 * snapshot of Consortia's earlier layout).
 */
export function decodeSnapshot(bytes: Uint8Array, secrets: LedgerSecrets): DecodedSnapshot {
  const split = splitSnapshotFile(bytes);
  if (split === null) {
    fail(SnapshotErrorCode.Malformed, `${bytes.byteLength} bytes cannot hold the entry`);
  }
  const entry = decodeSnapshotEntry(split.entry);
  const privateMaps = decryptSnapshotMaps(entry, secrets);
  if (privateMaps === null) {
    fail(SnapshotErrorCode.Tampered, `seqno ${entry.seqno} does not authenticate`);
  }
  let receipt: unknown = null;
  if (split.receipt.byteLength > 0) {
    try {
      receipt = JSON.parse(fromUtf8(split.receipt));
    } catch (e) {
      if (!isTextDecodeError(e)) throw e;
      fail(SnapshotErrorCode.BadReceipt, `trailing bytes are not a JSON receipt (${String(e)})`);
    }
  }
  return {
    seqno: entry.seqno,
    view: entry.view,
    hashAtSnapshot: entry.hashAtSnapshot,
    viewHistory: entry.viewHistory,
    maps: joinSnapshotMaps(entry.publicMaps, privateMaps),
    entryBytes: split.entry,
    receipt,
  };
}

/** The value of the Merkle tree's map in a snapshot's maps (opaque here), or null. */
export function snapshotTreeValue(maps: readonly SnapshotMap[]): Uint8Array | null {
  return maps.find((m) => m.name === SERVICE_TABLES.tree)?.keys[0]?.value ?? null;
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
