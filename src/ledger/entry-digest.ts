/**
 * What the ledger verifier needs of one entry (ccf-compatibility.md §6.4), computed apart from
 * the chain of roots so that it can run on other threads: the entry decoded and its seqno
 * checked, its Merkle leaf, the service certificate a service.info write names, and, for a
 * signature transaction, what it carries (node signature, COSE signature, serialised tree),
 * after checking that it writes nothing else (signature.ts: checkSignatureTxWrites).
 *
 * The node signature of a signature transaction can be checked here too, over the root it
 * claims (checkNodeSignature): the verifier then only has to find that the claimed root is the
 * recomputed one, and ECDSA, the costly part, runs where the entry was digested.
 *
 * Pure.
 */
import { fromHex, fromUtf8 } from "../base/bytes.js";
import { CcfError, isTextDecodeError } from "../base/errors.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import { SERVICE_TABLES } from "../kv/service-tables.js";
import type { MapWrites } from "../kv/write-set.js";
import { findCoseSignature } from "./cose-signature.js";
import { decodeEntryHeadAndMaps } from "./entry-format.js";
import type { SignatureChecker } from "./signature-checker.js";
import {
  checkSignatureTxWrites,
  findSerialisedTree,
  findSignature,
  type SignatureValue,
} from "./signature.js";
import { txLeafOfEntry } from "./tx-leaf.js";

/** What a signature transaction carries besides its entry. */
export interface SignatureTx {
  readonly value: SignatureValue;
  readonly txId: TxId;
  readonly cose: Uint8Array | null;
  readonly tree: Uint8Array | null;
  /**
   * The node signature checked over the claimed root where the entry was digested: what is
   * wrong with it, or null when it verifies. Absent: not checked yet.
   */
  readonly nodeSignature?: { readonly problem: string | null };
}

export interface EntryDigest {
  readonly kind: "digest";
  readonly seqno: Seqno;
  /** The entry's Merkle leaf (tx-leaf.ts). */
  readonly leaf: Uint8Array;
  readonly signature: SignatureTx | null;
  /**
   * The service certificate a service.info write in this entry names (null: it names none);
   * undefined when the entry does not write service.info.
   */
  readonly serviceCert: string | null | undefined;
}

export type EntryDigestOutcome =
  EntryDigest | { readonly kind: "invalid"; readonly reason: string };

/** Digests the entry that should be at `expected`; malformed bytes are an "invalid" outcome. */
export function digestEntry(bytes: Uint8Array, expected: Seqno): EntryDigestOutcome {
  try {
    const entry = decodeEntryHeadAndMaps(bytes);
    if (entry.seqno !== expected) {
      return { kind: "invalid", reason: `entry says seqno ${entry.seqno}` };
    }
    const txId = { view: entry.view, seqno: expected };
    return {
      kind: "digest",
      seqno: expected,
      leaf: txLeafOfEntry(sha256(bytes), bytes),
      signature: signatureTxOf(entry, txId),
      serviceCert: serviceCertOf(entry.publicMaps),
    };
  } catch (err: unknown) {
    // Malformed bytes are reported as typed errors (EntryError, CodecError, SignatureError,
    // CoseSignatureError); anything else is a bug, not a bad ledger.
    if (!(err instanceof CcfError)) throw err;
    return { kind: "invalid", reason: err.message };
  }
}

/**
 * The digest with its node signature checked over the root it claims (a malformed root is left
 * for the verifier to report). `serviceCertPem` as the verifier's option of that name.
 */
export function checkNodeSignature(
  digest: EntryDigest,
  checker: SignatureChecker,
  serviceCertPem: string | undefined,
): EntryDigest {
  const sig = digest.signature;
  if (sig === null) return digest;
  const claimed = fromHex(sig.value.root);
  if (claimed?.byteLength !== SHA256_BYTES) return digest;
  const problem = checker.check(sig.value, sig.txId, claimed, serviceCertPem);
  return { ...digest, signature: { ...sig, nodeSignature: { problem } } };
}

/**
 * The signature transaction's maps, or null for another transaction; throws CcfError, among
 * them SignatureError (UnexpectedWrite) for a signature transaction that writes anything but
 * its own maps: nothing covers such a write at the ledger's last signature (signature.ts).
 */
function signatureTxOf(
  entry: { readonly publicMaps: readonly MapWrites[]; readonly privateDomainBytes: number },
  txId: { view: View; seqno: Seqno },
) {
  const maps = entry.publicMaps;
  const value = findSignature(maps);
  if (value === null) return null;
  checkSignatureTxWrites({ seqno: txId.seqno, publicMaps: maps }, entry.privateDomainBytes);
  return { value, txId, cose: findCoseSignature(maps), tree: findSerialisedTree(maps) };
}

/** A service.info write names the service certificate in force from then on. */
function serviceCertOf(maps: readonly MapWrites[]): string | null | undefined {
  const value = maps.find((m) => m.name === SERVICE_TABLES.serviceInfo)?.writes[0]?.value;
  // A removal of service.info (never written by a service) leaves the certificate in force.
  if (value == null) return undefined;
  return certOfServiceInfo(value);
}

/** The certificate a stored service.info value names, or null when it names none. */
export function certOfServiceInfo(info: Uint8Array): string | null {
  try {
    const cert = (JSON.parse(fromUtf8(info)) as { cert?: unknown }).cert;
    return typeof cert === "string" ? cert : null;
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return null;
  }
}
