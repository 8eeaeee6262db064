// The RPC server's RequestObserver (src/http/server.ts) over real TLS: every answer is reported
// once with its method, the matched route's template (never the raw path), the status written
// and the time from arrival to the answer; requests no route matched and requests refused
// before routing (413) come without a template. The oracle is the requests the test sent.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { request as httpsRequest } from "node:https";
import { ecPrivateKeyPem } from "../../../src/crypto/identity.js";
import { createRpcServer, type RpcServer } from "../../../src/http/server.js";
import { HttpError, HttpErrorCode } from "../../../src/http/errors.js";
import { Router } from "../../../src/http/router.js";
import { makePki } from "../../helpers/pki.js";

interface Answered {
  method: string;
  template: string | undefined;
  status: number;
  elapsedMs: number;
}

const answered: Answered[] = [];
let server: RpcServer;
let caPem: string;
const SLOW_MS = 60;

before(async () => {
  const pki = await makePki();
  caPem = pki.serviceCertPem;
  const router = new Router();
  router.add("GET", "/app/items/{id}", (req) => ({ status: 200, body: { id: req.params["id"] } }));
  router.add("POST", "/app/items", () => {
    throw new HttpError(HttpErrorCode.InvalidInput, "no");
  });
  router.add("GET", "/app/slow", async () => {
    await new Promise((resolve) => setTimeout(resolve, SLOW_MS));
    return { status: 204 };
  });
  server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: pki.nodeCertPem,
    keyPem: ecPrivateKeyPem(pki.nodeKeys.privateKey),
    maxBodyBytes: 16,
    router,
    observer: {
      onAnswered: (method, template, status, elapsedMs) =>
        answered.push({ method, template, status, elapsedMs }),
    },
  });
});

after(() => server.close());

function send(method: string, path: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port: server.port, method, path, ca: caPem, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("each answer is reported with its route template, status and duration", async () => {
  answered.length = 0;
  assert.equal(await send("GET", "/app/items/17"), 200);
  assert.equal(await send("GET", "/app/items/a%20b?x=1"), 200);
  assert.equal(await send("POST", "/app/items", "{}"), 400);
  assert.equal(await send("GET", "/app/slow"), 204);
  assert.equal(await send("GET", "/nowhere"), 404);
  assert.equal(await send("DELETE", "/app/items"), 405);
  assert.equal(await send("POST", "/app/items", "x".repeat(100)), 413);
  const seen = answered.map(({ method, template, status }) => [method, template, status]);
  assert.deepEqual(seen, [
    ["GET", "/app/items/{id}", 200],
    ["GET", "/app/items/{id}", 200],
    ["POST", "/app/items", 400],
    ["GET", "/app/slow", 204],
    ["GET", undefined, 404],
    ["DELETE", undefined, 405],
    ["POST", undefined, 413],
  ]);
  for (const a of answered)
    assert.ok(a.elapsedMs >= 0 && a.elapsedMs < 10_000, String(a.elapsedMs));
  // The slow handler's wait is inside the measured time (timers may fire a little early).
  assert.ok(answered[3]!.elapsedMs >= SLOW_MS - 5, String(answered[3]!.elapsedMs));
});
