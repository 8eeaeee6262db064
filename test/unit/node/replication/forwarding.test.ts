/**
 * Request forwarding (src/node/forwarding.ts): a backup Forwarder and a primary Forwarder wired
 * back to back through an in-memory channel that carries every message through the real n2n
 * codec. The backup's forward() must resolve with the primary's dispatch answer (status,
 * headers, body bytes), the primary must see the caller's request unchanged, and every waiting
 * request must be answered exactly once: by its answer, by a 503 when it cannot be sent or
 * times out (a late answer is then ignored), by a 500 when dispatch fails, or by close().
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8, utf8 } from "../../../../src/base/bytes.js";
import type { NodeId } from "../../../../src/base/ids.js";
import type { RpcRequest, RpcResponse } from "../../../../src/http/router.js";
import { Forwarder, type ForwardOutcome } from "../../../../src/node/replication/forwarding.js";
import {
  decodeN2n,
  encodeN2n,
  type N2nMessage,
} from "../../../../src/node/replication/n2n/messages.js";

const BACKUP = "backup" as NodeId;
const PRIMARY = "primary" as NodeId;

interface Pair {
  readonly backup: Forwarder;
  readonly primary: Forwarder;
  /** Requests the primary's dispatch received. */
  readonly dispatched: RpcRequest[];
  /** Answers the primary sent while `holdAnswers` was set, not yet delivered. */
  readonly held: N2nMessage[];
  readonly logs: string[];
  holdAnswers: boolean;
  reachable: boolean;
}

function wire(message: N2nMessage): N2nMessage {
  return decodeN2n(encodeN2n(message));
}

function makePair(dispatch: (request: RpcRequest) => Promise<RpcResponse>, timeoutMs = 2000): Pair {
  const dispatched: RpcRequest[] = [];
  const logs: string[] = [];
  const pair: Pair = {
    dispatched,
    held: [],
    logs,
    holdAnswers: false,
    reachable: true,
    backup: new Forwarder({
      send: (peer, message) => {
        assert.equal(peer, PRIMARY);
        if (!pair.reachable) return false;
        const onWire = wire(message);
        setImmediate(() => pair.primary.onMessage(BACKUP, onWire));
        return true;
      },
      selfAddress: () => "127.0.0.1:7001",
      dispatch: () => Promise.reject(new Error("the backup never dispatches here")),
      timeoutMs,
      log: (line) => logs.push(`backup: ${line}`),
    }),
    primary: new Forwarder({
      send: (peer, message) => {
        assert.equal(peer, BACKUP);
        const onWire = wire(message);
        if (pair.holdAnswers) pair.held.push(onWire);
        else setImmediate(() => pair.backup.onMessage(PRIMARY, onWire));
        return true;
      },
      selfAddress: () => "127.0.0.1:7002",
      dispatch: (request) => {
        dispatched.push(request);
        return dispatch(request);
      },
      timeoutMs,
      log: (line) => logs.push(`primary: ${line}`),
    }),
  };
  return pair;
}

function request(overrides: Partial<RpcRequest> = {}): RpcRequest {
  return {
    method: "POST",
    path: "/app/log/private",
    query: "id=42&scope=a%20b",
    queryParams: new URLSearchParams("id=42&scope=a%20b"),
    headers: { "content-type": "application/json", "x-request-id": "r-1" },
    body: utf8('{"msg":"hello"}'),
    params: {},
    callerCertDer: new Uint8Array([0x30, 0x82, 0x01, 0x22, 0xde, 0xad]),
    ...overrides,
  };
}

/** Awaits `p` while a referenced timer keeps the event loop alive (Forwarder unrefs its own). */
async function settle<T>(p: Promise<T>): Promise<T> {
  const keepAlive = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(keepAlive);
  }
}

/** Waits until `condition` holds (polling), so tests do not bet on how fast a loaded machine is. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await sleep(2);
  assert.ok(condition(), `timed out waiting until ${what}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The primary's answer, asserting that there was one. */
function relayed(outcome: ForwardOutcome): RpcResponse {
  assert.equal(outcome.kind, "relayed", JSON.stringify(outcome));
  return (outcome as { response: RpcResponse }).response;
}

function errorCode(response: RpcResponse): unknown {
  const body =
    response.body instanceof Uint8Array ? JSON.parse(fromUtf8(response.body)) : response.body;
  return (body as { error: { code: unknown } }).error.code;
}

test("a forwarded request gets the primary's answer; JSON arrives as application/json bytes", async () => {
  const pair = makePair(async () => ({
    status: 201,
    headers: { "X-Ms-Ccf-Transaction-Id": "2.17" },
    body: { id: 42, ok: true },
  }));
  const sent = request();
  const response = relayed(await settle(pair.backup.forward(PRIMARY, sent)));
  assert.equal(response.status, 201);
  assert.deepEqual(response.headers, {
    "x-ms-ccf-transaction-id": "2.17",
    "content-type": "application/json",
  });
  assert.ok(response.body instanceof Uint8Array);
  assert.deepEqual(JSON.parse(fromUtf8(response.body)), { id: 42, ok: true });

  assert.equal(pair.dispatched.length, 1);
  const got = pair.dispatched[0]!;
  assert.equal(got.method, sent.method);
  assert.equal(got.path, sent.path);
  assert.equal(got.query, sent.query);
  assert.equal(got.queryParams.get("scope"), "a b");
  assert.equal(got.queryParams.get("id"), "42");
  assert.deepEqual(got.headers, sent.headers);
  assert.deepEqual(got.body, sent.body);
  assert.deepEqual(got.callerCertDer, sent.callerCertDer);
  assert.deepEqual(got.params, {});
  assert.deepEqual(pair.backup.stats, { forwarded: 1, served: 0, timedOut: 0 });
  assert.deepEqual(pair.primary.stats, { forwarded: 0, served: 1, timedOut: 0 });
});

test("text, binary, empty and explicitly typed bodies keep their bytes and content type", async () => {
  const answers: RpcResponse[] = [
    { status: 200, body: "plain text é" },
    { status: 200, body: new Uint8Array([0, 1, 2, 255]) },
    { status: 204 },
    { status: 200, headers: { "Content-Type": "application/cbor" }, body: new Uint8Array([0xa0]) },
    { status: 200, headers: { "content-type": "text/csv" }, body: "a,b" },
  ];
  const expected: [Record<string, string>, Uint8Array][] = [
    [{ "content-type": "text/plain" }, utf8("plain text é")],
    [{ "content-type": "application/octet-stream" }, new Uint8Array([0, 1, 2, 255])],
    [{}, new Uint8Array(0)],
    [{ "content-type": "application/cbor" }, new Uint8Array([0xa0])],
    [{ "content-type": "text/csv" }, utf8("a,b")],
  ];
  let next = 0;
  const pair = makePair(async () => answers[next++]!);
  for (const [headers, body] of expected) {
    const response = relayed(await settle(pair.backup.forward(PRIMARY, request())));
    assert.deepEqual(response.headers, headers);
    assert.deepEqual(response.body, body);
  }
  assert.equal(next, answers.length);
});

test("a request without a client certificate and with an empty body arrives as such", async () => {
  const pair = makePair(async (r) => ({ status: 200, body: `cert:${String(r.callerCertDer)}` }));
  const sent = request({ method: "GET", body: new Uint8Array(0), callerCertDer: null, query: "" });
  const response = relayed(await settle(pair.backup.forward(PRIMARY, sent)));
  assert.deepEqual(response.body, utf8("cert:null"));
  const got = pair.dispatched[0]!;
  assert.equal(got.callerCertDer, null);
  assert.deepEqual(got.body, new Uint8Array(0));
  assert.equal(got.method, "GET");
  assert.equal([...got.queryParams].length, 0);
});

test("concurrent forwards are matched to their own answers", async () => {
  const gates = new Map<string, () => void>();
  const pair = makePair(async (r) => {
    const tag = r.headers["x-request-id"]!;
    await new Promise<void>((resolve) => gates.set(tag, resolve));
    return { status: 200, body: { tag } };
  });
  const first = pair.backup.forward(PRIMARY, request({ headers: { "x-request-id": "one" } }));
  const second = pair.backup.forward(PRIMARY, request({ headers: { "x-request-id": "two" } }));
  await settle(
    (async () => {
      while (gates.size < 2) await sleep(1);
    })(),
  );
  gates.get("two")!(); // the second answer comes first
  const secondAnswer = relayed(await settle(second));
  gates.get("one")!();
  const firstAnswer = relayed(await settle(first));
  assert.deepEqual(JSON.parse(fromUtf8(firstAnswer.body as Uint8Array)), { tag: "one" });
  assert.deepEqual(JSON.parse(fromUtf8(secondAnswer.body as Uint8Array)), { tag: "two" });
});

test("a send that fails answers 503 PrimaryNotFound at once", async () => {
  const pair = makePair(async () => ({ status: 200 }), 60_000);
  pair.reachable = false;
  const started = performance.now();
  const outcome = await settle(pair.backup.forward(PRIMARY, request()));
  assert.ok(performance.now() - started < 1000, "did not wait for the timeout");
  assert.equal(outcome.kind, "unavailable");
  assert.equal(pair.dispatched.length, 0);
  assert.equal(pair.backup.stats.forwarded, 0);
});

test("no answer: 503 after timeoutMs, and a late answer is ignored", async () => {
  // 400 ms: long enough that a loaded machine does not time out the second request early.
  const pair = makePair(async (r) => ({ status: 200, body: r.headers["x-request-id"]! }), 400);
  pair.holdAnswers = true;
  const started = performance.now();
  const outcome = await settle(
    pair.backup.forward(PRIMARY, request({ headers: { "x-request-id": "first" } })),
  );
  const waited = performance.now() - started;
  assert.ok(waited >= 395, `answered after ${waited} ms, before the timeout`);
  assert.equal(outcome.kind, "unavailable");
  assert.deepEqual(pair.backup.stats, { forwarded: 1, served: 0, timedOut: 1 });

  // A second request waits; the first one's late answer must not resolve it.
  const second = pair.backup.forward(PRIMARY, request({ headers: { "x-request-id": "second" } }));
  await settle(until(() => pair.held.length === 2, "the primary answered both"));
  pair.backup.onMessage(PRIMARY, pair.held[0]!);
  const pending = Symbol("pending");
  assert.equal(await settle(Promise.race([second, sleep(5).then(() => pending)])), pending);
  pair.backup.onMessage(PRIMARY, pair.held[1]!);
  const answer = relayed(await settle(second));
  assert.equal(answer.status, 200);
  assert.deepEqual(answer.body, utf8("second"));
  assert.deepEqual(pair.backup.stats, { forwarded: 2, served: 0, timedOut: 1 });
});

test("a dispatch that rejects answers 500 InternalError", async () => {
  const pair = makePair(() => Promise.reject(new Error("boom")));
  const response = relayed(await settle(pair.backup.forward(PRIMARY, request())));
  assert.equal(response.status, 500);
  assert.equal(errorCode(response), "InternalError");
  assert.equal(response.headers?.["content-type"], "application/json");
  assert.ok(pair.logs.some((line) => line.startsWith("primary:") && line.includes("boom")));
});

test("close() answers every waiting request 503 and later answers are ignored", async () => {
  const pair = makePair(async () => ({ status: 200 }), 1_000);
  pair.holdAnswers = true;
  const waiting = [
    pair.backup.forward(PRIMARY, request()),
    pair.backup.forward(PRIMARY, request()),
  ];
  // Let the primary dispatch and (hold) its answers.
  await settle(until(() => pair.held.length === 2, "the primary held both answers"));
  pair.backup.close();
  const answers = await settle(Promise.all(waiting));
  for (const a of answers) assert.equal(a.kind, "unavailable");
  assert.equal(pair.held.length, 2);
  for (const m of pair.held) pair.backup.onMessage(PRIMARY, m);
  await settle(sleep(1_100)); // past the timeout: the timers were cleared
  assert.equal(pair.backup.stats.timedOut, 0);
});

test("after close(), a request is answered 503 at once and never sent to the primary", async () => {
  const pair = makePair(async () => ({ status: 200 }), 60_000);
  pair.backup.close();
  const outcome = await settle(pair.backup.forward(PRIMARY, request()));
  assert.deepEqual(outcome, { kind: "unavailable", message: "The node is stopping." });
  assert.equal(pair.backup.stats.forwarded, 0);
  assert.equal(pair.dispatched.length, 0);
});
