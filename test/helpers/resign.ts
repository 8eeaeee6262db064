/**
 * Re-encodes a signature transaction with some of its maps changed, validly framed and encrypted
 * with the ledger secrets, as an attacker holding the secrets (or a buggy signer) could write
 * it: tests of the verifier and the recovery replay use it to tamper with one field at a time,
 * or to add writes a signature transaction never makes (withExtraWrites).
 */
import type { TxId } from "../../src/base/ids.js";
import { SERVICE_TABLES } from "../../src/kv/service-tables.js";
import { compareNames, type MapWrites } from "../../src/kv/write-set.js";
import { decodeEntry, decodeWriteSet, encodeEntry } from "../../src/ledger/entry-format.js";
import type { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import {
  findSignature,
  signatureWriteSet,
  type SignatureValue,
} from "../../src/ledger/signature.js";

export interface SignatureChanges {
  /** The new signatures value (default: the entry's own). */
  readonly value?: SignatureValue;
  /** The new cose_signatures map value; null drops the map (default: keep). */
  readonly coseSignature?: Uint8Array | null;
  /** The new tree map value; null drops the map (default: keep). */
  readonly tree?: Uint8Array | null;
}

export function resignEntry(
  secrets: LedgerSecrets,
  entry: Uint8Array,
  changes: SignatureChanges,
): Uint8Array {
  const decoded = decodeEntry(entry);
  const txId: TxId = { view: decoded.view, seqno: decoded.seqno };
  const own = (name: string) =>
    decoded.publicMaps.find((m) => m.name === name)?.writes[0]?.value ?? undefined;
  const pick = (change: Uint8Array | null | undefined, name: string) =>
    change === null ? undefined : (change ?? own(name));
  const value = changes.value ?? findSignature(decoded.publicMaps);
  if (value === null) throw new Error(`seqno ${txId.seqno} is not a signature transaction`);
  const writeSet = signatureWriteSet(value, {
    coseSignature: pick(changes.coseSignature, SERVICE_TABLES.coseSignatures),
    tree: pick(changes.tree, SERVICE_TABLES.tree),
  });
  return encodeEntry(
    { txId, writeSet, commitEvidenceDigest: decoded.commitEvidenceDigest },
    secrets,
  );
}

/**
 * The entry with `extra` maps added to its write set (public or private, in canonical order),
 * everything else kept: its digests, and so its leaf's other components.
 */
export function withExtraWrites(
  secrets: LedgerSecrets,
  entry: Uint8Array,
  extra: readonly MapWrites[],
): Uint8Array {
  const decoded = decodeEntry(entry);
  const writeSet = decodeWriteSet(decoded, secrets);
  if (writeSet === null) throw new Error(`seqno ${decoded.seqno} does not decrypt`);
  const maps = [...writeSet.maps, ...extra].sort((a, b) => compareNames(a.name, b.name));
  return encodeEntry(
    {
      txId: { view: decoded.view, seqno: decoded.seqno },
      writeSet: { maps },
      commitEvidenceDigest: decoded.commitEvidenceDigest,
      claimsDigest: decoded.claimsDigest,
    },
    secrets,
  );
}
