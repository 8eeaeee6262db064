// Session, header and time limits of the RPC server (src/http/limits.ts) over real TLS
// sockets against an in-process server with small limits and short timeouts: sessions past the
// soft limit get 503 SessionCapExhausted and are closed, past the hard limit they are closed
// before the handshake; too many or too long headers get 431 RequestHeaderTooLarge; a client
// that stalls its head or trickles its body gets 408 RequestTimeout (a CCF-style error body)
// and is disconnected within the bounds, one that sits idle is disconnected.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { ecPrivateKeyPem } from "../../../src/crypto/identity.js";
import { createRpcServer, type RpcServer } from "../../../src/http/server.js";
import { Router } from "../../../src/http/router.js";
import { makePki } from "../../helpers/pki.js";

const HEADERS_TIMEOUT_MS = 400;
const REQUEST_TIMEOUT_MS = 800;
const IDLE_TIMEOUT_MS = 600;
/** Node checks head and request deadlines periodically; allow for that and a loaded machine. */
const SLACK_MS = 1500;

let server: RpcServer;
/** Requests that reached POST /app/count. */
let counted = 0;
let serviceCertPem: string;

before(async () => {
  const pki = await makePki();
  serviceCertPem = pki.serviceCertPem;
  const router = new Router();
  router.add("GET", "/app/ok", () => ({ status: 200, body: { ok: true } }));
  router.add("POST", "/app/ok", () => ({ status: 200, body: { ok: true } }));
  router.add("POST", "/app/count", () => {
    counted++;
    return { status: 200, body: { ok: true } };
  });
  server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: pki.nodeCertPem,
    keyPem: ecPrivateKeyPem(pki.nodeKeys.privateKey),
    maxBodyBytes: 1024,
    router,
    closeGraceMs: 0,
    limits: {
      maxOpenSessionsSoft: 2,
      maxOpenSessionsHard: 3,
      maxHeaderSizeBytes: 1024,
      maxHeadersCount: 10,
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      idleTimeoutMs: IDLE_TIMEOUT_MS,
    },
  });
});

after(async () => {
  await server.close();
});

/** Without the limits, these tests would wait minutes: fail them instead. */
const BOUNDED = { timeout: 10_000 };

/** The server sees a close a little after the client: let each test's sessions go first. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 100));
afterEach(settle);

/** A TLS connection that has completed its handshake, or the error that ended it. */
function openTls(): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port: server.port, ca: serviceCertPem });
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
    socket.once("close", () => reject(new Error("closed before the handshake")));
  });
}

/** Everything the server sends until it closes the connection, and how long that took. */
function readUntilClose(socket: TLSSocket): Promise<{ text: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    let text = "";
    socket.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
    socket.on("error", () => {});
    socket.once("close", () => resolve({ text, ms: Date.now() - started }));
  });
}

function get(path: string, extraHeaders = ""): string {
  return `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${extraHeaders}\r\n`;
}

/** Sends one request on a fresh connection; the response must close the connection. */
async function closingExchange(request: string | Buffer): Promise<string> {
  const socket = await openTls();
  const closed = readUntilClose(socket);
  socket.write(request);
  return (await closed).text;
}

function errorCodeOf(response: string): string {
  const body = response.slice(response.indexOf("\r\n\r\n") + 4);
  return (JSON.parse(body) as { error: { code: string } }).error.code;
}

/** One keep-alive request on an open connection; resolves with the response head line. */
function exchange(socket: TLSSocket, request: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8").split("\r\n")[0]!));
    socket.write(request);
  });
}

test(
  "past the soft session limit: 503 SessionCapExhausted; past the hard: refused",
  BOUNDED,
  async () => {
    const first = await openTls();
    const second = await openTls();
    assert.equal(await exchange(first, get("/app/ok")), "HTTP/1.1 200 OK");
    const third = await openTls();
    const thirdClosed = readUntilClose(third);
    // The hard limit (3) is reached: a fourth connection is closed before its handshake.
    await assert.rejects(openTls());
    third.write(get("/app/ok"));
    const answer = (await thirdClosed).text;
    assert.match(answer, /^HTTP\/1\.1 503 /);
    assert.equal(errorCodeOf(answer), "SessionCapExhausted");
    // Sessions within the soft limit are unaffected.
    assert.equal(await exchange(second, get("/app/ok")), "HTTP/1.1 200 OK");
    const firstClosed = readUntilClose(first);
    const secondClosed = readUntilClose(second);
    first.end();
    second.end();
    await Promise.all([firstClosed, secondClosed]);
    await settle();
    // Closed sessions free their slots.
    const again = await openTls();
    assert.equal(await exchange(again, get("/app/ok")), "HTTP/1.1 200 OK");
    const againClosed = readUntilClose(again);
    again.end();
    await againClosed;
  },
);

test(
  "a header value or name over max_header_size gets 431 RequestHeaderTooLarge",
  BOUNDED,
  async () => {
    const longValue = await closingExchange(get("/app/ok", `x-big: ${"a".repeat(1025)}\r\n`));
    assert.match(longValue, /^HTTP\/1\.1 431 /);
    assert.equal(errorCodeOf(longValue), "RequestHeaderTooLarge");
    const longName = await closingExchange(get("/app/ok", `x-${"n".repeat(1100)}: 1\r\n`));
    assert.match(longName, /^HTTP\/1\.1 431 /);
    assert.equal(errorCodeOf(longName), "RequestHeaderTooLarge");
    const socket = await openTls();
    const atLimit = get("/app/ok", `x-big: ${"a".repeat(1024)}\r\n`);
    assert.equal(await exchange(socket, atLimit), "HTTP/1.1 200 OK");
    socket.destroy();
  },
);

test("header sizes count bytes on the wire, not UTF-8 re-encoded", BOUNDED, async () => {
  // Found by test/property/http.test.ts: node reads header bytes as latin1, and measuring that
  // text as UTF-8 counted every byte >= 0x80 twice, so 1000 bytes of "é" got a 431.
  const socket = await openTls();
  const within = Buffer.from(get("/app/ok", `x-wide: ${"\u00e9".repeat(500)}\r\n`), "utf8");
  const answer = await new Promise<string>((resolve) => {
    socket.once("data", (chunk: Buffer) => resolve(chunk.toString("utf8").split("\r\n")[0]!));
    socket.write(within);
  });
  assert.equal(answer, "HTTP/1.1 200 OK");
  socket.destroy();
  const over = Buffer.from(get("/app/ok", `x-wide: ${"\u00e9".repeat(513)}\r\n`), "utf8");
  const refused = await closingExchange(over);
  assert.match(refused, /^HTTP\/1\.1 431 /);
});

test("more headers than max_headers_count gets 431 RequestHeaderTooLarge", BOUNDED, async () => {
  // host plus 10 more is 11 headers, over the limit of 10.
  const eleven = Array.from({ length: 10 }, (_, i) => `x-h${i}: ${i}\r\n`).join("");
  const answer = await closingExchange(get("/app/ok", eleven));
  assert.match(answer, /^HTTP\/1\.1 431 /);
  assert.equal(errorCodeOf(answer), "RequestHeaderTooLarge");
  const ten = Array.from({ length: 9 }, (_, i) => `x-h${i}: ${i}\r\n`).join("");
  const socket = await openTls();
  assert.equal(await exchange(socket, get("/app/ok", ten)), "HTTP/1.1 200 OK");
  socket.destroy();
});

test("a connection that never starts its TLS handshake is closed", BOUNDED, async () => {
  const started = Date.now();
  await new Promise<void>((resolve, reject) => {
    const socket = netConnect({ host: "127.0.0.1", port: server.port });
    socket.on("error", () => {});
    socket.once("close", () => resolve());
    setTimeout(() => reject(new Error("still open")), HEADERS_TIMEOUT_MS + SLACK_MS).unref();
  });
  assert.ok(Date.now() - started >= HEADERS_TIMEOUT_MS - 50);
});

/** The 408 a request that missed its time limit gets before its connection is closed. */
function assertRequestTimeout(text: string): void {
  assert.match(text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(text, /\r\nconnection: close\r\n/i);
  assert.equal(errorCodeOf(text), "RequestTimeout");
}

test(
  "a request head that does not arrive in time gets 408 RequestTimeout and is closed",
  BOUNDED,
  async () => {
    const socket = await openTls();
    const closed = readUntilClose(socket);
    socket.write("GET /app/ok HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    const timer = setInterval(() => socket.writable && socket.write("x-slow: 1\r\n"), 100);
    const { ms, text } = await closed;
    clearInterval(timer);
    assert.ok(ms < HEADERS_TIMEOUT_MS + SLACK_MS, `closed after ${ms} ms`);
    assertRequestTimeout(text);
  },
);

test("a body trickled one byte at a time is cut off at the request timeout", BOUNDED, async () => {
  const socket = await openTls();
  const closed = readUntilClose(socket);
  socket.write("POST /app/ok HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n");
  const timer = setInterval(() => socket.writable && socket.write("a"), 50);
  const { ms, text } = await closed;
  clearInterval(timer);
  assert.ok(ms < REQUEST_TIMEOUT_MS + SLACK_MS, `closed after ${ms} ms`);
  assertRequestTimeout(text);
});

test("a body that completes after its 408 never reaches the handler", BOUNDED, async () => {
  const socket = await openTls();
  let text = "";
  let sentBytes = 0;
  const timer = setInterval(() => {
    if (socket.writable) socket.write("a");
    sentBytes++;
  }, 50);
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8");
    // The 408 arrived: the rest of the body follows at once.
    clearInterval(timer);
    if (socket.writable) socket.write("b".repeat(1000 - sentBytes));
  });
  socket.on("error", () => {});
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.write("POST /app/count HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n");
  await closed;
  clearInterval(timer);
  assertRequestTimeout(text);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(counted, 0);
});

test("an idle keep-alive connection is closed after the idle timeout", BOUNDED, async () => {
  const socket = await openTls();
  assert.equal(await exchange(socket, get("/app/ok")), "HTTP/1.1 200 OK");
  const { ms } = await readUntilClose(socket);
  assert.ok(ms >= IDLE_TIMEOUT_MS - 100, `closed after ${ms} ms`);
  assert.ok(ms < IDLE_TIMEOUT_MS + SLACK_MS, `closed after ${ms} ms`);
});

test("invalid limits are refused", BOUNDED, async () => {
  const pki = await makePki();
  await assert.rejects(
    createRpcServer({
      host: "127.0.0.1",
      port: 0,
      certPem: pki.nodeCertPem,
      keyPem: ecPrivateKeyPem(pki.nodeKeys.privateKey),
      maxBodyBytes: 1024,
      router: new Router(),
      limits: { maxOpenSessionsSoft: 5, maxOpenSessionsHard: 4 },
    }),
    RangeError,
  );
});
