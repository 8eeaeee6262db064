// Random requests against a real single-node sandbox (a real process, real TLS).
// First, random JSON in signed governance requests: the COSE_Sign1 envelope is valid and signed
// by a member, and its payload is what varies: proposals whose actions have real names and random
// arguments, ballots that are random JSON or random text as their source, state digest acks with
// random fields; and payloads that are not JSON or not UTF-8 at all. The constitution, the ballot
// runner and the endpoints' payload checks (src/node/frontends/gov-endpoints.ts,
// src/gov/proposals.ts) see them all.
// Then every GET endpoint (those the node's and the app's OpenAPI documents list, and the
// governance ones) with random path parameters, query parameters (ids such as 1e3, -0, 2.0, huge
// numbers, text) and x-ms-ccf-transaction-id headers. Last, the logging app's writes with any
// body and content type, as a user over mTLS.
// Property: every answer is 2xx (or a 3xx redirect) or a CCF error body with a 4xx status (never
// a 5xx, except CCF's 500 for an exception thrown by the constitution's validate()), and the
// node keeps answering.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { request } from "node:https";
import fc from "fast-check";
import { utf8 } from "../../src/base/bytes.js";
import { COSE_HEADER_KID, signSign1, type CoseLabel } from "../../src/crypto/cose.js";
import { memberIdFromCert } from "../../src/crypto/identity.js";
import {
  HEADER_MSG_CREATED_AT,
  HEADER_MSG_PROPOSAL_ID,
  HEADER_MSG_TYPE,
} from "../../src/gov/cose-request.js";
import { HTTP_STATUS_OF_CODE, HttpErrorCode } from "../../src/http/errors.js";
import { Network } from "../helpers/network.js";

let net: Network;
let key: KeyObject;
let memberId: string;
let openProposal: string;

interface Reply {
  readonly status: number;
  readonly body: string;
}

function post(
  path: string,
  body: Uint8Array,
  options: { contentType?: string; user?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: net.nodes[0]!.port,
        method: "POST",
        path: options.user === true ? path : `${path}?api-version=2024-07-01`,
        ca: net.tls.ca,
        ...(options.user === true ? { cert: net.tls.cert, key: net.tls.key } : {}),
        headers: {
          "content-type": options.contentType ?? "application/cose",
          "content-length": body.byteLength,
        },
        timeout: 20_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${path} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

function get(path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: net.nodes[0]!.port,
        method: "GET",
        path,
        ca: net.tls.ca,
        cert: net.tls.cert,
        key: net.tls.key,
        headers,
        timeout: 20_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

function signed(type: string, payload: Uint8Array, proposalId?: string): Uint8Array {
  const header = new Map<CoseLabel, unknown>([
    [COSE_HEADER_KID, utf8(memberId)],
    [HEADER_MSG_TYPE, type],
    [HEADER_MSG_CREATED_AT, Math.floor(Date.now() / 1000)],
  ]);
  if (proposalId !== undefined) header.set(HEADER_MSG_PROPOSAL_ID, proposalId);
  return signSign1(key, header, payload);
}

const KNOWN_CODES = new Set<string>(Object.values(HttpErrorCode));

/** 2xx, or a CCF error body whose code is known, with that code's status, which is a 4xx. */
function assertAnswer(reply: Reply): void {
  if (reply.status >= 200 && reply.status < 400) return;
  const parsed = JSON.parse(reply.body) as { error?: { code?: unknown; message?: unknown } };
  const code = parsed.error?.code;
  assert.ok(typeof code === "string" && KNOWN_CODES.has(code), `not a CCF error: ${reply.body}`);
  assert.equal(reply.status, HTTP_STATUS_OF_CODE[code as HttpErrorCode], reply.body);
  if (isConstitutionException(code, parsed.error?.message)) return;
  assert.ok(reply.status < 500, `${reply.status}: ${reply.body}`);
}

/**
 * The constitution's own validate() threw (CCF's default one JSON.parses the proposal unguarded):
 * CCF answers that 500 InternalError "Failed to execute validation: ...", and so do we. That is
 * the constitution's behaviour, which governance controls, not the node's.
 */
function isConstitutionException(code: string, message: unknown): boolean {
  return (
    code === HttpErrorCode.InternalError &&
    typeof message === "string" &&
    message.startsWith("Failed to execute validation: ")
  );
}

before(async () => {
  net = await Network.start(1);
  const member = net.members[0]!;
  key = createPrivateKey(member.keyPem);
  memberId = memberIdFromCert(member.certPem);
  // A proposal that stays open (one member's acceptance is not enough), for ballots.
  const payload = utf8(
    JSON.stringify({
      actions: [{ name: "set_member_data", args: { member_id: memberId, member_data: { n: 1 } } }],
    }),
  );
  const reply = await post("/gov/members/proposals:create", signed("proposal", payload));
  assert.equal(reply.status, 200, reply.body);
  openProposal = (JSON.parse(reply.body) as { proposalId: string }).proposalId;
});

after(async () => {
  await net.stop();
});

const ACTIONS = [
  "set_member_data",
  "set_user",
  "remove_user",
  "set_user_data",
  "set_member",
  "remove_member",
  "set_constitution",
  "transition_node_to_trusted",
  "remove_node",
  "set_node_data",
  "set_recovery_threshold",
  "trigger_recovery_shares_refresh",
  "set_js_app",
  "set_ca_cert_bundle",
  "set_jwt_issuer",
  "add_snp_host_data",
  "no_such_action",
];
const jsonArb = fc.jsonValue({ maxDepth: 3 });
const argsArb = fc.oneof(
  jsonArb,
  fc.dictionary(
    fc.constantFrom(
      "member_id",
      "user_id",
      "cert",
      "data",
      "node_id",
      "threshold",
      "bundle",
      "name",
      "key",
      "issuer",
      "constitution",
    ),
    fc.oneof(
      jsonArb,
      fc.constantFrom(
        memberIdPlaceholder(),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      ),
    ),
    { maxKeys: 3 },
  ),
);

/** Replaced by the member's id once it is known (arbitraries are built at load time). */
function memberIdPlaceholder(): string {
  return "member:self";
}

function withMemberId(text: string): string {
  return text.replaceAll(memberIdPlaceholder(), memberId);
}

const proposalArb = fc.oneof(
  fc
    .array(
      fc.record({
        name: fc.constantFrom(...ACTIONS),
        args: fc.option(argsArb, { nil: undefined }),
      }),
      { maxLength: 3 },
    )
    .map((actions) => withMemberId(JSON.stringify({ actions }))),
  jsonArb.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }),
);
const rawArb = fc.oneof(
  proposalArb.map(utf8),
  fc.uint8Array({ maxLength: 40 }),
  fc
    .integer({ min: 1, max: 2000 })
    .map((n) => utf8(`{"actions":${"[".repeat(n)}${"]".repeat(n)}}`)),
);

test("property: signed proposals with any payload get a 2xx or a 4xx CCF error", async () => {
  await fc.assert(
    fc.asyncProperty(rawArb, async (payload) => {
      assertAnswer(await post("/gov/members/proposals:create", signed("proposal", payload)));
    }),
    { numRuns: 40, includeErrorInReport: true },
  );
});

const ballotArb = fc.oneof(
  fc.string({ maxLength: 60 }).map((source) => JSON.stringify({ ballot: source })),
  fc
    .constantFrom(
      "export function vote(proposal, proposerId) { return true; }",
      "export function vote() { throw new Error('no'); }",
      "export function vote() { return JSON.parse('{'); }",
      "export function vote(p) { return p.actions[0].args.x.y; }",
      "export const vote = 1;",
      "export function vote() { return",
    )
    .map((source) => JSON.stringify({ ballot: source })),
  jsonArb.map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 40 }),
);

test("property: ballots with any payload get a 2xx or a 4xx CCF error", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(ballotArb.map(utf8), fc.uint8Array({ maxLength: 40 })),
      async (payload) => {
        const path = `/gov/members/proposals/${openProposal}/ballots/${memberId}:submit`;
        assertAnswer(await post(path, signed("ballot", payload, openProposal)));
      },
    ),
    { numRuns: 20, includeErrorInReport: true },
  );
});

test("property: state digest acks with any payload get a 2xx or a 4xx CCF error", async () => {
  const ackArb = fc.oneof(
    fc
      .record({ stateDigest: fc.oneof(fc.string({ maxLength: 70 }), jsonArb) })
      .map((v) => JSON.stringify(v)),
    jsonArb.map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 40 }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(ackArb.map(utf8), fc.uint8Array({ maxLength: 40 })),
      async (payload) => {
        const path = `/gov/members/state-digests/${memberId}:ack`;
        assertAnswer(await post(path, signed("ack", payload)));
      },
    ),
    { numRuns: 20, includeErrorInReport: true },
  );
  const state = await net.get(net.nodes[0]!, "/node/state");
  assert.equal(state.status, 200);
});

test("a ballot of deeply nested parentheses gets a 4xx or is recorded, not a 500", async () => {
  const payload = utf8(JSON.stringify({ ballot: "(".repeat(5000) }));
  const path = `/gov/members/proposals/${openProposal}/ballots/${memberId}:submit`;
  assertAnswer(await post(path, signed("ballot", payload, openProposal)));
});

/** The GET paths of the node's, the app's and governance's OpenAPI documents. */
async function documentedGets(): Promise<string[]> {
  const paths = new Set<string>();
  for (const api of ["/node/api", "/app/api", "/gov/api?api-version=2024-07-01"]) {
    const reply = await get(api, {});
    assert.equal(reply.status, 200, `${api}: ${reply.body}`);
    const doc = JSON.parse(reply.body) as { paths?: Record<string, Record<string, unknown>> };
    const prefix = `/${api.split("/")[1]!}`;
    for (const [path, operations] of Object.entries(doc.paths ?? {})) {
      if ("get" in operations) paths.add(path.startsWith(prefix) ? path : `${prefix}${path}`);
    }
  }
  // The governance API documents no paths (as CCF's): its GETs are listed here.
  for (const path of GOV_GETS) paths.add(`${path}?api-version=2024-07-01`);
  return [...paths];
}

const GOV_GETS = [
  ...["/gov/members/proposals", "/gov/members/proposals/{proposalId}"],
  ...["/gov/members/proposals/{proposalId}/actions", "/gov/service/users/{userId}"],
  ...["/gov/members/proposals/{proposalId}/ballots/{memberId}", "/gov/service/info"],
  ...["/gov/members/state-digests/{memberId}", "/gov/recovery/encrypted-shares/{memberId}"],
  ...["/gov/service/constitution", "/gov/service/javascript-app", "/gov/service/users"],
  ...["/gov/service/javascript-modules", "/gov/service/javascript-modules/{moduleName}"],
  ...["/gov/service/join-policy", "/gov/service/members", "/gov/service/members/{memberId}"],
  ...["/gov/service/nodes", "/gov/service/nodes/{nodeId}", "/gov/service/app-services"],
  ...["/gov/service/transactions/commit", "/gov/service/transactions/{transactionId}"],
];

const oddValueArb = fc.oneof(
  fc.constantFrom(
    ...["0", "1", "-0", "1e3", "1.0", "2.0", "0.0", "2.1", "2.", ".2", "-1", "", "a.b"],
    ...["18446744073709551616", "9007199254740993", "true", "Bogus", "Trusted", "%zz", "%00"],
    ...["2024-07-01", "2023-06-01-preview", "original"],
  ),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);
const QUERY_KEYS = [
  ...["id", "transaction_id", "view_history", "view_history_since", "status", "seqno"],
  ...["from_seqno", "to_seqno", "api-version", "case"],
];

test("property: every documented GET with random parameters gets a 2xx/3xx or a 4xx", async () => {
  const paths = await documentedGets();
  assert.ok(paths.length > 40, `only ${paths.length} GET paths`);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...paths),
      fc.array(oddValueArb, { minLength: 2, maxLength: 2 }),
      fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), oddValueArb), { maxLength: 3 }),
      fc.option(oddValueArb, { nil: null }),
      async (template, params, query, txId) => {
        let i = 0;
        const path = template.replace(/\{[^}]+\}/g, () => params[i++ % 2]!);
        const q = query.map(([k, v]) => `${k}=${v}`).join("&");
        const url = q === "" ? path : `${path}${path.includes("?") ? "&" : "?"}${q}`;
        // A header value carries the text as is, printable ASCII only.
        const header = txId === null ? null : txId.replace(/[^\x20-\x7e]/g, "");
        const headers: Record<string, string> =
          header === null ? {} : { "x-ms-ccf-transaction-id": header };
        assertAnswer(await get(url, headers));
      },
    ),
    { numRuns: 150, includeErrorInReport: true },
  );
});

test("property: app writes with any body and content type get a 2xx or a 4xx", async () => {
  const bodyArb = fc.oneof(
    fc
      .record({ id: fc.oneof(fc.nat(), jsonArb), msg: fc.oneof(fc.string(), jsonArb) })
      .map((r) => utf8(JSON.stringify(r))),
    jsonArb.map((v) => utf8(JSON.stringify(v))),
    fc.string({ maxLength: 40 }).map(utf8),
    fc.uint8Array({ maxLength: 40 }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("/app/log/private", "/app/log/public", "/app/log/private/raw_text/7"),
      bodyArb,
      fc.constantFrom("application/json", "text/plain", "application/cose", "", "x/y; a=b"),
      async (path, body, contentType) => {
        assertAnswer(await post(path, body, { contentType, user: true }));
      },
    ),
    { numRuns: 60, includeErrorInReport: true },
  );
});
