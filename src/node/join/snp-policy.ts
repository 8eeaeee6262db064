/**
 * Governance's join policy for AMD SEV-SNP nodes (ccf-compatibility.md §2.4; CCF 6's
 * src/node/quote.cpp verify_quote_against_store), checked once the verifier has accepted the
 * report, its endorsements and its report_data binding to the joiner's key:
 *
 *  1. the report's host_data is a key of `nodes.snp.host_data`;
 *  2. its measurement is a key of `nodes.snp.measurements`. A join that carries UVM endorsements
 *     is refused instead: CCF would verify them (COSE_Sign1, did:x509) against
 *     `nodes.snp.uvm_endorsements`, which Consortia does not do yet;
 *  3. `nodes.snp.tcb_versions` has an entry whose CPUID has the report's family, model and
 *     stepping (else CCF's FailedInvalidCPUID), and the reported TCB meets it field by field as
 *     CCF's TcbVersionPolicy::is_valid compares: each of microcode, snp, tee, boot_loader and fmc
 *     is present in both or in neither, and when present the reported value is at least the
 *     minimum. A version 2 report carries no CPUID and is refused here.
 *
 * The check is a pure function over a snapshot of the tables (readSnpJoinPolicy) and returns
 * the reason for a refusal, or null; the join endpoint answers 401 InvalidQuote with it.
 */
import type { SnpReport } from "../../attestation/snp.js";
import {
  entriesById,
  GOV_MAPS,
  type SnpTcbVersionPolicy,
  type UvmEndorsementFeeds,
} from "../../gov/tables.js";
import type { Tx } from "../../kv/tx.js";

/** What the policy needs of a verified SEV-SNP quote (a VerifiedQuote of that format). */
export interface SnpJoinEvidence {
  /** Lowercase hex. */
  measurement: string;
  /** Lowercase hex. */
  hostData: string;
  report: Pick<SnpReport, "version" | "product" | "cpuid" | "reportedTcb">;
}

/** The `nodes.snp.*` tables as one join reads them. */
export interface SnpJoinPolicy {
  measurements: ReadonlySet<string>;
  hostData: ReadonlySet<string>;
  uvmEndorsements: ReadonlyMap<string, UvmEndorsementFeeds>;
  /** CPUID (hex, as keyed) -> minimum TCB version. */
  tcbVersions: ReadonlyArray<readonly [string, SnpTcbVersionPolicy]>;
}

export function readSnpJoinPolicy(tx: Tx): SnpJoinPolicy {
  const keys = <V>(rows: Array<[string, V]>) => new Set(rows.map(([key]) => key));
  return {
    measurements: keys(entriesById(tx, GOV_MAPS.snpMeasurements)),
    hostData: keys(entriesById(tx, GOV_MAPS.snpHostData)),
    uvmEndorsements: new Map(entriesById(tx, GOV_MAPS.snpUvmEndorsements)),
    tcbVersions: entriesById(tx, GOV_MAPS.snpTcbVersions),
  };
}

interface Cpuid {
  family: number;
  model: number;
  stepping: number;
}

/** CPUID Fn0000_0001_EAX from its 8 hex digits (CCF's cpuid_from_hex); null if not hex. */
export function parseCpuid(hex: string): Cpuid | null {
  if (!/^[0-9a-fA-F]{8}$/.test(hex)) return null;
  const eax = Number.parseInt(hex, 16);
  const baseFamily = (eax >>> 8) & 0xf;
  const extendedFamily = (eax >>> 20) & 0xff;
  const baseModel = (eax >>> 4) & 0xf;
  const extendedModel = (eax >>> 16) & 0xf;
  return {
    family: baseFamily + extendedFamily,
    model: (extendedModel << 4) | baseModel,
    stepping: eax & 0xf,
  };
}

function sameCpu(a: Cpuid, b: Cpuid): boolean {
  return a.family === b.family && a.model === b.model && a.stepping === b.stepping;
}

/** CCF's field names and comparison order of TcbVersionPolicy::is_valid. */
const TCB_FIELDS = ["microcode", "snp", "tee", "boot_loader", "fmc"] as const;
type TcbField = (typeof TCB_FIELDS)[number];

function reportedPolicy(tcb: SnpJoinEvidence["report"]["reportedTcb"]): SnpTcbVersionPolicy {
  return {
    microcode: tcb.microcode,
    snp: tcb.snp,
    tee: tcb.tee,
    boot_loader: tcb.bootloader,
    ...(tcb.fmc !== undefined ? { fmc: tcb.fmc } : {}),
  };
}

function describePolicy(policy: SnpTcbVersionPolicy): string {
  const shown = TCB_FIELDS.filter((f) => policy[f] !== undefined).map((f) => `${f} ${policy[f]}`);
  return shown.join(", ");
}

/** Why `reported` does not meet `minimum` (CCF's is_valid), or null when it does. */
export function tcbShortfall(
  minimum: SnpTcbVersionPolicy,
  reported: SnpTcbVersionPolicy,
): string | null {
  for (const field of TCB_FIELDS) {
    const min: number | undefined = minimum[field as TcbField];
    const got: number | undefined = reported[field as TcbField];
    if (min === undefined && got === undefined) continue;
    if (min === undefined) return `the minimum has no ${field} but the report has one`;
    if (got === undefined) return `the minimum has a ${field} but the report has none`;
    if (got < min) return `${field} is ${got}, below the minimum ${min}`;
  }
  return null;
}

function minimumTcbFor(policy: SnpJoinPolicy, cpuid: Cpuid): SnpTcbVersionPolicy | undefined {
  for (const [key, minimum] of policy.tcbVersions) {
    const keyed = parseCpuid(key);
    if (keyed !== null && sameCpu(keyed, cpuid)) return minimum;
  }
  return undefined;
}

function tcbRefusal(policy: SnpJoinPolicy, report: SnpJoinEvidence["report"]): string | null {
  const cpuid = report.cpuid === undefined ? null : parseCpuid(report.cpuid);
  if (cpuid === null) {
    return (
      `SEV-SNP report version ${report.version} carries no CPUID, so its TCB cannot be ` +
      "checked against nodes.snp.tcb_versions (report version 3 or later is needed)"
    );
  }
  const minimum = minimumTcbFor(policy, cpuid);
  if (minimum === undefined) {
    return (
      `No minimum TCB version is set for CPUID ${report.cpuid} (${report.product}) in ` +
      "nodes.snp.tcb_versions"
    );
  }
  const reported = reportedPolicy(report.reportedTcb);
  const shortfall = tcbShortfall(minimum, reported);
  if (shortfall === null) return null;
  return (
    `Reported TCB (${describePolicy(reported)}) does not meet the minimum TCB version for ` +
    `CPUID ${report.cpuid} (${describePolicy(minimum)}): ${shortfall}`
  );
}

/**
 * Why governance refuses this SEV-SNP node, or null when it may join. `uvmEndorsements` is the
 * join request's quote_info.uvm_endorsements (base64), if any.
 */
export function snpJoinRefusal(
  policy: SnpJoinPolicy,
  evidence: SnpJoinEvidence,
  uvmEndorsements: string | undefined,
): string | null {
  if (!policy.hostData.has(evidence.hostData)) {
    return (
      `Quote host data is not authorised: host data ${evidence.hostData} is not in ` +
      "nodes.snp.host_data"
    );
  }
  if (uvmEndorsements !== undefined) {
    return (
      "UVM endorsements are not supported: Consortia cannot verify the join request's " +
      "uvm_endorsements; join without them to be checked against nodes.snp.measurements"
    );
  }
  if (!policy.measurements.has(evidence.measurement)) {
    return (
      `Quote does not contain known enclave measurement: measurement ${evidence.measurement} ` +
      "is not in nodes.snp.measurements"
    );
  }
  return tcbRefusal(policy, evidence.report);
}
