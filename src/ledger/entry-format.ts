/**
 * Ledger entry layout, as CCF lays it out (ccf-compatibility.md §6.1, §6.3):
 *
 *   u8 version (=1) | u8 flags | u48 LE size     size = bytes after these 8
 *   GCM header: tag[16] | iv[12]                 iv = u64 LE seqno | u32 LE view (low 31 bits;
 *                                                the top bit marks a snapshot, so a snapshot at
 *                                                seqno s never shares the IV of transaction s)
 *   u64 LE public_domain_size
 *   public domain (clear, and the AAD of the private domain):
 *     u8 entry_type (4: write set with commit evidence and claims; 1: snapshot)
 *     i64 LE seqno | claims_digest[32] | commit_evidence_digest[32]   (the digests: type 4 only)
 *     i64 LE max_conflict_version (0)
 *     type 4: public maps (codec.ts); type 1: the snapshot's header and maps (snapshot-format.ts)
 *   private domain: AES-256-GCM ciphertext of the private maps (may be empty; the tag still
 *   authenticates the public domain)
 *
 * This module owns write-set entries whole, and for snapshots only the framing and encryption.
 * Pure: no IO. The IV is unique per (seqno, view) under one ledger secret, so never repeats; a
 * snapshot's IV has view 0 and the snapshot bit, as CCF writes it (one snapshot per seqno).
 */
import { CcfError } from "../base/errors.js";
import { assert } from "../base/assert.js";
import { getU32LE, getU64LE, putU32LE, putU64LE } from "../base/bytes.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES, gcmDecrypt, gcmEncrypt } from "../crypto/aead.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import { decodeMaps, encodeMaps, layoutMaps, writeMaps, type MapsLayout } from "../kv/codec.js";
import { joinDomains, splitDomains, type MapWrites, type WriteSet } from "../kv/write-set.js";
import type { LedgerSecrets } from "./ledger-secrets.js";
import {
  ENTRY_FORMAT_VERSION,
  ENTRY_HEADER_SIZE_BYTES as ENTRY_HEADER_BYTES,
  ENTRY_SIZE_MAX_BYTES,
} from "./entry-header.js";

export const GCM_HEADER_BYTES = GCM_TAG_BYTES + GCM_IV_BYTES;
/** Entry type 4: WriteSetWithCommitEvidenceAndClaims, CCF's current default. */
export const ENTRY_TYPE_WRITE_SET = 4;
/** Entry type 1: Snapshot, the whole store at a seqno (snapshot files only, never a ledger). */
export const ENTRY_TYPE_SNAPSHOT = 1;
/** The IV's view word carries this bit in snapshots (CCF's snapshot IV bit). */
const SNAPSHOT_IV_BIT = 0x8000_0000;

/** What an entry holds: one transaction's write set, or a whole-store snapshot. */
export type EntryKind = "write-set" | "snapshot";
/** u8 type | i64 seqno | claims[32] | commit evidence digest[32] | i64 max_conflict_version. */
const PUBLIC_HEADER_BYTES = 1 + 8 + SHA256_BYTES + SHA256_BYTES + 8;
/** u8 type | i64 seqno | i64 max_conflict_version: a snapshot has no digests. */
const SNAPSHOT_PUBLIC_HEADER_BYTES = 1 + 8 + 8;
const PUBLIC_DOMAIN_OFFSET = ENTRY_HEADER_BYTES + GCM_HEADER_BYTES + 8;
/** Offset of a snapshot's public body (its header and maps: snapshot-format.ts) in the entry. */
export const SNAPSHOT_BODY_OFFSET = PUBLIC_DOMAIN_OFFSET + SNAPSHOT_PUBLIC_HEADER_BYTES;
const VIEW_MASK = 0x7fff_ffff;
const ZERO_DIGEST = new Uint8Array(SHA256_BYTES);

export enum EntryErrorCode {
  Truncated = "Truncated",
  UnsupportedVersion = "UnsupportedVersion",
  SizeMismatch = "SizeMismatch",
  UnsupportedEntryType = "UnsupportedEntryType",
  MalformedPublicDomain = "MalformedPublicDomain",
}
export type EntryErrorType = { code: EntryErrorCode; offset: number };
export class EntryError extends CcfError<EntryErrorType> {}

export interface EncodeEntryInput {
  readonly txId: TxId;
  readonly writeSet: WriteSet;
  readonly commitEvidenceDigest: Uint8Array;
  readonly claimsDigest?: Uint8Array | undefined;
  readonly flags?: number | undefined;
}

/** A decoded entry. Byte fields are views into the entry bytes. */
export interface LedgerEntry {
  readonly flags: number;
  readonly seqno: Seqno;
  readonly view: View;
  readonly claimsDigest: Uint8Array;
  readonly commitEvidenceDigest: Uint8Array;
  readonly publicMaps: readonly MapWrites[];
  /** Authenticated data of the private domain: the whole serialised public domain. */
  readonly publicDomain: Uint8Array;
  readonly tag: Uint8Array;
  readonly iv: Uint8Array;
  readonly privateCiphertext: Uint8Array;
}

export function entryIv(txId: TxId, kind: EntryKind = "write-set"): Uint8Array {
  const iv = new Uint8Array(GCM_IV_BYTES);
  putU64LE(iv, 0, txId.seqno);
  putU32LE(iv, 8, ((txId.view & VIEW_MASK) | (kind === "snapshot" ? SNAPSHOT_IV_BIT : 0)) >>> 0);
  return iv;
}

/** Scratch for private-domain plaintext: reused across entries, grown when needed. */
let plaintextScratch = new Uint8Array(64 * 1024);

function privatePlaintext(layout: MapsLayout): Uint8Array {
  if (plaintextScratch.byteLength < layout.sizeBytes) {
    plaintextScratch = new Uint8Array(Math.max(layout.sizeBytes, 2 * plaintextScratch.byteLength));
  }
  writeMaps(layout, plaintextScratch, 0);
  return plaintextScratch.subarray(0, layout.sizeBytes);
}

/** Serialises and encrypts one transaction into ledger entry bytes. */
export function encodeEntry(input: EncodeEntryInput, secrets: LedgerSecrets): Uint8Array {
  const { publicMaps, privateMaps } = splitDomains(input.writeSet);
  return sealEntry(
    {
      txId: input.txId,
      publicTables: encodeMaps(publicMaps),
      privateTables: privatePlaintext(layoutMaps(privateMaps)),
      commitEvidenceDigest: input.commitEvidenceDigest,
      claimsDigest: input.claimsDigest,
      flags: input.flags,
    },
    secrets,
  );
}

/** A transaction whose domains are already encoded (codec.ts), ready to be sealed. */
export interface SealEntryInput {
  readonly txId: TxId;
  readonly publicTables: Uint8Array;
  /** Plaintext of the private domain; not retained. */
  readonly privateTables: Uint8Array;
  readonly commitEvidenceDigest: Uint8Array;
  readonly claimsDigest?: Uint8Array | undefined;
  readonly flags?: number | undefined;
}

/** Size in bytes of the entry sealing domains of these sizes. */
export function sealedEntrySize(publicTablesBytes: number, privateTablesBytes: number): number {
  return PUBLIC_DOMAIN_OFFSET + PUBLIC_HEADER_BYTES + publicTablesBytes + privateTablesBytes;
}

/** Lays out the entry and encrypts its private domain (one allocation: the entry). */
export function sealEntry(input: SealEntryInput, secrets: LedgerSecrets): Uint8Array {
  const out = new Uint8Array(
    sealedEntrySize(input.publicTables.byteLength, input.privateTables.byteLength),
  );
  sealEntryInto(input, secrets, out);
  return out;
}

/** Seals into `out`, which must be exactly sealedEntrySize(...) zeroed bytes. */
export function sealEntryInto(
  input: SealEntryInput,
  secrets: LedgerSecrets,
  out: Uint8Array,
): void {
  const { txId } = input;
  assert(
    input.commitEvidenceDigest.byteLength === SHA256_BYTES,
    "commit evidence digest is 32 bytes",
  );
  const claims = input.claimsDigest ?? ZERO_DIGEST;
  assert(claims.byteLength === SHA256_BYTES, "claims digest is 32 bytes");
  const publicSize = PUBLIC_HEADER_BYTES + input.publicTables.byteLength;
  writeFrame(out, { txId, kind: "write-set", flags: input.flags ?? 0, publicSize });
  const p = PUBLIC_DOMAIN_OFFSET;
  out[p] = ENTRY_TYPE_WRITE_SET;
  putU64LE(out, p + 1, txId.seqno);
  out.set(claims, p + 9);
  out.set(input.commitEvidenceDigest, p + 9 + SHA256_BYTES);
  // max_conflict_version (8 bytes) stays 0.
  out.set(input.publicTables, p + PUBLIC_HEADER_BYTES);
  encryptInto(out, txId.seqno, publicSize, input.privateTables, secrets);
}

/** Size in bytes of a snapshot entry whose public body and private plaintext have these sizes. */
export function snapshotEntrySize(publicBodyBytes: number, privatePlaintextBytes: number): number {
  return SNAPSHOT_BODY_OFFSET + publicBodyBytes + privatePlaintextBytes;
}

/**
 * Seals a snapshot entry in `out` (snapshotEntrySize(...) zeroed bytes) whose public body
 * (snapshot-format.ts) the caller already wrote at SNAPSHOT_BODY_OFFSET: writes the framing and
 * the public header (type 1, seqno, max_conflict_version 0, no digests) and encrypts
 * `privatePlaintext` after the body under the ledger secret in force at `seqno`, with IV view 0
 * and the snapshot bit, as CCF does.
 */
export function sealSnapshotInto(
  input: { seqno: Seqno; publicBodyBytes: number; privatePlaintext: Uint8Array },
  secrets: LedgerSecrets,
  out: Uint8Array,
): void {
  const publicSize = SNAPSHOT_PUBLIC_HEADER_BYTES + input.publicBodyBytes;
  const txId = { view: 0 as View, seqno: input.seqno };
  writeFrame(out, { txId, kind: "snapshot", flags: 0, publicSize });
  out[PUBLIC_DOMAIN_OFFSET] = ENTRY_TYPE_SNAPSHOT;
  putU64LE(out, PUBLIC_DOMAIN_OFFSET + 1, input.seqno);
  // max_conflict_version (8 bytes) stays 0.
  encryptInto(out, input.seqno, publicSize, input.privatePlaintext, secrets);
}

/** The entry header, IV and public domain size; `out` must have the entry's exact size. */
function writeFrame(
  out: Uint8Array,
  frame: { txId: TxId; kind: EntryKind; flags: number; publicSize: number },
): void {
  const { txId, publicSize } = frame;
  const size = out.byteLength - ENTRY_HEADER_BYTES;
  assert(size <= ENTRY_SIZE_MAX_BYTES, "entry too large for a u48 size");
  assert(PUBLIC_DOMAIN_OFFSET + publicSize <= out.byteLength, "the public domain fits the entry");
  out[0] = ENTRY_FORMAT_VERSION;
  out[1] = frame.flags;
  putU64LE(out, 2, size); // u48: the top two bytes of the u64 land in the tag, written last
  const ivOffset = ENTRY_HEADER_BYTES + GCM_TAG_BYTES;
  const snapshotBit = frame.kind === "snapshot" ? SNAPSHOT_IV_BIT : 0;
  putU64LE(out, ivOffset, txId.seqno);
  // u32 view word (its zero top half is overwritten next), with the snapshot bit if any.
  putU64LE(out, ivOffset + 8, ((txId.view & VIEW_MASK) | snapshotBit) >>> 0);
  putU64LE(out, ENTRY_HEADER_BYTES + GCM_HEADER_BYTES, publicSize);
}

/** Encrypts `plaintext` after the public domain (the AAD), and writes the tag. */
function encryptInto(
  out: Uint8Array,
  seqno: Seqno,
  publicSize: number,
  plaintext: Uint8Array,
  secrets: LedgerSecrets,
): void {
  const publicEnd = PUBLIC_DOMAIN_OFFSET + publicSize;
  assert(publicEnd + plaintext.byteLength === out.byteLength, "target has the entry's size");
  const ivOffset = ENTRY_HEADER_BYTES + GCM_TAG_BYTES;
  const iv = out.subarray(ivOffset, ivOffset + GCM_IV_BYTES);
  const key = secrets.secretFor(seqno).gcmKey;
  const sealed = gcmEncrypt(key, iv, plaintext, out.subarray(PUBLIC_DOMAIN_OFFSET, publicEnd));
  out.set(sealed.ciphertext, publicEnd);
  out.set(sealed.tag, ENTRY_HEADER_BYTES);
}

function fail(code: EntryErrorCode, offset: number, what: string): never {
  throw new EntryError({ code, offset }, `ledger entry: ${what} (at entry offset ${offset})`);
}

/** Parses a write-set entry (one whole entry). Throws EntryError or CodecError when malformed. */
export function decodeEntry(bytes: Uint8Array): LedgerEntry {
  const entry = checkedLayout(bytes);
  entry.publicMaps = decodeMaps(entry.publicDomain.subarray(PUBLIC_HEADER_BYTES));
  return entry;
}

/**
 * The private domain of a framed entry, decrypted (its serialised maps, for decodeMaps), or null
 * when it does not authenticate. Checks the framing as decodeEntry does but leaves the public
 * maps undecoded (a private replay does not need them). Throws EntryError like decodeEntry.
 */
export function decryptPrivateDomain(
  bytes: Uint8Array,
  secrets: LedgerSecrets,
): { seqno: Seqno; plaintext: Uint8Array | null } {
  const e = checkedLayout(bytes);
  return { seqno: e.seqno, plaintext: decryptFramed(e, secrets) };
}

/**
 * What a Merkle leaf needs from a framed entry besides its hash: its seqno and the commit
 * evidence and claims digests. Checks the framing as decodeEntry does, without decoding maps.
 */
export function entryLeafInputs(bytes: Uint8Array): {
  seqno: Seqno;
  commitEvidenceDigest: Uint8Array;
  claimsDigest: Uint8Array;
} {
  const e = checkedLayout(bytes);
  return {
    seqno: e.seqno,
    commitEvidenceDigest: e.commitEvidenceDigest,
    claimsDigest: e.claimsDigest,
  };
}

/** Offsets of a write-set entry's digests (claims, then commit evidence) in the entry. */
export const CLAIMS_DIGEST_OFFSET = PUBLIC_DOMAIN_OFFSET + 1 + 8;
export const COMMIT_EVIDENCE_DIGEST_OFFSET = CLAIMS_DIGEST_OFFSET + SHA256_BYTES;

/**
 * A write-set entry's framing checked as decodeEntry checks it, with its seqno, view and public
 * maps, and the size of its private domain (0 when the transaction writes no private map, as
 * CCF serialises it), but no views of its other parts: the digests are read at
 * CLAIMS_DIGEST_OFFSET and COMMIT_EVIDENCE_DIGEST_OFFSET. Throws EntryError or CodecError.
 */
export function decodeEntryHeadAndMaps(bytes: Uint8Array): {
  seqno: Seqno;
  view: View;
  publicMaps: readonly MapWrites[];
  privateDomainBytes: number;
} {
  const { seqno, viewWord, publicEnd } = checkedFrameBounds(bytes, "write-set");
  const mapsStart = PUBLIC_DOMAIN_OFFSET + PUBLIC_HEADER_BYTES;
  const publicMaps =
    publicEnd > mapsStart ? decodeMaps(bytes.subarray(mapsStart, publicEnd)) : NO_MAPS;
  const privateDomainBytes = bytes.byteLength - publicEnd;
  return { seqno, view: (viewWord & VIEW_MASK) as View, publicMaps, privateDomainBytes };
}

/** Where the domains of a framed entry are. Byte fields are views into the entry bytes. */
export interface EntryFrame {
  readonly flags: number;
  readonly seqno: Seqno;
  /** The IV's view word without the snapshot bit (0 in snapshots). */
  readonly ivView: View;
  /** The whole serialised public domain: the authenticated data of the private domain. */
  readonly publicDomain: Uint8Array;
  readonly tag: Uint8Array;
  readonly iv: Uint8Array;
  readonly privateCiphertext: Uint8Array;
}

/** A snapshot entry's framing; its body (after the 17-byte public header) is snapshot-format's. */
export interface SnapshotFrame extends EntryFrame {
  /** The public domain after its header: the snapshot header and the public maps. */
  readonly publicBody: Uint8Array;
}

/**
 * Checks the framing of a snapshot entry (version, size, public domain size, type 1, seqno, IV
 * seqno and snapshot bit) and returns where its parts are. Throws EntryError.
 */
export function decodeSnapshotFrame(bytes: Uint8Array): SnapshotFrame {
  const frame = checkedFrame(bytes, "snapshot");
  return { ...frame, publicBody: frame.publicDomain.subarray(SNAPSHOT_PUBLIC_HEADER_BYTES) };
}

/** The private domain of a framed entry, decrypted, or null when it does not authenticate. */
export function decryptFramed(
  frame: Pick<EntryFrame, "seqno" | "iv" | "tag" | "privateCiphertext" | "publicDomain">,
  secrets: LedgerSecrets,
): Uint8Array | null {
  const key = secrets.secretFor(frame.seqno).gcmKey;
  return gcmDecrypt(key, frame.iv, frame.privateCiphertext, frame.tag, frame.publicDomain);
}

const NO_MAPS: readonly MapWrites[] = [];

/** decodeEntry's checks and views, with the public maps not yet decoded (NO_MAPS). */
function checkedLayout(bytes: Uint8Array): { -readonly [K in keyof LedgerEntry]: LedgerEntry[K] } {
  const frame = checkedFrame(bytes, "write-set");
  const p = PUBLIC_DOMAIN_OFFSET;
  return {
    flags: frame.flags,
    seqno: frame.seqno,
    view: frame.ivView,
    claimsDigest: bytes.subarray(p + 9, p + 9 + SHA256_BYTES),
    commitEvidenceDigest: bytes.subarray(p + 9 + SHA256_BYTES, p + 9 + 2 * SHA256_BYTES),
    publicMaps: NO_MAPS,
    publicDomain: frame.publicDomain,
    tag: frame.tag,
    iv: frame.iv,
    privateCiphertext: frame.privateCiphertext,
  };
}

/** The checks every entry of `expected` kind passes, and where its parts are. */
function checkedFrame(bytes: Uint8Array, expected: EntryKind): EntryFrame {
  const { seqno, viewWord, publicEnd } = checkedFrameBounds(bytes, expected);
  const p = PUBLIC_DOMAIN_OFFSET;
  const ivOffset = ENTRY_HEADER_BYTES + GCM_TAG_BYTES;
  return {
    flags: bytes[1]!,
    seqno,
    ivView: (viewWord & VIEW_MASK) as View,
    publicDomain: bytes.subarray(p, publicEnd),
    tag: bytes.subarray(ENTRY_HEADER_BYTES, ivOffset),
    iv: bytes.subarray(ivOffset, ivOffset + GCM_IV_BYTES),
    privateCiphertext: bytes.subarray(publicEnd),
  };
}

/** checkedFrame's checks, returning numbers only (no views: the verifier's hot path). */
function checkedFrameBounds(
  bytes: Uint8Array,
  expected: EntryKind,
): { seqno: Seqno; viewWord: number; publicEnd: number } {
  const headerBytes = expected === "snapshot" ? SNAPSHOT_PUBLIC_HEADER_BYTES : PUBLIC_HEADER_BYTES;
  if (bytes.byteLength < PUBLIC_DOMAIN_OFFSET + headerBytes) {
    fail(EntryErrorCode.Truncated, 0, `${bytes.byteLength} bytes is shorter than any entry`);
  }
  if (bytes[0] !== ENTRY_FORMAT_VERSION)
    fail(EntryErrorCode.UnsupportedVersion, 0, `version ${bytes[0]}`);
  const size = getU32LE(bytes, 2) + (bytes[6]! | (bytes[7]! << 8)) * 0x1_0000_0000;
  if (size !== bytes.byteLength - ENTRY_HEADER_BYTES) {
    fail(
      EntryErrorCode.SizeMismatch,
      2,
      `size field ${size} != ${bytes.byteLength - ENTRY_HEADER_BYTES}`,
    );
  }
  const publicSize = getU64LE(bytes, ENTRY_HEADER_BYTES + GCM_HEADER_BYTES);
  const publicEnd = PUBLIC_DOMAIN_OFFSET + publicSize;
  if (!(publicSize >= headerBytes) || publicEnd > bytes.byteLength) {
    fail(
      EntryErrorCode.MalformedPublicDomain,
      ENTRY_HEADER_BYTES + GCM_HEADER_BYTES,
      "bad public size",
    );
  }
  const p = PUBLIC_DOMAIN_OFFSET;
  const type = expected === "snapshot" ? ENTRY_TYPE_SNAPSHOT : ENTRY_TYPE_WRITE_SET;
  if (bytes[p] !== type) {
    fail(EntryErrorCode.UnsupportedEntryType, p, `type ${bytes[p]} where ${type} is expected`);
  }
  const seqno = getU64LE(bytes, p + 1);
  if (!(seqno >= 1)) fail(EntryErrorCode.MalformedPublicDomain, p + 1, "bad seqno");
  const ivOffset = ENTRY_HEADER_BYTES + GCM_TAG_BYTES;
  const ivSeqno = getU64LE(bytes, ivOffset);
  if (ivSeqno !== seqno)
    fail(EntryErrorCode.MalformedPublicDomain, ivOffset, "IV seqno != entry seqno");
  const viewWord = getU32LE(bytes, ivOffset + 8);
  if (viewWord >= SNAPSHOT_IV_BIT !== (expected === "snapshot")) {
    fail(EntryErrorCode.MalformedPublicDomain, ivOffset + 8, "IV snapshot bit != entry type");
  }
  return { seqno: seqno as Seqno, viewWord, publicEnd };
}

/**
 * Decrypts and decodes the private domain. Returns null when authentication fails: the
 * entry (public or private part) was altered, or `secrets` hold the wrong key.
 */
export function decryptPrivateMaps(entry: LedgerEntry, secrets: LedgerSecrets): MapWrites[] | null {
  const plain = decryptFramed(entry, secrets);
  if (plain === null) return null;
  return decodeMaps(plain);
}

/** The whole write set of an entry (public and decrypted private maps), or null if tampered. */
export function decodeWriteSet(entry: LedgerEntry, secrets: LedgerSecrets): WriteSet | null {
  const privateMaps = decryptPrivateMaps(entry, secrets);
  return privateMaps === null ? null : joinDomains(entry.publicMaps, privateMaps);
}
