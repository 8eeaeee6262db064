/**
 * `consortia ledger verify --dir DIR [--service-cert FILE]`: reads every ledger file and entry,
 * checks framing, recomputes the Merkle tree and checks every signature's root and ECDSA
 * signature. Exit 0 when everything read verifies (a torn tail of the last, uncommitted file is
 * reported as truncatable, not as corruption, and entries after the last signature are reported
 * as unsigned unless they sit in a `.committed` file); exit 1 naming the file and offset
 * otherwise, or with one line for a directory or file that cannot be read.
 *
 * A ledger whose first file starts above seqno 1 (written after a snapshot) cannot have its
 * roots recomputed without the snapshot's tree state: it is checked for framing, seqno
 * continuity and signatures over their claimed roots only, and the output says that roots were
 * not checked. (A flag to start from a snapshot's Merkle frontier waits for snapshots.)
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { isNodeError } from "../../base/errors.js";
import { CliError } from "../cli-error.js";
import { LedgerVerifier } from "../../ledger/ledger-verifier.js";
import {
  listLedgerFiles,
  readLedger,
  LedgerError,
  type LedgerFileInfo,
} from "../../ledger/io/ledger-reader.js";
import { createProgress } from "../progress.js";
import { registerLedgerShow } from "./ledger-show.js";

interface VerifyOptions {
  dir: string;
  serviceCert?: string;
  progress?: boolean;
}

const COMMITTED_SUFFIX = ".committed";

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
        "first problem. A ledger starting after a snapshot (first seqno above 1) is checked " +
        "without roots, and the output says so.",
    )
    .requiredOption("--dir <dir>", "ledger directory (ledger_<first>-<last>[.committed] files)")
    .option("--service-cert <file>", "service certificate that must have issued signing certs")
    .option("--no-progress", "never show a progress bar")
    .action((options: VerifyOptions) => {
      verifyLedger(options);
    });
  registerLedgerShow(ledger);
}

function readServiceCert(path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read --service-cert ${path}: ${err.message}`);
  }
}

function verifyLedger(options: VerifyOptions): void {
  if (!existsSync(options.dir) || !statSync(options.dir).isDirectory()) {
    throw new CliError(`ledger directory not found: ${options.dir}`);
  }
  const serviceCertPem = readServiceCert(options.serviceCert);
  let files: LedgerFileInfo[];
  try {
    files = listLedgerFiles(options.dir);
  } catch (err: unknown) {
    throw asCliError(err, null);
  }
  const startSeqno = files[0]?.firstSeqno;
  if (startSeqno === undefined) throw new CliError(`no ledger files in ${options.dir}`);
  const verifier = new LedgerVerifier({ serviceCertPem, startSeqno });
  if (!verifier.rootsChecked) {
    console.log(
      `ledger starts at seqno ${startSeqno}: roots can be checked only from a snapshot's ` +
        "tree state",
    );
  }
  const totalBytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
  const progress = createProgress({
    enabled: options.progress !== false && totalBytes >= PROGRESS_THRESHOLD_BYTES,
    totalBytes,
  });
  let scan: Scan;
  try {
    scan = scanLedger(options.dir, verifier, (done) => progress.update(done));
  } finally {
    progress.stop();
  }
  checkCommittedSigned(scan.firstUnsigned, verifier);
  report(verifier, files.length, scan.tornTail);
}

interface EntryPosition {
  readonly file: string;
  readonly offset: number;
  readonly seqno: number;
}

interface Scan {
  readonly tornTail: string | null;
  /** The first entry after the last verified signature, if any. */
  readonly firstUnsigned: EntryPosition | null;
}

/** Feeds every entry to the verifier; throws CliError naming file and offset on corruption. */
function scanLedger(
  dir: string,
  verifier: LedgerVerifier,
  onProgress: (done: number) => void,
): Scan {
  let tornTail: string | null = null;
  let firstUnsigned: EntryPosition | null = null;
  try {
    for (const item of readLedger(dir, { onProgress })) {
      if (item.kind === "torn-tail") {
        tornTail =
          `${item.file} at offset ${item.offset}: ${item.bytesRemaining} bytes of a torn ` +
          "last entry (truncatable tail of an uncommitted file, not corruption)";
        continue;
      }
      const step = verifier.push(item.entry);
      if (step.kind === "invalid") {
        throw new CliError(
          `ledger invalid: ${item.file} at offset ${item.offset} (seqno ${step.seqno}): ` +
            `${step.reason}\nlast verified seqno: ${verifier.lastVerifiedSeqno}`,
        );
      }
      if (step.kind === "signature") firstUnsigned = null;
      else firstUnsigned ??= { file: item.file, offset: item.offset, seqno: step.seqno };
    }
  } catch (err: unknown) {
    throw asCliError(err, verifier);
  }
  return { tornTail, firstUnsigned };
}

/**
 * Entries after the last signature are normal at the end of a ledger, but a `.committed` file
 * claims that a signature covers every entry in it. Committed files are immutable and renamed
 * only after the signature is durable, so unsigned entries in one mean a signature was cut
 * out, and with it the only check on those entries' bytes.
 */
function checkCommittedSigned(firstUnsigned: EntryPosition | null, verifier: LedgerVerifier): void {
  if (firstUnsigned === null || !firstUnsigned.file.endsWith(COMMITTED_SUFFIX)) return;
  const { file, offset, seqno } = firstUnsigned;
  throw new CliError(
    `ledger invalid: ${file} at offset ${offset} (seqno ${seqno}): a committed file holds ` +
      "entries that no signature covers (a signature was removed?)\n" +
      `last verified seqno: ${verifier.lastVerifiedSeqno}`,
  );
}

/** Maps reader and file system errors to one-line CLI errors; anything else is a bug. */
function asCliError(err: unknown, verifier: LedgerVerifier | null): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof LedgerError) {
    const last = verifier?.lastVerifiedSeqno ?? 0;
    return new CliError(`ledger invalid: ${err.message}\nlast verified seqno: ${last}`);
  }
  if (isFileSystemError(err)) return new CliError(`cannot read the ledger: ${err.message}`);
  return err;
}

function isFileSystemError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).syscall === "string";
}

function report(verifier: LedgerVerifier, fileCount: number, tornTail: string | null): void {
  const unsigned = verifier.lastSeqno - verifier.lastVerifiedSeqno;
  const signatures = verifier.signatureCount;
  const entries = verifier.rootsChecked
    ? `${verifier.entryCount}`
    : `${verifier.entryCount} (seqnos ${verifier.startSeqno}..${verifier.lastSeqno})`;
  console.log(`files: ${fileCount}, entries: ${entries}, signatures: ${signatures}`);
  if (unsigned > 0) {
    console.log(`${unsigned} entries after the last signature are well-formed but not yet signed`);
  }
  if (tornTail !== null) console.log(`warning: ${tornTail}`);
  if (!verifier.rootsChecked) {
    console.log(
      "roots not checked: framing, seqno continuity and each signature over the root it " +
        "claims only (an altered ordinary entry would go unnoticed)",
    );
  }
  console.log(`last verified seqno: ${verifier.lastVerifiedSeqno}`);
  console.log(verifier.rootsChecked ? "ledger OK" : "ledger OK (roots not checked)");
}
