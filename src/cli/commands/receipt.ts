/**
 * `consortia receipt verify`: checks a CCF receipt offline against a service certificate
 * (ccf-compatibility.md §6.5): a JSON receipt (`describe_receipt_v1`, as GET /app/receipt
 * answers) or a COSE receipt (as GET /app/log/public/cose_receipt answers), told apart by their
 * first byte (CBOR tag 18 or an array of 4 for COSE, JSON text otherwise). Exit 0 with
 * "receipt is valid (root <hex>)" or "COSE receipt is valid (root <hex>)" and one line per check
 * made; exit 1 and "receipt is invalid: <reason>" for a forged, malformed or unreadable receipt;
 * exit 1 and "cannot verify receipt: ..." when a certificate or option is unusable. Every
 * failure is one line on stderr, never a stack trace.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { fromHex, fromUtf8, toHex } from "../../base/bytes.js";
import { isNodeError, isTextDecodeError } from "../../base/errors.js";
import { CertError, isIssuedBy, parseCertificate } from "../../crypto/certs.js";
import { CoseAlg } from "../../crypto/cose.js";
import { COSE_HEADER_VDS } from "../../ledger/cose-signature.js";
import {
  CoseReceiptError,
  decodeCoseReceipt,
  looksLikeCoseSign1,
  verifyCoseReceipt,
  type CoseReceipt,
} from "../../ledger/cose-receipt.js";
import { ReceiptError, parseReceipt, verifyReceipt, type Receipt } from "../../ledger/receipt.js";
import { CliError } from "../cli-error.js";

const INVALID = "receipt is invalid";
/** The receipt was not judged: the trust anchor itself is unusable. */
const CANNOT_VERIFY = "cannot verify receipt";
const PEM_BLOCK_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

interface VerifyOptions {
  receipt: string;
  serviceCert: string;
  serviceEndorsement?: string[];
  claimsDigest?: string;
}

/** What the command checks against, read and validated from the options. */
interface Trust {
  readonly serviceCertPem: string;
  readonly serviceEndorsements: readonly string[];
  readonly claimsDigest: Uint8Array | null;
}

const HELP_AFTER = `
The receipt's format is told by its content: a COSE receipt starts with CBOR tag 18 (or an
array of 4), anything else is read as JSON.

JSON receipt, checked in order:
  1. the receipt is well-formed JSON in CCF's receipt shape (hex digests, base64 signature,
     PEM certs, commit evidence "ce:<view>.<seqno>:<hex>", leaf or leaf_components);
  2. node_id is the SHA-256 of the public key in "cert";
  3. the leaf, SHA-256(write_set_digest || SHA-256(commit_evidence) || claims_digest) (or
     "leaf" for a signature transaction), folded with "proof" gives a root whose ECDSA
     "signature" verifies with the cert's key;
  4. "cert" is issued by the service certificate, directly or through one of
     "service_endorsements" that the service certificate issued.

COSE receipt, checked in order (as CCF's ccf.cose.verify_receipt):
  1. a tagged COSE_Sign1 with a detached payload, kid and vds in the protected header and
     inclusion proofs in unprotected header 396;
  2. kid is the hex SHA-256 of the service certificate's public key, or of a
     --service-endorsement that the service certificate issued (a previous service identity,
     for transactions from before a disaster recovery);
  3. vds (395) is 2, CCF's ledger tree;
  4. each proof's leaf, SHA-256(write_set_digest || SHA-256(commit_evidence) ||
     claims_digest), folded with its path gives a root over which the signature verifies.

With --claims-digest, the receipt's claims digest must also equal it.
Exit status: 0 when the receipt is valid, 1 otherwise.

Examples:
  consortia receipt verify --receipt receipt.json --service-cert service_cert.pem
  consortia receipt verify --receipt receipt.cose --service-cert service_cert.pem \\
    --claims-digest 0000000000000000000000000000000000000000000000000000000000000000
`;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerReceipt(program: Command): void {
  const receipt = program.command("receipt").description("Work with CCF transaction receipts.");
  receipt
    .command("verify")
    .description("Verify a JSON or COSE receipt offline against the service certificate.")
    .requiredOption(
      "--receipt <file>",
      "JSON receipt (GET /app/receipt) or COSE receipt (GET /app/log/public/cose_receipt)",
    )
    .requiredOption("--service-cert <file>", "PEM service certificate (service_cert.pem)")
    .option(
      "--service-endorsement <file>",
      "PEM previous service identities endorsed by the service certificate (COSE; repeatable)",
      collect,
    )
    .option("--claims-digest <hex>", "the claims digest the receipt must carry (64 hex)")
    .addHelpText("after", HELP_AFTER)
    .action((options: VerifyOptions) => {
      verifyCommand(options);
    });
}

/** Reads a file; failures become one-line CliErrors starting with `prefix`. */
function readBytes(path: string, what: string, prefix: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`${prefix}: cannot read ${what} ${path} (${err.code})`);
  }
}

function isCertificate(pem: string): boolean {
  try {
    parseCertificate(pem);
    return true;
  } catch (err: unknown) {
    if (err instanceof CertError) return false;
    throw err;
  }
}

/** The PEM certificates of a file (one or more); a file with none, or a bad one, is refused. */
function readCertificates(path: string, what: string): string[] {
  const bytes = readBytes(path, what, CANNOT_VERIFY);
  let text = "";
  try {
    text = fromUtf8(bytes);
  } catch (err: unknown) {
    // Bytes that are not UTF-8 hold no PEM: refused below like any other non-certificate.
    if (!isTextDecodeError(err)) throw err;
  }
  const pems = text.match(PEM_BLOCK_RE) ?? [];
  if (pems.length === 0 || !pems.every(isCertificate)) {
    throw new CliError(`${CANNOT_VERIFY}: ${path} is not a PEM certificate`);
  }
  return pems;
}

function readTrust(options: VerifyOptions): Trust {
  const [serviceCertPem] = readCertificates(options.serviceCert, "service certificate");
  const serviceEndorsements = (options.serviceEndorsement ?? []).flatMap((path) =>
    readCertificates(path, "service endorsement"),
  );
  let claimsDigest: Uint8Array | null = null;
  if (options.claimsDigest !== undefined) {
    claimsDigest = fromHex(options.claimsDigest);
    if (claimsDigest === null || claimsDigest.byteLength !== 32) {
      throw new CliError(`${CANNOT_VERIFY}: --claims-digest must be 64 hex characters`);
    }
  }
  return { serviceCertPem: serviceCertPem!, serviceEndorsements, claimsDigest };
}

function verifyCommand(options: VerifyOptions): void {
  const trust = readTrust(options);
  const bytes = readBytes(options.receipt, "receipt file", INVALID);
  const report = looksLikeCoseSign1(bytes)
    ? verifyCose(bytes, trust)
    : verifyJson(bytes, options.receipt, trust);
  process.stdout.write(report.map((line, i) => (i === 0 ? line : `  ${line}`)).join("\n") + "\n");
}

function parseJsonReceipt(bytes: Uint8Array, path: string): Receipt {
  let json: unknown;
  try {
    json = JSON.parse(fromUtf8(bytes));
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    throw new CliError(`${INVALID}: ${path} is not JSON (${err.message})`);
  }
  try {
    return parseReceipt(json);
  } catch (err: unknown) {
    if (err instanceof ReceiptError) throw new CliError(`${INVALID}: ${err.message}`);
    throw err;
  }
}

/** Verifies a JSON receipt; returns the lines to print. */
function verifyJson(bytes: Uint8Array, path: string, trust: Trust): string[] {
  const receipt = parseJsonReceipt(bytes, path);
  const result = verifyReceipt(receipt, trust.serviceCertPem);
  if (result.kind === "invalid") throw new CliError(`${INVALID}: ${result.reason}`);
  const claims = receipt.leaf_components?.claims_digest;
  const lines = [
    `receipt is valid (root ${toHex(result.root)})`,
    "checked: node_id is the SHA-256 of the cert's public key",
    receipt.leaf !== undefined
      ? "checked: the signature verifies over leaf (a signature transaction's root)"
      : `checked: the leaf folded with ${receipt.proof.length} proof steps gives the root, ` +
        "over which the signature verifies with the cert's key",
    isIssuedBy(receipt.cert, trust.serviceCertPem)
      ? "checked: cert is issued by the service certificate"
      : "checked: cert is issued by a service endorsement the service certificate issued",
  ];
  if (trust.claimsDigest === null) {
    if (claims !== undefined) lines.push(`not checked: claims digest ${claims}`);
    return lines;
  }
  if (claims === undefined) {
    throw new CliError(`${INVALID}: the receipt has no claims digest to compare`);
  }
  if (claims.toLowerCase() !== toHex(trust.claimsDigest)) {
    throw new CliError(
      `${INVALID}: claims digest ${claims} is not the expected ${toHex(trust.claimsDigest)}`,
    );
  }
  return [...lines, `checked: claims digest ${claims} as expected`];
}

function decodeCose(bytes: Uint8Array): CoseReceipt {
  try {
    return decodeCoseReceipt(bytes);
  } catch (err: unknown) {
    if (err instanceof CoseReceiptError) throw new CliError(`${INVALID}: ${err.message}`);
    throw err;
  }
}

/** Verifies a COSE receipt; returns the lines to print. */
function verifyCose(bytes: Uint8Array, trust: Trust): string[] {
  const receipt = decodeCose(bytes);
  const result = verifyCoseReceipt(
    receipt,
    trust,
    trust.claimsDigest === null ? {} : { claimsDigest: trust.claimsDigest },
  );
  if (result.kind === "invalid") throw new CliError(`${INVALID}: ${result.reason}`);
  const kid = fromUtf8(receipt.kid);
  const signer =
    result.signer.kind === "service"
      ? `kid ${kid} is the service certificate's key`
      : `kid ${kid} is the key of service endorsement ${result.signer.index}, issued by the ` +
        "service certificate";
  const lines = [
    `COSE receipt is valid (root ${result.roots.map(toHex).join(", ")})`,
    "checked: tagged COSE_Sign1, payload detached, inclusion proofs in header 396",
    `checked: ${signer}`,
    `checked: vds (${COSE_HEADER_VDS}) is 2, CCF's ledger tree`,
  ];
  for (const [i, proof] of receipt.proofs.entries()) {
    lines.push(
      `checked: proof ${i}: the leaf of ${proof.commitEvidence} folded with ` +
        `${proof.path.length} steps gives root ${toHex(result.roots[i]!)}, over which the ` +
        `${CoseAlg[receipt.message.alg]} signature verifies`,
    );
    const claims = toHex(proof.claimsDigest);
    lines.push(
      trust.claimsDigest === null
        ? `not checked: claims digest ${claims}`
        : `checked: claims digest ${claims} as expected`,
    );
  }
  const { issuer, subject, issuedAt, txid } = receipt.claims;
  const facts = [
    txid === undefined ? null : `signed at txid ${txid}`,
    issuer === undefined || issuer === "" ? null : `issuer ${issuer}`,
    subject === undefined || subject === "" ? null : `subject ${subject}`,
    issuedAt === undefined ? null : `iat ${issuedAt}`,
  ].filter((fact) => fact !== null);
  if (facts.length > 0) lines.push(`not checked (as signed): ${facts.join(", ")}`);
  return lines;
}
