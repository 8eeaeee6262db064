/**
 * Command handlers for the kv golden scripts (test/scenarios/kv/*.txt): one small function per
 * command, each driving the kv API (src/kv/store.ts, tx.ts) and rendering what it observed from
 * the returned values, never from log text. Keys, values and map names are UTF-8 text in the
 * scripts; a rendered key or value is quoted (JSON) when it is empty or holds a space, `=`, `"`
 * or `\`, so every line reads back unambiguously.
 *
 * Vocabulary (tx names are script-chosen words such as t1):
 *   begin t1                      -> t1 read-seqno=N
 *   get|delete t1 map key         -> key=value | key absent ; existed=true|false
 *   set t1 map key value, clear t1 map -> ok
 *   size t1 map, foreach t1 map   -> size=N ; key=value lines in key-byte order
 *   prev-write t1 map key         -> the tx's getVersionOfPreviousWrite: seqno=N | none
 *   commit t1, put map k=v ...    -> committed seqno=N + the write set as given | read-only
 *                                    seqno=N | conflict cause=... map=... key=...
 *   rollback N, compact N         -> seqno=N compacted=M | error: <assertion message>
 *   dump, last-write map [key]    -> the store state outside any tx
 * A kv boundary error (KvError) or an assertion of the store renders as `error: ...`; anything
 * else (an unknown tx name, a bad argument) is a script bug and fails the test.
 */
import { AssertionError, assertNever } from "../../../src/base/assert.js";
import { compareBytes, fromUtf8, utf8 } from "../../../src/base/bytes.js";
import type { Seqno } from "../../../src/base/ids.js";
import { type CommitOutcome, Store } from "../../../src/kv/store.js";
import { KvError, type Tx } from "../../../src/kv/tx.js";
import { type MapWrites } from "../../../src/kv/write-set.js";
import type { Command, HandlerRegistry } from "../runner.js";

export interface KvEnv {
  readonly store: Store;
  /** Every tx the script began, by name. Invariant: names are never reused. */
  readonly txs: Map<string, Tx>;
}

export function newKvEnv(): KvEnv {
  return { store: new Store(), txs: new Map() };
}

/** The positional arguments `names`, exactly that many and no named ones. */
function args<const N extends readonly string[]>(
  command: Command,
  names: N,
): { [K in keyof N]: string } {
  const usage = `${command.name} ${names.join(" ")}`;
  if (command.positional.length !== names.length || command.named.size > 0) {
    throw new Error(`usage: ${usage}`);
  }
  if (command.input.length > 0) throw new Error(`${command.name} takes no input lines`);
  return command.positional as unknown as { [K in keyof N]: string };
}

function txNamed(env: KvEnv, name: string): Tx {
  const tx = env.txs.get(name);
  if (tx === undefined) throw new Error(`no tx named ${name}`);
  return tx;
}

function seqnoArg(text: string): Seqno {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a seqno: ${text}`);
  return n as Seqno;
}

/** Runs `body`, rendering the kv's expected failures instead of letting them fail the test. */
function attempt(body: () => string): string {
  try {
    return body();
  } catch (error) {
    if (error instanceof KvError) return `error: ${error.code}: ${error.message}`;
    if (error instanceof AssertionError) return `error: ${error.message}`;
    throw error;
  }
}

function show(bytes: Uint8Array): string {
  const text = fromUtf8(bytes);
  return /^[^\s="\\]+$/u.test(text) ? text : JSON.stringify(text);
}

function renderWrites(maps: readonly MapWrites[]): string[] {
  const lines: string[] = [];
  for (const map of maps) {
    for (const w of map.writes) {
      const write = w.value === null ? `${show(w.key)} removed` : `${show(w.key)}=${show(w.value)}`;
      lines.push(`  ${map.name} ${write}`);
    }
  }
  return lines;
}

/** The outcome, and for a commit its write set in the order the store produced it. */
function renderOutcome(outcome: CommitOutcome): string {
  switch (outcome.kind) {
    case "committed": {
      const writes = renderWrites(outcome.writeSet.maps);
      return [`committed seqno=${outcome.seqno}`, ...writes].join("\n");
    }
    case "read-only":
      return `read-only seqno=${outcome.seqno}`;
    case "conflict": {
      const map = outcome.map === "" ? "" : ` map=${outcome.map}`;
      const key = outcome.key === null ? "" : ` key=${show(outcome.key)}`;
      return `conflict cause=${outcome.cause}${map}${key}`;
    }
    default:
      return assertNever(outcome, "commit outcome");
  }
}

function renderSeqnos(store: Store): string {
  return `seqno=${store.seqno} compacted=${store.compactedSeqno}`;
}

function begin(env: KvEnv, command: Command): string {
  const [name] = args(command, ["tx"]);
  if (env.txs.has(name)) throw new Error(`tx name ${name} already used`);
  const tx = env.store.begin();
  env.txs.set(name, tx);
  return `${name} read-seqno=${tx.readSeqno}`;
}

function get(env: KvEnv, command: Command): string {
  const [name, map, key] = args(command, ["tx", "map", "key"]);
  return attempt(() => {
    const value = txNamed(env, name).rw(map).get(utf8(key));
    return value === undefined ? `${show(utf8(key))} absent` : `${show(utf8(key))}=${show(value)}`;
  });
}

function set(env: KvEnv, command: Command): string {
  const [name, map, key, value] = args(command, ["tx", "map", "key", "value"]);
  return attempt(() => {
    txNamed(env, name).rw(map).set(utf8(key), utf8(value));
    return "ok";
  });
}

function remove(env: KvEnv, command: Command): string {
  const [name, map, key] = args(command, ["tx", "map", "key"]);
  return attempt(() => `existed=${txNamed(env, name).rw(map).delete(utf8(key))}`);
}

function clear(env: KvEnv, command: Command): string {
  const [name, map] = args(command, ["tx", "map"]);
  return attempt(() => {
    txNamed(env, name).rw(map).clear();
    return "ok";
  });
}

function size(env: KvEnv, command: Command): string {
  const [name, map] = args(command, ["tx", "map"]);
  return attempt(() => `size=${txNamed(env, name).rw(map).size}`);
}

function forEach(env: KvEnv, command: Command): string {
  const [name, map] = args(command, ["tx", "map"]);
  return attempt(() => {
    const pairs: [Uint8Array, Uint8Array][] = [];
    txNamed(env, name)
      .rw(map)
      .forEach((value, key) => pairs.push([key, value]));
    if (pairs.length === 0) return "(empty)";
    pairs.sort((a, b) => compareBytes(a[0], b[0]));
    return pairs.map(([key, value]) => `${show(key)}=${show(value)}`).join("\n");
  });
}

function prevWrite(env: KvEnv, command: Command): string {
  const [name, map, key] = args(command, ["tx", "map", "key"]);
  return attempt(() => {
    const seqno = txNamed(env, name).rw(map).getVersionOfPreviousWrite(utf8(key));
    return seqno === undefined ? "none" : `seqno=${seqno}`;
  });
}

function commit(env: KvEnv, command: Command): string {
  const [name] = args(command, ["tx"]);
  return attempt(() => renderOutcome(env.store.commit(txNamed(env, name))));
}

/** Setup shorthand: one fresh tx that sets every key=value given, committed at once. */
function put(env: KvEnv, command: Command): string {
  if (command.positional.length !== 1 || command.named.size === 0) {
    throw new Error("usage: put map key=value ...");
  }
  const tx = env.store.begin();
  const handle = tx.rw(command.positional[0]!);
  for (const [key, value] of command.named) handle.set(utf8(key), utf8(value));
  return renderOutcome(env.store.commit(tx));
}

function rollback(env: KvEnv, command: Command): string {
  const [seqno] = args(command, ["seqno"]);
  return attempt(() => {
    env.store.rollback(seqnoArg(seqno));
    return renderSeqnos(env.store);
  });
}

function compact(env: KvEnv, command: Command): string {
  const [seqno] = args(command, ["seqno"]);
  return attempt(() => {
    env.store.compact(seqnoArg(seqno));
    return renderSeqnos(env.store);
  });
}

/** The whole committed state: seqnos, then each map's last write and its live keys. */
function dump(env: KvEnv, command: Command): string {
  args(command, []);
  const { store } = env;
  const lines = [renderSeqnos(store)];
  for (const map of store.mapNames()) {
    lines.push(`${map} last-write=${store.lastWriteSeqno(map)}`);
    for (const [key, value] of store.entries(map)) {
      const seqno = store.lastWriteSeqno(map, key);
      lines.push(`  ${show(key)}=${show(value)} last-write=${seqno}`);
    }
  }
  return lines.join("\n");
}

/** The store's last-write seqno of a key (tombstones included) or, without a key, of a map. */
function lastWrite(env: KvEnv, command: Command): string {
  if (command.positional.length === 1) {
    const [map] = args(command, ["map"]);
    return `last-write=${env.store.lastWriteSeqno(map)}`;
  }
  const [map, key] = args(command, ["map", "key"]);
  return `last-write=${env.store.lastWriteSeqno(map, utf8(key))}`;
}

export const kvHandlers: HandlerRegistry<KvEnv> = {
  begin,
  get,
  set,
  delete: remove,
  clear,
  size,
  foreach: forEach,
  "prev-write": prevWrite,
  commit,
  put,
  rollback,
  compact,
  dump,
  "last-write": lastWrite,
};
