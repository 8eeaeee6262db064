/**
 * `@consortia/client`: the platform-neutral core (no node: modules). Pair it with a Transport:
 * `@consortia/client/node` (HTTPS pinned to the service certificate) or
 * `@consortia/client/browser` (fetch).
 */
export {
  ConsortiaClient,
  TXID_HEADER,
  isNoPrimaryForWrite,
  type CallResult,
  type ClientOptions,
  type HistoricalOptions,
  type RequestOptions,
  type TxStatus,
  type WaitOptions,
} from "./client.js";
export {
  ClientError,
  ClientErrorCode,
  errorFromAnswer,
  type Answer,
  type ClientErrorType,
} from "./errors.js";
export {
  GOV_API_VERSION,
  Governance,
  ballotSource,
  govPath,
  type Action,
  type Ballot,
  type Member,
  type Proposal,
  type ProposalState,
  type StateDigest,
} from "./governance.js";
export {
  isCoseBytes,
  verifyCoseReceipt,
  verifyJsonReceipt,
  type ReceiptTrust,
  type VerifiedReceipt,
} from "./receipts.js";
export {
  CoseAlg,
  sec1ToPkcs8,
  webCryptoSigner,
  type CoseSigner,
  type MemberPem,
} from "./signer.js";
export { signGovRequest, type GovHeaders, type GovMsgType } from "./cose.js";
export type { Transport, TransportRequest } from "./transport.js";
