/**
 * Test fixtures for identities and receipts: a service CA with an endorsed node identity, a
 * naive Merkle tree (built level by level, independently of src/ledger/merkle), and receipts
 * signed by the node. Leaves and tree hashes use node's createHash directly so that the receipt
 * code under test is checked against an independent computation of CCF's formulas:
 *   leaf = H(write_set_digest || H(commit_evidence) || claims_digest), node = H(left || right),
 *   an odd last node is promoted unchanged (left-balanced tree).
 */
import { createHash, type KeyObject } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EcKeyPair } from "../../src/crypto/certs.js";
import {
  createServiceCertificate,
  endorseNodeCertificate,
} from "../../src/crypto/cert-issuance.js";
import {
  generateEcKeyPair,
  nodeIdFromPublicKey,
  type EcCurveName,
} from "../../src/crypto/identity.js";
import { signDigest } from "../../src/crypto/ecdsa.js";
import { buildReceipt, type Receipt } from "../../src/ledger/receipt.js";

export interface TestPki {
  readonly serviceKeys: EcKeyPair;
  readonly serviceCertPem: string;
  readonly nodeKeys: EcKeyPair;
  readonly nodeCertPem: string;
  readonly nodeId: string;
}

/** A service CA and one node endorsed by it, valid from `now` (real time: openssl checks it). */
export async function makePki(
  options: { curve?: EcCurveName; now?: Date; subject?: string } = {},
): Promise<TestPki> {
  const now = options.now ?? new Date();
  const serviceKeys = generateEcKeyPair(options.curve);
  const serviceCertPem = await createServiceCertificate({
    keys: serviceKeys,
    validityDays: 30,
    now,
    ...(options.subject !== undefined ? { subject: options.subject } : {}),
  });
  const nodeKeys = generateEcKeyPair(options.curve);
  const nodeCertPem = await endorseNodeCertificate({
    servicePrivateKey: serviceKeys.privateKey,
    serviceCertPem,
    nodePublicKey: nodeKeys.publicKey,
    validityDays: 30,
    now,
  });
  return {
    serviceKeys,
    serviceCertPem,
    nodeKeys,
    nodeCertPem,
    nodeId: nodeIdFromPublicKey(nodeKeys.publicKey),
  };
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const part of parts) h.update(part);
  return new Uint8Array(h.digest());
}

export interface TestLeaf {
  readonly writeSetDigest: Uint8Array;
  readonly commitEvidence: string;
  readonly claimsDigest: Uint8Array;
}

/** Deterministic leaf components for transaction `seqno` in view 2. */
export function testLeaf(seqno: number): TestLeaf {
  const nonce = sha256(new TextEncoder().encode(`nonce ${seqno}`));
  return {
    writeSetDigest: sha256(new TextEncoder().encode(`write set ${seqno}`)),
    commitEvidence: `ce:2.${seqno}:${Buffer.from(nonce).toString("hex")}`,
    claimsDigest:
      seqno % 2 === 0 ? new Uint8Array(32) : sha256(new TextEncoder().encode(`claims ${seqno}`)),
  };
}

export function leafHash(leaf: TestLeaf): Uint8Array {
  return sha256(
    leaf.writeSetDigest,
    sha256(new TextEncoder().encode(leaf.commitEvidence)),
    leaf.claimsDigest,
  );
}

/** All levels of the tree, leaves first, root level last. */
export function merkleLevels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  const levels: Uint8Array[][] = [[...leaves]];
  while (levels[levels.length - 1]!.length > 1) {
    const level = levels[levels.length - 1]!;
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? sha256(level[i]!, level[i + 1]!) : level[i]!);
    }
    levels.push(next);
  }
  return levels;
}

export type TestProofStep = { left: Uint8Array } | { right: Uint8Array };

/** Leaf-to-root siblings of leaf `index`; a promoted node contributes no step. */
export function merklePath(levels: readonly Uint8Array[][], index: number): TestProofStep[] {
  const path: TestProofStep[] = [];
  let i = index;
  for (const level of levels.slice(0, -1)) {
    if (i % 2 === 1) path.push({ left: level[i - 1]! });
    else if (i + 1 < level.length) path.push({ right: level[i + 1]! });
    i = Math.floor(i / 2);
  }
  return path;
}

export interface TestReceipt {
  readonly receipt: Receipt;
  readonly root: Uint8Array;
  readonly leaf: Uint8Array;
  readonly signature: Uint8Array;
}

/** A receipt for leaf `index` of a `leafCount`-leaf tree, signed by `signer` (default: node). */
export function makeReceipt(
  pki: TestPki,
  options: { leafCount: number; index: number; signer?: KeyObject; serviceEndorsements?: string[] },
): TestReceipt {
  const leaves = Array.from({ length: options.leafCount }, (_, i) => testLeaf(i + 1));
  const levels = merkleLevels(leaves.map(leafHash));
  const root = levels[levels.length - 1]![0]!;
  const signature = signDigest(options.signer ?? pki.nodeKeys.privateKey, root);
  const receipt = buildReceipt({
    certPem: pki.nodeCertPem,
    nodeId: pki.nodeId,
    signature,
    proof: merklePath(levels, options.index),
    leafComponents: leaves[options.index]!,
    ...(options.serviceEndorsements !== undefined
      ? { serviceEndorsements: options.serviceEndorsements }
      : {}),
  });
  return { receipt, root, leaf: levels[0]![options.index]!, signature };
}

/** Runs openssl; returns its exit status and output (tests use it as an independent oracle). */
export function openssl(
  args: readonly string[],
  input?: Uint8Array,
): { status: number; out: string } {
  const result = spawnSync("openssl", args, {
    encoding: "utf8",
    ...(input !== undefined ? { input } : {}),
  });
  return { status: result.status ?? -1, out: `${result.stdout}${result.stderr}` };
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
