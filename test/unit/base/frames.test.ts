// The length-prefixed frame codec of node-to-node channels (src/base/frames.ts). A TLS socket
// hands us the stream in arbitrary chunks, so the decoder must reassemble frames at every split
// point, emit several frames from one chunk, handle empty payloads, keep its buffer bounded, and
// turn an oversized declared length into a terminal `poisoned` state rather than a crash or an
// allocation of attacker-chosen size.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { AssertionError } from "../../../src/base/assert.js";
import { concatBytes, putU32LE, utf8 } from "../../../src/base/bytes.js";
import {
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_MAX_BYTES,
  FrameDecoder,
  encodeFrame,
  type FrameEvent,
} from "../../../src/base/frames.js";

function payloadsOf(events: readonly FrameEvent[]): Uint8Array[] {
  return events.map((event) => {
    assert.equal(event.kind, "frame");
    return event.kind === "frame" ? event.payload : new Uint8Array(0);
  });
}

function header(declaredBytes: number): Uint8Array {
  const bytes = new Uint8Array(FRAME_HEADER_BYTES);
  putU32LE(bytes, 0, declaredBytes);
  return bytes;
}

test("encodeFrame writes a u32 little-endian length before the payload", () => {
  const frame = encodeFrame(utf8("hello"));
  assert.deepEqual([...frame.subarray(0, 4)], [5, 0, 0, 0]);
  assert.deepEqual(frame.subarray(4), utf8("hello"));
  assert.deepEqual([...encodeFrame(new Uint8Array(0x01_0203)).subarray(0, 4)], [3, 2, 1, 0]);
});

test("encodeFrame refuses a payload above the bound as a programmer error", () => {
  assert.throws(() => encodeFrame(new Uint8Array(11), 10), AssertionError);
  assert.equal(encodeFrame(new Uint8Array(10), 10).byteLength, 14);
  assert.equal(FRAME_PAYLOAD_MAX_BYTES, 16 * 1024 * 1024);
});

test("a frame pushed whole round-trips and is counted", () => {
  const decoder = new FrameDecoder();
  const events = decoder.push(encodeFrame(utf8("one message")));
  assert.deepEqual(payloadsOf(events), [utf8("one message")]);
  assert.equal(decoder.framesDecoded, 1);
  assert.equal(decoder.bytesBuffered, 0);
  assert.equal(decoder.poisoned, false);
});

test("several frames in one chunk come out in order, including zero-length ones", () => {
  const payloads = [utf8("a"), new Uint8Array(0), utf8("bcd"), new Uint8Array(0)];
  const decoder = new FrameDecoder();
  const events = decoder.push(concatBytes(payloads.map((p) => encodeFrame(p))));
  assert.deepEqual(payloadsOf(events), payloads);
  assert.equal(decoder.framesDecoded, 4);
});

test("a zero-length frame whose header ends a chunk is emitted by that push", () => {
  const decoder = new FrameDecoder();
  assert.deepEqual(payloadsOf(decoder.push(header(0))), [new Uint8Array(0)]);
  assert.equal(decoder.bytesBuffered, 0);
});

test("a three-frame stream split at every pair of points decodes to the same frames", () => {
  const payloads = [utf8("first frame"), new Uint8Array(0), utf8("third")];
  const stream = concatBytes(payloads.map((p) => encodeFrame(p)));
  for (let i = 0; i <= stream.byteLength; i++) {
    for (let j = i; j <= stream.byteLength; j++) {
      const decoder = new FrameDecoder();
      const events = [
        ...decoder.push(stream.subarray(0, i)),
        ...decoder.push(stream.subarray(i, j)),
        ...decoder.push(stream.subarray(j)),
      ];
      assert.deepEqual(payloadsOf(events), payloads, `split at ${i}, ${j}`);
      assert.equal(decoder.bytesBuffered, 0);
    }
  }
});

test("a stream fed one byte at a time buffers exactly the bytes of the incomplete frame", () => {
  const decoder = new FrameDecoder({ payloadMaxBytes: 8 });
  const frame = encodeFrame(utf8("12345678"), 8);
  for (let i = 0; i < frame.byteLength - 1; i++) {
    assert.deepEqual(decoder.push(frame.subarray(i, i + 1)), []);
    assert.equal(decoder.bytesBuffered, i + 1);
  }
  assert.deepEqual(payloadsOf(decoder.push(frame.subarray(-1))), [utf8("12345678")]);
  assert.equal(decoder.bytesBuffered, 0);
});

test("emitted payloads are copies, unaffected when the caller reuses its chunk", () => {
  const decoder = new FrameDecoder();
  const chunk = encodeFrame(utf8("abc"));
  const [event] = decoder.push(chunk);
  chunk.fill(0);
  assert.ok(event?.kind === "frame");
  assert.deepEqual(event.payload, utf8("abc"));
});

test("an oversized declared length poisons the decoder after the frames before it", () => {
  const decoder = new FrameDecoder({ payloadMaxBytes: 16 });
  const good = encodeFrame(utf8("fine"), 16);
  const events = decoder.push(concatBytes([good, header(17), encodeFrame(utf8("later"))]));
  assert.deepEqual(events, [
    { kind: "frame", payload: utf8("fine") },
    { kind: "oversized", declaredBytes: 17 },
  ]);
  assert.equal(decoder.poisoned, true);
  assert.equal(decoder.bytesBuffered, 0);
  assert.deepEqual(decoder.push(encodeFrame(utf8("more"))), []);
  assert.equal(decoder.framesDecoded, 1);
});

test("an oversized header split across chunks is detected when its last byte arrives", () => {
  const decoder = new FrameDecoder();
  const bad = header(0xffff_ffff);
  assert.deepEqual(decoder.push(bad.subarray(0, 3)), []);
  assert.equal(decoder.poisoned, false);
  assert.deepEqual(decoder.push(bad.subarray(3)), [
    { kind: "oversized", declaredBytes: 0xffff_ffff },
  ]);
  assert.equal(decoder.poisoned, true);
});

test("a length exactly at the bound is accepted", () => {
  const decoder = new FrameDecoder({ payloadMaxBytes: 3 });
  assert.deepEqual(payloadsOf(decoder.push(encodeFrame(utf8("xyz"), 3))), [utf8("xyz")]);
  assert.throws(() => new FrameDecoder({ payloadMaxBytes: -1 }), AssertionError);
  assert.throws(() => new FrameDecoder({ payloadMaxBytes: 2 ** 32 }), AssertionError);
});

test("a declared huge length does not buffer more than the bytes actually received", () => {
  const decoder = new FrameDecoder();
  decoder.push(header(FRAME_PAYLOAD_MAX_BYTES));
  decoder.push(new Uint8Array(10));
  assert.equal(decoder.bytesBuffered, FRAME_HEADER_BYTES + 10);
  assert.equal(decoder.poisoned, false);
});

/** Cuts `stream` at the given fractional positions. */
function chunked(stream: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = cuts.map((c) => Math.floor(c * (stream.byteLength + 1))).sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, stream.byteLength]) {
    chunks.push(stream.subarray(start, point));
    start = point;
  }
  return chunks;
}

test("property: any payloads under any chunking decode to the same payloads in order", () => {
  const maxBytes = 64;
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: maxBytes }), { maxLength: 12 }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { maxLength: 20 }),
      (payloads, cuts) => {
        const stream = concatBytes(payloads.map((p) => encodeFrame(p, maxBytes)));
        const decoder = new FrameDecoder({ payloadMaxBytes: maxBytes });
        const out: FrameEvent[] = [];
        for (const chunk of chunked(stream, cuts)) {
          out.push(...decoder.push(chunk));
          assert.ok(decoder.bytesBuffered < maxBytes + FRAME_HEADER_BYTES);
        }
        assert.deepEqual(payloadsOf(out), payloads);
        assert.equal(decoder.framesDecoded, payloads.length);
        assert.equal(decoder.bytesBuffered, 0);
      },
    ),
    { numRuns: 500 },
  );
});
