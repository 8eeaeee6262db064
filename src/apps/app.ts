/**
 * Built-in application endpoints: what an app declares and what a handler sees. The node
 * (src/node) routes `/app<path>`, checks the service is open, authenticates the caller with the
 * endpoint's policies, runs the handler inside one KV transaction and commits its writes only
 * when the response status is 2xx (CCF's default). JS apps deployed by governance are routed
 * by the node itself from the KV (node/frontends/js-app-endpoints.ts).
 */
import type { TxId } from "../base/ids.js";
import type { Tx } from "../kv/tx.js";
import type { Receipt } from "../ledger/receipt.js";
import type { RpcRequest, RpcResponse } from "../http/router.js";

/** CCF authentication policy names (ccf-compatibility.md §3.7). */
export type AuthPolicy =
  | "user_cert"
  | "member_cert"
  | "any_cert"
  | "user_cose_sign1"
  | "member_cose_sign1"
  | "active_member_cose_sign1"
  | "no_auth";

/** The two member COSE policies; active_member_cose_sign1 also requires an Active member. */
export type MemberCosePolicy = "member_cose_sign1" | "active_member_cose_sign1";

/** An anonymous request (no_auth): nothing is known about who sent it. */
export interface NoAuthCaller {
  readonly policy: "no_auth";
}

/** Any TLS client certificate, registered or not (any_cert). */
export interface AnyCertCaller {
  readonly policy: "any_cert";
  /** PEM of the caller's TLS client certificate. */
  readonly certPem: string;
}

/** A registered user, by its TLS client certificate (user_cert). */
export interface UserCertCaller {
  readonly policy: "user_cert";
  /** Hex SHA-256 of the user's certificate DER. */
  readonly userId: string;
  readonly certPem: string;
  /** The user's user_data, when it has any. */
  readonly userData: unknown;
}

/** A registered user, by a COSE Sign1 body signed with its key (user_cose_sign1). */
export interface UserCoseCaller {
  readonly policy: "user_cose_sign1";
  readonly userId: string;
  readonly certPem: string;
  readonly userData: unknown;
  /** The verified payload of the COSE Sign1 request: the request's real body. */
  readonly cosePayload: Uint8Array;
}

/** A registered member, by its TLS client certificate (member_cert). */
export interface MemberCertCaller {
  readonly policy: "member_cert";
  /** Hex SHA-256 of the member's certificate DER. */
  readonly memberId: string;
  readonly certPem: string;
  /** The member's member_data, when it has any. */
  readonly memberData: unknown;
}

/** A registered member, by a governance COSE Sign1 body signed with its key. */
export interface MemberCoseCaller {
  readonly policy: MemberCosePolicy;
  readonly memberId: string;
  readonly certPem: string;
  readonly memberData: unknown;
  /** The verified payload of the COSE Sign1 request: the request's real body. */
  readonly cosePayload: Uint8Array;
}

/**
 * Who called, as established by the first policy that accepted the request. Each policy
 * establishes different facts, so the union is keyed by `policy`: a handler narrows on it and
 * then reads exactly the fields that policy guarantees (an endpoint that only lists user_cert
 * can assert that policy instead of checking optional fields).
 */
export type Caller =
  | NoAuthCaller
  | AnyCertCaller
  | UserCertCaller
  | UserCoseCaller
  | MemberCertCaller
  | MemberCoseCaller;

/** The verified COSE payload of a COSE caller, or null for certificate and no_auth callers. */
export function cosePayloadOf(caller: Caller): Uint8Array | null {
  switch (caller.policy) {
    case "user_cose_sign1":
    case "member_cose_sign1":
    case "active_member_cose_sign1":
      return caller.cosePayload;
    case "no_auth":
    case "any_cert":
    case "user_cert":
    case "member_cert":
      return null;
  }
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
  /**
   * The COSE signature (ccf-compatibility.md §6.5) of the signature transaction that covers this
   * one (its own, for a signature transaction), read from the ledger with the transaction; null
   * when the receipt is not held or that signature transaction wrote none.
   */
  coseSignature(): Uint8Array | null;
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
