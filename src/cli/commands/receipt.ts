/**
 * `consortia receipt verify`: checks a CCF JSON receipt offline against a service certificate
 * (ccf-compatibility.md §6.5). Exit 0 and "receipt is valid (root <hex>)" on success; exit 1 and
 * "receipt is invalid: <reason>" for a forged, malformed or unreadable receipt; exit 1 and
 * "cannot verify receipt: ..." when the service certificate is unreadable or not a certificate.
 * Every failure is one line on stderr, never a stack trace.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { toHex } from "../../base/bytes.js";
import { isNodeError } from "../../base/errors.js";
import { CertError, parseCertificate } from "../../crypto/certs.js";
import { ReceiptError, parseReceipt, verifyReceipt, type Receipt } from "../../ledger/receipt.js";
import { CliError } from "../cli-error.js";

const INVALID = "receipt is invalid";
/** The receipt was not judged: the trust anchor itself is unusable. */
const CANNOT_VERIFY = "cannot verify receipt";

interface VerifyOptions {
  receipt: string;
  serviceCert: string;
}

const HELP_AFTER = `
Checks, in order:
  1. the receipt is well-formed JSON in CCF's receipt shape (hex digests, base64 signature,
     PEM certs, commit evidence "ce:<view>.<seqno>:<hex>", leaf or leaf_components);
  2. node_id is the SHA-256 of the public key in "cert";
  3. the leaf, SHA-256(write_set_digest || SHA-256(commit_evidence) || claims_digest) (or
     "leaf" for a signature transaction), folded with "proof" gives a root whose ECDSA
     "signature" verifies with the cert's key;
  4. "cert" is issued by the service certificate, directly or through one of
     "service_endorsements" that the service certificate issued.

Exit status: 0 when the receipt is valid, 1 otherwise.

Example:
  consortia receipt verify --receipt receipt.json --service-cert service_cert.pem
`;

export function registerReceipt(program: Command): void {
  const receipt = program.command("receipt").description("Work with CCF transaction receipts.");
  receipt
    .command("verify")
    .description("Verify a JSON receipt offline against the service certificate.")
    .requiredOption("--receipt <file>", "JSON receipt (as returned by GET /app/receipt)")
    .requiredOption("--service-cert <file>", "PEM service certificate (service_cert.pem)")
    .addHelpText("after", HELP_AFTER)
    .action((options: VerifyOptions) => {
      verifyCommand(options);
    });
}

/** Reads a file; failures become one-line CliErrors starting with `prefix`. */
function readText(path: string, what: string, prefix: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`${prefix}: cannot read ${what} ${path} (${err.code})`);
  }
}

function verifyCommand(options: VerifyOptions): void {
  const serviceCertPem = readText(options.serviceCert, "service certificate", CANNOT_VERIFY);
  try {
    parseCertificate(serviceCertPem);
  } catch (err: unknown) {
    if (!(err instanceof CertError)) throw err;
    throw new CliError(`${CANNOT_VERIFY}: ${options.serviceCert} is not a PEM certificate`);
  }
  const text = readText(options.receipt, "receipt file", INVALID);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CliError(`${INVALID}: ${options.receipt} is not JSON (${err.message})`);
  }
  let receipt: Receipt;
  try {
    receipt = parseReceipt(json);
  } catch (err: unknown) {
    if (err instanceof ReceiptError) throw new CliError(`${INVALID}: ${err.message}`);
    throw err;
  }
  const result = verifyReceipt(receipt, serviceCertPem);
  if (result.kind === "invalid") throw new CliError(`${INVALID}: ${result.reason}`);
  process.stdout.write(`receipt is valid (root ${toHex(result.root)})\n`);
}
