// Synthetic AMD SEV-SNP evidence for tests: a chain ARK -> ASK -> chip certificate made with
// @peculiar/x509 (EC P-384 throughout, AMD's extensions on the leaf), and 1184-byte reports
// laid out as AMD's ABI says and signed with the leaf's key. Only for the cases no real vector
// covers (Turin reports, VLEKs, broken chains); verification of them needs verifySnpReport's
// test-only `roots` option, since no AMD root signs them.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createHash, createPrivateKey, KeyObject, sign, webcrypto } from "node:crypto";
import type { SnpProduct } from "../../src/attestation/snp.js";

x509.cryptoProvider.set(webcrypto);

const ALG = { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" } as const;
const AMD_OID = "1.3.6.1.4.1.3704.1";

export interface SynthTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

export interface SynthChainOptions {
  product: SnpProduct;
  tcb: SynthTcb;
  /** hwID bytes (64, or 8 for Turin); null leaves the extension out. */
  hwId: Uint8Array | null;
  /** TCB extensions to leave out, by name. */
  omitTcb?: (keyof SynthTcb)[];
  notBefore?: Date;
  notAfter?: Date;
  /** Make the ARK's signature come from another key (not self-signed). */
  forgeRoot?: boolean;
}

export interface SynthChain {
  pem: string;
  /** SubjectPublicKeyInfo DER of the ARK. */
  rootSpki: Uint8Array;
  leafKey: KeyObject;
}

function derInteger(n: number): Uint8Array {
  return n >= 0x80 ? new Uint8Array([0x02, 0x02, 0x00, n]) : new Uint8Array([0x02, 0x01, n]);
}

function ia5(text: string): Uint8Array {
  return new Uint8Array([0x16, text.length, ...Buffer.from(text, "ascii")]);
}

function leafExtensions(options: SynthChainOptions): x509.Extension[] {
  const omit = new Set(options.omitTcb ?? []);
  const spl: [keyof SynthTcb, string][] = [
    ["bootloader", "3.1"],
    ["tee", "3.2"],
    ["snp", "3.3"],
    ["microcode", "3.8"],
    ["fmc", "3.9"],
  ];
  const exts = [new x509.Extension(`${AMD_OID}.2`, false, ia5(options.product))];
  for (const [name, suffix] of spl) {
    const value = options.tcb[name];
    if (value === undefined || omit.has(name)) continue;
    exts.push(new x509.Extension(`${AMD_OID}.${suffix}`, false, derInteger(value)));
  }
  if (options.hwId !== null) exts.push(new x509.Extension(`${AMD_OID}.4`, false, options.hwId));
  return exts;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
}

const CA = [new x509.BasicConstraintsExtension(true, undefined, true)];
const subject = (cn: string): string => `CN=${cn}, O=Advanced Micro Devices, C=US`;

export async function makeSnpChain(options: SynthChainOptions): Promise<SynthChain> {
  const notBefore = options.notBefore ?? new Date("2024-01-01T00:00:00Z");
  const notAfter = options.notAfter ?? new Date("2040-01-01T00:00:00Z");
  const [ark, ask, leaf, forger] = [
    await keyPair(),
    await keyPair(),
    await keyPair(),
    await keyPair(),
  ];
  const common = { notBefore, notAfter, signingAlgorithm: ALG };
  const arkCert = await x509.X509CertificateGenerator.create({
    ...common,
    serialNumber: "01",
    subject: subject(`ARK-${options.product}`),
    issuer: subject(`ARK-${options.product}`),
    publicKey: ark.publicKey,
    signingKey: options.forgeRoot === true ? forger.privateKey : ark.privateKey,
    extensions: CA,
  });
  const askCert = await x509.X509CertificateGenerator.create({
    ...common,
    serialNumber: "02",
    subject: subject(`SEV-${options.product}`),
    issuer: arkCert.subject,
    publicKey: ask.publicKey,
    signingKey: ark.privateKey,
    extensions: CA,
  });
  const leafCert = await x509.X509CertificateGenerator.create({
    ...common,
    serialNumber: "03",
    subject: subject("SEV-VCEK"),
    issuer: askCert.subject,
    publicKey: leaf.publicKey,
    signingKey: ask.privateKey,
    extensions: leafExtensions(options),
  });
  const pem = [leafCert, askCert, arkCert].map((c) => c.toString("pem")).join("\n") + "\n";
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", leaf.privateKey);
  return {
    pem,
    rootSpki: new Uint8Array(arkCert.publicKey.rawData),
    leafKey: createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }),
  };
}

export interface SynthReportOptions {
  version?: number;
  /** CPUID family, model, stepping (written for version >= 3). */
  cpuid?: [number, number, number];
  /** The 8 reported TCB bytes in the product's layout. */
  reportedTcb: Uint8Array;
  chipId: Uint8Array;
  reportData?: Uint8Array;
  measurement?: Uint8Array;
  hostData?: Uint8Array;
  policy?: number;
  vmpl?: number;
  /** flags bits 2-4. */
  signingKey?: number;
}

/** A report with the given fields, unsigned (signature zero). */
export function makeSnpReportBody(options: SynthReportOptions): Uint8Array {
  const report = Buffer.alloc(0x4a0);
  const version = options.version ?? 3;
  report.writeUInt32LE(version, 0x000);
  report.writeUInt32LE(1, 0x004);
  report.writeBigUInt64LE(BigInt(options.policy ?? 0x30000), 0x008);
  report.writeUInt32LE(options.vmpl ?? 0, 0x030);
  report.writeUInt32LE(1, 0x034);
  report.writeUInt32LE((options.signingKey ?? 0) << 2, 0x048);
  report.set(options.reportData ?? new Uint8Array(64), 0x050);
  report.set(options.measurement ?? new Uint8Array(48).fill(0x11), 0x090);
  report.set(options.hostData ?? new Uint8Array(32).fill(0x22), 0x0c0);
  report.set(options.reportedTcb, 0x038);
  report.set(options.reportedTcb, 0x180);
  if (version >= 3) report.set(options.cpuid ?? [0x19, 0x01, 0x01], 0x188);
  report.set(options.chipId, 0x1a0);
  report.set(options.reportedTcb, 0x1e0);
  report.set(options.reportedTcb, 0x1f0);
  return new Uint8Array(report);
}

/** Signs bytes [0, 0x2A0) with `key` into r and s at 0x2A0 and 0x2E8 (little-endian). */
export function signSnpReport(body: Uint8Array, key: KeyObject): Uint8Array {
  const report = new Uint8Array(body);
  const sig = sign("sha384", report.subarray(0, 0x2a0), { key, dsaEncoding: "ieee-p1363" });
  report.fill(0, 0x2a0);
  report.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), 0x2a0);
  report.set(Uint8Array.from(sig.subarray(48, 96)).reverse(), 0x2e8);
  return report;
}

/** SHA-256(public key DER) followed by 32 zero bytes: CCF's report_data for a node key. */
export function boundReportData(publicKeyDer: Uint8Array): Uint8Array {
  const data = new Uint8Array(64);
  data.set(createHash("sha256").update(publicKeyDer).digest(), 0);
  return data;
}
