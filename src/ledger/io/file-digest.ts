/**
 * One ledger file digested for the verifier (entry-digest.ts): its framing checked, then each
 * entry's leaf, and what signature transactions and service.info writes carry, with node
 * signatures checked over their claimed roots. The result is plain data with two packed
 * arrays, so that it crosses threads cheaply (`consortia ledger verify` digests files on worker
 * threads and chains the roots on its main thread, in file order).
 *
 * Errors: a framing error or a file that cannot be read is thrown (LedgerError, or the file
 * system's error); the first entry that does not decode ends the file's digest (`invalid`), as
 * the verifier would stop there.
 */
import type { Seqno } from "../../base/ids.js";
import {
  checkNodeSignature,
  digestEntry,
  type EntryDigest,
  type SignatureTx,
} from "../entry-digest.js";
import type { SignatureChecker } from "../signature-checker.js";
import { LEAF_BYTES } from "../tx-leaf.js";
import { ReadBuffer, readLedgerFile, type LedgerFileInfo } from "./ledger-reader.js";

export interface FileDigestRequest {
  readonly file: LedgerFileInfo;
  /** The ledger's last file (it alone may end in a torn tail). */
  readonly last: boolean;
  /** Entries below this seqno are skipped. */
  readonly fromSeqno: number;
}

/** An entry that is not just a leaf: a signature transaction or a service.info write. */
export interface DigestSpecial {
  readonly index: number;
  readonly signature: SignatureTx | null;
  readonly serviceCert: string | null | undefined;
}

export interface DigestedFile {
  readonly name: string;
  readonly sizeBytes: number;
  /** Seqno of the first entry digested; entry i has seqno firstSeqno + i. */
  readonly firstSeqno: number;
  /** Entries digested (before `invalid`, if any). */
  readonly count: number;
  /** File offset of each entry digested. */
  readonly offsets: Float64Array;
  /** The leaves, 32 bytes each, packed. */
  readonly leaves: Uint8Array;
  readonly specials: readonly DigestSpecial[];
  /** The entry after the last one digested, which did not decode: its offset and why. */
  readonly invalid: { readonly offset: number; readonly reason: string } | null;
  readonly tornTail: { readonly offset: number; readonly bytesRemaining: number } | null;
}

export interface DigestOptions {
  readonly checker: SignatureChecker;
  /** As LedgerVerifierOptions.serviceCertPem. */
  readonly serviceCertPem: string | undefined;
}

/** This thread's read buffer: files are digested one at a time, and nothing keeps their bytes. */
const readBuffer = new ReadBuffer();

export function digestLedgerFile(request: FileDigestRequest, options: DigestOptions): DigestedFile {
  const { file, fromSeqno } = request;
  const { bytes, scan } = readLedgerFile(file, request.last, readBuffer);
  const wanted = scan.entries.filter((e) => e.seqno >= fromSeqno);
  const offsets = new Float64Array(wanted.length);
  const leaves = new Uint8Array(wanted.length * LEAF_BYTES);
  const specials: DigestSpecial[] = [];
  let invalid: DigestedFile["invalid"] = null;
  let count = 0;
  for (const e of wanted) {
    const entry = bytes.subarray(e.offset, e.offset + e.lengthBytes);
    const outcome = digestEntry(entry, e.seqno as Seqno);
    if (outcome.kind === "invalid") {
      invalid = { offset: e.offset, reason: outcome.reason };
      break;
    }
    const digest = checkNodeSignature(outcome, options.checker, options.serviceCertPem);
    offsets[count] = e.offset;
    leaves.set(digest.leaf, count * LEAF_BYTES);
    if (digest.signature !== null || digest.serviceCert !== undefined) {
      specials.push({
        index: count,
        signature: owned(digest.signature),
        serviceCert: digest.serviceCert,
      });
    }
    count++;
  }
  return {
    name: file.name,
    sizeBytes: bytes.byteLength,
    firstSeqno: wanted[0]?.seqno ?? fromSeqno,
    count,
    offsets,
    leaves,
    specials,
    invalid,
    tornTail: scan.tornTail,
  };
}

/**
 * The signature with its byte fields copied out of the file's buffer: a view would take the
 * whole file along when the result is posted to another thread.
 */
function owned(signature: SignatureTx | null): SignatureTx | null {
  if (signature === null) return null;
  return {
    ...signature,
    cose: signature.cose?.slice() ?? null,
    tree: signature.tree?.slice() ?? null,
  };
}

/** The digests of a digested file's entries, in order, as the verifier takes them. */
export function* entryDigests(
  file: DigestedFile,
): Generator<{ readonly offset: number; readonly digest: EntryDigest }> {
  let next = 0;
  for (let i = 0; i < file.count; i++) {
    const special = file.specials[next]?.index === i ? file.specials[next++]! : null;
    yield {
      offset: file.offsets[i]!,
      digest: {
        kind: "digest",
        seqno: (file.firstSeqno + i) as Seqno,
        leaf: file.leaves.subarray(i * LEAF_BYTES, (i + 1) * LEAF_BYTES),
        signature: special?.signature ?? null,
        serviceCert: special?.serviceCert,
      },
    };
  }
}
