// Governance COSE requests (src/gov/cose-request.ts): the header rules CCF's member_cose_sign1
// policy and gov handlers apply (alg, kid as a bstr of the hex member id, msg.type, created_at
// range, proposal_id for ballots and withdrawals), their mapping to CCF error codes, signature
// checks against a real member certificate on both curves, and the proposal replay window
// (duplicate key, median rule, eviction order), which must match CCF exactly or a replayed
// proposal would be accepted here and refused there.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPrivateKey, sign as nodeSign, type KeyObject } from "node:crypto";
import { Tagged, encode } from "cborg";
import { CoseAlg, CoseErrorCode, signSign1 } from "../../../src/crypto/cose.js";
import { generateIdentity, memberIdFromCert } from "../../../src/crypto/identity.js";
import {
  GovCoseError,
  GovCoseErrorCode,
  checkGovCoseSignature,
  checkReplay,
  createdAtSkewError,
  MAX_CREATED_AT_SKEW_S,
  ccfErrorOf,
  parseGovCoseRequest,
  replayError,
  replayKey,
  verifyGovCoseRequest,
  type ReplayEntry,
} from "../../../src/gov/cose-request.js";

interface Member {
  readonly key: KeyObject;
  readonly certPem: string;
  readonly id: string;
}

async function makeMember(curve: "secp384r1" | "secp256r1"): Promise<Member> {
  const identity = await generateIdentity({ name: "member", curve, now: new Date() });
  return {
    key: createPrivateKey(identity.privateKeyPem),
    certPem: identity.certPem,
    id: memberIdFromCert(identity.certPem),
  };
}

const [P384, P256, OTHER] = await Promise.all([
  makeMember("secp384r1"),
  makeMember("secp256r1"),
  makeMember("secp384r1"),
]);
const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
const PAYLOAD = ascii('{"actions":[{"name":"set_constitution","args":{}}]}');
const CREATED_AT = 1_700_000_000;

type Headers = Map<number | string, unknown>;

function headers(member: Member, extra: [number | string, unknown][] = []): Headers {
  const h: Headers = new Map<number | string, unknown>([
    [4, ascii(member.id)],
    ["ccf.gov.msg.type", "proposal"],
    ["ccf.gov.msg.created_at", CREATED_AT],
  ]);
  for (const [label, value] of extra) {
    if (value === undefined) h.delete(label);
    else h.set(label, value);
  }
  return h;
}

function signed(member: Member, extra: [number | string, unknown][] = []): Uint8Array {
  return signSign1(member.key, headers(member, extra), PAYLOAD);
}

/** Signs hand-written protected header bytes (for encodings cborg would not produce). */
function signedRaw(member: Member, alg: CoseAlg, protectedBytes: Uint8Array): Uint8Array {
  const hash = alg === CoseAlg.ES256 ? "sha256" : "sha384";
  const tbs = encode(["Signature1", protectedBytes, new Uint8Array(0), PAYLOAD]);
  const sig = nodeSign(hash, tbs, { key: member.key, dsaEncoding: "ieee-p1363" });
  return encode(new Tagged(18, [protectedBytes, new Map(), PAYLOAD, new Uint8Array(sig)]));
}

function errorOf(bytes: Uint8Array): GovCoseError {
  try {
    parseGovCoseRequest(bytes);
  } catch (err: unknown) {
    assert.ok(err instanceof GovCoseError, `expected GovCoseError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected parseGovCoseRequest to throw");
}

const codeOf = (bytes: Uint8Array): GovCoseErrorCode => errorOf(bytes).code;

test("a valid proposal parses and verifies on both curves", () => {
  for (const [member, alg] of [
    [P384, CoseAlg.ES384],
    [P256, CoseAlg.ES256],
  ] as const) {
    const request = parseGovCoseRequest(signed(member));
    assert.equal(request.alg, alg);
    assert.equal(request.kid, member.id);
    assert.equal(request.msgType, "proposal");
    assert.equal(request.createdAt, CREATED_AT);
    assert.equal(request.proposalId, undefined);
    assert.deepEqual(request.payload, PAYLOAD);
    assert.equal(request.signature.byteLength, alg === CoseAlg.ES384 ? 96 : 64);
    assert.equal(verifyGovCoseRequest(request, member.certPem), true);
  }
});

test("ballots and withdrawals carry their proposal id", () => {
  const id = "a".repeat(64);
  for (const type of ["ballot", "withdrawal"]) {
    const bytes = signed(P384, [
      ["ccf.gov.msg.type", type],
      ["ccf.gov.msg.proposal_id", id],
    ]);
    const request = parseGovCoseRequest(bytes);
    assert.equal(request.msgType, type);
    assert.equal(request.proposalId, id);
  }
});

test("every governance message type is accepted and an unknown one is not", () => {
  for (const type of ["proposal", "state_digest", "ack", "recovery_share"]) {
    assert.equal(parseGovCoseRequest(signed(P256, [["ccf.gov.msg.type", type]])).msgType, type);
  }
  for (const bad of ["Proposal", "vote", "", 1]) {
    assert.equal(
      codeOf(signed(P256, [["ccf.gov.msg.type", bad]])),
      GovCoseErrorCode.InvalidMsgType,
    );
  }
  const missing = signed(P256, [["ccf.gov.msg.type", undefined]]);
  assert.equal(codeOf(missing), GovCoseErrorCode.MissingMsgType);
});

test("malformed envelopes are MalformedCose with the COSE cause, all 401 in CCF", () => {
  const good = signed(P384);
  const untagged = good.subarray(1); // drop the 0xd2 tag byte
  const cases: [Uint8Array, CoseErrorCode][] = [
    [Uint8Array.from([0x1f, 0x00]), CoseErrorCode.NotCbor], // reserved additional info,
    [untagged, CoseErrorCode.NotTagged],
    [Uint8Array.from([0xd1, ...untagged]), CoseErrorCode.WrongTag],
    [encode(new Tagged(18, [new Uint8Array(0), new Map(), PAYLOAD])), CoseErrorCode.NotSign1Array],
    [
      encode(new Tagged(18, [encode([1]), new Map(), PAYLOAD, new Uint8Array(96)])),
      CoseErrorCode.ProtectedNotMap,
    ],
    [
      encode(
        new Tagged(18, [
          encode(new Map([[4, ascii(P384.id)]])),
          new Map(),
          PAYLOAD,
          new Uint8Array(96),
        ]),
      ),
      CoseErrorCode.MissingAlg,
    ],
    [
      encode(
        new Tagged(18, [encode(new Map([[1, -37]])), new Map(), PAYLOAD, new Uint8Array(256)]),
      ),
      CoseErrorCode.UnsupportedAlg,
    ],
    [
      encode(new Tagged(18, [encode(new Map([[1, -35]])), new Map(), PAYLOAD, new Uint8Array(64)])),
      CoseErrorCode.BadSignatureLength,
    ],
  ];
  for (const [bytes, coseCode] of cases) {
    const err = errorOf(bytes);
    assert.equal(err.code, GovCoseErrorCode.MalformedCose);
    assert.equal(err.type.coseCode, coseCode);
    assert.equal(ccfErrorOf(err.code), "InvalidAuthenticationInfo");
  }
});

test("kid must be a byte string of the 64-character lowercase hex member id", () => {
  const cases: [unknown, GovCoseErrorCode][] = [
    [undefined, GovCoseErrorCode.MissingKid],
    [P384.id, GovCoseErrorCode.InvalidKid], // text, not bstr
    [ascii(P384.id.slice(0, 63)), GovCoseErrorCode.InvalidKid],
    [ascii(P384.id + "0"), GovCoseErrorCode.InvalidKid],
    [ascii("g" + P384.id.slice(1)), GovCoseErrorCode.InvalidKid],
    [ascii(P384.id.toUpperCase()), GovCoseErrorCode.InvalidKid],
    [Uint8Array.from(Buffer.from(P384.id, "hex")), GovCoseErrorCode.InvalidKid], // raw 32 bytes
    [Uint8Array.from([0xc3, 0xa9, ...ascii(P384.id.slice(2))]), GovCoseErrorCode.InvalidKid],
  ];
  for (const [kid, code] of cases) {
    const err = errorOf(signed(P384, [[4, kid]]));
    assert.equal(err.code, code, String(kid));
    assert.equal(ccfErrorOf(err.code), "InvalidAuthenticationInfo");
  }
});

test("created_at must be an integer in 0..9999999999", () => {
  const at = (value: unknown): Uint8Array => signed(P256, [["ccf.gov.msg.created_at", value]]);
  assert.equal(parseGovCoseRequest(at(0)).createdAt, 0);
  assert.equal(parseGovCoseRequest(at(9_999_999_999)).createdAt, 9_999_999_999);
  const cases: [unknown, GovCoseErrorCode, string][] = [
    [undefined, GovCoseErrorCode.MissingCreatedAt, "InvalidAuthenticationInfo"],
    [-1, GovCoseErrorCode.NegativeCreatedAt, "InvalidAuthenticationInfo"],
    [-(2n ** 63n), GovCoseErrorCode.NegativeCreatedAt, "InvalidAuthenticationInfo"],
    [10_000_000_000, GovCoseErrorCode.CreatedAtTooLarge, "InvalidCreatedAt"],
    [2n ** 64n - 1n, GovCoseErrorCode.CreatedAtTooLarge, "InvalidCreatedAt"],
    [1.5, GovCoseErrorCode.CreatedAtNotInteger, "InvalidAuthenticationInfo"],
    [String(CREATED_AT), GovCoseErrorCode.CreatedAtNotInteger, "InvalidAuthenticationInfo"],
    [ascii("1"), GovCoseErrorCode.CreatedAtNotInteger, "InvalidAuthenticationInfo"],
  ];
  for (const [value, code, ccf] of cases) {
    const err = errorOf(at(value));
    assert.equal(err.code, code, String(value));
    assert.equal(ccfErrorOf(err.code), ccf);
  }
});

test("a created_at encoded as a float is refused even when its value is whole", () => {
  // {1: -7, 4: kid, "ccf.gov.msg.type": "proposal", "ccf.gov.msg.created_at": 1700000000.0}
  const float = Buffer.alloc(9);
  float[0] = 0xfb;
  float.writeDoubleBE(CREATED_AT, 1);
  const protectedBytes = Uint8Array.from([
    0xa4,
    0x01,
    0x26,
    0x04,
    0x58,
    0x40,
    ...ascii(P256.id),
    ...encode("ccf.gov.msg.type"),
    ...encode("proposal"),
    ...encode("ccf.gov.msg.created_at"),
    ...float,
  ]);
  const err = errorOf(signedRaw(P256, CoseAlg.ES256, protectedBytes));
  assert.equal(err.code, GovCoseErrorCode.CreatedAtNotInteger);
});

test("ballot and withdrawal without proposal_id are InvalidResourceName in CCF", () => {
  for (const type of ["ballot", "withdrawal"]) {
    const err = errorOf(signed(P384, [["ccf.gov.msg.type", type]]));
    assert.equal(err.code, GovCoseErrorCode.MissingProposalId);
    assert.equal(ccfErrorOf(err.code), "InvalidResourceName");
  }
  const nonText = signed(P384, [
    ["ccf.gov.msg.type", "ballot"],
    ["ccf.gov.msg.proposal_id", 7],
  ]);
  assert.equal(codeOf(nonText), GovCoseErrorCode.InvalidProposalId);
});

test("a flipped signature or payload byte fails verification", () => {
  const request = parseGovCoseRequest(signed(P384));
  const flipped = (bytes: Uint8Array, at: number): Uint8Array => {
    const copy = Uint8Array.from(bytes);
    copy[at] = copy[at]! ^ 0x80;
    return copy;
  };
  const badSig = {
    ...request,
    message: { ...request.message, signature: flipped(request.signature, 0) },
  };
  const badPayload = { ...request, message: { ...request.message, payload: flipped(PAYLOAD, 3) } };
  for (const bad of [badSig, badPayload]) {
    assert.equal(verifyGovCoseRequest(bad, P384.certPem), false);
    const check = checkGovCoseSignature(bad, P384.certPem);
    assert.equal(check.kind === "invalid" && check.code, "SignatureMismatch");
  }
  // And at the byte level: the last byte of the message is the signature's last byte.
  const bytes = signed(P384);
  const tampered = parseGovCoseRequest(flipped(bytes, bytes.length - 1));
  assert.equal(verifyGovCoseRequest(tampered, P384.certPem), false);
});

test("alg must match the member key's curve at verify time", () => {
  // Claims the P-384 member's id but is signed (ES256) with a P-256 key.
  const bytes = signSign1(P256.key, headers(P384), PAYLOAD);
  const request = parseGovCoseRequest(bytes);
  assert.equal(request.alg, CoseAlg.ES256);
  const check = checkGovCoseSignature(request, P384.certPem);
  assert.equal(check.kind === "invalid" && check.code, "AlgKeyMismatch");
  assert.equal(verifyGovCoseRequest(request, P384.certPem), false);
});

test("a certificate whose member id is not the kid does not verify the request", () => {
  const request = parseGovCoseRequest(signed(P384));
  const check = checkGovCoseSignature(request, OTHER.certPem);
  assert.equal(check.kind === "invalid" && check.code, "KidMismatch");
  const garbage = checkGovCoseSignature(request, "not a certificate");
  assert.equal(garbage.kind === "invalid" && garbage.code, "BadCertificate");
});

// --- Replay window ---------------------------------------------------------------------------

const sig = (n: number): Uint8Array => Uint8Array.from([n & 0xff, n >> 8]);
const entry = (createdAt: number, n: number): ReplayEntry => ({
  key: replayKey(createdAt, sig(n)),
  proposalId: `p${n}`,
});

test("replayKey is created_at padded to 10 digits, ':', hex SHA-256 of the signature", () => {
  const signature = Uint8Array.from([1, 2, 3]);
  const digest = createHash("sha256").update(signature).digest("hex");
  assert.equal(replayKey(42, signature), `0000000042:${digest}`);
  assert.equal(replayKey(9_999_999_999, signature), `9999999999:${digest}`);
});

test("a key already in the window is a replay of the proposal that created it", () => {
  const window = [entry(10, 1), entry(20, 2)];
  const result = checkReplay(window, replayKey(20, sig(2)), 20);
  assert.deepEqual(result, { kind: "replay", collidingProposalId: "p2" });
  assert.equal(
    replayError(result as Exclude<typeof result, { kind: "ok" }>).code,
    "ProposalReplay",
  );
  // Same time, another signature: a different request, accepted.
  assert.equal(checkReplay(window, replayKey(20, sig(3)), 20).kind, "ok");
});

test("created_at below the median kept timestamp is too old; at the median it is accepted", () => {
  const even = [entry(40, 4), entry(10, 1), entry(30, 3), entry(20, 2)]; // sorted[2] = 30
  const old = checkReplay(even, replayKey(29, sig(9)), 29);
  assert.deepEqual(old, { kind: "too-old", minCreatedAt: "0000000030" });
  assert.equal(
    replayError(old as Exclude<typeof old, { kind: "ok" }>).code,
    "ProposalCreatedTooLongAgo",
  );
  assert.equal(checkReplay(even, replayKey(30, sig(9)), 30).kind, "ok");
  const odd = [entry(10, 1), entry(20, 2), entry(30, 3)]; // sorted[1] = 20
  assert.equal(checkReplay(odd, replayKey(19, sig(9)), 19).kind, "too-old");
  assert.equal(checkReplay(odd, replayKey(20, sig(9)), 20).kind, "ok");
  // The comparison is numeric through the padding: 9 < 10 even though "9" > "10".
  assert.equal(checkReplay([entry(10, 1)], replayKey(9, sig(9)), 9).kind, "too-old");
  assert.deepEqual(checkReplay([], replayKey(0, sig(9)), 0), { kind: "ok", evicted: [] });
});

test("the oldest keys are evicted so that windowSize keys remain, new one included", () => {
  const window = [entry(30, 3), entry(10, 1), entry(20, 2)];
  const full = checkReplay(window, replayKey(40, sig(4)), 40, 3);
  assert.deepEqual(full, { kind: "ok", evicted: [replayKey(10, sig(1))] });
  const roomy = checkReplay(window, replayKey(40, sig(4)), 40, 4);
  assert.deepEqual(roomy, { kind: "ok", evicted: [] });
  const tight = checkReplay(window, replayKey(40, sig(4)), 40, 2);
  assert.deepEqual(tight, { kind: "ok", evicted: [replayKey(10, sig(1)), replayKey(20, sig(2))] });
  // Within one second, keys order by signature digest, as CCF's sorted keys do.
  const sameSecond = [entry(10, 1), entry(10, 2)];
  const evicted = checkReplay(sameSecond, replayKey(10, sig(3)), 10, 2);
  const smallest = [...sameSecond.map((e) => e.key)].sort()[0];
  assert.deepEqual(evicted, { kind: "ok", evicted: [smallest] });
});

test("a window driven through 250 proposals holds the latest 100 keys", () => {
  let window: ReplayEntry[] = [];
  for (let n = 0; n < 250; n++) {
    const key = replayKey(1000 + n, sig(n));
    const result = checkReplay(window, key, 1000 + n);
    assert.equal(result.kind, "ok");
    if (result.kind !== "ok") return;
    const evicted = new Set(result.evicted);
    window = [...window.filter((e) => !evicted.has(e.key)), { key, proposalId: `p${n}` }];
  }
  assert.equal(window.length, 100);
  assert.deepEqual(
    window.map((e) => e.proposalId),
    Array.from({ length: 100 }, (_, i) => `p${150 + i}`),
  );
  // The 150th request replayed now is both in the window and at the window's low end.
  assert.equal(checkReplay(window, replayKey(1150, sig(150)), 1150).kind, "replay");
  assert.equal(checkReplay(window, replayKey(1100, sig(999)), 1100).kind, "too-old");
});

test("a created_at beyond the allowed clock skew is refused before it can poison the window", () => {
  const nowMs = 1_700_000_000_500;
  const now = Math.floor(nowMs / 1000);
  assert.equal(createdAtSkewError(now, nowMs), null);
  assert.equal(createdAtSkewError(now - 86_400, nowMs), null);
  assert.equal(createdAtSkewError(now + MAX_CREATED_AT_SKEW_S, nowMs), null);
  const future = createdAtSkewError(now + MAX_CREATED_AT_SKEW_S + 1, nowMs);
  assert.equal(future?.code, "InvalidCreatedAt");
  assert.match(future?.message ?? "", /in the future/);
  const far = createdAtSkewError(9_999_999_999, nowMs);
  assert.equal(far?.code, "InvalidCreatedAt");
  // What the refusal prevents: once kept, a far-future key is the window's median and every
  // honest proposal after it is "too old", including one that would change the window.
  assert.equal(checkReplay([entry(9_999_999_999, 1)], replayKey(now, sig(2)), now).kind, "too-old");
});
