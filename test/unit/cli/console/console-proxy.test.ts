// The console server's proxy (src/cli/console/): what it passes on to the network and what it
// refuses. The network is a real HTTPS server on loopback whose certificate is endorsed by a
// test service CA (test/helpers/pki.ts); the oracle is what that server saw (or did not see)
// and the CCF-style error bodies the console answers with. Covers: allowed paths pass with
// status, body and transaction id; unknown paths, wrong verbs, oversized or non-COSE bodies,
// foreign Host and cross-origin writes are refused without reaching the network; a network
// that is down, too slow, too talkative or not the pinned service is a JSON error; a refused
// node is skipped for the next one.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer as createHttpsServer, type Server } from "node:https";
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makePki, type TestPki } from "../../../helpers/pki.js";
import {
  ConsoleServer,
  REQUEST_BODY_BYTES_MAX,
} from "../../../../src/cli/console/console-server.js";
import { NetworkClient } from "../../../../src/cli/console/network-client.js";
import { LedgerApi } from "../../../../src/cli/console/ledger-api.js";
import { StaticFiles } from "../../../../src/cli/console/static-files.js";

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  bodyBytes: number;
}

const NODE_ID = "ab".repeat(32);
let pki: TestPki;
let other: TestPki;
const seen: Seen[] = [];
let upstream: Server;
let upstreamUrl: string;
let staticDir: string;
const consoles: ConsoleServer[] = [];

function pem(key: TestPki["nodeKeys"]["privateKey"]): string {
  return key.export({ format: "pem", type: "pkcs8" }).toString();
}

/** The fake network: answers by path, recording every request it receives. */
function startUpstream(identity: TestPki): Promise<{ server: Server; url: string }> {
  const server = createHttpsServer(
    { cert: identity.nodeCertPem, key: pem(identity.nodeKeys.privateKey) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        seen.push({
          method: req.method ?? "",
          url: req.url ?? "",
          contentType: req.headers["content-type"],
          bodyBytes: body.byteLength,
        });
        if (req.url === "/node/version") return; // never answers
        if (req.url === "/node/network/nodes") {
          const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
          const node = { node_id: NODE_ID, rpc_interfaces: { i: { published_address: address } } };
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ nodes: [node] }));
          return;
        }
        if (req.url === "/node/js_metrics") {
          res.writeHead(200, { "content-type": "application/octet-stream" });
          res.end(Buffer.alloc(4096));
          return;
        }
        res.writeHead(200, {
          "content-type": "application/json",
          "x-ms-ccf-transaction-id": "2.42",
          "set-cookie": "secret=1",
        });
        res.end(JSON.stringify({ path: req.url, bytes: body.byteLength }));
      });
    },
  );
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

async function startConsole(urls: string[], options: { timeoutMs?: number; ca?: string } = {}) {
  const network = new NetworkClient({
    urls,
    serviceCertPem: options.ca ?? pki.serviceCertPem,
    timeoutMs: options.timeoutMs ?? 5_000,
    responseBytesMax: 1024,
  });
  const server = new ConsoleServer({
    port: 0,
    network,
    ledger: new LedgerApi(null),
    staticFiles: new StaticFiles(staticDir),
    description: {},
  });
  consoles.push(server);
  return { port: await server.listen() };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function ask(
  port: number,
  path: string,
  init: { method?: string; body?: Buffer; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: "127.0.0.1", port, path, method: init.method ?? "GET", headers: init.headers ?? {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

function errorCode(answer: Answer): string {
  return (JSON.parse(answer.body) as { error: { code: string } }).error.code;
}

before(async () => {
  pki = await makePki();
  other = await makePki();
  ({ server: upstream, url: upstreamUrl } = await startUpstream(pki));
  staticDir = mkdtempSync(join(tmpdir(), "console-static-"));
  writeFileSync(join(staticDir, "index.html"), "<!doctype html><title>t</title>");
});

after(async () => {
  for (const c of consoles) await c.close();
  upstream.closeAllConnections();
  upstream.close();
  rmSync(staticDir, { recursive: true, force: true });
});

test("an allowed GET reaches the network with its query, and status, body and txid come back", async () => {
  const { port } = await startConsole([upstreamUrl]);
  const answer = await ask(port, "/api/app/tx?transaction_id=2.5");
  assert.equal(answer.status, 200);
  assert.deepEqual(JSON.parse(answer.body), { path: "/app/tx?transaction_id=2.5", bytes: 0 });
  assert.equal(answer.headers["x-ms-ccf-transaction-id"], "2.42");
  assert.equal(answer.headers["set-cookie"], undefined, "only listed headers are passed back");
});

test("a signed governance write passes on as application/cose with its body", async () => {
  const { port } = await startConsole([upstreamUrl]);
  const body = Buffer.from([0xd2, 0x84, 1, 2, 3]);
  const answer = await ask(port, "/api/gov/members/proposals:create?api-version=2024-07-01", {
    method: "POST",
    body,
    headers: { "content-type": "application/cose", origin: `http://127.0.0.1:${port}` },
  });
  assert.equal(answer.status, 200);
  const last = seen.at(-1)!;
  assert.equal(last.method, "POST");
  assert.equal(last.contentType, "application/cose");
  assert.equal(last.bodyBytes, body.byteLength);
});

test("paths and verbs the pages do not use are refused without reaching the network", async () => {
  const { port } = await startConsole([upstreamUrl]);
  const before = seen.length;
  const cases: [string, string, number, string][] = [
    ["GET", "/api/node/snapshot", 404, "ResourceNotFound"],
    ["GET", "/api/app/log/private", 404, "ResourceNotFound"],
    ["GET", "/api/node/network/nodes/self/../../../../etc/passwd", 404, "ResourceNotFound"],
    ["DELETE", "/api/node/network/nodes/" + "a".repeat(64), 405, "UnsupportedHttpVerb"],
    ["POST", "/api/node/state", 405, "UnsupportedHttpVerb"],
    ["GET", "/api/gov/members/proposals/not-an-id", 404, "ResourceNotFound"],
    ["GET", "/api/nodes/xyz/node/state", 404, "ResourceNotFound"],
    ["GET", `/api/nodes/${"a".repeat(64)}/gov/service/info`, 404, "ResourceNotFound"],
  ];
  for (const [method, path, status, code] of cases) {
    const answer = await ask(port, path, { method });
    assert.equal(answer.status, status, `${method} ${path}`);
    assert.equal(errorCode(answer), code, `${method} ${path}`);
  }
  assert.equal(seen.length, before, "nothing reached the network");
});

test("a body over the limit, or not COSE, is refused before the network sees it", async () => {
  const { port } = await startConsole([upstreamUrl]);
  const before = seen.length;
  const path = "/api/gov/members/proposals:create?api-version=2024-07-01";
  const big = await ask(port, path, {
    method: "POST",
    body: Buffer.alloc(REQUEST_BODY_BYTES_MAX + 1),
    headers: { "content-type": "application/cose" },
  });
  assert.equal(big.status, 413);
  assert.equal(errorCode(big), "RequestBodyTooLarge");
  const json = await ask(port, path, {
    method: "POST",
    body: Buffer.from("{}"),
    headers: { "content-type": "application/json" },
  });
  assert.equal(json.status, 400);
  assert.equal(errorCode(json), "InvalidInput");
  assert.equal(seen.length, before);
});

test("a foreign Host or a cross-origin write is refused (DNS rebinding, CSRF)", async () => {
  const { port } = await startConsole([upstreamUrl]);
  const rebound = await ask(port, "/api/node/state", { headers: { host: "evil.example:80" } });
  assert.equal(rebound.status, 403);
  assert.equal(errorCode(rebound), "AuthorizationFailed");
  const csrf = await ask(port, "/api/gov/members/proposals:create", {
    method: "POST",
    body: Buffer.from([0xd2]),
    headers: { "content-type": "application/cose", origin: "https://evil.example" },
  });
  assert.equal(csrf.status, 403);
});

test("a network that is down is a 502 NetworkUnreachable JSON error", async () => {
  const closed = await startUpstream(pki);
  closed.server.close();
  await new Promise((r) => setTimeout(r, 50));
  const { port } = await startConsole([closed.url]);
  const answer = await ask(port, "/api/node/network");
  assert.equal(answer.status, 502);
  assert.equal(errorCode(answer), "NetworkUnreachable");
  assert.match(answer.body, /ECONNREFUSED/);
});

test("a node that refuses is skipped for the next one", async () => {
  const closed = await startUpstream(pki);
  closed.server.close();
  const { port } = await startConsole([closed.url, upstreamUrl]);
  const answer = await ask(port, "/api/node/network");
  assert.equal(answer.status, 200);
});

test("a network too slow is a 504 NetworkTimeout; an answer too large a 502", async () => {
  const { port } = await startConsole([upstreamUrl], { timeoutMs: 300 });
  const slow = await ask(port, "/api/node/version");
  assert.equal(slow.status, 504);
  assert.equal(errorCode(slow), "NetworkTimeout");
  const big = await ask(port, "/api/node/js_metrics");
  assert.equal(big.status, 502);
  assert.equal(errorCode(big), "ResponseTooLarge");
});

test("per-node calls go to the address the network lists for that node, and only for nodes", async () => {
  const { port } = await startConsole(["https://127.0.0.1:1"].concat(upstreamUrl));
  const answer = await ask(port, `/api/nodes/${NODE_ID}/node/state`);
  assert.equal(answer.status, 200);
  assert.equal(seen.at(-1)?.url, "/node/state");
  const unknown = await ask(port, `/api/nodes/${"cd".repeat(32)}/node/state`);
  assert.equal(unknown.status, 404);
  assert.match(unknown.body, /not in the network's node list/);
});

test("a server that is not endorsed by the pinned service certificate is refused", async () => {
  const impostor = await startUpstream(other);
  const { port } = await startConsole([impostor.url]);
  const before = seen.length;
  const answer = await ask(port, "/api/node/network");
  assert.equal(answer.status, 502);
  assert.equal(errorCode(answer), "NetworkUnreachable");
  assert.equal(seen.length, before, "no request was sent over the untrusted connection");
  impostor.server.close();
});
