/**
 * Authentication policies of CCF endpoints (ccf-compatibility.md §3.7, §4.1): each endpoint lists
 * policies; the first that accepts the request names the caller. Certificate policies look the TLS
 * client certificate up in the users or members tables; COSE policies verify a COSE_Sign1 body
 * signed by a registered member (or user) and check its message type. Failure of every policy is
 * 401 InvalidAuthenticationInfo "Invalid authentication credentials." with one detail per policy.
 *
 * Reads go through the request's own transaction, so authentication and the handler see the
 * same state.
 *
 * Per-request cost: a TLS client's certificate is the same DER array for every request of its
 * connection (the server caches it per socket), so its id (hex SHA-256) and the id's key bytes
 * are computed once per array and reused while its bytes are unchanged (checked per request).
 */
import { derToPem, toHex, utf8 } from "../../base/bytes.js";
import { sha256 } from "../../crypto/hash.js";
import { publicKeyOfCert, tryParseCertificate } from "../../crypto/certs.js";
import { CoseError, CoseErrorCode, decodeSign1, verifySign1 } from "../../crypto/cose.js";
import type { Tx } from "../../kv/tx.js";
import type {
  AuthPolicy,
  Caller,
  MemberCoseCaller,
  MemberCosePolicy,
  UserCoseCaller,
} from "../../apps/app.js";
import {
  checkGovCoseSignature,
  GovCoseError,
  parseGovCoseRequest,
  type GovCoseRequest,
  type GovMsgType,
} from "../../gov/cose-request.js";
import { getById, GOV_MAPS, type GovMap } from "../../gov/tables.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import type { RpcRequest } from "../../http/router.js";

const decoder = new TextDecoder();

export interface AuthDetail {
  /** The policy's name; JS apps also name `jwt` and `all_of`. */
  readonly auth_policy: string;
  readonly code: string;
  readonly message: string;
}

/** The outcome of one policy: a caller, or why it refused. */
export type PolicyOutcome<C = AuthenticatedCaller> =
  { kind: "ok"; caller: C } | { kind: "refused"; detail: AuthDetail };

export interface AuthOptions {
  /** For member COSE policies: the message type this endpoint requires. */
  readonly msgType?: GovMsgType | undefined;
  /**
   * The node's wall clock (ms since the epoch) for the validity period of user and member TLS
   * certificates. As in CCF no skew is allowed: a certificate is refused before its notBefore
   * and after its notAfter. Callers pass node.clock.realtimeMs(); when absent, Date.now().
   */
  readonly nowMs?: number | undefined;
}

/**
 * A member authenticated by a governance COSE request. The gov frontend needs the request's
 * headers (signature, created_at, proposal_id) as well; apps cannot name GovCoseRequest (the
 * apps layer does not import gov), so the field is added here, where gov may be imported.
 */
export interface GovMemberCaller extends MemberCoseCaller {
  readonly govRequest: GovCoseRequest;
}

/**
 * What authenticate() produces: a Caller whose member COSE variant also carries the verified
 * governance request. Assignable to Caller, so app handlers see the plain union.
 */
export type AuthenticatedCaller = Exclude<Caller, MemberCoseCaller> | GovMemberCaller;

function refuse(policy: AuthPolicy, code: string, message: string): PolicyOutcome<never> {
  return { kind: "refused", detail: { auth_policy: policy, code, message } };
}

/** What a client certificate's DER determines, computed once per DER array. */
interface CertIdentity {
  /**
   * Invariant: a private copy of the DER this was computed from (never handed out), as a
   * Buffer so the per-request check compares it without wrapping it again.
   */
  readonly der: Buffer;
  /** Hex SHA-256 of the DER: the user or member id. */
  readonly id: string;
  /** UTF-8 of `id`: the key of the id in the users and members tables. Never mutated. */
  readonly key: Uint8Array;
  /** PEM of the DER, made on first need. */
  pem: string | undefined;
  /** The validity period in ms since the epoch, read on first need (NaN: unparseable). */
  validity: { readonly fromMs: number; readonly toMs: number } | undefined;
  /**
   * The last registered certificate (PEM) read for this id, by map, with the stored bytes it was
   * decoded from: the store replaces a value's array on every write and never mutates one it
   * holds, so the same array means the same PEM (a string: safe to share).
   */
  readonly registered: Map<string, { readonly bytes: Uint8Array; readonly pem: string }>;
}

/** Keyed by the request's DER array; entries die with it (the connection). */
const certIdentities = new WeakMap<Uint8Array, CertIdentity>();

function certIdentity(der: Uint8Array): CertIdentity {
  const cached = certIdentities.get(der);
  // A caller could reuse an array with new bytes: the cached id is valid only for the same DER.
  if (cached !== undefined && cached.der.equals(der)) return cached;
  const id = toHex(sha256(der));
  const identity: CertIdentity = {
    der: Buffer.from(der),
    id,
    key: utf8(id),
    pem: undefined,
    validity: undefined,
    registered: new Map(),
  };
  certIdentities.set(der, identity);
  return identity;
}

/** getById with the id's key bytes already encoded (the same read through the tx). */
function readByKey<V>(tx: Tx, map: GovMap<V>, key: Uint8Array): V | undefined {
  const bytes = tx.ro(map.name).get(key);
  return bytes === undefined ? undefined : map.codec.decode(bytes);
}

/** The caller's registered certificate in `map` (read through the tx), decoded once per value. */
function registeredPem(tx: Tx, map: GovMap<string>, identity: CertIdentity): string | undefined {
  const bytes = tx.ro(map.name).get(identity.key);
  if (bytes === undefined) return undefined;
  const cached = identity.registered.get(map.name);
  if (cached !== undefined && cached.bytes === bytes) return cached.pem;
  const pem = map.codec.decode(bytes);
  identity.registered.set(map.name, { bytes, pem });
  return pem;
}

type CertPolicy = "user_cert" | "member_cert" | "any_cert";

/**
 * CCF's check of a caller certificate's validity period (its messages, times in Unix seconds):
 * null when `nowMs` is inside [notBefore, notAfter], else why not.
 */
function validityError(identity: CertIdentity, nowMs: number): string | null {
  if (identity.validity === undefined) {
    const cert = tryParseCertificate(identity.der);
    identity.validity = {
      fromMs: cert === null ? NaN : Date.parse(cert.validFrom),
      toMs: cert === null ? NaN : Date.parse(cert.validTo),
    };
  }
  const { fromMs, toMs } = identity.validity;
  const now = Math.floor(nowMs / 1000);
  if (!(nowMs >= fromMs)) {
    const from = Math.floor(fromMs / 1000);
    return `Current time ${now} is before certificate's Not Before validity period ${from}`;
  }
  if (!(nowMs <= toMs)) {
    const to = Math.floor(toMs / 1000);
    return `Current time ${now} is after certificate's Not After validity period ${to}`;
  }
  return null;
}

function certPolicy(tx: Tx, request: RpcRequest, policy: CertPolicy, nowMs: number): PolicyOutcome {
  const der = request.callerCertDer;
  if (der === null) {
    return refuse(policy, "InvalidAuthenticationInfo", "Could not find client certificate.");
  }
  const identity = certIdentity(der);
  if (policy === "any_cert") {
    identity.pem ??= derToPem(identity.der, "CERTIFICATE");
    return { kind: "ok", caller: { policy, certPem: identity.pem } };
  }
  const expired = validityError(identity, nowMs);
  if (expired !== null) return refuse(policy, "InvalidAuthenticationInfo", expired);
  const { id, key } = identity;
  const isUser = policy === "user_cert";
  const certPem = registeredPem(tx, isUser ? GOV_MAPS.userCerts : GOV_MAPS.memberCerts, identity);
  if (certPem === undefined) {
    const who = isUser ? "user" : "member";
    return refuse(
      policy,
      "InvalidAuthenticationInfo",
      `Could not find matching ${who} certificate.`,
    );
  }
  if (isUser) {
    const userData = readByKey(tx, GOV_MAPS.userInfo, key)?.user_data;
    return { kind: "ok", caller: { policy, userId: id, certPem, userData } };
  }
  const memberData = readByKey(tx, GOV_MAPS.memberInfo, key)?.member_data;
  return { kind: "ok", caller: { policy: "member_cert", memberId: id, certPem, memberData } };
}

function memberCosePolicy(
  tx: Tx,
  request: RpcRequest,
  policy: MemberCosePolicy,
  options: AuthOptions,
): PolicyOutcome<GovMemberCaller> {
  let parsed: GovCoseRequest;
  try {
    parsed = parseGovCoseRequest(request.body);
  } catch (err: unknown) {
    if (err instanceof GovCoseError) {
      return refuse(policy, "InvalidAuthenticationInfo", coseRefusal(err.type.coseCode, err));
    }
    throw err;
  }
  const certPem = getById(tx, GOV_MAPS.memberCerts, parsed.kid);
  if (certPem === undefined) {
    return refuse(policy, "InvalidAuthenticationInfo", `Unknown member id: ${parsed.kid}.`);
  }
  const check = checkGovCoseSignature(parsed, certPem);
  if (check.kind !== "valid") {
    return refuse(policy, "InvalidAuthenticationInfo", "Signature verification failed.");
  }
  if (options.msgType !== undefined && parsed.msgType !== options.msgType) {
    const what = `Found ${parsed.msgType}, expected ${options.msgType}.`;
    return refuse(policy, "InvalidAuthenticationInfo", `Unexpected message type: ${what}`);
  }
  const info = getById(tx, GOV_MAPS.memberInfo, parsed.kid);
  if (policy === "active_member_cose_sign1" && info?.status !== "Active") {
    return refuse(policy, "InvalidAuthenticationInfo", `Member ${parsed.kid} is not active.`);
  }
  const caller: GovMemberCaller = {
    policy,
    memberId: parsed.kid,
    certPem,
    memberData: info?.member_data,
    cosePayload: parsed.payload,
    govRequest: parsed,
  };
  return { kind: "ok", caller };
}

/**
 * A COSE policy's refusal of a body it cannot read. A body that is not CBOR at all (JSON, say,
 * sent without a client certificate to an endpoint that also takes certificates) is named as
 * such, rather than by the CBOR decoder's complaint about its first bytes.
 */
function coseRefusal(code: CoseErrorCode | null, err: Error): string {
  if (code === CoseErrorCode.NotCbor) {
    return `The request body is not a COSE_Sign1 message (not CBOR: ${err.message}).`;
  }
  return err.message;
}

/** User COSE: a COSE_Sign1 whose kid (hex user id) names a registered user. */
function userCosePolicy(
  tx: Tx,
  request: RpcRequest,
  policy: "user_cose_sign1",
): PolicyOutcome<UserCoseCaller> {
  let message;
  try {
    message = decodeSign1(request.body, { requireTag: false });
  } catch (err: unknown) {
    // Only a malformed COSE body is the caller's fault; anything else is a node bug.
    if (err instanceof CoseError) {
      return refuse(policy, "InvalidAuthenticationInfo", coseRefusal(err.code, err));
    }
    throw err;
  }
  const kid = message.protectedHeader.get(4);
  if (!(kid instanceof Uint8Array))
    return refuse(policy, "InvalidAuthenticationInfo", "Missing kid.");
  const id = decoder.decode(kid);
  const certPem = /^[a-f0-9]{64}$/.test(id) ? getById(tx, GOV_MAPS.userCerts, id) : undefined;
  if (certPem === undefined) return refuse(policy, "InvalidAuthenticationInfo", "Unknown user.");
  if (verifySign1(message, publicKeyOfCert(certPem)).kind !== "valid") {
    return refuse(policy, "InvalidAuthenticationInfo", "Signature verification failed.");
  }
  const userData = getById(tx, GOV_MAPS.userInfo, id)?.user_data;
  return {
    kind: "ok",
    caller: { policy, userId: id, certPem, userData, cosePayload: message.payload },
  };
}

export function tryPolicy(
  tx: Tx,
  request: RpcRequest,
  policy: AuthPolicy,
  options: AuthOptions,
): PolicyOutcome {
  switch (policy) {
    case "no_auth":
      return { kind: "ok", caller: { policy } };
    case "user_cert":
    case "member_cert":
    case "any_cert":
      return certPolicy(tx, request, policy, options.nowMs ?? Date.now());
    case "member_cose_sign1":
    case "active_member_cose_sign1":
      return memberCosePolicy(tx, request, policy, options);
    case "user_cose_sign1":
      return userCosePolicy(tx, request, policy);
  }
}

/** Authenticates with the first accepting policy; throws 401 with every policy's reason. */
export function authenticate(
  tx: Tx,
  request: RpcRequest,
  policies: readonly AuthPolicy[],
  options: AuthOptions = {},
): AuthenticatedCaller {
  const details: AuthDetail[] = [];
  for (const policy of policies) {
    const outcome = tryPolicy(tx, request, policy, options);
    if (outcome.kind === "ok") return outcome.caller;
    details.push(outcome.detail);
  }
  throw authenticationFailed(policies, details);
}

/**
 * The gov frontend's writes: exactly one member COSE policy, whose caller is always a
 * GovMemberCaller (so handlers need not narrow). Refusal is the same 401 as authenticate's.
 */
export function authenticateMember(
  tx: Tx,
  request: RpcRequest,
  policy: MemberCosePolicy,
  options: AuthOptions = {},
): GovMemberCaller {
  const outcome = memberCosePolicy(tx, request, policy, options);
  if (outcome.kind === "ok") return outcome.caller;
  throw authenticationFailed([policy], [outcome.detail]);
}

/** The 401 answered when every policy refused, with one detail per policy. */
export function authenticationFailed(
  policies: readonly string[],
  details: readonly AuthDetail[],
): HttpError {
  const isCose = policies.some((p) => p.endsWith("cose_sign1"));
  return new HttpError(
    HttpErrorCode.InvalidAuthenticationInfo,
    "Invalid authentication credentials.",
    {
      details,
      headers: isCose ? { "www-authenticate": 'COSE-SIGN1 realm="Signed request access"' } : {},
    },
  );
}
