/**
 * registerEnclave: FPC's checkAttestedData on Consortia. In order (docs/registry.md): the caller
 * is a user; decode and shape (400); the evidence and its report_data binding (401); the
 * chaincode is known (404); its policy (403: platform, measurement, sequence, channel,
 * host_data, TCB); registrars and the caller's MSP (403); the enclave is new and the chaincode
 * has room (409). Then R is written once, with status Active implied, and SHA-256(R) is the
 * transaction's claims digest, so its receipt proves the registration. No IO beyond the host.
 */
import { toHex, utf8 } from "./codec.js";
import { verifyEvidence, type EvidenceHost } from "./evidence.js";
import {
  MAPS,
  RegistryError,
  enclaveKey,
  type AttestedData,
  type ChaincodePolicy,
  type Registration,
} from "./model.js";
import { checkPolicy } from "./policy.js";
import { decodeRegisterRequest } from "./request.js";
import { enclavesOf, readPolicy, type RegistryKv } from "./store.js";

export interface RegistryHost extends EvidenceHost {
  readonly kv: RegistryKv;
  /** Whether `pem` is a public key the host's crypto can load. */
  isPublicKey(pem: string): boolean;
  /** The SubjectPublicKeyInfo DER of PEM public key `pem`. */
  publicKeyDer(pem: string): Uint8Array;
  /** The view of `seqno`, or null when unknown. */
  viewForSeqno(seqno: number): number | null;
}

/** Who calls: CCF's caller object (user_cert: id = user id, data = user_data). */
export interface Caller {
  readonly policy: string;
  readonly id?: string;
  readonly data?: unknown;
}

export interface RegisterOutcome {
  readonly enclaveId: string;
  /** R's exact text, as stored. */
  readonly registration: string;
  /** SHA-256(UTF-8 of R): the transaction's claims digest. */
  readonly claimsDigest: Uint8Array;
}

/** FPC's enclave id: upper-case hex SHA-256 of enclave_vk's SubjectPublicKeyInfo DER. */
export function enclaveIdOf(host: RegistryHost, enclaveVk: string): string {
  return toHex(host.sha256(host.publicKeyDer(enclaveVk))).toUpperCase();
}

function mspIdOf(caller: Caller): string | undefined {
  const data = caller.data;
  if (typeof data !== "object" || data === null) return undefined;
  const msp = (data as { msp_id?: unknown }).msp_id;
  return typeof msp === "string" ? msp : undefined;
}

function checkCaller(policy: ChaincodePolicy, attested: AttestedData, caller: Caller): void {
  const id = caller.id ?? "";
  const registrars = policy.registrars ?? [];
  if (registrars.length > 0 && !registrars.includes(id)) {
    throw new RegistryError(
      "CallerNotRegistrar",
      `user ${id} is not a registrar of chaincode ${policy.chaincode_id}`,
    );
  }
  const msp = attested.host_params.peer_msp_id;
  if (msp !== undefined && msp !== id && msp !== mspIdOf(caller)) {
    throw new RegistryError(
      "CallerMismatch",
      `host_params.peer_msp_id ${msp} is neither the caller's user id nor its msp_id`,
    );
  }
}

function checkRoom(host: RegistryHost, policy: ChaincodePolicy, enclaveId: string): void {
  const enclaves = enclavesOf(host.kv, policy.chaincode_id);
  if (enclaves.some((e) => e.registration.enclave_id === enclaveId)) {
    throw new RegistryError(
      "EnclaveAlreadyRegistered",
      `enclave ${enclaveId} is already registered for chaincode ${policy.chaincode_id}`,
    );
  }
  const active = enclaves.filter((e) => e.status.status === "Active").length;
  if (policy.max_enclaves !== undefined && active >= policy.max_enclaves) {
    throw new RegistryError(
      "TooManyEnclaves",
      `chaincode ${policy.chaincode_id} has ${active} active enclaves, its maximum`,
    );
  }
}

/** Checks and records a registration; throws RegistryError for every refusal. */
export function registerEnclave(
  host: RegistryHost,
  caller: Caller,
  body: Uint8Array,
): RegisterOutcome {
  if (caller.policy !== "user_cert") {
    throw new RegistryError("AuthorizationFailed", "caller is not a user");
  }
  const request = decodeRegisterRequest(body);
  const { attested } = request;
  if (!host.isPublicKey(attested.enclave_vk)) {
    throw new RegistryError("InvalidInput", "enclave_vk is not a valid public key");
  }
  if (attested.chaincode_ek !== undefined && !host.isPublicKey(attested.chaincode_ek)) {
    throw new RegistryError("InvalidInput", "chaincode_ek is not a valid public key");
  }
  const verified = verifyEvidence(
    host,
    { format: request.evidence.format, quote: request.quote, endorsements: request.endorsements },
    request.attestedBytes,
  );
  const policy = readPolicy(host.kv, attested.chaincode_id);
  if (policy === undefined) {
    throw new RegistryError("ResourceNotFound", `unknown chaincode ${attested.chaincode_id}`);
  }
  const failure = checkPolicy(policy, attested, verified);
  if (failure !== null) throw new RegistryError(failure.code, failure.message);
  checkCaller(policy, attested, caller);
  const enclaveId = enclaveIdOf(host, attested.enclave_vk);
  checkRoom(host, policy, enclaveId);
  // Key order is part of the record: clients hash R's text as stored.
  const record: Registration = {
    chaincode_id: attested.chaincode_id,
    enclave_id: enclaveId,
    attested_data: request.attestedBase64,
    evidence: request.evidence,
    verified,
    registered_by: caller.id ?? "",
  };
  const registration = JSON.stringify(record);
  host.kv.set(MAPS.enclaves, enclaveKey(attested.chaincode_id, enclaveId), registration);
  return { enclaveId, registration, claimsDigest: host.sha256(utf8(registration)) };
}
