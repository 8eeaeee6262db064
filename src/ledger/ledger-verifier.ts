/**
 * Offline ledger verification, one entry at a time in seqno order: framing and public domain
 * decode, Merkle tree recomputation, and for every signature transaction a check that its root
 * is the recomputed root and that its ECDSA signature verifies with the certificate it names
 * (whose key must hash to the signing node id). Optionally, each signing certificate must be
 * issued by a given service certificate.
 *
 * Pure: the CLI feeds it entries from ledger/io's reader and maps outcomes to file and offset.
 * Without the ledger secret the private domain cannot be decrypted, but every entry's bytes
 * are covered by its leaf (write_set_digest), so any altered byte breaks the next signature.
 *
 * A ledger written after a snapshot at N starts at N + 1. A signed root covers leaves 1..seqno,
 * so roots can be recomputed only from the tree state at N: pass its Merkle frontier (a
 * snapshot's, MerkleTree.frontier()) as `startFrontier`. Without it, `startSeqno: N + 1`
 * verifies in "roots unchecked" mode:
 * decode, seqno continuity, and each signature's fields, certificate and ECDSA signature over
 * the root it claims, but not that this root is the root of the entries, so altered ordinary
 * entries go unnoticed there (`rootsChecked` is false; callers must say so).
 */
import { fromBase64, fromHex, toHex, equalBytes } from "../base/bytes.js";
import { CcfError } from "../base/errors.js";
import type { Seqno, TxId, View } from "../base/ids.js";
import { CertError } from "../crypto/certs.js";
import { ecdsaCurveOf, verifyDigest } from "../crypto/ecdsa.js";
import { SHA256_BYTES, sha256 } from "../crypto/hash.js";
import { publicKeyOfCert, nodeIdFromPublicKey, isIssuedBy } from "../crypto/identity.js";
import { decodeEntry } from "./entry-format.js";
import { MerkleTree } from "./merkle/merkle-tree.js";
import { findSignature, type SignatureValue } from "./signature.js";
import { txLeaf } from "./tx-leaf.js";

export type VerifyStep =
  | { readonly kind: "entry"; readonly seqno: Seqno }
  | { readonly kind: "signature"; readonly seqno: Seqno; readonly node: string }
  | { readonly kind: "invalid"; readonly seqno: Seqno; readonly reason: string };

export interface LedgerVerifierOptions {
  /** When set, every signing certificate must be issued by this service certificate. */
  readonly serviceCertPem?: string | undefined;
  /**
   * Merkle frontier (MerkleTree.frontier()) of the tree before the ledger's first entry: size N
   * for a ledger starting at N + 1. Roots are then checked from N + 1 on. The frontier is taken
   * as given (a snapshot's evidence vouches for it); malformed bytes throw MerkleError.
   */
  readonly startFrontier?: Uint8Array | undefined;
  /**
   * Seqno of the ledger's first entry (default 1, or the frontier's size + 1, which it must
   * equal). Above 1 without a startFrontier, roots are not checked (see the module comment).
   */
  readonly startSeqno?: number | undefined;
}

export class LedgerVerifier {
  /** Invariant: null exactly when roots are not checked; else its size is lastSeqno. */
  private readonly tree: MerkleTree | null;
  private readonly start: Seqno;
  private readonly checker = new SignatureChecker();
  /** Invariant: start <= last + 1; entries start..last have been pushed and were valid. */
  private last: Seqno;
  // Invariant: the seqno of the last signature that verified, or start - 1 if none (the state
  // before the ledger's first entry is taken as given).
  private lastSigned: Seqno;
  private signatures = 0;

  constructor(private readonly options: LedgerVerifierOptions = {}) {
    const { startFrontier, startSeqno } = options;
    const startTree = startFrontier === undefined ? null : MerkleTree.fromFrontier(startFrontier);
    const start = startSeqno ?? (startTree === null ? 1 : startTree.size + 1);
    if (!Number.isSafeInteger(start) || start < 1) {
      throw new RangeError(`startSeqno must be an integer >= 1, got ${start}`);
    }
    if (startTree !== null && startTree.size !== start - 1) {
      throw new RangeError(
        `start frontier has ${startTree.size} leaves, a ledger starting at seqno ${start} ` +
          `needs ${start - 1}`,
      );
    }
    this.tree = startTree ?? (start === 1 ? new MerkleTree() : null);
    this.start = start as Seqno;
    this.last = (start - 1) as Seqno;
    this.lastSigned = this.last;
  }

  /** Whether signed roots are checked against the entries (false: see the module comment). */
  get rootsChecked(): boolean {
    return this.tree !== null;
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

  /** Checks the next entry (its seqno must be lastSeqno + 1). */
  push(bytes: Uint8Array): VerifyStep {
    const expected = (this.last + 1) as Seqno;
    let signature: SignatureValue | null;
    let leaf: Uint8Array;
    let view: View;
    try {
      const entry = decodeEntry(bytes);
      if (entry.seqno !== expected) {
        return { kind: "invalid", seqno: expected, reason: `entry says seqno ${entry.seqno}` };
      }
      signature = findSignature(entry.publicMaps);
      view = entry.view;
      leaf = txLeaf(sha256(bytes), entry.commitEvidenceDigest, entry.claimsDigest);
    } catch (err: unknown) {
      // Malformed bytes are reported as typed errors (EntryError, CodecError, SignatureError);
      // anything else is a bug in the verifier and must not be reported as a bad ledger.
      if (!(err instanceof CcfError)) throw err;
      return { kind: "invalid", seqno: expected, reason: err.message };
    }
    if (signature !== null) {
      const problem = this.checkSignature(signature, { view, seqno: expected });
      if (problem !== null) return { kind: "invalid", seqno: expected, reason: problem };
    }
    this.tree?.append(leaf);
    this.last = expected;
    if (signature === null) return { kind: "entry", seqno: expected };
    this.lastSigned = expected;
    this.signatures++;
    // Receipts are not built here: keep only what the next root needs.
    this.tree?.compact(this.tree.size - 1);
    return { kind: "signature", seqno: expected, node: signature.node };
  }

  private checkSignature(sig: SignatureValue, txId: TxId): string | null {
    const root = this.signedRoot(sig, txId.seqno);
    if (typeof root === "string") return root;
    return this.checker.check(sig, txId, root, this.options.serviceCertPem);
  }

  /** The root the signature must sign, or what is wrong with the one it claims. */
  private signedRoot(sig: SignatureValue, seqno: Seqno): Uint8Array | string {
    const claimed = fromHex(sig.root);
    if (this.tree === null) {
      // No tree to recompute from: only the claimed root's format can be checked.
      return claimed?.byteLength === SHA256_BYTES
        ? claimed
        : `signed root ${sig.root} is malformed`;
    }
    if (this.tree.size === 0) return "signature before any entry";
    const root = this.tree.root();
    if (!equalBytes(root, claimed ?? new Uint8Array(0))) {
      return (
        `signed root ${sig.root} != recomputed root ${toHex(root)}: an entry in seqnos ` +
        `${this.lastSigned + 1}..${seqno - 1} or this signature was altered`
      );
    }
    return root;
  }
}

/**
 * Checks one signature transaction's value: that it names its own txId, that its certificate
 * holds an EC key hashing to the signing node id (and, when given, is issued by the service
 * certificate), and that its ECDSA signature verifies over `root`. Certificates that passed are
 * remembered, so a long ledger parses each node's certificate once.
 */
export class SignatureChecker {
  /** cert PEM + service cert PEM -> the node id its key hashes to. */
  private readonly trustedCerts = new Map<string, string>();

  /** What is wrong with `sig` at `txId` over `root`, or null when it verifies. */
  check(sig: SignatureValue, txId: TxId, root: Uint8Array, serviceCertPem?: string): string | null {
    if (sig.seqno !== txId.seqno) return `signature claims seqno ${sig.seqno}`;
    // The signed root does not cover the signature's own fields: check what the entry fixes.
    if (sig.view !== txId.view) {
      return `signature claims view ${sig.view}, but its entry is in view ${txId.view}`;
    }
    const certProblem = this.checkCert(sig, serviceCertPem);
    if (certProblem !== null) return certProblem;
    const key = publicKeyOfCert(sig.cert);
    if (!verifyDigest(key, root, fromBase64(sig.sig) ?? new Uint8Array(0))) {
      return `signature by node ${sig.node} does not verify over root ${toHex(root)}`;
    }
    return null;
  }

  private checkCert(sig: SignatureValue, service: string | undefined): string | null {
    const cacheKey = service === undefined ? sig.cert : `${sig.cert}\n${service}`;
    const known = this.trustedCerts.get(cacheKey);
    if (known !== undefined) {
      return known === sig.node ? null : `cert does not belong to node ${sig.node}`;
    }
    let nodeId: string;
    try {
      const key = publicKeyOfCert(sig.cert);
      // verifyDigest throws for other key types: a cert with, say, an Ed25519 key is a bad
      // signature to report, not a crash of the verifier.
      if (ecdsaCurveOf(key) === null) return "signature cert key is not an EC P-256 or P-384 key";
      nodeId = nodeIdFromPublicKey(key);
    } catch (err: unknown) {
      if (!(err instanceof CertError)) throw err;
      return "signature cert is not a valid certificate";
    }
    if (nodeId !== sig.node) return `cert key hashes to ${nodeId}, not signing node ${sig.node}`;
    if (service !== undefined && !isIssuedBy(sig.cert, service)) {
      return `signing cert of node ${sig.node} is not issued by the service certificate`;
    }
    this.trustedCerts.set(cacheKey, nodeId);
    return null;
  }
}
