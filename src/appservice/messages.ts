/**
 * The app service protocol (ADR 0005): what a node and an app server say to each other over
 * their TLS connection, one CBOR map per frame (src/base/frames.ts framing). The node is the
 * client: it says hello, then sends calls; the server answers hello with its bundle, and each
 * call with needs (values its run read and did not have), then a result or a failure.
 *
 * Versions are seqnos: a key's version is the seqno of its last write as the node knows it, 0
 * when it has no value; a map's version is the seqno of its last write. `epoch` is the node's
 * rollback count: a version names a value only within one epoch, so the server drops what it
 * cached under another epoch, and the node refuses a result computed in another one.
 *
 * decodeAppMessage checks every field and throws AppServiceError(MalformedMessage) on anything
 * else; the receiver drops the connection (the peer is broken), never the process. No IO.
 */
import { decode, encode } from "cborg";
import { CcfError } from "../base/errors.js";
import type { JsAppRequest } from "../js/app-runtime.js";

export enum AppServiceErrorCode {
  /** A frame that is not a well-formed protocol message. */
  MalformedMessage = "MalformedMessage",
  /** The package id is not the SHA-256 of the bundle served. */
  PackageMismatch = "PackageMismatch",
  /** The server's options cannot work (bad certificate, key or bundle). */
  InvalidOptions = "InvalidOptions",
  /** The server cannot listen on its address (in use, not local, not permitted). */
  ListenFailed = "ListenFailed",
}
export class AppServiceError extends CcfError<{ code: AppServiceErrorCode }> {}

/** A request as the guest sees it: JsAppRequest without the node-only fields. */
export type WireRequest = Omit<JsAppRequest, "caller" | "coseContent" | "historical">;

export type KeyRef = readonly [map: string, key: Uint8Array];
export type KeyValue = readonly [map: string, key: Uint8Array, value: Uint8Array | null, v: number];
export type MapEntry = readonly [key: Uint8Array, value: Uint8Array, version: number];
export type MapValue = readonly [map: string, version: number, entries: readonly MapEntry[]];
export type KeyRead = readonly [map: string, key: Uint8Array, version: number];
export type MapRead = readonly [map: string, version: number];
export type KeyWrite = readonly [map: string, key: Uint8Array, value: Uint8Array | null];
export type TxStatusValue = readonly [view: number, seqno: number, status: string];
export type ViewValue = readonly [seqno: number, view: number | null];

/** What the node knows that a run asked for. */
export interface Values {
  readonly epoch: number;
  readonly keys: readonly KeyValue[];
  readonly maps: readonly MapValue[];
  readonly tx_status: readonly TxStatusValue[];
  readonly views: readonly ViewValue[];
}

export type BodyKind = "none" | "text" | "bytes" | "json";

export interface CallMessage {
  readonly t: "call";
  readonly id: number;
  readonly module: string;
  readonly handler: string;
  readonly mode: "readwrite" | "readonly";
  readonly interpreter_reuse: string | null;
  readonly request: WireRequest;
  /** The caller as JSON text, or null for an endpoint without policies. */
  readonly caller: string | null;
  readonly cose_content: Uint8Array | null;
  readonly last_committed: readonly [view: number, seqno: number];
  readonly values: Values;
}

export interface ResultMessage {
  readonly t: "result";
  readonly id: number;
  /** The epoch of every value the run used. */
  readonly epoch: number;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body_kind: BodyKind;
  readonly body: Uint8Array;
  readonly reads: readonly KeyRead[];
  readonly map_reads: readonly MapRead[];
  readonly writes: readonly KeyWrite[];
  readonly cleared: readonly string[];
  readonly claims_digest: Uint8Array | null;
  readonly apply_writes: boolean | null;
}

export interface NeedMessage {
  readonly t: "need";
  readonly id: number;
  readonly keys: readonly KeyRef[];
  readonly maps: readonly string[];
  readonly tx_status: readonly (readonly [view: number, seqno: number])[];
  readonly views: readonly number[];
}

export type NodeMessage =
  | { readonly t: "hello"; readonly package_id: string }
  | CallMessage
  | ({ readonly t: "values"; readonly id: number } & Values);

export type ServerMessage =
  | { readonly t: "bundle"; readonly package_id: string; readonly bundle: Uint8Array }
  | { readonly t: "error"; readonly code: string; readonly message: string }
  | NeedMessage
  | ResultMessage
  | {
      readonly t: "failed";
      readonly id: number;
      readonly reason: string;
      readonly message: string;
    };

export const NO_VALUES: Values = { epoch: 0, keys: [], maps: [], tx_status: [], views: [] };

export function encodeAppMessage(message: NodeMessage | ServerMessage): Uint8Array {
  return encode(message);
}

function fail(what: string): never {
  throw new AppServiceError(
    { code: AppServiceErrorCode.MalformedMessage },
    `malformed app service message: ${what}`,
  );
}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    fail(`${what} is not a map`);
  }
  return v as Obj;
}
function nat(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) fail(`${what} is not a count`);
  return v;
}
function str(v: unknown, what: string): string {
  if (typeof v !== "string") fail(`${what} is not a string`);
  return v;
}
function bytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) fail(`${what} is not bytes`);
  return v;
}
function orNull<T>(v: unknown, read: (v: unknown, what: string) => T, what: string): T | null {
  return v === null ? null : read(v, what);
}
function list<T>(v: unknown, what: string, item: (v: unknown, what: string) => T): T[] {
  if (!Array.isArray(v)) fail(`${what} is not an array`);
  return v.map((x, i) => item(x, `${what}[${i}]`));
}
function tuple(v: unknown, length: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length !== length) fail(`${what} is not a ${length}-array`);
  return v;
}
function strings(v: unknown, what: string): Record<string, string> {
  const o = obj(v, what);
  return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, str(x, `${what}.${k}`)]));
}
/** A string that parses as JSON (the receiver parses it without a second check). */
function jsonText(v: unknown, what: string): string {
  const text = str(v, what);
  try {
    JSON.parse(text);
  } catch (err: unknown) {
    if (err instanceof SyntaxError) fail(`${what} is not JSON`);
    throw err;
  }
  return text;
}
function bool(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") fail(`${what} is not a boolean`);
  return v;
}

function keyValue(v: unknown, what: string): KeyValue {
  const [m, k, value, version] = tuple(v, 4, what);
  return [str(m, what), bytes(k, what), orNull(value, bytes, what), nat(version, what)];
}
function mapEntry(v: unknown, what: string): MapEntry {
  const [k, value, version] = tuple(v, 3, what);
  return [bytes(k, what), bytes(value, what), nat(version, what)];
}
function mapValue(v: unknown, what: string): MapValue {
  const [m, version, entries] = tuple(v, 3, what);
  return [str(m, what), nat(version, what), list(entries, what, mapEntry)];
}

function values(o: Obj): Values {
  return {
    epoch: nat(o.epoch, "epoch"),
    keys: list(o.keys, "keys", keyValue),
    maps: list(o.maps, "maps", mapValue),
    tx_status: list(o.tx_status, "tx_status", (v, w) => {
      const [view, seqno, status] = tuple(v, 3, w);
      return [nat(view, w), nat(seqno, w), str(status, w)] as const;
    }),
    views: list(o.views, "views", (v, w) => {
      const [seqno, view] = tuple(v, 2, w);
      return [nat(seqno, w), orNull(view, nat, w)] as const;
    }),
  };
}

function request(v: unknown): WireRequest {
  const o = obj(v, "request");
  const s = (f: string) => str(o[f], `request.${f}`);
  return {
    method: s("method"),
    url: s("url"),
    path: s("path"),
    route: s("route"),
    query: s("query"),
    hostname: s("hostname"),
    headers: strings(o.headers, "request.headers"),
    params: strings(o.params, "request.params"),
    body: bytes(o.body, "request.body"),
  };
}

function call(o: Obj): CallMessage {
  const mode = str(o.mode, "mode");
  if (mode !== "readwrite" && mode !== "readonly") fail(`mode ${mode}`);
  const [view, seqno] = tuple(o.last_committed, 2, "last_committed");
  return {
    t: "call",
    id: nat(o.id, "id"),
    module: str(o.module, "module"),
    handler: str(o.handler, "handler"),
    mode,
    interpreter_reuse: orNull(o.interpreter_reuse, str, "interpreter_reuse"),
    request: request(o.request),
    caller: orNull(o.caller, jsonText, "caller"),
    cose_content: orNull(o.cose_content, bytes, "cose_content"),
    last_committed: [nat(view, "view"), nat(seqno, "seqno")],
    values: values(obj(o.values, "values")),
  };
}

const BODY_KINDS: readonly string[] = ["none", "text", "bytes", "json"];

function result(o: Obj): ResultMessage {
  const kind = str(o.body_kind, "body_kind");
  if (!BODY_KINDS.includes(kind)) fail(`body_kind ${kind}`);
  const status = nat(o.status, "status");
  if (status < 100 || status > 999) fail(`status ${status}`);
  return {
    t: "result",
    id: nat(o.id, "id"),
    epoch: nat(o.epoch, "epoch"),
    status,
    headers: strings(o.headers, "headers"),
    body_kind: kind as BodyKind,
    body: bytes(o.body, "body"),
    reads: list(o.reads, "reads", (v, w) => {
      const [m, k, version] = tuple(v, 3, w);
      return [str(m, w), bytes(k, w), nat(version, w)] as const;
    }),
    map_reads: list(o.map_reads, "map_reads", (v, w) => {
      const [m, version] = tuple(v, 2, w);
      return [str(m, w), nat(version, w)] as const;
    }),
    writes: list(o.writes, "writes", (v, w) => {
      const [m, k, value] = tuple(v, 3, w);
      return [str(m, w), bytes(k, w), orNull(value, bytes, w)] as const;
    }),
    cleared: list(o.cleared, "cleared", str),
    claims_digest: orNull(o.claims_digest, bytes, "claims_digest"),
    apply_writes: orNull(o.apply_writes, bool, "apply_writes"),
  };
}

function need(o: Obj): NeedMessage {
  return {
    t: "need",
    id: nat(o.id, "id"),
    keys: list(o.keys, "keys", (v, w) => {
      const [m, k] = tuple(v, 2, w);
      return [str(m, w), bytes(k, w)] as const;
    }),
    maps: list(o.maps, "maps", str),
    tx_status: list(o.tx_status, "tx_status", (v, w) => {
      const [view, seqno] = tuple(v, 2, w);
      return [nat(view, w), nat(seqno, w)] as const;
    }),
    views: list(o.views, "views", nat),
  };
}

function decodeObj(payload: Uint8Array): Obj {
  let v: unknown;
  try {
    v = decode(payload);
  } catch (e: unknown) {
    return fail(`not CBOR (${e instanceof Error ? e.message : String(e)})`);
  }
  return obj(v, "message");
}

/** A message from a node (what a server reads). */
export function decodeNodeMessage(payload: Uint8Array): NodeMessage {
  const o = decodeObj(payload);
  switch (o.t) {
    case "hello":
      return { t: "hello", package_id: str(o.package_id, "package_id") };
    case "call":
      return call(o);
    case "values":
      return { t: "values", id: nat(o.id, "id"), ...values(o) };
    default:
      return fail(`unknown node message ${JSON.stringify(o.t)}`);
  }
}

/** A message from a server (what a node reads). */
export function decodeServerMessage(payload: Uint8Array): ServerMessage {
  const o = decodeObj(payload);
  switch (o.t) {
    case "bundle":
      return {
        t: "bundle",
        package_id: str(o.package_id, "package_id"),
        bundle: bytes(o.bundle, "bundle"),
      };
    case "error":
      return { t: "error", code: str(o.code, "code"), message: str(o.message, "message") };
    case "need":
      return need(o);
    case "result":
      return result(o);
    case "failed":
      return {
        t: "failed",
        id: nat(o.id, "id"),
        reason: str(o.reason, "reason"),
        message: str(o.message, "message"),
      };
    default:
      return fail(`unknown server message ${JSON.stringify(o.t)}`);
  }
}
