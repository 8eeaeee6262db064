/**
 * What the `ccf` global needs of a transaction: map handles by name (ADR 0005). The node's KV
 * transaction (src/kv Tx) satisfies it, and so does the app server's RemoteTx
 * (src/appservice/remote-tx.ts), which serves reads from a versioned cache of the node's state and
 * buffers writes for the node to validate and apply. Keeping the guest's view of a transaction
 * this small is what lets one JsAppRuntime run the same bundle in a node or in an app server.
 */
import type { MapHandle, ReadonlyMapHandle } from "../kv/tx.js";

export interface KvTx {
  ro(name: string): ReadonlyMapHandle;
  rw(name: string): MapHandle;
}
