/**
 * Why a follower refuses entries from the primary (TxPipeline.appendReplicated). Both are caused
 * by the peer, not by this node: the primary's log diverged from ours (its signature signs a
 * Merkle root this node does not have) or it sealed entries with a ledger secret this node does
 * not hold. The entry is not recorded, and the follower keeps its state as it was.
 */
import { CcfError } from "../../base/errors.js";

export enum ReplicatedEntryErrorCode {
  /** A signature entry signs a root other than the one this node's history has. */
  RootMismatch = "RootMismatch",
  /** The private domain of an entry does not decrypt with this node's ledger secrets. */
  CannotDecrypt = "CannotDecrypt",
}
export type ReplicatedEntryErrorType = {
  code: ReplicatedEntryErrorCode;
  /** The refused entry's txId. */
  view: number;
  seqno: number;
};
export class ReplicatedEntryError extends CcfError<ReplicatedEntryErrorType> {}
