// The built-in logging app (src/apps/logging.ts) driven handler by handler, without a node: a
// real Store and Tx, hand-built requests and callers. It covers what a CCF client and a CCF ledger
// reader depend on: the endpoint table (paths, verbs, policies, modes), the stored bytes (CCF 6's
// kv::Map<size_t, std::string> is JSON-serialised: the id's decimal text as key, the message as a
// JSON string, escaped as nlohmann::json dumps it; private vs public vs scoped maps), every error
// code and status, the claims digest, and the anonymous / prefix_cert / admin_only / raw_text
// variants.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { utf8 } from "../../../src/base/bytes.js";
import { sha256 } from "../../../src/crypto/hash.js";
import { HttpError, HttpErrorCode } from "../../../src/http/errors.js";
import { Router, type RpcRequest, type RpcResponse } from "../../../src/http/router.js";
import { KvError, KvErrorCode } from "../../../src/kv/tx.js";
import { Store, type CommitOutcome } from "../../../src/kv/store.js";
import type {
  AppEndpoint,
  Caller,
  EndpointContext,
  UserCertCaller,
} from "../../../src/apps/app.js";
import { loggingApp, messageCodec, recordIdCodec } from "../../../src/apps/logging.js";

const app = loggingApp();
const USER: UserCertCaller = {
  policy: "user_cert",
  userId: "ab".repeat(32),
  certPem: "PEM",
  userData: undefined,
};

interface CallOptions {
  readonly query?: string;
  readonly headers?: Record<string, string>;
  readonly body?: Uint8Array | string | object;
  readonly params?: Record<string, string>;
  readonly caller?: Caller;
}

interface CallResult {
  readonly response: RpcResponse;
  readonly claims: Uint8Array[];
  readonly outcome: CommitOutcome;
}

function find(method: string, path: string): AppEndpoint {
  const found = app.endpoints.filter((e) => e.method === method && e.path === path);
  assert.equal(found.length, 1, `${method} ${path}`);
  return found[0]!;
}

function bodyBytes(body: CallOptions["body"]): Uint8Array {
  if (body === undefined) return new Uint8Array();
  if (body instanceof Uint8Array) return body;
  return utf8(typeof body === "string" ? body : JSON.stringify(body));
}

function makeRequest(method: string, path: string, options: CallOptions): RpcRequest {
  const query = options.query ?? "";
  return {
    method,
    path: `/app${path}`,
    query,
    queryParams: new URLSearchParams(query),
    headers: options.headers ?? { "content-type": "application/json" },
    body: bodyBytes(options.body),
    params: options.params ?? {},
    callerCertDer: null,
  };
}

/** Runs the handler of (method, template) in a fresh tx and commits it, as the node would. */
function call(
  store: Store,
  method: string,
  template: string,
  options: CallOptions = {},
): CallResult {
  const tx = store.begin();
  const claims: Uint8Array[] = [];
  const context: EndpointContext = {
    request: makeRequest(method, template, options),
    caller: options.caller ?? USER,
    tx,
    setClaimsDigest: (digest) => claims.push(digest),
  };
  const response = find(method, template).handler(context);
  return { response, claims, outcome: store.commit(tx) };
}

/** Asserts the handler throws HttpError(code) with CCF's status; returns it for more checks. */
function callFails(
  store: Store,
  method: string,
  template: string,
  options: CallOptions,
  code: HttpErrorCode,
  status: number,
): HttpError {
  let caught: unknown;
  try {
    call(store, method, template, options);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof HttpError, `expected HttpError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, status);
  return caught;
}

/** The key CCF's JsonSerialiser<size_t> writes for record `n`: its decimal digits, in ASCII. */
function idKey(n: number): Uint8Array {
  return utf8(n.toString(10));
}

function stored(store: Store, map: string, id: number): string | undefined {
  const bytes = store.get(map, idKey(id));
  return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
}

test("the app declares each endpoint once with CCF's verbs, policies and modes", () => {
  const users = ["user_cert", "user_cose_sign1"];
  const expected: [string, string, string[], string][] = [
    ["POST", "/log/private", users, "readwrite"],
    ["GET", "/log/private", users, "readonly"],
    ["DELETE", "/log/private", users, "readwrite"],
    ["DELETE", "/log/private/all", users, "readwrite"],
    ["GET", "/log/private/count", users, "readonly"],
    ["POST", "/log/public", users, "readwrite"],
    ["GET", "/log/public", users, "readonly"],
    ["DELETE", "/log/public", users, "readwrite"],
    ["DELETE", "/log/public/all", users, "readwrite"],
    ["GET", "/log/public/count", users, "readonly"],
    ["POST", "/log/private/raw_text/{id}", users, "readwrite"],
    ["POST", "/log/private/anonymous", ["no_auth"], "readwrite"],
    ["POST", "/log/private/prefix_cert", ["user_cert"], "readwrite"],
    ["POST", "/log/private/admin_only", users, "readwrite"],
    ["GET", "/log/private/historical", users, "historical"],
    ["GET", "/log/private/historical_receipt", users, "historical"],
    ["GET", "/log/public/historical", users, "historical"],
    ["GET", "/log/public/historical_receipt", users, "historical"],
    ["GET", "/log/public/cose_receipt", users, "historical"],
    ["GET", "/log/private/cose_receipt", users, "historical"],
    ["GET", "/log/public/cose_signature", users, "historical"],
  ];
  assert.equal(app.name, "logging");
  assert.equal(app.endpoints.length, expected.length);
  for (const [method, path, policies, mode] of expected) {
    const e = find(method, path);
    assert.deepEqual(e.authPolicies, policies, `${method} ${path}`);
    assert.equal(e.mode, mode, `${method} ${path}`);
    assert.ok((e.summary ?? "").length > 0, `${method} ${path} has a summary`);
  }
  // The router asserts one handler per (method, template) and binds the raw_text id.
  const router = new Router();
  for (const e of app.endpoints) router.add(e.method, `/app${e.path}`, () => ({ status: 200 }));
  const match = router.match("POST", "/app/log/private/raw_text/17");
  assert.equal(match.kind, "handler");
  assert.deepEqual(match.kind === "handler" ? match.params : null, { id: "17" });
});

test("a private record is stored in records as JSON: key `42`, value the JSON string", () => {
  const store = new Store();
  const { response, claims, outcome } = call(store, "POST", "/log/private", {
    body: { id: 42, msg: 'hello "world"' },
  });
  assert.deepEqual(response, { status: 200, body: true });
  assert.equal(outcome.kind, "committed");
  assert.deepEqual(claims, []);
  assert.deepEqual(store.get("records", utf8("42")), utf8('"hello \\"world\\""'));
  assert.equal(store.get("records", new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0])), undefined);
  assert.equal(store.get("public:records", utf8("42")), undefined);
  const read = call(store, "GET", "/log/private", { query: "id=42" });
  assert.deepEqual(read.response, { status: 200, body: { msg: 'hello "world"' } });
  assert.equal(read.outcome.kind, "read-only");
});

test("a public record goes to public:records and is invisible to the private GET", () => {
  const store = new Store();
  call(store, "POST", "/log/public", { body: { id: 1, msg: "pub" } });
  assert.equal(stored(store, "public:records", 1), '"pub"');
  assert.equal(stored(store, "records", 1), undefined);
  const read = call(store, "GET", "/log/public", { query: "id=1" });
  assert.deepEqual(read.response.body, { msg: "pub" });
  callFails(store, "GET", "/log/private", { query: "id=1" }, HttpErrorCode.ResourceNotFound, 404);
});

test("ids up to 2^53 - 1 are stored as their exact decimal text", () => {
  const store = new Store();
  const id = Number.MAX_SAFE_INTEGER;
  call(store, "POST", "/log/private", { body: { id, msg: "big" } });
  assert.deepEqual(store.get("records", utf8("9007199254740991")), utf8('"big"'));
  call(store, "POST", "/log/private", { body: { id: 0, msg: "zero" } });
  assert.deepEqual(store.get("records", utf8("0")), utf8('"zero"'));
  assert.deepEqual(call(store, "GET", "/log/private", { query: `id=${id}` }).response.body, {
    msg: "big",
  });
});

test("a scope selects the records-s and public:records-s maps", () => {
  const store = new Store();
  call(store, "POST", "/log/private", { query: "scope=s-1_x", body: { id: 5, msg: "a" } });
  call(store, "POST", "/log/public", { query: "scope=s-1_x", body: { id: 5, msg: "b" } });
  assert.equal(stored(store, "records-s-1_x", 5), '"a"');
  assert.equal(stored(store, "public:records-s-1_x", 5), '"b"');
  assert.equal(stored(store, "records", 5), undefined);
  assert.equal(stored(store, "public:records", 5), undefined);
  const scoped = call(store, "GET", "/log/private", { query: "id=5&scope=s-1_x" });
  assert.deepEqual(scoped.response.body, { msg: "a" });
  callFails(store, "GET", "/log/private", { query: "id=5" }, HttpErrorCode.ResourceNotFound, 404);
  const count = call(store, "GET", "/log/public/count", { query: "scope=s-1_x" });
  assert.equal(count.response.body, 1);
});

test("a malformed scope is refused with 400 InvalidQueryParameterValue", () => {
  const store = new Store();
  for (const scope of ["", "a%2Fb", "a+b", "x".repeat(65), "%C3%A9"]) {
    for (const [method, path] of [
      ["POST", "/log/private"],
      ["GET", "/log/public/count"],
    ]) {
      callFails(
        store,
        method!,
        path!,
        { query: `scope=${scope}&id=1`, body: { id: 1, msg: "m" } },
        HttpErrorCode.InvalidQueryParameterValue,
        400,
      );
    }
  }
  const longest = "x".repeat(64);
  call(store, "POST", "/log/private", { query: `scope=${longest}`, body: { id: 1, msg: "m" } });
  assert.equal(stored(store, `records-${longest}`, 1), '"m"');
});

test("bodies that are not JSON are refused with 400 InvalidInput", () => {
  const store = new Store();
  for (const body of ["{", "", "id=1&msg=x", new Uint8Array([0x22, 0xff, 0x22])]) {
    const error = callFails(
      store,
      "POST",
      "/log/public",
      { body },
      HttpErrorCode.InvalidInput,
      400,
    );
    assert.equal(error.message, "Request body is not valid JSON.");
  }
});

test("records with a bad id, msg or record_claim are refused with 400 InvalidInput", () => {
  const store = new Store();
  const bad: unknown[] = [
    [1, "x"],
    "x",
    null,
    { msg: "x" },
    { id: -1, msg: "x" },
    { id: 1.5, msg: "x" },
    { id: "1", msg: "x" },
    { id: 2 ** 53, msg: "x" },
    { id: 1 },
    { id: 1, msg: 7 },
    { id: 1, msg: "x", record_claim: "yes" },
  ];
  for (const body of bad) {
    for (const path of ["/log/private", "/log/public", "/log/private/anonymous"]) {
      const options = { body: JSON.stringify(body) };
      callFails(store, "POST", path, options, HttpErrorCode.InvalidInput, 400);
    }
  }
  const empty = callFails(
    store,
    "POST",
    "/log/private",
    { body: { id: 1, msg: "" } },
    HttpErrorCode.InvalidInput,
    400,
  );
  assert.equal(empty.message, "Cannot record an empty log message.");
  assert.equal(store.seqno, 0);
});

test("a COSE Sign1 caller's record is read from the verified payload, not the raw body", () => {
  const store = new Store();
  const caller: Caller = {
    policy: "user_cose_sign1",
    userId: "cd".repeat(32),
    certPem: "PEM",
    userData: undefined,
    cosePayload: utf8(JSON.stringify({ id: 9, msg: "signed" })),
  };
  const raw = new Uint8Array([0xd2, 0x84, 0x58]); // a COSE envelope is not JSON
  call(store, "POST", "/log/private", { body: raw, caller });
  assert.equal(stored(store, "records", 9), '"signed"');
});

test("record_claim on a public record sets the claims digest to SHA-256 of the message", () => {
  const store = new Store();
  const claimed = call(store, "POST", "/log/public", {
    body: { id: 1, msg: "claim me ✓", record_claim: true },
  });
  assert.deepEqual(claimed.claims, [sha256(utf8("claim me ✓"))]);
  assert.equal(claimed.claims[0]!.length, 32);
  const unclaimed = [
    call(store, "POST", "/log/public", { body: { id: 2, msg: "m" } }),
    call(store, "POST", "/log/public", { body: { id: 3, msg: "m", record_claim: false } }),
    call(store, "POST", "/log/private", { body: { id: 4, msg: "m", record_claim: true } }),
  ];
  for (const result of unclaimed) assert.deepEqual(result.claims, []);
});

test("reads with a missing or malformed id are refused with 400", () => {
  const store = new Store();
  for (const query of ["", "id=", "id=abc", "id=-1", "id=1.5", "id=0x10", "id=9007199254740992"]) {
    for (const method of ["GET", "DELETE"]) {
      callFails(
        store,
        method,
        "/log/private",
        { query },
        HttpErrorCode.InvalidQueryParameterValue,
        400,
      );
    }
  }
});

test("reading an absent record is 404 ResourceNotFound naming the id", () => {
  const store = new Store();
  const error = callFails(
    store,
    "GET",
    "/log/public",
    { query: "id=7" },
    HttpErrorCode.ResourceNotFound,
    404,
  );
  assert.equal(error.message, "No such record: 7.");
});

test("delete removes one record and succeeds for an absent one, as CCF's C++ app", () => {
  const store = new Store();
  call(store, "POST", "/log/private", { body: { id: 1, msg: "a" } });
  call(store, "POST", "/log/private", { body: { id: 2, msg: "b" } });
  const removed = call(store, "DELETE", "/log/private", { query: "id=1" });
  assert.deepEqual(removed.response, { status: 200, body: true });
  assert.equal(stored(store, "records", 1), undefined);
  assert.equal(stored(store, "records", 2), '"b"');
  const absent = call(store, "DELETE", "/log/private", { query: "id=99" });
  assert.deepEqual(absent.response, { status: 200, body: true });
});

test("count follows writes, deletes and delete-all, per domain", () => {
  const store = new Store();
  const count = (domain: string): unknown =>
    call(store, "GET", `/log/${domain}/count`).response.body;
  assert.equal(count("private"), 0);
  for (const id of [1, 2, 3]) call(store, "POST", "/log/private", { body: { id, msg: "m" } });
  call(store, "POST", "/log/private", { body: { id: 2, msg: "overwrite" } });
  call(store, "POST", "/log/public", { body: { id: 1, msg: "m" } });
  assert.equal(count("private"), 3);
  assert.equal(count("public"), 1);
  call(store, "DELETE", "/log/private", { query: "id=2" });
  assert.equal(count("private"), 2);
  const cleared = call(store, "DELETE", "/log/private/all");
  assert.deepEqual(cleared.response, { status: 200, body: true });
  assert.equal(count("private"), 0);
  assert.equal(stored(store, "records", 1), undefined);
  assert.equal(count("public"), 1);
  call(store, "DELETE", "/log/public/all");
  assert.equal(count("public"), 0);
});

test("raw_text stores a text/plain body as the message of the path id", () => {
  const store = new Store();
  const headers = { "content-type": "text/plain; charset=utf-8" };
  const result = call(store, "POST", "/log/private/raw_text/{id}", {
    headers,
    body: 'line with "quotes"',
    params: { id: "12" },
  });
  assert.deepEqual(result.response, { status: 200, body: true });
  assert.equal(stored(store, "records", 12), JSON.stringify('line with "quotes"'));
  const read = call(store, "GET", "/log/private", { query: "id=12" });
  assert.deepEqual(read.response.body, { msg: 'line with "quotes"' });
});

test("raw_text refuses other content types with 415 and bad ids with 400", () => {
  const store = new Store();
  const path = "/log/private/raw_text/{id}";
  for (const headers of [{ "content-type": "application/json" }, {}]) {
    callFails(
      store,
      "POST",
      path,
      { headers, body: "x", params: { id: "1" } },
      HttpErrorCode.UnsupportedContentType,
      415,
    );
  }
  const text = { "content-type": "text/plain" };
  for (const id of ["abc", "-1", "1e3"]) {
    callFails(
      store,
      "POST",
      path,
      { headers: text, body: "x", params: { id } },
      HttpErrorCode.InvalidResourceName,
      400,
    );
  }
  callFails(
    store,
    "POST",
    path,
    { headers: text, body: new Uint8Array([0xff]), params: { id: "1" } },
    HttpErrorCode.InvalidInput,
    400,
  );
  assert.equal(store.seqno, 0);
});

test("anonymous records are stored privately with an Anonymous: prefix", () => {
  const store = new Store();
  call(store, "POST", "/log/private/anonymous", {
    body: { id: 3, msg: "hi" },
    caller: { policy: "no_auth" },
  });
  assert.equal(stored(store, "records", 3), '"Anonymous: hi"');
});

test("prefix_cert prefixes the message with the caller's user id", () => {
  const store = new Store();
  call(store, "POST", "/log/private/prefix_cert", { body: { id: 4, msg: "hi" } });
  assert.equal(stored(store, "records", 4), JSON.stringify(`${USER.userId}: hi`));
});

test("admin_only is 403 unless the caller's user data has isAdmin true", () => {
  const store = new Store();
  const path = "/log/private/admin_only";
  const body = { id: 8, msg: "admin" };
  for (const data of [undefined, null, {}, [], "isAdmin", { isAdmin: "true" }, { isAdmin: 1 }]) {
    const error = callFails(
      store,
      "POST",
      path,
      { body, caller: { ...USER, userData: data } },
      HttpErrorCode.AuthorizationFailed,
      403,
    );
    assert.equal(error.message, "Only admins may access this endpoint.");
  }
  assert.equal(store.seqno, 0);
  call(store, "POST", path, { body, caller: { ...USER, userData: { isAdmin: true } } });
  assert.equal(stored(store, "records", 8), '"admin"');
});

test("a stored value that is not a JSON string is a decode failure, not a message", () => {
  const store = new Store();
  const tx = store.begin();
  tx.rw("records").set(idKey(1), utf8("42"));
  store.commit(tx);
  assert.throws(
    () => call(store, "GET", "/log/private", { query: "id=1" }),
    (e: unknown) => e instanceof KvError && e.code === KvErrorCode.DecodeFailed,
  );
});

test("any id and non-empty message round-trips through POST and GET", () => {
  fc.assert(
    fc.property(
      fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      fc.string({ minLength: 1, unit: "grapheme" }),
      fc.constantFrom("private", "public"),
      (id, msg, domain) => {
        const store = new Store();
        call(store, "POST", `/log/${domain}`, { body: { id, msg } });
        const map = domain === "private" ? "records" : "public:records";
        assert.deepEqual(store.get(map, idKey(id)), utf8(JSON.stringify(msg)));
        const read = call(store, "GET", `/log/${domain}`, { query: `id=${id}` });
        assert.deepEqual(read.response.body, { msg });
      },
    ),
    { numRuns: 200 },
  );
});

test("messages are escaped byte for byte as nlohmann::json::dump escapes a std::string", () => {
  const store = new Store();
  // Short escapes for \b \t \n \f \r " and \\; other code points below 0x20 as lowercase
  // \u00xx; DEL, "/", non-ASCII and astral code points as their UTF-8 bytes, unescaped.
  const msg = 'a\u0001\u001f\b\t\n\f\r"\\/\u007fé€😀';
  call(store, "POST", "/log/public", { body: { id: 7, msg } });
  const expected = '"a\\u0001\\u001f\\b\\t\\n\\f\\r\\"\\\\/\u007fé€😀"';
  assert.deepEqual(store.get("public:records", utf8("7")), utf8(expected));
  assert.deepEqual(call(store, "GET", "/log/public", { query: "id=7" }).response.body, { msg });
});

test("a message with an unpaired surrogate is 400: CCF's JSON parser refuses it", () => {
  const store = new Store();
  for (const msg of ["\\ud800", "x\\udfff", "\\udc00\\ud800"]) {
    const body = `{"id": 1, "msg": "${msg}"}`;
    callFails(store, "POST", "/log/public", { body }, HttpErrorCode.InvalidInput, 400);
  }
  assert.equal(store.seqno, 0);
  assert.throws(
    () => messageCodec.encode("\ud800"),
    (e: unknown) => e instanceof KvError && e.code === KvErrorCode.EncodeFailed,
  );
  // A well-formed surrogate pair is one astral code point: stored as its 4 UTF-8 bytes.
  call(store, "POST", "/log/public", { body: '{"id": 1, "msg": "\\ud83d\\ude00"}' });
  assert.deepEqual(store.get("public:records", utf8("1")), utf8('"😀"'));
});

test("the record id codec reads only the canonical decimal form CCF writes", () => {
  for (const id of [0, 1, 42, 1000, Number.MAX_SAFE_INTEGER]) {
    assert.deepEqual(recordIdCodec.encode(id), utf8(String(id)));
    assert.equal(recordIdCodec.decode(recordIdCodec.encode(id)), id);
  }
  const decodeFailed = (e: unknown) => e instanceof KvError && e.code === KvErrorCode.DecodeFailed;
  for (const text of ["", "042", "-1", "+1", "1.0", "1e3", " 1", "1 ", "0x1", "9007199254740992"]) {
    assert.throws(() => recordIdCodec.decode(utf8(text)), decodeFailed, JSON.stringify(text));
  }
  assert.throws(
    () => recordIdCodec.decode(new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0])),
    decodeFailed,
  );
  const encodeFailed = (e: unknown) => e instanceof KvError && e.code === KvErrorCode.EncodeFailed;
  for (const id of [-1, 1.5, 2 ** 53, NaN]) {
    assert.throws(() => recordIdCodec.encode(id), encodeFailed, String(id));
  }
});
