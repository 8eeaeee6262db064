// A node stand-in for app service tests (src/node/app-service/): a real Store and TxPipeline
// (inline sealer, ledger in a temp directory) behind the parts of NodeContext the app service and
// JS app frontends use, and plain RpcRequests dispatched through a Router.
import assert from "node:assert/strict";
import { fromUtf8 } from "../../src/base/bytes.js";
import type { View } from "../../src/base/ids.js";
import type { RpcOutcome, RpcRequest } from "../../src/http/router.js";
import { Store } from "../../src/kv/store.js";
import { TxHistory } from "../../src/ledger/history.js";
import { LedgerWriter } from "../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../src/ledger/ledger-secrets.js";
import type { NodeContext } from "../../src/node/frontends/node-context.js";
import { InlineSealer } from "../../src/node/pipeline/sealer.js";
import { TxPipeline } from "../../src/node/pipeline/tx-pipeline.js";
import type { StartIdentities } from "../../src/node/startup/start-identities.js";
import { SystemClock } from "../../src/platform/system-clock.js";
import { tempDir } from "./pki.js";

/**
 * A NodeContext over a fresh Store; `cleanups` gets the ledger directory's removal. `role.primary`
 * (default true) is read at each use: a backup neither leads nor may write.
 */
export function nodeStub(
  identities: StartIdentities,
  cleanups: (() => void)[],
  role: { primary: boolean } = { primary: true },
): NodeContext {
  const { dir, cleanup } = tempDir("consortia-app-service-");
  cleanups.push(cleanup);
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(4));
  const store = new Store();
  const pipeline = new TxPipeline({
    store,
    history: new TxHistory(secrets),
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    sealer: new InlineSealer(secrets),
    identity: identities.node,
    options: { view: 2 as View, sigTxInterval: 1000, sigMsInterval: 1e12, conflictRetriesMax: 3 },
    nowMs: 0,
    consensus: {
      replicate: () => {},
      canWrite: () => role.primary,
      configurationOf: () => undefined,
    },
  });
  return {
    store,
    pipeline,
    clock: new SystemClock(),
    raft: {
      get isLeader() {
        return role.primary;
      },
      status: () => "Unknown",
      log: { last: 0, baseSeqno: 0, viewAt: () => 0 },
    },
  } as unknown as NodeContext;
}

export function rpcRequest(
  method: string,
  path: string,
  o: { body?: Uint8Array; certDer?: Uint8Array } = {},
): RpcRequest {
  return {
    method,
    path,
    query: "",
    queryParams: new URLSearchParams(),
    headers: o.body === undefined ? {} : { "content-type": "application/json" },
    body: o.body ?? new Uint8Array(0),
    params: {},
    callerCertDer: o.certDer ?? null,
  };
}

export interface Answer {
  status: number;
  body: string;
  code?: string;
}

/** An answer's status, body text and CCF error code (when the body is a CCF error). */
export function answer(outcome: RpcOutcome): Answer {
  assert.ok(!("kind" in outcome), "not a forward");
  const body = outcome.body;
  const text = body instanceof Uint8Array ? fromUtf8(body) : JSON.stringify(body ?? null);
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { code?: string } } | null)?.error?.code;
  } catch (err: unknown) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  return code === undefined
    ? { status: outcome.status, body: text }
    : { status: outcome.status, body: text, code };
}
