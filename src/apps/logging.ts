/**
 * CCF's built-in logging sample app, C++ flavour (samples/apps/logging/logging.cpp;
 * ccf-compatibility.md §3.5), as an AppModule: write, read, delete and count records in a
 * private and a public map, plus the raw_text, anonymous, prefix_cert and admin_only variants.
 * Historical reads (historical, historical_receipt, and the COSE receipts and signatures) use
 * the state the node loads from its ledger for the requested txId; historical/range is not here
 * yet.
 *
 * Storage is the C++ app's `ccf::kv::Map<size_t, std::string>`, whose serialisers in CCF 6 are
 * JSON for both key and value (kv::Map is kv::JsonSerialisedMap), so ledgers written here read
 * like CCF's: keys are the record id as JSON (decimal digits), values the JSON text of the
 * message (id 42, "msg" -> key `42`, value `"msg"`). Tables are "records" (private) and
 * "public:records" (public); `?scope=s` selects "records-s" / "public:records-s" instead.
 *
 * Invariants:
 * - Every key this module writes is a record id as nlohmann::json dumps a size_t, and every value
 *   a JSON string as it dumps a std::string; reads refuse anything else.
 * - Handlers only throw HttpError for bad requests: the node answers with it and discards the
 *   tx, so a handler never needs to undo a write it already made.
 * - Write endpoints are "readwrite", reads "readonly"; GETs never open a map for writing.
 */
import { bytesToKey, fromUtf8, utf8 } from "../base/bytes.js";
import { sha256 } from "../crypto/hash.js";
import type { RpcRequest, RpcResponse } from "../http/router.js";
import { HttpError, HttpErrorCode } from "../http/errors.js";
import {
  type Codec,
  jsonCodec,
  type TypedMapHandle,
  type TypedReadonlyMapHandle,
  typedMap,
} from "../kv/encoding.js";
import { KvError, KvErrorCode } from "../kv/tx.js";
import { assert } from "../base/assert.js";
import { isTextDecodeError } from "../base/errors.js";
import {
  cosePayloadOf,
  type AppEndpoint,
  type AppModule,
  type AuthPolicy,
  type Caller,
  type EndpointContext,
} from "./app.js";
import { loggingCoseEndpoints } from "./logging-cose.js";

type Domain = "private" | "public";

/** The C++ app's default policies, less jwt (not supported by this node). */
const USER_POLICIES: readonly AuthPolicy[] = ["user_cert", "user_cose_sign1"];

const PRIVATE_RECORDS = "records";
const PUBLIC_RECORDS = "public:records";
const SCOPE_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const DECIMAL_PATTERN = /^[0-9]+$/;
const EMPTY_MESSAGE = "Cannot record an empty log message.";

function recordCodecError(
  code: KvErrorCode.EncodeFailed | KvErrorCode.DecodeFailed,
  codec: string,
  why: string,
): never {
  throw new KvError({ code, codec }, `${codec} codec: ${why}`);
}

/** The canonical decimal form nlohmann::json gives an unsigned integer: no sign, no leading 0. */
const CANONICAL_U64_PATTERN = /^(0|[1-9][0-9]*)$/;

/**
 * A record id as CCF's JsonSerialiser<size_t> writes it: the JSON number in decimal ASCII
 * (42 -> `42`). CCF compares keys by their bytes, so decode accepts only that canonical form
 * (no sign, exponent, fraction, leading zero or white space), and only ids JS numbers hold
 * exactly, as parseId does.
 */
export const recordIdCodec: Codec<number> = {
  encode(id: number): Uint8Array {
    if (!Number.isSafeInteger(id) || id < 0) {
      recordCodecError(KvErrorCode.EncodeFailed, "record id", `not a u64 below 2^53: ${id}`);
    }
    return utf8(String(id));
  },
  decode(bytes: Uint8Array): number {
    // One char per byte, so a non-ASCII byte cannot pass the pattern.
    const text = bytesToKey(bytes);
    const id = CANONICAL_U64_PATTERN.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(id)) {
      recordCodecError(KvErrorCode.DecodeFailed, "record id", "key is not a canonical JSON u64");
    }
    return id;
  },
};

const LONE_SURROGATE_PATTERN = /\p{Cs}/u;

/**
 * A record's message as CCF's JsonSerialiser<std::string> writes it: the JSON string, UTF-8,
 * escaped as nlohmann::json::dump escapes (`"`, `\\`, \b \f \n \r \t, other code points below
 * 0x20 as lowercase \u00xx, everything else as is), which is exactly JSON.stringify's output for
 * a well-formed string. A string with an unpaired surrogate has no UTF-8 form, and CCF's parser
 * refuses its \udxxx escape, so encode refuses it; decode refuses any JSON that is not a string.
 */
export const messageCodec: Codec<string> = (() => {
  const json = jsonCodec<unknown>();
  return {
    encode(value: string): Uint8Array {
      if (LONE_SURROGATE_PATTERN.test(value)) {
        recordCodecError(KvErrorCode.EncodeFailed, "message", "unpaired surrogate");
      }
      return json.encode(value);
    },
    decode(bytes: Uint8Array): string {
      const value = json.decode(bytes);
      if (typeof value !== "string") {
        recordCodecError(KvErrorCode.DecodeFailed, "message", "stored value is not a JSON string");
      }
      return value;
    },
  };
})();

/** A parsed `{"id", "msg", "record_claim"?}` request body. */
interface LogRecord {
  /** Invariant: a non-negative safe integer (recordIdCodec can encode it). */
  readonly id: number;
  /** Invariant: non-empty. */
  readonly msg: string;
  readonly recordClaim: boolean;
}

/** The table for `domain`, honouring `?scope=`; 400 when the scope is malformed. */
function recordsMapName(domain: Domain, request: RpcRequest): string {
  const base = domain === "private" ? PRIVATE_RECORDS : PUBLIC_RECORDS;
  const scope = request.queryParams.get("scope");
  if (scope === null) return base;
  if (!SCOPE_PATTERN.test(scope)) {
    throw new HttpError(
      HttpErrorCode.InvalidQueryParameterValue,
      `Invalid scope '${scope}': expected 1 to 64 characters from [A-Za-z0-9_-].`,
    );
  }
  return `${base}-${scope}`;
}

function writableRecords(context: EndpointContext, domain: Domain): TypedMapHandle<number, string> {
  return typedMap(
    context.tx.rw(recordsMapName(domain, context.request)),
    recordIdCodec,
    messageCodec,
  );
}

function readableRecords(
  context: EndpointContext,
  domain: Domain,
): TypedReadonlyMapHandle<number, string> {
  return typedMap(
    context.tx.ro(recordsMapName(domain, context.request)),
    recordIdCodec,
    messageCodec,
  );
}

/** A decimal u64 that JS numbers hold exactly, or null. */
function parseId(text: string): number | null {
  if (!DECIMAL_PATTERN.test(text)) return null;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : null;
}

/** The `?id=` query parameter; 400 InvalidQueryParameterValue when missing or not a u64. */
function idFromQuery(request: RpcRequest): number {
  const text = request.queryParams.get("id");
  if (text === null) {
    throw new HttpError(HttpErrorCode.InvalidQueryParameterValue, "Missing query parameter 'id'.");
  }
  const id = parseId(text);
  if (id === null) {
    throw new HttpError(
      HttpErrorCode.InvalidQueryParameterValue,
      `Unable to parse value '${text}' in parameter 'id'.`,
    );
  }
  return id;
}

function invalidBody(why: string): never {
  throw new HttpError(HttpErrorCode.InvalidInput, `Invalid request body: ${why}`);
}

/** The request's JSON document: the verified COSE payload for COSE callers, else the body. */
function jsonBody(context: EndpointContext): unknown {
  const bytes = cosePayloadOf(context.caller) ?? context.request.body;
  try {
    return JSON.parse(fromUtf8(bytes)) as unknown;
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    // Invalid UTF-8 (TypeError) and bad JSON (SyntaxError) mean the same to the client; the
    // engine's own wording is left out so the message is stable across Node versions.
    throw new HttpError(HttpErrorCode.InvalidInput, "Request body is not valid JSON.");
  }
}

/** Parses and validates `{"id": uint, "msg": string, "record_claim"?: bool}`. */
function parseRecord(context: EndpointContext): LogRecord {
  const body = jsonBody(context);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return invalidBody("expected a JSON object.");
  }
  const fields = body as Record<string, unknown>;
  const { id, msg } = fields;
  const recordClaim = fields["record_claim"];
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
    return invalidBody("'id' must be a non-negative integer.");
  }
  if (typeof msg !== "string") return invalidBody("'msg' must be a string.");
  // JSON.parse accepts a lone \udxxx escape; CCF's parser refuses it and UTF-8 cannot hold it.
  if (LONE_SURROGATE_PATTERN.test(msg)) return invalidBody("'msg' has an unpaired surrogate.");
  if (recordClaim !== undefined && typeof recordClaim !== "boolean") {
    return invalidBody("'record_claim' must be a boolean.");
  }
  if (msg.length === 0) throw new HttpError(HttpErrorCode.InvalidInput, EMPTY_MESSAGE);
  return { id, msg, recordClaim: recordClaim === true };
}

function ok(body: object | boolean | number): RpcResponse {
  return { status: 200, body };
}

function notFound(id: number): never {
  throw new HttpError(HttpErrorCode.ResourceNotFound, `No such record: ${id}.`);
}

function endpoint(
  method: AppEndpoint["method"],
  path: string,
  summary: string,
  handler: AppEndpoint["handler"],
  authPolicies: readonly AuthPolicy[] = USER_POLICIES,
): AppEndpoint {
  const mode = method === "GET" ? "readonly" : "readwrite";
  return { method, path, authPolicies, mode, handler, summary };
}

/** The five endpoints each domain has: write, read, delete one, delete all, count. */
function domainEndpoints(domain: Domain): AppEndpoint[] {
  const path = `/log/${domain}`;
  return [
    endpoint("POST", path, `Store a ${domain} record`, (context) => {
      const record = parseRecord(context);
      writableRecords(context, domain).set(record.id, record.msg);
      // Only public records may carry a claim: the digest goes into the public Merkle leaf.
      if (domain === "public" && record.recordClaim) {
        context.setClaimsDigest(sha256(utf8(record.msg)));
      }
      return ok(true);
    }),
    endpoint("GET", path, `Read a ${domain} record by id`, (context) => {
      const id = idFromQuery(context.request);
      const msg = readableRecords(context, domain).get(id);
      return msg === undefined ? notFound(id) : ok({ msg });
    }),
    endpoint("DELETE", path, `Delete a ${domain} record by id`, (context) => {
      // As CCF's C++ app: removing an absent record still succeeds.
      writableRecords(context, domain).delete(idFromQuery(context.request));
      return ok(true);
    }),
    endpoint("DELETE", `${path}/all`, `Delete every ${domain} record`, (context) => {
      writableRecords(context, domain).clear();
      return ok(true);
    }),
    endpoint("GET", `${path}/count`, `Count the ${domain} records`, (context) => {
      return ok(readableRecords(context, domain).size);
    }),
  ];
}

const TEXT_PLAIN = "text/plain";

/** POST /log/private/raw_text/{id}: the text/plain body itself is the message. */
function rawTextEndpoint(): AppEndpoint {
  return endpoint("POST", "/log/private/raw_text/{id}", "Store a text/plain body", (context) => {
    const { request } = context;
    const contentType = request.headers["content-type"] ?? "";
    if (!contentType.toLowerCase().startsWith(TEXT_PLAIN)) {
      throw new HttpError(
        HttpErrorCode.UnsupportedContentType,
        `Expected content-type '${TEXT_PLAIN}'. Got '${contentType}'.`,
      );
    }
    const idText = request.params["id"] ?? "";
    const id = parseId(idText);
    if (id === null) {
      throw new HttpError(
        HttpErrorCode.InvalidResourceName,
        `Unable to parse value '${idText}' in path parameter 'id'.`,
      );
    }
    let text: string;
    try {
      text = fromUtf8(request.body);
    } catch (err: unknown) {
      if (!isTextDecodeError(err)) throw err;
      return invalidBody("text is not valid UTF-8.");
    }
    writableRecords(context, "private").set(id, text);
    return ok(true);
  });
}

/** Stores `transform(record)` as the private message of `record.id`. */
function storePrivate(context: EndpointContext, transform: (msg: string) => string): RpcResponse {
  const record = parseRecord(context);
  writableRecords(context, "private").set(record.id, transform(record.msg));
  return ok(true);
}

/** Whether the caller is a user whose user_data has `isAdmin: true` (members never are). */
function isAdmin(caller: Caller): boolean {
  if (caller.policy !== "user_cert" && caller.policy !== "user_cose_sign1") return false;
  const data = caller.userData;
  if (typeof data !== "object" || data === null) return false;
  return (data as { isAdmin?: unknown }).isAdmin === true;
}

/** The private-only variants: anonymous, prefix_cert and admin_only. */
function variantEndpoints(): AppEndpoint[] {
  const anonymous = endpoint(
    "POST",
    "/log/private/anonymous",
    "Store a private record without authentication",
    (context) => storePrivate(context, (msg) => `Anonymous: ${msg}`),
    ["no_auth"],
  );
  const prefixCert = endpoint(
    "POST",
    "/log/private/prefix_cert",
    "Store a private record prefixed with the caller's user id",
    (context) => {
      const caller = context.caller;
      // The endpoint lists only user_cert, so any other caller here is a node bug.
      assert(caller.policy === "user_cert", `prefix_cert authenticated by ${caller.policy}`);
      return storePrivate(context, (msg) => `${caller.userId}: ${msg}`);
    },
    ["user_cert"],
  );
  const adminOnly = endpoint(
    "POST",
    "/log/private/admin_only",
    "Store a private record; only users whose user_data has isAdmin true",
    (context) => {
      // Authorisation before parsing: a non-admin learns nothing about body validation.
      if (!isAdmin(context.caller)) {
        throw new HttpError(
          HttpErrorCode.AuthorizationFailed,
          "Only admins may access this endpoint.",
        );
      }
      return storePrivate(context, (msg) => msg);
    },
  );
  return [anonymous, prefixCert, adminOnly];
}

/**
 * Historical reads (ccf-compatibility.md §3.5, §3.8): the record as written by the committed
 * transaction named in the x-ms-ccf-transaction-id header. The C++ app answers 204 when that
 * transaction did not write the record. historical_receipt adds the receipt; for public records it
 * drops claims_digest so a verifier recomputes it from the message.
 */
function historicalEndpoints(domain: Domain): AppEndpoint[] {
  const read = (context: EndpointContext): { id: number; msg: string } | null => {
    const id = idFromQuery(context.request);
    const state = context.historical;
    if (state === undefined)
      throw new HttpError(HttpErrorCode.InternalError, "No historical state.");
    const value = state.get(recordsMapName(domain, context.request), recordIdCodec.encode(id));
    if (value === undefined || value === null) return null;
    return { id, msg: messageCodec.decode(value) };
  };
  const historical: AppEndpoint = {
    method: "GET",
    path: `/log/${domain}/historical`,
    authPolicies: USER_POLICIES,
    mode: "historical",
    summary: `Read a ${domain} record as written by the transaction in x-ms-ccf-transaction-id`,
    handler: (context) => {
      const record = read(context);
      return record === null ? { status: 204 } : ok({ msg: record.msg });
    },
  };
  const withReceipt: AppEndpoint = {
    method: "GET",
    path: `/log/${domain}/historical_receipt`,
    authPolicies: USER_POLICIES,
    mode: "historical",
    summary: `A historical ${domain} record with the receipt of the transaction that wrote it`,
    handler: (context) => {
      const record = read(context);
      if (record === null) return { status: 204 };
      const receipt = context.historical?.receipt;
      if (receipt === null || receipt === undefined) {
        throw new HttpError(HttpErrorCode.ResourceNotFound, "Receipt is no longer available.");
      }
      if (domain === "public" && receipt.leaf_components !== undefined) {
        const { claims_digest: _dropped, ...components } = receipt.leaf_components;
        void _dropped;
        return ok({ msg: record.msg, receipt: { ...receipt, leaf_components: components } });
      }
      return ok({ msg: record.msg, receipt });
    },
  };
  return [historical, withReceipt];
}

/** The logging app: every endpoint of ccf-compatibility.md §3.5 but the ones not yet there. */
export function loggingApp(): AppModule {
  return {
    name: "logging",
    endpoints: [
      ...domainEndpoints("private"),
      ...domainEndpoints("public"),
      rawTextEndpoint(),
      ...variantEndpoints(),
      ...historicalEndpoints("private"),
      ...historicalEndpoints("public"),
      ...loggingCoseEndpoints(USER_POLICIES),
    ],
  };
}
