/**
 * The registry's data model and storage contract (docs/registry.md): map names, the chaincode
 * policy, the attested data an enclave sends, the verified facts of its evidence, the
 * registration record R and an enclave's status; and RegistryError, the one error the app's
 * logic throws, carrying CCF's HTTP status and error code. No IO.
 */

/** Public maps, so that receipts prove their rows. Governance writes the same names. */
export const MAPS = {
  chaincodes: "public:registry.chaincodes",
  enclaves: "public:registry.enclaves",
  enclaveStatus: "public:registry.enclave_status",
} as const;

export const PLATFORMS = ["Insecure_Virtual", "AMD_SEV_SNP_v1"] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface Tcb {
  boot_loader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

/** A chaincode's policy, set by `set_registry_chaincode` (version = expected measurement). */
export interface ChaincodePolicy {
  chaincode_id: string;
  version: string;
  sequence: number;
  channel_id?: string;
  platforms: string[];
  host_data?: string[];
  /** Keyed by CPUID (8 hex digits, as CCF's tcb_versions) or product name (Milan...). */
  min_tcb?: Record<string, Tcb>;
  registrars?: string[];
  max_enclaves?: number;
}

export interface HostParams {
  peer_endpoint: string;
  peer_msp_id?: string;
}

/** What the enclave attests: report_data's first 32 bytes are SHA-256 of its bytes. */
export interface AttestedData {
  chaincode_id: string;
  version: string;
  sequence: number;
  channel_id?: string;
  host_params: HostParams;
  enclave_vk: string;
  chaincode_ek?: string;
}

export interface Evidence {
  format: string;
  quote: string;
  endorsements: string;
}

/** What the evidence proved, once verified (hex for bytes, except a virtual measurement). */
export interface Verified {
  format: Platform;
  measurement: string;
  host_data: string;
  report_data: string;
  reported_tcb?: Tcb;
  product?: string;
  cpuid?: string;
}

/** The registration record R; stored as its exact JSON text, hashed into the claims digest. */
export interface Registration {
  chaincode_id: string;
  enclave_id: string;
  attested_data: string;
  evidence: Evidence;
  verified: Verified;
  registered_by: string;
}

export interface EnclaveStatus {
  status: "Active" | "Revoked";
  reason?: string;
  revoked_by?: "policy" | "governance";
}

export const ACTIVE: EnclaveStatus = { status: "Active" };

/** The key of an enclave's rows in `enclaves` and `enclave_status`. */
export function enclaveKey(chaincodeId: string, enclaveId: string): string {
  return `${chaincodeId}/${enclaveId}`;
}

export type RegistryErrorCode =
  | "InvalidInput"
  | "ReportDataMismatch"
  | "InvalidQuote"
  | "AuthorizationFailed"
  | "MeasurementMismatch"
  | "SequenceMismatch"
  | "ChannelMismatch"
  | "PlatformNotAllowed"
  | "HostDataNotAllowed"
  | "TcbTooLow"
  | "CallerNotRegistrar"
  | "CallerMismatch"
  | "ResourceNotFound"
  | "TooManyEnclaves"
  | "EnclaveAlreadyRegistered";

const STATUS: Record<RegistryErrorCode, number> = {
  InvalidInput: 400,
  ReportDataMismatch: 401,
  InvalidQuote: 401,
  AuthorizationFailed: 403,
  MeasurementMismatch: 403,
  SequenceMismatch: 403,
  ChannelMismatch: 403,
  PlatformNotAllowed: 403,
  HostDataNotAllowed: 403,
  TcbTooLow: 403,
  CallerNotRegistrar: 403,
  CallerMismatch: 403,
  ResourceNotFound: 404,
  TooManyEnclaves: 409,
  EnclaveAlreadyRegistered: 409,
};

/** A refusal the caller caused: answered as `{"error": {code, message}}` with `status`. */
export class RegistryError extends Error {
  readonly status: number;
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

/** A failed policy check: the code it is refused with and why. */
export interface PolicyFailure {
  readonly code: RegistryErrorCode;
  readonly message: string;
}
