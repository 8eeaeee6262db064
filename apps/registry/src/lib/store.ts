/**
 * The registry's view of the key-value store: a small string interface (RegistryKv) that the
 * app's edge implements over `ccf.kv` and that an app service (issue #14) can implement over
 * its own store, plus typed reads of the three maps. No IO beyond the interface.
 */
import { fromBase64, fromUtf8 } from "./codec.js";
import {
  ACTIVE,
  MAPS,
  enclaveKey,
  type AttestedData,
  type ChaincodePolicy,
  type EnclaveStatus,
  type Registration,
} from "./model.js";

export interface RegistryKv {
  get(map: string, key: string): string | undefined;
  set(map: string, key: string, value: string): void;
  /** Every key of `map` that starts with `prefix`. */
  keysWithPrefix(map: string, prefix: string): string[];
  /** The seqno of the transaction that last wrote `key`, or undefined. */
  versionOf(map: string, key: string): number | undefined;
}

export function readPolicy(kv: RegistryKv, chaincodeId: string): ChaincodePolicy | undefined {
  const text = kv.get(MAPS.chaincodes, chaincodeId);
  return text === undefined ? undefined : (JSON.parse(text) as ChaincodePolicy);
}

export function readStatus(kv: RegistryKv, key: string): EnclaveStatus {
  const text = kv.get(MAPS.enclaveStatus, key);
  return text === undefined ? ACTIVE : (JSON.parse(text) as EnclaveStatus);
}

/** A stored registration with what the queries show of it. */
export interface StoredEnclave {
  readonly key: string;
  /** R's exact text. */
  readonly text: string;
  readonly registration: Registration;
  readonly attested: AttestedData;
  readonly status: EnclaveStatus;
  /** Seqno of the registering transaction. */
  readonly seqno: number;
}

/** The attested data inside a stored R (valid when it was registered). */
export function attestedOf(registration: Registration): AttestedData {
  const bytes = fromBase64(registration.attested_data);
  const text = bytes === null ? null : fromUtf8(bytes);
  if (text === null) throw new TypeError(`stored attested data of ${registration.enclave_id}`);
  return JSON.parse(text) as AttestedData;
}

export function readEnclave(kv: RegistryKv, key: string): StoredEnclave | undefined {
  const text = kv.get(MAPS.enclaves, key);
  if (text === undefined) return undefined;
  const registration = JSON.parse(text) as Registration;
  return {
    key,
    text,
    registration,
    attested: attestedOf(registration),
    status: readStatus(kv, key),
    seqno: kv.versionOf(MAPS.enclaves, key) ?? 0,
  };
}

/** The enclaves registered for `chaincodeId`, in registration order. */
export function enclavesOf(kv: RegistryKv, chaincodeId: string): StoredEnclave[] {
  const out: StoredEnclave[] = [];
  for (const key of kv.keysWithPrefix(MAPS.enclaves, enclaveKey(chaincodeId, ""))) {
    const enclave = readEnclave(kv, key);
    if (enclave !== undefined) out.push(enclave);
  }
  return out.sort((a, b) => a.seqno - b.seqno || (a.key < b.key ? -1 : 1));
}
