/**
 * Where `consortia ledger verify` starts (issue #11 item 7): a ledger is checked whole from seqno
 * 1; a directory whose first chunks are missing is refused unless the operator names the
 * snapshot it starts from (`--from-snapshot FILE`: the snapshot's receipt is verified against
 * the service certificate, and its Merkle tree is the state later roots are checked against) or
 * asks for a partial check (`--partial`, which then reports what it could not check). Never
 * "OK" for what was not checked.
 */
import { readFileSync } from "node:fs";
import { equalBytes, fromUtf8, toHex } from "../../base/bytes.js";
import { CcfError, isNodeError, isTextDecodeError } from "../../base/errors.js";
import type { Seqno } from "../../base/ids.js";
import { SERVICE_TABLES, SINGLETON_KEY_BYTES } from "../../kv/service-tables.js";
import type { SnapshotMap } from "../../kv/snapshot-state.js";
import type { VerifierStart } from "../../ledger/ledger-verifier.js";
import { parseReceipt, verifyReceipt } from "../../ledger/receipt.js";
import { snapshotDigest, splitSnapshotFile } from "../../ledger/snapshot.js";
import { decodeSnapshotEntry } from "../../ledger/snapshot-format.js";
import { certOfServiceInfo } from "../../ledger/entry-digest.js";
import { CliError } from "../cli-error.js";

export interface StartOptions {
  readonly fromSnapshot?: string | undefined;
  readonly partial?: boolean | undefined;
  /** The service certificate's PEM (--service-cert), if given. */
  readonly serviceCertPem: string | undefined;
}

/** What the verification starts from, and the first seqno to read. */
export interface VerificationStart {
  readonly start: VerifierStart;
  readonly fromSeqno: number;
  /** Said before the scan: how the start was chosen. */
  readonly note: string | null;
}

/** The start for a ledger whose first file begins at `firstSeqno`; throws CliError. */
export function verificationStart(options: StartOptions, firstSeqno: number): VerificationStart {
  if (options.fromSnapshot !== undefined && options.partial === true) {
    throw new CliError("--from-snapshot and --partial cannot be combined");
  }
  if (options.fromSnapshot !== undefined) return snapshotStart(options, firstSeqno);
  if (firstSeqno === 1) {
    return { start: { kind: "genesis" }, fromSeqno: 1, note: null };
  }
  if (options.partial !== true) {
    throw new CliError(
      `ledger starts at seqno ${firstSeqno}: its first chunk is missing, so no root can be ` +
        "recomputed; name the snapshot it starts from (--from-snapshot FILE --service-cert " +
        "FILE) or ask for a partial check (--partial)",
    );
  }
  return {
    start: { kind: "partial", seqno: firstSeqno as Seqno },
    fromSeqno: firstSeqno,
    note: `partial check: the ledger starts at seqno ${firstSeqno}, without the chunks before it`,
  };
}

function snapshotStart(options: StartOptions, firstSeqno: number): VerificationStart {
  const path = options.fromSnapshot!;
  if (options.serviceCertPem === undefined) {
    throw new CliError("--from-snapshot needs --service-cert to verify the snapshot's receipt");
  }
  const snapshot = readSnapshot(path, options.serviceCertPem);
  if (firstSeqno > snapshot.seqno + 1) {
    throw new CliError(
      `ledger starts at seqno ${firstSeqno}, after snapshot ${snapshot.seqno}: seqnos ` +
        `${snapshot.seqno + 1}..${firstSeqno - 1} are missing`,
    );
  }
  return {
    start: {
      kind: "snapshot",
      at: {
        seqno: snapshot.seqno,
        tree: snapshot.tree,
        hashAtSnapshot: snapshot.hashAtSnapshot,
      },
      serviceCertPem: snapshot.serviceCertPem,
    },
    fromSeqno: snapshot.seqno + 1,
    note:
      `starting from snapshot ${path} at seqno ${snapshot.seqno} (its receipt verifies ` +
      "against the service certificate)",
  };
}

interface VerifiedSnapshot {
  readonly seqno: Seqno;
  readonly tree: Uint8Array;
  readonly hashAtSnapshot: Uint8Array;
  readonly serviceCertPem: string | null;
}

/**
 * A committed snapshot file whose appended receipt covers its digest and verifies against the
 * service certificate (as a joiner checks it), with its Merkle tree and service certificate.
 */
function readSnapshot(path: string, serviceCertPem: string): VerifiedSnapshot {
  const bytes = readSnapshotFile(path);
  const bad = (why: string): never => {
    throw new CliError(`snapshot ${path}: ${why}`);
  };
  const split = splitSnapshotFile(bytes) ?? bad("truncated: it cannot hold its entry");
  if (split.receipt.byteLength === 0) bad("not committed: no receipt follows the snapshot");
  let publicMaps: readonly SnapshotMap[];
  let seqno: Seqno;
  let hashAtSnapshot: Uint8Array;
  let receipt;
  try {
    const entry = decodeSnapshotEntry(split.entry);
    publicMaps = entry.publicMaps;
    seqno = entry.seqno;
    hashAtSnapshot = entry.hashAtSnapshot;
    receipt = parseReceipt(JSON.parse(fromUtf8(split.receipt)));
  } catch (err: unknown) {
    if (!(err instanceof CcfError) && !isTextDecodeError(err)) throw err;
    return bad(err.message);
  }
  const digest = toHex(snapshotDigest(split.entry));
  if (receipt.leaf_components?.claims_digest !== digest) {
    bad(`its receipt does not cover this snapshot (digest ${digest})`);
  }
  const verdict = verifyReceipt(receipt, serviceCertPem);
  if (verdict.kind === "invalid") bad(`its receipt does not verify (${verdict.reason})`);
  const tree = singleton(publicMaps, SERVICE_TABLES.tree) ?? bad("it holds no Merkle tree");
  const info = singleton(publicMaps, SERVICE_TABLES.serviceInfo);
  return {
    seqno,
    tree,
    hashAtSnapshot,
    serviceCertPem: info === null ? null : certOfServiceInfo(info),
  };
}

function readSnapshotFile(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err: unknown) {
    if (!isNodeError(err)) throw err;
    throw new CliError(`cannot read --from-snapshot ${path}: ${err.message}`);
  }
}

function singleton(maps: readonly SnapshotMap[], name: string): Uint8Array | null {
  const map = maps.find((m) => m.name === name);
  const key = map?.keys.find((k) => equalBytes(k.key, SINGLETON_KEY_BYTES));
  return key?.value ?? null;
}
