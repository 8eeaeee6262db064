// CCF's error table and bodies (src/http/errors.ts). The table is what makes every endpoint answer
// the same condition with the same status, so it is checked against CCF's documented statuses for
// the codes clients branch on, and the body shape against ccf-compatibility.md §3.1, §3.6.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CcfError } from "../../../src/base/errors.js";
import {
  errorBody,
  HTTP_STATUS_OF_CODE,
  HttpError,
  HttpErrorCode,
  httpStatusOf,
} from "../../../src/http/errors.js";

test("every error code has an HTTP error status in the table", () => {
  const codes = Object.values(HttpErrorCode);
  assert.equal(codes.length, 57);
  for (const code of codes) {
    const status = HTTP_STATUS_OF_CODE[code];
    assert.ok(status >= 400 && status <= 599, `${code} -> ${status}`);
  }
  assert.deepEqual(Object.keys(HTTP_STATUS_OF_CODE).sort(), [...codes].sort());
});

test("each code's value is its own name, as CCF puts it on the wire", () => {
  for (const [name, value] of Object.entries(HttpErrorCode)) assert.equal(value, name);
});

test("codes that clients branch on carry CCF's statuses", () => {
  const expected: [HttpErrorCode, number][] = [
    [HttpErrorCode.ResourceNotFound, 404],
    [HttpErrorCode.UnsupportedHttpVerb, 405],
    [HttpErrorCode.InvalidAuthenticationInfo, 401],
    [HttpErrorCode.AuthorizationFailed, 403],
    [HttpErrorCode.RequestBodyTooLarge, 413],
    [HttpErrorCode.RequestHeaderTooLarge, 431],
    [HttpErrorCode.FrontendNotOpen, 404],
    [HttpErrorCode.MissingRequiredHeader, 400],
    [HttpErrorCode.InvalidHeaderValue, 400],
    [HttpErrorCode.TransactionPendingOrUnknown, 404],
    [HttpErrorCode.TransactionInvalid, 404],
    [HttpErrorCode.PrimaryNotFound, 503],
    // Consortia's own, for app services (ADR 0005).
    [HttpErrorCode.AppServiceUnavailable, 503],
    [HttpErrorCode.AppServicePackageMismatch, 503],
    [HttpErrorCode.AppServiceTimeout, 504],
    [HttpErrorCode.MissingApiVersionParameter, 400],
    [HttpErrorCode.UnsupportedApiVersionValue, 400],
    [HttpErrorCode.ProposalNotFound, 404],
    [HttpErrorCode.InternalError, 500],
    [HttpErrorCode.NotImplemented, 501],
    [HttpErrorCode.UnsupportedContentType, 415],
  ];
  for (const [code, status] of expected) assert.equal(httpStatusOf(code), status, code);
});

test("errorBody omits details unless given and keeps them in order when given", () => {
  assert.deepEqual(errorBody(HttpErrorCode.InvalidInput, "bad"), {
    error: { code: "InvalidInput", message: "bad" },
  });
  assert.equal(
    JSON.stringify(errorBody(HttpErrorCode.InvalidInput, "bad")),
    '{"error":{"code":"InvalidInput","message":"bad"}}',
  );
  const details = [
    { auth_policy: "user_cert", code: "InvalidAuthenticationInfo", message: "a" },
    { auth_policy: "user_cose_sign1", code: "InvalidAuthenticationInfo", message: "b" },
  ];
  assert.deepEqual(errorBody(HttpErrorCode.InvalidAuthenticationInfo, "x", details), {
    error: { code: "InvalidAuthenticationInfo", message: "x", details },
  });
});

test("HttpError takes its status from the table and carries details and headers", () => {
  const realm = 'COSE-SIGN1 realm="Signed request access"';
  const err = new HttpError(
    HttpErrorCode.InvalidAuthenticationInfo,
    "Invalid authentication credentials.",
    { details: [{ auth_policy: "member_cose_sign1" }], headers: { "www-authenticate": realm } },
  );
  assert.ok(err instanceof CcfError);
  assert.ok(err instanceof Error);
  assert.equal(err.name, "HttpError");
  assert.equal(err.code, HttpErrorCode.InvalidAuthenticationInfo);
  assert.equal(err.status, 401);
  assert.deepEqual(err.headers, { "www-authenticate": realm });
  assert.deepEqual(err.body, {
    error: {
      code: "InvalidAuthenticationInfo",
      message: "Invalid authentication credentials.",
      details: [{ auth_policy: "member_cose_sign1" }],
    },
  });
});

test("HttpError without options has no details and no extra headers", () => {
  const err = new HttpError(HttpErrorCode.FrontendNotOpen, "Frontend is not open.");
  assert.equal(err.status, 404);
  assert.equal(err.details, undefined);
  assert.deepEqual(err.headers, {});
  assert.deepEqual(err.body, {
    error: { code: "FrontendNotOpen", message: "Frontend is not open." },
  });
});
