/**
 * The node-to-node message codec (src/node/n2n/messages.ts): every message kind round-trips,
 * and decodeN2n treats its input as hostile. Checklist J1: random bytes, and valid encodings
 * with flipped bytes or truncated, either decode to a well-typed message or throw
 * N2nDecodeError, never any other exception.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { encode } from "cborg";
import { toHex as hex, utf8 } from "../../../../src/base/bytes.js";
import type { NodeId, RaftEntry, Seqno, View } from "../../../../src/consensus/types.js";
import {
  N2nDecodeError,
  decodeN2n,
  encodeN2n,
  type N2nMessage,
} from "../../../../src/node/replication/n2n/messages.js";
import { n2nMessageArb as messageArb } from "../../../helpers/n2n-arbitraries.js";

const FROM = "127.0.0.1:8001";

function raft(message: Extract<N2nMessage, { kind: "raft" }>["message"]): N2nMessage {
  return { kind: "raft", fromAddress: FROM, message };
}

/** Entries as decodeN2n produces them: `configuration` is always present (maybe undefined). */
const ENTRIES: RaftEntry[] = [
  {
    seqno: 7 as Seqno,
    view: 2 as View,
    isSignature: false,
    configuration: ["n1", "n2", "n3"] as NodeId[],
    payload: utf8("a ledger entry"),
  },
  {
    seqno: 8 as Seqno,
    view: 2 as View,
    isSignature: true,
    configuration: undefined,
    payload: new Uint8Array([0, 255, 1, 254]),
  },
  {
    seqno: 9 as Seqno,
    view: 3 as View,
    isSignature: false,
    configuration: [],
    payload: new Uint8Array(0),
  },
];

const SAMPLES: readonly N2nMessage[] = [
  raft({
    type: "append_entries",
    view: 3 as View,
    prevSeqno: 6 as Seqno,
    prevView: 2 as View,
    leaderCommit: 5 as Seqno,
    entries: ENTRIES,
  }),
  raft({
    type: "append_entries",
    view: 1 as View,
    prevSeqno: 0 as Seqno,
    prevView: 0 as View,
    leaderCommit: 0 as Seqno,
    entries: [],
  }),
  raft({ type: "append_entries_response", view: 3 as View, success: true, lastSeqno: 9 as Seqno }),
  raft({ type: "append_entries_response", view: 3 as View, success: false, lastSeqno: 0 as Seqno }),
  raft({
    type: "request_vote",
    view: 4 as View,
    preVote: true,
    lastCommittableSeqno: 8 as Seqno,
    lastCommittableView: 2 as View,
  }),
  raft({ type: "request_vote_response", view: 4 as View, preVote: false, granted: true }),
  raft({ type: "propose_request_vote", view: Number.MAX_SAFE_INTEGER as View }),
  {
    kind: "forward_request",
    fromAddress: "[::1]:9000",
    id: 1,
    request: {
      method: "POST",
      path: "/app/log/private",
      query: "id=1&x=%20y",
      headers: { "content-type": "application/json", "x-ms-ccf-test": "é ✓" },
      body: utf8('{"id":1,"msg":"hi"}'),
      callerCertDer: new Uint8Array([0x30, 0x82, 0x01, 0x0a, 0x02]),
    },
  },
  {
    kind: "forward_request",
    fromAddress: "",
    id: 0,
    request: {
      method: "GET",
      path: "/",
      query: "",
      headers: {},
      body: new Uint8Array(0),
      callerCertDer: null,
    },
  },
  {
    kind: "forward_response",
    fromAddress: FROM,
    id: 2 ** 40,
    response: {
      status: 201,
      headers: { "content-type": "application/json", "x-ms-ccf-transaction-id": "3.9" },
      body: utf8('{"ok":true}'),
    },
  },
];

/** Asserts `m` has exactly the shape and field types of an N2nMessage. */
function assertWellTyped(m: N2nMessage): void {
  const nat = (v: unknown): void => assert.ok(Number.isSafeInteger(v) && (v as number) >= 0);
  const isBool = (v: unknown): void => assert.equal(typeof v, "boolean");
  const isStr = (v: unknown): void => assert.equal(typeof v, "string");
  const isBytes = (v: unknown): void => assert.ok(v instanceof Uint8Array);
  const isHeaders = (h: unknown): void => {
    assert.ok(typeof h === "object" && h !== null && !Array.isArray(h));
    for (const v of Object.values(h)) isStr(v);
  };
  isStr(m.fromAddress);
  switch (m.kind) {
    case "raft": {
      const r = m.message;
      nat(r.view);
      switch (r.type) {
        case "append_entries":
          [r.prevSeqno, r.prevView, r.leaderCommit].forEach(nat);
          assert.ok(Array.isArray(r.entries));
          for (const e of r.entries) {
            [e.seqno, e.view].forEach(nat);
            isBool(e.isSignature);
            isBytes(e.payload);
            if (e.configuration !== undefined) e.configuration.forEach(isStr);
          }
          return;
        case "append_entries_response":
          isBool(r.success);
          nat(r.lastSeqno);
          return;
        case "request_vote":
          isBool(r.preVote);
          [r.lastCommittableSeqno, r.lastCommittableView].forEach(nat);
          return;
        case "request_vote_response":
          [r.preVote, r.granted].forEach(isBool);
          return;
        case "propose_request_vote":
          return;
      }
      return assert.fail(`unknown raft type ${String((r as { type: unknown }).type)}`);
    }
    case "forward_request":
      nat(m.id);
      [m.request.method, m.request.path, m.request.query].forEach(isStr);
      isHeaders(m.request.headers);
      isBytes(m.request.body);
      if (m.request.callerCertDer !== null) isBytes(m.request.callerCertDer);
      return;
    case "forward_response":
      nat(m.id);
      nat(m.response.status);
      isHeaders(m.response.headers);
      isBytes(m.response.body);
      return;
  }
  assert.fail(`unknown kind ${String((m as { kind: unknown }).kind)}`);
}

/** decodeN2n either yields a well-typed message or throws N2nDecodeError, nothing else. */
function decodesOrRejects(bytes: Uint8Array): void {
  let m: N2nMessage;
  try {
    m = decodeN2n(bytes);
  } catch (e) {
    if (e instanceof N2nDecodeError) {
      assert.equal(e.code, "MalformedMessage");
      return;
    }
    assert.fail(`decodeN2n(${hex(bytes)}) threw ${String(e)}`);
  }
  assertWellTyped(m);
}

test("every message kind round-trips", () => {
  for (const m of SAMPLES) {
    const decoded = decodeN2n(encodeN2n(m));
    assert.deepEqual(decoded, m);
    assertWellTyped(decoded);
  }
});

test("an entry without a configuration decodes with configuration undefined", () => {
  const m = raft({
    type: "append_entries",
    view: 1 as View,
    prevSeqno: 0 as Seqno,
    prevView: 0 as View,
    leaderCommit: 0 as Seqno,
    entries: [{ seqno: 1 as Seqno, view: 1 as View, isSignature: true, payload: utf8("p") }],
  });
  const decoded = decodeN2n(encodeN2n(m));
  assert.ok(decoded.kind === "raft" && decoded.message.type === "append_entries");
  const [e] = decoded.message.entries;
  assert.equal(e?.configuration, undefined);
  assert.deepEqual(e?.payload, utf8("p"));
});

test("malformed messages are rejected with N2nDecodeError", () => {
  const wire: unknown[] = [
    [],
    [0, FROM],
    "not an array",
    { kind: 0 },
    [3, FROM, 1, []], // unknown kind
    [0, 7, [4, 1]], // fromAddress not a string
    [0, FROM, [4, 1], "extra"],
    [0, FROM, [5, 1]], // unknown raft type
    [0, FROM, [-1, 1]],
    [0, FROM, [4, 1.5]], // view not an integer
    [0, FROM, [4, -1]],
    [0, FROM, [4, 2n ** 60n]], // beyond a safe integer (decodes as a bigint)
    [0, FROM, [4]],
    [0, FROM, [4, 1, "extra"]],
    [0, FROM, [3, 1, "yes", true]],
    [0, FROM, [1, 1, true]],
    [0, FROM, [0, 1, 0, 0, 0, "not entries"]],
    // Entries inside the CBOR value (earlier layouts) are refused: they follow it, as a block.
    [0, FROM, [0, 1, 0, 0, 0, []]],
    [0, FROM, [0, 1, 0, 0, 0, [[1, 1, false, null, new Uint8Array(0)]]]],
    [0, FROM, [0, 1, 0, 0, 0, new Uint8Array([0, 0, 0, 0])]],
    // An AppendEntries without its block.
    [0, FROM, [0, 1, 0, 0, 0]],
    [1, FROM, 1, ["GET", "/", "", {}, new Uint8Array(0)]],
    [1, FROM, 1, ["GET", "/", "", [], new Uint8Array(0), null]],
    [1, FROM, 1, ["GET", "/", "", { a: 1 }, new Uint8Array(0), null]],
    [1, FROM, 1, ["GET", "/", "", {}, "body", null]],
    [1, FROM, 1, ["GET", "/", "", {}, new Uint8Array(0), "cert"]],
    [1, FROM, -1, ["GET", "/", "", {}, new Uint8Array(0), null]],
    [2, FROM, 1, [200, {}, new Uint8Array(0)], "extra"],
    [2, FROM, 1, ["200", {}, new Uint8Array(0)]],
    [2, FROM, 1, [200, null, new Uint8Array(0)]],
  ];
  for (const v of wire) {
    assert.throws(() => decodeN2n(encode(v)), N2nDecodeError, `should reject ${String(v)}`);
  }
  for (const bytes of [new Uint8Array(0), new Uint8Array([0xff]), new Uint8Array([0x83, 0x00])]) {
    assert.throws(() => decodeN2n(bytes), N2nDecodeError);
  }
  // Trailing bytes after a valid message, an AppendEntries' block included.
  for (const sample of SAMPLES) {
    const valid = encodeN2n(sample);
    assert.throws(() => decodeN2n(new Uint8Array([...valid, 0])), N2nDecodeError);
  }
  // A block whose count the bytes cannot hold (n2n-entries-block.test.ts covers the rest).
  const header = encode([0, FROM, [0, 1, 0, 0, 0]]);
  assert.throws(() => decodeN2n(new Uint8Array([...header, 1, 0, 0, 0])), N2nDecodeError);
});

// Regression (found by this file): an unknown `kind` was formatted with String(v[0]); a CBOR map
// whose `toString` key holds a non-function made String() throw a TypeError.
// Bytes: 83 a1 68 "toString" 01 61 "a" 00  =  [{"toString": 1}, "a", 0].
test("an unknown kind that cannot be turned into a string is still an N2nDecodeError", () => {
  const bytes = encode([{ toString: 1 }, "a", 0]);
  assert.equal(hex(bytes), "83a168746f537472696e6701616100");
  assert.throws(() => decodeN2n(bytes), N2nDecodeError);
});

// Regression (found by this file): a header named "__proto__" (a valid HTTP token) was
// silently dropped when copied into a plain object.
test("a header named __proto__ survives a round trip", () => {
  const headers: Record<string, string> = {};
  Object.defineProperty(headers, "__proto__", { value: "x", enumerable: true, writable: true });
  const m: N2nMessage = {
    kind: "forward_response",
    fromAddress: FROM,
    id: 1,
    response: { status: 200, headers, body: new Uint8Array(0) },
  };
  const decoded = decodeN2n(encodeN2n(m));
  assert.ok(decoded.kind === "forward_response");
  assert.deepEqual(Object.entries(decoded.response.headers), [["__proto__", "x"]]);
});

// ---- Properties --------------------------------------------------------------------------------

test("property: random messages round-trip", () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      // structuredClone: fast-check records have a null prototype, decoded objects do not.
      assert.deepEqual(decodeN2n(encodeN2n(m)), structuredClone(m));
    }),
    { numRuns: 500 },
  );
});

test("fuzz (J1): random bytes decode or throw N2nDecodeError", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), decodesOrRejects), { numRuns: 3000 });
  // Random bytes rarely start like a message; lead with a plausible envelope header too.
  const prefixed = fc
    .tuple(
      fc.constantFrom(0x83, 0x84),
      fc.constantFrom(0x00, 0x01, 0x02),
      fc.uint8Array({ maxLength: 48 }),
    )
    .map(([a, b, rest]) => new Uint8Array([a, b, ...rest]));
  fc.assert(fc.property(prefixed, decodesOrRejects), { numRuns: 2000 });
});

test("fuzz (J1): valid encodings with flipped bytes or truncated decode or throw N2nDecodeError", () => {
  const mutated = fc
    .tuple(
      messageArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.option(fc.nat()),
    )
    .map(([m, flips, cut]) => {
      const bytes = encodeN2n(m).slice();
      for (const [at, xor] of flips) bytes[at % bytes.length]! ^= xor;
      return cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
    });
  fc.assert(fc.property(mutated, decodesOrRejects), { numRuns: 3000 });
  const truncated = fc.tuple(messageArb, fc.nat()).map(([m, cut]) => {
    const bytes = encodeN2n(m);
    return bytes.subarray(0, cut % bytes.length);
  });
  fc.assert(
    fc.property(truncated, (bytes) => {
      assert.throws(() => decodeN2n(bytes), N2nDecodeError, "a strict prefix never decodes");
    }),
    { numRuns: 1000 },
  );
});
