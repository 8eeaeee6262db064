/**
 * Rewrites the signature transactions of a ledger consistently, as a signer that did things
 * differently would have written them: every signature re-signed (node key and, when kept, the
 * service's COSE signature) over the root recomputed from the rewritten entries before it, with
 * or without its serialised tree. Each rewritten signature changes its own leaf, so later roots
 * are recomputed as the ledger is rewritten.
 *
 * `legacyNumbering` gives a ledger as Consortia 0.1 wrote it: no leaf 0 (seqno s was leaf
 * s - 1), and neither COSE signatures nor serialised trees, which 0.1 did not write.
 */
import { toBase64, toHex } from "../../src/base/bytes.js";
import type { Seqno, View } from "../../src/base/ids.js";
import { signSign1Detached } from "../../src/crypto/cose.js";
import { signDigest } from "../../src/crypto/ecdsa.js";
import { sha256 } from "../../src/crypto/hash.js";
import {
  DEFAULT_COSE_SIGNATURES_CONFIG,
  encodeCoseSignatureValue,
  rootSignatureHeader,
} from "../../src/ledger/cose-signature.js";
import { decodeEntry } from "../../src/ledger/entry-format.js";
import { newHistoryTree } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import type { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import { MerkleTree } from "../../src/ledger/merkle/merkle-tree.js";
import { encodeSerialisedTree } from "../../src/ledger/merkle/serialised-tree.js";
import { findSignature } from "../../src/ledger/signature.js";
import { txLeaf } from "../../src/ledger/tx-leaf.js";
import type { StartIdentities } from "../../src/node/startup/start-identities.js";
import { resignEntry } from "./resign.js";

export interface ResealOptions {
  /** Consortia 0.1's ledger (see the module comment). */
  readonly legacyNumbering?: boolean;
  /** Whether the signature at `seqno` carries its serialised tree (default: all do). */
  readonly withTree?: (seqno: number) => boolean;
}

export function resealEntries(
  entries: readonly Uint8Array[],
  signer: { secrets: LedgerSecrets; identities: StartIdentities },
  options: ResealOptions = {},
): Uint8Array[] {
  const legacy = options.legacyNumbering === true;
  const tree = legacy ? new MerkleTree() : newHistoryTree();
  const { node, serviceKeys } = signer.identities;
  return entries.map((bytes) => {
    const decoded = decodeEntry(bytes);
    const sig = findSignature(decoded.publicMaps);
    let out = bytes;
    if (sig !== null) {
      const root = tree.root();
      const value = { ...sig, root: toHex(root), sig: toBase64(signDigest(node.privateKey, root)) };
      const txId = { view: decoded.view as View, seqno: decoded.seqno as Seqno };
      const header = rootSignatureHeader({
        keyId: node.service.keyId,
        txId,
        issuedAtSeconds: 1_700_000_000,
        config: DEFAULT_COSE_SIGNATURES_CONFIG,
      });
      const cose = encodeCoseSignatureValue(
        signSign1Detached(serviceKeys.privateKey, header, root),
      );
      const keepTree = !legacy && (options.withTree?.(decoded.seqno) ?? true);
      const fromIndex = Math.max(tree.minIndex, Math.min(sig.commit_seqno, tree.size - 1));
      out = resignEntry(signer.secrets, bytes, {
        value,
        coseSignature: legacy ? null : cose,
        tree: keepTree ? encodeSerialisedTree(tree, { fromIndex, toIndex: tree.size - 1 }) : null,
      });
    }
    const entry = decodeEntry(out);
    tree.append(txLeaf(sha256(out), entry.commitEvidenceDigest, entry.claimsDigest));
    return out;
  });
}

/** Writes `entries` (seqnos 1..n) as a committed ledger in `dir`, chunks ending on signatures. */
export function writeLedgerDir(dir: string, entries: readonly Uint8Array[]): void {
  const writer = LedgerWriter.open(dir, { chunkSizeBytes: 8192 });
  let lastSignature = 0;
  entries.forEach((bytes, index) => {
    const isSignature = findSignature(decodeEntry(bytes).publicMaps) !== null;
    writer.append(bytes, { seqno: index + 1, isSignature });
    if (isSignature) lastSignature = index + 1;
  });
  writer.sync();
  if (lastSignature > 0) writer.commit(lastSignature);
  writer.close();
}
