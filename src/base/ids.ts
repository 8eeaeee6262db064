/**
 * Identifiers used everywhere (docs/glossary.md): view (= Raft term), seqno (= Raft log index,
 * 1-based), txId = view.seqno. Member, user and node ids are lowercase hex SHA-256 strings.
 */

export type View = number & { readonly __brand: "View" };
export type Seqno = number & { readonly __brand: "Seqno" };

export interface TxId {
  readonly view: View;
  readonly seqno: Seqno;
}

export type NodeId = string & { readonly __brand: "NodeId" };
export type MemberId = string & { readonly __brand: "MemberId" };
export type UserId = string & { readonly __brand: "UserId" };

export function view(n: number): View {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid view: ${n}`);
  return n as View;
}

export function seqno(n: number): Seqno {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid seqno: ${n}`);
  return n as Seqno;
}

export function txId(v: number, s: number): TxId {
  return { view: view(v), seqno: seqno(s) };
}

export function formatTxId(id: TxId): string {
  return `${id.view}.${id.seqno}`;
}

/** One canonical decimal u53: digits only, no sign, exponent, fraction or leading zero. */
const CANONICAL_INT_RE = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Parses a view, seqno or other count written as canonical decimal digits ("0", "42"); null for
 * anything else ("1e3", "1.0", "-0", "+1", "007", " 1") and for values JS numbers do not hold
 * exactly. The one parser for ids in text (query parameters, headers, path parameters).
 */
export function parseCanonicalInt(text: string): number | null {
  if (!CANONICAL_INT_RE.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

/** Parses "view.seqno", each part canonical decimal; returns null for anything else. */
export function parseTxId(text: string): TxId | null {
  // Callers pass header values, which a loosely typed caller may leave undefined.
  if (typeof text !== "string") return null;
  const dot = text.indexOf(".");
  if (dot < 0) return null;
  const v = parseCanonicalInt(text.slice(0, dot));
  const s = parseCanonicalInt(text.slice(dot + 1));
  if (v === null || s === null) return null;
  return txId(v, s);
}

/**
 * Whether `id` can name a transaction at all: CCF has no transactions in view 0 and none at
 * seqno 0, so such ids are refused as invalid input rather than given a status.
 */
export function isPossibleTxId(id: TxId): boolean {
  return id.view >= 1 && id.seqno >= 1;
}

const ID_RE = /^[a-f0-9]{64}$/;

export function isHexId(text: string): boolean {
  return ID_RE.test(text);
}
