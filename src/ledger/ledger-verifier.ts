/**
 * Offline ledger verification, one entry at a time in seqno order (ccf-compatibility.md §6.4):
 * framing and public domain decode, the Merkle tree recomputed (CCF's: leaf 0 is 32 zero bytes,
 * seqno s is leaf s), and for every signature transaction a check that its root is the
 * recomputed root, that the node's ECDSA signature verifies with the certificate it names (whose
 * key must hash to the signing node id; optionally issued by a given service certificate), that
 * the tree it carries (`public:ccf.internal.tree`) has that root, and that its COSE signature
 * verifies with the key of the service certificate in force (service.info, as CCF's ledger
 * validator checks it).
 *
 * Pure: the CLI feeds it entries from ledger/io's reader and maps outcomes to file and offset.
 * Without the ledger secret the private domain cannot be decrypted, but every entry's bytes
 * are covered by its leaf (write_set_digest), so any altered byte breaks the next signature.
 *
 * Where it starts:
 * - `genesis`: seqno 1, everything checked. A Consortia 0.1 ledger (leaves numbered from seqno 1)
 *   is refused at its first signature with a LegacyFormatError.
 * - `snapshot`: after a snapshot at N whose tree state (leaves 0..N) the caller vouches for (its
 *   receipt verified): everything from N + 1 is checked as from genesis.
 * - `partial`: from seqno N with no tree state (ledger files missing at the front). The leaves
 *   are kept until the first signature that carries its tree: once that tree is checked against
 *   the signed root, the leaves it holds are compared with the recomputed ones and it becomes
 *   the tree every later root is checked against. Entries below the leaves it holds, and every
 *   entry when no signature carries a tree, are covered by no recomputed root; signatures before
 *   it are checked over the root they claim only. `coverage` says exactly that.
 */
import { equalBytes, fromHex, toHex } from "../base/bytes.js";
import type { Seqno } from "../base/ids.js";
import { SHA256_BYTES } from "../crypto/hash.js";
import { CoseSignatureChecker } from "./cose-signature.js";
import { digestEntry, type EntryDigest, type SignatureTx } from "./entry-digest.js";
import { newHistoryTree, treeAtSnapshot, type HistorySnapshotStart } from "./history.js";
import { LegacyFormatError, LegacyNumberingCheck } from "./legacy-format.js";
import type { MerkleTree } from "./merkle/merkle-tree.js";
import {
  decodeSerialisedTree,
  encodeSerialisedTree,
  SerialisedTreeError,
  serialisedTreeShape,
  type SerialisedTreeShape,
} from "./merkle/serialised-tree.js";
import { PackedHashes } from "./packed-hashes.js";
import { SignatureChecker } from "./signature-checker.js";

export type VerifyStep =
  | { readonly kind: "entry"; readonly seqno: Seqno }
  | { readonly kind: "signature"; readonly seqno: Seqno; readonly node: string }
  | { readonly kind: "invalid"; readonly seqno: Seqno; readonly reason: string };

/** Where verification starts (see the module comment). */
export type VerifierStart =
  | { readonly kind: "genesis" }
  | {
      readonly kind: "snapshot";
      /** The snapshot's seqno and tree (TxHistory.fromSnapshot's input). */
      readonly at: HistorySnapshotStart;
      /** The service certificate in the snapshot's service.info (null: none). */
      readonly serviceCertPem: string | null;
    }
  | { readonly kind: "partial"; readonly seqno: Seqno };

export interface LedgerVerifierOptions {
  /**
   * When set, every signing node certificate must be issued by this service certificate, and
   * COSE signatures are checked against it until service.info names the service's.
   */
  readonly serviceCertPem?: string | undefined;
  /** Default: genesis. */
  readonly start?: VerifierStart | undefined;
}

/** What the entries pushed so far were checked against, for the caller to report. */
export interface VerifierCoverage {
  /** The first seqno from which every entry is covered by a recomputed root, or null. */
  readonly rootsCheckedFrom: Seqno | null;
  /**
   * A partial check: the signature whose serialised tree became the state later roots are
   * checked against (vouched for by that signature alone), or null.
   */
  readonly treeTakenAt: Seqno | null;
  /** Entries no recomputed root covers (a partial check), or null. */
  readonly uncheckedEntries: { readonly from: Seqno; readonly to: Seqno } | null;
  /** Signatures checked only over the root they claim (a partial check, before a tree). */
  readonly signaturesOverClaimedRoots: number;
  readonly coseSignaturesChecked: number;
  /** COSE signatures not checked: no service certificate was known yet (see checkCose). */
  readonly coseSignaturesUnchecked: number;
  /** Signatures whose serialised tree was checked against the root. */
  readonly treesChecked: number;
}

export class LedgerVerifier {
  /** Invariant: null exactly while a partial check has no tree yet; else its size is last + 1. */
  private tree: MerkleTree | null;
  /** A partial check before its tree: the leaves of seqnos start..last (logical index seqno). */
  private pending: PackedHashes | null = null;
  private readonly legacy: LegacyNumberingCheck | null;
  private readonly start: Seqno;
  private readonly checker = new SignatureChecker();
  private readonly coseChecker = new CoseSignatureChecker();
  /** The service certificate in force: service.info as read so far. */
  private serviceCert: string | null;
  /** Invariant: start <= last + 1; entries start..last have been pushed and were valid. */
  private last: Seqno;
  // Invariant: the seqno of the last signature that verified, or start - 1 if none (the state
  // before the ledger's first entry is taken as given).
  private lastSigned: Seqno;
  /** The signature before the last verified one (start - 1 before there is one). */
  private previousSigned: Seqno;
  private signatures = 0;
  private counts = { overClaimed: 0, cose: 0, coseUnchecked: 0, trees: 0 };
  private rootsFrom: Seqno | null;
  private treeTakenAt: Seqno | null = null;

  constructor(private readonly options: LedgerVerifierOptions = {}) {
    const start = options.start ?? { kind: "genesis" };
    this.legacy = null;
    switch (start.kind) {
      case "genesis":
        this.tree = newHistoryTree();
        this.start = 1 as Seqno;
        this.serviceCert = options.serviceCertPem ?? null;
        this.legacy = new LegacyNumberingCheck();
        break;
      case "snapshot":
        // Throws SerialisedTreeError or LegacyFormatError for a tree it cannot use.
        this.tree = treeAtSnapshot(start.at);
        this.start = (start.at.seqno + 1) as Seqno;
        this.serviceCert = start.serviceCertPem ?? options.serviceCertPem ?? null;
        break;
      case "partial":
        this.tree = null;
        this.start = start.seqno;
        this.serviceCert = options.serviceCertPem ?? null;
        this.pending = new PackedHashes();
        // The first leaf recorded is that of `start`: logical indices are seqnos.
        this.pending.truncate(start.seqno);
        this.pending.dropBelow(start.seqno);
        break;
    }
    this.rootsFrom = this.tree === null ? null : this.start;
    this.last = (this.start - 1) as Seqno;
    this.lastSigned = this.last;
    this.previousSigned = this.last;
  }

  /** Seqno of the ledger's first entry. */
  get startSeqno(): Seqno {
    return this.start;
  }

  get lastVerifiedSeqno(): Seqno {
    return this.lastSigned;
  }

  /** Seqno of the last entry pushed (startSeqno - 1 before the first). */
  get lastSeqno(): Seqno {
    return this.last;
  }

  /** Entries pushed that were valid. */
  get entryCount(): number {
    return this.last - this.start + 1;
  }

  get signatureCount(): number {
    return this.signatures;
  }

  get coverage(): VerifierCoverage {
    const from = this.rootsFrom;
    const uncheckedTo = from === null ? this.last : from - 1;
    return {
      rootsCheckedFrom: from,
      treeTakenAt: this.treeTakenAt,
      uncheckedEntries:
        uncheckedTo >= this.start
          ? { from: this.start, to: Math.min(uncheckedTo, this.last) as Seqno }
          : null,
      signaturesOverClaimedRoots: this.counts.overClaimed,
      coseSignaturesChecked: this.counts.cose,
      coseSignaturesUnchecked: this.counts.coseUnchecked,
      treesChecked: this.counts.trees,
    };
  }

  /**
   * Checks the next entry (its seqno must be lastSeqno + 1). Throws LegacyFormatError at the
   * first signature of a Consortia 0.1 ledger.
   */
  push(bytes: Uint8Array): VerifyStep {
    const expected = (this.last + 1) as Seqno;
    const digest = digestEntry(bytes, expected);
    if (digest.kind === "invalid")
      return { kind: "invalid", seqno: expected, reason: digest.reason };
    return this.pushDigest(digest);
  }

  /**
   * Checks the next entry from its digest (digestEntry, which may have run on another thread
   * and checked a signature's node signature there). Same outcomes as push.
   */
  pushDigest(digest: EntryDigest): VerifyStep {
    const expected = (this.last + 1) as Seqno;
    if (digest.seqno !== expected) {
      return { kind: "invalid", seqno: expected, reason: `entry says seqno ${digest.seqno}` };
    }
    if (digest.serviceCert !== undefined) this.serviceCert = digest.serviceCert;
    const { signature, leaf } = digest;
    if (signature !== null) {
      const problem = this.checkSignature(signature);
      if (problem !== null) return { kind: "invalid", seqno: expected, reason: problem };
    }
    this.tree?.append(leaf);
    this.pending?.push(leaf);
    this.legacy?.append(leaf);
    this.last = expected;
    if (signature === null) return { kind: "entry", seqno: expected };
    this.legacy?.done();
    this.lastSigned = expected;
    this.signatures++;
    // Receipts are not built here: keep the leaves since the previous signature, which is
    // where the next signature's serialised tree usually starts (checkTree).
    this.tree?.compact(this.previousSigned);
    this.previousSigned = expected;
    return { kind: "signature", seqno: expected, node: signature.value.node };
  }

  /** What is wrong with a signature transaction, or null. */
  private checkSignature(sig: SignatureTx): string | null {
    const claimed = fromHex(sig.value.root);
    if (claimed?.byteLength !== SHA256_BYTES) return `signed root ${sig.value.root} is malformed`;
    const root = this.tree === null ? claimed : this.tree.root();
    if (this.tree !== null && !equalBytes(root, claimed)) {
      this.legacy?.checkMismatch(claimed, sig.txId.seqno, `signature ${sig.txId.seqno}`);
      return (
        `signed root ${sig.value.root} != recomputed root ${toHex(root)}: an entry in seqnos ` +
        `${this.lastSigned + 1}..${sig.txId.seqno - 1} or this signature was altered`
      );
    }
    // Checked over the claimed root where the entry was digested, if it was: the same root.
    const problem =
      sig.nodeSignature !== undefined
        ? sig.nodeSignature.problem
        : this.checker.check(sig.value, sig.txId, root, this.options.serviceCertPem);
    if (problem !== null) return problem;
    const treeProblem = this.tree === null ? this.adoptTree(sig, root) : this.checkTree(sig, root);
    return treeProblem ?? this.checkCose(sig, root);
  }

  /**
   * The serialised tree a signature carries must be the tree its root is the root of. The
   * verifier's own tree (whose root was just checked) still holds the leaves since the
   * signature before last, which is where a writer's tree usually starts (its commit point):
   * then the bytes must be exactly the verifier's tree serialised over the same range, a copy
   * and a compare. A tree starting earlier is decoded and its root recomputed.
   */
  private checkTree(sig: SignatureTx, root: Uint8Array): string | null {
    if (sig.tree === null) return null;
    const own = this.tree!;
    let shape: SerialisedTreeShape | null = null;
    try {
      shape = serialisedTreeShape(sig.tree);
    } catch (err: unknown) {
      if (!(err instanceof SerialisedTreeError || err instanceof LegacyFormatError)) throw err;
    }
    const to = sig.txId.seqno - 1;
    if (shape !== null && shape.fromIndex >= own.minIndex && shape.fromIndex <= to) {
      const expected = encodeSerialisedTree(own, { fromIndex: shape.fromIndex, toIndex: to });
      if (equalBytes(expected, sig.tree)) {
        this.counts.trees++;
        return null;
      }
    }
    // Another range, or bytes that differ: decode them to say what is wrong with them.
    const tree = decodeTree(sig.tree, sig.txId.seqno);
    if (typeof tree === "string") return tree;
    if (!equalBytes(tree.root(), root)) return "its serialised Merkle tree has another root";
    if (shape !== null && shape.fromIndex >= own.minIndex) {
      return "its serialised Merkle tree holds other leaves than the ledger's entries";
    }
    this.counts.trees++;
    return null;
  }

  /**
   * A partial check's first signature with a tree: that tree (its root checked against the
   * signed root) becomes the one later roots are checked against, once the leaves it holds
   * agree with the entries read so far. Without a tree the signature covers only its own root.
   */
  private adoptTree(sig: SignatureTx, root: Uint8Array): string | null {
    if (sig.tree === null) {
      this.counts.overClaimed++;
      return null;
    }
    const tree = decodeTree(sig.tree, sig.txId.seqno);
    if (typeof tree === "string") return tree;
    if (!equalBytes(tree.root(), root)) return "its serialised Merkle tree has another root";
    const pending = this.pending!;
    const from = Math.max(this.start, tree.minIndex);
    for (let seqno = from; seqno <= this.last; seqno++) {
      if (!equalBytes(tree.leaf(seqno), pending.view(seqno, 1))) {
        return `entry ${seqno} is not the one the tree of this signature holds (altered?)`;
      }
    }
    this.counts.trees++;
    this.tree = tree;
    this.pending = null;
    this.rootsFrom = from as Seqno;
    this.treeTakenAt = sig.txId.seqno;
    return null;
  }

  private checkCose(sig: SignatureTx, root: Uint8Array): string | null {
    if (sig.cose === null) return null;
    if (this.serviceCert === null) {
      // A service's genesis records its certificate before any signature; a partial check, or a
      // ledger that is not a service's (a test pipeline's), may not have seen it.
      this.counts.coseUnchecked++;
      return null;
    }
    const problem = this.coseChecker.check(sig.cose, {
      serviceCertPem: this.serviceCert,
      root,
      txId: sig.txId,
    });
    if (problem === null) this.counts.cose++;
    return problem;
  }
}

/** A signature's serialised tree, which must hold leaves up to seqno - 1; or what is wrong. */
function decodeTree(bytes: Uint8Array, seqno: Seqno): MerkleTree | string {
  let tree: MerkleTree;
  try {
    tree = decodeSerialisedTree(bytes);
  } catch (err: unknown) {
    // Consortia 0.1 never wrote a tree into a signature: bytes of that shape are just damaged.
    if (!(err instanceof SerialisedTreeError || err instanceof LegacyFormatError)) throw err;
    return err.message;
  }
  if (tree.size !== seqno) {
    return `its serialised Merkle tree ends at leaf ${tree.size - 1}, not ${seqno - 1}`;
  }
  return tree;
}
