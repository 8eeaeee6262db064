/**
 * The registry app's edge: CCF JS endpoint handlers (app.json) over @microsoft/ccf-app. They
 * adapt `ccf.kv`, ccf-app's crypto, `snp_attestation.verifySnpAttestation` and the consensus
 * view lookup to the plain RegistryHost interface, call the logic in lib/, and answer a
 * RegistryError as CCF does: `{"error": {"code", "message"}}` with its status. Nothing else
 * here decides anything, so the same logic can run as an app service (issue #14).
 */
import type * as ccfapp from "@microsoft/ccf-app";
import { ccf } from "@microsoft/ccf-app/global.js";
import {
  digest,
  pubEddsaPemToJwk,
  pubPemToJwk,
  pubRsaPemToJwk,
} from "@microsoft/ccf-app/crypto.js";
import { verifySnpAttestation } from "@microsoft/ccf-app/snp_attestation.js";
import { fromBase64 } from "./lib/codec.js";
import type { SnpOutcome } from "./lib/evidence.js";
import { RegistryError } from "./lib/model.js";
import * as queries from "./lib/queries.js";
import { registerEnclave, type Caller, type RegistryHost } from "./lib/register.js";
import type { RegistryKv } from "./lib/store.js";

const kv: RegistryKv = {
  get(map, key) {
    const value = ccf.kv[map]!.get(ccf.strToBuf(key));
    return value === undefined ? undefined : ccf.bufToStr(value);
  },
  set(map, key, value) {
    ccf.kv[map]!.set(ccf.strToBuf(key), ccf.strToBuf(value));
  },
  keysWithPrefix(map, prefix) {
    const keys: string[] = [];
    ccf.kv[map]!.forEach((_value, key) => {
      const text = ccf.bufToStr(key);
      if (text.startsWith(prefix)) keys.push(text);
    });
    return keys;
  },
  versionOf(map, key) {
    return ccf.kv[map]!.getVersionOfPreviousWrite(ccf.strToBuf(key));
  },
};

function bytes(buffer: ArrayBuffer): Uint8Array {
  return new Uint8Array(buffer);
}

function buffer(data: Uint8Array): ArrayBuffer {
  return data.slice().buffer as ArrayBuffer;
}

function isPublicKey(pem: string): boolean {
  for (const load of [pubPemToJwk, pubRsaPemToJwk, pubEddsaPemToJwk]) {
    try {
      load(pem);
      return true;
    } catch (err: unknown) {
      // Not a key of this family: try the next one.
      if (!(err instanceof Error)) throw err;
    }
  }
  return false;
}

/** The DER inside PEM `pem` (already checked to be one PUBLIC KEY block). */
function publicKeyDer(pem: string): Uint8Array {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  const der = fromBase64(body);
  if (der === null) throw new RegistryError("InvalidInput", "enclave_vk is not valid PEM");
  return der;
}

function verifySnp(quote: Uint8Array, endorsements: Uint8Array): SnpOutcome {
  let result;
  try {
    result = verifySnpAttestation(buffer(quote), buffer(endorsements));
  } catch (err: unknown) {
    return { kind: "refused", reason: err instanceof Error ? err.message : String(err) };
  }
  const a = result.attestation;
  const report = {
    measurement: bytes(a.measurement),
    report_data: bytes(a.report_data),
    host_data: bytes(a.host_data),
    reported_tcb: a.reported_tcb,
    cpuid_fam_id: a.cpuid_fam_id,
    cpuid_mod_id: a.cpuid_mod_id,
    cpuid_step: a.cpuid_step,
  };
  return { kind: "verified", report };
}

const host: RegistryHost = {
  kv,
  sha256: (data) => bytes(digest("SHA-256", buffer(data))),
  verifySnp,
  isPublicKey,
  publicKeyDer,
  viewForSeqno: (seqno) => ccf.consensus.getViewForSeqno(seqno),
};

function answer(run: () => unknown): ccfapp.Response {
  try {
    return { statusCode: 200, body: run() as ccfapp.JsonCompatible<unknown> };
  } catch (err: unknown) {
    if (!(err instanceof RegistryError)) throw err;
    return { statusCode: err.status, body: { error: { code: err.code, message: err.message } } };
  }
}

/** POST /registry/enclaves (registerEnclave). */
export function register(request: ccfapp.Request): ccfapp.Response {
  return answer(() => {
    const caller = (request.caller ?? { policy: "none" }) as Caller;
    const outcome = registerEnclave(host, caller, bytes(request.body.arrayBuffer()));
    ccf.rpc.setClaimsDigest(buffer(outcome.claimsDigest));
    return { enclave_id: outcome.enclaveId };
  });
}

function param(request: ccfapp.Request, name: string): string {
  return decodeURIComponent(request.params[name] ?? "");
}

export function getChaincode(request: ccfapp.Request): ccfapp.Response {
  return answer(() => queries.getPolicy(host, param(request, "chaincode_id")));
}

export function listEnclaves(request: ccfapp.Request): ccfapp.Response {
  return answer(() => queries.listEnclaves(host, param(request, "chaincode_id")));
}

export function getEnclave(request: ccfapp.Request): ccfapp.Response {
  const chaincodeId = param(request, "chaincode_id");
  return answer(() => queries.getEnclave(host, chaincodeId, param(request, "enclave_id")));
}

export function provisioned(request: ccfapp.Request): ccfapp.Response {
  return answer(() => queries.provisionedEnclaves(host, param(request, "chaincode_id")));
}

export function encryptionKey(request: ccfapp.Request): ccfapp.Response {
  return answer(() => queries.encryptionKey(host, param(request, "chaincode_id")));
}

export function endpoints(request: ccfapp.Request): ccfapp.Response {
  return answer(() => queries.endpoints(host, param(request, "chaincode_id")));
}
