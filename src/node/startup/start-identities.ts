/**
 * The identities a starting service needs (ccf-compatibility.md §2.2): a service key with its
 * self-signed CA certificate, and a node key whose certificate the service endorses. A node
 * creates these when it starts or recovers a service (newServiceIdentity in node-identity.ts);
 * the pipeline benchmark and tests use them too.
 */
import { type EcKeyPair } from "../../crypto/certs.js";
import { createServiceCertificate, endorseNodeCertificate } from "../../crypto/cert-issuance.js";
import { generateEcKeyPair, nodeIdFromPublicKey, type EcCurveName } from "../../crypto/identity.js";
import {
  serviceSigningIdentity,
  type NodeSigningIdentity,
  type ServiceSigningIdentity,
} from "../pipeline/tx-pipeline.js";

export interface StartIdentities {
  readonly serviceKeys: EcKeyPair;
  readonly serviceCertPem: string;
  readonly node: NodeSigningIdentity;
}

export interface StartIdentitiesOptions {
  readonly now: Date;
  readonly curve?: EcCurveName;
  /** Validity of both certificates unless the specific options below are given. */
  readonly validityDays?: number;
  readonly serviceValidityDays?: number;
  readonly nodeValidityDays?: number;
  readonly serviceSubject?: string;
  readonly nodeSubject?: string;
  readonly subjectAltNames?: readonly string[];
  /** Issuer and subject of the service's COSE signatures (CCF's default: both empty). */
  readonly coseSignatures?: ServiceSigningIdentity["coseSignatures"];
}

export async function createStartIdentities(
  options: StartIdentitiesOptions,
): Promise<StartIdentities> {
  const validityDays = options.validityDays ?? 365;
  const serviceKeys = generateEcKeyPair(options.curve);
  const serviceCertPem = await createServiceCertificate({
    keys: serviceKeys,
    validityDays,
    now: options.now,
  });
  const nodeKeys = generateEcKeyPair(options.curve);
  const certPem = await endorseNodeCertificate({
    servicePrivateKey: serviceKeys.privateKey,
    serviceCertPem,
    nodePublicKey: nodeKeys.publicKey,
    validityDays: options.nodeValidityDays ?? validityDays,
    now: options.now,
    ...(options.nodeSubject !== undefined ? { subject: options.nodeSubject } : {}),
    ...(options.subjectAltNames !== undefined ? { subjectAltNames: options.subjectAltNames } : {}),
  });
  const nodeId = nodeIdFromPublicKey(nodeKeys.publicKey);
  return {
    serviceKeys,
    serviceCertPem,
    node: {
      nodeId,
      privateKey: nodeKeys.privateKey,
      certPem,
      service: serviceSigningIdentity(serviceKeys.privateKey, options.coseSignatures),
    },
  };
}
