// Authentication policies (ccf-compatibility.md §3.7, §4.1): certificate policies find the TLS
// client cert in the users or members tables; COSE policies verify a signed body from a registered
// member (or user) with the endpoint's message type; active_member_cose_sign1 also needs status
// Active. When every policy refuses, the error is 401 InvalidAuthenticationInfo with one detail per
// policy (and WWW-Authenticate for COSE policies).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { utf8 } from "../../../../src/base/bytes.js";
import { signSign1 } from "../../../../src/crypto/cose.js";
import { generateIdentity, memberIdFromCert } from "../../../../src/crypto/identity.js";
import { Store } from "../../../../src/kv/store.js";
import { HttpError } from "../../../../src/http/errors.js";
import type { RpcRequest } from "../../../../src/http/router.js";
import type { AuthPolicy } from "../../../../src/apps/app.js";
import {
  authenticate,
  authenticateMember,
  type AuthenticatedCaller,
} from "../../../../src/node/frontends/auth.js";
import { SERVICE_TABLES } from "../../../../src/kv/service-tables.js";

const now = new Date(Date.now() - 60_000);
const member = await generateIdentity({ name: "member0", now });
const activeMember = await generateIdentity({ name: "member1", now });
const user = await generateIdentity({ name: "user0", now });
const stranger = await generateIdentity({ name: "stranger", now });

const store = new Store();
{
  const tx = store.begin();
  const put = (table: string, id: string, value: string) => tx.rw(table).set(utf8(id), utf8(value));
  put(SERVICE_TABLES.memberCerts, memberIdFromCert(member.certPem), member.certPem);
  put(
    SERVICE_TABLES.memberInfo,
    memberIdFromCert(member.certPem),
    '{"status":"Accepted","member_data":{"a":1}}',
  );
  put(SERVICE_TABLES.memberCerts, memberIdFromCert(activeMember.certPem), activeMember.certPem);
  put(SERVICE_TABLES.memberInfo, memberIdFromCert(activeMember.certPem), '{"status":"Active"}');
  put(SERVICE_TABLES.userCerts, memberIdFromCert(user.certPem), user.certPem);
  put(SERVICE_TABLES.userInfo, memberIdFromCert(user.certPem), '{"user_data":{"isAdmin":true}}');
  assert.equal(store.commit(tx).kind, "committed");
}

function der(pem: string): Uint8Array {
  return new Uint8Array(new X509Certificate(pem).raw);
}

function request(body: Uint8Array, certPem: string | null): RpcRequest {
  return {
    method: "POST",
    path: "/x",
    query: "",
    queryParams: new URLSearchParams(),
    headers: {},
    body,
    params: {},
    callerCertDer: certPem === null ? null : der(certPem),
  };
}

function cose(signer: { certPem: string; privateKeyPem: string }, msgType: string, kid?: string) {
  const header = new Map<number | string, unknown>([
    [4, utf8(kid ?? memberIdFromCert(signer.certPem))],
    ["ccf.gov.msg.type", msgType],
    ["ccf.gov.msg.created_at", 1_700_000_000],
  ]);
  return signSign1(createPrivateKey(signer.privateKeyPem), header, utf8('{"actions":[]}'));
}

/** The user id a user_cert caller was authenticated as (asserting that policy). */
function userIdOf(caller: AuthenticatedCaller): string {
  assert.ok(caller.policy === "user_cert" || caller.policy === "user_cose_sign1", caller.policy);
  return caller.userId;
}

function refused(f: () => unknown): HttpError {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof HttpError, String(err));
    assert.equal(err.status, 401);
    assert.equal(err.code, "InvalidAuthenticationInfo");
    return err;
  }
  assert.fail("expected a 401");
}

test("user_cert accepts a registered user's TLS cert and returns its id and user_data", () => {
  const caller = authenticate(store.begin(), request(new Uint8Array(0), user.certPem), [
    "user_cert",
  ]);
  assert.ok(caller.policy === "user_cert");
  assert.equal(caller.userId, memberIdFromCert(user.certPem));
  assert.deepEqual(caller.userData, { isAdmin: true });
  assert.equal(caller.certPem, user.certPem);
});

test("cert policies refuse an unknown cert, a missing cert, and a member cert for users", () => {
  refused(() =>
    authenticate(store.begin(), request(new Uint8Array(0), stranger.certPem), ["user_cert"]),
  );
  refused(() => authenticate(store.begin(), request(new Uint8Array(0), null), ["user_cert"]));
  refused(() =>
    authenticate(store.begin(), request(new Uint8Array(0), member.certPem), ["user_cert"]),
  );
  const m = authenticate(store.begin(), request(new Uint8Array(0), member.certPem), [
    "member_cert",
  ]);
  assert.ok(m.policy === "member_cert");
  assert.equal(m.memberId, memberIdFromCert(member.certPem));
  assert.deepEqual(m.memberData, { a: 1 });
  const any = authenticate(store.begin(), request(new Uint8Array(0), stranger.certPem), [
    "any_cert",
  ]);
  assert.ok(any.policy === "any_cert");
  assert.deepEqual(der(any.certPem), der(stranger.certPem));
});

test("the first accepting policy wins; no_auth always accepts", () => {
  const caller = authenticate(store.begin(), request(new Uint8Array(0), null), [
    "user_cert",
    "no_auth",
  ]);
  assert.equal(caller.policy, "no_auth");
});

test("member_cose_sign1 verifies the signature, the kid and the message type", () => {
  const tx = store.begin();
  const ok = authenticate(tx, request(cose(member, "proposal"), null), ["member_cose_sign1"], {
    msgType: "proposal",
  });
  assert.ok(ok.policy === "member_cose_sign1");
  assert.equal(ok.memberId, memberIdFromCert(member.certPem));
  assert.equal(new TextDecoder().decode(ok.cosePayload), '{"actions":[]}');
  // The gov frontend reads the request's headers from the caller, with no optional fields.
  assert.equal(ok.govRequest.msgType, "proposal");
  assert.equal(ok.govRequest.createdAt, 1_700_000_000);
  const wrongType = refused(() =>
    authenticate(tx, request(cose(member, "ack"), null), ["member_cose_sign1"], {
      msgType: "proposal",
    }),
  );
  assert.match(JSON.stringify(wrongType.details), /Unexpected message type/);
  // Signed by a stranger who claims member0's kid: the signature does not verify.
  const forged = cose(stranger, "proposal", memberIdFromCert(member.certPem));
  refused(() => authenticate(tx, request(forged, null), ["member_cose_sign1"]));
  refused(() => authenticate(tx, request(cose(stranger, "proposal"), null), ["member_cose_sign1"]));
  refused(() => authenticate(tx, request(utf8("not cbor"), null), ["member_cose_sign1"]));
});

test("active_member_cose_sign1 refuses an Accepted member and accepts an Active one", () => {
  const tx = store.begin();
  const err = refused(() =>
    authenticate(tx, request(cose(member, "proposal"), null), ["active_member_cose_sign1"]),
  );
  assert.match(JSON.stringify(err.details), /not active/);
  assert.equal(err.headers?.["www-authenticate"], 'COSE-SIGN1 realm="Signed request access"');
  const ok = authenticate(tx, request(cose(activeMember, "proposal"), null), [
    "active_member_cose_sign1",
  ]);
  assert.ok(ok.policy === "active_member_cose_sign1");
  assert.equal(ok.memberId, memberIdFromCert(activeMember.certPem));
});

test("authenticateMember yields a member COSE caller or the same 401 as authenticate", () => {
  const tx = store.begin();
  const caller = authenticateMember(tx, request(cose(member, "ack"), null), "member_cose_sign1", {
    msgType: "ack",
  });
  assert.equal(caller.policy, "member_cose_sign1");
  assert.equal(caller.memberId, memberIdFromCert(member.certPem));
  assert.equal(caller.govRequest.kid, caller.memberId);
  const policy: AuthPolicy = "active_member_cose_sign1";
  const err = refused(() =>
    authenticateMember(tx, request(cose(member, "proposal"), null), policy),
  );
  assert.deepEqual(err.details, [
    {
      auth_policy: policy,
      code: "InvalidAuthenticationInfo",
      message: "Member " + `${memberIdFromCert(member.certPem)} is not active.`,
    },
  ]);
  assert.equal(err.headers["www-authenticate"], 'COSE-SIGN1 realm="Signed request access"');
});

test("user_cose_sign1 accepts a body signed by a registered user", () => {
  const caller = authenticate(store.begin(), request(cose(user, "anything"), null), [
    "user_cose_sign1",
  ]);
  assert.ok(caller.policy === "user_cose_sign1");
  assert.equal(caller.userId, memberIdFromCert(user.certPem));
  assert.equal(new TextDecoder().decode(caller.cosePayload), '{"actions":[]}');
});

test("user_cose_sign1 refuses a body that is not COSE with a 401, not a crash", () => {
  const err = refused(() =>
    authenticate(store.begin(), request(utf8("not cbor"), null), ["user_cose_sign1"]),
  );
  assert.equal((err.details as { auth_policy: string }[])[0]?.auth_policy, "user_cose_sign1");
});

test("COSE policies name a JSON body as not COSE_Sign1, not by the CBOR decoder's complaint", () => {
  const json = utf8('{"id": 1, "msg": "hello"}');
  const policies = ["user_cert", "user_cose_sign1", "member_cose_sign1"] as const;
  const err = refused(() => authenticate(store.begin(), request(json, null), [...policies]));
  const details = err.details as { auth_policy: string; message: string }[];
  assert.deepEqual(
    details.map((d) => d.auth_policy),
    policies,
  );
  for (const d of details.slice(1)) {
    assert.match(d.message, /^The request body is not a COSE_Sign1 message \(not CBOR: .+\)\.$/);
  }
});

test("a refusal lists one detail per policy tried", () => {
  const err = refused(() =>
    authenticate(store.begin(), request(new Uint8Array(0), null), ["user_cert", "user_cose_sign1"]),
  );
  const details = err.details as { auth_policy: string }[];
  assert.deepEqual(
    details.map((d) => d.auth_policy),
    ["user_cert", "user_cose_sign1"],
  );
});

test("the per-connection caller id cache follows the certificate bytes, not the array", () => {
  // The server hands the same DER array to every request of a connection; reusing an array
  // with other bytes must not reuse the first certificate's identity.
  const userDer = der(user.certPem);
  const req = { ...request(new Uint8Array(0), null), callerCertDer: userDer };
  assert.equal(
    userIdOf(authenticate(store.begin(), req, ["user_cert"])),
    memberIdFromCert(user.certPem),
  );
  assert.equal(
    userIdOf(authenticate(store.begin(), req, ["user_cert"])),
    memberIdFromCert(user.certPem),
  );
  const strangerDer = der(stranger.certPem);
  const swapped = new Uint8Array(Math.max(userDer.length, strangerDer.length));
  swapped.set(userDer);
  const reqSwapped = { ...req, callerCertDer: swapped.subarray(0, userDer.length) };
  assert.equal(
    userIdOf(authenticate(store.begin(), reqSwapped, ["user_cert"])),
    memberIdFromCert(user.certPem),
  );
  swapped.fill(0);
  swapped.set(strangerDer);
  const reqStranger = { ...req, callerCertDer: swapped.subarray(0, strangerDer.length) };
  refused(() => authenticate(store.begin(), reqStranger, ["user_cert"]));
  // The same array object, refilled in place with another certificate's bytes.
  userDer.set(new Uint8Array(userDer.length));
  refused(() => authenticate(store.begin(), req, ["user_cert"]));
});

test("user_cert and member_cert refuse certificates outside their validity period", () => {
  // `now` is a minute ago and the certificates are valid for 365 days from it.
  const from = now.getTime();
  const notAfter = Date.parse(new X509Certificate(user.certPem).validTo);
  const details = (err: HttpError) =>
    (err.details as { message: string }[]).map((d) => d.message).join("\n");
  for (const [pem, policy] of [
    [user.certPem, "user_cert"],
    [member.certPem, "member_cert"],
  ] as const) {
    const req = request(new Uint8Array(0), pem);
    const expired = refused(() =>
      authenticate(store.begin(), req, [policy], { nowMs: notAfter + 1000 }),
    );
    assert.match(details(expired), /is after certificate's Not After validity period/);
    const early = refused(() =>
      authenticate(store.begin(), req, [policy], { nowMs: from - 86_400_000 }),
    );
    assert.match(details(early), /is before certificate's Not Before validity period/);
    assert.equal(authenticate(store.begin(), req, [policy], { nowMs: from + 1000 }).policy, policy);
  }
});

test("a connection's caller sees its registered certificate as the store holds it now", () => {
  // The PEM read for a connection is reused only while the stored value is the same; a rewrite
  // (here with a trailing comment line) or a removal is seen by the next request.
  const local = new Store();
  const id = memberIdFromCert(user.certPem);
  const write = (pem: string | null) => {
    const tx = local.begin();
    if (pem === null) tx.rw(SERVICE_TABLES.userCerts).delete(utf8(id));
    else tx.rw(SERVICE_TABLES.userCerts).set(utf8(id), utf8(pem));
    assert.equal(local.commit(tx).kind, "committed");
  };
  const certPemOf = (caller: AuthenticatedCaller) => {
    assert.ok(caller.policy === "user_cert", caller.policy);
    return caller.certPem;
  };
  const req = { ...request(new Uint8Array(0), null), callerCertDer: der(user.certPem) };
  write(user.certPem);
  assert.equal(certPemOf(authenticate(local.begin(), req, ["user_cert"])), user.certPem);
  assert.equal(certPemOf(authenticate(local.begin(), req, ["user_cert"])), user.certPem);
  write(`${user.certPem}\n`);
  assert.equal(certPemOf(authenticate(local.begin(), req, ["user_cert"])), `${user.certPem}\n`);
  write(null);
  refused(() => authenticate(local.begin(), req, ["user_cert"]));
  write(user.certPem);
  assert.equal(certPemOf(authenticate(local.begin(), req, ["user_cert"])), user.certPem);
});
