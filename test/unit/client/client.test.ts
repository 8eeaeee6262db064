/**
 * ConsortiaClient over a scripted in-memory Transport (unit tier: no sockets). Covers what a
 * caller relies on: the transaction id of an answer, CCF error bodies turned into ClientError
 * with status, code and message, the bounded retry rules (ECONNREFUSED; 503 PrimaryNotFound on
 * writes only), waitForCommit (Committed, Invalid, timeout), the historical 202 loop (bounded)
 * and the COSE receipt request. The oracle is the script: what was sent and what was answered.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ClientError,
  ClientErrorCode,
  ConsortiaClient,
  type Answer,
  type Transport,
  type TransportRequest,
} from "@consortia/client";

type Step = Answer | ClientError;

/** Answers requests from a script (the last step repeats) and records them. */
class ScriptedTransport implements Transport {
  readonly sent: TransportRequest[] = [];
  constructor(private readonly script: Step[]) {}
  async send(request: TransportRequest): Promise<Answer> {
    const step = this.script[Math.min(this.sent.length, this.script.length - 1)]!;
    this.sent.push(request);
    if (step instanceof ClientError) throw step;
    return step;
  }
}

function answer(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return { status, headers, body: new TextEncoder().encode(text) };
}

const refused = new ClientError(
  { code: ClientErrorCode.Network, ccfCode: "ECONNREFUSED" },
  "connect ECONNREFUSED",
);
const noPrimary = answer(503, { error: { code: "PrimaryNotFound", message: "No primary." } });

function client(script: Step[], options: { primaryWaitMs?: number } = {}) {
  const transport = new ScriptedTransport(script);
  const c = new ConsortiaClient({ transport, retryDelayMs: 5, connectRetries: 2, ...options });
  return { c, transport };
}

test("an app call returns status, JSON body and the transaction id", async () => {
  const { c, transport } = client([answer(200, true, { "x-ms-ccf-transaction-id": "2.17" })]);
  const result = await c.post("/app/log/private", { id: 1, msg: "hi" });
  assert.deepEqual(result, { status: 200, body: true, txId: "2.17" });
  const sent = transport.sent[0]!;
  assert.equal(sent.method, "POST");
  assert.equal(sent.headers["content-type"], "application/json");
  assert.equal(new TextDecoder().decode(sent.body), '{"id":1,"msg":"hi"}');
});

test("a CCF error body becomes a ClientError with status, code and message", async () => {
  const body = { error: { code: "ResourceNotFound", message: "No such record: 9." } };
  const { c } = client([answer(404, body)]);
  await assert.rejects(c.get("/app/log/private?id=9"), (err: unknown) => {
    assert.ok(err instanceof ClientError);
    assert.deepEqual(err.type, {
      code: ClientErrorCode.Http,
      status: 404,
      ccfCode: "ResourceNotFound",
      ccfMessage: "No such record: 9.",
    });
    assert.equal(
      err.message,
      "GET /app/log/private?id=9 failed: 404 ResourceNotFound: No such record: 9.",
    );
    return true;
  });
  const { c: plain } = client([answer(502, "bad gateway")]);
  await assert.rejects(plain.get("/x"), /GET \/x failed: HTTP 502: bad gateway/);
});

test("a refused connection is retried a bounded number of times, then reported", async () => {
  const { c, transport } = client([refused]);
  await assert.rejects(c.get("/node/state"), (err: unknown) => {
    assert.ok(err instanceof ClientError);
    assert.equal(err.ccfCode, "ECONNREFUSED");
    return true;
  });
  assert.equal(transport.sent.length, 3, "one attempt and two retries");
  const { c: later } = client([refused, answer(200, { state: "PartOfNetwork" })]);
  assert.deepEqual((await later.get("/node/state")).body, { state: "PartOfNetwork" });
});

test("a write answered 503 PrimaryNotFound is sent again for a bounded time; a read is not", async () => {
  const recovering = client([noPrimary, noPrimary, answer(200, true)], { primaryWaitMs: 2_000 });
  assert.equal((await recovering.c.post("/app/x", {})).status, 200);
  assert.equal(recovering.transport.sent.length, 3);
  const read = client([noPrimary, answer(200, true)], { primaryWaitMs: 2_000 });
  await assert.rejects(read.c.get("/app/x"), /503 PrimaryNotFound/);
  assert.equal(read.transport.sent.length, 1);
  const never = client([noPrimary], { primaryWaitMs: 600 });
  const started = Date.now();
  await assert.rejects(never.c.post("/app/x", {}), /503 PrimaryNotFound/);
  assert.ok(Date.now() - started >= 600, "retried for primaryWaitMs");
  assert.ok(never.transport.sent.length < 10, "and then gave up");
});

const status = (s: string) => answer(200, { transaction_id: "2.5", status: s });

test("waitForCommit polls /app/tx until Committed; Invalid and a timeout are typed errors", async () => {
  const { c, transport } = client([status("Unknown"), status("Pending"), status("Committed")]);
  await c.waitForCommit("2.5", { intervalMs: 1 });
  assert.equal(transport.sent.length, 3);
  assert.equal(transport.sent[0]!.path, "/app/tx?transaction_id=2.5");
  const { c: dropped } = client([status("Pending"), status("Invalid")]);
  await assert.rejects(dropped.waitForCommit("2.5", { intervalMs: 1 }), (err: unknown) => {
    assert.ok(err instanceof ClientError);
    assert.equal(err.code, ClientErrorCode.TransactionInvalid);
    return true;
  });
  const { c: stuck } = client([status("Pending")]);
  await assert.rejects(stuck.waitForCommit("2.5", { timeoutMs: 50, intervalMs: 5 }), (err) => {
    assert.ok(err instanceof ClientError);
    assert.equal(err.code, ClientErrorCode.Timeout);
    assert.match(err.message, /last status Pending/);
    return true;
  });
});

test("a historical query is asked again while the node answers 202, a bounded number of times", async () => {
  const loading = answer(202, "Historical transaction 2.5 is not currently available.", {
    "retry-after": "3",
  });
  const { c, transport } = client([loading, loading, answer(200, { msg: "old" })]);
  const result = await c.historical("/app/log/private/historical?id=1", "2.5", { retryMs: 1 });
  assert.deepEqual(result.body, { msg: "old" });
  assert.equal(transport.sent.length, 3);
  assert.equal(transport.sent[0]!.headers["x-ms-ccf-transaction-id"], "2.5");
  const { c: slow, transport: slowTransport } = client([loading]);
  await assert.rejects(slow.receipt("2.5", { retryMs: 1, attemptsMax: 4 }), (err: unknown) => {
    assert.ok(err instanceof ClientError);
    assert.equal(err.code, ClientErrorCode.HistoricalNotReady);
    return true;
  });
  assert.equal(slowTransport.sent.length, 4);
});

test("a COSE receipt is asked for with Accept: application/cose and returned as bytes", async () => {
  const cose = { status: 200, headers: {}, body: new Uint8Array([0xd2, 0x84]) };
  const { c, transport } = client([cose]);
  assert.deepEqual(await c.coseReceipt("2.9"), new Uint8Array([0xd2, 0x84]));
  assert.equal(transport.sent[0]!.headers["accept"], "application/cose");
  assert.equal(transport.sent[0]!.path, "/app/receipt?transaction_id=2.9");
});

test("a governance write without a signer is refused before anything is sent", async () => {
  const { c, transport } = client([answer(200, {})]);
  await assert.rejects(c.gov.propose([{ name: "trigger_snapshot" }]), (err: unknown) => {
    assert.ok(err instanceof ClientError);
    assert.equal(err.code, ClientErrorCode.NoSigner);
    return true;
  });
  assert.equal(transport.sent.length, 0);
});
