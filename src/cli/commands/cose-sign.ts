/**
 * `consortia cose-sign`: signs a governance request body as a COSE_Sign1, like the `ccf_cose_sign1`
 * tool of CCF's Python package (ccf-compatibility.md §4.1, §10). The output is the raw tagged
 * COSE_Sign1, ready to POST with `Content-Type: application/cose`.
 *
 * Protected header: alg from the signing key's curve (ES256 / ES384 / ES512), kid = the member id
 * (hex SHA-256 of the certificate DER) as a byte string, ccf.gov.msg.type, ccf.gov.msg.created_at
 * (default: now) and ccf.gov.msg.proposal_id when given.
 *
 * Invariants: nothing is written unless the request is valid (key matches the certificate,
 * proposal id present for ballot/withdrawal, created_at in 0..9999999999); every failure is one
 * CliError line, never a stack trace.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { equalBytes, utf8 } from "../../base/bytes.js";
import { isForeignError, isNodeError } from "../../base/errors.js";
import { CertError, publicKeyOfCert } from "../../crypto/certs.js";
import { COSE_HEADER_KID, CoseError, signSign1, type CoseLabel } from "../../crypto/cose.js";
import { memberIdFromCert } from "../../crypto/identity.js";
import {
  GOV_MSG_TYPES,
  HEADER_MSG_CREATED_AT,
  HEADER_MSG_PROPOSAL_ID,
  HEADER_MSG_TYPE,
  MAX_CREATED_AT,
  type GovMsgType,
} from "../../gov/cose-request.js";
import { CliError } from "../cli-error.js";

interface CoseSignOptions {
  content: string;
  signingKey: string;
  signingCert: string;
  msgType: GovMsgType;
  proposalId?: string;
  createdAt?: string;
  out?: string;
}

const HELP_AFTER = `
The body (--content, "-" for stdin) is signed as is; it may be empty (withdrawal,
state_digest). Payloads by message type:
  proposal        {"actions":[{"name": "...", "args": {...}}]}
  ballot          {"ballot": "<JS module source>"}          (needs --proposal-id)
  withdrawal      empty                                      (needs --proposal-id)
  state_digest    empty
  ack             {"stateDigest": "<hex>"}
  recovery_share  {"share": "<base64 decrypted share>"}

--created-at takes seconds since the Unix epoch or an ISO 8601 date; the default is now.
The COSE_Sign1 bytes go to stdout, or to --out.

Example:
  consortia cose-sign --content proposal.json --signing-key member0_privk.pem \\
    --signing-cert member0_cert.pem --msg-type proposal --out proposal.cose
`;

export function registerCoseSign(program: Command): void {
  program
    .command("cose-sign")
    .description("Sign a governance request as a COSE_Sign1 (like CCF's ccf_cose_sign1).")
    .requiredOption("--content <file>", 'request body to sign ("-" reads stdin)')
    .requiredOption("--signing-key <file>", "member private key (PEM)")
    .requiredOption("--signing-cert <file>", "member certificate (PEM)")
    .addOption(
      new Option("--msg-type <type>", "ccf.gov.msg.type")
        .choices(GOV_MSG_TYPES)
        .makeOptionMandatory(),
    )
    .option("--proposal-id <id>", "ccf.gov.msg.proposal_id (ballot, withdrawal)")
    .option("--created-at <time>", "epoch seconds or ISO 8601 date (default: now)")
    .option("--out <file>", "write the COSE_Sign1 here instead of stdout")
    .addHelpText("after", HELP_AFTER)
    .action((options: CoseSignOptions) => {
      coseSign(options);
    });
}

function coseSign(options: CoseSignOptions): void {
  if ((options.msgType === "ballot" || options.msgType === "withdrawal") && !options.proposalId) {
    throw new CliError(`--msg-type ${options.msgType} requires --proposal-id`);
  }
  const createdAt = parseCreatedAt(options.createdAt, new Date());
  const certPem = readInput(options.signingCert, "signing certificate").toString("utf8");
  const key = loadSigningKey(options.signingKey);
  const memberId = certMemberId(certPem, key);
  const content = readInput(options.content, "content");

  const header = new Map<CoseLabel, unknown>([
    [COSE_HEADER_KID, utf8(memberId)],
    [HEADER_MSG_TYPE, options.msgType],
    [HEADER_MSG_CREATED_AT, createdAt],
  ]);
  if (options.proposalId !== undefined) header.set(HEADER_MSG_PROPOSAL_ID, options.proposalId);
  let signed: Uint8Array;
  try {
    signed = signSign1(key, header, new Uint8Array(content));
  } catch (err: unknown) {
    if (err instanceof CoseError) throw new CliError(`cannot sign: ${err.message}`);
    throw err;
  }
  if (options.out === undefined) {
    process.stdout.write(signed);
    return;
  }
  try {
    writeFileSync(options.out, signed);
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot write ${options.out}: ${describeError(err)}`);
  }
}

/** Epoch seconds (digits only) or an ISO 8601 date; in 0..9999999999 as CCF requires. */
export function parseCreatedAt(text: string | undefined, now: Date): number {
  let seconds: number;
  if (text === undefined) {
    seconds = Math.floor(now.getTime() / 1000);
  } else if (/^\d+$/.test(text)) {
    seconds = Number(text);
  } else {
    const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(ms)) {
      throw new CliError(
        `invalid --created-at ${JSON.stringify(text)}: use epoch seconds or an ISO 8601 date`,
      );
    }
    seconds = Math.floor(ms / 1000);
  }
  if (!Number.isSafeInteger(seconds) || seconds < 0 || seconds > MAX_CREATED_AT) {
    throw new CliError(`--created-at must be between 0 and ${MAX_CREATED_AT} epoch seconds`);
  }
  return seconds;
}

function readInput(path: string, what: string): Buffer {
  try {
    // fd 0 is stdin; readFileSync reads it to the end.
    return readFileSync(path === "-" ? 0 : path);
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read ${what} ${path}: ${describeError(err)}`);
  }
}

function loadSigningKey(path: string): KeyObject {
  const pem = readInput(path, "signing key");
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch (err: unknown) {
    if (!isForeignError(err)) throw err;
    throw new CliError(`invalid signing key ${path}: ${describeError(err)}`);
  }
  if (key.asymmetricKeyType !== "ec") {
    throw new CliError(`invalid signing key ${path}: not an EC key (need P-256, P-384 or P-521)`);
  }
  return key;
}

/** The member id of the certificate, after checking that `key` is its private half. */
function certMemberId(certPem: string, key: KeyObject): string {
  let certKey: KeyObject;
  let memberId: string;
  try {
    certKey = publicKeyOfCert(certPem);
    memberId = memberIdFromCert(certPem);
  } catch (err: unknown) {
    if (!(err instanceof CertError)) throw err;
    throw new CliError(`invalid signing certificate: ${describeError(err)}`);
  }
  const spki = (k: KeyObject): Uint8Array => k.export({ type: "spki", format: "der" });
  if (!equalBytes(spki(certKey), spki(createPublicKey(key)))) {
    throw new CliError("the signing key does not match the signing certificate");
  }
  return memberId;
}

function describeError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code.startsWith("E") && !code.startsWith("ERR_")) return code;
  return err instanceof Error ? err.message : String(err);
}
