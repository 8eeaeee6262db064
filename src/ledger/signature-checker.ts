/**
 * Checks a signature transaction's node signature (ccf-compatibility.md §6.4): that it names its
 * own txId, that the signing certificate holds an EC key hashing to the signing node id (and,
 * when given, is issued by the service certificate), and that the DER ECDSA signature verifies
 * over the root as a prehashed SHA-256 digest. Used by the offline verifier and the recovery
 * replay. Pure.
 */
import { fromBase64, toHex } from "../base/bytes.js";
import type { TxId } from "../base/ids.js";
import { CertError } from "../crypto/certs.js";
import { ecdsaCurveOf, verifyDigest } from "../crypto/ecdsa.js";
import { publicKeyOfCert, nodeIdFromPublicKey, isIssuedBy } from "../crypto/identity.js";
import type { SignatureValue } from "./signature.js";

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
