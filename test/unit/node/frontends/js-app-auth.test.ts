// Authentication of JS app endpoints (src/node/frontends/js-app-auth.ts): the caller object of
// each policy as CCF's ccf-app endpoints.ts describes it ({policy, id, data, cert} for certs,
// {policy, cert} for any_cert, cose.content for COSE, a per-policy map for all_of), the first
// accepting policy wins, jwt always refuses with a clear message, and no policy means no caller.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { utf8 } from "../../../../src/base/bytes.js";
import { generateIdentity, memberIdFromCert } from "../../../../src/crypto/identity.js";
import { Store } from "../../../../src/kv/store.js";
import { HttpError } from "../../../../src/http/errors.js";
import type { RpcRequest } from "../../../../src/http/router.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";
import { authenticateJs, JWT_REFUSAL } from "../../../../src/node/frontends/js-app-auth.js";

const now = new Date(Date.now() - 60_000);
const member = await generateIdentity({ name: "member0", now });
const user = await generateIdentity({ name: "user0", now });
const stranger = await generateIdentity({ name: "stranger", now });
const userId = memberIdFromCert(user.certPem);
const memberId = memberIdFromCert(member.certPem);

const store = new Store();
{
  const tx = store.begin();
  const put = (table: string, id: string, value: string) => tx.rw(table).set(utf8(id), utf8(value));
  put(SERVICE_TABLES.memberCerts, memberId, member.certPem);
  put(SERVICE_TABLES.memberInfo, memberId, '{"status":"Active","member_data":{"m":1}}');
  put(SERVICE_TABLES.userCerts, userId, user.certPem);
  put(SERVICE_TABLES.userInfo, userId, '{"user_data":{"isAdmin":true}}');
  assert.equal(store.commit(tx).kind, "committed");
}

function request(certPem: string | null): RpcRequest {
  return {
    method: "GET",
    path: "/app/x",
    query: "",
    queryParams: new URLSearchParams(),
    headers: {},
    body: new Uint8Array(0),
    params: {},
    callerCertDer: certPem === null ? null : new Uint8Array(new X509Certificate(certPem).raw),
  };
}

function refusal(f: () => unknown): HttpError {
  try {
    f();
  } catch (e) {
    if (e instanceof HttpError) return e;
    throw e;
  }
  assert.fail("expected a 401");
}

test("certificate callers have CCF's shape", () => {
  const tx = store.begin();
  assert.deepEqual(authenticateJs(tx, request(user.certPem), ["user_cert"]), {
    caller: { policy: "user_cert", id: userId, data: { isAdmin: true }, cert: user.certPem },
  });
  const asMember = authenticateJs(tx, request(member.certPem), ["user_cert", "member_cert"]);
  assert.deepEqual(asMember.caller, {
    policy: "member_cert",
    id: memberId,
    data: { m: 1 },
    cert: member.certPem,
  });
  const any = authenticateJs(tx, request(stranger.certPem), ["any_cert"]).caller as {
    policy: string;
  };
  assert.equal(any.policy, "any_cert");
  assert.deepEqual(authenticateJs(tx, request(null), ["no_auth"]), {
    caller: { policy: "no_auth" },
  });
  assert.deepEqual(authenticateJs(tx, request(null), []), { caller: undefined });
});

test("all_of needs every policy and names each identity", () => {
  const tx = store.begin();
  const both = authenticateJs(tx, request(user.certPem), [{ all_of: ["user_cert", "any_cert"] }]);
  const caller = both.caller as Record<string, unknown>;
  assert.deepEqual(caller.policy, ["user_cert", "any_cert"]);
  assert.equal((caller.user_cert as { id: string }).id, userId);
  assert.equal((caller.any_cert as { cert: string }).cert, user.certPem);
  const error = refusal(() =>
    authenticateJs(tx, request(stranger.certPem), [{ all_of: ["any_cert", "user_cert"] }]),
  );
  assert.equal(error.status, 401);
  assert.match(JSON.stringify(error.body), /user_cert: Could not find matching user certificate/);
});

test("jwt always refuses; a member is refused by user_cert with 401", () => {
  const tx = store.begin();
  const jwt = refusal(() => authenticateJs(tx, request(user.certPem), ["jwt"]));
  assert.equal(jwt.status, 401);
  assert.ok(JSON.stringify(jwt.body).includes(JWT_REFUSAL));
  const denied = refusal(() => authenticateJs(tx, request(member.certPem), ["user_cert"]));
  assert.equal(denied.status, 401);
  assert.equal(denied.body.error.code, "InvalidAuthenticationInfo");
});
