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

const TX_ID_RE = /^(\d{1,15})\.(\d{1,15})$/;

/** Parses "view.seqno"; returns null for anything else (callers turn that into a 400). */
export function parseTxId(text: string): TxId | null {
  const match = TX_ID_RE.exec(text);
  if (match === null) return null;
  return txId(Number(match[1]), Number(match[2]));
}

const ID_RE = /^[a-f0-9]{64}$/;

export function isHexId(text: string): boolean {
  return ID_RE.test(text);
}
