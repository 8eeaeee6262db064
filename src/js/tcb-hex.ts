/**
 * `ccf.tcbHexToPolicy(cpuid, tcbHex)` (CCF 6's src/js/extensions/ccf/converters.cpp): the
 * TcbVersionPolicy of a TCB version in CCF's hex form (the 8 TCB bytes reversed) for the product
 * the CPUID names, as CCF's default constitution stores it in nodes.snp.tcb_versions through
 * `set_snp_minimum_tcb_version_hex`. Keys in CCF's order: hexstring, microcode, snp, tee,
 * boot_loader, then fmc (Turin only). Bad input is a TypeError naming the argument.
 */
import { fromHex } from "../base/bytes.js";
import { decodeSnpTcb, productOfCpuid } from "../attestation/snp-report.js";
import { parseCpuid } from "../gov/join-policy.js";
import type { SnpTcbVersionPolicy } from "../gov/tables.js";

const TCB_BYTES = 8;

export function tcbHexToPolicy(cpuidHex: string, tcbHex: string): SnpTcbVersionPolicy {
  const cpuid = parseCpuid(cpuidHex);
  if (cpuid === null) throw new TypeError(`CPUID ${JSON.stringify(cpuidHex)} is not 8 hex digits`);
  const product = productOfCpuid(cpuid.family, cpuid.model);
  if (product === null) {
    throw new TypeError(`CPUID ${cpuidHex} is not an SEV-SNP product (Milan, Genoa, Turin)`);
  }
  const raw = fromHex(tcbHex);
  if (raw === null || raw.length !== TCB_BYTES) {
    throw new TypeError(`TCB version ${JSON.stringify(tcbHex)} is not ${2 * TCB_BYTES} hex digits`);
  }
  const tcb = decodeSnpTcb(raw.reverse(), product);
  return {
    hexstring: tcb.hex,
    microcode: tcb.microcode,
    snp: tcb.snp,
    tee: tcb.tee,
    boot_loader: tcb.bootloader,
    ...(tcb.fmc !== undefined ? { fmc: tcb.fmc } : {}),
  };
}
