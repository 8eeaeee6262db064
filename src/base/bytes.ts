/**
 * Byte helpers for pure layers, which use Uint8Array only. This is the one module allowed to
 * touch node's Buffer, as an implementation detail for speed (hex, base64, latin1 keys).
 */

const EMPTY = new Uint8Array(0);

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function emptyBytes(): Uint8Array {
  return EMPTY;
}

export function toHex(bytes: Uint8Array): string {
  return asBuffer(bytes).toString("hex");
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Decodes hex; returns null for anything that is not an even-length hex string. */
export function fromHex(hex: string): Uint8Array | null {
  if (!HEX_RE.test(hex)) return null;
  return new Uint8Array(Buffer.from(hex, "hex"));
}

export function toBase64(bytes: Uint8Array): string {
  return asBuffer(bytes).toString("base64");
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes standard base64; returns null when the text is not valid base64. */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0 || !BASE64_RE.test(text)) return null;
  return new Uint8Array(Buffer.from(text, "base64"));
}

const encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is content, not a marker to drop (keys and names must round-trip).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Strings up to this long that are all ASCII are encoded by a loop: the array is then allocated
 * on V8's heap (it holds small typed arrays there), where TextEncoder allocates a separate
 * backing store every time, ~10x slower for the short keys and ids of every transaction.
 */
const SHORT_TEXT_CHARS = 64;

export function utf8(text: string): Uint8Array {
  const length = text.length;
  if (length > SHORT_TEXT_CHARS) return encoder.encode(text);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return encoder.encode(text);
    out[i] = code;
  }
  return out;
}

/** Decodes UTF-8; throws TypeError on invalid sequences (callers at boundaries convert it). */
export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * A lossless string form of arbitrary bytes (one char per byte), used as a JS Map key.
 * Latin-1 via Buffer: TextDecoder("latin1") is really windows-1252 and is not lossless.
 */
/** Keys up to this long are converted without a Buffer (the common case: cheaper). */
const SHORT_KEY_BYTES = 64;

export function bytesToKey(bytes: Uint8Array): string {
  if (bytes.length <= SHORT_KEY_BYTES) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  return asBuffer(bytes).toString("latin1");
}

export function keyToBytes(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, "latin1"));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return asBuffer(a).equals(asBuffer(b));
}

/** Lexicographic byte order: negative, zero or positive like Array.sort comparators. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return asBuffer(a).compare(asBuffer(b));
}

const TWO_POW_32 = 0x1_0000_0000;

/** Writes a u32 little-endian with plain byte stores. */
export function putU32LE(target: Uint8Array, offset: number, n: number): void {
  target[offset] = n;
  target[offset + 1] = n >>> 8;
  target[offset + 2] = n >>> 16;
  target[offset + 3] = n >>> 24;
}

/** Writes a u64 little-endian (`n` a non-negative safe integer) with plain byte stores. */
export function putU64LE(target: Uint8Array, offset: number, n: number): void {
  putU32LE(target, offset, n >>> 0);
  putU32LE(target, offset + 4, Math.floor(n / TWO_POW_32));
}

export function getU32LE(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) +
    bytes[offset + 3]! * 0x100_0000
  );
}

/** Reads a u64 little-endian; NaN when it exceeds Number.MAX_SAFE_INTEGER (malformed input). */
export function getU64LE(bytes: Uint8Array, offset: number): number {
  const hi = getU32LE(bytes, offset + 4);
  return hi >= 0x20_0000 ? Number.NaN : hi * TWO_POW_32 + getU32LE(bytes, offset);
}

/** PEM armour of DER bytes: `label` such as "CERTIFICATE" or "PUBLIC KEY", 64-column lines. */
export function derToPem(der: Uint8Array, label: string): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
