/**
 * `consortia ledger verify --dir DIR [--service-cert FILE]`: reads every ledger file and entry,
 * checks framing, recomputes the Merkle tree and checks every signature's root and ECDSA
 * signature. Exit 0 when everything read verifies (a torn tail of the last, uncommitted file is
 * reported as truncatable, not as corruption); exit 1 naming the file and offset otherwise.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { CliError } from "../cli-error.js";
import { LedgerVerifier } from "../../ledger/ledger-verifier.js";
import { listLedgerFiles, readLedger, LedgerError } from "../../ledger/io/ledger-reader.js";
import { createProgress } from "../progress.js";

interface VerifyOptions {
  dir: string;
  serviceCert?: string;
  progress?: boolean;
}

/** Ledgers larger than this get a progress bar (or periodic lines off a TTY). */
const PROGRESS_THRESHOLD_BYTES = 32 * 1024 * 1024;

export function registerLedger(program: Command): void {
  const ledger = program.command("ledger").description("Inspect and verify ledger directories.");
  ledger
    .command("verify")
    .description(
      "Verify a ledger directory: file names and framing, every entry's public domain, the " +
        "Merkle tree recomputed from all entries, and every signature transaction's root and " +
        "ECDSA signature (and, with --service-cert, that signing certs are issued by the " +
        "service). Prints the last verified seqno; exits 1 naming the file and offset of the " +
        "first problem.",
    )
    .requiredOption("--dir <dir>", "ledger directory (ledger_<first>-<last>[.committed] files)")
    .option("--service-cert <file>", "service certificate that must have issued signing certs")
    .option("--no-progress", "never show a progress bar")
    .action((options: VerifyOptions) => {
      verifyLedger(options);
    });
}

function readServiceCert(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err: unknown) {
    throw new CliError(`cannot read --service-cert ${path}: ${(err as Error).message}`);
  }
}

function verifyLedger(options: VerifyOptions): void {
  if (!existsSync(options.dir) || !statSync(options.dir).isDirectory()) {
    throw new CliError(`ledger directory not found: ${options.dir}`);
  }
  const verifier = new LedgerVerifier({ serviceCertPem: readServiceCert(options.serviceCert) });
  let files;
  try {
    files = listLedgerFiles(options.dir);
  } catch (err: unknown) {
    if (err instanceof LedgerError) throw new CliError(`ledger invalid: ${err.message}`);
    throw err;
  }
  if (files.length === 0) throw new CliError(`no ledger files in ${options.dir}`);
  const totalBytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
  const progress = createProgress({
    enabled: options.progress !== false && totalBytes >= PROGRESS_THRESHOLD_BYTES,
    totalBytes,
  });
  let tornTail: string | null = null;
  try {
    for (const item of readLedger(options.dir, { onProgress: (done) => progress.update(done) })) {
      if (item.kind === "torn-tail") {
        tornTail = `${item.file} at offset ${item.offset}: ${item.bytesRemaining} bytes of a torn ` +
          "last entry (truncatable tail of an uncommitted file, not corruption)";
        continue;
      }
      const step = verifier.push(item.entry);
      if (step.kind === "invalid") {
        progress.stop();
        throw new CliError(
          `ledger invalid: ${item.file} at offset ${item.offset} (seqno ${step.seqno}): ` +
            `${step.reason}\nlast verified seqno: ${verifier.lastVerifiedSeqno}`,
        );
      }
    }
  } catch (err: unknown) {
    progress.stop();
    if (err instanceof LedgerError) {
      throw new CliError(`ledger invalid: ${err.message}\nlast verified seqno: ${verifier.lastVerifiedSeqno}`);
    }
    throw err;
  }
  progress.stop();
  report(verifier, files.length, tornTail);
}

function report(verifier: LedgerVerifier, fileCount: number, tornTail: string | null): void {
  const unsigned = verifier.lastSeqno - verifier.lastVerifiedSeqno;
  console.log(`files: ${fileCount}, entries: ${verifier.lastSeqno}, signatures: ${verifier.signatureCount}`);
  if (unsigned > 0) {
    console.log(`${unsigned} entries after the last signature are well-formed but not yet signed`);
  }
  if (tornTail !== null) console.log(`warning: ${tornTail}`);
  console.log(`last verified seqno: ${verifier.lastVerifiedSeqno}`);
  console.log("ledger OK");
}
