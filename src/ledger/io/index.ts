/**
 * Public surface of the ledger's file IO: the chunk writer (durability contract in
 * ledger-writer.ts), the reader, and the framing error type they throw.
 */
export { FLUSH_THRESHOLD_BYTES, LedgerWriter, type LedgerWriterOptions } from "./ledger-writer.js";
export {
  listLedgerFiles,
  readLedger,
  type LedgerFileInfo,
  type LedgerItem,
  type ReadLedgerOptions,
} from "./ledger-reader.js";
export { LedgerError, LedgerErrorCode, type LedgerErrorType } from "../chunk-format.js";
