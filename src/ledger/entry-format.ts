/**
 * Ledger entry layout, as CCF lays it out (ccf-api.md 6.2, 6.3):
 *
 *   u8 version (=1) | u8 flags | u48 LE size            size = bytes after these 8
 *   GCM header: tag[16] | iv[12]                        iv = u64 LE seqno | u32 LE view (low 31 bits)
 *   u64 LE public_domain_size
 *   public domain (clear, and the AAD of the private domain):
 *     u8 entry_type (4: write set with commit evidence and claims)
 *     i64 LE seqno | claims_digest[32] | commit_evidence_digest[32] | i64 LE max_conflict_version (0)
 *     public maps (codec.ts)
 *   private domain: AES-256-GCM ciphertext of the private maps (may be empty; the tag still
 *   authenticates the public domain)
 *
 * Pure: no IO. The IV is unique per (seqno, view) under one ledger secret, so never repeats.
 */
import { CcfError } from "../base/errors.js";
import { assert } from "../base/assert.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES, gcmDecrypt, gcmEncrypt } from "../crypto/aead.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import { decodeMaps, encodeMaps } from "../kv/codec.js";
import { joinDomains, splitDomains, type MapWrites, type WriteSet } from "../kv/write-set.js";
import type { LedgerSecrets } from "./ledger-secrets.js";

export const ENTRY_FORMAT_VERSION = 1;
export const ENTRY_HEADER_BYTES = 8;
export const GCM_HEADER_BYTES = GCM_TAG_BYTES + GCM_IV_BYTES;
/** Entry type 4: WriteSetWithCommitEvidenceAndClaims, CCF's current default. */
export const ENTRY_TYPE_WRITE_SET = 4;
export const FLAG_FORCE_CHUNK_AFTER = 0x01;
export const FLAG_FORCE_CHUNK_BEFORE = 0x02;
/** u8 type | i64 seqno | claims[32] | commit evidence digest[32] | i64 max_conflict_version. */
const PUBLIC_HEADER_BYTES = 1 + 8 + SHA256_BYTES + SHA256_BYTES + 8;
const PUBLIC_DOMAIN_OFFSET = ENTRY_HEADER_BYTES + GCM_HEADER_BYTES + 8;
const MAX_U48 = 2 ** 48 - 1;
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

function writeU64(view: DataView, offset: number, n: number): void {
  view.setUint32(offset, n >>> 0, true);
  view.setUint32(offset + 4, Math.floor(n / 0x1_0000_0000), true);
}

function readU64(view: DataView, offset: number): number {
  const hi = view.getUint32(offset + 4, true);
  // Values we write are safe integers; anything larger is malformed input, reported by callers.
  return hi >= 0x20_0000 ? Number.NaN : hi * 0x1_0000_0000 + view.getUint32(offset, true);
}

export function entryIv(txId: TxId): Uint8Array {
  const iv = new Uint8Array(GCM_IV_BYTES);
  const dv = new DataView(iv.buffer);
  writeU64(dv, 0, txId.seqno);
  dv.setUint32(8, txId.view & VIEW_MASK, true);
  return iv;
}

/** Serialises and encrypts one transaction into ledger entry bytes. */
export function encodeEntry(input: EncodeEntryInput, secrets: LedgerSecrets): Uint8Array {
  const { txId } = input;
  assert(input.commitEvidenceDigest.byteLength === SHA256_BYTES, "commit evidence digest is 32 bytes");
  const claims = input.claimsDigest ?? ZERO_DIGEST;
  assert(claims.byteLength === SHA256_BYTES, "claims digest is 32 bytes");
  const { publicMaps, privateMaps } = splitDomains(input.writeSet);
  const publicTables = encodeMaps(publicMaps);
  const privatePlain = encodeMaps(privateMaps);
  const publicSize = PUBLIC_HEADER_BYTES + publicTables.byteLength;
  const total = PUBLIC_DOMAIN_OFFSET + publicSize + privatePlain.byteLength;
  assert(total - ENTRY_HEADER_BYTES <= MAX_U48, "entry too large for a u48 size");

  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  out[0] = ENTRY_FORMAT_VERSION;
  out[1] = input.flags ?? 0;
  dv.setUint32(2, (total - ENTRY_HEADER_BYTES) >>> 0, true);
  dv.setUint16(6, Math.floor((total - ENTRY_HEADER_BYTES) / 0x1_0000_0000), true);
  writeU64(dv, ENTRY_HEADER_BYTES + GCM_HEADER_BYTES, publicSize);
  let p = PUBLIC_DOMAIN_OFFSET;
  out[p] = ENTRY_TYPE_WRITE_SET;
  writeU64(dv, p + 1, txId.seqno);
  out.set(claims, p + 9);
  out.set(input.commitEvidenceDigest, p + 9 + SHA256_BYTES);
  writeU64(dv, p + 9 + 2 * SHA256_BYTES, 0);
  p += PUBLIC_HEADER_BYTES;
  out.set(publicTables, p);
  p += publicTables.byteLength;

  const iv = entryIv(txId);
  const aad = out.subarray(PUBLIC_DOMAIN_OFFSET, p);
  const sealed = gcmEncrypt(secrets.secretFor(txId.seqno).key, iv, privatePlain, aad);
  out.set(sealed.ciphertext, p);
  out.set(sealed.tag, ENTRY_HEADER_BYTES);
  out.set(iv, ENTRY_HEADER_BYTES + GCM_TAG_BYTES);
  return out;
}

function fail(code: EntryErrorCode, offset: number, what: string): never {
  throw new EntryError({ code, offset }, `ledger entry: ${what} (at entry offset ${offset})`);
}

/** Parses entry bytes (one whole entry). Throws EntryError or CodecError on malformed input. */
export function decodeEntry(bytes: Uint8Array): LedgerEntry {
  if (bytes.byteLength < PUBLIC_DOMAIN_OFFSET + PUBLIC_HEADER_BYTES) {
    fail(EntryErrorCode.Truncated, 0, `${bytes.byteLength} bytes is shorter than any entry`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== ENTRY_FORMAT_VERSION) fail(EntryErrorCode.UnsupportedVersion, 0, `version ${bytes[0]}`);
  const size = dv.getUint32(2, true) + dv.getUint16(6, true) * 0x1_0000_0000;
  if (size !== bytes.byteLength - ENTRY_HEADER_BYTES) {
    fail(EntryErrorCode.SizeMismatch, 2, `size field ${size} != ${bytes.byteLength - ENTRY_HEADER_BYTES}`);
  }
  const publicSize = readU64(dv, ENTRY_HEADER_BYTES + GCM_HEADER_BYTES);
  const publicEnd = PUBLIC_DOMAIN_OFFSET + publicSize;
  if (!(publicSize >= PUBLIC_HEADER_BYTES) || publicEnd > bytes.byteLength) {
    fail(EntryErrorCode.MalformedPublicDomain, ENTRY_HEADER_BYTES + GCM_HEADER_BYTES, "bad public size");
  }
  const p = PUBLIC_DOMAIN_OFFSET;
  if (bytes[p] !== ENTRY_TYPE_WRITE_SET) fail(EntryErrorCode.UnsupportedEntryType, p, `type ${bytes[p]}`);
  const seqno = readU64(dv, p + 1);
  if (!(seqno >= 1)) fail(EntryErrorCode.MalformedPublicDomain, p + 1, "bad seqno");
  const ivOffset = ENTRY_HEADER_BYTES + GCM_TAG_BYTES;
  const ivSeqno = readU64(dv, ivOffset);
  if (ivSeqno !== seqno) fail(EntryErrorCode.MalformedPublicDomain, ivOffset, "IV seqno != entry seqno");
  return {
    flags: bytes[1]!,
    seqno: seqno as Seqno,
    view: dv.getUint32(ivOffset + 8, true) as View,
    claimsDigest: bytes.subarray(p + 9, p + 9 + SHA256_BYTES),
    commitEvidenceDigest: bytes.subarray(p + 9 + SHA256_BYTES, p + 9 + 2 * SHA256_BYTES),
    publicMaps: decodeMaps(bytes.subarray(p + PUBLIC_HEADER_BYTES, publicEnd)),
    publicDomain: bytes.subarray(p, publicEnd),
    tag: bytes.subarray(ENTRY_HEADER_BYTES, ivOffset),
    iv: bytes.subarray(ivOffset, ivOffset + GCM_IV_BYTES),
    privateCiphertext: bytes.subarray(publicEnd),
  };
}

/**
 * Decrypts and decodes the private domain. Returns null when authentication fails: the
 * entry (public or private part) was altered, or `secrets` hold the wrong key.
 */
export function decryptPrivateMaps(entry: LedgerEntry, secrets: LedgerSecrets): MapWrites[] | null {
  const key = secrets.secretFor(entry.seqno).key;
  const plain = gcmDecrypt(key, entry.iv, entry.privateCiphertext, entry.tag, entry.publicDomain);
  if (plain === null) return null;
  return decodeMaps(plain);
}

/** The whole write set of an entry (public and decrypted private maps), or null if tampered. */
export function decodeWriteSet(entry: LedgerEntry, secrets: LedgerSecrets): WriteSet | null {
  const privateMaps = decryptPrivateMaps(entry, secrets);
  return privateMaps === null ? null : joinDomains(entry.publicMaps, privateMaps);
}
