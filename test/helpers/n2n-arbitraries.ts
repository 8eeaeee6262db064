/**
 * fast-check arbitraries of node-to-node messages (src/node/replication/n2n/messages.ts): every
 * Raft message type, forwarded requests and responses, with seqnos and views up to
 * Number.MAX_SAFE_INTEGER. Records have a null prototype (decoding yields plain objects:
 * compare with structuredClone). Shared by the codec's unit properties and the frame fuzzers.
 */
import fc from "fast-check";
import type { NodeId, RaftEntry, Seqno, View } from "../../src/consensus/types.js";
import type { N2nMessage } from "../../src/node/replication/n2n/messages.js";

const natArb = fc.oneof(fc.nat(1000), fc.maxSafeNat());
const addressArb = fc
  .tuple(fc.constantFrom("127.0.0.1", "[::1]", "node-1.example"), fc.nat(65535))
  .map(([host, port]) => `${host}:${port}`);
const headersArb = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== "__proto__"),
  fc.string({ maxLength: 16 }),
  { maxKeys: 4, noNullPrototype: true },
);
const bytesArb = fc.uint8Array({ maxLength: 24 });

const entryArb: fc.Arbitrary<RaftEntry> = fc.record({
  seqno: natArb.map((n) => n as Seqno),
  view: natArb.map((n) => n as View),
  isSignature: fc.boolean(),
  configuration: fc.option(fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }), {
    nil: undefined,
  }) as fc.Arbitrary<NodeId[] | undefined>,
  payload: bytesArb,
});

export const raftMessageArb = fc.oneof(
  fc.record({
    type: fc.constant("append_entries" as const),
    view: natArb,
    prevSeqno: natArb,
    prevView: natArb,
    leaderCommit: natArb,
    entries: fc.array(entryArb, { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant("append_entries_response" as const),
    view: natArb,
    success: fc.boolean(),
    lastSeqno: natArb,
  }),
  fc.record({
    type: fc.constant("request_vote" as const),
    view: natArb,
    preVote: fc.boolean(),
    lastCommittableSeqno: natArb,
    lastCommittableView: natArb,
  }),
  fc.record({
    type: fc.constant("request_vote_response" as const),
    view: natArb,
    preVote: fc.boolean(),
    granted: fc.boolean(),
  }),
  fc.record({ type: fc.constant("propose_request_vote" as const), view: natArb }),
);

export const n2nMessageArb = fc.oneof(
  fc.record({
    kind: fc.constant("raft" as const),
    fromAddress: addressArb,
    message: raftMessageArb,
  }),
  fc.record({
    kind: fc.constant("forward_request" as const),
    fromAddress: addressArb,
    id: natArb,
    request: fc.record({
      method: fc.constantFrom("GET", "POST", "PUT", "DELETE"),
      path: fc.string({ maxLength: 20 }),
      query: fc.string({ maxLength: 20 }),
      headers: headersArb,
      body: bytesArb,
      callerCertDer: fc.option(bytesArb, { nil: null }),
    }),
  }),
  fc.record({
    kind: fc.constant("forward_response" as const),
    fromAddress: addressArb,
    id: natArb,
    response: fc.record({
      status: fc.integer({ min: 100, max: 599 }),
      headers: headersArb,
      body: bytesArb,
    }),
  }),
) as fc.Arbitrary<N2nMessage>;
