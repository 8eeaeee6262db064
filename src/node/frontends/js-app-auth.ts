/**
 * Authentication of JS app endpoints (ccf-compatibility.md §9): the policies app.json names,
 * tried in order, and the `caller` object the handler sees, shaped as CCF's
 * js/ccf-app/src/endpoints.ts describes it:
 * - user_cert / member_cert: `{policy, id, data, cert}`; any_cert: `{policy, cert}`;
 * - user_cose_sign1 / member_cose_sign1: `{policy, id, data, cert, cose: {content}}` (the runtime
 *   fills `cose.content` with the verified payload as an ArrayBuffer);
 * - no_auth: `{policy: "no_auth"}`;
 * - all_of: every constituent must accept; `{policy: [names], <name>: identity, ...}`;
 * - jwt: accepted in metadata, always refused (no JWT issuers exist yet) with a 401 saying so.
 * An endpoint without policies is unauthenticated and has no caller.
 *
 * The certificate and COSE checks themselves are auth.ts's, over the request's transaction.
 */
import type { Caller } from "../../apps/app.js";
import type { JsAuthnPolicy, JsAuthnPolicySpec } from "../../js/app-bundle.js";
import type { JsonValue } from "../../js/sandbox.js";
import type { Tx } from "../../kv/tx.js";
import type { RpcRequest } from "../../http/router.js";
import { authenticationFailed, tryPolicy, type AuthDetail } from "./auth.js";

export const JWT_REFUSAL =
  "JWT authentication is not available: this service has no JWT issuers configured.";

/** Who called, as the guest sees it, and a COSE caller's verified payload. */
export interface JsCaller {
  readonly caller: JsonValue | undefined;
  readonly coseContent?: Uint8Array;
}

type Accepted = { kind: "ok"; identity: { [key: string]: JsonValue }; cose?: Uint8Array };
type Outcome = Accepted | { kind: "refused"; detail: AuthDetail };

function refuse(policy: string, code: string, message: string): Outcome {
  return { kind: "refused", detail: { auth_policy: policy, code, message } };
}

function data(value: unknown): JsonValue {
  return value === undefined ? null : (value as JsonValue);
}

/** The guest's view of a caller established by auth.ts. */
function identityOf(caller: Caller): Accepted {
  switch (caller.policy) {
    case "no_auth":
      return { kind: "ok", identity: { policy: "no_auth" } };
    case "any_cert":
      return { kind: "ok", identity: { policy: "any_cert", cert: caller.certPem } };
    case "user_cert":
      return {
        kind: "ok",
        identity: {
          policy: "user_cert",
          id: caller.userId,
          data: data(caller.userData),
          cert: caller.certPem,
        },
      };
    case "member_cert":
      return {
        kind: "ok",
        identity: {
          policy: "member_cert",
          id: caller.memberId,
          data: data(caller.memberData),
          cert: caller.certPem,
        },
      };
    case "user_cose_sign1":
    case "member_cose_sign1":
    case "active_member_cose_sign1": {
      const id = caller.policy === "user_cose_sign1" ? caller.userId : caller.memberId;
      const info = caller.policy === "user_cose_sign1" ? caller.userData : caller.memberData;
      const identity = {
        policy: caller.policy,
        id,
        data: data(info),
        cert: caller.certPem,
        cose: {},
      };
      return { kind: "ok", identity, cose: caller.cosePayload };
    }
  }
}

function tryOne(tx: Tx, request: RpcRequest, policy: JsAuthnPolicy, nowMs?: number): Outcome {
  if (policy === "jwt") return refuse("jwt", "InvalidAuthenticationInfo", JWT_REFUSAL);
  const outcome = tryPolicy(tx, request, policy, { nowMs });
  return outcome.kind === "ok" ? identityOf(outcome.caller) : outcome;
}

function tryAllOf(
  tx: Tx,
  request: RpcRequest,
  parts: readonly JsAuthnPolicy[],
  nowMs?: number,
): Outcome {
  const identity: { [key: string]: JsonValue } = { policy: [...parts] };
  let cose: Uint8Array | undefined;
  for (const part of parts) {
    const outcome = tryOne(tx, request, part, nowMs);
    if (outcome.kind === "refused") {
      const why = `${part}: ${outcome.detail.message}`;
      return refuse(
        "all_of",
        outcome.detail.code,
        `All of [${parts.join(", ")}] must pass; ${why}`,
      );
    }
    identity[part] = outcome.identity;
    cose ??= outcome.cose;
  }
  return cose === undefined ? { kind: "ok", identity } : { kind: "ok", identity, cose };
}

function policyName(spec: JsAuthnPolicySpec): string {
  return typeof spec === "string" ? spec : "all_of";
}

/**
 * The caller under the first accepting policy; throws the 401 InvalidAuthenticationInfo of
 * auth.ts, with one detail per policy, when none accepts.
 */
export function authenticateJs(
  tx: Tx,
  request: RpcRequest,
  policies: readonly JsAuthnPolicySpec[],
  nowMs?: number,
): JsCaller {
  if (policies.length === 0) return { caller: undefined };
  const details: AuthDetail[] = [];
  for (const spec of policies) {
    const outcome =
      typeof spec === "string"
        ? tryOne(tx, request, spec, nowMs)
        : tryAllOf(tx, request, spec.all_of, nowMs);
    if (outcome.kind === "ok") {
      return outcome.cose === undefined
        ? { caller: outcome.identity }
        : { caller: outcome.identity, coseContent: outcome.cose };
    }
    details.push(outcome.detail);
  }
  throw authenticationFailed(policies.map(policyName), details);
}
