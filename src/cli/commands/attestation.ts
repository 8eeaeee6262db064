/**
 * `consortia attestation verify`: checks a node's attestation offline (ccf-compatibility.md
 * §2.4), as the primary does when a node joins, minus governance's policy.
 *
 * - AMD_SEV_SNP_v1: the quote file holds the 1184-byte report, raw, in hex or in base64 (told
 *   apart by content); the endorsements file the PEM chain VCEK, ASK, ARK (or base64 of it).
 *   attestation/snp.ts verifies the report against the chain and AMD's pinned root keys, with
 *   the certificates' validity checked at --now (default: the current time).
 * - Insecure_Virtual: the quote file holds CCF's virtual report, the JSON
 *   {measurement, host_data, report_data}, or base64 of it. Nothing is signed: the command
 *   only decodes it.
 *
 * With --public-key (a PEM public key or certificate), the report data must also bind that key
 * (its first 32 bytes are SHA-256 of the key's SubjectPublicKeyInfo DER), the check a joining
 * node's quote passes. Exit 0 and the report's fields (--json: one JSON object) when every
 * check passes; exit 1 and "attestation is invalid: <reason>" when one fails, or "cannot verify
 * attestation: <reason>" for unusable input. One line on stderr, never a stack trace.
 */
import { readFileSync } from "node:fs";
import { createPublicKey } from "node:crypto";
import { Option, type Command } from "commander";
import { fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from "../../base/bytes.js";
import { isForeignError, isNodeError, isTextDecodeError } from "../../base/errors.js";
import {
  SnpVerificationError,
  verifySnpReport,
  type SnpReport,
  type SnpTcb,
} from "../../attestation/snp.js";
import { SNP_REPORT_BYTES } from "../../attestation/snp-report.js";
import {
  AttestationError,
  decodeVirtualQuote,
  makeSnpQuote,
  SNP_FORMAT,
  verifyQuote,
  VIRTUAL_FORMAT,
  type QuoteInfo,
} from "../../attestation/virtual.js";
import { CliError } from "../cli-error.js";

const INVALID = "attestation is invalid";
const CANNOT_VERIFY = "cannot verify attestation";
const FORMATS = [SNP_FORMAT, VIRTUAL_FORMAT] as const;

interface VerifyOptions {
  format: (typeof FORMATS)[number];
  quote: string;
  endorsements?: string;
  publicKey?: string;
  now?: string;
  json?: boolean;
}

const HELP_AFTER = `
AMD_SEV_SNP_v1 checks, in order (as CCF's verify_snp_attestation_report):
  1. the report is 1184 bytes, version >= 2, signed with ECDSA P-384/SHA-384 by the VCEK (or a
     VLEK), chip key not masked, VMPL <= 3, guest policy without debug or migration agent;
  2. the endorsements are exactly 3 certificates (VCEK, ASK, ARK); the ARK's public key is
     AMD's root key for the product (Milan, Genoa, Turin: from the report's CPUID, or for a
     version 2 report from the ARK itself); ARK self-signed, ASK issued by the ARK, VCEK by the
     ASK; all three valid at --now;
  3. the report's signature verifies with the VCEK's key;
  4. the VCEK's TCB extensions equal the reported TCB, and its hwID the chip id.

Insecure_Virtual quotes are only decoded: nothing in them is signed.
With --public-key, report_data must also start with SHA-256 of that key (DER).
Exit status: 0 when the attestation verifies, 1 otherwise.

Examples:
  consortia attestation verify --format AMD_SEV_SNP_v1 --quote report.bin \\
    --endorsements chain.pem --json
  consortia attestation verify --format Insecure_Virtual --quote quote.b64 --public-key node.pem
`;

export function registerAttestation(program: Command): void {
  const attestation = program
    .command("attestation")
    .description("Work with node attestations (quotes).");
  attestation
    .command("verify")
    .description("Verify an attestation report offline and print what it attests.")
    .addOption(
      new Option("--format <format>", "the quote's format").choices(FORMATS).makeOptionMandatory(),
    )
    .requiredOption("--quote <file>", "the quote: raw bytes, hex or base64 (virtual: JSON)")
    .option("--endorsements <file>", "PEM chain VCEK, ASK, ARK, or base64 of it (SNP)")
    .option("--public-key <file>", "PEM public key or certificate the report data must bind")
    .option("--now <time>", "check certificate validity at this ISO 8601 time")
    .option("--json", "print one JSON object")
    .addHelpText("after", HELP_AFTER)
    .action((options: VerifyOptions) => {
      verifyCommand(options);
    });
}

function readBytes(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`${CANNOT_VERIFY}: cannot read ${what} ${path} (${err.code})`);
  }
}

/** The file's text, or null for bytes that are not UTF-8. */
function textOf(bytes: Uint8Array): string | null {
  try {
    return fromUtf8(bytes);
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    return null;
  }
}

/** Raw report bytes from a file holding them raw, in hex or in base64. */
function decodeSnpQuoteFile(bytes: Uint8Array, path: string): Uint8Array {
  if (bytes.length === SNP_REPORT_BYTES) return bytes;
  const text = textOf(bytes)?.replace(/\s+/g, "") ?? "";
  const decoded = fromHex(text) ?? fromBase64(text);
  if (text === "" || decoded === null) {
    throw new CliError(
      `${CANNOT_VERIFY}: ${path} is neither a raw ${SNP_REPORT_BYTES}-byte report nor its hex ` +
        `or base64`,
    );
  }
  return decoded;
}

/** PEM text from a file holding PEM or base64 of PEM. */
function decodeEndorsementsFile(bytes: Uint8Array, path: string): string {
  const text = textOf(bytes) ?? "";
  if (text.includes("-----BEGIN")) return text;
  const decoded = fromBase64(text.replace(/\s+/g, ""));
  const pem = decoded === null ? null : textOf(decoded);
  if (pem === null || !pem.includes("-----BEGIN")) {
    throw new CliError(`${CANNOT_VERIFY}: ${path} is neither a PEM chain nor base64 of one`);
  }
  return pem;
}

/** The virtual quote as QuoteInfo.quote carries it: base64 of the JSON report. */
function decodeVirtualQuoteFile(bytes: Uint8Array, path: string): string {
  const text = textOf(bytes)?.trim() ?? "";
  if (text.startsWith("{")) return toBase64(utf8(text));
  if (text === "") throw new CliError(`${CANNOT_VERIFY}: ${path} is empty`);
  return text.replace(/\s+/g, "");
}

function publicKeyDer(path: string): Uint8Array {
  const bytes = readBytes(path, "public key");
  try {
    return new Uint8Array(
      createPublicKey(Buffer.from(bytes)).export({ type: "spki", format: "der" }),
    );
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    throw new CliError(`${CANNOT_VERIFY}: ${path} is not a PEM public key or certificate`);
  }
}

function parseNow(text: string | undefined): Date {
  if (text === undefined) return new Date();
  const now = new Date(text);
  if (Number.isNaN(now.getTime())) {
    throw new CliError(`${CANNOT_VERIFY}: --now ${JSON.stringify(text)} is not an ISO 8601 time`);
  }
  return now;
}

/** Runs a check; its typed failure becomes "attestation is invalid: <reason>". */
function judged<T>(check: () => T): T {
  try {
    return check();
  } catch (err: unknown) {
    if (err instanceof SnpVerificationError || err instanceof AttestationError) {
      throw new CliError(`${INVALID}: ${err.message}`);
    }
    throw err;
  }
}

function verifyCommand(options: VerifyOptions): void {
  const now = parseNow(options.now);
  const keyDer = options.publicKey === undefined ? null : publicKeyDer(options.publicKey);
  const quoteBytes = readBytes(options.quote, "quote");
  if (options.format === SNP_FORMAT) {
    if (options.endorsements === undefined) {
      throw new CliError(`${CANNOT_VERIFY}: --endorsements is required for ${SNP_FORMAT}`);
    }
    const report = decodeSnpQuoteFile(quoteBytes, options.quote);
    const endorsementsPath = options.endorsements;
    const pem = decodeEndorsementsFile(
      readBytes(endorsementsPath, "endorsements"),
      endorsementsPath,
    );
    const verified = judged(() => verifySnpReport(report, pem, { now }));
    if (keyDer !== null) judged(() => verifyQuote(makeSnpQuote(report, pem), keyDer, now));
    printSnp(verified, { json: options.json === true, keyBound: keyDer !== null });
    return;
  }
  const quote: QuoteInfo = {
    format: VIRTUAL_FORMAT,
    quote: decodeVirtualQuoteFile(quoteBytes, options.quote),
    endorsements: "",
  };
  const fields = judged(() => decodeVirtualQuote(quote.quote));
  if (keyDer !== null) judged(() => verifyQuote(quote, keyDer, now));
  printVirtual(fields, { json: options.json === true, keyBound: keyDer !== null });
}

function describeTcb(tcb: SnpTcb): string {
  const fmc = tcb.fmc === undefined ? "" : `fmc ${tcb.fmc}, `;
  return (
    `${tcb.hex} (${fmc}bootloader ${tcb.bootloader}, tee ${tcb.tee}, snp ${tcb.snp}, ` +
    `microcode ${tcb.microcode})`
  );
}

function printSnp(report: SnpReport, how: { json: boolean; keyBound: boolean }): void {
  if (how.json) {
    const object = {
      format: SNP_FORMAT,
      measurement: report.measurement,
      report_data: report.reportData,
      host_data: report.hostData,
      reported_tcb: report.reportedTcb,
      product: report.product,
      cpuid: report.cpuid ?? null,
      chip_id: report.chipId,
      policy: `0x${report.policy.toString(16)}`,
      version: report.version,
      guest_svn: report.guestSvn,
      vmpl: report.vmpl,
      signing_key: report.signingKey,
      family_id: report.familyId,
      image_id: report.imageId,
      id_key_digest: report.idKeyDigest,
      platform_tcb: report.platformTcb,
      committed_tcb: report.committedTcb,
      launch_tcb: report.launchTcb,
      key_bound: how.keyBound,
    };
    process.stdout.write(JSON.stringify(object, null, 2) + "\n");
    return;
  }
  const cpuid = report.cpuid === undefined ? "" : ` (CPUID ${report.cpuid})`;
  const lines = [
    `SEV-SNP attestation report verified (AMD ${report.product}, signed by the ` +
      `${report.signingKey})`,
    `  measurement:  ${report.measurement}`,
    `  report_data:  ${report.reportData}`,
    `  host_data:    ${report.hostData}`,
    `  reported_tcb: ${describeTcb(report.reportedTcb)}`,
    `  product:      ${report.product}${cpuid}`,
    `  chip_id:      ${report.chipId}`,
    `  policy:       0x${report.policy.toString(16)}`,
    `  version:      ${report.version}`,
    `  guest_svn:    ${report.guestSvn}`,
    `  vmpl:         ${report.vmpl}`,
  ];
  if (how.keyBound) lines.push("  checked: report_data binds the public key");
  process.stdout.write(lines.join("\n") + "\n");
}

function printVirtual(
  fields: { measurement: string; hostData: string; reportData: string },
  how: { json: boolean; keyBound: boolean },
): void {
  const reportDataBytes = fromBase64(fields.reportData);
  const reportData = reportDataBytes === null ? fields.reportData : toHex(reportDataBytes);
  if (how.json) {
    const object = {
      format: VIRTUAL_FORMAT,
      measurement: fields.measurement,
      report_data: reportData,
      host_data: fields.hostData,
      key_bound: how.keyBound,
    };
    process.stdout.write(JSON.stringify(object, null, 2) + "\n");
    return;
  }
  const lines = [
    "virtual attestation decoded (Insecure_Virtual: nothing in it is signed)",
    `  measurement:  ${fields.measurement}`,
    `  report_data:  ${reportData}`,
    `  host_data:    ${fields.hostData}`,
  ];
  if (how.keyBound) lines.push("  checked: report_data binds the public key");
  process.stdout.write(lines.join("\n") + "\n");
}
