/**
 * A node started from a snapshot trusts its store only until the snapshot's evidence
 * transaction, replayed after it, confirms the snapshot's digest. A mismatch means the node's
 * state cannot be trusted: it stops.
 */
import { toHex } from "../../base/bytes.js";
import { CcfError } from "../../base/errors.js";
import type { Seqno } from "../../base/ids.js";
import type { WriteSet } from "../../kv/write-set.js";
import { recordsSnapshotEvidence, snapshotDigest } from "../../ledger/snapshot.js";

export enum SnapshotEvidenceErrorCode {
  /** The service's evidence names another digest than the snapshot this node started from. */
  Mismatch = "SnapshotEvidenceMismatch",
}
export type SnapshotEvidenceErrorType = { code: SnapshotEvidenceErrorCode; seqno: Seqno };
export class SnapshotEvidenceError extends CcfError<SnapshotEvidenceErrorType> {}

export class SnapshotEvidenceCheck {
  /** Null once confirmed, or when the node did not start from a snapshot. */
  private expected: { seqno: Seqno; evidenceSeqno: Seqno; hash: string } | null;

  constructor(
    start: { seqno: Seqno; evidenceSeqno: Seqno; entryBytes: Uint8Array } | null,
    private readonly log: (line: string) => void,
  ) {
    this.expected =
      start === null
        ? null
        : {
            seqno: start.seqno,
            evidenceSeqno: start.evidenceSeqno,
            hash: toHex(snapshotDigest(start.entryBytes)),
          };
  }

  /** Every write set the node commits or applies, in seqno order. */
  onWriteSet(seqno: Seqno, writeSet: WriteSet): void {
    const expected = this.expected;
    if (expected === null || seqno !== expected.evidenceSeqno) return;
    if (!recordsSnapshotEvidence(writeSet.maps, expected.hash, expected.seqno)) {
      throw new SnapshotEvidenceError(
        { code: SnapshotEvidenceErrorCode.Mismatch, seqno: expected.seqno },
        `snapshot ${expected.seqno}: the service's evidence at ${seqno} does not match its ` +
          `digest ${expected.hash}; this node's state cannot be trusted`,
      );
    }
    this.expected = null;
    this.log(`snapshot ${expected.seqno} confirmed by its evidence at ${seqno}`);
  }
}
