/**
 * What nodes say to each other over their channels (one CBOR value per frame): consensus
 * messages, and requests a backup forwards to the primary with the answers. The entries of an
 * AppendEntries follow its CBOR value in the same frame, in a binary layout of their own
 * (entries-block.ts): one header per entry, and payloads decoded as views of the frame, not one
 * CBOR item per entry and no copy. Every other message is exactly one CBOR value.
 *
 * Our own format (ccf-compatibility.md §7.2: CCF's is internal and need not be wire compatible).
 * Every message carries the sender's published node-to-node address, so a node learns how to answer
 * a peer it has not yet read about in its nodes table (a joiner catching up).
 *
 * decodeN2n validates shape and types and throws N2nDecodeError on anything else: the caller
 * drops the message and counts it. Nothing here trusts a field it has not checked.
 */
import { decodeFirst, encode } from "cborg";
import { CcfError } from "../../../base/errors.js";
import type { Seqno, View } from "../../../base/ids.js";
import type { RaftMessage } from "../../../consensus/types.js";
import { decodeEntriesBlock, encodeEntriesBlock } from "./entries-block.js";

export interface ForwardedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  readonly callerCertDer: Uint8Array | null;
}

export interface ForwardedResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export type N2nMessage =
  | { readonly kind: "raft"; readonly fromAddress: string; readonly message: RaftMessage }
  | {
      readonly kind: "forward_request";
      readonly fromAddress: string;
      readonly id: number;
      readonly request: ForwardedRequest;
    }
  | {
      readonly kind: "forward_response";
      readonly fromAddress: string;
      readonly id: number;
      readonly response: ForwardedResponse;
    };

export class N2nDecodeError extends CcfError<{ code: "MalformedMessage" }> {}

const RAFT_TYPES = [
  "append_entries",
  "append_entries_response",
  "request_vote",
  "request_vote_response",
  "propose_request_vote",
] as const;

function raftToWire(m: RaftMessage): unknown {
  const type = RAFT_TYPES.indexOf(m.type);
  switch (m.type) {
    case "append_entries":
      // The entries follow the envelope, outside CBOR (encodeN2n).
      return [type, m.view, m.prevSeqno, m.prevView, m.leaderCommit];
    case "append_entries_response":
      return [type, m.view, m.success, m.lastSeqno];
    case "request_vote":
      return [type, m.view, m.preVote, m.lastCommittableSeqno, m.lastCommittableView];
    case "request_vote_response":
      return [type, m.view, m.preVote, m.granted];
    case "propose_request_vote":
      return [type, m.view];
  }
}

export function encodeN2n(m: N2nMessage): Uint8Array {
  switch (m.kind) {
    case "raft": {
      const envelope = encode([0, m.fromAddress, raftToWire(m.message)]);
      const r = m.message;
      return r.type === "append_entries" ? encodeEntriesBlock(r.entries, envelope) : envelope;
    }
    case "forward_request": {
      const r = m.request;
      const wire = [r.method, r.path, r.query, r.headers, r.body, r.callerCertDer];
      return encode([1, m.fromAddress, m.id, wire]);
    }
    case "forward_response": {
      const r = m.response;
      return encode([2, m.fromAddress, m.id, [r.status, r.headers, r.body]]);
    }
  }
}

function fail(what: string): never {
  throw new N2nDecodeError({ code: "MalformedMessage" }, `malformed node message: ${what}`);
}

function arr(v: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length !== length) fail(`${what} is not a ${length}-array`);
  return v;
}

function nat(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(`${what} not a count`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") fail(`${what} not a boolean`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== "string") fail(`${what} not a string`);
  return v;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${what} not bytes`);
  return v;
}

function headers(v: unknown): Record<string, string> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail("headers not a map");
  // fromEntries defines own properties, so a header named __proto__ stays a header.
  return Object.fromEntries(Object.entries(v).map(([k, value]) => [k, str(value, `header ${k}`)]));
}

/** An AppendEntries: its fields in CBOR, then its entries as one block (entries-block.ts). */
function appendEntriesFromWire(v: unknown[], block: Uint8Array): RaftMessage {
  const [, view, prev, prevView, commit] = arr(v, 5, "append_entries");
  const entries = decodeEntriesBlock(block);
  if (entries.kind === "malformed") fail(`entries: ${entries.reason}`);
  return {
    type: "append_entries",
    view: nat(view, "view") as View,
    prevSeqno: nat(prev, "prevSeqno") as Seqno,
    prevView: nat(prevView, "prevView") as View,
    leaderCommit: nat(commit, "leaderCommit") as Seqno,
    entries: entries.entries,
  };
}

/** A raft message from its CBOR part and the bytes after it (an AppendEntries' entries). */
function raftFromWire(v: unknown, after: Uint8Array): RaftMessage {
  if (!Array.isArray(v) || v.length === 0) fail("raft message");
  const type = RAFT_TYPES[nat(v[0], "type")];
  if (type === "append_entries") return appendEntriesFromWire(v, after);
  if (after.byteLength !== 0) fail(`${after.byteLength} bytes after the message`);
  const view = nat(v[1], "view") as View;
  switch (type) {
    case "append_entries_response": {
      const [, , success, last] = arr(v, 4, type);
      return {
        type,
        view,
        success: bool(success, "success"),
        lastSeqno: nat(last, "last") as Seqno,
      };
    }
    case "request_vote": {
      const [, , preVote, seqno, lastView] = arr(v, 5, type);
      return {
        type,
        view,
        preVote: bool(preVote, "preVote"),
        lastCommittableSeqno: nat(seqno, "lastCommittableSeqno") as Seqno,
        lastCommittableView: nat(lastView, "lastCommittableView") as View,
      };
    }
    case "request_vote_response": {
      const [, , preVote, granted] = arr(v, 4, type);
      return { type, view, preVote: bool(preVote, "preVote"), granted: bool(granted, "granted") };
    }
    case "propose_request_vote":
      arr(v, 2, type);
      return { type, view };
    default:
      return fail(`unknown raft message type (${typeof v[0]})`);
  }
}

/** Decodes one frame payload; throws N2nDecodeError on anything malformed. */
export function decodeN2n(payload: Uint8Array): N2nMessage {
  let v: unknown;
  let after: Uint8Array;
  try {
    [v, after] = decodeFirst(payload) as [unknown, Uint8Array];
  } catch (e) {
    return fail(`not CBOR (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!Array.isArray(v) || v.length < 3) fail("envelope");
  const fromAddress = str(v[1], "fromAddress");
  // Only an AppendEntries has bytes after its CBOR value: its entries.
  if (v[0] !== 0 && after.byteLength !== 0) fail(`${after.byteLength} bytes after the message`);
  switch (v[0]) {
    case 0:
      arr(v, 3, "raft envelope");
      return { kind: "raft", fromAddress, message: raftFromWire(v[2], after) };
    case 1: {
      const [, , id, wire] = arr(v, 4, "forward request");
      const [method, path, query, hs, body, cert] = arr(wire, 6, "request");
      return {
        kind: "forward_request",
        fromAddress,
        id: nat(id, "id"),
        request: {
          method: str(method, "method"),
          path: str(path, "path"),
          query: str(query, "query"),
          headers: headers(hs),
          body: bytes(body, "body"),
          callerCertDer: cert === null ? null : bytes(cert, "callerCertDer"),
        },
      };
    }
    case 2: {
      const [, , id, wire] = arr(v, 4, "forward response");
      const [status, hs, body] = arr(wire, 3, "response");
      return {
        kind: "forward_response",
        fromAddress,
        id: nat(id, "id"),
        response: {
          status: nat(status, "status"),
          headers: headers(hs),
          body: bytes(body, "body"),
        },
      };
    }
    default:
      return fail(`unknown kind (${typeof v[0]})`);
  }
}
