// The common /commit and /tx endpoints and the id and enum checks of the /node frontend
// (src/node/frontends/node-endpoints.ts, historical.ts), through a Router with fake RpcRequests
// dispatched as the server does, on a fake NodeContext holding only what those endpoints read.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Router,
  NO_PARAMS,
  type RpcRequest,
  type RpcResponse,
} from "../../../../src/http/router.js";
import { answerOf, dispatchRequest } from "../../../../src/http/server.js";
import { HttpError } from "../../../../src/http/errors.js";
import {
  nodeStatusParam,
  publishedAddressFilter,
  registerCommonEndpoints,
} from "../../../../src/node/frontends/node-endpoints.js";
import { requestedTxId } from "../../../../src/node/frontends/historical.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import { txId } from "../../../../src/base/ids.js";

function request(target: string, headers: Record<string, string> = {}): RpcRequest {
  const q = target.indexOf("?");
  const query = q < 0 ? "" : target.slice(q + 1);
  return {
    method: "GET",
    path: q < 0 ? target : target.slice(0, q),
    query,
    queryParams: new URLSearchParams(query),
    headers,
    body: new Uint8Array(0),
    params: NO_PARAMS,
    callerCertDer: null,
  };
}

/** A node committed at 3.9 whose views 1, 2 and 3 start at seqnos 1, 1 (empty view) and 5. */
function rig(): Router {
  const node = {
    pipeline: { commitTxId: txId(3, 9) },
    raft: {
      // Everything up to the commit is Committed whatever its view, as a careless check would say.
      status: (_view: number, seqno: number) => (seqno <= 9 ? "Committed" : "Unknown"),
      log: {
        viewHistory: (at: { view: number; seqno: number }) => {
          assert.deepEqual(at, txId(3, 9));
          return [1, 1, 5];
        },
      },
    },
  } as unknown as NodeContext;
  const router = new Router();
  registerCommonEndpoints(router, node, "/node", () => ({}));
  return router;
}

async function call(router: Router, target: string): Promise<RpcResponse> {
  const log = (m: string, e?: unknown) => assert.fail(`${m}: ${String(e)}`);
  return answerOf(await dispatchRequest(request(target), router, log));
}

function errorOf(r: RpcResponse): { code: string; message: string } {
  return (r.body as { error: { code: string; message: string } }).error;
}

test("/tx refuses seqno 0 and view 0 ids as invalid input instead of a status", async () => {
  const router = rig();
  for (const id of ["2.0", "0.0", "0.5"]) {
    const r = await call(router, `/node/tx?transaction_id=${id}`);
    assert.equal(r.status, 400, id);
    assert.equal(errorOf(r).code, "InvalidQueryParameterValue", id);
  }
  const ok = await call(router, "/node/tx?transaction_id=3.5");
  assert.deepEqual(ok.body, { transaction_id: "3.5", status: "Committed" });
});

test("ids must be canonical decimal digits everywhere they are parsed", async () => {
  const router = rig();
  for (const id of [
    "1e3.2",
    "2.1e3",
    "1.0.2",
    "-0.5",
    "2.-0",
    "+2.5",
    "02.5",
    "2.05",
    " 2.5",
    "2.5 ",
    "0x2.5",
  ]) {
    const r = await call(router, `/node/tx?transaction_id=${encodeURIComponent(id)}`);
    assert.equal(r.status, 400, id);
    assert.equal(errorOf(r).code, "InvalidQueryParameterValue", id);
  }
});

test("the historical transaction id header refuses seqno 0 and non-canonical ids with 400", () => {
  for (const id of ["2.0", "0.0", "1e3.1", "2.1.0", "-0.1", "2.01"]) {
    assert.throws(
      () =>
        requestedTxId(request("/app/log/private/historical", { "x-ms-ccf-transaction-id": id })),
      (e: unknown) => e instanceof HttpError && e.status === 400 && e.code === "InvalidHeaderValue",
      id,
    );
  }
  const ok = requestedTxId(request("/x", { "x-ms-ccf-transaction-id": "2.10" }));
  assert.deepEqual(ok, txId(2, 10));
});

test("/commit answers view_history when asked, from view_history_since", async () => {
  const router = rig();
  assert.deepEqual((await call(router, "/node/commit")).body, { transaction_id: "3.9" });
  assert.deepEqual((await call(router, "/node/commit?view_history=false")).body, {
    transaction_id: "3.9",
  });
  assert.deepEqual((await call(router, "/node/commit?view_history=true")).body, {
    transaction_id: "3.9",
    view_history: ["1.1", "2.1", "3.5"],
  });
  const since = await call(router, "/node/commit?view_history=true&view_history_since=2");
  assert.deepEqual(since.body, { transaction_id: "3.9", view_history: ["2.1", "3.5"] });
  for (const q of [
    "view_history=yes",
    "view_history=true&view_history_since=0",
    "view_history=true&view_history_since=4",
    "view_history=true&view_history_since=1e0",
  ]) {
    const r = await call(router, `/node/commit?${q}`);
    assert.equal(r.status, 400, q);
    assert.equal(errorOf(r).code, "InvalidQueryParameterValue", q);
  }
});

test("nodes?status= accepts only CCF's node statuses and names the allowed ones", () => {
  assert.equal(nodeStatusParam(request("/node/network/nodes")), null);
  assert.equal(nodeStatusParam(request("/node/network/nodes?status=Trusted")), "Trusted");
  assert.throws(
    () => nodeStatusParam(request("/node/network/nodes?status=Bogus")),
    (e: unknown) =>
      e instanceof HttpError &&
      e.status === 400 &&
      e.code === "InvalidQueryParameterValue" &&
      e.message.includes("'Bogus'") &&
      e.message.includes("Pending, Trusted, Retired"),
  );
});

test("nodes?host=&port= match a node by any RPC interface's published address, as CCF", () => {
  const node = (...addresses: string[]) => ({
    rpc_interfaces: Object.fromEntries(
      addresses.map((a, i) => [`if${i}`, { bind_address: "0.0.0.0:1", published_address: a }]),
    ),
  });
  const byName = node("n0.example.com:8000", "10.0.0.1:9000");
  const byIpv6 = node("[fd77::c]:8000");
  const matching = (query: string) =>
    [byName, byIpv6].filter(publishedAddressFilter(request(`/node/network/nodes?${query}`)));
  assert.deepEqual(matching(""), [byName, byIpv6]);
  assert.deepEqual(matching("host=n0.example.com"), [byName]);
  assert.deepEqual(matching("host=10.0.0.1&port=9000"), [byName]);
  // Host and port must be those of one interface, not one of each.
  assert.deepEqual(matching("host=10.0.0.1&port=8000"), []);
  assert.deepEqual(matching("port=8000"), [byName, byIpv6]);
  assert.deepEqual(matching("host=%5Bfd77%3A%3Ac%5D"), [byIpv6]);
  assert.deepEqual(matching("host=fd77::c&port=8000"), [byIpv6]);
  assert.deepEqual(matching("host=n1.example.com"), []);
});
