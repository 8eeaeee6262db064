/**
 * The node's side of an app service transaction (ADR 0005): what the node tells a server about
 * its KV (valuesFor), and the optimistic validation of a server's result (commitResult).
 *
 * commitResult runs inside ONE synchronous pipeline.execute(): the caller is authenticated
 * again, every key of the result's read set and every map of its map reads is re-read in the
 * fresh transaction and its version compared with the one the server saw; only when all are
 * equal are the cleared maps then the writes applied to the transaction, which then commits as
 * any JS endpoint's does (writes kept for 2xx or as ccf.rpc.setApplyWrites said). Any difference
 * discards the transaction whole and returns the fresh values of what was stale, for the retry.
 * Nothing is held across an await, and a partial write set cannot commit: writes are applied
 * only after the whole read set validated, in the same execute().
 *
 * The node refuses a result that breaks the access rules of in-node apps: no write to
 * `public:ccf.` or `ccf.` maps, no write at all from a readonly endpoint (500 InternalError).
 */
import { assert } from "../../base/assert.js";
import { HttpError, HttpErrorCode } from "../../http/errors.js";
import type { RpcOutcome, RpcRequest, RpcResponse } from "../../http/router.js";
import { KvError } from "../../kv/tx.js";
import type { Tx } from "../../kv/tx.js";
import type { Store } from "../../kv/store.js";
import type { JsAuthnPolicySpec } from "../../js/app-bundle.js";
import type { JsAppBody } from "../../js/app-runtime.js";
import { writeDenial, type KvAccess } from "../../js/ccf-globals.js";
import type {
  KeyValue,
  MapValue,
  NeedMessage,
  ResultMessage,
  Values,
} from "../../appservice/messages.js";
import { authenticateJs } from "../frontends/js-app-auth.js";
import { consensusServices, toRpcResponse } from "../frontends/js-app-endpoints.js";
import type { NodeContext } from "../frontends/node-context.js";
import { answerOf } from "../frontends/rpc-context.js";

/** A map sent whole to a server may hold at most this many keys. */
export const MAP_VALUES_KEYS_MAX = 50_000;

function refused(message: string): HttpError {
  return new HttpError(
    HttpErrorCode.InternalError,
    `The app service's result was refused: ${message}`,
  );
}

/** Runs `read`, turning a bad map name from the server into a refusal. */
function guarded<T>(read: () => T): T {
  try {
    return read();
  } catch (err: unknown) {
    if (err instanceof KvError) throw refused(err.message);
    throw err;
  }
}

function keyValue(store: Store, map: string, key: Uint8Array): KeyValue {
  const value = store.get(map, key);
  return [map, key, value ?? null, value === undefined ? 0 : store.lastWriteSeqno(map, key)];
}

function mapValue(store: Store, map: string): MapValue {
  const entries: [Uint8Array, Uint8Array, number][] = [];
  for (const entry of store.liveUnsorted(map)) {
    if (entries.length >= MAP_VALUES_KEYS_MAX) {
      throw new HttpError(
        HttpErrorCode.InternalError,
        `Map ${map} has more than ${MAP_VALUES_KEYS_MAX} keys: too many to send to an app service.`,
      );
    }
    entries.push([entry.key, entry.value, entry.seqno]);
  }
  return [map, store.lastWriteSeqno(map), entries];
}

/** What the node knows of everything `need` names, now (ccf.consensus as in-node apps see it). */
export function valuesFor(node: NodeContext, need: NeedMessage): Values {
  const store = node.store;
  const consensus = consensusServices(node);
  return guarded(() => ({
    epoch: store.rollbackCount,
    keys: need.keys.map(([map, key]) => keyValue(store, map, key)),
    maps: need.maps.map((map) => mapValue(store, map)),
    tx_status: need.tx_status.map(
      ([view, seqno]) => [view, seqno, consensus.statusForTxId(view, seqno)] as const,
    ),
    views: need.views.map((seqno) => [seqno, consensus.viewForSeqno(seqno)] as const),
  }));
}

/** What the endpoint allows, and how the node answers for it. */
export interface CommitContext {
  readonly request: RpcRequest;
  readonly policies: readonly JsAuthnPolicySpec[];
  readonly access: KvAccess;
}

export type CommitOutcome =
  | { readonly kind: "answer"; readonly outcome: RpcOutcome }
  | { readonly kind: "stale"; readonly fresh: Values };

const STALE = Symbol("stale");
/** Lenient: a server's bad UTF-8 shows as replacement characters, as a guest's would. */
const TEXT = new TextDecoder();

/** Validates `result` and commits it, in one execute(); see the module comment. */
export function commitResult(
  node: NodeContext,
  result: ResultMessage,
  context: CommitContext,
): CommitOutcome {
  checkAccess(result, context.access);
  const store = node.store;
  let fresh: Values | null = null;
  const claims = result.claims_digest ?? undefined;
  const keep = (r: RpcResponse | typeof STALE) =>
    r !== STALE && (result.apply_writes ?? (r.status >= 200 && r.status < 300));
  const outcome = node.pipeline.execute<RpcResponse | typeof STALE>(
    (tx) => {
      authenticateJs(tx, context.request, context.policies, node.clock.realtimeMs());
      fresh = guarded(() => staleValues(store, tx, result));
      if (fresh !== null) return STALE;
      guarded(() => applyWrites(tx, result));
      return toRpcResponse({
        kind: "response",
        status: result.status,
        headers: result.headers,
        body: bodyOf(result),
        applyWrites: result.apply_writes,
        claimsDigest: result.claims_digest,
      });
    },
    claims,
    keep,
  );
  if (outcome.kind === "discarded" && outcome.result === STALE) {
    assert(fresh !== null, "a stale result comes with fresh values");
    return { kind: "stale", fresh };
  }
  // Only a discarded outcome can carry STALE (keep refuses it); the others are answers.
  assert(!("result" in outcome) || outcome.result !== STALE, "a stale result is never kept");
  return { kind: "answer", outcome: answerOf(node.pipeline, outcome as Answerable) };
}

type Answerable = Parameters<typeof answerOf>[1];

/** The fresh values of every read of `result` that is stale in `tx`, or null when none is. */
function staleValues(store: Store, tx: Tx, result: ResultMessage): Values | null {
  const epoch = store.rollbackCount;
  const everything = result.epoch !== epoch;
  const keys: KeyValue[] = [];
  const maps: MapValue[] = [];
  for (const [map, key, version] of result.reads) {
    const current = tx.ro(map).getVersionOfPreviousWrite(key) ?? 0;
    if (everything || current !== version) keys.push(keyValue(store, map, key));
  }
  for (const [map, version] of result.map_reads) {
    void tx.ro(map).size; // the transaction depends on the whole map
    if (everything || store.lastWriteSeqno(map) !== version) maps.push(mapValue(store, map));
  }
  if (keys.length === 0 && maps.length === 0 && !everything) return null;
  return { epoch, keys, maps, tx_status: [], views: [] };
}

function checkAccess(result: ResultMessage, access: KvAccess): void {
  const written = new Set([...result.cleared, ...result.writes.map(([map]) => map)]);
  for (const map of written) {
    const denial = writeDenial(access, map);
    if (denial !== null) throw refused(denial);
  }
}

function applyWrites(tx: Tx, result: ResultMessage): void {
  for (const map of result.cleared) tx.rw(map).clear();
  for (const [map, key, value] of result.writes) {
    if (value === null) tx.rw(map).delete(key);
    else tx.rw(map).set(key, value);
  }
}

function bodyOf(result: ResultMessage): JsAppBody {
  switch (result.body_kind) {
    case "none":
      return { kind: "none" };
    case "bytes":
      return { kind: "bytes", bytes: result.body };
    case "text":
      return { kind: "text", text: TEXT.decode(result.body) };
    case "json":
      return { kind: "json", text: TEXT.decode(result.body) };
  }
}
