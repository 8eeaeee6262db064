/**
 * Built-in application endpoints: what an app declares and what a handler sees. The node
 * (src/node) routes `/app<path>`, checks the service is open, authenticates the caller with the
 * endpoint's policies, runs the handler inside one KV transaction and commits its writes only
 * when the response status is 2xx (CCF's default). JS apps deployed by governance will be
 * adapted to the same shape.
 */
import type { TxId } from "../base/ids.js";
import type { Tx } from "../kv/tx.js";
import type { Receipt } from "../ledger/receipt.js";
import type { RpcRequest, RpcResponse } from "../http/router.js";

/** CCF authentication policy names (ccf-api.md 3.1, 9). */
export type AuthPolicy =
  | "user_cert"
  | "member_cert"
  | "any_cert"
  | "user_cose_sign1"
  | "member_cose_sign1"
  | "active_member_cose_sign1"
  | "no_auth";

/** Who called, as established by the first policy that accepted the request. */
export interface Caller {
  readonly policy: AuthPolicy;
  /** Member or user id (hex SHA-256 of the cert DER); absent for no_auth and any_cert. */
  readonly id?: string | undefined;
  /** PEM of the caller's certificate; absent for no_auth. */
  readonly certPem?: string | undefined;
  /** member_data or user_data, when the identity has any. */
  readonly data?: unknown;
  /** The verified payload of a COSE Sign1 request (COSE policies only). */
  readonly cosePayload?: Uint8Array | undefined;
}

/** readwrite: may write; readonly: writes are refused; historical: reads state at a past txId. */
export type EndpointMode = "readwrite" | "readonly" | "historical";

export interface EndpointContext {
  readonly request: RpcRequest;
  readonly caller: Caller;
  /** The transaction the handler runs in. */
  readonly tx: Tx;
  /** Sets the claims digest recorded in this transaction's Merkle leaf (32 bytes). */
  setClaimsDigest(digest: Uint8Array): void;
  /** Historical endpoints: the committed transaction named by x-ms-ccf-transaction-id. */
  readonly historical?: HistoricalState;
}

/**
 * A committed transaction as historical endpoints see it (CCF's historical state of one
 * txId): the writes of that transaction, read back from the ledger, and its receipt.
 */
export interface HistoricalState {
  readonly txId: TxId;
  /** What the tx wrote to (map, key): bytes, null for a removal, undefined if untouched. */
  get(map: string, key: Uint8Array): Uint8Array | null | undefined;
  /** The transaction's receipt, or null when it is no longer held in memory. */
  readonly receipt: Receipt | null;
}

export interface AppEndpoint {
  readonly method: "GET" | "POST" | "PUT" | "DELETE" | "PATCH";
  /** Path below /app, with `{param}` segments: "/log/private/raw_text/{id}". */
  readonly path: string;
  /** Tried in order; the first that accepts the request authenticates it. */
  readonly authPolicies: readonly AuthPolicy[];
  readonly mode: EndpointMode;
  /** Synchronous: runs to completion inside one KV transaction (no awaits). */
  handler(context: EndpointContext): RpcResponse;
  /** One-line summary for the OpenAPI document at /app/api. */
  readonly summary?: string;
}

export interface AppModule {
  readonly name: string;
  readonly endpoints: readonly AppEndpoint[];
}
