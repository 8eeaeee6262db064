/**
 * Simulated enclaves for the registry tests: a fresh P-256 key pair, attested data naming it,
 * and Insecure_Virtual evidence bound to the attested data (report_data = SHA-256 of its bytes),
 * computed with node:crypto, independently of the app's own code. Fields can be overridden or
 * removed to build the negative cases.
 */
import { createHash, generateKeyPairSync } from "node:crypto";

export interface SimulatedEnclave {
  readonly vkPem: string;
  /** Upper-case hex SHA-256 of the SPKI DER (FPC's enclave id). */
  readonly enclaveId: string;
  readonly attestedText: string;
  /** The registerEnclave body. */
  readonly body: string;
}

export interface EnclaveOptions {
  chaincodeId?: string;
  version?: string;
  sequence?: number;
  channelId?: string;
  peerEndpoint?: string;
  peerMspId?: string;
  chaincodeEk?: boolean;
  /** What the virtual quote claims (default: `version`). */
  measurement?: string;
  hostData?: string;
  /** Replaces fields of the attested data (undefined removes one). */
  attested?: Record<string, unknown>;
  /** Report data bound instead of SHA-256(attested data). */
  reportData?: Buffer;
  format?: string;
}

export function newPublicKeyPem(): { pem: string; der: Buffer } {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    pem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    der: publicKey.export({ type: "spki", format: "der" }),
  };
}

export const sha256 = (data: Buffer | string): Buffer => createHash("sha256").update(data).digest();

export function virtualQuote(measurement: string, hostData: string, reportData: Buffer): string {
  const doc = { measurement, host_data: hostData, report_data: reportData.toString("base64") };
  return Buffer.from(JSON.stringify(doc)).toString("base64");
}

export function simulateEnclave(o: EnclaveOptions = {}): SimulatedEnclave {
  const vk = newPublicKeyPem();
  const version = o.version ?? "v1-measurement";
  const attested: Record<string, unknown> = {
    chaincode_id: o.chaincodeId ?? "cc1",
    version,
    sequence: o.sequence ?? 1,
    ...(o.channelId === undefined ? {} : { channel_id: o.channelId }),
    host_params: {
      peer_endpoint: o.peerEndpoint ?? "peer0.org1:7051",
      ...(o.peerMspId === undefined ? {} : { peer_msp_id: o.peerMspId }),
    },
    enclave_vk: vk.pem,
    ...(o.chaincodeEk === true ? { chaincode_ek: newPublicKeyPem().pem } : {}),
    ...o.attested,
  };
  const attestedText = JSON.stringify(attested);
  const bound = o.reportData ?? sha256(attestedText);
  const evidence = {
    format: o.format ?? "Insecure_Virtual",
    quote: virtualQuote(o.measurement ?? version, o.hostData ?? "ab".repeat(32), bound),
    endorsements: "",
  };
  const body = JSON.stringify({
    attested_data: Buffer.from(attestedText).toString("base64"),
    evidence,
  });
  return {
    vkPem: vk.pem,
    enclaveId: sha256(vk.der).toString("hex").toUpperCase(),
    attestedText,
    body,
  };
}
