/**
 * The public surface of the kv layer: the store and its transactions, typed codecs over map
 * handles, the canonical write set and its ledger codec. Other layers import from here only.
 */
export { type CommitOutcome, Store } from "./store.js";
export {
  checkMapName,
  type ConflictCause,
  type ConflictOutcome,
  KvError,
  KvErrorCode,
  type KvErrorType,
  type MapHandle,
  type ReadonlyMapHandle,
  Tx,
} from "./tx.js";
export {
  type Codec,
  jsonCodec,
  rawCodec,
  SINGLETON_KEY,
  stringCodec,
  type TypedMapHandle,
  type TypedReadonlyMapHandle,
  typedMap,
  u64Codec,
} from "./encoding.js";
export {
  compareNames,
  isPublicMap,
  joinDomains,
  type KeyWrite,
  type MapWrites,
  PUBLIC_PREFIX,
  splitDomains,
  type WriteSet,
} from "./write-set.js";
export {
  CodecError,
  CodecErrorCode,
  type CodecErrorType,
  decodeMaps,
  encodeMaps,
} from "./codec.js";
