/**
 * `consortia keygen`: member and user identities, like CCF's keygenerator.sh
 * (ccf-compatibility.md §10).
 *
 * Writes into --out (created if missing):
 *   <name>_privk.pem      EC private key (SEC 1 PEM, mode 0600)
 *   <name>_cert.pem       self-signed cert, CN=<name>, valid 365 days
 *   <name>_enc_privk.pem  RSA-2048 private key (PKCS#8 PEM, mode 0600)  [--gen-enc-key]
 *   <name>_enc_pubk.pem   its public key (SPKI PEM)                     [--gen-enc-key]
 * and prints the paths and the identity's id (hex SHA-256 of the certificate DER).
 *
 * Invariant: existing files are never overwritten without --force, and nothing is written when
 * any target exists (so a refused run leaves no half-made identity behind).
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Option, type Command } from "commander";
import {
  DEFAULT_CURVE,
  EC_CURVE_NAMES,
  certFingerprint,
  generateEncryptionKey,
  generateIdentity,
  type EcCurveName,
} from "../../crypto/identity.js";
import { isNodeError } from "../../base/errors.js";
import { CliError } from "../cli-error.js";

const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const PRIVATE_MODE = 0o600;
const PUBLIC_MODE = 0o644;

interface KeygenOptions {
  name: string;
  curve: EcCurveName;
  genEncKey?: boolean;
  out: string;
  force?: boolean;
}

interface OutputFile {
  readonly label: string;
  readonly path: string;
  readonly contents: string;
  readonly mode: number;
}

const HELP_AFTER = `
Files written to --out (default: the current directory, created if missing):
  <name>_privk.pem       EC private key (SEC 1 "EC PRIVATE KEY" PEM), mode 0600
  <name>_cert.pem        self-signed X.509 cert, subject CN=<name>, valid 365 days,
                         signed with SHA-384 (secp384r1) or SHA-256 (secp256r1)
  <name>_enc_privk.pem   RSA-2048 private key (PKCS#8 PEM), mode 0600   [--gen-enc-key]
  <name>_enc_pubk.pem    RSA-2048 public key (SPKI PEM)                 [--gen-enc-key]

The printed id is the member/user id: the hex SHA-256 of the certificate's DER encoding.
Members that hold recovery shares need an encryption key (--gen-enc-key).

Example:
  consortia keygen --name member0 --gen-enc-key --out workspace/common
`;

export function registerKeygen(program: Command): void {
  program
    .command("keygen")
    .description(
      "Generate a member or user identity (key + self-signed certificate), like " +
        "CCF's keygenerator.sh.",
    )
    .requiredOption("--name <name>", "identity name, used as CN and file prefix ([A-Za-z0-9_.-]+)")
    .addOption(
      new Option("--curve <curve>", "elliptic curve of the identity key")
        .choices(EC_CURVE_NAMES)
        .default(DEFAULT_CURVE),
    )
    .option("--gen-enc-key", "also generate an RSA-2048 encryption key (for recovery shares)")
    .option("--out <dir>", "directory to write the files to", ".")
    .option("--force", "overwrite existing files")
    .addHelpText("after", HELP_AFTER)
    .action(async (options: KeygenOptions) => {
      await keygen(options);
    });
}

async function keygen(options: KeygenOptions): Promise<void> {
  if (!NAME_RE.test(options.name)) {
    throw new CliError(
      `invalid --name ${JSON.stringify(options.name)}: use letters, digits, ` +
        "'_', '.' and '-' only",
    );
  }
  const base = (suffix: string): string => join(options.out, `${options.name}_${suffix}.pem`);
  const targets = [base("privk"), base("cert")];
  if (options.genEncKey === true) targets.push(base("enc_privk"), base("enc_pubk"));
  const existing = targets.filter((path) => existsSync(path));
  if (existing.length > 0 && options.force !== true) {
    throw new CliError(`refusing to overwrite existing ${existing.join(", ")} (use --force)`);
  }

  const identity = await generateIdentity({
    name: options.name,
    curve: options.curve,
    now: new Date(),
  });
  const files: OutputFile[] = [
    {
      label: "private key",
      path: base("privk"),
      contents: identity.privateKeyPem,
      mode: PRIVATE_MODE,
    },
    { label: "certificate", path: base("cert"), contents: identity.certPem, mode: PUBLIC_MODE },
  ];
  if (options.genEncKey === true) {
    const enc = generateEncryptionKey();
    files.push(
      {
        label: "encryption private key",
        path: base("enc_privk"),
        contents: enc.privateKeyPem,
        mode: PRIVATE_MODE,
      },
      {
        label: "encryption public key",
        path: base("enc_pubk"),
        contents: enc.publicKeyPem,
        mode: PUBLIC_MODE,
      },
    );
  }
  writeFiles(options.out, files);
  for (const file of files) process.stdout.write(`${file.label}: ${file.path}\n`);
  process.stdout.write(`id: ${certFingerprint(identity.certPem)}\n`);
}

function writeFiles(dir: string, files: readonly OutputFile[]): void {
  try {
    mkdirSync(dir, { recursive: true });
    for (const file of files) {
      writeFileSync(file.path, file.contents, { mode: file.mode });
      // `mode` applies only when the file is created; --force may be replacing one.
      chmodSync(file.path, file.mode);
    }
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot write identity files to ${dir}: ${err.message}`);
  }
}
