/**
 * Committed entries the consensus log no longer holds in memory (its payload window), read back
 * from the ledger files when a lagging follower needs them.
 */
import type { Seqno } from "../../base/ids.js";
import { readLedger } from "../../ledger/io/ledger-reader.js";

export interface LedgerPayloadSource {
  readonly directory: string;
  readonly readOnlyDirectories: readonly string[];
  /** Hands buffered ledger bytes to the OS first, so the files hold every appended entry. */
  readonly flush: () => void;
}

/** Up to `count` consecutive entries from seqno `from` (fewer if the files end sooner). */
export function readLedgerPayloads(
  source: LedgerPayloadSource,
  from: Seqno,
  count: number,
): Uint8Array[] {
  source.flush();
  const out: Uint8Array[] = [];
  const items = readLedger(source.directory, {
    fromSeqno: from,
    readOnlyDirectories: source.readOnlyDirectories,
  });
  for (const item of items) {
    if (item.kind !== "entry") continue;
    if (item.seqno !== from + out.length) break;
    out.push(item.entry);
    if (out.length === count) break;
  }
  return out;
}
