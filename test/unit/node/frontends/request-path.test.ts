// The request path of a node (src/node/frontends/request-path.ts) with runInTx
// (rpc-context.ts) over a real TxPipeline: a successful answer leaves with x-ms-ccf-transaction-id
// written in one place (the write's own txId, the read's, or the node's last) and a failed one
// without it (CCF sets the TxID only after a successful commit), a 2xx commits
// and anything else discards, and a write on a backup is a typed forward-to-primary outcome that
// the path forwards (relaying the primary's answer untouched) or answers 503 PrimaryNotFound.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../../../src/base/bytes.js";
import type { NodeId, View } from "../../../../src/base/ids.js";
import { Store } from "../../../../src/kv/store.js";
import { TxHistory } from "../../../../src/ledger/history.js";
import { LedgerWriter } from "../../../../src/ledger/io/ledger-writer.js";
import { LedgerSecrets } from "../../../../src/ledger/ledger-secrets.js";
import { TXID_HEADER } from "../../../../src/http/ccf-headers.js";
import { Router, type RpcRequest, type RpcResponse } from "../../../../src/http/router.js";
import { dispatchRequest } from "../../../../src/http/server.js";
import { RequestPath } from "../../../../src/node/frontends/request-path.js";
import { json, runInTx } from "../../../../src/node/frontends/rpc-context.js";
import { InlineSealer } from "../../../../src/node/pipeline/sealer.js";
import { TxPipeline } from "../../../../src/node/pipeline/tx-pipeline.js";
import type { ForwardOutcome } from "../../../../src/node/replication/forwarding.js";
import { createStartIdentities } from "../../../../src/node/startup/start-identities.js";
import { tempDir } from "../../../helpers/pki.js";

const VIEW = 3 as View;
const SELF = "self" as NodeId;
const PRIMARY = "primary" as NodeId;
const identities = await createStartIdentities({ now: new Date() });

interface Rig {
  readonly path: RequestPath;
  readonly router: Router;
  readonly store: Store;
  readonly forwarded: RpcRequest[];
  /** What the path believes: the primary's id, or null. */
  primary: NodeId | null;
  /** Whether consensus lets this node write. */
  writable: boolean;
  /** The answer a forward gets. */
  forwardOutcome: ForwardOutcome;
  cleanup(): Promise<void>;
}

async function makeRig(): Promise<Rig> {
  const { dir, cleanup } = tempDir("consortia-request-path-");
  const secrets = new LedgerSecrets(new Uint8Array(32).fill(4));
  const store = new Store();
  const history = new TxHistory(secrets);
  const router = new Router();
  const rig = {} as Rig;
  const pipeline = new TxPipeline({
    store,
    history,
    ledger: LedgerWriter.open(dir, { chunkSizeBytes: 1 << 20 }),
    sealer: new InlineSealer(secrets),
    identity: identities.node,
    options: {
      view: VIEW,
      sigTxInterval: 1000,
      sigMsInterval: Number.MAX_SAFE_INTEGER,
      conflictRetriesMax: 3,
    },
    nowMs: 0,
    consensus: {
      replicate: () => {},
      canWrite: () => rig.writable,
      configurationOf: () => undefined,
    },
  });
  router.add("POST", "/write/{status}", (request) =>
    runInTx(pipeline, (tx) => {
      tx.rw("public:records").set(utf8("k"), request.body);
      return json({ wrote: true }, Number(request.params.status));
    }),
  );
  router.add("GET", "/read", () =>
    runInTx(pipeline, (tx) => {
      const value = tx.ro("public:records").get(utf8("k"));
      return json({ value: value === undefined ? null : fromUtf8(value) });
    }),
  );
  const forwarded: RpcRequest[] = [];
  Object.assign(rig, {
    store,
    router,
    forwarded,
    primary: PRIMARY,
    writable: true,
    forwardOutcome: { kind: "unavailable", message: "unset" } as ForwardOutcome,
    cleanup: async () => {
      await pipeline.close();
      cleanup();
    },
  });
  Object.assign(rig, {
    path: new RequestPath({
      router,
      selfId: SELF,
      primary: () => rig.primary,
      lastTxId: () => pipeline.lastTxId,
      forward: async (primary, request) => {
        assert.equal(primary, rig.primary);
        forwarded.push(request);
        return rig.forwardOutcome;
      },
      log: () => {},
    }),
  });
  return rig;
}

function request(method: string, path: string, body = ""): RpcRequest {
  return {
    method,
    path,
    query: "",
    queryParams: new URLSearchParams(),
    headers: {},
    body: utf8(body),
    params: {},
    callerCertDer: null,
  };
}

async function send(rig: Rig, r: RpcRequest): Promise<RpcResponse> {
  const log = (message: string, error?: unknown) => assert.fail(`${message}: ${String(error)}`);
  return rig.path.middleware(r, (routed) => dispatchRequest(routed, rig.router, log));
}

function errorCode(response: RpcResponse): unknown {
  return (response.body as { error: { code: unknown } }).error.code;
}

test("a 2xx write commits and names its own transaction; a read names the one it saw", async () => {
  const rig = await makeRig();
  try {
    const written = await send(rig, request("POST", "/write/200", "v1"));
    assert.equal(written.status, 200);
    assert.equal(written.headers?.[TXID_HEADER], `${VIEW}.1`);
    assert.equal(rig.store.seqno, 1);
    const read = await send(rig, request("GET", "/read"));
    assert.deepEqual(read.body, { value: "v1" });
    assert.equal(read.headers?.[TXID_HEADER], `${VIEW}.1`);
  } finally {
    await rig.cleanup();
  }
});

test("a non-2xx answer discards the writes and names no transaction (CCF)", async () => {
  const rig = await makeRig();
  try {
    await send(rig, request("POST", "/write/201", "kept"));
    const refused = await send(rig, request("POST", "/write/400", "dropped"));
    assert.equal(refused.status, 400);
    assert.equal(refused.headers?.[TXID_HEADER], undefined, "no other transaction's id");
    assert.equal(rig.store.seqno, 1, "the refused write took no seqno");
    const read = await send(rig, request("GET", "/read"));
    assert.deepEqual(read.body, { value: "kept" });
  } finally {
    await rig.cleanup();
  }
});

test("a write on a backup is forwarded and the primary's answer relayed untouched", async () => {
  const rig = await makeRig();
  try {
    rig.writable = false;
    const primaryAnswer: RpcResponse = {
      status: 200,
      headers: { [TXID_HEADER]: "7.42", "content-type": "application/json" },
      body: utf8('{"wrote":true}'),
    };
    rig.forwardOutcome = { kind: "relayed", response: primaryAnswer };
    const answer = await send(rig, request("POST", "/write/200", "v"));
    assert.equal(answer, primaryAnswer);
    assert.equal(rig.forwarded.length, 1);
    assert.equal(rig.forwarded[0]!.path, "/write/200");
    assert.equal(rig.store.seqno, 0, "the backup wrote nothing");
  } finally {
    await rig.cleanup();
  }
});

test("no answer from the primary is 503 PrimaryNotFound, without a transaction id", async () => {
  const rig = await makeRig();
  try {
    rig.writable = false;
    rig.forwardOutcome = { kind: "unavailable", message: "The primary changed." };
    const answer = await send(rig, request("POST", "/write/200", "v"));
    assert.equal(answer.status, 503);
    assert.equal(errorCode(answer), "PrimaryNotFound");
    assert.equal(answer.headers?.[TXID_HEADER], undefined);
  } finally {
    await rig.cleanup();
  }
});

test("without another primary, or for a forwarded request, nothing is forwarded", async () => {
  const rig = await makeRig();
  try {
    rig.writable = false;
    for (const primary of [null, SELF]) {
      rig.primary = primary;
      const answer = await send(rig, request("POST", "/write/200", "v"));
      assert.equal(answer.status, 503);
      assert.equal(errorCode(answer), "PrimaryNotFound");
    }
    rig.primary = PRIMARY;
    const answer = await rig.path.dispatchForwarded(request("POST", "/write/200", "v"));
    assert.equal(answer.status, 503);
    assert.equal(errorCode(answer), "PrimaryNotFound");
    assert.equal(answer.headers?.[TXID_HEADER], undefined);
    assert.equal(rig.forwarded.length, 0);
  } finally {
    await rig.cleanup();
  }
});

test("a forwarded request runs through the router and leaves with its transaction id", async () => {
  const rig = await makeRig();
  try {
    const answer = await rig.path.dispatchForwarded(request("POST", "/write/200", "v"));
    assert.equal(answer.status, 200);
    assert.equal(answer.headers?.[TXID_HEADER], `${VIEW}.1`);
    const missing = await rig.path.dispatchForwarded(request("GET", "/nowhere"));
    assert.equal(missing.status, 404);
    assert.equal(missing.headers?.[TXID_HEADER], undefined);
    // A forwarded write the primary refuses carries no id: not the primary's last one.
    const refused = await rig.path.dispatchForwarded(request("POST", "/write/400", "v"));
    assert.equal(refused.status, 400);
    assert.equal(refused.headers?.[TXID_HEADER], undefined);
  } finally {
    await rig.cleanup();
  }
});
