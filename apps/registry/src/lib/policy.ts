/**
 * Whether a registration satisfies its chaincode's policy, in the order FPC checks and the
 * registry documents (docs/registry.md): platform, measurement == version (the attested version
 * too), sequence, channel, host_data, TCB. The same rules decide registration (403 with the
 * failure's code) and are re-applied by governance when the policy changes (constitution/
 * actions-registry.js keeps a JavaScript copy of them, as constitutions cannot import the app).
 * No IO.
 */
import { isHex } from "./codec.js";
import type { AttestedData, ChaincodePolicy, PolicyFailure, Tcb, Verified } from "./model.js";

const TCB_FIELDS = ["boot_loader", "tee", "snp", "microcode", "fmc"] as const;

/** Equal strings, or equal hex ignoring case. */
export function sameValue(a: string, b: string): boolean {
  return a === b || (isHex(a) && isHex(b) && a.toLowerCase() === b.toLowerCase());
}

function checkTcb(policy: ChaincodePolicy, verified: Verified): PolicyFailure | null {
  const min = policy.min_tcb;
  if (min === undefined || Object.keys(min).length === 0) return null;
  if (verified.format !== "AMD_SEV_SNP_v1") return null;
  const cpuid = verified.cpuid ?? "";
  const product = (verified.product ?? "").toLowerCase();
  const entry = Object.entries(min).find(
    ([k]) => k.toLowerCase() === cpuid || k.toLowerCase() === product,
  );
  if (entry === undefined) {
    return { code: "TcbTooLow", message: `no minimum TCB for cpuid ${cpuid} (${product})` };
  }
  const reported: Partial<Tcb> = verified.reported_tcb ?? {};
  for (const field of TCB_FIELDS) {
    const want = entry[1][field];
    if (want === undefined) continue;
    const got = reported[field] ?? -1;
    if (got < want) {
      return { code: "TcbTooLow", message: `reported TCB ${field} ${got} is below ${want}` };
    }
  }
  return null;
}

function checkMeasurement(
  policy: ChaincodePolicy,
  attested: AttestedData,
  verified: Verified,
): PolicyFailure | null {
  if (!sameValue(verified.measurement, policy.version)) {
    const message = `measurement ${verified.measurement} is not the chaincode's version ${policy.version}`;
    return { code: "MeasurementMismatch", message };
  }
  if (!sameValue(attested.version, policy.version)) {
    const message = `attested version ${attested.version} is not the chaincode's version ${policy.version}`;
    return { code: "MeasurementMismatch", message };
  }
  return null;
}

/** The first rule of `policy` that the registration breaks, or null. */
export function checkPolicy(
  policy: ChaincodePolicy,
  attested: AttestedData,
  verified: Verified,
): PolicyFailure | null {
  if (!policy.platforms.includes(verified.format)) {
    const message = `platform ${verified.format} is not allowed for chaincode ${policy.chaincode_id}`;
    return { code: "PlatformNotAllowed", message };
  }
  const measurement = checkMeasurement(policy, attested, verified);
  if (measurement !== null) return measurement;
  if (attested.sequence !== policy.sequence) {
    const message = `sequence ${attested.sequence} is not the chaincode's sequence ${policy.sequence}`;
    return { code: "SequenceMismatch", message };
  }
  if (policy.channel_id !== undefined && attested.channel_id !== policy.channel_id) {
    const message = `channel ${attested.channel_id ?? "(none)"} is not the chaincode's channel ${policy.channel_id}`;
    return { code: "ChannelMismatch", message };
  }
  const hostData = policy.host_data;
  if (hostData !== undefined && hostData.length > 0) {
    if (!hostData.some((h) => sameValue(h, verified.host_data))) {
      return {
        code: "HostDataNotAllowed",
        message: `host_data ${verified.host_data} is not allowed`,
      };
    }
  }
  return checkTcb(policy, verified);
}
