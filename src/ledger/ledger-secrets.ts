/**
 * Ledger secrets: the AES-256-GCM keys of the private domain, each in force from a seqno on
 * (each trigger_ledger_rekey proposal adds one), and the commit secrets derived from
 * them (ccf-compatibility.md §6.1, §6.2).
 *
 * Invariant: secrets are ordered by strictly increasing `fromSeqno`; the first starts at 1.
 */
import { assert, AssertionError } from "../base/assert.js";
import { toHex, utf8 } from "../base/bytes.js";
import type { Seqno, TxId } from "../base/ids.js";
import { AES_KEY_BYTES, GcmKey } from "../crypto/aead.js";
import { HmacSha256, hmacSha256 } from "../crypto/hash.js";
import { sha256Into } from "../crypto/sha256-js.js";

/**
 * CCF derives the commit secret with the label "Commit Secret Label" but passes
 * sizeof(const char*) as its length, so only the first 8 bytes are used (ccf-compatibility.md
 * §6.2).
 */
const COMMIT_SECRET_LABEL = utf8("Commit S");

const CHAR_C = 0x63;
const CHAR_E = 0x65;
const CHAR_COLON = 0x3a;
const CHAR_DOT = 0x2e;
const CHAR_0 = 0x30;
const HEX_DIGITS = utf8("0123456789abcdef");
/** "ce:" + two u64 in decimal + "." + ":" + 64 hex digits fits easily. */
const EVIDENCE_SCRATCH_BYTES = 128;

/** Writes `n` (a safe non-negative integer) in decimal at `out[o..]`; returns the end. */
function putDecimal(out: Uint8Array, o: number, n: number): number {
  let digits = 1;
  for (let rest = Math.floor(n / 10); rest > 0; rest = Math.floor(rest / 10)) digits++;
  for (let i = digits - 1, rest = n; i >= 0; i--, rest = Math.floor(rest / 10)) {
    out[o + i] = CHAR_0 + (rest % 10);
  }
  return o + digits;
}

export interface LedgerSecret {
  readonly fromSeqno: Seqno;
  readonly key: Uint8Array;
  /** `key` prepared for AES-256-GCM. */
  readonly gcmKey: GcmKey;
  /** HMAC-SHA256(key, "Commit S"): the key of per-transaction commit nonces. */
  readonly commitSecret: Uint8Array;
  /** HMAC under commitSecret, precomputed for the per-transaction nonce. */
  readonly nonceHmac: HmacSha256;
}

export class LedgerSecrets {
  // Invariant: strictly increasing fromSeqno, first is 1.
  private readonly secrets: LedgerSecret[] = [];
  private readonly evidenceScratch = new Uint8Array(EVIDENCE_SCRATCH_BYTES);

  constructor(initialKey: Uint8Array) {
    this.add(1 as Seqno, initialKey);
  }

  add(fromSeqno: Seqno, key: Uint8Array): void {
    assert(key.byteLength === AES_KEY_BYTES, "ledger secret must be 32 bytes");
    const last = this.secrets[this.secrets.length - 1];
    assert(
      last === undefined || fromSeqno > last.fromSeqno,
      "secrets must be added in seqno order",
    );
    const commitSecret = hmacSha256(key, COMMIT_SECRET_LABEL);
    const nonceHmac = new HmacSha256(commitSecret);
    this.secrets.push({
      fromSeqno,
      key: key.slice(),
      gcmKey: new GcmKey(key),
      commitSecret,
      nonceHmac,
    });
  }

  /** Forgets the secrets in force only from after `seqno` (their rekey was rolled back). */
  retractAfter(seqno: Seqno): void {
    while (this.secrets.length > 1 && this.secrets[this.secrets.length - 1]!.fromSeqno > seqno) {
      this.secrets.pop();
    }
  }

  /** The secret in force at `seqno`: the last one whose fromSeqno <= seqno. */
  secretFor(seqno: Seqno): LedgerSecret {
    assert(seqno >= 1, "seqnos start at 1");
    for (let i = this.secrets.length - 1; i >= 0; i--) {
      const secret = this.secrets[i]!;
      if (secret.fromSeqno <= seqno) return secret;
    }
    throw new AssertionError("unreachable: the first secret starts at seqno 1");
  }

  /** Every secret with the seqno it is in force from, oldest first (to hand to a worker). */
  list(): { fromSeqno: Seqno; key: Uint8Array }[] {
    return this.secrets.map((s) => ({ fromSeqno: s.fromSeqno, key: s.key.slice() }));
  }

  /** Rebuilds secrets from list(). */
  static fromList(list: readonly { fromSeqno: number; key: Uint8Array }[]): LedgerSecrets {
    const first = list[0];
    assert(first !== undefined && first.fromSeqno === 1, "the first secret starts at seqno 1");
    const secrets = new LedgerSecrets(first.key);
    for (const s of list.slice(1)) secrets.add(s.fromSeqno as Seqno, s.key);
    return secrets;
  }

  /**
   * Disaster recovery: `historical` (the previous service's secrets, oldest first, the first
   * from seqno 1) govern every seqno before `from`; the secrets this node held so far govern
   * `from` on (the first of them, which was in force from 1 as a placeholder, now from `from`).
   */
  restoreHistorical(historical: readonly { fromSeqno: number; key: Uint8Array }[], from: Seqno) {
    const old = historical.filter((s) => s.fromSeqno < from);
    assert(old[0]?.fromSeqno === 1, "the recovered secrets start at seqno 1");
    assert(
      this.secrets.slice(1).every((s) => s.fromSeqno > from),
      "secrets held before recovery are in force only after it",
    );
    const mine = this.secrets.splice(0);
    for (const s of old) this.add(s.fromSeqno as Seqno, s.key);
    this.add(from, mine[0]!.key);
    for (const s of mine.slice(1)) this.secrets.push(s);
  }

  get latest(): LedgerSecret {
    return this.secrets[this.secrets.length - 1]!;
  }

  /**
   * SHA-256 of commitEvidence(id) (the middle part of a transaction's Merkle leaf), built as
   * bytes in a scratch buffer: no strings on the per-transaction path. Not re-entrant.
   */
  commitEvidenceDigest(id: TxId): Uint8Array {
    const b = this.evidenceScratch;
    b[0] = CHAR_C;
    b[1] = CHAR_E;
    b[2] = CHAR_COLON;
    let o = putDecimal(b, 3, id.view);
    b[o++] = CHAR_DOT;
    o = putDecimal(b, o, id.seqno);
    const nonce = this.secretFor(id.seqno).nonceHmac.digestBytes(b, 3, o - 3);
    b[o++] = CHAR_COLON;
    for (let i = 0; i < nonce.length; i++) {
      b[o++] = HEX_DIGITS[nonce[i]! >> 4]!;
      b[o++] = HEX_DIGITS[nonce[i]! & 15]!;
    }
    const out = new Uint8Array(32);
    sha256Into(b, 0, o, out, 0);
    return out;
  }

  /** The commit evidence string `ce:<view>.<seqno>:<hex nonce>` of a transaction. */
  commitEvidence(id: TxId): string {
    const txIdText = `${id.view}.${id.seqno}`;
    const nonce = this.secretFor(id.seqno).nonceHmac.digest(txIdText);
    return `ce:${txIdText}:${toHex(nonce)}`;
  }
}

/** Bytes per item of an encoded secret list: u64 LE fromSeqno, then the 32-byte key. */
const LIST_ITEM_BYTES = 8 + AES_KEY_BYTES;

/** Serialises list() for recovery (wrapped under the wrapping key, ccf-compatibility.md §8.1). */
export function encodeLedgerSecretList(
  list: readonly { fromSeqno: number; key: Uint8Array }[],
): Uint8Array {
  const out = new Uint8Array(list.length * LIST_ITEM_BYTES);
  const view = new DataView(out.buffer);
  list.forEach((s, i) => {
    view.setBigUint64(i * LIST_ITEM_BYTES, BigInt(s.fromSeqno), true);
    out.set(s.key, i * LIST_ITEM_BYTES + 8);
  });
  return out;
}

/** Parses encodeLedgerSecretList's bytes; throws RangeError when they are not such a list. */
export function decodeLedgerSecretList(bytes: Uint8Array): { fromSeqno: Seqno; key: Uint8Array }[] {
  if (bytes.byteLength === 0 || bytes.byteLength % LIST_ITEM_BYTES !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes are not a list of ledger secrets`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const list: { fromSeqno: Seqno; key: Uint8Array }[] = [];
  for (let at = 0; at < bytes.byteLength; at += LIST_ITEM_BYTES) {
    const fromSeqno = Number(view.getBigUint64(at, true)) as Seqno;
    const previous = list.at(-1)?.fromSeqno ?? 0;
    if (fromSeqno <= previous || (previous === 0 && fromSeqno !== 1)) {
      throw new RangeError(`ledger secret list is out of order at seqno ${fromSeqno}`);
    }
    list.push({ fromSeqno, key: bytes.slice(at + 8, at + LIST_ITEM_BYTES) });
  }
  return list;
}
