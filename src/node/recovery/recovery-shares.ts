/**
 * Recovery shares (ccf-compatibility.md §8.1; issue #5): how the members of a consortium, together,
 * hold the key to a service's ledger secrets, so that after a disaster a threshold of them can
 * unlock the private domain and no single party can.
 *
 * On every (re)share the node draws a fresh 32-byte wrapping key, wraps the service's ledger
 * secrets with it (every secret with the seqno it is in force from, encodeLedgerSecretList;
 * AES-256-GCM, wrapLedgerSecrets), and
 * hands out the wrapping key:
 *   - split with Shamir's scheme (`shamir-secret-sharing`: GF(2^8), audited) among the
 *     Participants, so that `threshold` shares rebuild it;
 *   - whole to each Owner (and to every Participant when the threshold is 1).
 * Each member's share is encrypted to its RSA encryption key (RSA-OAEP, SHA-256 and MGF1-SHA-256,
 * as CCF). CCF shares over GF(2^31 - 1) with its own byte layout; ours differ on the wire and say
 * so with a one-byte tag: 0x00 whole key, 0x01 Shamir share.
 *
 * Randomness: the wrapping key from node:crypto and Shamir's coefficients from the library's
 * CSPRNG (globalThis.crypto). Hence this lives in the node layer, not a pure one.
 */
import { randomBytes } from "node:crypto";
import { combine, split } from "shamir-secret-sharing";
import { concatBytes } from "../../base/bytes.js";
import { CcfError, isForeignError } from "../../base/errors.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES, GcmKey, gcmDecrypt, gcmEncrypt } from "../../crypto/aead.js";
import { rsaOaepDecrypt, rsaOaepEncrypt } from "../../crypto/identity.js";

export const WRAPPING_KEY_BYTES = 32;
const TAG_WHOLE = 0x00;
const TAG_SHARE = 0x01;
const NO_AAD = new Uint8Array(0);

export type RecoveryRole = "Participant" | "Owner";

export interface RecoveryMember {
  readonly id: string;
  readonly encryptionPublicKeyPem: string;
  readonly role: RecoveryRole;
}

export interface IssuedShares {
  /** The key the shares rebuild; the issuing primary keeps it to re-wrap at rekeys. */
  readonly wrappingKey: Uint8Array;
  /** The ledger secrets wrapped by this issue's key (ciphertext | tag). */
  readonly wrappedLedgerSecret: Uint8Array;
  /** Member id -> that member's share, RSA-OAEP encrypted to its encryption key. */
  readonly encryptedShares: ReadonlyMap<string, Uint8Array>;
}

export enum RecoveryErrorCode {
  /** Threshold or membership that cannot work (e.g. fewer participants than the threshold). */
  BadPolicy = "BadPolicy",
  /** A share that is not one of ours (tag, length). */
  MalformedShare = "MalformedShare",
  /** The shares did not rebuild the key that wrapped the ledger secret. */
  WrongShares = "WrongShares",
  /** A member's encrypted share does not decrypt with the given private key. */
  CannotDecrypt = "CannotDecrypt",
  /**
   * A rekey on a primary that did not issue the shares the members hold (just after an
   * election): it cannot wrap the new secret for them until its own reshare has committed.
   */
  KeyNotHeld = "KeyNotHeld",
}
export type RecoveryErrorType = { code: RecoveryErrorCode };
export class RecoveryError extends CcfError<RecoveryErrorType> {}

function fail(code: RecoveryErrorCode, message: string): never {
  throw new RecoveryError({ code }, message);
}

function tagged(tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.byteLength);
  out[0] = tag;
  out.set(body, 1);
  return out;
}

/** Whether a decrypted share is a whole wrapping key (an Owner's): it alone completes recovery. */
export function isWholeKey(share: Uint8Array): boolean {
  return share.byteLength === 1 + WRAPPING_KEY_BYTES && share[0] === TAG_WHOLE;
}

/** A member decrypts its share with its RSA private key (what `consortia recovery share` does). */
export function decryptShare(encryptedShare: Uint8Array, privateKeyPem: string): Uint8Array {
  try {
    return rsaOaepDecrypt(privateKeyPem, encryptedShare);
  } catch (e) {
    // node:crypto refusing the key or the ciphertext; our own errors propagate.
    if (!isForeignError(e)) throw e;
    return fail(RecoveryErrorCode.CannotDecrypt, `the share does not decrypt: ${String(e)}`);
  }
}

/**
 * Wraps `payload` (the encoded ledger secrets) under a wrapping key: random IV | ciphertext |
 * tag. A wrapping key may wrap several payloads (a rekey re-wraps the secrets under the key the
 * members already hold shares of, RecoveryKeeper.rewrap), so the IV is random, not zero as in
 * CCF, where each key wraps once.
 */
export function wrapLedgerSecrets(wrappingKey: Uint8Array, payload: Uint8Array): Uint8Array {
  const iv = new Uint8Array(randomBytes(GCM_IV_BYTES));
  const sealed = gcmEncrypt(new GcmKey(wrappingKey), iv, payload, NO_AAD);
  return concatBytes([iv, sealed.ciphertext, sealed.tag]);
}

/** Unwraps the ledger secrets with a rebuilt wrapping key; WrongShares if it does not open. */
export function unwrapLedgerSecret(wrapped: Uint8Array, wrappingKey: Uint8Array): Uint8Array {
  const minimum = GCM_IV_BYTES + GCM_TAG_BYTES;
  if (wrapped.byteLength <= minimum || wrappingKey.byteLength !== WRAPPING_KEY_BYTES) {
    fail(RecoveryErrorCode.WrongShares, "the wrapping key or the wrapped secret has a bad size");
  }
  const cut = wrapped.byteLength - GCM_TAG_BYTES;
  const key = new GcmKey(wrappingKey);
  const iv = wrapped.subarray(0, GCM_IV_BYTES);
  const body = wrapped.subarray(GCM_IV_BYTES, cut);
  const secret = gcmDecrypt(key, iv, body, wrapped.subarray(cut), NO_AAD);
  if (secret === null) {
    fail(RecoveryErrorCode.WrongShares, "the shares do not rebuild the recovery key");
  }
  return secret;
}

/**
 * Issues fresh shares of a fresh wrapping key of `ledgerSecret` (the encoded ledger secrets) to
 * `members`. Needs at least
 * `threshold` shares' worth of members: Participants count one each, an Owner alone suffices.
 */
export async function issueRecoveryShares(
  ledgerSecret: Uint8Array,
  members: readonly RecoveryMember[],
  threshold: number,
): Promise<IssuedShares> {
  if (!Number.isInteger(threshold) || threshold < 1) {
    fail(
      RecoveryErrorCode.BadPolicy,
      `recovery threshold must be a positive integer: ${threshold}`,
    );
  }
  const participants = members.filter((m) => m.role === "Participant");
  const owners = members.filter((m) => m.role === "Owner");
  if (participants.length < threshold && owners.length === 0) {
    fail(
      RecoveryErrorCode.BadPolicy,
      `recovery threshold ${threshold} exceeds the ${participants.length} recovery participants`,
    );
  }
  if (participants.length > 255) fail(RecoveryErrorCode.BadPolicy, "more than 255 participants");
  const wrappingKey = new Uint8Array(randomBytes(WRAPPING_KEY_BYTES));
  const whole = tagged(TAG_WHOLE, wrappingKey);
  const shares = new Map<string, Uint8Array>();
  for (const owner of owners)
    shares.set(owner.id, rsaOaepEncrypt(owner.encryptionPublicKeyPem, whole));
  if (threshold === 1 || participants.length === 1) {
    for (const p of participants) shares.set(p.id, rsaOaepEncrypt(p.encryptionPublicKeyPem, whole));
  } else if (participants.length >= threshold) {
    const parts = await split(wrappingKey, participants.length, threshold);
    participants.forEach((p, i) => {
      shares.set(p.id, rsaOaepEncrypt(p.encryptionPublicKeyPem, tagged(TAG_SHARE, parts[i]!)));
    });
  }
  return {
    wrappingKey,
    wrappedLedgerSecret: wrapLedgerSecrets(wrappingKey, ledgerSecret),
    encryptedShares: shares,
  };
}

/**
 * Rebuilds the wrapping key from decrypted shares (a whole key alone suffices) and unwraps the
 * ledger secrets (as wrapped: decodeLedgerSecretList parses them). Throws RecoveryError
 * (MalformedShare, WrongShares).
 */
export async function recoverLedgerSecret(
  decryptedShares: readonly Uint8Array[],
  wrappedLedgerSecret: Uint8Array,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const share of decryptedShares) {
    if (isWholeKey(share)) {
      return unwrapLedgerSecret(wrappedLedgerSecret, share.subarray(1));
    }
    if (share.byteLength !== 2 + WRAPPING_KEY_BYTES || share[0] !== TAG_SHARE) {
      fail(RecoveryErrorCode.MalformedShare, `a share of ${share.byteLength} bytes is not ours`);
    }
    parts.push(share.subarray(1));
  }
  if (parts.length < 2) fail(RecoveryErrorCode.WrongShares, "not enough shares");
  let key: Uint8Array;
  try {
    key = await combine(parts);
  } catch (e) {
    // shamir-secret-sharing throws plain Errors for shares that do not fit together.
    if (!isForeignError(e)) throw e;
    return fail(RecoveryErrorCode.WrongShares, `the shares do not combine: ${String(e)}`);
  }
  return unwrapLedgerSecret(wrappedLedgerSecret, key);
}
