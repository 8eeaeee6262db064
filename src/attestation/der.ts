/**
 * A small reader of DER (ITU-T X.690), enough to read the extensions of an X.509 certificate:
 * node:crypto's X509Certificate does not expose extensions it does not know, and AMD's chip
 * certificates carry the TCB levels and the chip id in private ones (1.3.6.1.4.1.3704.…).
 *
 * Only definite lengths (DER has no other), at most 4 length bytes, and single-byte tags. Every
 * read is bounds-checked; malformed input throws DerError. No IO.
 */
import { CcfError } from "../base/errors.js";

export enum DerErrorCode {
  MalformedDer = "MalformedDer",
}
export type DerErrorType = { code: DerErrorCode };
export class DerError extends CcfError<DerErrorType> {}

export const DER_TAG = {
  boolean: 0x01,
  integer: 0x02,
  octetString: 0x04,
  oid: 0x06,
  sequence: 0x30,
  /** [3] EXPLICIT, constructed: where a TBSCertificate keeps its extensions. */
  extensions: 0xa3,
} as const;

export interface DerNode {
  tag: number;
  /** The contents octets (a view into the input). */
  value: Uint8Array;
}

function malformed(message: string): never {
  throw new DerError({ code: DerErrorCode.MalformedDer }, `malformed DER: ${message}`);
}

/** The TLV at `offset`, and the offset just past it. */
function readTlv(bytes: Uint8Array, offset: number): { node: DerNode; end: number } {
  if (offset + 2 > bytes.length) malformed("truncated header");
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) malformed("multi-byte tags are not supported");
  let length = bytes[offset + 1]!;
  let start = offset + 2;
  if (length >= 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4) malformed(`unsupported length of ${count} bytes`);
    if (start + count > bytes.length) malformed("truncated length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i]!;
    start += count;
  }
  const end = start + length;
  if (end > bytes.length) malformed(`value of ${length} bytes overruns its container`);
  return { node: { tag, value: bytes.subarray(start, end) }, end };
}

/** The one TLV `bytes` must consist of. */
export function readDer(bytes: Uint8Array): DerNode {
  const { node, end } = readTlv(bytes, 0);
  if (end !== bytes.length) malformed(`${bytes.length - end} bytes after the value`);
  return node;
}

/** The TLVs that make up a constructed value's contents, in order. */
export function derChildren(node: DerNode): DerNode[] {
  const children: DerNode[] = [];
  let offset = 0;
  while (offset < node.value.length) {
    const { node: child, end } = readTlv(node.value, offset);
    children.push(child);
    offset = end;
  }
  return children;
}

export function expectTag(node: DerNode, tag: number, what: string): DerNode {
  if (node.tag !== tag) malformed(`${what} has tag 0x${node.tag.toString(16)}`);
  return node;
}

/** An OBJECT IDENTIFIER's contents as dotted decimal. */
export function decodeOid(value: Uint8Array): string {
  if (value.length === 0) malformed("empty object identifier");
  const arcs: number[] = [];
  let arc = 0;
  for (const byte of value) {
    arc = arc * 128 + (byte & 0x7f);
    if (arc > Number.MAX_SAFE_INTEGER / 128) malformed("object identifier arc too large");
    if ((byte & 0x80) === 0) {
      arcs.push(arc);
      arc = 0;
    }
  }
  if ((value[value.length - 1]! & 0x80) !== 0) malformed("truncated object identifier");
  const first = arcs[0]!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join(".");
}

/** A non-negative INTEGER's contents (at most 6 bytes, so a safe number). */
export function decodeSmallUint(value: Uint8Array): number {
  if (value.length === 0 || value.length > 6) malformed("integer of unsupported size");
  if ((value[0]! & 0x80) !== 0) malformed("negative integer");
  let n = 0;
  for (const byte of value) n = n * 256 + byte;
  return n;
}

/**
 * The extensions of a DER certificate, by dotted OID, each the contents of its extnValue OCTET
 * STRING. A certificate without extensions gives an empty map.
 */
export function certificateExtensions(certDer: Uint8Array): Map<string, Uint8Array> {
  const cert = expectTag(readDer(certDer), DER_TAG.sequence, "certificate");
  const tbs = derChildren(cert)[0];
  if (tbs === undefined) malformed("certificate without a TBSCertificate");
  expectTag(tbs, DER_TAG.sequence, "TBSCertificate");
  const wrapper = derChildren(tbs).find((child) => child.tag === DER_TAG.extensions);
  const extensions = new Map<string, Uint8Array>();
  if (wrapper === undefined) return extensions;
  const list = expectTag(readDer(wrapper.value), DER_TAG.sequence, "extensions");
  for (const extension of derChildren(list)) {
    const parts = derChildren(expectTag(extension, DER_TAG.sequence, "extension"));
    const oid = decodeOid(
      expectTag(parts[0] ?? malformed("empty extension"), DER_TAG.oid, "extnID").value,
    );
    const last = parts[parts.length - 1]!;
    expectTag(last, DER_TAG.octetString, "extnValue");
    if (extensions.has(oid)) malformed(`extension ${oid} appears twice`);
    extensions.set(oid, last.value);
  }
  return extensions;
}
