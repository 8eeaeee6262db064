/**
 * Runs a bundle's handlers for one node connection of an app server (ADR 0005): the same
 * JsAppRuntime as in-node apps, over a RemoteTx on the connection's VersionedCache. Each call is
 * run from scratch until it completes without a miss (then its result goes to the node) or the
 * run asks for more (a `need`); a call may ask at most NEED_ROUNDS_MAX times.
 *
 * Owns the calls in progress on one connection. Does no IO: the caller sends what it returns.
 */
import { utf8 } from "../base/bytes.js";
import { JsAppRuntime, type JsAppOutcome, type JsRuntimeOptions } from "../js/app-runtime.js";
import { installAppCrypto } from "../js/app-crypto-globals.js";
import type { KvAccess } from "../js/ccf-globals.js";
import type { QuickJSWASMModule } from "../js/quickjs.js";
import type { JsonValue } from "../js/sandbox.js";
import type { CallMessage, ServerMessage, Values } from "./messages.js";
import { CallServices, Misses, RemoteTx, VersionedCache } from "./remote-tx.js";

/** How many `need` rounds one call may take (each round is one dependent read, at least). */
export const NEED_ROUNDS_MAX = 64;
/** How many calls may be in progress on one connection. */
export const CALLS_IN_PROGRESS_MAX = 4096;

const APP_ACCESS: KvAccess = { mode: "read-write", readOnlyPrefixes: ["public:ccf.", "ccf."] };
const READ_ONLY: KvAccess = { mode: "read-only" };

interface InProgress {
  readonly call: CallMessage;
  readonly services: CallServices;
  rounds: number;
}

/** The runtime a server shares among its connections (one per bundle). */
export function bundleRuntime(
  quickjs: QuickJSWASMModule,
  modules: ReadonlyMap<string, string>,
  runtimeOptions: JsRuntimeOptions,
  log?: (line: string) => void,
): JsAppRuntime {
  return new JsAppRuntime(quickjs, modules, {
    runtimeOptions,
    installers: [(ctx) => installAppCrypto(ctx)],
    ...(log === undefined ? {} : { log: (level, message) => log(`[js ${level}] ${message}`) }),
  });
}

export class ConnectionExecutor {
  private readonly cache = new VersionedCache();
  private readonly calls = new Map<number, InProgress>();

  constructor(private readonly runtime: JsAppRuntime) {}

  /** A new call; returns its need, result or failure. */
  onCall(call: CallMessage): ServerMessage {
    if (this.calls.size >= CALLS_IN_PROGRESS_MAX) {
      return failed(call.id, "busy", "too many calls in progress on this connection");
    }
    const services = new CallServices(call.last_committed);
    const entry: InProgress = { call, services, rounds: 0 };
    this.calls.set(call.id, entry);
    return this.feed(entry, call.values);
  }

  /** The node's answer to a need; null when the call is unknown (it was given up). */
  onValues(id: number, values: Values): ServerMessage | null {
    const entry = this.calls.get(id);
    if (entry === undefined) return null;
    entry.rounds++;
    if (entry.rounds > NEED_ROUNDS_MAX) {
      this.calls.delete(id);
      return failed(id, "exception", `the handler needed more than ${NEED_ROUNDS_MAX} rounds`);
    }
    return this.feed(entry, values);
  }

  /** Gives up call `id` (its answer could not be sent). */
  forget(id: number): void {
    this.calls.delete(id);
  }

  private feed(entry: InProgress, values: Values): ServerMessage {
    this.cache.apply(values);
    entry.services.apply(values);
    const message = this.run(entry);
    if (message.t !== "need") this.calls.delete(entry.call.id);
    return message;
  }

  private run(entry: InProgress): ServerMessage {
    const { call } = entry;
    const misses = new Misses();
    const tx = new RemoteTx(this.cache, misses);
    const outcome = this.runtime.call(
      {
        module: call.module,
        handler: call.handler,
        ...(call.interpreter_reuse === null ? {} : { interpreterReuse: call.interpreter_reuse }),
      },
      {
        ...call.request,
        ...(call.caller === null ? {} : { caller: JSON.parse(call.caller) as JsonValue }),
        ...(call.cose_content === null ? {} : { coseContent: call.cose_content }),
      },
      { tx, access: call.mode === "readwrite" ? APP_ACCESS : READ_ONLY },
      entry.services.forRun(misses),
    );
    // A miss discards the run whatever the guest made of it.
    if (misses.any) return misses.need(call.id);
    return resultOf(call.id, this.cache.currentEpoch, outcome, tx);
  }
}

function failed(id: number, reason: string, message: string): ServerMessage {
  return { t: "failed", id, reason, message };
}

function resultOf(id: number, epoch: number, outcome: JsAppOutcome, tx: RemoteTx): ServerMessage {
  if (outcome.kind === "failure") return failed(id, outcome.reason, outcome.message);
  const { reads, mapReads, writes, cleared } = tx.effects();
  const body = outcome.body;
  const bytes =
    body.kind === "none" ? new Uint8Array(0) : body.kind === "bytes" ? body.bytes : utf8(body.text);
  return {
    t: "result",
    id,
    epoch,
    status: outcome.status,
    headers: outcome.headers,
    body_kind: body.kind,
    body: bytes,
    reads,
    map_reads: mapReads,
    writes,
    cleared,
    claims_digest: outcome.claimsDigest,
    apply_writes: outcome.applyWrites,
  };
}
