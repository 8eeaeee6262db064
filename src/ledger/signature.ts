/**
 * Signature transactions (ccf-compatibility.md §6.4): every `sig_tx_interval` transactions or
 * `sig_ms_interval` ms, the primary writes, as CCF 6 does, three singleton maps:
 * - `public:ccf.internal.signatures`: the Merkle root over every entry before the signature's
 *   own seqno (leaf 0 included), signed by the node key as a prehashed SHA-256 digest, as the
 *   JSON {sig, node, hashed_nonce, seqno, view, commit_seqno, commit_view, root, cert}.
 *   Consortia records the real commit point known when signing;
 * - `public:ccf.internal.cose_signatures`: the service key's COSE_Sign1 over the same root
 *   (cose-signature.ts);
 * - `public:ccf.internal.tree`: the Merkle tree as CCF serialises it (merkle/serialised-tree.ts).
 * Commit points are signature transactions only. A transaction is a signature transaction when
 * it writes the signatures map; the other two are absent from ledgers CCF wrote before 6.
 *
 * A signature transaction writes nothing else (checkSignatureTxWrites): no other map, no other
 * key, no private domain. Its own bytes are covered only by the next signature's root, so
 * anything else it carried would be taken on trust at the last signature of a ledger. CCF's
 * deserialiser likewise refuses a signature transaction whose write set is not {signatures,
 * tree} or {signatures, tree, cose_signatures}; we also accept a missing tree or COSE signature
 * (a missing map adds nothing unchecked), see ccf-compatibility.md §6.4.
 */
import { CcfError, isTextDecodeError } from "../base/errors.js";
import { fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8, equalBytes } from "../base/bytes.js";
import type { NodeId, Seqno, TxId, View } from "../base/ids.js";
import { isHexId } from "../base/ids.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../kv/service-tables.js";
import type { MapWrites, WriteSet } from "../kv/write-set.js";

export interface SignatureValue {
  readonly sig: string;
  readonly node: NodeId;
  readonly hashed_nonce: string;
  readonly seqno: number;
  readonly view: number;
  readonly commit_seqno: number;
  readonly commit_view: number;
  readonly root: string;
  readonly cert: string;
}

export enum SignatureErrorCode {
  MalformedSignature = "MalformedSignature",
  /** A signature transaction writes something besides its own maps (checkSignatureTxWrites). */
  UnexpectedWrite = "UnexpectedWrite",
}
export type SignatureErrorType =
  | { code: SignatureErrorCode.MalformedSignature; field: string }
  | {
      code: SignatureErrorCode.UnexpectedWrite;
      /** The signature transaction's seqno. */
      seqno: number;
      /** The map written, or null for the private domain (whose map names are encrypted). */
      map: string | null;
    };
export class SignatureError extends CcfError<SignatureErrorType> {}

/** The only maps a signature transaction writes, each once at SINGLETON_KEY_BYTES. */
const SIGNATURE_TX_MAPS: ReadonlySet<string> = new Set([
  SERVICE_TABLES.signatures,
  SERVICE_TABLES.coseSignatures,
  SERVICE_TABLES.tree,
]);

/**
 * Checks that the signature transaction `tx` writes only its own maps, each exactly one value
 * at the singleton key, and that its private domain is empty (`privateDomainBytes`). Throws
 * SignatureError (UnexpectedWrite) naming the seqno and the first map that breaks this.
 */
export function checkSignatureTxWrites(
  tx: { readonly seqno: number; readonly publicMaps: readonly MapWrites[] },
  privateDomainBytes: number,
): void {
  const unexpected = (map: string | null, what: string): never => {
    throw new SignatureError(
      { code: SignatureErrorCode.UnexpectedWrite, seqno: tx.seqno, map },
      `signature transaction ${tx.seqno} ${what}; a signature transaction writes only ` +
        `${[...SIGNATURE_TX_MAPS].join(", ")}, one value each`,
    );
  };
  for (const map of tx.publicMaps) {
    if (!SIGNATURE_TX_MAPS.has(map.name)) unexpected(map.name, `writes map ${map.name}`);
    const write = map.writes[0];
    if (map.writes.length !== 1 || write === undefined) {
      unexpected(map.name, `writes ${map.writes.length} keys in ${map.name}`);
    } else if (!equalBytes(write.key, SINGLETON_KEY_BYTES)) {
      unexpected(map.name, `writes another key than the singleton in ${map.name}`);
    } else if (write.value === null) {
      unexpected(map.name, `removes the value of ${map.name}`);
    }
  }
  if (privateDomainBytes > 0)
    unexpected(null, `has a private domain of ${privateDomainBytes} bytes`);
}

/** What checkSignatureTxWrites finds wrong with `tx`, or null. */
export function signatureTxWritesProblem(
  tx: { readonly seqno: number; readonly publicMaps: readonly MapWrites[] },
  privateDomainBytes: number,
): string | null {
  try {
    checkSignatureTxWrites(tx, privateDomainBytes);
    return null;
  } catch (err: unknown) {
    if (!(err instanceof SignatureError)) throw err;
    return err.message;
  }
}

export interface SignatureInput {
  readonly txId: TxId;
  readonly commitTxId: TxId;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
  readonly nodeId: NodeId;
  readonly certPem: string;
  readonly hashedNonce: Uint8Array;
}

export function makeSignatureValue(input: SignatureInput): SignatureValue {
  return {
    sig: toBase64(input.signature),
    node: input.nodeId,
    hashed_nonce: toHex(input.hashedNonce),
    seqno: input.txId.seqno,
    view: input.txId.view,
    commit_seqno: input.commitTxId.seqno,
    commit_view: input.commitTxId.view,
    root: toHex(input.root),
    cert: input.certPem,
  };
}

/** The signatures map's value (JSON, as CCF stores it). */
export function encodeSignatureValue(value: SignatureValue): Uint8Array {
  return utf8(JSON.stringify(value));
}

/** What a signature transaction writes besides the node's signature (absent before CCF 6). */
export interface SignatureTxExtras {
  /** encodeCoseSignatureValue of the service's COSE_Sign1 (cose-signature.ts). */
  readonly coseSignature?: Uint8Array | undefined;
  /** encodeSerialisedTree of the tree before the signature (merkle/serialised-tree.ts). */
  readonly tree?: Uint8Array | undefined;
}

/** The write set of a signature transaction, maps in canonical (name) order. */
export function signatureWriteSet(value: SignatureValue, extras: SignatureTxExtras = {}): WriteSet {
  const singleton = (name: string, bytes: Uint8Array) => ({
    name,
    writes: [{ key: SINGLETON_KEY_BYTES, value: bytes }],
  });
  const maps = [singleton(SERVICE_TABLES.signatures, encodeSignatureValue(value))];
  if (extras.coseSignature !== undefined) {
    maps.unshift(singleton(SERVICE_TABLES.coseSignatures, extras.coseSignature));
  }
  if (extras.tree !== undefined) maps.push(singleton(SERVICE_TABLES.tree, extras.tree));
  return { maps };
}

/**
 * The serialised tree a transaction writes (a signature transaction of CCF 6), or null when it
 * writes none. Throws SignatureError for a removal.
 */
export function findSerialisedTree(publicMaps: readonly MapWrites[]): Uint8Array | null {
  const map = publicMaps.find((m) => m.name === SERVICE_TABLES.tree);
  if (map === undefined) return null;
  const write = map.writes.find((w) => equalBytes(w.key, SINGLETON_KEY_BYTES));
  if (write === undefined || write.value === null) bad("tree", "tree map without a value");
  return write.value;
}

function bad(field: string, why: string): never {
  throw new SignatureError(
    { code: SignatureErrorCode.MalformedSignature, field },
    `signature ${field}: ${why}`,
  );
}

function field<T>(obj: Record<string, unknown>, name: string, check: (v: unknown) => v is T): T {
  const v = obj[name];
  if (!check(v)) bad(name, "missing or wrong type");
  return v;
}

const isString = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Validates a decoded signatures-table value. Throws SignatureError naming the bad field. */
export function parseSignatureValue(json: unknown): SignatureValue {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    bad("value", "not an object");
  }
  const o = json as Record<string, unknown>;
  const value: SignatureValue = {
    sig: field(o, "sig", isString),
    node: field(o, "node", isString) as NodeId,
    hashed_nonce: field(o, "hashed_nonce", isString),
    seqno: field(o, "seqno", isCount),
    view: field(o, "view", isCount),
    commit_seqno: field(o, "commit_seqno", isCount),
    commit_view: field(o, "commit_view", isCount),
    root: field(o, "root", isString),
    cert: field(o, "cert", isString),
  };
  if (!isHexId(value.node)) bad("node", "not a 64-char hex id");
  if (fromHex(value.root)?.byteLength !== 32) bad("root", "not 32 bytes of hex");
  if (fromBase64(value.sig) === null) bad("sig", "not base64");
  if (!value.cert.includes("-----BEGIN CERTIFICATE-----")) bad("cert", "not a PEM certificate");
  return value;
}

/**
 * Finds the signature in a transaction's public maps. Returns null when the transaction is
 * not a signature transaction; throws SignatureError when the value is malformed.
 */
export function findSignature(publicMaps: readonly MapWrites[]): SignatureValue | null {
  const map = publicMaps.find((m) => m.name === SERVICE_TABLES.signatures);
  if (map === undefined) return null;
  const write = map.writes.find((w) => equalBytes(w.key, SINGLETON_KEY_BYTES));
  if (write === undefined || write.value === null) bad("value", "signatures table without a value");
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(write.value));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    bad("value", "not JSON");
  }
  return parseSignatureValue(json);
}

export function signatureTxId(value: SignatureValue): TxId {
  return { view: value.view as View, seqno: value.seqno as Seqno };
}
