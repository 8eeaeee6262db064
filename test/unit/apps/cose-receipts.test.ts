// The logging app's COSE endpoints (src/apps/logging-cose.ts; ccf-compatibility.md §3.5) and
// the shared COSE answer of src/apps/cose-receipts.ts, driven handler by handler with a
// hand-built historical state: a JSON receipt over the PKI helper's naive tree and a COSE root
// signature with CCF 6's headers. The oracle for the receipt bytes is the verifier (checked
// against CCF's own in cose-receipt-oracle.test.ts); errors must be CCF's codes and messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { EndpointContext, HistoricalState, UserCertCaller } from "../../../src/apps/app.js";
import {
  COSE_CONTENT_TYPE,
  NO_COSE_SIGNATURE,
  NO_MERKLE_PROOF,
  prefersCose,
} from "../../../src/apps/cose-receipts.js";
import { loggingApp } from "../../../src/apps/logging.js";
import type { TxId, Seqno, View } from "../../../src/base/ids.js";
import { signSign1 } from "../../../src/crypto/cose.js";
import { HttpError, HttpErrorCode } from "../../../src/http/errors.js";
import type { RpcResponse } from "../../../src/http/router.js";
import { Store } from "../../../src/kv/store.js";
import { decodeCoseReceipt, verifyCoseReceipt } from "../../../src/ledger/cose-receipt.js";
import type { Receipt } from "../../../src/ledger/receipt.js";
import { makeCoseReceiptParts } from "../../helpers/cose-receipts.js";
import { makePki } from "../../helpers/pki.js";

const app = loggingApp();
const USER: UserCertCaller = {
  policy: "user_cert",
  userId: "ab".repeat(32),
  certPem: "PEM",
  userData: undefined,
};
const TX_ID: TxId = { view: 2 as View, seqno: 4 as Seqno };
const pkiPromise = makePki();

function state(receipt: Receipt | null, coseSignature: Uint8Array | null): HistoricalState {
  return { txId: TX_ID, get: () => undefined, receipt, coseSignature: () => coseSignature };
}

function call(path: string, historical: HistoricalState): RpcResponse {
  const endpoint = app.endpoints.find((e) => e.method === "GET" && e.path === path);
  assert.ok(endpoint !== undefined, path);
  const store = new Store();
  const context: EndpointContext = {
    request: {
      method: "GET",
      path: `/app${path}`,
      query: "",
      queryParams: new URLSearchParams(),
      headers: { "x-ms-ccf-transaction-id": "2.4" },
      body: new Uint8Array(),
      params: {},
      callerCertDer: null,
    },
    caller: USER,
    tx: store.begin(),
    setClaimsDigest: () => assert.fail("COSE endpoints set no claims"),
    historical,
  };
  return endpoint.handler(context);
}

function assertFails(path: string, historical: HistoricalState, code: HttpErrorCode, text: string) {
  assert.throws(
    () => call(path, historical),
    (err: unknown) => err instanceof HttpError && err.code === code && err.message === text,
    `${path}: ${code} ${text}`,
  );
}

const RECEIPT_PATHS = ["/log/public/cose_receipt", "/log/private/cose_receipt"];

test("the COSE endpoints are historical GETs with the C++ sample's user policies", () => {
  for (const path of [...RECEIPT_PATHS, "/log/public/cose_signature"]) {
    const endpoint = app.endpoints.find((e) => e.path === path);
    assert.ok(endpoint !== undefined, path);
    assert.equal(endpoint.method, "GET");
    assert.equal(endpoint.mode, "historical");
    assert.deepEqual(endpoint.authPolicies, ["user_cert", "user_cose_sign1"]);
  }
});

test("cose_receipt answers application/cose that verifies against the service certificate", async () => {
  const pki = await pkiPromise;
  const parts = makeCoseReceiptParts(pki, { leafCount: 5, index: 3 });
  for (const path of RECEIPT_PATHS) {
    const response = call(path, state(parts.receipt, parts.coseSignature));
    assert.equal(response.status, 200);
    assert.deepEqual(response.headers, { "content-type": COSE_CONTENT_TYPE });
    assert.ok(response.body instanceof Uint8Array);
    const verdict = verifyCoseReceipt(decodeCoseReceipt(response.body), {
      serviceCertPem: pki.serviceCertPem,
    });
    assert.equal(verdict.kind, "valid", verdict.kind === "invalid" ? verdict.reason : "");
    if (verdict.kind === "valid") {
      assert.deepEqual(verdict.roots, [parts.root]);
    }
  }
});

test("cose_receipt gives CCF's 404s without a COSE signature or a Merkle proof", async () => {
  const pki = await pkiPromise;
  const parts = makeCoseReceiptParts(pki, { leafCount: 3, index: 1 });
  const { leaf_components: _components, ...rest } = parts.receipt;
  void _components;
  const signatureReceipt: Receipt = { ...rest, proof: [], leaf: "00".repeat(32) };
  const notFound = HttpErrorCode.ResourceNotFound;
  for (const path of RECEIPT_PATHS) {
    assertFails(path, state(parts.receipt, null), notFound, NO_COSE_SIGNATURE);
    assertFails(path, state(signatureReceipt, parts.coseSignature), notFound, NO_MERKLE_PROOF);
    assertFails(path, state(null, null), notFound, "Receipt is no longer available.");
    const attached = signSign1(pki.serviceKeys.privateKey, new Map(), parts.root);
    assert.throws(
      () => call(path, state(parts.receipt, attached)),
      (err: unknown) => err instanceof HttpError && err.code === HttpErrorCode.InternalError,
    );
  }
});

test("cose_signature answers the covering COSE signature as base64 JSON", async () => {
  const pki = await pkiPromise;
  const parts = makeCoseReceiptParts(pki, { leafCount: 3, index: 1 });
  const path = "/log/public/cose_signature";
  const response = call(path, state(parts.receipt, parts.coseSignature));
  assert.deepEqual(response, {
    status: 200,
    body: { cose_signature: Buffer.from(parts.coseSignature).toString("base64") },
  });
  const notFound = HttpErrorCode.ResourceNotFound;
  assertFails(path, state(parts.receipt, null), notFound, NO_COSE_SIGNATURE);
  assertFails(path, state(null, null), notFound, "Receipt is no longer available.");
});

test("/app/receipt answers COSE only when Accept asks for it before JSON", () => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    ["*/*", false],
    ["application/json", false],
    ["application/cose", true],
    ["Application/COSE; q=0.9", true],
    ["text/plain, application/cose", true],
    ["application/json, application/cose", false],
    ["application/cose, application/json", true],
    ["application/cose-x", false],
  ];
  for (const [accept, expected] of cases) assert.equal(prefersCose(accept), expected, accept);
});
