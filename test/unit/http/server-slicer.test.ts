// The RPC server with a TurnSlicer (src/http/turn-slicer.ts), as a node runs it: handling that
// waits for a later slice still answers every request, each with its own answer, and the
// requests pipelined on one connection in their order; urgent requests skip the queue unless
// their own connection has a request in it. The budget is tiny, so that nearly every request
// waits for a later slice.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Agent, request as httpsRequest } from "node:https";
import { ecPrivateKeyPem } from "../../../src/crypto/identity.js";
import { createRpcServer, type RpcServer } from "../../../src/http/server.js";
import { Router } from "../../../src/http/router.js";
import { TurnSlicer } from "../../../src/http/turn-slicer.js";
import { tlsExchange } from "../../helpers/https.js";
import { makePki } from "../../helpers/pki.js";

let server: RpcServer;
let serviceCertPem: string;
let handled = 0;
/** Handler runs, in order: "slow" or "status". */
const ran: string[] = [];

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a request's handling
  }
}

before(async () => {
  const pki = await makePki();
  serviceCertPem = pki.serviceCertPem;
  const router = new Router();
  router.add("POST", "/app/echo", (req) => {
    handled++;
    return { status: 200, body: req.body };
  });
  router.add("GET", "/app/n/{n}", async (req) => {
    handled++;
    await Promise.resolve();
    return { status: 200, body: { n: Number(req.params["n"]) } };
  });
  router.add("POST", "/app/slow", () => {
    ran.push("slow");
    spin(2);
    return { status: 200, body: { ok: true } };
  });
  router.add("GET", "/node/status", () => {
    ran.push("status");
    return { status: 200, body: { ok: true } };
  });
  server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: pki.nodeCertPem,
    keyPem: ecPrivateKeyPem(pki.nodeKeys.privateKey),
    maxBodyBytes: 1024,
    router,
    slicer: new TurnSlicer({ budgetMs: 0.01 }),
    urgent: (req) => req.method === "GET" && req.path.startsWith("/node/"),
  });
});

after(async () => {
  await server.close();
});

function post(agent: Agent, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port: server.port, method: "POST", path: "/app/echo", agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("200 concurrent requests on 8 connections each get their own answer", async () => {
  const agent = new Agent({ ca: serviceCertPem, keepAlive: true, maxSockets: 8 });
  const before = handled;
  const bodies = Array.from({ length: 200 }, (_, i) => JSON.stringify({ i }));
  const replies = await Promise.all(bodies.map((b) => post(agent, b)));
  agent.destroy();
  assert.deepEqual(
    replies.map((r) => r.status),
    bodies.map(() => 200),
  );
  assert.deepEqual(
    replies.map((r) => r.body),
    bodies,
  );
  assert.equal(handled - before, 200);
});

test("pipelined requests are answered in order, a bad one last and then the close", async () => {
  const heads = [3, 1, 2, 0].map((n) => `GET /app/n/${n} HTTP/1.1\r\nhost: x\r\n\r\n`);
  const answer = await rawExchange(`${heads.join("")} / HTTP/1.1\r\ncontent-length: 0\r\n\r\n`);
  const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
  assert.deepEqual(statuses, ["200", "200", "200", "200", "400"]);
  const ns = [...answer.matchAll(/\{"n":(\d)\}/g)].map((m) => Number(m[1]));
  assert.deepEqual(ns, [3, 1, 2, 0]);
});

/** Writes `payload` on a fresh connection; everything the server sent until it closed. */
function rawExchange(payload: string): Promise<string> {
  return tlsExchange(server.port, serviceCertPem, payload);
}

const SLOW = "POST /app/slow HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n";
const STATUS = "GET /node/status HTTP/1.1\r\nhost: x\r\n\r\n";
const CLOSE = "GET /node/status HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";

test("an urgent request skips the queue of other connections' requests", async () => {
  ran.length = 0;
  // Ten slow requests (2 ms each) on one connection queue up behind a 0.01 ms budget.
  const slow = rawExchange(`${SLOW.repeat(10)}${CLOSE}`);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const status = rawExchange(CLOSE);
  const [slowAnswer] = await Promise.all([slow, status]);
  assert.equal([...slowAnswer.matchAll(/HTTP\/1\.1 200 /g)].length, 11);
  const first = ran.indexOf("status");
  assert.ok(first >= 0 && first < 10, `the status read ran after ${first} slow requests`);
});

test("an urgent request waits for its own connection's queued requests", async () => {
  ran.length = 0;
  const answer = await rawExchange(`${SLOW}${SLOW}${STATUS}${CLOSE}`);
  assert.equal([...answer.matchAll(/HTTP\/1\.1 200 /g)].length, 4);
  assert.deepEqual(ran, ["slow", "slow", "status", "status"]);
});
