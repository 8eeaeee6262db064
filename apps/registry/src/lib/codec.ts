/**
 * Byte codecs of the registry app: strict base64 (RFC 4648 with padding), lower-case hex and
 * UTF-8. Written out here because the app runs in QuickJS (no atob, Buffer or TextDecoder) and
 * in Node alike. No IO.
 *
 * Invariant: the decoders refuse what is not canonical (a stray character, missing or extra
 * padding, non-zero unused bits, an invalid UTF-8 sequence) by returning null; they never guess.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUES: Record<string, number> = {};
for (let i = 0; i < ALPHABET.length; i++) VALUES[ALPHABET.charAt(i)] = i;

/** Base64 of `bytes`, with padding. */
export function toBase64(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = [18, 12, 6, 0].map((shift) => ALPHABET.charAt((n >> shift) & 63));
    const kept = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    out += chars.slice(0, kept).join("") + "=".repeat(4 - kept);
  }
  return out;
}

/** The bytes of canonical, padded base64 `text`, or null. */
export function fromBase64(text: string): Uint8Array | null {
  if (text.length % 4 !== 0) return null;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let bits = 0;
  let value = 0;
  let at = 0;
  for (let i = 0; i < text.length - padding; i++) {
    const v = VALUES[text.charAt(i)];
    if (v === undefined) return null;
    value = ((value << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  if ((value & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

export function isHex(text: string): boolean {
  return text.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(text);
}

/** UTF-8 of `text` (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    let c = ch.codePointAt(0) ?? 0;
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else {
      out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63));
      out.push(0x80 | (c & 63));
    }
  }
  return new Uint8Array(out);
}

/** Lead byte -> [sequence length, smallest code point it may encode]. */
function utf8Lead(b: number): [number, number] | null {
  if (b < 0x80) return [1, 0];
  if (b >= 0xc2 && b < 0xe0) return [2, 0x80];
  if (b >= 0xe0 && b < 0xf0) return [3, 0x800];
  if (b >= 0xf0 && b < 0xf5) return [4, 0x10000];
  return null;
}

/** The text of UTF-8 `bytes`, or null when they are not valid UTF-8. */
export function fromUtf8(bytes: Uint8Array): string | null {
  let out = "";
  for (let i = 0; i < bytes.length;) {
    const lead = utf8Lead(bytes[i] ?? 0);
    if (lead === null || i + lead[0] > bytes.length) return null;
    let c = lead[0] === 1 ? (bytes[i] ?? 0) : (bytes[i] ?? 0) & (0xff >> (lead[0] + 1));
    for (let k = 1; k < lead[0]; k++) {
      const b = bytes[i + k] ?? 0;
      if ((b & 0xc0) !== 0x80) return null;
      c = (c << 6) | (b & 63);
    }
    if (c < lead[1] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return null;
    out += String.fromCodePoint(c);
    i += lead[0];
  }
  return out;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
