/**
 * Length-prefixed frames for node-to-node byte streams (issue 4 item 2). A TLS socket delivers
 * the stream in arbitrary chunks; this module turns chunks back into whole messages and is the
 * first line of defence against a peer that declares an absurd size.
 *
 * Wire format: `u32 LE payload length | payload`. CCF's node-to-node channel frames its
 * messages the same way (a size prefix before each serialised message); the bound is ours.
 *
 * Owns: `encodeFrame` and the streaming `FrameDecoder`.
 * Invariants:
 * - A decoder emits frames in stream order and never emits a partial frame.
 * - It buffers at most one incomplete frame: header bytes + payload bytes received so far, which
 *   is less than `payloadMaxBytes + 4`. Payload storage grows with the bytes actually received,
 *   not with the declared length, so a peer cannot make us allocate 16 MiB by sending 4 bytes.
 * - A declared length above the bound poisons the decoder: the stream cannot be resynchronised
 *   (there is no frame marker), so every later push yields nothing. The caller closes the
 *   connection and counts the event; an oversized frame is an expected outcome, not a crash.
 * - Emitted payloads are copies: the caller may reuse or mutate its chunks after `push` returns.
 */

import { assert } from "./assert.js";
import { concatBytes, getU32LE, putU32LE } from "./bytes.js";

export const FRAME_HEADER_BYTES = 4;
/** Default bound on one frame's payload: 16 MiB. */
export const FRAME_PAYLOAD_MAX_BYTES = 16 * 1024 * 1024;
/** The largest length the u32 header can carry. */
const U32_MAX = 0xffff_ffff;

export type FrameEvent =
  | { readonly kind: "frame"; readonly payload: Uint8Array }
  | { readonly kind: "oversized"; readonly declaredBytes: number };

export interface FrameDecoderOptions {
  /** Largest payload accepted; defaults to FRAME_PAYLOAD_MAX_BYTES. */
  readonly payloadMaxBytes?: number;
}

function checkPayloadMax(payloadMaxBytes: number): void {
  assert(
    Number.isInteger(payloadMaxBytes) && payloadMaxBytes >= 0 && payloadMaxBytes <= U32_MAX,
    `frame payload bound must be an integer in [0, 2^32): ${payloadMaxBytes}`,
  );
}

/**
 * Encodes one frame. Sending a payload above the bound is a programmer error (the sender chose
 * the message), so it is asserted rather than returned.
 */
export function encodeFrame(
  payload: Uint8Array,
  payloadMaxBytes: number = FRAME_PAYLOAD_MAX_BYTES,
): Uint8Array {
  checkPayloadMax(payloadMaxBytes);
  assert(
    payload.byteLength <= payloadMaxBytes,
    `frame payload of ${payload.byteLength} bytes exceeds the ${payloadMaxBytes}-byte bound`,
  );
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  putU32LE(frame, 0, payload.byteLength);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Reassembles frames from a chunked byte stream; see the module comment for its invariants. */
export class FrameDecoder {
  readonly payloadMaxBytes: number;
  #framesDecoded = 0;
  /** Invariant: only the first `#headerFilled` bytes are meaningful. */
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  /** Invariant: 0 <= #headerFilled < 4 while reading a header; 0 once the length is known. */
  #headerFilled = 0;
  /** Payload length of the frame being read; null while its header is incomplete. */
  #declaredBytes: number | null = null;
  /** Invariant: copies of the current frame's payload bytes; their total is #payloadFilled. */
  #pieces: Uint8Array[] = [];
  /** Invariant: #payloadFilled < #declaredBytes between pushes (a full frame is emitted). */
  #payloadFilled = 0;
  #poisoned = false;

  constructor(options: FrameDecoderOptions = {}) {
    const payloadMaxBytes = options.payloadMaxBytes ?? FRAME_PAYLOAD_MAX_BYTES;
    checkPayloadMax(payloadMaxBytes);
    this.payloadMaxBytes = payloadMaxBytes;
  }

  /** Frames emitted so far. */
  get framesDecoded(): number {
    return this.#framesDecoded;
  }

  /** True once an oversized header was seen; the connection must be closed. */
  get poisoned(): boolean {
    return this.#poisoned;
  }

  /** Bytes of the incomplete frame held now (header included); < payloadMaxBytes + 4. */
  get bytesBuffered(): number {
    return this.#declaredBytes === null
      ? this.#headerFilled
      : FRAME_HEADER_BYTES + this.#payloadFilled;
  }

  /** Consumes one chunk and returns the frames it completes, in order. */
  push(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    let offset = 0;
    while (!this.#poisoned && offset < chunk.byteLength) {
      if (this.#declaredBytes === null) {
        offset = this.#readHeader(chunk, offset);
        if (this.#declaredBytes === null) break; // header still incomplete: chunk exhausted
        if (this.#declaredBytes > this.payloadMaxBytes) {
          events.push({ kind: "oversized", declaredBytes: this.#declaredBytes });
          this.#poison();
          break;
        }
      }
      // Falls through with a just-completed header so a zero-length frame at the very end of a
      // chunk is emitted now rather than on the next push.
      offset = this.#readPayload(chunk, offset, events);
    }
    return events;
  }

  #readHeader(chunk: Uint8Array, offset: number): number {
    const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, chunk.byteLength - offset);
    this.#header.set(chunk.subarray(offset, offset + take), this.#headerFilled);
    this.#headerFilled += take;
    if (this.#headerFilled === FRAME_HEADER_BYTES) {
      this.#declaredBytes = getU32LE(this.#header, 0);
      this.#headerFilled = 0;
    }
    return offset + take;
  }

  #readPayload(chunk: Uint8Array, offset: number, events: FrameEvent[]): number {
    const declared = this.#declaredBytes;
    assert(declared !== null, "payload read before its header");
    const take = Math.min(declared - this.#payloadFilled, chunk.byteLength - offset);
    if (take > 0) this.#pieces.push(chunk.slice(offset, offset + take));
    this.#payloadFilled += take;
    if (this.#payloadFilled === declared) {
      // One piece (the common case: the frame sat inside one chunk) needs no second copy.
      const payload = this.#pieces.length === 1 ? this.#pieces[0]! : concatBytes(this.#pieces);
      events.push({ kind: "frame", payload });
      this.#framesDecoded += 1;
      this.#resetFrame();
    }
    return offset + take;
  }

  #resetFrame(): void {
    this.#declaredBytes = null;
    this.#pieces = [];
    this.#payloadFilled = 0;
  }

  #poison(): void {
    this.#poisoned = true;
    this.#resetFrame();
    this.#headerFilled = 0;
  }
}
