/**
 * A small DER writer (ITU-T X.690): the few types a TBSCertificate is built from, so that a
 * certificate can be assembled and signed synchronously (cert-issuance.ts, for the
 * constitution's generateEndorsedCertificate, which cannot await). Definite lengths only, as DER
 * requires; single-byte tags. No IO.
 */
import { assert } from "../base/assert.js";

export const DER = {
  integer: 0x02,
  bitString: 0x03,
  oid: 0x06,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  /** [0] EXPLICIT, constructed: a TBSCertificate's version. */
  context0: 0xa0,
  /** [3] EXPLICIT, constructed: a TBSCertificate's extensions. */
  context3: 0xa3,
} as const;

function lengthOctets(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  assert(bytes.length <= 4, "DER lengths above 4 GiB are not written");
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** Tag, length and the concatenated `parts` as contents. */
export function derTlv(tag: number, ...parts: readonly Uint8Array[]): Uint8Array {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const header = lengthOctets(length);
  const out = new Uint8Array(1 + header.length + length);
  out[0] = tag;
  out.set(header, 1);
  let offset = 1 + header.length;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function derSequence(...parts: readonly Uint8Array[]): Uint8Array {
  return derTlv(DER.sequence, ...parts);
}

/** A non-negative INTEGER from its big-endian magnitude (minimal; a 0 octet keeps it positive). */
export function derUnsignedInteger(magnitude: Uint8Array): Uint8Array {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const body = (trimmed[0] ?? 0) & 0x80 ? Uint8Array.of(0, ...trimmed) : trimmed;
  return derTlv(DER.integer, body.length === 0 ? Uint8Array.of(0) : body);
}

/** An OBJECT IDENTIFIER from its dotted form, e.g. "1.2.840.10045.4.3.3". */
export function derOid(dotted: string): Uint8Array {
  const arcs = dotted.split(".").map(Number);
  const [first, second, ...rest] = arcs;
  assert(first !== undefined && second !== undefined, `OID ${dotted} has fewer than two arcs`);
  assert(
    arcs.every((a) => Number.isSafeInteger(a) && a >= 0),
    `OID ${dotted} is malformed`,
  );
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const group: number[] = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) {
      group.unshift(0x80 | (v % 128));
    }
    bytes.push(...group);
  }
  return derTlv(DER.oid, Uint8Array.from(bytes));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, UTC. */
export function derTime(date: Date): Uint8Array {
  const year = date.getUTCFullYear();
  assert(year >= 1950 && year <= 9999, `certificate time ${date.toISOString()} out of range`);
  const two = (n: number) => String(n).padStart(2, "0");
  const rest =
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    "Z";
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  return year < 2050
    ? derTlv(DER.utcTime, ascii(two(year % 100) + rest))
    : derTlv(DER.generalizedTime, ascii(String(year) + rest));
}

/** A BIT STRING of whole octets (no unused bits). */
export function derBitString(octets: Uint8Array): Uint8Array {
  return derTlv(DER.bitString, Uint8Array.of(0), octets);
}
