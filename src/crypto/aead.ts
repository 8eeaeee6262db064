/**
 * AES-256-GCM for the private domain of ledger entries (ccf-compatibility.md §6.1). The caller
 * supplies the 12-byte IV; uniqueness of (key, IV) is the caller's invariant (the ledger derives
 * the IV from seqno and view, so it never repeats under one ledger secret).
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto";
import { concatBytes } from "../base/bytes.js";
import { isForeignError } from "../base/errors.js";

export const AES_KEY_BYTES = 32;
export const GCM_TAG_BYTES = 16;
export const GCM_IV_BYTES = 12;

/** An AES-256 key prepared once (a KeyObject): cheaper per call than raw key bytes. */
export class GcmKey {
  /** @internal */
  readonly handle: KeyObject;

  constructor(raw: Uint8Array) {
    if (raw.byteLength !== AES_KEY_BYTES) throw new RangeError("AES-256 keys are 32 bytes");
    this.handle = createSecretKey(raw);
  }
}

export interface Sealed {
  readonly ciphertext: Uint8Array;
  readonly tag: Uint8Array;
}

export function gcmEncrypt(
  key: GcmKey,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Sealed {
  const cipher = createCipheriv("aes-256-gcm", key.handle, iv);
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const ciphertext = tail.byteLength === 0 ? asUint8Array(head) : concatBytes([head, tail]);
  return { ciphertext, tag: asUint8Array(cipher.getAuthTag()) };
}

/** Returns the plaintext, or null when authentication fails (wrong key, IV, AAD or bytes). */
export function gcmDecrypt(
  key: GcmKey,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
): Uint8Array | null {
  const decipher = createDecipheriv("aes-256-gcm", key.handle, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const head = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch (err: unknown) {
    // Authentication failure is an expected outcome for tampered input, not a crash.
    if (isForeignError(err)) return null;
    throw err;
  }
  return asUint8Array(head);
}

/** A plain Uint8Array view of node's Buffer output (Buffer#slice does not copy). */
function asUint8Array(buffer: Uint8Array): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
