/**
 * What a signature transaction holds (ledger/signature.ts, ccf-compatibility.md §6.4): the
 * node's signature over the Merkle root of every earlier entry, the service's COSE signature
 * over the same root, and the tree as CCF serialises it from the commit point on. The pipeline
 * decides when to sign (tx-pipeline.ts); this module only writes the maps.
 */
import type { KeyObject } from "node:crypto";
import type { NodeId, TxId } from "../../base/ids.js";
import { signDigest } from "../../crypto/ecdsa.js";
import { signSign1Detached } from "../../crypto/cose.js";
import { publicKeyId } from "../../crypto/identity.js";
import type { Tx } from "../../kv/tx.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../kv/service-tables.js";
import type { TxHistory } from "../../ledger/history.js";
import { encodeSignatureValue, makeSignatureValue } from "../../ledger/signature.js";
import {
  DEFAULT_COSE_SIGNATURES_CONFIG,
  encodeCoseSignatureValue,
  rootSignatureHeader,
  type CoseSignaturesConfig,
} from "../../ledger/cose-signature.js";

/** What a node signs signature transactions with: its own key, and the service's. */
export interface NodeSigningIdentity {
  readonly nodeId: NodeId;
  readonly privateKey: KeyObject;
  /** PEM of the node certificate (endorsed by the service), recorded in signatures. */
  readonly certPem: string;
  /** The service key and CCF's cose_signatures settings, for the COSE signature of each root. */
  readonly service: ServiceSigningIdentity;
}

/** CCF's "service signing identity": the service key the COSE signatures of roots are made with. */
export interface ServiceSigningIdentity {
  readonly privateKey: KeyObject;
  /** publicKeyId of the service key: the COSE `kid`. */
  readonly keyId: string;
  readonly coseSignatures: CoseSignaturesConfig;
}

/** The service signing identity of a service key, with CCF's default issuer and subject. */
export function serviceSigningIdentity(
  privateKey: KeyObject,
  coseSignatures: CoseSignaturesConfig = DEFAULT_COSE_SIGNATURES_CONFIG,
): ServiceSigningIdentity {
  return { privateKey, keyId: publicKeyId(privateKey), coseSignatures };
}

export interface SignatureTxInput {
  readonly txId: TxId;
  /** The commit point the signature records (and the serialised tree starts from). */
  readonly commitTxId: TxId;
  readonly history: TxHistory;
  readonly identity: NodeSigningIdentity;
  /** Wall-clock seconds for the COSE signature's `iat`. */
  readonly issuedAtSeconds: number;
}

/** Writes the maps of a signature transaction at `input.txId` into `tx`. */
export function writeSignatureMaps(tx: Tx, input: SignatureTxInput): void {
  const { txId, history, identity } = input;
  const root = history.rootForNextSignature();
  const value = makeSignatureValue({
    txId,
    commitTxId: input.commitTxId,
    root,
    signature: signDigest(identity.privateKey, root),
    nodeId: identity.nodeId,
    certPem: identity.certPem,
    hashedNonce: history.secrets.commitEvidenceDigest(txId),
  });
  const service = identity.service;
  const header = rootSignatureHeader({
    keyId: service.keyId,
    txId,
    issuedAtSeconds: input.issuedAtSeconds,
    config: service.coseSignatures,
  });
  const cose = signSign1Detached(service.privateKey, header, root);
  tx.rw(SERVICE_TABLES.signatures).set(SINGLETON_KEY_BYTES, encodeSignatureValue(value));
  tx.rw(SERVICE_TABLES.coseSignatures).set(SINGLETON_KEY_BYTES, encodeCoseSignatureValue(cose));
  const tree = history.serialisedTreeForSignature(input.commitTxId.seqno);
  tx.rw(SERVICE_TABLES.tree).set(SINGLETON_KEY_BYTES, tree);
}
