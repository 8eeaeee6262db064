/**
 * The registry's queries (FPC's names): queryListEnclaveCredentials, queryEnclaveCredentials,
 * queryListProvisionedEnclaves, queryChaincodeEncryptionKey, queryChaincodeEndPoints, and the
 * policy itself. A chaincode is known while it has a policy or any registration (a removed
 * chaincode's revoked enclaves stay visible); otherwise 404 ResourceNotFound. No IO.
 */
import { toBase64, utf8 } from "./codec.js";
import { RegistryError, enclaveKey, type ChaincodePolicy } from "./model.js";
import type { RegistryHost } from "./register.js";
import { enclavesOf, readEnclave, readPolicy, type StoredEnclave } from "./store.js";

export type QueryHost = Pick<RegistryHost, "kv" | "viewForSeqno">;

function notFound(message: string): never {
  throw new RegistryError("ResourceNotFound", message);
}

/** "view.seqno" of the registering transaction. */
function transactionId(host: QueryHost, enclave: StoredEnclave): string {
  const view = host.viewForSeqno(enclave.seqno);
  return `${view ?? 0}.${enclave.seqno}`;
}

function knownEnclaves(host: QueryHost, chaincodeId: string): StoredEnclave[] {
  const enclaves = enclavesOf(host.kv, chaincodeId);
  if (enclaves.length === 0 && readPolicy(host.kv, chaincodeId) === undefined) {
    notFound(`unknown chaincode ${chaincodeId}`);
  }
  return enclaves;
}

function active(host: QueryHost, chaincodeId: string): StoredEnclave[] {
  return knownEnclaves(host, chaincodeId).filter((e) => e.status.status === "Active");
}

export function getPolicy(host: QueryHost, chaincodeId: string): ChaincodePolicy {
  return readPolicy(host.kv, chaincodeId) ?? notFound(`unknown chaincode ${chaincodeId}`);
}

export function listEnclaves(host: QueryHost, chaincodeId: string): unknown {
  const enclaves = knownEnclaves(host, chaincodeId).map((e) => ({
    enclave_id: e.registration.enclave_id,
    status: e.status.status,
    transaction_id: transactionId(host, e),
    peer_endpoint: e.attested.host_params.peer_endpoint,
  }));
  return { enclaves };
}

export function getEnclave(host: QueryHost, chaincodeId: string, enclaveId: string): unknown {
  knownEnclaves(host, chaincodeId);
  const e = readEnclave(host.kv, enclaveKey(chaincodeId, enclaveId.toUpperCase()));
  if (e === undefined) notFound(`no enclave ${enclaveId} for chaincode ${chaincodeId}`);
  const { status, reason, revoked_by: revokedBy } = e.status;
  return {
    chaincode_id: chaincodeId,
    enclave_id: e.registration.enclave_id,
    status,
    ...(reason === undefined ? {} : { reason }),
    ...(revokedBy === undefined ? {} : { revoked_by: revokedBy }),
    transaction_id: transactionId(host, e),
    registration: toBase64(utf8(e.text)),
    attested_data: e.attested,
    evidence: e.registration.evidence,
    verified: e.registration.verified,
  };
}

export function provisionedEnclaves(host: QueryHost, chaincodeId: string): unknown {
  return { enclave_ids: active(host, chaincodeId).map((e) => e.registration.enclave_id) };
}

export function encryptionKey(host: QueryHost, chaincodeId: string): unknown {
  const withKey = active(host, chaincodeId).find((e) => e.attested.chaincode_ek !== undefined);
  if (withKey === undefined) notFound(`no active enclave of ${chaincodeId} sent a chaincode_ek`);
  return { chaincode_ek: withKey.attested.chaincode_ek };
}

export function endpoints(host: QueryHost, chaincodeId: string): unknown {
  const all = active(host, chaincodeId).map((e) => e.attested.host_params.peer_endpoint);
  return { endpoints: [...new Set(all)] };
}
