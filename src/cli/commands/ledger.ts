/**
 * `consortia ledger verify --dir DIR [--service-cert FILE] [--from-snapshot FILE | --partial]`:
 * reads every ledger file and entry, checks framing, recomputes the Merkle tree and checks every
 * signature's root, ECDSA signature, serialised tree and COSE signature (ledger-verifier.ts).
 * Exit 0 when everything read verifies (a torn tail of the last, uncommitted file is reported as
 * truncatable, not as corruption, and entries after the last signature are reported as unsigned
 * unless they sit in a `.committed` file); exit 1 naming the file and offset otherwise, or with
 * one line for a directory or file that cannot be read.
 *
 * A ledger whose first file starts above seqno 1 cannot have its roots recomputed from its own
 * entries: it is refused unless `--from-snapshot` names the snapshot it starts from or
 * `--partial` asks for a partial check, which says exactly what it did not check
 * (ledger-verify-start.ts). A ledger of Consortia 0.1 is refused naming its format.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { isNodeError } from "../../base/errors.js";
import { CliError } from "../cli-error.js";
import {
  LedgerVerifier,
  type VerifierCoverage,
  type VerifierStart,
} from "../../ledger/ledger-verifier.js";
import { LegacyFormatError } from "../../ledger/legacy-format.js";
import { SerialisedTreeError } from "../../ledger/merkle/serialised-tree.js";
import {
  listLedgerFiles,
  planLedgerFiles,
  LedgerError,
  type LedgerFileInfo,
} from "../../ledger/io/ledger-reader.js";
import {
  entryDigests,
  type DigestedFile,
  type FileDigestRequest,
} from "../../ledger/io/file-digest.js";
import type { Seqno } from "../../base/ids.js";
import {
  digestWorkerCount,
  inlineDigester,
  workerDigester,
  type Digester,
} from "./ledger-digest-pool.js";
import { createProgress } from "../progress.js";
import { registerLedgerShow } from "./ledger-show.js";
import { verificationStart } from "./ledger-verify-start.js";

interface VerifyOptions {
  dir: string;
  serviceCert?: string;
  progress?: boolean;
  fromSnapshot?: string;
  partial?: boolean;
  jobs?: string;
}

const COMMITTED_SUFFIX = ".committed";

/** Ledgers larger than this get a progress bar (or periodic lines off a TTY). */
const PROGRESS_THRESHOLD_BYTES = 32 * 1024 * 1024;

/** Ledgers at least this large are digested on worker threads (ledger-digest-pool.ts). */
const PARALLEL_THRESHOLD_BYTES = 8 * 1024 * 1024;
const MAX_JOBS = 64;

export function registerLedger(program: Command): void {
  const ledger = program.command("ledger").description("Inspect and verify ledger directories.");
  ledger
    .command("verify")
    .description(
      "Verify a ledger directory: file names and framing, every entry's public domain, the " +
        "Merkle tree recomputed from all entries, and every signature transaction's root, " +
        "ECDSA signature, serialised tree and COSE signature (and, with --service-cert, that " +
        "signing certs are issued by the service). Prints the last verified seqno; exits 1 " +
        "naming the file and offset of the first problem. A ledger without its first chunk is " +
        "refused unless --from-snapshot or --partial says how to start.",
    )
    .requiredOption("--dir <dir>", "ledger directory (ledger_<first>-<last>[.committed] files)")
    .option("--service-cert <file>", "service certificate that must have issued signing certs")
    .option(
      "--from-snapshot <file>",
      "committed snapshot the ledger continues (needs --service-cert to verify its receipt)",
    )
    .option("--partial", "check a ledger without its first chunk as far as it can be checked")
    .option("--no-progress", "never show a progress bar")
    .option(
      "--jobs <n>",
      "worker threads that read, decode and hash ledger files while the main thread chains " +
        "the roots (default: one per core for ledgers of 8 MiB or more; 0: none)",
    )
    .action(async (options: VerifyOptions) => {
      await verifyLedger(options);
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

/** Worker threads for --jobs, or the default for a ledger of `totalBytes`. */
function jobsFor(option: string | undefined, totalBytes: number): number {
  if (option === undefined) return totalBytes >= PARALLEL_THRESHOLD_BYTES ? digestWorkerCount() : 0;
  const jobs = Number(option);
  if (!/^\d+$/.test(option) || jobs > MAX_JOBS) {
    throw new CliError(`--jobs must be a whole number from 0 to ${MAX_JOBS}, got ${option}`);
  }
  return jobs;
}

async function verifyLedger(options: VerifyOptions): Promise<void> {
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
  const firstSeqno = files[0]?.firstSeqno;
  if (firstSeqno === undefined) throw new CliError(`no ledger files in ${options.dir}`);
  const plan = verificationStart({ ...options, serviceCertPem }, firstSeqno);
  const verifier = newVerifier(serviceCertPem, plan.start);
  if (plan.note !== null) console.log(plan.note);
  const totalBytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
  const progress = createProgress({
    enabled: options.progress !== false && totalBytes >= PROGRESS_THRESHOLD_BYTES,
    totalBytes,
  });
  let scan: Scan;
  try {
    scan = await scanLedger(options.dir, verifier, {
      serviceCertPem,
      fromSeqno: plan.fromSeqno,
      jobs: jobsFor(options.jobs, totalBytes),
      onProgress: (done) => progress.update(done),
    });
  } finally {
    progress.stop();
  }
  checkCommittedSigned(scan.firstUnsigned, verifier);
  report(verifier, files.length, scan.tornTail, plan.start.kind === "partial");
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

/** The verifier; a snapshot tree it cannot use is one CLI line. */
function newVerifier(serviceCertPem: string | undefined, start: VerifierStart): LedgerVerifier {
  try {
    return new LedgerVerifier({ serviceCertPem, start });
  } catch (err: unknown) {
    if (!(err instanceof SerialisedTreeError || err instanceof LegacyFormatError)) throw err;
    throw new CliError(`the snapshot's Merkle tree cannot be used: ${err.message}`);
  }
}

/**
 * Feeds every entry to the verifier, file by file in order, digested on worker threads when the
 * ledger is large (ledger-digest-pool.ts); throws CliError naming file and offset on corruption.
 */
async function scanLedger(
  dir: string,
  verifier: LedgerVerifier,
  read: {
    fromSeqno: number;
    jobs: number;
    /** --service-cert, which node signatures are checked against where entries are digested. */
    serviceCertPem: string | undefined;
    onProgress: (done: number) => void;
  },
): Promise<Scan> {
  let tornTail: string | null = null;
  let firstUnsigned: EntryPosition | null = null;
  const digester =
    read.jobs > 0
      ? workerDigester(read.jobs, read.serviceCertPem)
      : inlineDigester(read.serviceCertPem);
  try {
    const files = planLedgerFiles(dir, read.fromSeqno);
    const requests = files.map((file, i) => ({
      file,
      last: i === files.length - 1,
      fromSeqno: read.fromSeqno,
    }));
    let bytesDone = 0;
    for await (const file of inOrder(requests, digester)) {
      for (const { offset, digest } of entryDigests(file)) {
        const step = verifier.pushDigest(digest);
        if (step.kind === "invalid") throw invalidAt(file.name, offset, step, verifier);
        if (step.kind === "signature") firstUnsigned = null;
        else firstUnsigned ??= { file: file.name, offset, seqno: step.seqno };
      }
      if (file.invalid !== null) {
        const seqno = (verifier.lastSeqno + 1) as Seqno;
        const step = { kind: "invalid", seqno, reason: file.invalid.reason } as const;
        throw invalidAt(file.name, file.invalid.offset, step, verifier);
      }
      if (file.tornTail !== null) {
        tornTail =
          `${file.name} at offset ${file.tornTail.offset}: ${file.tornTail.bytesRemaining} ` +
          "bytes of a torn last entry (truncatable tail of an uncommitted file, not corruption)";
      }
      bytesDone += file.sizeBytes;
      read.onProgress(bytesDone);
    }
  } catch (err: unknown) {
    throw asCliError(err, verifier);
  } finally {
    await digester.close();
  }
  return { tornTail, firstUnsigned };
}

/** Files digested ahead of the one being chained, per worker. */
const FILES_IN_FLIGHT = 4;

/**
 * The digests of `requests`, in order, with up to FILES_IN_FLIGHT asked for ahead. A failure is
 * thrown when its file's turn comes, as a sequential read would have thrown it.
 */
async function* inOrder(
  requests: readonly FileDigestRequest[],
  digester: Digester,
): AsyncGenerator<DigestedFile> {
  const ahead: Promise<DigestedFile>[] = [];
  let next = 0;
  const fill = (): void => {
    while (next < requests.length && ahead.length < FILES_IN_FLIGHT) {
      const result = digester.digest(requests[next++]!);
      // Awaited in turn below; a rejection before its turn must not count as unhandled.
      result.catch(() => undefined);
      ahead.push(result);
    }
  };
  fill();
  while (ahead.length > 0) {
    const file = await ahead.shift()!;
    fill();
    yield file;
  }
}

function invalidAt(
  file: string,
  offset: number,
  step: { readonly seqno: Seqno; readonly reason: string },
  verifier: LedgerVerifier,
): CliError {
  return new CliError(
    `ledger invalid: ${file} at offset ${offset} (seqno ${step.seqno}): ${step.reason}\n` +
      `last verified seqno: ${verifier.lastVerifiedSeqno}`,
  );
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
  if (err instanceof LegacyFormatError) return new CliError(`ledger refused: ${err.message}`);
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

function report(
  verifier: LedgerVerifier,
  fileCount: number,
  tornTail: string | null,
  partial: boolean,
): void {
  const unsigned = verifier.lastSeqno - verifier.lastVerifiedSeqno;
  const coverage = verifier.coverage;
  const start = verifier.startSeqno;
  const entries =
    start === 1
      ? `${verifier.entryCount}`
      : `${verifier.entryCount} (seqnos ${start}..${verifier.lastSeqno})`;
  console.log(
    `files: ${fileCount}, entries: ${entries}, signatures: ${verifier.signatureCount} ` +
      `(COSE signatures checked: ${coverage.coseSignaturesChecked}, serialised trees checked: ` +
      `${coverage.treesChecked})`,
  );
  if (unsigned > 0) {
    console.log(`${unsigned} entries after the last signature are well-formed but not yet signed`);
  }
  if (tornTail !== null) console.log(`warning: ${tornTail}`);
  const unchecked = uncheckedLines(coverage);
  if (partial) unchecked.unshift(missingFrontLine(start, coverage));
  for (const line of unchecked) console.log(`not checked: ${line}`);
  console.log(`last verified seqno: ${verifier.lastVerifiedSeqno}`);
  console.log(unchecked.length === 0 ? "ledger OK" : "ledger OK as far as checked (partial check)");
}

/** What a partial check takes on trust about the seqnos before the directory's first. */
function missingFrontLine(start: number, coverage: VerifierCoverage): string {
  const taken = coverage.treeTakenAt;
  const state =
    taken === null
      ? "no signature carries a Merkle tree, so no root was recomputed"
      : `the tree before them is signature ${taken}'s serialised tree, vouched for by its ` +
        "signature alone";
  return `seqnos 1..${start - 1} are not in the directory: ${state}`;
}

/** What a partial check could not check, one line each (nothing for a complete check). */
function uncheckedLines(coverage: VerifierCoverage): string[] {
  const lines: string[] = [];
  const range = coverage.uncheckedEntries;
  if (range !== null) {
    const why =
      coverage.rootsCheckedFrom === null
        ? "no signature in the ledger carries its Merkle tree, so no root could be recomputed"
        : `they precede the leaves that the first signature's Merkle tree holds (roots are ` +
          `checked from seqno ${coverage.rootsCheckedFrom})`;
    lines.push(`entries ${range.from}..${range.to}: an altered entry would go unnoticed: ${why}`);
  }
  if (coverage.signaturesOverClaimedRoots > 0) {
    lines.push(
      `${coverage.signaturesOverClaimedRoots} signatures were checked over the root they claim ` +
        "only, not over a recomputed one",
    );
  }
  if (coverage.coseSignaturesUnchecked > 0) {
    lines.push(
      `${coverage.coseSignaturesUnchecked} COSE signatures: no service certificate was known ` +
        "(pass --service-cert)",
    );
  }
  return lines;
}
