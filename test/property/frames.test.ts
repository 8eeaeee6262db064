// Random and mutated node-to-node traffic: the frame decoder (src/base/frames.ts) fed streams of
// frames split at random points, with oversized headers and garbage; the message decoder
// (src/node/replication/n2n/messages.ts) fed mutated messages, and mutated AppendEntries entry
// blocks (entries-block.ts) after a valid envelope; and real channels over loopback
// TLS (src/node/replication/n2n/channels.ts) fed the same streams by an authorized peer.
// Properties: the frames that arrive are exactly the whole frames sent, in order, however the
// stream is cut; an oversized header poisons the decoder (nothing after it is emitted) and the
// channel closes that socket; the decoder never buffers more than one frame; message decoding
// fails only with N2nDecodeError; and a good peer's next message still gets through. The other
// process-to-process wire, app service messages (src/appservice/messages.ts), gets random and
// one-field-changed messages: AppServiceError only, and what decodes re-encodes stably.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import fc from "fast-check";
import { concatBytes, putU32LE, toHex } from "../../src/base/bytes.js";
import { encodeFrame, FrameDecoder } from "../../src/base/frames.js";
import type { View } from "../../src/base/ids.js";
import { createSelfSignedCertificate } from "../../src/crypto/cert-issuance.js";
import {
  ecPrivateKeyPem,
  generateEcKeyPair,
  nodeIdFromPublicKey,
} from "../../src/crypto/identity.js";
import { NodeChannels } from "../../src/node/replication/n2n/channels.js";
import { encodeEntriesBlock } from "../../src/node/replication/n2n/entries-block.js";
import {
  AppServiceError,
  decodeNodeMessage,
  decodeServerMessage,
  encodeAppMessage,
} from "../../src/appservice/messages.js";
import { encode as encodeCbor } from "cborg";
import {
  decodeN2n,
  encodeN2n,
  N2nDecodeError,
  type N2nMessage,
} from "../../src/node/replication/n2n/messages.js";

import { sampleCallMessage, sampleResultMessage } from "../helpers/app-service-messages.js";
import { n2nMessageArb, raftMessageArb } from "../helpers/n2n-arbitraries.js";

const PAYLOAD_MAX = 512;

// fc.record builds null-prototype objects: structuredClone makes plain ones, as decoding does.
const messageArb: fc.Arbitrary<N2nMessage> = n2nMessageArb.map((m) => structuredClone(m));

/** A frame payload: an encoded message, or random bytes (both at most PAYLOAD_MAX). */
const payloadArb = fc.oneof(
  messageArb.map((m) => encodeN2n(m)).filter((b) => b.byteLength <= PAYLOAD_MAX),
  fc.uint8Array({ maxLength: PAYLOAD_MAX }),
);

/** Frames, then maybe an oversized header and garbage; with random cut points. */
const streamArb = fc.record({
  payloads: fc.array(payloadArb, { maxLength: 8 }),
  oversized: fc.option(fc.integer({ min: PAYLOAD_MAX + 1, max: 0xffff_ffff }), { nil: null }),
  garbage: fc.uint8Array({ maxLength: 64 }),
  cuts: fc.array(fc.nat(), { maxLength: 12 }),
});
type Stream = typeof streamArb extends fc.Arbitrary<infer T> ? T : never;

function streamBytes(s: Stream): Uint8Array {
  const parts = s.payloads.map((p) => encodeFrame(p, PAYLOAD_MAX));
  if (s.oversized !== null) {
    const head = new Uint8Array(4);
    putU32LE(head, 0, s.oversized);
    parts.push(head, s.garbage);
  }
  return concatBytes(parts);
}

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const to of [...at, bytes.byteLength]) {
    chunks.push(bytes.slice(from, to));
    from = to;
  }
  return chunks;
}

/** A message decode that may fail only with N2nDecodeError; a success re-encodes stably. */
function decodeChecked(payload: Uint8Array): N2nMessage | null {
  try {
    const message = decodeN2n(payload);
    const again = decodeN2n(encodeN2n(message));
    assert.deepEqual(again, message);
    return message;
  } catch (error) {
    if (error instanceof N2nDecodeError) return null;
    throw error;
  }
}

test("property: frames arrive whole and in order however the stream is cut", () => {
  fc.assert(
    fc.property(streamArb, (s) => {
      const decoder = new FrameDecoder({ payloadMaxBytes: PAYLOAD_MAX });
      const got: string[] = [];
      let oversized = 0;
      for (const chunk of split(streamBytes(s), s.cuts)) {
        for (const event of decoder.push(chunk)) {
          assert.equal(oversized, 0, "nothing is emitted after an oversized header");
          if (event.kind === "oversized") oversized += 1;
          else got.push(toHex(event.payload));
        }
        chunk.fill(0xee); // emitted payloads are copies
        assert.ok(decoder.bytesBuffered < PAYLOAD_MAX + 4);
      }
      assert.deepEqual(got, s.payloads.map(toHex));
      assert.equal(oversized, s.oversized === null ? 0 : 1);
      assert.equal(decoder.poisoned, s.oversized !== null);
      assert.equal(decoder.bytesBuffered, 0);
      assert.equal(decoder.framesDecoded, s.payloads.length);
    }),
    { numRuns: 2000 },
  );
});

test("property: a truncated stream emits its whole frames and holds the rest", () => {
  fc.assert(
    fc.property(fc.array(payloadArb, { minLength: 1, maxLength: 5 }), fc.nat(), (payloads, at) => {
      const bytes = concatBytes(payloads.map((p) => encodeFrame(p, PAYLOAD_MAX)));
      const cut = at % bytes.byteLength;
      const decoder = new FrameDecoder({ payloadMaxBytes: PAYLOAD_MAX });
      const got = decoder.push(bytes.subarray(0, cut));
      let end = 0;
      let whole = 0;
      while (whole < payloads.length && end + 4 + payloads[whole]!.byteLength <= cut) {
        end += 4 + payloads[whole]!.byteLength;
        whole += 1;
      }
      assert.equal(got.length, whole);
      assert.equal(decoder.bytesBuffered, cut - end);
      // The rest of the stream completes exactly the missing frames.
      assert.equal(decoder.push(bytes.subarray(cut)).length, payloads.length - whole);
    }),
    { numRuns: 1000 },
  );
});

test("property: mutated messages decode to a well-typed message or an N2nDecodeError", () => {
  fc.assert(
    fc.property(
      messageArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean()), {
        minLength: 1,
        maxLength: 3,
      }),
      (message, edits) => {
        const bytes = encodeN2n(message);
        assert.deepEqual(decodeChecked(bytes), message);
        let mutated = bytes;
        for (const [at, value, cut] of edits) {
          const i = at % Math.max(1, mutated.byteLength);
          if (cut) mutated = mutated.slice(0, i);
          else if (mutated.byteLength > 0) {
            mutated = mutated.slice();
            mutated[i] = mutated[i]! ^ value;
          }
        }
        decodeChecked(mutated);
      },
    ),
    { numRuns: 3000 },
  );
});

// The entries of an AppendEntries are one binary block (entries-block.ts) after the CBOR
// envelope. Mutations of the whole message mostly hit CBOR framing; these land in the block
// itself (headers, flags, lengths, node ids, payloads), with the envelope kept valid.
const appendEntriesArb = raftMessageArb
  .filter((m) => m.type === "append_entries" && m.entries.length > 0)
  .map((message) => structuredClone({ kind: "raft", fromAddress: "127.0.0.1:1", message }));

test("property: mutated AppendEntries blocks decode to a well-typed message or an N2nDecodeError", () => {
  fc.assert(
    fc.property(
      appendEntriesArb,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.option(fc.nat(), { nil: null }),
      fc.uint8Array({ maxLength: 4 }),
      (message, flips, cut, tail) => {
        const m = message as N2nMessage;
        assert.ok(m.kind === "raft" && m.message.type === "append_entries");
        const r = m.message;
        const block = encodeEntriesBlock(r.entries).slice();
        for (const [at, xor] of flips) block[at % block.length]! ^= xor;
        const cutBlock = cut === null ? block : block.subarray(0, cut % (block.length + 1));
        const mutated = concatBytes([cutBlock, tail]);
        const wire = [0, r.view, r.prevSeqno, r.prevView, r.leaderCommit];
        const decoded = decodeChecked(concatBytes([encodeCbor([0, m.fromAddress, wire]), mutated]));
        if (decoded === null) return;
        // What decodes is exactly what the mutated block re-encodes to: the layout is canonical.
        assert.ok(decoded.kind === "raft" && decoded.message.type === "append_entries");
        assert.equal(toHex(encodeEntriesBlock(decoded.message.entries)), toHex(mutated));
      },
    ),
    { numRuns: 3000 },
  );
});

interface Identity {
  readonly id: string;
  readonly certPem: string;
  readonly keyPem: string;
}

async function identity(name: string): Promise<Identity> {
  const keys = generateEcKeyPair();
  const certPem = await createSelfSignedCertificate({
    keys,
    subject: `CN=${name}`,
    validityDays: 1,
    now: new Date(),
  });
  return {
    id: nodeIdFromPublicKey(keys.publicKey),
    certPem,
    keyPem: ecPrivateKeyPem(keys.privateKey),
  };
}

function closedWithin(socket: TLSSocket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test("property: a real channel delivers the whole frames, drops oversized senders, stays up", async (t) => {
  const [self, hostile, good] = await Promise.all([identity("b"), identity("x"), identity("a")]);
  const received: { from: string; payload: string }[] = [];
  const channels = new NodeChannels({
    selfId: self.id,
    certPem: self.certPem,
    keyPem: self.keyPem,
    authorize: () => true,
    onMessage: (from, payload) => {
      received.push({ from, payload: toHex(payload) });
      decodeChecked(payload); // what the consensus driver does with it: typed errors only
    },
    log: () => undefined,
    payloadMaxBytes: PAYLOAD_MAX,
  });
  t.after(() => channels.close());
  const bound = await channels.listen("127.0.0.1", 0);
  const sender = new NodeChannels({
    selfId: good.id,
    certPem: good.certPem,
    keyPem: good.keyPem,
    authorize: () => true,
    onMessage: () => undefined,
    log: () => undefined,
  });
  t.after(() => sender.close());
  sender.setPeer(self.id, `${bound.host}:${bound.port}`);

  let oversizedSent = 0;
  await fc.assert(
    fc.asyncProperty(streamArb, fc.boolean(), async (s, closeEarly) => {
      received.length = 0;
      if (s.oversized !== null) oversizedSent += 1;
      const socket = tlsConnect({
        host: bound.host,
        port: bound.port,
        cert: hostile.certPem,
        key: hostile.keyPem,
        rejectUnauthorized: false,
      });
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
      for (const chunk of split(streamBytes(s), s.cuts)) {
        socket.write(chunk);
        await new Promise((resolve) => setImmediate(resolve));
      }
      const expected = s.payloads.map(toHex);
      await waitFor("the whole frames", () => received.length >= expected.length);
      if (s.oversized !== null) {
        assert.ok(await closedWithin(socket, 5000), "an oversized sender is disconnected");
      } else if (closeEarly) {
        socket.end();
      }
      socket.destroy();
      assert.deepEqual(
        received.map((r) => r.payload),
        expected,
      );
      assert.ok(received.every((r) => r.from === hostile.id));
      // A good node still gets through.
      const hello = encodeN2n({
        kind: "raft",
        fromAddress: "a:1",
        message: { type: "propose_request_vote", view: 1 as View },
      });
      sender.send(self.id, hello);
      await waitFor("a good message", () => received.some((r) => r.from === good.id));
    }),
    { numRuns: 25 },
  );
  assert.equal(channels.stats.oversized, oversizedSent);
});

// ---- App service messages (src/appservice/messages.ts) --------------------------------------

const APP_FIELDS = [
  ...["apply_writes", "body", "body_kind", "bundle", "caller", "claims_digest", "cleared"],
  ...["code", "cose_content", "epoch", "handler", "headers", "id", "interpreter_reuse", "keys"],
  ...["last_committed", "map_reads", "maps", "message", "mode", "module", "package_id"],
  ...["params", "reads", "reason", "request", "status", "tx_status", "values", "views", "writes"],
];
const APP_TYPES = ["hello", "call", "values", "bundle", "error", "need", "result", "other"];
const { cborValue } = fc.letrec((tie) => ({
  cborValue: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.integer(),
    fc.nat(),
    fc.double(),
    fc.string({ maxLength: 8 }),
    fc.uint8Array({ maxLength: 8 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("cborValue"), { maxLength: 3 }),
    fc
      .dictionary(fc.constantFrom(...APP_FIELDS, "x"), tie("cborValue"), { maxKeys: 3 })
      .map((d) => ({ ...d })),
  ),
}));
const appMessageArb = fc
  .record({
    t: fc.constantFrom(...APP_TYPES),
    fields: fc.dictionary(fc.constantFrom(...APP_FIELDS), cborValue, { maxKeys: 8 }),
  })
  .map(({ t, fields }) => encodeCbor({ ...fields, t }));

/** Every path to a value inside `value` (object keys and array indices; bytes are leaves). */
function valuePaths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== "object" || value === null || value instanceof Uint8Array) return [prefix];
  const own = Array.isArray(value) ? value.map((_, i) => String(i)) : Object.keys(value);
  const inner = own.flatMap((k) =>
    valuePaths((value as Record<string, unknown>)[k], [...prefix, k]),
  );
  return [prefix, ...inner];
}

/** A copy of `doc` with the value at `path` replaced, or removed for undefined. */
function withValue(doc: unknown, path: readonly string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = (Array.isArray(doc) ? [...doc] : { ...(doc as object) }) as Record<string, unknown>;
  const [head, ...rest] = path;
  const next = withValue(copy[head!], rest, value);
  if (next === undefined && !Array.isArray(copy)) delete copy[head!];
  else copy[head!] = next ?? null;
  return copy;
}

function decodeBoth(bytes: Uint8Array): void {
  const decoders = [
    (b: Uint8Array) => decodeNodeMessage(b),
    (b: Uint8Array) => decodeServerMessage(b),
  ];
  for (const decodeMessage of decoders) {
    try {
      const message = decodeMessage(bytes);
      assert.deepEqual(decodeMessage(encodeAppMessage(message)), message);
    } catch (error) {
      if (!(error instanceof AppServiceError)) throw error;
    }
  }
}

test("property: app service messages decode or fail with AppServiceError only", () => {
  const samples = [sampleCallMessage(), sampleResultMessage()];
  for (const sample of samples) decodeBoth(encodeAppMessage(sample));
  const mutatedArb = fc
    .tuple(fc.nat(), fc.nat(), fc.option(cborValue, { nil: undefined }))
    .map(([which, at, value]) => {
      const sample = samples[which % samples.length]!;
      const all = valuePaths(sample).filter((path) => path.length > 0);
      return encodeCbor(withValue(sample, all[at % all.length]!, value));
    });
  fc.assert(
    fc.property(fc.oneof(mutatedArb, appMessageArb, fc.uint8Array({ maxLength: 60 })), decodeBoth),
    { numRuns: 3000, includeErrorInReport: true },
  );
});
