/**
 * The join policy as `GET /gov/service/join-policy` reports it (CCF 6's
 * src/node/gov/handlers/service_state.h): the measurements and host data governance allows for
 * each platform, the UVM endorsement roots and the minimum TCB versions of SEV-SNP nodes.
 *
 * Measurement tables list only keys whose value is "AllowedToJoin", as CCF does; host data is a
 * list for virtual nodes and a map to each security policy for SEV-SNP nodes. SGX is never
 * allowed here (Consortia runs no SGX nodes), so its list is empty.
 */
import type { Tx } from "../kv/tx.js";
import {
  entriesById,
  GOV_MAPS,
  type GovMap,
  type SnpTcbVersionPolicy,
  type UvmEndorsementFeeds,
} from "./tables.js";

export interface JoinPolicyView {
  sgx: { measurements: string[] };
  snp: {
    measurements: string[];
    hostData: Record<string, string>;
    uvmEndorsements: Record<string, UvmEndorsementFeeds>;
    tcbVersions: Record<string, SnpTcbVersionPolicy>;
  };
  virtual: { measurements: string[]; hostData: string[] };
}

const ALLOWED_TO_JOIN = "AllowedToJoin";

function allowedMeasurements(tx: Tx, map: GovMap<string>): string[] {
  return entriesById(tx, map)
    .filter(([, status]) => status === ALLOWED_TO_JOIN)
    .map(([measurement]) => measurement);
}

function asRecord<V>(tx: Tx, map: GovMap<V>): Record<string, V> {
  return Object.fromEntries(entriesById(tx, map));
}

export function joinPolicyView(tx: Tx): JoinPolicyView {
  return {
    sgx: { measurements: [] },
    snp: {
      measurements: allowedMeasurements(tx, GOV_MAPS.snpMeasurements),
      hostData: asRecord(tx, GOV_MAPS.snpHostData),
      uvmEndorsements: asRecord(tx, GOV_MAPS.snpUvmEndorsements),
      tcbVersions: asRecord(tx, GOV_MAPS.snpTcbVersions),
    },
    virtual: {
      measurements: allowedMeasurements(tx, GOV_MAPS.virtualMeasurements),
      hostData: entriesById(tx, GOV_MAPS.virtualHostData).map(([hostData]) => hostData),
    },
  };
}
