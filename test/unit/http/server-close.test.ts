// RpcServer.close() under keep-alive load (src/http/server.ts): a stopping node must exit within
// 2 s of SIGTERM, so close() may not wait for keep-alive clients to go away. Real TLS on
// 127.0.0.1; requests are written raw so that the test controls when each byte arrives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { ecPrivateKeyPem } from "../../../src/crypto/identity.js";
import { createRpcServer, type RpcServer } from "../../../src/http/server.js";
import { Router } from "../../../src/http/router.js";
import { makePki } from "../../helpers/pki.js";

/** Longer than any test here may take: close() must not need it when requests end. */
const LONG_GRACE_MS = 20_000;

interface Rig {
  server: RpcServer;
  caPem: string;
  /** Resolves the /app/slow requests waiting so far. */
  release: () => void;
  /** Resolves once a /app/slow request is running. */
  slowStarted: Promise<void>;
}

async function rig(closeGraceMs: number): Promise<Rig> {
  const pki = await makePki();
  const waiting: (() => void)[] = [];
  let started = (): void => undefined;
  const slowStarted = new Promise<void>((resolve) => (started = resolve));
  const router = new Router();
  router.add("GET", "/app/fast", () => ({ status: 200, body: "fast" }));
  router.add("GET", "/app/slow", async () => {
    started();
    await new Promise<void>((resolve) => waiting.push(resolve));
    return { status: 200, body: "slow" };
  });
  const server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    certPem: pki.nodeCertPem,
    keyPem: ecPrivateKeyPem(pki.nodeKeys.privateKey),
    maxBodyBytes: 1024,
    router,
    closeGraceMs,
  });
  const release = (): void => waiting.splice(0).forEach((resolve) => resolve());
  return { server, caPem: pki.serviceCertPem, release, slowStarted };
}

interface Conn {
  socket: TLSSocket;
  /** Everything the server sent, once it closed the connection. */
  closed: Promise<string>;
  /** Resolves once the server's bytes include `text`. */
  received: (text: string) => Promise<void>;
}

async function connect(r: Rig): Promise<Conn> {
  const socket = tlsConnect({ host: "127.0.0.1", port: r.server.port, ca: r.caPem });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  let text = "";
  const watchers: { text: string; resolve: () => void }[] = [];
  socket.on("data", (c: Buffer) => {
    text += c.toString("utf8");
    for (const w of watchers) if (text.includes(w.text)) w.resolve();
  });
  socket.on("error", () => undefined);
  const closed = new Promise<string>((resolve) => socket.on("close", () => resolve(text)));
  const received = (want: string): Promise<void> =>
    new Promise((resolve) => {
      if (text.includes(want)) resolve();
      else watchers.push({ text: want, resolve });
    });
  return { socket, closed, received };
}

const request = (path: string): string => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`;

test("close() answers the request in flight, then closes its keep-alive connection", async () => {
  const r = await rig(LONG_GRACE_MS);
  const conn = await connect(r);
  conn.socket.write(request("/app/fast"));
  await conn.received("fast");
  conn.socket.write(request("/app/slow"));
  await r.slowStarted;
  const started = Date.now();
  const closing = r.server.close();
  r.release();
  const text = await conn.closed;
  await closing;
  assert.ok(Date.now() - started < 5_000, `close() took ${Date.now() - started} ms`);
  const answers = text.split("HTTP/1.1 ").slice(1);
  assert.equal(answers.length, 2, text);
  assert.match(answers[0]!, /^200 [\s\S]*\r\n\r\nfast$/);
  assert.doesNotMatch(answers[0]!, /connection: close/i);
  assert.match(answers[1]!, /^200 [\s\S]*connection: close[\s\S]*\r\n\r\nslow$/i);
});

test("after close(), a request completing on an open connection is refused with 503", async () => {
  const r = await rig(LONG_GRACE_MS);
  const busy = await connect(r);
  busy.socket.write(request("/app/slow"));
  await r.slowStarted;
  // A keep-alive client in the middle of its next request when the node stops.
  const late = await connect(r);
  late.socket.write("GET /app/fast HTTP/1.1\r\nhost: x\r\n");
  await new Promise((resolve) => setTimeout(resolve, 50));
  const closing = r.server.close();
  late.socket.write("\r\n");
  const refused = await late.closed;
  assert.match(refused, /^HTTP\/1\.1 503 /);
  assert.match(refused, /connection: close/i);
  assert.match(refused, /"code":"NodeCannotHandleRequest"/);
  r.release();
  assert.match(await busy.closed, /^HTTP\/1\.1 200 [\s\S]*slow$/);
  await closing;
});

test("close() cuts a request still running after closeGraceMs", async () => {
  const r = await rig(200);
  const conn = await connect(r);
  conn.socket.write(request("/app/slow"));
  await r.slowStarted;
  const started = Date.now();
  await r.server.close();
  assert.equal(await conn.closed, "");
  const took = Date.now() - started;
  assert.ok(took >= 150 && took < 5_000, `close() took ${took} ms`);
  r.release();
});
